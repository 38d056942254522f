"""Read Keras 3 models (feed-forward graphs of layers) into a `ModelSpec`.

Every layer is first checked by its converter
(`popfit.conversion.keras_layers`), so an unsupported layer is refused by
name, with the reason, before any work starts; the layers of a Sequential
or functional model are then applied, in topological order, to linear
expressions of populations (`popfit.conversion.keras_graph`), which gives
the populations and the weights between them. Activations are identified by their function
(`popfit.conversion.keras_activations`). A sigmoid output is a classifier
when the model was compiled with a cross-entropy loss (`CLASSIFIER_LOSSES`).

Keras is imported only here, when a Keras model is converted; install it with
``pip install popfit[keras]``.
"""

import warnings

from .._validation import user_stacklevel
from ..exceptions import ConversionError, PopfitTypeError, PopfitValueError
from .keras_activations import SUPPORTED_TEXT, KerasActivation, import_keras  # noqa: F401
from .keras_graph import Graph
from .keras_layers import Convolution, Dense, Merge, converter_for, refusal
from .readers import register_reader
from .spec import ModelSpec

#: Compiled losses (lower case, underscores removed) that make a sigmoid output a classifier.
CLASSIFIER_LOSSES = ("binarycrossentropy", "bce", "binaryfocalcrossentropy",
                     "categoricalcrossentropy", "cce", "sparsecategoricalcrossentropy",
                     "scce", "categoricalfocalcrossentropy")


def _input_tensors(layer):
    """The Keras tensors ``layer`` takes (a list), or None for a shared layer."""
    if len(getattr(layer, "_inbound_nodes", ())) > 1:  # a layer used more than once
        return None
    try:
        inp = layer.input
    except (AttributeError, ValueError):
        return None
    return list(inp) if isinstance(inp, (list, tuple)) else [inp]


def _graph_order(keras, model):
    """``(layers, inputs)``: the layers in topological order and each one's input tensors."""
    layers = [layer for layer in model.layers
              if not isinstance(layer, keras.layers.InputLayer)]
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConversionError(
            f"Keras model {model.name!r} has {len(model.inputs)} inputs and "
            f"{len(model.outputs)} outputs; popfit converts single-input, single-output "
            f"{SUPPORTED_TEXT}")
    if isinstance(model, keras.Sequential):
        previous = [model.inputs[0]]
        inputs = {}
        for layer in layers:
            inputs[id(layer)] = previous
            previous = [layer.output]
        return layers, inputs
    inputs = {}
    for layer in layers:
        tensors = _input_tensors(layer)
        if tensors is None:
            raise ConversionError(
                f"{type(layer).__name__} {layer.name!r} is used more than once in Keras model "
                f"{model.name!r} (a shared layer); popfit converts {SUPPORTED_TEXT} where "
                "each layer is applied once: use a separate layer (with copied weights) "
                "for each use")
        inputs[id(layer)] = tensors
    done, order = {id(model.inputs[0])}, []
    pending = list(layers)
    while pending:  # Kahn's order: a layer once all of its inputs are computed
        ready = [layer for layer in pending
                 if all(id(t) in done for t in inputs[id(layer)])]
        if not ready:
            layer = pending[0]
            raise ConversionError(
                f"{type(layer).__name__} {layer.name!r} of Keras model {model.name!r} takes "
                "a tensor that no layer of the model computes (a nested model or a "
                "functional op); rebuild the model from keras.layers only")
        for layer in ready:
            order.append(layer)
            done.add(id(layer.output))
            pending.remove(layer)
    return order, inputs


def _output_tail(model, order, inputs, converters):
    """The layers whose activation is the model's output activation.

    From the layer computing the output, back through layers of one input
    used only there, up to and including the first Dense, convolution or merge.
    """
    producer = {id(layer.output): layer for layer in order}
    uses = {}
    for layer in order:
        for t in inputs[id(layer)]:
            uses[id(t)] = uses.get(id(t), 0) + 1
    tail, layer = set(), producer.get(id(model.outputs[0]))
    while layer is not None:
        tail.add(id(layer))
        tensors = inputs[id(layer)]
        if isinstance(converters[id(layer)], (Dense, Convolution, Merge)) or len(tensors) != 1 \
                or uses.get(id(tensors[0]), 0) != 1:
            break
        layer = producer.get(id(tensors[0]))
    return tail


def _input_shape(model):
    shape = tuple(model.inputs[0].shape[1:])
    if not shape or any(n is None for n in shape):
        raise ConversionError(
            f"Keras model {model.name!r} takes inputs of shape {tuple(model.inputs[0].shape)} "
            "with an unknown size; popfit needs every axis but the batch fixed: start the "
            "model with keras.Input(shape=...) of fixed sizes")
    return tuple(int(n) for n in shape)


@register_reader("keras", "tf_keras", "tensorflow.python.keras")
def from_keras(model, task=None):
    """Read a built Keras 3 model (`popfit.conversion.keras_layers` lists its layers).

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
            "yet); start it with keras.Input(shape=...), or call or fit it first")
    if not isinstance(model, keras.Sequential) and not hasattr(model, "inputs"):
        raise ConversionError(
            f"Keras model {model.name!r} is a subclassed model ({type(model).__name__} "
            "defines its own call()), whose layer graph cannot be read; supported are "
            "keras.Sequential models and functional models (keras.Model(inputs, outputs)) "
            f"that are {SUPPORTED_TEXT}; rebuild it as one of those with the same "
            "layers and copy the weights over (layer.set_weights)")
    converters = {}
    for layer in model.layers:  # every layer is checked before any work starts
        if isinstance(layer, keras.Model):
            raise refusal(layer, "a model nested in a model is not supported; build one "
                                 "flat Sequential or functional model from its layers")
        converter = converter_for(keras, layer)
        reason = converter.refuse(keras, layer)
        if reason is not None:
            raise refusal(layer, reason)
        converters[id(layer)] = converter
    shape = _input_shape(model)
    order, inputs = _graph_order(keras, model)
    tail = _output_tail(model, order, inputs, converters)
    graph = Graph()
    tensors = {id(model.inputs[0]): graph.input(shape)}
    for layer in order:
        args = [tensors[id(t)] for t in inputs[id(layer)]]
        tensors[id(layer.output)] = converters[id(layer)].apply(
            keras, layer, args, graph, id(layer) in tail)
    out = tensors[id(model.outputs[0])]
    act = (out.output_activation or ("linear", None))[0]
    if act == "softmax" and len(out.shape) > 1:
        raise ConversionError(
            f"Keras model {model.name!r} ends with a softmax over outputs of shape "
            f"{out.shape}; popfit applies the output softmax to flat outputs: Flatten "
            "before the output layer")
    spec = ModelSpec(source=type(model).__name__, layers=graph.finish(out, model.name),
                     input_shape=shape)
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
