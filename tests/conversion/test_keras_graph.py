"""Keras graphs: every supported layer folds exactly into the weights between populations.

The reference is Keras itself, in float64: each model is evaluated layer by
layer with Keras's own layer calls, every hidden activation replaced by its
population's decoded rate curve (``fit.predict``) in the order the
activations are applied. The converted model's `rate_output` must equal it
to 1e-6 (folding is exact up to rounding); with fits that are exact (ReLU
neurons for relu and linear units) it equals Keras's own ``predict``. The
linear maps themselves (`popfit.conversion.operators`) are checked against
Keras's layers for shapes, strides, paddings and dilations.
"""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import popfit  # noqa: E402
from popfit.conversion import operators, read_model  # noqa: E402
from popfit.exceptions import ConversionError, PopfitValueError  # noqa: E402

QUICK = popfit.SearchOptions.quick()
WEIGHT_LAYERS = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D,
                 keras.layers.Conv3D, keras.layers.DepthwiseConv1D,
                 keras.layers.DepthwiseConv2D, keras.layers.SeparableConv1D,
                 keras.layers.SeparableConv2D)
ACTIVATION_LAYERS = (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU,
                     keras.layers.ELU, keras.layers.PReLU, keras.layers.Softmax)


@pytest.fixture(autouse=True)
def float64():
    """Keras in float64 (jax computes in float32 unless x64 is enabled)."""
    import jax

    before, x64 = keras.backend.floatx(), jax.config.jax_enable_x64
    keras.backend.set_floatx("float64")
    jax.config.update("jax_enable_x64", True)
    yield
    keras.backend.set_floatx(before)
    jax.config.update("jax_enable_x64", x64)


def _inputs(layer):
    inp = layer.input
    return list(inp) if isinstance(inp, (list, tuple)) else [inp]


def keras_reference(model, fits, X):
    """``model`` on ``X`` by Keras's layer calls, hidden activations replaced by ``fits``."""
    fits = iter(fits)
    out_layer = model.outputs[0]._keras_history[0]
    values = {id(model.inputs[0]): X.reshape((len(X),) + tuple(model.inputs[0].shape[1:]))}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        args = [values[id(t)] for t in _inputs(layer)]
        x = args if len(args) > 1 else args[0]
        last = layer is out_layer
        if isinstance(layer, WEIGHT_LAYERS):
            act, layer.activation = layer.activation, keras.activations.linear
            y = np.asarray(layer(x))
            layer.activation = act
            if act is not keras.activations.linear:
                y = np.asarray(act(y)) if last else next(fits).predict(y)
        elif isinstance(layer, ACTIVATION_LAYERS):
            y = np.asarray(layer(x)) if last else next(fits).predict(x)
        else:
            y = np.asarray(layer(x, training=False))
        values[id(layer.output)] = y
    assert next(fits, None) is None, "a fit was not used"
    return values[id(model.outputs[0])].reshape(len(X), -1)


def _randomize(model, seed):
    """Random weights everywhere (moving statistics included) and an adapted Normalization."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.3, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, layer.moving_variance.shape))
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape))
            layer.beta.assign(rng.normal(0, 0.2, layer.beta.shape))
        elif isinstance(layer, keras.layers.PReLU):
            layer.alpha.assign(np.full(layer.alpha.shape, 0.2))
        else:
            for w in layer.weights:
                if "bias" in w.path:
                    w.assign(rng.normal(0, 0.1, w.shape))


def _model(shape, build):
    inp = keras.Input(shape)
    return keras.Model(inp, build(inp))


def conv2d_stack(x):
    L = keras.layers
    x = L.Conv2D(3, 3, strides=2, padding="same", activation="tanh", name="c1")(x)
    x = L.BatchNormalization()(x)
    x = L.ZeroPadding2D(((1, 0), (0, 1)))(x)
    x = L.Conv2D(4, 2, dilation_rate=2, activation="sigmoid", name="c2")(x)
    x = L.AveragePooling2D(2, strides=1, padding="same")(x)
    x = L.Dropout(0.3)(x)
    x = L.SpatialDropout2D(0.2)(x)
    x = L.Flatten()(x)
    return L.Dense(5, activation="softmax")(x)


def conv1d_stack(x):
    L = keras.layers
    x = L.Rescaling(2.0, offset=-1.0)(x)
    x = L.Conv1D(4, 3, padding="same", name="c1")(x)
    x = L.LeakyReLU(0.2)(x)
    x = L.Cropping1D((1, 0))(x)
    x = L.UpSampling1D(2)(x)
    x = L.Conv1D(3, 2, strides=2, activation="tanh")(x)
    x = L.GaussianNoise(0.1)(x)
    x = L.GlobalAveragePooling1D()(x)
    return L.Dense(2)(x)


def separable_stack(x):
    L = keras.layers
    x = L.DepthwiseConv2D(3, depth_multiplier=2, activation="tanh")(x)
    x = L.SeparableConv2D(3, 2, padding="same")(x)
    x = L.ELU()(x)
    x = L.Permute((2, 1, 3))(x)
    x = L.Reshape((-1,))(x)
    x = L.Dense(4, activation="tanh")(x)
    return L.Dense(3, activation="sigmoid")(x)


def merges(x):
    L = keras.layers
    h = L.Dense(6, activation="tanh", name="h")(x)
    r = L.Dense(6, activation="tanh", name="r")(h)
    res = L.Add(name="add")([h, r])  # a residual block
    a = L.Dense(6, name="a_lin")(res)
    b = L.Dense(6, name="b_lin")(x)
    s = L.Subtract(name="subtract")([a, b])  # linear branches: folded, not populations
    s = L.Activation("sigmoid", name="s")(s)
    m = L.Average()([s, r])
    c = L.Concatenate()([m, h])
    c = L.BatchNormalization()(c)
    return L.Dense(3)(c)


def dense_on_images(x):
    L = keras.layers
    x = L.Dense(3, activation="tanh", name="d")(x)  # on the last axis of (4, 4, 2)
    x = L.Conv2D(2, 2, activation="relu", name="c")(x)
    x = L.GlobalAveragePooling2D(keepdims=True)(x)
    x = L.Flatten()(x)
    return L.Dense(2)(x)


MODELS = {
    "conv2d-bn-pad-dilation-pool-dropout": ((7, 6, 2), conv2d_stack),
    "conv1d-rescale-leaky-crop-upsample-gap": ((9, 2), conv1d_stack),
    "depthwise-separable-elu-permute-reshape": ((6, 6, 2), separable_stack),
    "add-subtract-average-concatenate": ((5,), merges),
    "dense-on-images-gap-keepdims": ((4, 4, 2), dense_on_images),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_every_layer_folds_exactly(name):
    shape, build = MODELS[name]
    keras.utils.set_random_seed(1)
    model = _model(shape, build)
    _randomize(model, 1)
    rng = np.random.default_rng(1)
    X_cal = rng.uniform(-1, 1, size=(60,) + shape)
    conv = popfit.convert(model, n_neurons=2, calibration_data=X_cal, search=QUICK, seed=0)
    X = rng.uniform(-1, 1, size=(20,) + shape)
    ref = keras_reference(model, conv.fits, X)
    np.testing.assert_allclose(conv.rate_output(X), ref, rtol=1e-6, atol=1e-6)
    # the spec alone computes Keras (no fits) to float64 rounding
    np.testing.assert_allclose(conv.spec.forward(X.reshape(len(X), -1))[1],
                               model.predict(X, verbose=0).reshape(len(X), -1), rtol=1e-6,
                               atol=1e-6)
    # flattened samples are the same samples
    np.testing.assert_array_equal(conv.rate_output(X.reshape(len(X), -1)), conv.rate_output(X))


def test_merged_linear_branches_are_folded_not_populations():
    model = _model((5,), merges)
    spec = read_model(model)
    # h, r, the sigmoid after the subtraction: three populations; a_lin, b_lin folded
    assert [layer.activation for layer in spec.hidden] == ["tanh", "tanh", "sigmoid"]
    assert [layer.label for layer in spec.hidden] == ["h", "r", "add+a_lin+b_lin+subtract+s"]
    # the sigmoid layer takes the residual sum (h + r) and the input: skips from h and -1
    assert sorted(s for s, _ in spec.hidden[2].skips) == [-1, 0]
    assert sorted(s for s, _ in spec.output.skips) == [0, 1]


def relu_cnn(x):
    L = keras.layers
    x = L.Conv2D(3, 3, padding="same", activation="relu")(x)
    x = L.AveragePooling2D(2)(x)
    x = L.Conv2D(4, 2, activation="linear")(x)  # a linear population before a Dense
    x = L.Flatten()(x)
    x = L.Dense(4, activation="relu")(x)
    return L.Dense(2)(x)


def exact_fit(fit):
    """The exact RectifiedLinear population of ``fit``'s relu or linear curve."""
    g = 100.0
    signs = [1.0] if fit.target.name == "relu" else [1.0, -1.0]
    return popfit.PopulationFit.from_parameters(
        target=fit.target.name, domain=fit.domain, neuron_type="RectifiedLinear",
        gain=[g] * len(signs), bias=[0.0] * len(signs), encoders=signs,
        decoders=[s / g for s in signs], max_rate=g * max(np.abs(fit.domain)), synapse=None)


def test_relu_and_linear_with_exact_fits_equal_keras():
    """RectifiedLinear neurons represent relu (1 neuron) and linear (an on/off pair)
    exactly, so with those fits the converted model is the Keras model."""
    keras.utils.set_random_seed(2)
    model = _model((6, 6, 1), relu_cnn)
    _randomize(model, 2)
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, size=(30, 6, 6, 1))
    conv = popfit.convert(model, neuron_type="RectifiedLinear", n_neurons=2,
                          calibration_data=X, search=QUICK, seed=0)
    assert [layer.activation for layer in conv.spec.hidden] == ["relu", "linear", "relu"]
    flat = X.reshape(len(X), -1)
    np.testing.assert_array_equal(  # rate_output is the spec with the fits' curves
        conv.rate_output(X), conv.spec.forward(flat, [f.predict for f in conv.fits])[0][-1])
    exact = [exact_fit(f) for f in conv.fits]
    np.testing.assert_allclose(conv.spec.forward(flat, [f.predict for f in exact])[0][-1],
                               model.predict(X, verbose=0), rtol=1e-6, atol=1e-6)


def dense_then_sparse(x):
    L = keras.layers
    x = L.Conv2D(3, 3, padding="same", activation="relu")(x)
    x = L.Conv2D(4, 3, strides=2, padding="same", activation="tanh")(x)
    x = L.Flatten()(x)
    return L.Dense(2)(x)


def test_convolution_is_one_ensemble_with_sparse_weights():
    import nengo

    keras.utils.set_random_seed(3)
    model = _model((8, 8, 1), dense_then_sparse)
    X = np.random.default_rng(3).uniform(size=(20, 8, 8, 1))
    conv = popfit.convert(model, n_neurons=2, calibration_data=X, search=QUICK, seed=0)
    net = conv.network
    assert len(net.all_ensembles) == 2  # one per population layer, whatever its size
    assert [layer.n_units for layer in net.layers] == [8 * 8 * 3, 4 * 4 * 4]
    w = conv.spec.layers[1].weights
    assert conv.spec.layers[1].sparse and w.nnz <= 4 * 4 * 4 * 27
    into = [c for c in net.all_connections if c.post_obj == net.layers[1].ensemble.neurons]
    assert len(into) == 1 and isinstance(into[0].transform, nengo.transforms.Sparse)
    assert into[0].transform.init.nnz == w.nnz * 2 * 2  # N x N neurons per unit pair
    with pytest.raises(PopfitValueError, match=r"samples of shape \(8, 8\) but the model takes "
                                               r"samples of shape \(8, 8, 1\)"):
        conv.rate_output(np.zeros((2, 8, 8)))


def test_refit_keeps_convolutions_and_resolves_dense_layers():
    """The weights into a convolution stay sparse and standard; the dense ones are
    re-solved (kept where the held-out share says so), and the network runs them."""
    import nengo
    import scipy.sparse

    keras.utils.set_random_seed(4)
    cnn = _model((8, 8, 1), dense_then_sparse)
    _randomize(cnn, 4)
    X = np.random.default_rng(4).uniform(-1, 1, size=(200, 8, 8, 1))
    conv = popfit.convert(cnn, calibration_data=X, n_neurons=2, search=QUICK, seed=0)
    assert conv.weights is not None  # refit by default on a chain
    assert scipy.sparse.issparse(conv.weights[0]) and not conv.refit_report.kept[0]
    assert (conv.weights[0] != conv._unit_weights()[0][0]).nnz == 0
    net = conv.network
    into = [c for c in net.all_connections if c.post_obj == net.layers[1].ensemble.neurons]
    assert isinstance(into[0].transform, nengo.transforms.Sparse)
    out = conv.decoded_output(X[:3], presentation_time=0.03, progress_bar=False)
    assert out.shape == (3, 2) and np.all(np.isfinite(out))


def test_refit_and_chain_only_options_refused_with_the_reason():
    residual = _model((5,), merges)
    with pytest.raises(ConversionError, match=r"refit=True re-solves .* skip \(merge\) "
                                              r"connections; use refit=False"):
        popfit.convert(residual, calibration_data=np.zeros((40, 5)), refit=True, search=QUICK)
    with pytest.raises(ConversionError, match=r"weight_bits \(quantize_model; platform 'nengo'\) "
                                              r"supports models "
                                              r"whose layers form a chain.* also takes inputs "
                                              r"from earlier layers"):
        popfit.convert(residual, platform=popfit.get_platform("nengo", weight_bits=8),
                       n_neurons=1, search=QUICK)
    conv = popfit.convert(residual, n_neurons=1, search=QUICK, seed=0)
    with pytest.raises(ConversionError, match=r"neuron_weights supports models whose layers "
                                              r"form a chain"):
        conv.neuron_weights()


# ------------------------------------------------------------ the linear maps
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides, dilation", [(1, 1), (2, 1), (3, 1), (1, 2)])
def test_convolution_matrix_matches_keras(padding, strides, dilation):
    layer = keras.layers.Conv2D(3, (3, 2), strides=strides, padding=padding,
                                dilation_rate=dilation, use_bias=False)
    layer.build((None, 7, 8, 2))
    kernel = np.asarray(layer.kernel)
    m, shape = operators.convolution((7, 8, 2), kernel, (strides,) * 2, padding,
                                     (dilation,) * 2)
    x = np.random.default_rng(0).normal(size=(4, 7, 8, 2))
    y = np.asarray(layer(x))
    assert y.shape[1:] == shape
    np.testing.assert_allclose(x.reshape(4, -1) @ m, y.reshape(4, -1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("pool, strides", [(2, None), (3, 2), (2, 1)])
def test_average_pooling_matrix_matches_keras(padding, pool, strides):
    layer = keras.layers.AveragePooling2D(pool, strides=strides, padding=padding)
    m, shape = operators.average_pooling((7, 6, 2), (pool,) * 2, (strides or pool,) * 2,
                                         padding)
    x = np.random.default_rng(1).normal(size=(3, 7, 6, 2))
    y = np.asarray(layer(x))
    assert y.shape[1:] == shape
    np.testing.assert_allclose(x.reshape(3, -1) @ m, y.reshape(3, -1), rtol=1e-5, atol=1e-5)


def test_window_that_does_not_fit_is_an_error():
    with pytest.raises(ConversionError, match=r"a window of 5 .* does not fit an input of "
                                              r"size 3 with padding 'valid'"):
        operators.convolution((3, 3, 1), np.zeros((5, 5, 1, 1)), (1, 1), "valid", (1, 1))
