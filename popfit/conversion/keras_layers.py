"""One small converter per Keras layer kind, mapping its input tensors to its output.

A converter is registered for Keras layer classes by name
(`register_layer`, resolved in ``keras.layers`` when a model is read, so
importing popfit imports no Keras). It says whether it can take a layer
(`LayerConverter.refuse` returns the reason it cannot, checked for every
layer before any work starts) and applies the layer to its input
`popfit.conversion.keras_graph.Tensor` expressions (`LayerConverter.apply`),
exactly and without new nodes:

- ``Dense`` and ``Conv1D/2D/3D``, ``DepthwiseConv1D/2D``, ``SeparableConv1D/2D``
  (``channels_last``, any strides, "valid"/"same" padding, dilation, one
  group): their linear map (`popfit.conversion.operators`); their
  activation as an ``Activation`` layer's;
- ``BatchNormalization`` (inference statistics, the channel axis),
  ``Rescaling``, ``Normalization``: elementwise affine maps;
- ``AveragePooling1D/2D/3D``, ``GlobalAveragePooling1D/2D/3D``,
  ``ZeroPadding1D/2D/3D``, ``Cropping1D/2D/3D``, ``UpSampling1D/2D/3D``
  (nearest), ``Flatten``, ``Reshape``, ``Permute``: linear maps;
- ``Add``, ``Subtract``, ``Average``, ``Concatenate``: merges;
- ``Activation``, ``ReLU``, ``LeakyReLU``, ``ELU``, ``PReLU`` (one slope shared by
  all units), ``Softmax``: a population of the activation
  (`popfit.conversion.keras_activations.resolve_activation`), or the output
  activation;
- inference-time identities (``Dropout`` and its variants, ``GaussianNoise``,
  ``ActivityRegularization``, ``InputLayer``): nothing.

Max pooling, multiplicative merges, recurrent layers and any unregistered
layer kind are refused by name, with the reason and what to do (`Refused`).
"""

import abc
import dataclasses
import functools

import numpy as np
import scipy.sparse

from ..exceptions import ConversionError
from . import operators
from .keras_activations import SUPPORTED_TEXT, resolve_activation

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


def to_numpy(keras, variable):
    """A Keras weight (Variable or tensor) as a float64 numpy array."""
    # `.value` (the backend tensor), not the Variable itself: numpy 2 warns
    # (DeprecationWarning) about the Variable's __array__, which lacks `copy`
    return keras.ops.convert_to_numpy(getattr(variable, "value", variable)).astype(float)


def _channels_last(layer):
    fmt = getattr(layer, "data_format", "channels_last")
    if fmt not in (None, "channels_last"):
        return (f"it uses data_format={fmt!r}; popfit reads channels_last tensors: "
                "build the model with data_format='channels_last' (Keras's default)")
    return None


def _tuple(value, n):
    return tuple(int(v) for v in (value if isinstance(value, (list, tuple)) else (value,) * n))


class LayerConverter:
    """Converts one kind of Keras layer: `refuse` says why it cannot, `apply` maps it."""

    def refuse(self, keras, layer):
        """Why ``layer`` cannot be converted (``"why; what to do"``), or None."""

    def apply(self, keras, layer, inputs, graph, output):
        """The layer's output `Tensor` from its input Tensors ``inputs``.

        ``graph`` is the `popfit.conversion.keras_graph.Graph`; ``output`` is
        True when the layer's activation is the model's output activation.
        The default: the identity.
        """
        return inputs[0]


class Refused(LayerConverter):
    """A layer kind popfit does not convert, with the reason and the fix."""

    def __init__(self, reason):
        self.reason = reason

    def refuse(self, keras, layer):
        return self.reason


register_layer("SimpleRNN", "LSTM", "GRU", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D",
               "ConvLSTM3D", "TimeDistributed")(Refused(
                   "recurrent layers are not supported"))
register_layer("Multiply", "Maximum", "Minimum", "Dot")(Refused(
    "this merge is not linear in its inputs, so it cannot be folded into the weights "
    "between populations; use Add, Subtract, Average or Concatenate"))
register_layer("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "GlobalMaxPooling1D",
               "GlobalMaxPooling2D", "GlobalMaxPooling3D")(Refused(
                   "max pooling is not linear, so it cannot be folded into the weights "
                   "between populations; retrain the model with the average pooling of the "
                   "same pool size and strides (AveragePooling2D for MaxPooling2D)"))
register_layer("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")(Refused(
    "transposed convolutions are not supported yet; use UpSampling then a convolution"))
register_layer("LayerNormalization", "GroupNormalization", "UnitNormalization")(Refused(
    "it normalizes each sample by its own statistics, which is not a fixed linear map; "
    "use BatchNormalization (folded with its moving statistics)"))


@register_layer("InputLayer", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
                "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
                "ActivityRegularization")
class Identity(LayerConverter):
    """A layer that is the identity at inference: dropped."""


@register_layer("Flatten", "Reshape")
class Reshape(LayerConverter):
    """The identity on the flattened channels-last layout, with a new shape."""

    def refuse(self, keras, layer):
        return _channels_last(layer)

    def apply(self, keras, layer, inputs, graph, output):
        t = inputs[0]
        shape = tuple(int(n) for n in layer.output.shape[1:])
        return dataclasses.replace(t, shape=shape)


@register_layer("Permute")
class Permute(LayerConverter):
    def apply(self, keras, layer, inputs, graph, output):
        t = inputs[0]
        order = tuple(int(d) - 1 for d in layer.dims)
        grid = np.arange(t.size).reshape(t.shape).transpose(order)
        m = scipy.sparse.csr_matrix(
            (np.ones(t.size), (grid.ravel(), np.arange(t.size))), shape=(t.size, t.size))
        return graph.linear(t, m, 0.0, grid.shape, layer.name)


def _bias(keras, layer, n):
    return np.zeros(n) if getattr(layer, "bias", None) is None else to_numpy(keras, layer.bias)


def _own_activation(keras, layer, t, graph, output):
    act, curve = resolve_activation(keras, layer.activation, layer, "has activation",
                                    output=output)
    return graph.population(t, act, curve, layer.name, output=output)


@register_layer("Dense")
class Dense(LayerConverter):
    """A dense layer (on the last axis); its activation is applied as an Activation layer's."""

    def apply(self, keras, layer, inputs, graph, output):
        t = inputs[0]
        w = to_numpy(keras, layer.kernel)
        m, shape = ((w, (w.shape[1],)) if len(t.shape) == 1
                    else operators.last_axis_dense(t.shape, w))
        b = operators.tile_channels(shape, _bias(keras, layer, w.shape[1]))
        t = graph.linear(t, m, b, shape, layer.name, weight_layer=True)
        return _own_activation(keras, layer, t, graph, output)


@register_layer("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D",
                "SeparableConv1D", "SeparableConv2D")
class Convolution(LayerConverter):
    """A convolution (plain, depthwise or separable), channels last, one group."""

    def refuse(self, keras, layer):
        if getattr(layer, "groups", 1) != 1:
            return (f"it has groups={layer.groups}; grouped convolutions are not supported "
                    "yet: use groups=1 or DepthwiseConv")
        return _channels_last(layer)

    @staticmethod
    def kernel(keras, layer):
        """The layer's kernel as one full ``(*window, c_in, c_out)`` kernel."""
        depthwise = isinstance(layer, tuple(
            getattr(keras.layers, n) for n in ("DepthwiseConv1D", "DepthwiseConv2D")
            if hasattr(keras.layers, n)))
        if not depthwise and getattr(layer, "depthwise_kernel", None) is None:
            return to_numpy(keras, layer.kernel)
        k = to_numpy(keras, layer.kernel if depthwise else layer.depthwise_kernel)
        c_in, mult = k.shape[-2:]  # (*window, c_in, multiplier)
        full = np.zeros(k.shape[:-2] + (c_in, c_in * mult))
        for c in range(c_in):
            full[..., c, c * mult:(c + 1) * mult] = k[..., c, :]
        if not depthwise:  # separable: then a 1x1 convolution
            full = np.tensordot(full, to_numpy(keras, layer.pointwise_kernel).reshape(
                c_in * mult, -1), axes=([-1], [0]))
        return full

    def apply(self, keras, layer, inputs, graph, output):
        t = inputs[0]
        k = self.kernel(keras, layer)
        n = k.ndim - 2
        m, shape = operators.convolution(
            t.shape, k, _tuple(layer.strides, n), layer.padding,
            _tuple(layer.dilation_rate, n))
        b = operators.tile_channels(shape, _bias(keras, layer, shape[-1]))
        t = graph.linear(t, m, b, shape, layer.name, weight_layer=True)
        return _own_activation(keras, layer, t, graph, output)


@register_layer("AveragePooling1D", "AveragePooling2D", "AveragePooling3D")
class AveragePooling(LayerConverter):
    def refuse(self, keras, layer):
        return _channels_last(layer)

    def apply(self, keras, layer, inputs, graph, output):
        t = inputs[0]
        n = len(t.shape) - 1
        m, shape = operators.average_pooling(t.shape, _tuple(layer.pool_size, n),
                                             _tuple(layer.strides, n), layer.padding)
        return graph.linear(t, m, 0.0, shape, layer.name)


@register_layer("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D")
class GlobalAveragePooling(LayerConverter):
    def refuse(self, keras, layer):
        return _channels_last(layer)

    def apply(self, keras, layer, inputs, graph, output):
        t = inputs[0]
        m, shape = operators.global_average(t.shape, bool(getattr(layer, "keepdims", False)))
        return graph.linear(t, m, 0.0, shape, layer.name)


def _margins(value, n):
    """Keras padding/cropping arguments as (before, after) tuples per spatial axis."""
    if isinstance(value, int):
        value = (value,) * n
    pairs = [(v, v) if isinstance(v, int) else tuple(v) for v in value]
    if n == 1 and len(pairs) == 2 and all(isinstance(v, int) for v in value):
        pairs = [tuple(value)]
    return tuple(int(b) for b, _ in pairs), tuple(int(a) for _, a in pairs)


@register_layer("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D",
                "Cropping2D", "Cropping3D")
class PadOrCrop(LayerConverter):
    def refuse(self, keras, layer):
        return _channels_last(layer)

    def apply(self, keras, layer, inputs, graph, output):
        t = inputs[0]
        n = len(t.shape) - 1
        crop = hasattr(layer, "cropping")
        before, after = _margins(layer.cropping if crop else layer.padding, n)
        if crop:
            before, after = tuple(-b for b in before), tuple(-a for a in after)
        m, shape = operators.pad_or_crop(t.shape, before, after)
        return graph.linear(t, m, 0.0, shape, layer.name)


@register_layer("UpSampling1D", "UpSampling2D", "UpSampling3D")
class UpSampling(LayerConverter):
    def refuse(self, keras, layer):
        if getattr(layer, "interpolation", "nearest") != "nearest":
            return (f"it interpolates with {layer.interpolation!r}; only 'nearest' is "
                    "supported")
        return _channels_last(layer)

    def apply(self, keras, layer, inputs, graph, output):
        t = inputs[0]
        n = len(t.shape) - 1
        size = getattr(layer, "size", None) or getattr(layer, "length", 2)
        m, shape = operators.upsampling(t.shape, _tuple(size, n))
        return graph.linear(t, m, 0.0, shape, layer.name)


class Elementwise(LayerConverter, abc.ABC):
    """``x * scale + shift`` with one value per channel (the last axis)."""

    @abc.abstractmethod
    def scale_shift(self, keras, layer):
        """``(scale, shift)``: per channel, or scalars."""

    def apply(self, keras, layer, inputs, graph, output):
        t = inputs[0]
        scale, shift = (np.broadcast_to(np.asarray(v, dtype=float), (t.shape[-1],))
                        for v in self.scale_shift(keras, layer))
        return graph.linear(t, operators.channel_diagonal(t.shape, scale),
                            operators.tile_channels(t.shape, shift), t.shape, layer.name)


@register_layer("BatchNormalization")
class BatchNormalization(Elementwise):
    """``gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta``."""

    def refuse(self, keras, layer):
        rank = len(layer.input.shape) if hasattr(layer, "input") else 2
        if layer.axis not in (-1, rank - 1):
            return (f"it normalizes axis {layer.axis}, not the channels (the last axis); "
                    "use BatchNormalization(axis=-1) on channels_last tensors")
        return None

    def scale_shift(self, keras, layer):
        mean = to_numpy(keras, layer.moving_mean)
        scale = 1.0 / np.sqrt(to_numpy(keras, layer.moving_variance) + float(layer.epsilon))
        if layer.gamma is not None:
            scale = scale * to_numpy(keras, layer.gamma)
        shift = -mean * scale
        if layer.beta is not None:
            shift = shift + to_numpy(keras, layer.beta)
        return scale, shift


@register_layer("Rescaling")
class Rescaling(Elementwise):
    def scale_shift(self, keras, layer):
        return np.asarray(layer.scale, dtype=float), np.asarray(layer.offset, dtype=float)


@register_layer("Normalization")
class Normalization(Elementwise):
    """Keras ``Normalization`` (adapted, along the last axis): ``(x - mean) / sqrt(var)``."""

    def refuse(self, keras, layer):
        axis = layer.axis if isinstance(layer.axis, tuple) else (layer.axis,)
        if getattr(layer, "invert", False) or axis not in ((-1,),):
            return ("only Normalization(axis=-1) without invert is supported; normalize the "
                    "data before the model")
        return None

    def scale_shift(self, keras, layer):
        mean = np.ravel(to_numpy(keras, layer.mean))
        scale = 1.0 / np.maximum(np.sqrt(np.ravel(to_numpy(keras, layer.variance))),
                                 keras.backend.epsilon())
        return scale, -mean * scale


@register_layer("Add", "Subtract", "Average", "Concatenate")
class Merge(LayerConverter):
    """A sum (``Add``), difference, mean, or concatenation of several tensors."""

    def apply(self, keras, layer, inputs, graph, output):
        shapes = [t.shape for t in inputs]
        kind = type(layer).__name__
        if kind == "Concatenate":
            axis = int(layer.axis)
            axis = axis + len(shapes[0]) + 1 if axis < 0 else axis
            matrices, shape = operators.concatenate(shapes, axis - 1)
            return graph.merge(inputs, matrices, shape, layer.name)
        if len(set(shapes)) != 1:
            raise ConversionError(
                f"{kind} {layer.name!r} merges tensors of shapes {shapes}; popfit merges "
                "tensors of one shape (no broadcasting)")
        eye = scipy.sparse.identity(inputs[0].size, format="csr")
        coef = {"Add": [1.0] * len(inputs), "Subtract": [1.0, -1.0],
                "Average": [1.0 / len(inputs)] * len(inputs)}[kind]
        return graph.merge(inputs, [c * eye for c in coef], shapes[0], layer.name)


class ActivationLayer(LayerConverter, abc.ABC):
    """A layer applying an elementwise activation (`function`) to its input."""

    @abc.abstractmethod
    def function(self, keras, layer):
        """``(function, description)``: what the layer applies, for `resolve_activation`."""

    def apply(self, keras, layer, inputs, graph, output):
        fn, name = self.function(keras, layer)
        act, curve = resolve_activation(keras, fn, layer, "applies", output=output, name=name)
        return graph.population(inputs[0], act, curve, layer.name, output=output)


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
        return None

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
        return None

    def function(self, keras, layer):
        return keras.activations.softmax, None
