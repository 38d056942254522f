"""Read Keras 3 models (feed-forward chains of Dense and other layers) into a `ModelSpec`.

Every layer is first checked by its converter
(`popfit.conversion.keras_layers`), so an unsupported layer is refused by
name, with the reason, before any work starts; the layers of a Sequential
model, or of a functional one that is a single chain, are then folded into a
chain of dense layers. Activations are identified by their function
(`popfit.conversion.keras_activations`). A sigmoid output is a classifier
when the model was compiled with a cross-entropy loss (`CLASSIFIER_LOSSES`).

Keras is imported only here, when a Keras model is converted; install it with
``pip install popfit[keras]``.
"""

import warnings

from .._validation import user_stacklevel
from ..exceptions import ConversionError, PopfitTypeError, PopfitValueError
from .keras_activations import SUPPORTED_TEXT, KerasActivation, import_keras  # noqa: F401
from .keras_layers import DenseChain, converter_for, refusal
from .readers import register_reader
from .spec import HIDDEN_ACTIVATIONS, DenseSpec, ModelSpec

#: Compiled losses (lower case, underscores removed) that make a sigmoid output a classifier.
CLASSIFIER_LOSSES = ("binarycrossentropy", "bce", "binaryfocalcrossentropy",
                     "categoricalcrossentropy", "cce", "sparsecategoricalcrossentropy",
                     "scce", "categoricalfocalcrossentropy")


def _layers_in_order(keras, model):
    """The model's layers, checking that a functional model is a single chain."""
    layers = [layer for layer in model.layers
              if not isinstance(layer, keras.layers.InputLayer)]
    if isinstance(model, keras.Sequential):
        return layers
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConversionError(
            f"Keras model {model.name!r} has {len(model.inputs)} inputs and "
            f"{len(model.outputs)} outputs; popfit converts single-input, single-output "
            f"{SUPPORTED_TEXT}")
    previous = model.inputs[0]
    for layer in layers:
        try:
            inp = layer.input
        except (AttributeError, ValueError):  # a layer used more than once
            inp = None
        if inp is not previous:
            raise ConversionError(
                f"{type(layer).__name__} {layer.name!r} is not fed by the previous layer "
                f"alone; popfit converts {SUPPORTED_TEXT}, each layer feeding the next")
        previous = layer.output
    if layers and layers[-1].output is not model.outputs[0]:
        raise ConversionError(
            f"Keras model {model.name!r} is not a single chain of layers ending "
            "at its output")
    return layers


@register_reader("keras", "tf_keras", "tensorflow.python.keras")
def from_keras(model, task=None):
    """Read a built Keras 3 model whose layers chain (`popfit.conversion.keras_layers`).

    ``task`` (``"classifier"``, ``"regressor"`` or None) overrides the task
    read from the model (`_task_from_model`).
    """
    keras = import_keras()
    if not isinstance(model, keras.Model):
        raise PopfitTypeError(
            f"a Keras model must be a Keras 3 keras.Model (Sequential or "
            f"functional) (got {type(model).__module__}.{type(model).__name__}); Keras 2 / "
            "tf.keras models and single layers are not supported")
    if not model.built:
        raise PopfitValueError(
            f"Keras model {model.name!r} is not built (its weights do not exist "
            "yet); start it with keras.Input(shape=(n_features,)), or call or fit it first")
    if not isinstance(model, keras.Sequential) and not hasattr(model, "inputs"):
        raise ConversionError(
            f"Keras model {model.name!r} is a subclassed model ({type(model).__name__} "
            "defines its own call()), whose layer graph cannot be read; supported are "
            "keras.Sequential models and functional models (keras.Model(inputs, outputs)) "
            f"that are {SUPPORTED_TEXT}; rebuild it as one of those with the same "
            "layers and copy the weights over (layer.set_weights)")
    converters = []
    for layer in model.layers:  # every layer is checked before any work starts
        converter = converter_for(keras, layer)
        reason = converter.refuse(keras, layer)
        if reason is not None:
            raise refusal(layer, reason)
        converters.append(converter)
    converters = dict(zip(map(id, model.layers), converters))
    layers = _layers_in_order(keras, model)
    last_dense = max((i for i, layer in enumerate(layers)
                      if isinstance(layer, keras.layers.Dense)), default=-1)
    chain = DenseChain(keras)
    for k, layer in enumerate(layers):
        chain.output = k >= last_dense
        converters[id(layer)].fold(keras, layer, chain)
    ops = chain.finish()
    if len(ops) < 2:
        raise ConversionError(
            f"Keras model {model.name!r} has {len(ops)} Dense layer(s); at least "
            "two are needed (a hidden layer whose units become neurons, and an output "
            "layer)")
    for w, b, act, label, curve in ops[:-1]:
        if curve is None and act not in HIDDEN_ACTIVATIONS:
            raise ConversionError(
                f"Keras layer {label!r} has activation {act!r}, which is only "
                f"supported on the output layer; hidden activations supported are "
                f"{', '.join(HIDDEN_ACTIVATIONS)} and elementwise functions")
    layers = tuple(DenseSpec(weights=w, bias=b, activation=act, label=label, curve=curve)
                   for w, b, act, label, curve in ops)
    spec = ModelSpec(source=type(model).__name__, layers=layers)
    if task is None:
        task = _task_from_model(model, spec.output)
    return spec if task is None else spec.with_task(task)


def _loss_name(loss):
    """The compiled loss's name, lower case without underscores (None if not compiled)."""
    if isinstance(loss, (list, tuple)) and len(loss) == 1:
        loss = loss[0]
    if isinstance(loss, dict) and len(loss) == 1:
        loss = next(iter(loss.values()))
    if loss is None:
        return None
    name = loss if isinstance(loss, str) else (
        getattr(loss, "name", None) or getattr(loss, "__name__", None)
        or type(loss).__name__)
    return str(name).lower().replace("_", "")


def _task_from_model(model, out):
    """``"classifier"`` for a softmax output, or a sigmoid output compiled with a
    cross-entropy loss; None (a regressor) otherwise. An uncompiled sigmoid
    output, or a linear one compiled with a cross-entropy loss (on logits), is
    converted as a regressor with a warning."""
    if out.activation == "softmax":
        return "classifier"
    loss = _loss_name(getattr(model, "loss", None))
    if out.activation == "linear" and loss in CLASSIFIER_LOSSES:
        warnings.warn(
            f"Keras model {model.name!r} was compiled with a classifier's loss ({loss}, on "
            f"logits) but its output layer {out.label!r} is linear; it is converted as a "
            "regressor returning the logits, as Keras's predict does; for class labels, "
            "predict_proba and accuracy, end the model with a sigmoid or softmax "
            "activation (the same weights) and convert that", UserWarning,
            stacklevel=user_stacklevel())
        return None
    if out.activation != "sigmoid":
        return None
    if loss is None:
        warnings.warn(
            f"Keras model {model.name!r} has a sigmoid output but no compiled loss that "
            "says whether it is a classifier; it is converted as a regressor (predict "
            "returns the outputs in (0, 1), score is R^2); pass task='classifier' for "
            "class labels, predict_proba and accuracy, or task='regressor' to silence "
            "this warning", UserWarning, stacklevel=user_stacklevel())
        return None
    return "classifier" if loss in CLASSIFIER_LOSSES else None
