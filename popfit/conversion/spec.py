"""The source-independent description of a model to convert: layers of units.

A reader (`popfit.conversion.sklearn`, `popfit.conversion.keras`) turns a
trained model into a `ModelSpec`: hidden `LayerSpec` layers in topological
order, then the output layer, each ``activation(x @ weights + bias)`` of the
layer before (the model input, for the first), plus ``skips``, inputs from
earlier layers (residual connections). ``weights`` is an ndarray, or a
`scipy.sparse.csr_matrix` for a convolution and the pooling, padding and
normalization folded into it (`popfit.conversion.operators`). This module also holds everything
conversion knows about activation names: which popfit targets
(`popfit.targets.TARGETS`) a hidden layer can use, the output nonlinearities
applied in numpy, and how each source library spells them.
"""

import dataclasses
import numbers
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import scipy.sparse
import scipy.special

from ..exceptions import ConversionError, PopfitTypeError, PopfitValueError
from ..targets import TARGETS, Target, activation_names, apply_activation

# ------------------------------------------------------------------ activations
#: Hidden activations a population can replace (names in `popfit.targets.TARGETS`).
HIDDEN_ACTIVATIONS = ("tanh", "sigmoid", "linear", "relu")


#: Output activations applied in numpy to the decoded output (`popfit.targets.apply_activation`):
#: the hidden ones and the registry's output-only ones (softmax, exp).
OUTPUT_ACTIVATIONS = HIDDEN_ACTIVATIONS + activation_names(fittable=False)

#: scikit-learn's activation names (``activation``, ``out_activation_``) -> popfit's.
SKLEARN_ACTIVATIONS = {"tanh": "tanh", "logistic": "sigmoid", "identity": "linear",
                       "relu": "relu", "softmax": "softmax", "exp": "exp"}
#: Keras's activation names (``keras.activations.<name>.__name__``) -> popfit's.
KERAS_ACTIVATIONS = {"tanh": "tanh", "sigmoid": "sigmoid", "linear": "linear",
                     "relu": "relu", "softmax": "softmax"}


def source_names(table, hidden=False):
    """The source library's names in ``table`` (hidden-layer ones only if ``hidden``)."""
    return tuple(k for k, v in table.items() if not hidden or v in HIDDEN_ACTIVATIONS)


# ------------------------------------------------------------------ folding affine maps
def affine_into(weights, bias, matrix, offset):
    """Weights and bias of ``x -> (x @ matrix + offset) @ weights + bias``, one dense layer.

    An affine map on a layer's inputs (a scaler, a PCA, a batch
    normalization) folded into the layer, exactly up to rounding.
    ``matrix`` is ``(n_in, n_features)`` or a vector of ``n_features``
    (elementwise scaling: ``x * matrix``); ``offset`` has ``n_features`` values.
    """
    matrix, offset = np.asarray(matrix, dtype=float), np.asarray(offset, dtype=float)
    folded = matrix[:, None] * weights if matrix.ndim == 1 else matrix @ weights
    return folded, offset @ weights + bias


def affine_after(weights, bias, scale, shift):
    """Weights and bias of ``x -> (x @ weights + bias) * scale + shift`` (elementwise)."""
    scale = np.asarray(scale, dtype=float)
    return weights * scale, bias * scale + np.asarray(shift, dtype=float)


# ------------------------------------------------------------------ the spec
def dot(a, weights):
    """``a @ weights`` for an ndarray ``a`` and a dense or scipy.sparse ``weights`` (an ndarray)."""
    if scipy.sparse.issparse(weights):
        return np.asarray((weights.T @ np.asarray(a).T).T)
    return a @ weights


@dataclass(frozen=True, eq=False)
class LayerSpec:
    """One layer of units of the source model.

    Its pre-activations are ``a_prev @ weights + bias`` plus, for each
    ``(source, matrix)`` in ``skips``, ``a_source @ matrix`` (``a_prev``: the
    previous layer's outputs, or the model input for the first layer; source
    -1 is the model input).

    Attributes
    ----------
    weights : ndarray or scipy.sparse.csr_matrix, shape (n_in, n_out)
    bias : ndarray, shape (n_out,)
    activation : str
        A name in `HIDDEN_ACTIVATIONS` (hidden layers) or `OUTPUT_ACTIVATIONS`
        (the output layer).
    label : str
        Where the layer came from (e.g. ``"coefs_[0]"`` or the Keras layer
        names folded into it), used in messages and the summary.
    curve : popfit.targets.Target, optional
        A hidden layer's custom elementwise activation (a source-library
        function that is none of the named curves), fitted as a callable
        target; ``activation`` is then a description (``"custom <name>"``).
    shape : tuple of int, optional
        The units' shape in the source model, channels last (e.g. ``(8, 8, 4)``
        for a convolution); ``(n_out,)`` by default.
    skips : tuple of (int, ndarray or scipy.sparse.csr_matrix)
        Inputs from earlier layers than the previous one (index into the
        spec's layers, -1 the model input), each ``(n_source, n_out)``.
    """

    weights: object
    bias: np.ndarray
    activation: str
    label: str
    curve: Optional[Target] = None
    shape: Optional[Tuple[int, ...]] = None
    skips: Tuple[Tuple[int, object], ...] = ()

    def __post_init__(self):
        if self.shape is None:
            object.__setattr__(self, "shape", (self.n_out,))

    @property
    def target(self):
        """The curve a population of this (hidden) layer is fitted to: a `Target`."""
        return TARGETS[self.activation] if self.curve is None else self.curve

    def apply(self, z):
        """The layer's activation applied to pre-activations ``z`` in numpy."""
        if self.curve is not None:
            return self.curve(z)
        return apply_activation(self.activation, z)

    @property
    def n_in(self):
        return self.weights.shape[0]

    @property
    def n_out(self):
        return self.weights.shape[1]

    @property
    def sparse(self):
        """True when ``weights`` is a scipy.sparse matrix (a convolution)."""
        return scipy.sparse.issparse(self.weights)

    def inputs(self, index):
        """All ``(source, matrix)`` inputs of this layer at position ``index`` of the spec."""
        return ((index - 1, self.weights),) + tuple(self.skips)

    def pre_activation(self, index, outputs):
        """Pre-activations from ``outputs[source]`` of every input (``outputs[-1]``: the
        model input; a dict or a list with the input last)."""
        z = self.bias
        for source, matrix in self.inputs(index):
            z = z + dot(outputs[source], matrix)
        return z


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """A source model read into a chain of dense layers.

    Construction checks that every weight and bias is finite, naming the
    layer and the array otherwise.

    Attributes
    ----------
    source : str
        Class name of the source model (``"MLPClassifier"``, ``"Sequential"``, ...).
    layers : tuple of LayerSpec
        Hidden layers in topological order, then the output layer (last).
    input_shape : tuple of int, optional
        The shape of one input sample in the source model (e.g. ``(8, 8, 1)``);
        ``(n_features,)`` by default. Samples may be passed in this shape or
        flattened (row-major, channels last).
    is_classifier : bool
    classes : ndarray or None
        Class labels (classifiers only).
    multilabel : bool
        True for a multi-label classifier (one logistic output per label).
    ravel_output : bool
        True when a single-output regressor returns shape ``(n_samples,)``
        (scikit-learn's convention) rather than ``(n_samples, 1)``.
    task_fixed : bool
        True when the source model's class fixes the task (scikit-learn's
        ``MLPClassifier`` / ``MLPRegressor``), so `with_task` cannot change it.
    """

    source: str
    layers: Tuple[LayerSpec, ...]
    is_classifier: bool = False
    classes: Optional[np.ndarray] = None
    multilabel: bool = False
    ravel_output: bool = False
    task_fixed: bool = False
    input_shape: Optional[Tuple[int, ...]] = None

    def __post_init__(self):
        if self.input_shape is None:
            object.__setattr__(self, "input_shape", (self.n_features,))
        for i, layer in enumerate(self.layers):
            arrays = [("weights", layer.weights), ("bias", layer.bias)] + [
                (f"skip from {s}", m) for s, m in layer.skips]
            for what, values in arrays:
                values = values.data if scipy.sparse.issparse(values) else values
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

    def with_task(self, task):
        """This spec as a ``"classifier"`` or a ``"regressor"`` (a new spec).

        A classifier needs a sigmoid or softmax output: one sigmoid output is
        a binary classifier (classes ``[0, 1]``), several sigmoid outputs a
        multi-label one, softmax outputs a multi-class one (classes
        ``0 .. k-1``). A regressor returns the output values.
        """
        if not isinstance(task, str) or task not in ("classifier", "regressor"):
            raise PopfitValueError(
                f"task must be 'classifier', 'regressor' or None (decided from the model) "
                f"(got {task!r})")
        if task == ("classifier" if self.is_classifier else "regressor"):
            return self
        if self.task_fixed:
            raise PopfitValueError(
                f"task={task!r} does not apply to a {self.source}, which is a "
                f"{'classifier' if self.is_classifier else 'regressor'} by its class; "
                "leave task=None")
        out = self.output
        if task == "regressor":
            return dataclasses.replace(self, is_classifier=False, classes=None,
                                       multilabel=False, ravel_output=False)
        if out.activation not in ("sigmoid", "softmax"):
            raise ConversionError(
                f"task='classifier' needs a sigmoid or softmax output layer, but "
                f"{self.source} layer {out.label!r} has activation {out.activation!r}; "
                "give the output layer a sigmoid (binary or multi-label) or softmax "
                "(multi-class) activation, or convert it with task='regressor'")
        multilabel = out.activation == "sigmoid" and out.n_out > 1
        classes = np.arange(2 if out.activation == "sigmoid" and out.n_out == 1
                            else out.n_out)
        return dataclasses.replace(self, is_classifier=True, classes=classes,
                                   multilabel=multilabel, ravel_output=False)

    @property
    def hidden(self):
        return self.layers[:-1]

    @property
    def is_chain(self):
        """True when every layer takes the previous layer's outputs alone (no skips)."""
        return not any(layer.skips for layer in self.layers)

    @property
    def has_sparse(self):
        """True when some layer's weights are a sparse matrix (a convolution)."""
        return any(layer.sparse for layer in self.layers)

    @property
    def output(self):
        return self.layers[-1]

    def forward(self, X, curves=None):
        """The source model's own computation in numpy.

        ``curves`` (optional): one callable per hidden layer replacing its
        activation (e.g. each population's decoded rate curve,
        `PopulationFit.predict`).

        Returns the pre-activations of every layer and the output
        (after the output activation).
        """
        outputs = {-1: np.asarray(X, dtype=float)}
        pre = []
        for i, layer in enumerate(self.layers):
            z = layer.pre_activation(i, outputs)
            pre.append(z)
            apply = layer.apply if curves is None or i == len(self.hidden) else curves[i]
            outputs[i] = apply(z)
        return pre, outputs[len(self.layers) - 1]

    def check_chain(self, what):
        """Raise `ConversionError` naming ``what`` if this spec has skip connections."""
        if not self.is_chain:
            layer = next(layer for layer in self.layers if layer.skips)
            raise ConversionError(
                f"{what} supports models whose layers form a chain, but {self.source} layer "
                f"{layer.label!r} also takes inputs from earlier layers (a residual or "
                "merge connection); convert it without this option")


#: Largest scipy.sparse input (in dense values, n_samples * n_features) that
#: `check_samples` densifies: 2**24 values, 128 MiB as float64.
MAX_SPARSE_VALUES = 2**24


def _what(X):
    """A short description of an argument that is not an array, for messages."""
    if isinstance(X, (str, bytes)):
        return f"the {type(X).__name__} {X!r:.60}"
    if isinstance(X, (numbers.Number, np.generic)):
        return f"the scalar {X!r:.60}"
    return f"an object of type {type(X).__name__}"


def check_samples(X, n_features, name, sample_shape=None):
    """Return ``X`` as a finite real float array of shape ``(n_samples, n_features)``.

    ``sample_shape``: the model's input shape of one sample (e.g. ``(8, 8, 1)``);
    samples of that shape, ``(n_samples, *shape)``, are flattened row-major
    (channels last, as Keras's ``Flatten``).

    Accepts numpy arrays, nested lists or tuples of numbers, objects with
    ``__array__`` and scipy.sparse matrices of at most `MAX_SPARSE_VALUES`
    values (densified; larger ones are refused with the fix). Anything else
    (a scalar, a string, a dict, a set, a generator, a ragged list, strings or
    other non-numbers) raises a popfit error naming ``name``, the expected
    shape and what was received.
    """
    shape = f"(n_samples, {n_features})"
    if scipy.sparse.issparse(X):
        size = int(X.shape[0]) * int(X.shape[1])
        if size > MAX_SPARSE_VALUES:
            raise PopfitValueError(
                f"{name} is a scipy.sparse matrix of shape {X.shape} ({size} values when "
                f"dense), more than the {MAX_SPARSE_VALUES} values popfit densifies; pass "
                f"a dense array of shape {shape}, e.g. a subset of the rows: "
                f"{name}[:10000].toarray()")
        X = X.toarray()  # small: densified explicitly (documented)
    array_like = (isinstance(X, (list, tuple, np.ndarray)) or hasattr(X, "__array__")
                  or hasattr(X, "__array_interface__"))
    if not array_like:
        fix = (f"; make it an array first, e.g. np.array(list({name}))"
               if hasattr(X, "__iter__") and not isinstance(X, (str, bytes, dict)) else "")
        raise PopfitTypeError(
            f"{name} must be an array of shape {shape} (got {_what(X)}){fix}")
    if np.ma.isMaskedArray(X) and np.ma.getmaskarray(X).any():
        raise PopfitValueError(
            f"{name} must be an array of shape {shape} without missing values (got a "
            f"masked array with {int(np.ma.getmaskarray(X).sum())} masked values); popfit "
            f"does not guess them: fill them explicitly ({name}.filled(...)) or drop those "
            "samples")
    try:
        X = np.asarray(X)
    except (TypeError, ValueError) as err:
        raise PopfitValueError(
            f"{name} must be an array of shape {shape} (got a {type(X).__name__} that "
            f"numpy cannot make into an array: {err}); rows of a nested list must all "
            f"have {n_features} numbers") from None
    if X.dtype.kind == "O":
        bad = [v for v in X.flat if isinstance(v, (str, bytes))
               or not isinstance(v, (numbers.Number, np.generic))][:1]
        if bad:
            bad = bad[0]
            raise PopfitValueError(
                f"{name} must hold numbers, shape {shape} (got an object array holding "
                f"{_what(bad)}); convert the values to numbers yourself")
    elif X.dtype.kind not in "biufc":
        raise PopfitValueError(
            f"{name} must be a numeric array of shape {shape} (got dtype {X.dtype}, "
            f"shape {X.shape}); convert it explicitly, e.g. np.asarray({name}, "
            "dtype=float), after checking the values")
    if np.iscomplexobj(X) or (X.dtype.kind == "O" and any(
            isinstance(v, complex) and v.imag != 0 for v in X.flat)):
        raise PopfitValueError(
            f"{name} must be real (got a complex array of shape {X.shape}); pass "
            f"its real part ({name}.real) or its magnitude (abs({name})) explicitly")
    try:
        X = X.astype(float)
    except (TypeError, ValueError, OverflowError) as err:
        raise PopfitValueError(
            f"{name} must be a numeric array of shape {shape} ({err})") from None
    if sample_shape is not None and len(sample_shape) > 1 and X.ndim > 2:
        if tuple(X.shape[1:]) != tuple(sample_shape):
            raise PopfitValueError(
                f"{name} has samples of shape {X.shape[1:]} but the model takes samples of "
                f"shape {tuple(sample_shape)} (or flattened, {n_features} features) (got shape "
                f"{X.shape})")
        X = X.reshape(len(X), -1)
    if X.ndim != 2:
        what = f"the scalar {X.item()!r}" if X.ndim == 0 else f"shape {X.shape}"
        raise PopfitValueError(
            f"{name} must be 2-D, shape {shape} (got {what}); reshape one sample "
            f"with X.reshape(1, -1)"
        )
    if X.shape[1] != n_features:
        raise PopfitValueError(
            f"{name} has {X.shape[1]} features but the model expects "
            f"{n_features} (got shape {X.shape})"
        )
    if X.shape[0] == 0:
        raise PopfitValueError(
            f"{name} must have at least one sample, shape {shape} (got shape {X.shape})")
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise PopfitValueError(
            f"{name} contains NaN or infinite values ({int(bad.sum())} of {X.size}, the "
            f"first at row {row}, column {col}: {float(X[row, col])!r}); it must be a finite "
            f"array of shape {shape}: remove or impute them")
    return X
