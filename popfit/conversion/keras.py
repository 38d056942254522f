"""Read Keras 3 models (chains of ``Dense`` and ``Activation`` layers) into a `ModelSpec`.

Keras is imported only here, when a Keras model is converted; install it with
``pip install popfit[keras]``.
"""

import numpy as np

from ..exceptions import ConversionError, PopfitTypeError, PopfitValueError
from .readers import register_reader
from .spec import HIDDEN_ACTIVATIONS, KERAS_ACTIVATIONS, DenseSpec, ModelSpec

SUPPORTED_LAYERS = "Dense and Activation (plus the InputLayer)"
_SUPPORTED_TEXT = (
    f"supported layers are {SUPPORTED_LAYERS}; supported activations are "
    f"{', '.join(HIDDEN_ACTIVATIONS)} (softmax on the output layer only)")


def import_keras():
    """Import Keras 3, or raise an ImportError that says how to install it."""
    try:
        import keras
    except ImportError as err:
        raise ImportError(
            "popfit.convert needs Keras 3 to convert a Keras model; install it with "
            "`pip install popfit[keras]`") from err
    major = int(str(getattr(keras, "__version__", "0")).split(".")[0] or 0)
    if major < 3:
        raise ImportError(
            f"popfit.convert needs Keras >= 3 (found {keras.__version__}); install it "
            "with `pip install popfit[keras]`")
    return keras


def _activation_name(fn):
    return getattr(fn, "__name__", None) or type(fn).__name__


def _supported_activation(layer, verb):
    """The layer's activation name, or a ConversionError naming layer and activation."""
    act = _activation_name(layer.activation)
    if act not in KERAS_ACTIVATIONS:
        raise ConversionError(
            f"Keras layer {layer.name!r} ({type(layer).__name__}) {verb} {act!r}, "
            f"which is not supported; {_SUPPORTED_TEXT}")
    return KERAS_ACTIVATIONS[act]


def _layers_in_order(keras, model):
    """The model's layers, checking that a functional model is a single chain."""
    layers = [layer for layer in model.layers
              if not isinstance(layer, keras.layers.InputLayer)]
    if isinstance(model, keras.Sequential):
        return layers
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConversionError(
            f"Keras model {model.name!r} has {len(model.inputs)} inputs and "
            f"{len(model.outputs)} outputs; only single-input, single-output chains of "
            f"layers are supported ({SUPPORTED_LAYERS})")
    previous = model.inputs[0]
    for layer in layers:
        try:
            inp = layer.input
        except (AttributeError, ValueError):  # a layer used more than once
            inp = None
        if inp is not previous:
            raise ConversionError(
                f"Keras layer {layer.name!r} ({type(layer).__name__}) is not fed "
                "by the previous layer alone; only chains (each layer feeding the next) "
                f"are supported ({SUPPORTED_LAYERS})")
        previous = layer.output
    if layers and layers[-1].output is not model.outputs[0]:
        raise ConversionError(
            f"Keras model {model.name!r} is not a single chain of layers ending "
            "at its output")
    return layers


@register_reader("keras", "tf_keras", "tensorflow.python.keras")
def from_keras(model):
    """Read a built Keras 3 model: Dense layers (with their activations) and Activation layers."""
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
            f"that chain {SUPPORTED_LAYERS}; rebuild it as one of those with the same "
            "layers and copy the weights over (layer.set_weights)")
    try:
        rank = len(model.inputs[0].shape)
    except (AttributeError, IndexError, TypeError, ValueError):
        rank = 2
    if rank != 2:
        raise ConversionError(
            f"Keras model {model.name!r} takes inputs of shape "
            f"{tuple(model.inputs[0].shape)}; only flat inputs (batch, n_features) are "
            "supported")

    ops = []  # [weights, bias, activation, label]
    for layer in _layers_in_order(keras, model):
        cls = type(layer).__name__
        if isinstance(layer, keras.layers.Dense):
            act = _supported_activation(layer, "has activation")
            # `.value` (the backend tensor), not the Variable itself: numpy 2 warns
            # (DeprecationWarning) about the Variable's __array__, which lacks `copy`
            w = keras.ops.convert_to_numpy(layer.kernel.value).astype(float)
            b = (np.zeros(w.shape[1]) if layer.bias is None
                 else keras.ops.convert_to_numpy(layer.bias.value).astype(float))
            ops.append([w, b, act, layer.name])
        elif isinstance(layer, keras.layers.Activation):
            act = _supported_activation(layer, "applies")
            if act == "linear":  # the identity: nothing to convert
                continue
            if not ops:
                raise ConversionError(
                    f"Keras layer {layer.name!r} (Activation {act!r}) comes before "
                    "any Dense layer; the model input must go into a Dense layer first")
            if ops[-1][2] != "linear":
                raise ConversionError(
                    f"Keras layer {layer.name!r} applies {act!r} after "
                    f"{ops[-1][3]!r} already applied {ops[-1][2]!r}; only one nonlinearity "
                    "per Dense layer is supported")
            ops[-1][2] = act
            ops[-1][3] = f"{ops[-1][3]}+{layer.name}"
        else:
            raise ConversionError(
                f"Keras layer {layer.name!r} of type {cls} is not supported; "
                f"{_SUPPORTED_TEXT}")
    if len(ops) < 2:
        raise ConversionError(
            f"Keras model {model.name!r} has {len(ops)} Dense layer(s); at least "
            "two are needed (a hidden layer whose units become neurons, and an output "
            "layer)")
    for w, b, act, label in ops[:-1]:
        if act not in HIDDEN_ACTIVATIONS:
            raise ConversionError(
                f"Keras layer {label!r} has activation {act!r}, which is only "
                f"supported on the output layer; hidden activations supported are "
                f"{', '.join(HIDDEN_ACTIVATIONS)}")
    layers = tuple(DenseSpec(weights=w, bias=b, activation=act, label=label)
                   for w, b, act, label in ops)
    out = layers[-1]
    is_classifier = out.activation == "softmax"
    return ModelSpec(source=type(model).__name__, layers=layers, is_classifier=is_classifier,
                     classes=np.arange(out.n_out) if is_classifier else None)
