"""The source-independent description of a model to convert: a chain of dense layers.

A reader (`popfit.conversion.sklearn`, `popfit.conversion.keras`) turns a
trained model into a `ModelSpec`: a chain of `DenseSpec` layers,
``y = activation(x @ weights + bias)``. This module also holds everything
conversion knows about activation names: which popfit targets
(`popfit.targets.TARGETS`) a hidden layer can use, the output nonlinearities
applied in numpy, and how each source library spells them.
"""

import functools
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import scipy.special

from ..exceptions import ConversionError, PopfitTypeError, PopfitValueError
from ..targets import TARGETS

# ------------------------------------------------------------------ activations
#: Hidden activations a population can replace (names in `popfit.targets.TARGETS`).
HIDDEN_ACTIVATIONS = ("tanh", "sigmoid", "linear", "relu")


#: Output activation -> numpy function of the decoded output, shape (n_samples, n_outputs).
#: The scalar curves are the registry's own functions; softmax and exp are output-only.
OUTPUT_FUNCTIONS = {
    **{name: TARGETS[name].function for name in HIDDEN_ACTIVATIONS},
    "softmax": functools.partial(scipy.special.softmax, axis=1),
    "exp": np.exp,
}
#: Output activations applied in numpy to the decoded output.
OUTPUT_ACTIVATIONS = tuple(OUTPUT_FUNCTIONS)

#: scikit-learn's activation names (``activation``, ``out_activation_``) -> popfit's.
SKLEARN_ACTIVATIONS = {"tanh": "tanh", "logistic": "sigmoid", "identity": "linear",
                       "relu": "relu", "softmax": "softmax", "exp": "exp"}
#: Keras's activation names (``keras.activations.<name>.__name__``) -> popfit's.
KERAS_ACTIVATIONS = {"tanh": "tanh", "sigmoid": "sigmoid", "linear": "linear",
                     "relu": "relu", "softmax": "softmax"}


def source_names(table, hidden=False):
    """The source library's names in ``table`` (hidden-layer ones only if ``hidden``)."""
    return tuple(k for k, v in table.items() if not hidden or v in HIDDEN_ACTIVATIONS)


def apply_activation(name, z):
    """Apply output activation ``name`` (one of `OUTPUT_ACTIVATIONS`) to ``z`` in numpy."""
    return OUTPUT_FUNCTIONS[name](np.asarray(z, dtype=float))


# ------------------------------------------------------------------ the spec
@dataclass(frozen=True, eq=False)
class DenseSpec:
    """One dense layer of the source model: ``activation(x @ weights + bias)``.

    Attributes
    ----------
    weights : ndarray, shape (n_in, n_out)
    bias : ndarray, shape (n_out,)
    activation : str
        A name in `HIDDEN_ACTIVATIONS` (hidden layers) or `OUTPUT_ACTIVATIONS`
        (the output layer).
    label : str
        Where the layer came from (e.g. ``"coefs_[0]"`` or the Keras layer name),
        used in messages and the summary.
    """

    weights: np.ndarray
    bias: np.ndarray
    activation: str
    label: str

    @property
    def n_in(self):
        return self.weights.shape[0]

    @property
    def n_out(self):
        return self.weights.shape[1]


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """A source model read into a chain of dense layers.

    Construction checks that every weight and bias is finite, naming the
    layer and the array otherwise.

    Attributes
    ----------
    source : str
        Class name of the source model (``"MLPClassifier"``, ``"Sequential"``, ...).
    layers : tuple of DenseSpec
        Hidden layers, then the output layer (last).
    is_classifier : bool
    classes : ndarray or None
        Class labels (classifiers only).
    multilabel : bool
        True for a multi-label classifier (one logistic output per label).
    ravel_output : bool
        True when a single-output regressor returns shape ``(n_samples,)``
        (scikit-learn's convention) rather than ``(n_samples, 1)``.
    """

    source: str
    layers: Tuple[DenseSpec, ...]
    is_classifier: bool = False
    classes: Optional[np.ndarray] = None
    multilabel: bool = False
    ravel_output: bool = False

    def __post_init__(self):
        for i, layer in enumerate(self.layers):
            for what, values in (("weights", layer.weights), ("bias", layer.bias)):
                bad = int(np.count_nonzero(~np.isfinite(values)))
                if bad:
                    raise ConversionError(
                        f"{self.source} layer {i} ({layer.label!r}) has {bad} non-finite "
                        f"(NaN or inf) of {values.size} values in its {what} (shape "
                        f"{values.shape}); only models with finite weights and biases can "
                        "be converted (retrain it, e.g. with a smaller learning rate)")

    @property
    def n_features(self):
        return self.layers[0].n_in

    @property
    def hidden(self):
        return self.layers[:-1]

    @property
    def output(self):
        return self.layers[-1]

    def forward(self, X):
        """The source model's own computation in numpy.

        Returns the pre-activations of every layer and the output
        (after the output activation).
        """
        a = np.asarray(X, dtype=float)
        pre = []
        for layer in self.layers:
            z = a @ layer.weights + layer.bias
            pre.append(z)
            a = apply_activation(layer.activation, z)
        return pre, a


def check_samples(X, n_features, name):
    """Return ``X`` as a finite real float array of shape ``(n_samples, n_features)``."""
    if isinstance(X, (str, bytes)) or X is None:
        raise PopfitTypeError(
            f"{name} must be an array of shape (n_samples, {n_features}) "
            f"(got {type(X).__name__})"
        )
    try:
        X = np.asarray(X)
        real = not np.iscomplexobj(X)
        if real:
            X = X.astype(float)
    except (TypeError, ValueError) as err:
        raise PopfitValueError(
            f"{name} must be a numeric array of shape (n_samples, {n_features}) "
            f"({err})"
        ) from None
    if not real:
        raise PopfitValueError(
            f"{name} must be real (got a complex array of shape {X.shape}); pass "
            f"its real part ({name}.real) or its magnitude (abs({name})) explicitly")
    if X.ndim != 2:
        raise PopfitValueError(
            f"{name} must be 2-D, shape (n_samples, {n_features}) (got shape "
            f"{X.shape}); reshape one sample with X.reshape(1, -1)"
        )
    if X.shape[1] != n_features:
        raise PopfitValueError(
            f"{name} has {X.shape[1]} features but the model expects "
            f"{n_features} (got shape {X.shape})"
        )
    if X.shape[0] == 0:
        raise PopfitValueError(f"{name} must have at least one sample (got 0)")
    if not np.all(np.isfinite(X)):
        raise PopfitValueError(f"{name} contains NaN or infinite values")
    return X
