"""popfit graphs run by NIR consumers beyond snnTorch: Norse, Rockpool, sinabs.

Each consumer's own importer (``norse.torch.from_nir``,
``rockpool.nn.modules.torch.nir.from_nir``, ``sinabs.nir.from_nir``) reads the
graph that ``popfit.to_nir(..., platform=name)`` writes for it, after a round
trip through ``nir.write`` / ``nir.read``. Run in the NIR venv (bash
.ci/make_nir_venv /work/venvs/nir); skipped where a consumer is missing.
References are independent of the graph: ``np.tanh`` for fitted units, the
trained ANN's logits for converted models.
"""

import contextlib
import functools
import io
import logging
import os
import warnings

import nengo
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

import popfit
from popfit.network import PopulationLayer

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")
from popfit.nir import graphs_equal  # noqa: E402

# NIR fits have tau_ref = 0 < nengo's dt: exporting them to nengo warns, by design
pytestmark = pytest.mark.filterwarnings("ignore:.*tau_ref = .* < dt = :UserWarning")
torch.set_num_threads(1)  # small networks: threads only add contention


def round_trip(graph, tmp_path):
    path = os.path.join(tmp_path, "model.nir")
    nir.write(path, graph)
    back = nir.read(path)
    assert graphs_equal(graph, back)
    return back


def _steps(platform, seconds):
    return int(round(seconds / platform.nir_dt))


def _constant(x, steps):
    """(batch, steps, *features): ``x`` held for ``steps`` steps."""
    x = torch.tensor(np.asarray(x), dtype=torch.float32)
    return x[:, None].expand(x.shape[0], steps, *x.shape[1:]).contiguous()


def run_norse(graph, x, seconds):
    """Norse's GraphExecutor, stepped with its state; output averaged over the last half."""
    norse_torch = pytest.importorskip("norse.torch")
    platform = popfit.get_platform("norse")
    net = norse_torch.from_nir(graph, dt=platform.nir_dt)
    steps = _steps(platform, seconds)
    xt = torch.tensor(np.asarray(x), dtype=torch.float32)
    total, state = 0.0, None
    with torch.no_grad():
        for step in range(steps):
            out, state = net(xt, state)
            if step >= steps // 2:
                total = total + out.numpy().astype(float)
    return total / (steps - steps // 2)


def import_rockpool(graph):
    return pytest.importorskip("rockpool.nn.modules.torch.nir").from_nir(graph)


def run_rockpool(graph, x, seconds):
    """Rockpool's modules evolve a (batch, time, channels) input in one call."""
    net = import_rockpool(graph)
    steps = _steps(popfit.get_platform("rockpool"), seconds)
    with torch.no_grad():
        out, _ = net(_constant(x, steps))
    return out[:, steps // 2:].numpy().astype(float).mean(axis=1)


def run_sinabs(graph, x, seconds):
    """sinabs's squeezed layers take (batch * time, features)."""
    sinabs_nir = pytest.importorskip("sinabs.nir")
    steps = _steps(popfit.get_platform("sinabs"), seconds)
    x = np.asarray(x)
    net = sinabs_nir.from_nir(graph, batch_size=len(x))
    with torch.no_grad():
        out = net(_constant(x, steps).reshape(-1, x.shape[1]))
    out = out[0] if isinstance(out, tuple) else out
    return out.reshape(len(x), steps, -1)[:, steps // 2:].numpy().astype(float).mean(axis=1)


RUNNERS = {"norse": run_norse, "rockpool": run_rockpool, "sinabs": run_sinabs}
CONSUMERS = sorted(RUNNERS)


def run(name, graph, x, seconds):
    with contextlib.redirect_stdout(io.StringIO()):  # importers print progress
        return RUNNERS[name](graph, x, seconds)


@functools.lru_cache(maxsize=None)
def tanh_fit(name):
    platform = popfit.get_platform(name)
    return popfit.fit_activation("tanh", 4, platform=platform, max_rate=400.0, synapse=0.02,
                                 seed=0)


@pytest.mark.parametrize("name", CONSUMERS)
def test_population_neuron_computes_tanh(name, tmp_path):
    fit = tanh_fit(name)
    assert fit.neuron_type == popfit.get_platform(name).fit_neuron_type()
    x = np.linspace(-2.5, 2.5, 21)[:, None]
    graph = round_trip(popfit.to_nir(fit.network(), platform=name), tmp_path)
    y = run(name, graph, x, 0.2)
    assert y.shape == (21, 1)
    nrmse = np.sqrt(np.mean((y[:, 0] - np.tanh(x[:, 0])) ** 2)) / 2.0
    assert nrmse < 0.03, nrmse


@pytest.mark.parametrize("name", CONSUMERS)
def test_layer_chain_computes_tanh_of_tanh(name, tmp_path):
    """Two layers neuron to neuron through the connection synapse (a CubaLIF for Norse
    and Rockpool, an LI node before the IF layer for sinabs), with a transform."""
    fit = tanh_fit(name)
    t = np.array([[0.8, -0.6, 0.3], [-0.5, 0.2, 0.9]])
    layers = [PopulationLayer(fit, 3), PopulationLayer(fit, 2)]
    graph = round_trip(popfit.to_nir(layers, transforms=[t], platform=name), tmp_path)
    x = np.random.default_rng(0).uniform(-2, 2, size=(30, 3))
    y = run(name, graph, x, 0.2)
    ref = np.tanh(np.tanh(x) @ t.T)
    nrmse = np.sqrt(np.mean((y - ref) ** 2)) / np.ptp(ref)
    assert nrmse < 0.03, nrmse


@functools.lru_cache(maxsize=None)
def digits():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.25,
                                                        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier((32,), activation="tanh", max_iter=1000,
                            random_state=0).fit(X_train, y_train)
    return mlp, X_train, X_test[:100], y_test[:100]


def logits(mlp, X):
    return np.tanh(X @ mlp.coefs_[0] + mlp.intercepts_[0]) @ mlp.coefs_[1] + mlp.intercepts_[1]


# measured RMSE / std(ANN logits) on these 100 digits: Norse 0.027, Rockpool 0.028,
# sinabs 0.022 (benchmarks/bench_nir.py); the bar leaves room for other BLAS/torch builds
@pytest.mark.parametrize("name", CONSUMERS)
def test_digits_in_consumer(name, tmp_path):
    """Digits MLP (32,) tanh, 4 neurons per unit fitted for the consumer's neuron, 100
    test digits at 0.1 s: accuracy >= ANN - 1.5 pp, logits RMSE / std <= 0.04."""
    mlp, X_train, X_test, y_test = digits()
    model = popfit.convert(mlp, n_neurons=4, platform=name, max_rate=400.0,
                           connection_synapse=0.005, calibration_data=X_train, seed=0)
    graph = round_trip(popfit.to_nir(model), tmp_path)  # the model's own platform
    assert graph.metadata["platform"] == name
    out = run(name, graph, X_test, 0.1)
    ref = logits(mlp, X_test)
    acc = np.mean(mlp.classes_[out.argmax(axis=1)] == y_test)
    assert acc >= mlp.score(X_test, y_test) - 0.015
    err = np.sqrt(np.mean((out - ref) ** 2)) / np.std(ref)
    assert err <= 0.04, err


def test_rockpool_cannot_import_nirs_lif_node():
    """Why the 'rockpool' platform writes its first layer as CubaLIF: Rockpool 3.1's
    importer reads ``tau_mem`` from NIR's LIF node, which has ``tau``."""
    pytest.importorskip("rockpool")
    graph = popfit.to_nir(tanh_fit("rockpool").network(), platform="nir")
    with pytest.raises(AttributeError, match="tau_mem"):
        import_rockpool(graph)
    adapted = popfit.to_nir(tanh_fit("rockpool").network(), platform="rockpool")
    net = import_rockpool(adapted)
    lif = net.get_submodule("neurons_0")
    assert type(lif).__name__ == "LIFTorch"
    assert float(lif.dt) == pytest.approx(popfit.get_platform("rockpool").nir_dt, rel=1e-6)


def test_norse_imports_the_norse_graph_without_warnings(caplog):
    """Norse warns on any LIF ``r`` other than 1 (it ignores it): the 'norse' platform
    writes r = 1, the 'snntorch' one r = tau / dt."""
    pytest.importorskip("norse.torch")
    fit = tanh_fit("norse")
    with caplog.at_level(logging.WARNING):
        run("norse", popfit.to_nir(fit.network(), platform="norse"), [[0.0]], 0.001)
    assert "expected to be set to 1" not in caplog.text
    with caplog.at_level(logging.WARNING):
        run("norse", popfit.to_nir(fit.network(), platform="snntorch"), [[0.0]], 0.001)
    assert "The parameter r is expected to be set to 1" in caplog.text


def test_sinabs_refuses_an_lif_fit_and_runs_if_nodes(tmp_path):
    """sinabs is integrate-and-fire: its platform fits SpikingRectifiedLinear (IF nodes);
    the importer's own check refuses an LI node with r != 1 (what NIR's default LI
    read-out at nir_dt keeps at 1 anyway)."""
    sinabs_nir = pytest.importorskip("sinabs.nir")
    fit = tanh_fit("sinabs")
    assert isinstance(fit.neuron_type, nengo.SpikingRectifiedLinear)
    graph = popfit.to_nir(fit.network(), platform="sinabs", readout="LI")
    net = sinabs_nir.from_nir(graph, batch_size=1)
    kinds = {type(m).__name__ for m in net.modules()}
    assert {"IAFSqueeze", "ExpLeakSqueeze"} <= kinds
    # the LI read-out computes what the affine one does, filtered
    x = np.linspace(-2, 2, 9)[:, None]
    y = run("sinabs", round_trip(graph, tmp_path), x, 0.2)
    assert np.sqrt(np.mean((y[:, 0] - np.tanh(x[:, 0])) ** 2)) / 2.0 < 0.03
    bad = popfit.to_nir(fit.network(), platform="sinabs", readout="LI")
    bad.nodes["readout"].r = bad.nodes["readout"].r * 2
    with pytest.raises(ValueError, match="`r` must be 1"):
        sinabs_nir.from_nir(bad, batch_size=1)
