"""Fits for NIR's neuron model (no refractory period): no ``nir`` needed.

NIR's LIF has no refractory period, so populations meant for a NIR graph are
fitted with ``nengo.LIF(tau_ref=0)``; their rate curve has no ``1 / tau_ref``
cap. References: the textbook LIF rate ``1 / (tau_rc * log(1 + 1 / (J - 1)))``.
"""

import importlib
import sys
import warnings

import nengo
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPRegressor

import popfit

# NIR fits have tau_ref = 0 < nengo's dt: exporting them to nengo warns, by design
pytestmark = pytest.mark.filterwarnings("ignore:.*tau_ref = .* < dt = :UserWarning")


def lif_rate_no_ref(j, tau_rc):
    with np.errstate(divide="ignore", invalid="ignore"):
        r = 1.0 / (tau_rc * np.log1p(1.0 / (j - 1.0)))
    return np.where(j > 1.0, r, 0.0)


@pytest.mark.parametrize("max_rate", [400.0, 1000.0])
def test_fit_without_refractory_period(max_rate):
    """tau_ref = 0 fits reach max_rate (also above nengo's default 1/tau_ref = 500 Hz)
    and their curve is the textbook LIF rate with no refractory period."""
    nt = nengo.LIF(tau_ref=0)
    fit = popfit.fit_activation("tanh", 4, neuron_type=nt, max_rate=max_rate, synapse=0.02,
                                seed=0)
    x = np.linspace(-3, 3, 2001)
    j = fit.gain * fit.encoders * x[:, None] + fit.bias
    rates = lif_rate_no_ref(j, nt.tau_rc)
    assert rates.max() <= max_rate * (1 + 1e-6)
    assert rates.max() >= 0.5 * max_rate
    np.testing.assert_allclose(rates @ fit.decoders, fit.predict(x), atol=1e-9)
    assert np.sqrt(np.mean((fit.predict(x) - np.tanh(x)) ** 2)) / 2 < 0.02


def test_convert_for_the_nir_platform():
    """convert(..., platform="nir") fits get_platform("nir").fit_neuron_type(), which
    is nengo.LIF(tau_ref=0); its rate-level output is the source model's within the
    fit error."""
    X, y = load_digits(return_X_y=True)
    X = X[:300] / 16.0
    target = X[:, 20:22]  # two pixels: a 2-output regression
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPRegressor(hidden_layer_sizes=(8,), activation="tanh", max_iter=300, random_state=0).fit(
            X, target)
    neuron_type = popfit.get_platform("nir").fit_neuron_type()
    assert neuron_type.tau_ref == 0 and neuron_type.tau_rc == nengo.LIF().tau_rc
    model = popfit.convert(mlp, n_neurons=4, platform="nir", calibration_data=X, seed=0)
    assert model.neuron_type == neuron_type and model.fits[0].neuron_type.tau_ref == 0
    err = model.rate_output(X) - mlp.predict(X)
    assert np.sqrt(np.mean(err ** 2)) / np.ptp(mlp.predict(X)) < 0.05


def test_to_nir_without_nir_names_the_extra(monkeypatch):
    """Without the nir package, to_nir raises an ImportError naming popfit[nir]."""
    monkeypatch.setitem(sys.modules, "nir", None)  # import nir -> ImportError
    nir_module = importlib.import_module("popfit.nir")
    fit = popfit.fit_activation("tanh", 2, neuron_type=nengo.LIF(tau_ref=0), seed=0)
    with pytest.raises(ImportError, match=r"pip install 'popfit\[nir\]'"):
        nir_module.to_nir(fit.network())
    with pytest.raises(ImportError, match=r"popfit\[nir\]"):
        popfit.to_nir(fit.network())
