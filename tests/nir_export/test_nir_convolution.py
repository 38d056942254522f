"""A Keras CNN and a residual model exported with `popfit.to_nir`, run by NIR consumers.

Keras runs on torch's CPU build here (``.ci/make_nir_venv``). The CNN's
convolutions are NIR ``Conv2d`` nodes (with ``Flatten`` before the dense
read-out); the residual model's ``Add`` is a second Affine out of the first
layer's neurons, summed by the consumer. Consumer runs are compared with the
Keras model's own predictions, not with popfit's.
"""

import contextlib
import io
import warnings

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
pytest.importorskip("snntorch")
nir = pytest.importorskip("nir")

from sklearn.datasets import load_digits  # noqa: E402
from test_nir_consumers import _constant, round_trip  # noqa: E402  (this folder's helpers)
from test_nir_snntorch import run_snntorch  # noqa: E402

import popfit  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
L = keras.layers


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(scope="module")
def cnn(digits):
    X, y = digits
    X = X.reshape(-1, 8, 8, 1)
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(4, 3, strides=2, activation="tanh"),
                            L.Flatten(), L.Dense(10, activation="softmax")])
    net.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    net.fit(X[:800], y[:800], epochs=15, batch_size=32, verbose=0)
    # snnTorch's fits (tau_ref = dt / 2) are Norse's too: one conversion for both
    return net, X, popfit.convert(net, platform="snntorch", n_neurons=4,
                                  calibration_data=X[:800], seed=0)


@pytest.fixture(scope="module")
def residual(digits):
    X, y = digits
    keras.utils.set_random_seed(0)
    inp = keras.Input((64,))
    h = L.Dense(16, activation="tanh")(inp)
    r = L.Dense(16, activation="tanh")(h)
    net = keras.Model(inp, L.Dense(10, activation="softmax")(L.Add()([h, r])))
    net.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    net.fit(X[:800], y[:800], epochs=15, batch_size=32, verbose=0)
    return net, X, popfit.convert(net, platform="snntorch", n_neurons=4,
                                  calibration_data=X[:800], seed=0)


def channels_first(X):
    return np.moveaxis(X, -1, 1)


def test_cnn_with_conv2d_nodes_in_snntorch(cnn, tmp_path):
    net, X, model = cnn
    X_test = X[800:830]
    graph = round_trip(popfit.to_nir(model), tmp_path)
    conv = graph.nodes["conv_0"]
    assert isinstance(conv, nir.Conv2d) and conv.weight.shape == (16, 1, 3, 3)
    assert isinstance(graph.nodes["flatten_0"], nir.Flatten)
    total = run_snntorch(graph, channels_first(X_test), 0.1)
    keras_labels = net.predict(X_test, verbose=0).argmax(1)
    assert np.mean(total.argmax(1) == keras_labels) >= 0.95


def test_conv_and_affine_exports_agree_in_snntorch(cnn):
    """The same spikes from the Conv2d graph and the dense-Affine one (float32 sums in a
    different order may flip a rare threshold crossing)."""
    net, X, model = cnn
    x = X[800:810]
    conv = run_snntorch(popfit.to_nir(model), channels_first(x), 0.05)
    dense = run_snntorch(popfit.to_nir(model, convolutions="affine"), x.reshape(10, -1), 0.05)
    np.testing.assert_allclose(conv, dense, atol=0.02 * np.ptp(dense))


def test_residual_in_snntorch(residual, tmp_path):
    """snnTorch imports through nirtorch's graph interpreter, which sums a node's inputs."""
    net, X, model = residual
    graph = round_trip(popfit.to_nir(model), tmp_path)
    assert ("neurons_0", "affine_out_from_0") in graph.edges
    total = run_snntorch(graph, X[800:830], 0.1)
    keras_labels = net.predict(X[800:830], verbose=0).argmax(1)
    assert np.mean(total.argmax(1) == keras_labels) >= 0.95


def test_cnn_in_norse_and_sinabs(cnn, tmp_path):
    """Norse imports the Conv2d graph whole; sinabs takes Conv2d into a first IF layer
    (its LI import fails on a multi-dimensional node, so later layers are Affine)."""
    import norse.torch
    import sinabs.nir

    net, X, snntorch_model = cnn
    x = X[800:820]
    keras_labels = net.predict(x, verbose=0).argmax(1)
    for name in ("norse", "sinabs"):
        platform = popfit.get_platform(name)
        model = snntorch_model if name == "norse" else popfit.convert(
            net, platform=name, n_neurons=4, calibration_data=X[:800], seed=0)
        graph = round_trip(popfit.to_nir(model, platform=name), tmp_path)
        assert isinstance(graph.nodes["conv_0"], nir.Conv2d)
        steps = int(round(0.1 / platform.nir_dt))
        xs = _constant(channels_first(x), steps)
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            if name == "norse":
                m, state, total = norse.torch.from_nir(graph, dt=platform.nir_dt), None, 0.0
                for step in range(steps):
                    out, state = m(xs[:, step], state)
                    total = total + (out.numpy() if step >= steps // 2 else 0.0)
            else:
                m = sinabs.nir.from_nir(graph, batch_size=len(x))
                out = m(xs.reshape(-1, 1, 8, 8))[0]
                total = out.reshape(len(x), steps, -1)[:, steps // 2:].sum(1).numpy()
        assert np.mean(total.argmax(1) == keras_labels) >= 0.9, name


def test_rockpool_has_no_conv2d_node(cnn):
    """Rockpool 3.1's importer knows no Conv2d: its platform exports dense Affine nodes."""
    net, X, _ = cnn
    model = popfit.convert(net, platform="rockpool", n_neurons=1,
                           search=popfit.SearchOptions.quick(), seed=0)
    assert not popfit.get_platform("rockpool").nir_conv_nodes
    forced = popfit.get_platform("rockpool").replace(
        nir_conv_nodes=("LIF", "CubaLIF", "IF", "LI"))
    from rockpool.nn.modules.torch.nir import from_nir

    with pytest.raises(NotImplementedError, match="Cannot convert .*Conv2d"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from_nir(popfit.to_nir(model, platform=forced))


def test_residual_in_norse_reads_the_output_node(residual):
    """nirtorch 2.6's deprecated ``load`` (Norse, sinabs, Rockpool) orders nodes depth
    first and returns the last one, a branch of the merge here: the Output node's value
    is in the returned state's cache."""
    import norse.torch

    net, X, model = residual
    platform = popfit.get_platform("norse")
    m = norse.torch.from_nir(popfit.to_nir(model, platform="norse"), dt=platform.nir_dt)
    x = torch.tensor(X[800:830], dtype=torch.float32)
    steps = int(round(0.1 / platform.nir_dt))
    returned = cached = 0.0
    state = None
    with torch.no_grad():
        for step in range(steps):
            out, state = m(x, state)
            if step >= steps // 2:
                returned = returned + out.numpy()
                cached = cached + state.cache["output"].numpy()
    keras_labels = net.predict(X[800:830], verbose=0).argmax(1)
    assert [n.name for n in m.execution_order][-1] == "affine_out_from_0"
    assert np.mean(cached.argmax(1) == keras_labels) >= 0.95
    assert not np.allclose(returned, cached)  # the returned value is the skip branch
