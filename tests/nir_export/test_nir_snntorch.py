"""popfit graphs run by a real NIR consumer: snnTorch 1.0 (its own importer).

Run in the NIR venv (bash .ci/make_nir_venv /work/venvs/nir); skipped where
torch or snnTorch are missing. References are independent of the graph:
``np.tanh`` for fitted units, the trained ANN's logits for converted models.
"""

import contextlib
import functools
import io
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
pytest.importorskip("snntorch")
pytest.importorskip("nirtorch")
nir = pytest.importorskip("nir")
import snntorch.utils  # noqa: E402
from snntorch.import_nir import import_from_nir  # noqa: E402

from popfit.nir import to_nir  # noqa: E402

SNNTORCH = popfit.get_platform("snntorch")

# NIR fits have tau_ref = 0 < nengo's dt: exporting them to nengo warns, by design
pytestmark = pytest.mark.filterwarnings("ignore:.*tau_ref = .* < dt = :UserWarning")

# Small networks: torch's thread pool only adds contention on a shared machine
torch.set_num_threads(1)


def run_snntorch(graph, x, seconds):
    """Import ``graph`` with snnTorch, feed the constant batch ``x`` for ``seconds``
    at snnTorch's dt; the output averaged over the last half."""
    with contextlib.redirect_stdout(io.StringIO()):  # the importer prints progress
        net = import_from_nir(graph)
    snntorch.utils.reset(net)
    steps = int(round(seconds / SNNTORCH.nir_dt))
    xt = torch.tensor(np.asarray(x), dtype=torch.float32)
    total, state = 0.0, None
    with torch.no_grad():
        for step in range(steps):
            out, state = net(xt, state)
            if step >= steps // 2:
                total = total + out.numpy().astype(float)
    return total / (steps - steps // 2)


@pytest.fixture(scope="module")
def tanh_fit():
    return popfit.fit_activation("tanh", 4, neuron_type=SNNTORCH.fit_neuron_type(),
                                 max_rate=400.0, synapse=0.02, seed=0)


def test_population_neuron_computes_tanh(tanh_fit):
    x = np.linspace(-2.5, 2.5, 21)[:, None]
    y = run_snntorch(to_nir(tanh_fit.network(), platform="snntorch"), x, 0.2)
    assert y.shape == (21, 1)
    nrmse = np.sqrt(np.mean((y[:, 0] - np.tanh(x[:, 0])) ** 2)) / 2.0
    assert nrmse < 0.03, nrmse


def test_layer_chain_computes_tanh_of_tanh(tanh_fit):
    """Two layers, neuron to neuron through a CubaLIF synapse, with a transform."""
    t = np.array([[0.8, -0.6, 0.3], [-0.5, 0.2, 0.9]])
    layers = [PopulationLayer(tanh_fit, 3), PopulationLayer(tanh_fit, 2)]
    graph = to_nir(layers, transforms=[t], platform="snntorch")
    x = np.random.default_rng(0).uniform(-2, 2, size=(30, 3))
    y = run_snntorch(graph, x, 0.2)
    ref = np.tanh(np.tanh(x) @ t.T)
    nrmse = np.sqrt(np.mean((y - ref) ** 2)) / np.ptp(ref)
    assert nrmse < 0.03, nrmse


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    return X_train, X_test[:100], y_test[:100]


@functools.lru_cache(maxsize=None)
def ann(hidden):
    X, y = load_digits(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MLPClassifier(hidden_layer_sizes=hidden, activation="tanh", max_iter=1000,
                             random_state=0).fit(X_train, y_train)


def logits(mlp, X):
    a = X
    for w, b in zip(mlp.coefs_[:-1], mlp.intercepts_[:-1]):
        a = np.tanh(a @ w + b)
    return a @ mlp.coefs_[-1] + mlp.intercepts_[-1]


@pytest.mark.parametrize("hidden, neuron_type, drop, max_err, max_drop", [
    ((32,), nengo.LIF(tau_ref=0), False, 0.035, 0.01),  # bar: ANN-level accuracy, logits RMSE/std <= 0.035 (measured 0.031)
    ((32,), SNNTORCH.fit_neuron_type(), False, 0.029, 0.01),  # whole-step fit (0.027)
    # 2 hidden layers, no bar: measured RMSE/std 0.044 with refit (0.054
    # without), 96% vs the ANN's 98%: two borderline digits of these 100
    ((32, 32), nengo.LIF(tau_ref=0), False, 0.055, 0.03),
])
def test_digits_in_snntorch(hidden, neuron_type, drop, max_err, max_drop, digits):
    """Digits MLP, 4 LIF per unit, 100 test digits at 0.1 s: accuracy >= ANN - max_drop,
    logits RMSE / std(ANN logits) <= max_err."""
    X_train, X_test, y_test = digits
    mlp = ann(hidden)
    model = popfit.convert(mlp, n_neurons=4, neuron_type=neuron_type, max_rate=400.0,
                           connection_synapse=0.005, calibration_data=X_train, seed=0)
    out = run_snntorch(to_nir(model, platform="snntorch", drop_tau_ref=drop), X_test, 0.1)
    ref = logits(mlp, X_test)
    acc = np.mean(mlp.classes_[out.argmax(axis=1)] == y_test)
    assert acc >= mlp.score(X_test, y_test) - max_drop
    err = np.sqrt(np.mean((out - ref) ** 2)) / np.std(ref)
    assert err <= max_err, err


def test_refractory_mismatch_is_why_to_nir_refuses(digits):
    """nengo's default LIF (tau_ref = 2 ms) fit, exported anyway: the logits are far off
    (measured RMSE/std 1.97), which is why to_nir refuses it by default."""
    X_train, X_test, _ = digits
    mlp = ann((32,))
    model = popfit.convert(mlp, n_neurons=4, calibration_data=X_train, seed=0)
    out = run_snntorch(to_nir(model, platform="snntorch", drop_tau_ref=True), X_test, 0.1)
    ref = logits(mlp, X_test)
    assert np.sqrt(np.mean((out - ref) ** 2)) / np.std(ref) > 0.5
