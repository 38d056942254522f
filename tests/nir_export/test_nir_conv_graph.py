"""`popfit.to_nir` of convolutional and residual models: Conv/Flatten nodes, skip links.

Needs only ``nir`` and Keras (main environment; the nir venv runs it too).
Convolutions are checked against an independent reference: PyTorch's (and
NIR's) convolution written out as loops over windows here, applied to the
channels-first tensors the graph carries; whole graphs are checked at rate
level (an independent reading of NIR's steady state, as in
test_nir_export.py) against popfit's own rate-level model of the converted
network, `ModelSpec.forward` with each population's fitted curve.
"""

import itertools
import os

import nengo
import numpy as np
import pytest
import scipy.sparse

keras = pytest.importorskip("keras")
nir = pytest.importorskip("nir")

from sklearn.datasets import load_digits  # noqa: E402

import popfit  # noqa: E402
from popfit.conversion import operators  # noqa: E402
from popfit.exceptions import PopfitValueError  # noqa: E402
from popfit.nir import to_nir  # noqa: E402
from popfit.nir._conv import find_convolution  # noqa: E402
from test_nir_export import NEURON_NODES, neuron_values  # noqa: E402  (this folder's helpers)

pytestmark = pytest.mark.filterwarnings("ignore:.*tau_ref = .* < dt = :UserWarning")
QUICK = popfit.SearchOptions.quick()
L = keras.layers


def reference_conv(x, weight, bias, stride, padding):
    """PyTorch's ``conv{1,2}d`` of one channels-first sample, as loops over windows."""
    kernel = weight.shape[2:]
    xp = np.pad(x, [(0, 0)] + [(p, p) for p in padding])
    out_spatial = [(n + 2 * p - k) // s + 1
                   for n, p, k, s in zip(x.shape[1:], padding, kernel, stride)]
    y = np.zeros((weight.shape[0],) + tuple(out_spatial))
    for pos in itertools.product(*map(range, out_spatial)):
        window = xp[(slice(None),) + tuple(slice(i * s, i * s + k)
                                           for i, s, k in zip(pos, stride, kernel))]
        y[(slice(None),) + pos] = np.tensordot(weight, window, axes=weight.ndim - 1) + bias
    return y


def graph_rates(graph, x, spike_area=1.0):
    """Steady-state output of a graph for constant inputs ``x`` (n, *input shape): every
    node's inputs summed, nodes taken in dependency order."""
    inputs = {name: [pre for pre, post in graph.edges if post == name] for name in graph.nodes}
    values = {"input": np.asarray(x, dtype=float)}
    while "output" not in values:
        for name, node in graph.nodes.items():
            if name in values or not all(pre in values for pre in inputs[name]):
                continue
            v = sum(values[pre] for pre in inputs[name])
            if isinstance(node, nir.Affine):
                v = v @ node.weight.T + node.bias
            elif isinstance(node, (nir.Conv1d, nir.Conv2d)):
                d = node.weight.ndim - 2
                stride, padding = (np.broadcast_to(node.stride, d),
                                   np.broadcast_to(node.padding, d))
                v = np.stack([reference_conv(s, node.weight, node.bias, stride, padding)
                              for s in v])
            elif isinstance(node, nir.Flatten):
                v = v.reshape(len(v), -1)
            elif isinstance(node, NEURON_NODES):
                v = neuron_values(node, v, spike_area)
            values[name] = v
    return values["output"]


def popfit_logits(model, X):
    """popfit's rate-level model of the converted network, before the output softmax."""
    pre, _ = model.spec.forward(X.reshape(len(X), -1), [fit.predict for fit in model.fits])
    return pre[-1]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0)[:300], y[:300]


#: Layers built with zero kernels (Keras's random initializers compile a jax kernel per
#: shape: seconds each), then given random weights here: exactness needs no training.
ZERO = dict(kernel_initializer="zeros")


def _random_weights(net, seed=0):
    """Every kernel and bias drawn at random; BatchNormalization statistics too (so that
    folding them is not the identity)."""
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        weights = layer.get_weights()
        if isinstance(layer, L.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(size=n),
                               rng.normal(size=n), rng.uniform(0.5, 2, n)])
        elif weights:
            layer.set_weights([rng.normal(size=w.shape) / np.sqrt(max(w.shape[0], 1) if
                                                                 w.ndim == 2 else 9)
                               for w in weights])
    return net


@pytest.fixture(scope="module")
def cnn(digits):
    """Conv2D(same), BatchNormalization, AveragePooling2D, Conv2D(valid), Flatten, Dense:
    the digits CNN's layer kinds, small."""
    keras.utils.set_random_seed(0)
    net = keras.Sequential([
        keras.Input((8, 8, 1)), L.Conv2D(3, 3, padding="same", activation="tanh", **ZERO),
        L.BatchNormalization(), L.AveragePooling2D(2), L.Conv2D(4, 3, activation="tanh", **ZERO),
        L.Flatten(), L.Dense(10, activation="softmax", **ZERO)])
    net = _random_weights(net)
    # no calibration data: one fit (tanh's default domain) for both layers, fast
    return popfit.convert(net, n_neurons=2, neuron_type=nengo.LIF(tau_ref=0),
                          search=QUICK, seed=0)


@pytest.fixture(scope="module")
def residual(digits):
    """Dense -> Dense, Add of the two, Dense (the digits residual block, small)."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((64,))
    h = L.Dense(6, activation="tanh", **ZERO)(inp)
    r = L.Dense(6, activation="tanh", **ZERO)(h)
    net = _random_weights(keras.Model(inp, L.Dense(10, activation="softmax", **ZERO)(
        L.Add()([h, r]))))
    return popfit.convert(net, n_neurons=2, neuron_type=nengo.LIF(tau_ref=0),
                          search=QUICK, seed=0)


GEOMETRIES = [  # (input shape, kernel, strides, padding, dilation): Keras convolutions
    ((8, 8, 1), (3, 3), (1, 1), "same", (1, 1)),
    ((8, 8, 3), (3, 3), (2, 2), "valid", (1, 1)),
    ((9, 7, 2), (4, 2), (2, 3), "same", (1, 1)),  # asymmetric "same": an extra zero tap
    ((8, 8, 2), (3, 3), (1, 1), "valid", (2, 2)),  # dilation: a sparse larger kernel
    ((10, 2), (3,), (1,), "same", (1,)),
]


@pytest.mark.parametrize("shape, kernel, strides, padding, dilation", GEOMETRIES)
def test_keras_convolutions_are_recovered(shape, kernel, strides, padding, dilation, rng):
    """A Keras convolution's matrix (popfit's operators, checked against Keras in
    tests/conversion) is found to be a convolution that PyTorch's formula reproduces."""
    k = rng.normal(size=kernel + (shape[-1], 3))
    matrix, out_shape = operators.convolution(shape, k, strides, padding, dilation)
    bias = np.tile(rng.normal(size=3), int(np.prod(out_shape[:-1])))
    conv = find_convolution(matrix.T, bias, shape, out_shape)
    assert conv is not None
    x = rng.normal(size=(3,) + shape)
    expected = x.reshape(3, -1) @ matrix + bias
    got = np.stack([reference_conv(np.moveaxis(s, -1, 0), conv.weight, conv.bias,
                                   conv.stride, conv.padding) for s in x])
    np.testing.assert_allclose(np.moveaxis(got, 1, -1).reshape(3, -1), expected, atol=1e-12)


def test_pooling_then_convolution_is_one_strided_convolution(rng):
    pool, mid = operators.average_pooling((8, 8, 2), (2, 2), (2, 2), "valid")
    conv, out = operators.convolution(mid, rng.normal(size=(3, 3, 2, 4)), (1, 1), "valid",
                                      (1, 1))
    found = find_convolution((pool @ conv).T, np.zeros(16), (8, 8, 2), out)
    assert found.weight.shape == (4, 2, 6, 6) and found.stride == (2, 2)
    assert found.padding == (0, 0)


def test_what_is_not_a_convolution_is_refused(rng):
    # "same" average pooling of an odd size divides by fewer inputs at the border
    pool, mid = operators.average_pooling((7, 7, 2), (2, 2), (2, 2), "same")
    conv, out = operators.convolution(mid, rng.normal(size=(3, 3, 2, 2)), (1, 1), "valid",
                                      (1, 1))
    assert find_convolution((pool @ conv).T, np.zeros(8), (7, 7, 2), out) is None
    # a bias that differs between positions
    conv, out = operators.convolution((6, 6, 1), rng.normal(size=(3, 3, 1, 2)), (1, 1),
                                      "same", (1, 1))
    bias = rng.normal(size=conv.shape[1])
    assert find_convolution(conv.T, bias, (6, 6, 1), out) is None
    # a random sparse matrix, and one weight changed
    random = scipy.sparse.random(72, 36, density=0.1, random_state=0)
    assert find_convolution(random, np.zeros(72), (6, 6, 1), (6, 6, 2)) is None
    changed = conv.T.tolil()
    changed[5, 0] += 1e-3
    assert find_convolution(changed, np.zeros(72), (6, 6, 1), out) is None


def test_cnn_graph_has_conv_nodes_and_computes_popfit_rates(cnn, digits, tmp_path):
    """Conv2d -> LIF (C*N, 8, 8) -> Conv2d (pooling and BN folded) -> CubaLIF -> Flatten ->
    Affine; at rate level exactly popfit's model of the network, and the same as the
    dense-Affine export."""
    graph = to_nir(cnn)
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert kinds == {"input": "Input", "conv_0": "Conv2d", "neurons_0": "LIF",
                     "conv_1": "Conv2d", "neurons_1": "CubaLIF", "flatten_1": "Flatten",
                     "affine_out": "Affine", "readout": "LI", "output": "Output"}
    assert list(graph.nodes["input"].input_type["input"]) == [1, 8, 8]
    assert graph.nodes["conv_1"].weight.shape == (8, 6, 6, 6)  # 4 x 2 from 3 x 2 neurons
    assert graph.nodes["conv_1"].stride == (2, 2)
    assert graph.nodes["neurons_0"].tau.shape == (6, 8, 8)
    path = os.path.join(tmp_path, "cnn.nir")
    nir.write(path, graph)
    assert popfit.nir.graphs_equal(graph, nir.read(path))
    X = digits[0][:20]
    expected = popfit_logits(cnn, X)
    images = X.reshape(-1, 1, 8, 8)  # channels first (one channel)
    np.testing.assert_allclose(graph_rates(graph, images), expected, rtol=1e-7,
                               atol=1e-7 * np.abs(expected).max())
    dense = to_nir(cnn, convolutions="affine")
    assert not any(isinstance(n, (nir.Conv2d, nir.Flatten)) for n in dense.nodes.values())
    assert dense.nodes["affine_1"].weight.shape == (32, 384)  # the (H*W*C*N)**2 growth
    np.testing.assert_allclose(graph_rates(dense, X), expected, rtol=1e-7,
                               atol=1e-7 * np.abs(expected).max())


def test_residual_graph_sums_the_skip(residual, digits, tmp_path):
    """The Add's skip is a second Affine out of layer 0's neurons; both meet in an
    identity Affine before the read-out; rate level equals popfit's model."""
    graph = to_nir(residual)
    assert ("neurons_0", "affine_out_from_0") in graph.edges
    assert ("neurons_1", "affine_out_from_1") in graph.edges
    assert {("affine_out_from_0", "affine_out"), ("affine_out_from_1", "affine_out"),
            ("affine_out", "readout")} <= set(graph.edges)
    np.testing.assert_array_equal(graph.nodes["affine_out"].weight, np.eye(10))
    path = os.path.join(tmp_path, "res.nir")
    nir.write(path, graph)
    assert popfit.nir.graphs_equal(graph, nir.read(path))
    X = digits[0][:30]
    expected = popfit_logits(residual, X)
    np.testing.assert_allclose(graph_rates(graph, X), expected, rtol=1e-7,
                               atol=1e-7 * np.abs(expected).max())


def test_skip_into_a_hidden_layer_and_from_the_input(digits):
    """Skips into hidden populations (from another population and from the input) are
    extra Affine nodes into that population's neuron node."""
    X = digits[0]
    keras.utils.set_random_seed(1)
    inp = keras.Input((64,))
    a = L.Dense(5, activation="tanh", **ZERO)(inp)
    b = L.Dense(5, activation="tanh", **ZERO)(a)
    c = L.Dense(5, activation="tanh", **ZERO)(L.Add()([a, b]))
    d = L.Dense(5, activation="tanh", **ZERO)(L.Concatenate()([c, inp]))
    net = _random_weights(keras.Model(inp, L.Dense(3, **ZERO)(d)), seed=1)
    model = popfit.convert(net, n_neurons=2, neuron_type=nengo.LIF(tau_ref=0),
                           search=QUICK, seed=0, task="regressor")
    graph = to_nir(model)
    assert {("neurons_0", "affine_2_from_0"), ("affine_2_from_0", "neurons_2"),
            ("input", "affine_3_from_input"), ("affine_3_from_input", "neurons_3")} <= \
        set(graph.edges)
    expected = popfit_logits(model, X[:20])
    np.testing.assert_allclose(graph_rates(graph, X[:20]), expected, rtol=1e-7,
                               atol=1e-7 * np.abs(expected).max())


def test_conv1d(digits):
    """A Conv1D model: Conv1d nodes on (C * N, length) tensors, rate level exact."""
    keras.utils.set_random_seed(2)
    net = _random_weights(keras.Sequential([
        keras.Input((16, 4)), L.Conv1D(3, 3, strides=2, padding="same", activation="tanh",
                                       **ZERO),
        L.AveragePooling1D(2), L.Conv1D(2, 2, activation="tanh", **ZERO), L.Flatten(),
        L.Dense(2, **ZERO)]), seed=2)
    model = popfit.convert(net, n_neurons=2, neuron_type=nengo.LIF(tau_ref=0),
                           search=QUICK, seed=0)
    graph = to_nir(model)
    assert isinstance(graph.nodes["conv_0"], nir.Conv1d)
    assert isinstance(graph.nodes["conv_1"], nir.Conv1d)
    assert list(graph.nodes["neurons_1"].output_type["output"]) == [4, 3]
    X = digits[0][:10]
    expected = popfit_logits(model, X)
    np.testing.assert_allclose(graph_rates(graph, np.moveaxis(X.reshape(-1, 16, 4), -1, 1)),
                               expected, rtol=1e-7, atol=1e-7 * np.abs(expected).max())


def test_convolutions_option(cnn):
    with pytest.raises(PopfitValueError, match=r"convolutions must be None or one of 'conv', "
                                               r"'affine' \(got 'dense'\)"):
        to_nir(cnn, convolutions="dense")
    with pytest.raises(PopfitValueError, match=r"convolutions='conv' writes Conv1d/Conv2d and "
                                               r"Flatten nodes, which platform 'rockpool' "
                                               r"does not import.*use convolutions='affine'"):
        to_nir(cnn, platform="rockpool", convolutions="conv", drop_tau_ref=True)
    rock = to_nir(cnn, platform="rockpool", drop_tau_ref=True)  # its default: dense
    assert not any(isinstance(n, nir.Conv2d) for n in rock.nodes.values())


def test_residual_with_calibration_exports_the_weights_it_runs(digits):
    """Converted with calibration data (re-solved weights where `convert` re-solves a
    merge's links), the graph computes `rate_output`: compared as log-probabilities
    centred per sample (softmax is the graph's logits up to a constant per sample)."""
    X = digits[0]
    keras.utils.set_random_seed(0)
    inp = keras.Input((64,))
    h = L.Dense(6, activation="tanh", **ZERO)(inp)
    r = L.Dense(6, activation="tanh", **ZERO)(h)
    net = _random_weights(keras.Model(inp, L.Dense(10, activation="softmax", **ZERO)(
        L.Add()([h, r]))), seed=3)
    model = popfit.convert(net, n_neurons=2, neuron_type=nengo.LIF(tau_ref=0),
                           calibration_data=X, search=QUICK, seed=0)
    logits = graph_rates(to_nir(model), X[:20])
    logp = np.log(model.rate_output(X[:20]))
    centred = [v - v.mean(axis=1, keepdims=True) for v in (logits, logp)]
    np.testing.assert_allclose(centred[0], centred[1], atol=1e-6 * np.abs(centred[1]).max())


@pytest.mark.parametrize("name", ["cnn", "residual"])
def test_weight_bits_graph_models_export_the_weights_they_run(request, name, digits):
    """A convolutional or residual model with rounded weights: every input of a layer
    (the host's, the previous layer's, a skip) is exported as the network holds it, so
    the graph computes the rounded network at rate level (`rate_forward` reads the
    network's connections), which differs from the float one."""
    from popfit.conversion.quantize import quantize_model, rate_forward

    model = request.getfixturevalue(name)
    rounded = quantize_model(model, 3)
    X = digits[0][:20]
    expected = rate_forward(rounded, X)
    assert np.max(np.abs(expected - rate_forward(model, X))) > 1e-2 * np.abs(expected).max()
    for convolutions in ("conv", "affine"):
        graph = to_nir(rounded, convolutions=convolutions)
        # one fit per layer: the rounded weights are still shared, a convolution
        assert (any(isinstance(n, nir.Conv2d) for n in graph.nodes.values())
                == (name == "cnn" and convolutions == "conv"))
        x = X.reshape((-1,) + tuple(graph.nodes["input"].input_type["input"]))
        np.testing.assert_allclose(graph_rates(graph, x), expected, rtol=1e-9,
                                   atol=1e-9 * np.abs(expected).max())
