"""Read Keras 3 models (chains of ``Dense`` and ``Activation`` layers) into a `ModelSpec`.

Activations are identified by their function: Keras's own by identity, any
other by its values on probe inputs (a named curve to float32 precision, or
else an elementwise custom curve fitted through `KerasActivation`; a function
that is not elementwise is refused). A sigmoid output is a classifier when
the model was compiled with a cross-entropy loss (`CLASSIFIER_LOSSES`).

Keras is imported only here, when a Keras model is converted; install it with
``pip install popfit[keras]``.
"""

import warnings

import numpy as np

from .._validation import user_stacklevel
from ..exceptions import ConversionError, PopfitTypeError, PopfitValueError
from .readers import register_reader
from .spec import HIDDEN_ACTIVATIONS, KERAS_ACTIVATIONS, DenseSpec, ModelSpec

SUPPORTED_LAYERS = "Dense and Activation (plus the InputLayer)"
_SUPPORTED_TEXT = (
    f"supported layers are {SUPPORTED_LAYERS}; supported activations are "
    f"{', '.join(HIDDEN_ACTIVATIONS)} (softmax on the output layer only) and, on hidden "
    "layers, any elementwise function (fitted as a custom curve)")


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


#: Inputs at which an activation function is probed: whether it is elementwise
#: and whether it is one of the named curves (to float32 precision). 256 values,
#: so a probe batch (256, 4) has the shape of `KerasActivation`'s smallest one.
_PROBE = np.sort(np.concatenate([np.linspace(-8.0, 8.0, 136), np.geomspace(1e-3, 1e4, 60),
                                 -np.geomspace(1e-3, 1e4, 60)]))
#: Columns of the batches a Keras activation is evaluated on.
_COLUMNS = 4
#: Fewest values per evaluation (inputs are padded to a power of two at least
#: this large, so the backend compiles few distinct shapes).
_MIN_BATCH = 1024
#: Default domain of a custom (unnamed) activation fitted without calibration data.
CUSTOM_DOMAIN = (-3.0, 3.0)
#: Compiled losses (lower case, underscores removed) that make a sigmoid output a classifier.
CLASSIFIER_LOSSES = ("binarycrossentropy", "bce", "binaryfocalcrossentropy",
                     "categoricalcrossentropy", "cce", "sparsecategoricalcrossentropy",
                     "scce", "categoricalfocalcrossentropy")


def _activation_name(fn):
    return getattr(fn, "__name__", None) or type(fn).__name__


def _evaluate(function, batch):
    """``function`` applied by Keras to a 2-D numpy ``batch``, as float64."""
    keras = import_keras()
    x = keras.ops.convert_to_tensor(np.asarray(batch).astype(keras.backend.floatx()))
    return np.asarray(keras.ops.convert_to_numpy(function(x)), dtype=float)


class KerasActivation:
    """An elementwise Keras activation function as a vectorized numpy function.

    The input is flattened, padded to a power of two (at least `_MIN_BATCH`
    values) and evaluated by Keras as a batch of shape ``(m, 4)`` in Keras's
    float type (``keras.backend.floatx()``), so a backend that compiles per
    shape (JAX) compiles few; the result is float64 of the input's shape. It
    pickles when the wrapped function does.
    """

    def __init__(self, function):
        self.function = function

    def __call__(self, x):
        x = np.asarray(x, dtype=float)
        n = x.size
        size = max(_MIN_BATCH, 1 << max(n - 1, 0).bit_length())
        flat = np.zeros(size)
        flat[:n] = x.ravel()
        y = _evaluate(self.function, flat.reshape(-1, _COLUMNS))
        return y.ravel()[:n].reshape(x.shape)


def _close(a, b):
    """Equal to float32 precision (NaN equals NaN, inf equals inf)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    finite = np.isfinite(a) & np.isfinite(b)
    scale = max(1.0, float(np.max(np.abs(a[finite]), initial=0.0)))
    return bool(np.allclose(a, b, rtol=1e-5, atol=1e-6 * scale, equal_nan=True))


def _probe(function):
    """``function``'s values at `_PROBE`, or None if it is not elementwise.

    Two batches of shape (256, 4) are evaluated whose columns hold the probe
    inputs in different orders, repeated, or one input throughout: an
    elementwise function gives each input the same output wherever it sits
    (a function of the row, such as softmax, or of the batch, such as a
    normalization, does not).
    """
    n = len(_PROBE)
    rng = np.random.default_rng(0)
    index = [np.stack([np.arange(n), rng.permutation(n), np.arange(n)[::-1],
                       rng.permutation(n)], axis=1),
             np.stack([rng.permutation(n), np.full(n, n // 2), np.tile(np.arange(n // 2), 2),
                       rng.integers(0, n, n)], axis=1)]
    outs = [_evaluate(function, _PROBE[i]) for i in index]
    if any(out.shape != i.shape for out, i in zip(outs, index)):
        return None
    ref = outs[0][:, 0]
    if not all(_close(out, ref[i]) for out, i in zip(outs, index)):
        return None
    return ref


def _supported_activation(keras, layer, verb, output=False):
    """``(name, curve)`` of the layer's activation, or a ConversionError naming it.

    Keras's own functions are recognised by identity. Any other function is
    probed on numpy inputs (`_probe`): if it equals a named curve to
    float32 precision it is that curve; an elementwise function on a hidden
    layer is fitted as a custom curve (name ``"custom <function name>"``,
    curve a `popfit.targets.Target`); anything else is refused by name.
    """
    from ..targets import TARGETS, Target

    fn = layer.activation
    for name, ours in KERAS_ACTIVATIONS.items():
        if fn is getattr(keras.activations, name, None):
            return ours, None
    act = _activation_name(fn)
    where = f"Keras layer {layer.name!r} ({type(layer).__name__}) {verb} {act!r}"
    try:
        y = _probe(fn)
    except Exception as err:  # noqa: BLE001 - any failure of user code is reported
        raise ConversionError(
            f"{where}, which raised {type(err).__name__} ({err}) when evaluated on a batch "
            f"of shape ({len(_PROBE)}, {_COLUMNS}) through keras.ops; only elementwise "
            f"activations that accept a batch of inputs can be converted; {_SUPPORTED_TEXT}"
        ) from err
    if y is None:
        raise ConversionError(
            f"{where}, which is not elementwise (its output for one input depends on "
            "the other inputs of the batch, or has another shape), so no population of "
            "neurons can replace it; use an elementwise activation (or softmax on the "
            f"output layer); {_SUPPORTED_TEXT}")
    for name in HIDDEN_ACTIVATIONS:  # the same curve as a named one, by value
        if _close(y, TARGETS[name].function(_PROBE)):
            return name, None
    if output:
        raise ConversionError(
            f"{where}, a custom activation on the output layer; custom elementwise "
            "activations are fitted on hidden layers only (the output is decoded, not a "
            "population); give the output layer a linear, sigmoid or softmax activation "
            "and apply your function to ConvertedModel.decoded_output")
    return f"custom {act}", Target(f"Keras activation {act} of layer {layer.name}",
                                   KerasActivation(fn), CUSTOM_DOMAIN, False)


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
def from_keras(model, task=None):
    """Read a built Keras 3 model: Dense layers (with their activations) and Activation layers.

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

    ops = []  # [weights, bias, activation, label, curve]
    layers = _layers_in_order(keras, model)
    last_dense = max((i for i, layer in enumerate(layers)
                      if isinstance(layer, keras.layers.Dense)), default=-1)
    for k, layer in enumerate(layers):
        cls = type(layer).__name__
        if isinstance(layer, keras.layers.Dense):
            act, curve = _supported_activation(keras, layer, "has activation",
                                               output=k == last_dense)
            # `.value` (the backend tensor), not the Variable itself: numpy 2 warns
            # (DeprecationWarning) about the Variable's __array__, which lacks `copy`
            w = keras.ops.convert_to_numpy(layer.kernel.value).astype(float)
            b = (np.zeros(w.shape[1]) if layer.bias is None
                 else keras.ops.convert_to_numpy(layer.bias.value).astype(float))
            ops.append([w, b, act, layer.name, curve])
        elif isinstance(layer, keras.layers.Activation):
            act, curve = _supported_activation(keras, layer, "applies",
                                               output=k > last_dense)
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
            ops[-1][4] = curve
        else:
            raise ConversionError(
                f"Keras layer {layer.name!r} of type {cls} is not supported; "
                f"{_SUPPORTED_TEXT}")
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
