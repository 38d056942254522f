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


def _checked_weights(model, name):
    """``coefs_`` and ``intercepts_`` as float arrays whose shapes chain.

    ``coefs_[i]`` must be 2-D, shape ``(n_in_i, n_out_i)``, with ``n_in_0 ==
    n_features_in_`` and ``n_in_{i+1} == n_out_i``; ``intercepts_[i]`` shape
    ``(n_out_i,)``. Hand-edited weights that break this are refused, naming
    the layer and both shapes.
    """
    coefs, intercepts = list(model.coefs_), list(model.intercepts_)
    if len(intercepts) != len(coefs):
        raise ConversionError(
            f"{name} has {len(coefs)} weight matrices (coefs_) but {len(intercepts)} "
            "bias vectors (intercepts_); they must pair up, one per layer (refit the model "
            "or restore its weights)")
    n_in = getattr(model, "n_features_in_", None)
    out_w, out_b = [], []
    for i, (w, b) in enumerate(zip(coefs, intercepts)):
        try:
            w, b = np.array(w, dtype=float), np.array(b, dtype=float)
        except (TypeError, ValueError) as err:
            raise ConversionError(
                f"{name} coefs_[{i}] or intercepts_[{i}] is not a numeric array ({err})"
            ) from None
        if w.ndim != 2:
            raise ConversionError(
                f"{name} coefs_[{i}] must be a 2-D weight matrix (n_in, n_out) (got shape "
                f"{w.shape})")
        expected, source = (n_in, "n_features_in_") if i == 0 else (
            out_w[-1].shape[1], f"coefs_[{i - 1}] has shape {out_w[-1].shape}")
        if expected is not None and w.shape[0] != expected:
            raise ConversionError(
                f"{name} coefs_[{i}] has shape {w.shape}, but its {w.shape[0]} input rows "
                f"must match the {expected} outputs of the previous layer ({source}"
                f"{f' = {expected}' if i == 0 else ''}); the weights were edited "
                "inconsistently (refit the model or restore its weights)")
        if b.shape != (w.shape[1],):
            raise ConversionError(
                f"{name} intercepts_[{i}] has shape {b.shape}, but coefs_[{i}] has shape "
                f"{w.shape}, so it must have shape ({w.shape[1]},) (one bias per unit); the "
                "weights were edited inconsistently (refit the model or restore them)")
        out_w.append(w)
        out_b.append(b)
    return out_w, out_b


@register_reader("sklearn")
def from_sklearn(model, task=None):
    """Read a fitted `MLPClassifier` or `MLPRegressor` (weights ``coefs_``, ``intercepts_``).

    ``task``, if given, must agree with the estimator's class.
    """
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
    coefs, intercepts = _checked_weights(model, name)
    layers = []
    for i, (w, b) in enumerate(zip(coefs, intercepts)):
        last = i == n - 1
        layers.append(DenseSpec(
            weights=w, bias=b,
            activation=SKLEARN_ACTIVATIONS[out_act if last else model.activation],
            label=f"output (coefs_[{i}])" if last else f"coefs_[{i}]"))
    n_out, n_outputs = layers[-1].n_out, getattr(model, "n_outputs_", None)
    if n_outputs is not None and n_out != n_outputs:
        raise ConversionError(
            f"{name} output coefs_[{n - 1}] has shape {layers[-1].weights.shape}: {n_out} "
            f"outputs, but n_outputs_ = {n_outputs}; the weights were edited inconsistently "
            "(refit the model or restore its weights)")
    if isinstance(model, MLPClassifier):
        # several logistic outputs: one per label of a multi-label (indicator) target;
        # a binary problem has one logistic output, a multi-class one softmax
        multilabel = out_act == "logistic" and model.n_outputs_ > 1
        spec = ModelSpec(source=name, layers=tuple(layers), is_classifier=True,
                         classes=np.asarray(model.classes_), multilabel=multilabel,
                         task_fixed=True)
    else:
        spec = ModelSpec(source=name, layers=tuple(layers), is_classifier=False,
                         ravel_output=model.n_outputs_ == 1, task_fixed=True)
    return spec if task is None else spec.with_task(task)
