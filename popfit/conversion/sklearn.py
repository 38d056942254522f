"""Read scikit-learn `MLPClassifier` / `MLPRegressor` models into a `ModelSpec`.

Only public fitted attributes are read: ``coefs_``, ``intercepts_``,
``activation``, ``out_activation_``, ``n_outputs_`` and ``classes_``.
"""

import numpy as np

from ..exceptions import ConversionError, PopfitTypeError, PopfitValueError
from .readers import register_reader
from .spec import SKLEARN_ACTIVATIONS, DenseSpec, ModelSpec, source_names

HIDDEN = source_names(SKLEARN_ACTIVATIONS, hidden=True)
OUTPUT = source_names(SKLEARN_ACTIVATIONS)


@register_reader("sklearn")
def from_sklearn(model):
    """Read a fitted `MLPClassifier` or `MLPRegressor` (weights ``coefs_``, ``intercepts_``)."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    if not isinstance(model, (MLPClassifier, MLPRegressor)):
        raise PopfitTypeError(
            f"scikit-learn models must be MLPClassifier or MLPRegressor "
            f"(got {type(model).__name__})")
    name = type(model).__name__
    if not hasattr(model, "coefs_"):
        raise PopfitValueError(
            f"this {name} instance is not fitted yet; call its fit(X, y) "
            "before converting it")
    if model.activation not in HIDDEN:
        raise ConversionError(
            f"{name} activation {model.activation!r} is not supported; "
            f"supported hidden activations are {', '.join(map(repr, HIDDEN))}")
    out_act = getattr(model, "out_activation_", None)
    if out_act not in OUTPUT:
        raise ConversionError(
            f"{name} output activation (out_activation_) {out_act!r} is not "
            f"supported; supported are {', '.join(map(repr, OUTPUT))}")
    n = len(model.coefs_)
    if n < 2:
        raise ConversionError(
            f"{name} has no hidden layer (hidden_layer_sizes=()); there are no "
            "units to replace with neurons")
    layers = []
    for i, (w, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        last = i == n - 1
        layers.append(DenseSpec(
            weights=np.array(w, dtype=float), bias=np.array(b, dtype=float),
            activation=SKLEARN_ACTIVATIONS[out_act if last else model.activation],
            label=f"output (coefs_[{i}])" if last else f"coefs_[{i}]"))
    if isinstance(model, MLPClassifier):
        # several logistic outputs: one per label of a multi-label (indicator) target;
        # a binary problem has one logistic output, a multi-class one softmax
        multilabel = out_act == "logistic" and model.n_outputs_ > 1
        return ModelSpec(source=name, layers=tuple(layers), is_classifier=True,
                         classes=np.asarray(model.classes_), multilabel=multilabel)
    return ModelSpec(source=name, layers=tuple(layers), is_classifier=False,
                     ravel_output=model.n_outputs_ == 1)
