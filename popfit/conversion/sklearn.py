"""Read scikit-learn `MLPClassifier` / `MLPRegressor` models (alone or in a Pipeline).

Only public fitted attributes are read: ``coefs_``, ``intercepts_``,
``activation``, ``out_activation_``, ``n_outputs_`` and ``classes_``. A
`sklearn.pipeline.Pipeline` ending in an MLP converts when every step before
it is affine at inference: each has a small reader (`register_step`) giving
the map ``x -> x @ matrix + offset``, folded exactly into the first layer's
weights and bias; any other step is refused by name.
"""

import dataclasses
import importlib

import numpy as np

from ..exceptions import ConversionError, PopfitTypeError, PopfitValueError
from .readers import register_reader
from .spec import SKLEARN_ACTIVATIONS, LayerSpec, ModelSpec, affine_into, source_names

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


#: (dotted class path, step reader ``read(step) -> (matrix, offset)``), in registration order.
_STEPS = []


def register_step(*class_paths):
    """Register the decorated ``read(step) -> (matrix, offset)`` for Pipeline steps.

    The step must compute ``x @ matrix + offset`` at inference (``matrix``
    ``(n_in, n_out)``, or a vector for elementwise scaling); the reader may
    return a string instead: why this fitted step is not affine.

    Parameters
    ----------
    *class_paths : str
        Dotted class names (``"sklearn.preprocessing.StandardScaler"``),
        resolved when a pipeline is read.
    """
    def decorate(read):
        _STEPS.append((class_paths, read))
        return read
    return decorate


def _resolve(path):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name, None)


def _step_names():
    return ", ".join(path.rpartition(".")[2] for paths, _ in _STEPS for path in paths)


@register_step("sklearn.preprocessing.StandardScaler")
def _standard_scaler(step):
    # mean_ is set (and not used) with with_mean=False: the flags say what transform does
    n = step.n_features_in_
    mean = np.asarray(step.mean_, dtype=float) if step.with_mean else np.zeros(n)
    scale = np.asarray(step.scale_, dtype=float) if step.with_std else np.ones(n)
    return 1.0 / scale, -mean / scale


@register_step("sklearn.preprocessing.MinMaxScaler")
def _min_max_scaler(step):
    if step.clip:
        return ("clip=True clips transformed values to feature_range, which is not "
                "affine; refit the pipeline with MinMaxScaler(clip=False)")
    return step.scale_, step.min_


@register_step("sklearn.preprocessing.MaxAbsScaler")
def _max_abs_scaler(step):
    return 1.0 / step.scale_, np.zeros(len(step.scale_))


@register_step("sklearn.decomposition.PCA")
def _pca(step):
    matrix = np.asarray(step.components_, dtype=float).T
    if step.whiten:  # as PCA._transform: tiny variances clipped at eps
        scale = np.sqrt(np.asarray(step.explained_variance_, dtype=float))
        scale[scale < np.finfo(scale.dtype).eps] = np.finfo(scale.dtype).eps
        matrix = matrix / scale
    return matrix, -np.asarray(step.mean_, dtype=float) @ matrix


def _step_map(name, step):
    """``(matrix, offset)`` of a fitted affine Pipeline step, or a ConversionError naming it."""
    from sklearn.utils.validation import NotFittedError, check_is_fitted

    what = f"Pipeline step {name!r} ({type(step).__name__})"
    for paths, read in _STEPS:
        classes = tuple(c for c in map(_resolve, paths) if isinstance(c, type))
        if type(step) in classes:  # not subclasses: they may transform differently
            break
    else:
        raise ConversionError(
            f"{what} is not affine at inference as far as popfit knows: it folds only "
            f"{_step_names()} steps into the MLP's first layer; convert the MLP alone "
            "(pipeline[-1]) and present it pipeline[:-1].transform(X), or refit the "
            "pipeline without that step")
    try:
        check_is_fitted(step)
    except NotFittedError:
        raise PopfitValueError(
            f"{what} is not fitted yet; call the pipeline's fit(X, y) before converting "
            "it") from None
    mapped = read(step)
    if isinstance(mapped, str):
        raise ConversionError(f"{what} is not affine: {mapped}")
    return tuple(np.asarray(m, dtype=float) for m in mapped)


def _from_pipeline(pipeline, task):
    """Read a Pipeline of affine steps ending in an MLP: the steps folded into its first layer."""
    steps = list(pipeline.steps)
    name, final = steps[-1]
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    if not isinstance(final, (MLPClassifier, MLPRegressor)):
        raise PopfitTypeError(
            f"a Pipeline must end in an MLPClassifier or MLPRegressor to be converted "
            f"(its last step {name!r} is a {type(final).__name__})")
    spec = from_sklearn(final, task=task)
    first = spec.layers[0]
    weights, bias, folded = first.weights, first.bias, []
    for step_name, step in reversed(steps[:-1]):
        if step is None or step == "passthrough":
            continue
        matrix, offset = _step_map(step_name, step)
        n_out = len(offset)
        if n_out != weights.shape[0]:
            raise ConversionError(
                f"Pipeline step {step_name!r} ({type(step).__name__}) gives {n_out} "
                f"features, but the next step takes {weights.shape[0]}")
        weights, bias = affine_into(weights, bias, matrix, offset)
        folded.insert(0, step_name)
    if not folded:
        return dataclasses.replace(spec, source="Pipeline")
    layer = dataclasses.replace(first, weights=weights, bias=bias,
                                label="+".join(folded + [first.label]))
    return dataclasses.replace(spec, source="Pipeline", layers=(layer, *spec.layers[1:]))


@register_reader("sklearn")
def from_sklearn(model, task=None):
    """Read a fitted `MLPClassifier` or `MLPRegressor` (weights ``coefs_``, ``intercepts_``),
    or a `Pipeline` of affine steps (`register_step`) ending in one.

    ``task``, if given, must agree with the estimator's class.
    """
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        return _from_pipeline(model, task)
    if not isinstance(model, (MLPClassifier, MLPRegressor)):
        raise PopfitTypeError(
            f"scikit-learn models must be MLPClassifier or MLPRegressor, or a Pipeline of "
            f"affine steps ({_step_names()}) ending in one (got {type(model).__name__})")
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
        layers.append(LayerSpec(
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
