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


import numpy as np
import pytest

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
    conv = popfit.convert(model, n_neurons=2, calibration_data=X_cal, search=QUICK, seed=0,
                          refit=False)
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


@pytest.mark.parametrize("refit", [True, "all"])
def test_refit_of_convolutions(refit):
    """refit=True keeps the weights into a convolution (sparse, standard: the weight
    sharing survives) and re-solves the dense ones; refit="all" re-solves each unit's
    weights within its receptive field (same sparsity pattern); the network runs them."""
    import nengo
    import scipy.sparse

    from popfit.conversion.quantize import rate_forward
    from popfit.conversion.refit import folded_weights

    def tanh_convs(x):  # tanh: one LIF per unit leaves a large fit error to correct
        x = keras.layers.Conv2D(3, 3, padding="same", activation="tanh")(x)
        x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="tanh")(x)
        return keras.layers.Dense(2)(keras.layers.Flatten()(x))

    keras.utils.set_random_seed(4)
    cnn = _model((8, 8, 1), tanh_convs)
    _randomize(cnn, 4)
    X = np.random.default_rng(4).uniform(-1, 1, size=(300, 8, 8, 1))
    conv = popfit.convert(cnn, calibration_data=X, n_neurons=1, search=QUICK, seed=0,
                          refit=refit)
    standard = folded_weights(conv.fits[0], conv.spec.layers[1].weights)
    w = conv.weights[0]
    assert scipy.sparse.issparse(w) and w.shape == standard.shape
    assert conv.refit_report.kept[0] == (refit == "all")
    if refit == "all":  # the pattern of the standard weights, other values
        assert (abs(w).sign() != abs(standard).sign()).nnz == 0
        assert abs(w - standard).max() > 1e-3
        assert conv.refit_report.layer_rms_after[0] < 0.9 * conv.refit_report.layer_rms_before[0]
    else:
        assert (w != standard).nnz == 0
    net = conv.network
    into = [c for c in net.all_connections if c.post_obj == net.layers[1].ensemble.neurons]
    assert isinstance(into[0].transform, nengo.transforms.Sparse)
    X_new = np.random.default_rng(5).uniform(-1, 1, size=(20, 8, 8, 1))
    np.testing.assert_allclose(conv._outputs(rate_forward(conv, X_new)), conv.rate_output(X_new),
                               rtol=1e-9, atol=1e-12)
    out = conv.decoded_output(X[:3], presentation_time=0.03, progress_bar=False)
    assert out.shape == (3, 2) and np.all(np.isfinite(out))


@pytest.fixture(scope="module")
def residual():
    """The merges model with random weights, and calibration inputs."""
    keras.utils.set_random_seed(2)
    model = _model((5,), merges)
    _randomize(model, 2)
    return model, np.random.default_rng(2).uniform(-1, 1, size=(200, 5))


def test_refit_solves_all_inputs_of_a_merged_layer_together(residual):
    from popfit.conversion.quantize import rate_forward

    model, X_cal = residual
    conv = popfit.convert(model, n_neurons=1, calibration_data=X_cal, search=QUICK, seed=0)
    std = popfit.convert(model, n_neurons=1, calibration_data=X_cal, search=QUICK, seed=0,
                         refit=False)
    report = conv.refit_report
    assert report is not None and all(report.kept)  # 1 neuron per unit: a large fit error
    assert report.output_rms_after < 0.5 * report.output_rms_before
    # every skip from a hidden layer is re-solved with the main inputs (the input's is exact)
    assert sorted(conv.skip_weights) == [(0, 2), (0, 3), (1, 3)]
    for (s, t), w in conv.skip_weights.items():
        assert w.shape == (conv.spec.layers[t].n_out, conv.fits[s].n_neurons * 6)
    # the network holds the re-solved weights: its rate-level output is rate_output's
    X = np.random.default_rng(3).uniform(-1, 1, size=(30, 5))
    np.testing.assert_allclose(conv._outputs(rate_forward(conv, X)), conv.rate_output(X),
                               rtol=1e-9, atol=1e-12)
    # closer to the source model than the standard weights, on new inputs
    ref = model.predict(X, verbose=0)
    assert _rms(conv.rate_output(X), ref) < 0.5 * _rms(std.rate_output(X), ref)
    with pytest.raises(ConversionError, match=r"neuron_weights supports models whose layers "
                                              r"form a chain"):
        conv.neuron_weights()


def test_weight_bits_round_every_input_of_a_merged_layer_with_one_step(residual):
    from popfit.conversion.quantize import quantization_cost, rate_forward
    from popfit.graph import connects_into

    model, X_cal = residual
    kw = dict(n_neurons=2, calibration_data=X_cal, search=QUICK, seed=0, refit=False)
    exact = popfit.convert(model, **kw)
    rounded = popfit.convert(model, platform=popfit.get_platform("nengo", weight_bits=3), **kw)
    net = rounded.network
    infos = rounded.quantization["connections"]
    for layer in net.layers:  # nengo-loihi's discretize_block: one step per block
        conns = [c for c in net.all_connections if connects_into(c, layer.ensemble)]
        gain = np.asarray(layer.ensemble.gain)[:, None]
        effective = [gain * (c.transform.init.toarray() if hasattr(c.transform.init, "toarray")
                             else np.asarray(c.transform.init)) for c in conns]
        step = max(np.abs(w).max() for w in effective) / (2**3 - 1)
        assert sum(np.isclose(i["step"], step, rtol=1e-12) for i in infos) == len(conns)
        for w in effective:  # every weight on the shared grid
            np.testing.assert_allclose(w / step, np.round(w / step), atol=1e-6)
    assert len(infos) == sum(len(layer.inputs(t)) for t, layer in
                             enumerate(rounded.spec.hidden))
    X = np.random.default_rng(4).uniform(-1, 1, size=(6, 5))
    # rate_output describes the rounded network; its float weights give the float model
    np.testing.assert_allclose(rounded.rate_output(X), rounded._outputs(rate_forward(rounded, X)),
                               atol=1e-12)
    np.testing.assert_allclose(rate_forward(rounded, X, float_weights=True),
                               rate_forward(exact, X), rtol=1e-9, atol=1e-12)
    assert _rms(rounded.rate_output(X), exact.rate_output(X)) > 1e-3
    assert quantization_cost(rounded, X)["output_nrmse"] > 0
    # batched and sequential simulations run the same rounded network
    run = dict(presentation_time=0.2, progress_bar=False)
    batched = rounded.decoded_output(X, **run)
    sequential = rounded.decoded_output(X, sequential=True, **run)
    floats = exact.decoded_output(X, **run)
    assert _rms(batched, sequential) < 0.5 * _rms(batched, floats)


def _rms(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


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
