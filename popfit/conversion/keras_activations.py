"""Keras activation functions as curves popfit can fit.

An activation is identified by its function: Keras's own by identity, any
other by its values on probe inputs (a named curve to float32 precision, or
else an elementwise custom curve fitted through `KerasActivation`; a function
that is not elementwise is refused). `resolve_activation` is used for a Dense
layer's ``activation``, an ``Activation`` layer and the activation layers
(``ReLU``, ``LeakyReLU``, ``ELU``, ``PReLU``; `popfit.conversion.keras_layers`).

Keras is imported only when a Keras model is converted; install it with
``pip install popfit[keras]``.
"""

import numpy as np

from .._optional import import_optional
from ..exceptions import ConversionError
from ..targets import TARGETS, Target
from .spec import HIDDEN_ACTIVATIONS, KERAS_ACTIVATIONS

#: What the Keras reader converts (for messages).
SUPPORTED_TEXT = ("feed-forward graphs of Dense, convolution, average-pooling, "
                  "normalization, reshaping and merge layers (README: supported layers)")
_ACTIVATIONS_TEXT = (
    f"supported activations are {', '.join(HIDDEN_ACTIVATIONS)} (softmax on the output "
    "layer only) and, on hidden layers, any elementwise function (fitted as a custom curve)")


def import_keras():
    """Import Keras 3, or raise an ImportError that says how to install it."""
    keras = import_optional("keras", "popfit.convert (converting a Keras model)")
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


def resolve_activation(keras, fn, layer, verb, output=False, name=None):
    """``(name, curve)`` of activation function ``fn`` of ``layer``, or a ConversionError.

    ``verb`` says how the layer uses it in messages (``"has activation"``,
    ``"applies"``); ``output`` is True after the model's last Dense layer;
    ``name`` describes ``fn`` (default: its ``__name__``).

    Keras's own functions are recognised by identity. Any other function is
    probed on numpy inputs (`_probe`): if it equals a named curve to
    float32 precision it is that curve; an elementwise function on a hidden
    layer is fitted as a custom curve (name ``"custom <function name>"``,
    curve a `popfit.targets.Target`); anything else is refused by name.
    """
    for keras_name, ours in KERAS_ACTIVATIONS.items():
        if fn is getattr(keras.activations, keras_name, None):
            return ours, None
    act = _activation_name(fn) if name is None else name
    where = f"Keras layer {layer.name!r} ({type(layer).__name__}) {verb} {act!r}"
    try:
        y = _probe(fn)
    except Exception as err:  # noqa: BLE001 - any failure of user code is reported
        raise ConversionError(
            f"{where}, which raised {type(err).__name__} ({err}) when evaluated on a batch "
            f"of shape ({len(_PROBE)}, {_COLUMNS}) through keras.ops; only elementwise "
            f"activations that accept a batch of inputs can be converted; {_ACTIVATIONS_TEXT}"
        ) from err
    if y is None:
        raise ConversionError(
            f"{where}, which is not elementwise (its output for one input depends on "
            "the other inputs of the batch, or has another shape), so no population of "
            "neurons can replace it; use an elementwise activation (or softmax on the "
            f"output layer); {_ACTIVATIONS_TEXT}")
    for named in HIDDEN_ACTIVATIONS:  # the same curve as a named one, by value
        if _close(y, TARGETS[named].function(_PROBE)):
            return named, None
    if output:
        raise ConversionError(
            f"{where}, a custom activation on the output layer; custom elementwise "
            "activations are fitted on hidden layers only (the output is decoded, not a "
            "population); give the output layer a linear, sigmoid or softmax activation "
            "and apply your function to ConvertedModel.decoded_output")
    return f"custom {act}", Target(f"Keras activation {act} of layer {layer.name}",
                                   KerasActivation(fn), CUSTOM_DOMAIN, False)

