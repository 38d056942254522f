"""One small converter per Keras layer kind, folding the layer into a chain of dense layers.

A converter is registered for Keras layer classes by name
(`register_layer`, resolved in ``keras.layers`` when a model is read, so
importing popfit imports no Keras). It says whether it can take a layer
(`LayerConverter.refuse` returns the reason it cannot, checked for every
layer before any work starts) and folds the layer into a `DenseChain`
(`LayerConverter.fold`), exactly and without new nodes:

- ``Dense``: a new dense layer (its activation as an ``Activation`` layer's);
- ``BatchNormalization`` (inference statistics): an elementwise affine map,
  folded into the preceding Dense's weights and bias when no activation was
  applied since, else into the next Dense's inputs (`DenseChain.add_affine`);
- ``Activation``, ``ReLU``, ``LeakyReLU``, ``ELU``, ``PReLU`` (one slope shared by
  all units), ``Softmax``: the last dense layer's activation
  (`popfit.conversion.keras_activations.resolve_activation`);
- inference-time identities (``Dropout`` and its variants, ``GaussianNoise``,
  ``ActivityRegularization``, ``InputLayer``, ``Flatten`` on flat inputs): nothing.

Recurrent, merge, convolution and pooling layers are refused with the
reason (`Refused`); so is any unregistered layer kind.
"""

import abc
import functools

import numpy as np

from ..exceptions import ConversionError
from .keras_activations import SUPPORTED_TEXT, resolve_activation
from .spec import affine_after, affine_into

#: (Keras layer class names, converter), in registration order (first match wins).
_CONVERTERS = []


def register_layer(*class_names):
    """Register the decorated `LayerConverter` subclass (or instance) for ``class_names``.

    Parameters
    ----------
    *class_names : str
        Names in ``keras.layers`` (``"Dense"``, ``"BatchNormalization"``); a
        layer is converted by the first registered converter one of whose
        classes it is an instance of. Names this Keras version lacks are skipped.
    """
    def decorate(converter):
        _CONVERTERS.append((class_names, converter() if isinstance(converter, type)
                            else converter))
        return converter
    return decorate


def converter_for(keras, layer):
    """The registered converter that takes ``layer`` (`Refused` if none does)."""
    for names, converter in _CONVERTERS:
        classes = tuple(c for c in (getattr(keras.layers, n, None) for n in names)
                        if isinstance(c, type))
        if classes and isinstance(layer, classes):
            return converter
    return Refused(f"layers of type {type(layer).__name__} are not supported")


def refusal(layer, reason):
    """The ConversionError for ``layer`` that cannot be converted, with ``reason``."""
    why, _, fix = reason.partition("; ")
    return ConversionError(
        f"{type(layer).__name__} {layer.name!r}: {why}; popfit converts {SUPPORTED_TEXT}"
        + (f"; {fix}" if fix else ""))


def input_shape(layer):
    """The shape of ``layer``'s input, or None if Keras cannot say (a shared layer)."""
    try:
        return tuple(layer.input.shape)
    except (AttributeError, ValueError, TypeError):
        return None


def _not_flat(layer, what):
    """Why ``layer`` cannot take its input when that is not flat, else None."""
    shape = input_shape(layer)
    if shape is None or len(shape) == 2:
        return None
    return (f"{what} inputs of shape {shape}, not flat (batch, n_features) ones; "
            "convolutional and other multi-dimensional models are not supported yet: "
            "flatten the data before the model (X.reshape(len(X), -1)) and start it with "
            "keras.Input(shape=(n_features,))")


def to_numpy(keras, variable):
    """A Keras weight (Variable or tensor) as a float64 numpy array."""
    # `.value` (the backend tensor), not the Variable itself: numpy 2 warns
    # (DeprecationWarning) about the Variable's __array__, which lacks `copy`
    return keras.ops.convert_to_numpy(getattr(variable, "value", variable)).astype(float)


class DenseChain:
    """The dense layers read so far (``ops``), and an affine map waiting for the next Dense.

    ``ops`` holds ``[weights, bias, activation, label, curve]`` per dense
    layer; ``output`` is set by the reader: True from the model's last Dense
    layer on (its activation is the output's).
    """

    def __init__(self, keras):
        self.keras = keras
        self.ops = []
        self.output = False
        self._pending = None  # (scale, shift, labels) on the next Dense's inputs

    def add_dense(self, weights, bias, label):
        if self._pending is not None:
            scale, shift, labels = self._pending
            weights, bias = affine_into(weights, bias, scale, shift)
            label = "+".join(labels + [label])
            self._pending = None
        self.ops.append([weights, bias, "linear", label, None])

    def add_affine(self, scale, shift, label):
        """Fold ``x -> x * scale + shift`` (elementwise) at this point of the chain."""
        if self.ops and self.ops[-1][2] == "linear" and self._pending is None:
            op = self.ops[-1]  # no activation since the last Dense: into its outputs
            op[0], op[1] = affine_after(op[0], op[1], scale, shift)
            op[3] = f"{op[3]}+{label}"
        elif self._pending is None:
            self._pending = (scale, shift, [label])
        else:  # two affine maps in a row compose
            s0, t0, labels = self._pending
            self._pending = (s0 * scale, t0 * scale + shift, labels + [label])

    def add_activation(self, act, curve, label, own=False):
        """Apply activation ``act`` (``curve``: a custom one) to the last dense layer.

        ``own``: it is that Dense layer's own ``activation`` (``label`` is not
        added to the layer's label again).
        """
        if act == "linear":  # the identity: nothing to convert
            return
        if not self.ops:
            raise ConversionError(
                f"Keras layer {label!r} (activation {act!r}) comes before any Dense "
                "layer; the model input must go into a Dense layer first")
        op = self.ops[-1]
        if op[2] != "linear" or self._pending is not None:
            raise ConversionError(
                f"Keras layer {label!r} applies {act!r} after {op[3]!r} already applied "
                f"{op[2]!r}; only one nonlinearity per Dense layer is supported")
        op[2], op[4] = act, curve
        if not own:
            op[3] = f"{op[3]}+{label}"

    def finish(self):
        """The dense layers; refuses an affine map left after the last Dense's activation."""
        if self._pending is not None:
            raise ConversionError(
                f"Keras layer(s) {'+'.join(self._pending[2])} come after the output "
                f"activation of {self.ops[-1][3]!r}; a normalization after the output "
                "activation cannot be folded into a Dense layer: remove it, or put it "
                "before the output activation")
        return self.ops


class LayerConverter:
    """Converts one kind of Keras layer: `refuse` says why it cannot, `fold` adds it."""

    def refuse(self, keras, layer):
        """Why ``layer`` cannot be converted (``"why; what to do"``), or None."""

    def fold(self, keras, layer, chain):
        """Add ``layer`` to ``chain`` (a `DenseChain`)."""


class Refused(LayerConverter):
    """A layer kind popfit does not convert, with the reason and the fix."""

    def __init__(self, reason):
        self.reason = reason

    def refuse(self, keras, layer):
        return self.reason


register_layer("SimpleRNN", "LSTM", "GRU", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D",
               "ConvLSTM3D", "TimeDistributed")(Refused(
                   "recurrent layers are not supported"))
register_layer("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
               "Dot")(Refused(
                   "merge layers (several inputs) are not supported; rebuild the model as a "
                   "single chain, each layer feeding the next"))
register_layer("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
               "Conv3DTranspose", "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D",
               "DepthwiseConv2D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
               "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
               "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
               "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D")(Refused(
                   "convolution and pooling layers are not supported yet"))


@register_layer("InputLayer", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
                "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
                "ActivityRegularization")
class Identity(LayerConverter):
    """A layer that is the identity at inference: dropped."""


@register_layer("Flatten")
class Flatten(LayerConverter):
    """The identity on flat inputs; refused on multi-dimensional ones."""

    def refuse(self, keras, layer):
        return _not_flat(layer, "it flattens")


@register_layer("Dense")
class Dense(LayerConverter):
    """A dense layer; its activation is applied as an Activation layer's."""

    def refuse(self, keras, layer):
        return _not_flat(layer, "it gets")

    def fold(self, keras, layer, chain):
        w = to_numpy(keras, layer.kernel)
        b = np.zeros(w.shape[1]) if layer.bias is None else to_numpy(keras, layer.bias)
        chain.add_dense(w, b, layer.name)
        act, curve = resolve_activation(keras, layer.activation, layer, "has activation",
                                        output=chain.output)
        chain.add_activation(act, curve, layer.name, own=True)


@register_layer("BatchNormalization")
class BatchNormalization(LayerConverter):
    """``gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta``: affine."""

    def refuse(self, keras, layer):
        flat = _not_flat(layer, "it normalizes")
        if flat is None and layer.axis not in (-1, 1):
            return (f"it normalizes axis {layer.axis} of flat inputs, not the features "
                    "(axis -1); use BatchNormalization(axis=-1)")
        return flat

    def fold(self, keras, layer, chain):
        mean = to_numpy(keras, layer.moving_mean)
        scale = 1.0 / np.sqrt(to_numpy(keras, layer.moving_variance) + float(layer.epsilon))
        if layer.gamma is not None:
            scale = scale * to_numpy(keras, layer.gamma)
        shift = -mean * scale
        if layer.beta is not None:
            shift = shift + to_numpy(keras, layer.beta)
        chain.add_affine(scale, shift, layer.name)


class ActivationLayer(LayerConverter, abc.ABC):
    """A layer applying an elementwise activation (`function`) to its input."""

    @abc.abstractmethod
    def function(self, keras, layer):
        """``(function, description)``: what the layer applies, for `resolve_activation`."""

    def fold(self, keras, layer, chain):
        fn, name = self.function(keras, layer)
        act, curve = resolve_activation(keras, fn, layer, "applies", output=chain.output,
                                        name=name)
        chain.add_activation(act, curve, layer.name)


def _described(kind, **args):
    return f"{kind}({', '.join(f'{k}={v:g}' for k, v in args.items())})"


@register_layer("Activation")
class Activation(ActivationLayer):
    def function(self, keras, layer):
        return layer.activation, None


@register_layer("ReLU")
class ReLU(ActivationLayer):
    """``keras.activations.relu`` with the layer's arguments (plain relu by default)."""

    def function(self, keras, layer):
        args = {k: float(v) for k, v in (("negative_slope", layer.negative_slope),
                                         ("max_value", layer.max_value),
                                         ("threshold", layer.threshold))
                if v is not None and not (k != "max_value" and v == 0)}
        if not args:
            return keras.activations.relu, None
        return functools.partial(keras.activations.relu, **args), _described("ReLU", **args)


@register_layer("LeakyReLU")
class LeakyReLU(ActivationLayer):
    def function(self, keras, layer):
        slope = float(layer.negative_slope)
        return (functools.partial(keras.activations.leaky_relu, negative_slope=slope),
                _described("LeakyReLU", negative_slope=slope))


@register_layer("ELU")
class ELU(ActivationLayer):
    def function(self, keras, layer):
        alpha = float(layer.alpha)
        return (functools.partial(keras.activations.elu, alpha=alpha),
                _described("ELU", alpha=alpha))


@register_layer("PReLU")
class PReLU(ActivationLayer):
    """A leaky relu whose learned slope must be one value shared by every unit."""

    def refuse(self, keras, layer):
        alpha = to_numpy(keras, layer.alpha)
        if alpha.size and np.ptp(alpha) > 0:
            return (f"its learned slopes differ between units (alpha from {alpha.min():.4g} "
                    f"to {alpha.max():.4g}), so it is not one elementwise curve, and popfit "
                    "fits one curve shared by all units of a layer; train it with one "
                    "shared slope (PReLU(shared_axes=[1]) on flat inputs) or use LeakyReLU")
        return _not_flat(layer, "it gets")

    def function(self, keras, layer):
        slope = float(to_numpy(keras, layer.alpha).ravel()[0])
        return (functools.partial(keras.activations.leaky_relu, negative_slope=slope),
                _described("PReLU", alpha=slope))


@register_layer("Softmax")
class Softmax(ActivationLayer):
    """Softmax over the features (the output layer only)."""

    def refuse(self, keras, layer):
        axis = layer.axis if isinstance(layer.axis, int) else tuple(layer.axis)
        if axis not in (-1, 1, (-1,), (1,)):
            return (f"it takes the softmax over axis {axis}, not over the features "
                    "(axis -1); use Softmax(axis=-1)")
        return _not_flat(layer, "it gets")

    def function(self, keras, layer):
        return keras.activations.softmax, None
