import dataclasses

import nengo
import numpy as np
import pytest

import popfit
from popfit.exceptions import PopfitTypeError, PopfitValueError
from popfit.neurons import spike_noise_variance


@pytest.fixture(scope="module")
def tanh4():
    return popfit.fit_activation("tanh", 4, synapse=None, seed=0)


def _nrmse(fit, f, n=1001):
    """NRMSE recomputed from nengo's own rate curve, independent of the fit's numbers."""
    lo, hi = fit.domain
    x = np.linspace(lo, hi, n)
    rates = fit.neuron_type.rates(x[:, None] * fit.encoders, fit.gain, fit.bias)
    y = f(x)
    return np.sqrt(np.mean((rates @ fit.decoders - y) ** 2)) / np.ptp(y)


def _nengo_default_median(f, domain, n_neurons, neuron_type, seeds=20):
    """Nengo's default random tuning (Ensemble defaults, LstsqL2), built by nengo."""
    lo, hi = domain
    radius = max(abs(lo), abs(hi))
    x = np.linspace(lo, hi, 1001)
    out = []
    for seed in range(seeds):
        with nengo.Network(seed=seed) as net:
            ens = nengo.Ensemble(n_neurons, 1, radius=radius, neuron_type=neuron_type)
        with nengo.Simulator(net, progress_bar=False) as sim:
            gain, bias = sim.data[ens].gain, sim.data[ens].bias
            enc = sim.data[ens].scaled_encoders[:, 0] / gain
        a = neuron_type.rates(x[:, None] * enc * gain / 1.0, np.ones_like(gain), bias)
        d, _ = nengo.solvers.LstsqL2()(a, f(x))
        out.append(np.sqrt(np.mean((a @ d - f(x)) ** 2)) / np.ptp(f(x)))
    return np.median(out)


def test_fit_fields_and_nengo_semantics(tanh4):
    fit = tanh4
    assert fit.n_neurons == 4
    assert set(np.unique(fit.encoders)) <= {-1.0, 1.0}
    assert np.all(fit.gain > 0)
    x = np.linspace(-3, 3, 501)
    rates = nengo.LIF().rates(x[:, None] * fit.encoders, fit.gain, fit.bias)
    np.testing.assert_allclose(fit.rates(x), rates)
    np.testing.assert_allclose(fit.predict(x), rates @ fit.decoders)
    np.testing.assert_allclose(fit(x), fit.predict(x))
    assert abs(fit.nrmse - _nrmse(fit, np.tanh)) < 1e-12
    # nengo's own max_rates/intercepts convention, at the faced domain edge
    for i in range(4):
        edge = 3.0
        assert fit.neuron_type.rates(np.array([[edge]]), fit.gain[i:i + 1],
                                     fit.bias[i:i + 1])[0, 0] == pytest.approx(fit.max_rates[i])
        c = fit.intercepts[i]
        below = fit.neuron_type.rates(np.array([[c - 1e-6]]), fit.gain[i:i + 1], fit.bias[i:i + 1])
        above = fit.neuron_type.rates(np.array([[c + 1e-3]]), fit.gain[i:i + 1], fit.bias[i:i + 1])
        assert below[0, 0] == 0 and above[0, 0] > 0
    with pytest.raises(ValueError, match="read-only"):
        fit.gain[0] = 1.0  # immutable
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.nrmse = 0.0


@pytest.mark.parametrize("target,neuron_type,synapse", [
    ("tanh", "LIF", None), ("sigmoid", "LIF", None), ("linear", "LIF", 0.005),
    ("tanh", "relu", 0.01), ("softplus", "LIF", 0.005)])
def test_max_rate_is_respected_exactly(target, neuron_type, synapse):
    fit = popfit.fit_activation(target, 4, neuron_type=neuron_type, max_rate=250.0,
                                synapse=synapse, seed=1)
    x = np.linspace(*fit.domain, 20001)
    assert fit.rates(x).max() <= 250.0 * (1 + 1e-12)
    assert np.all(fit.rates(x) >= 0)


def test_much_better_than_nengo_default(tanh4):
    """Rate-level accuracy against Nengo's default random tuning, built by nengo itself.

    Expected baseline: 0.082, the median NRMSE over 50 seeds of nengo.Ensemble's
    default tuning (LIF, N=4, LstsqL2 reg 0.1, 1001 points on (-3, 3)), measured
    for the project's design notes when popfit was started; 20 seeds here give
    a median within (0.05, 0.12).
    """
    base = _nengo_default_median(np.tanh, (-3, 3), 4, nengo.LIF())
    assert 0.05 < base < 0.12
    assert tanh4.nrmse < base / 8, (tanh4.nrmse, base)
    assert tanh4.nrmse < 0.009


def test_linear_with_two_relu_is_exact():
    fit = popfit.fit_activation("linear", 2, neuron_type="RectifiedLinear", synapse=None)
    assert _nrmse(fit, lambda x: x) < 1e-6
    assert sorted(fit.encoders) == [-1, 1]


@pytest.mark.parametrize("f,domain", [(np.sin, (-np.pi, np.pi)), (np.abs, (-1.0, 1.0))])
def test_callable_non_monotonic_targets(f, domain):
    fit = popfit.fit_activation(f, 6, domain=domain, synapse=None, seed=0)
    base = _nengo_default_median(f, domain, 6, nengo.LIF(), seeds=10)
    assert _nrmse(fit, f) < base / 10, (_nrmse(fit, f), base)
    assert fit.target.name == f"callable {f.__name__}"


def test_same_seed_is_bit_identical():
    a = popfit.fit_activation("sigmoid", 3, seed=7).to_dict()
    b = popfit.fit_activation("sigmoid", 3, seed=7).to_dict()
    a.pop("fit_time"), b.pop("fit_time")
    assert a == b


def test_noise_aware_fit_beats_rate_only_fit_when_spiking():
    """At the deployment synapse, the expected spiking error (rate error plus the
    spike noise passed on by the decoders) is lower for the noise-aware fit."""
    synapse = 0.01
    rate_only = popfit.fit_activation("tanh", 4, synapse=None, seed=0)
    aware = popfit.fit_activation("tanh", 4, synapse=synapse, seed=0)

    def expected_spiking(fit):
        x = np.linspace(-3, 3, 1001)
        a = fit.rates(x)
        var = spike_noise_variance(a, synapse)[0]
        err = a @ fit.decoders - np.tanh(x)
        return np.sqrt(np.mean(err**2) + np.mean(var @ fit.decoders**2)) / np.ptp(np.tanh(x))

    assert expected_spiking(aware) == pytest.approx(aware.spiking_nrmse)
    # measured: 0.029 against 0.054 (how much worse the rate-only optimum is
    # depends on which basin it lands in; the design notes one at 0.30)
    assert expected_spiking(aware) < 0.7 * expected_spiking(rate_only)
    assert aware.nrmse > rate_only.nrmse  # it trades rate error for less noise
    assert np.abs(aware.decoders).max() < np.abs(rate_only.decoders).max()


def test_neuron_type_instances_accepted():
    fit = popfit.fit_activation("tanh", 2, neuron_type=nengo.LIFRate(tau_rc=0.05, tau_ref=0.001),
                                max_rate=600.0, synapse=None)
    assert isinstance(fit.neuron_type, nengo.LIFRate) and fit.neuron_type.tau_rc == 0.05
    assert fit.max_rates.max() <= 600.0 * (1 + 1e-12)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(target="tanhh"), PopfitValueError, r"unknown target 'tanhh'; known names are .*sigmoid"),
    (dict(n_neurons=0), PopfitValueError, r"n_neurons must be an integer in \[1, 32\] \(got 0\)"),
    (dict(n_neurons=2.5), PopfitTypeError, r"n_neurons must be an integer in \[1, 32\] \(got 2.5"),
    (dict(n_neurons=True), PopfitTypeError, r"n_neurons must be an integer"),
    (dict(domain=(1.0, -1.0)), PopfitValueError, r"lo < hi \(got lo=1.0, hi=-1.0\)"),
    (dict(domain=(0.0, np.inf)), PopfitValueError, r"domain ends must be finite"),
    (dict(domain=(0.0, np.nan)), PopfitValueError, r"domain ends must be finite"),
    (dict(domain="ab"), PopfitValueError, r"domain must be a pair"),
    (dict(max_rate=0.0), PopfitValueError, r"max_rate must be finite and > 0 \(got 0.0\)"),
    (dict(max_rate=-5), PopfitValueError, r"max_rate must be finite and > 0"),
    (dict(max_rate=500.0), PopfitValueError, r"max_rate must be < 500 Hz.*1/tau_ref.*got 500"),
    (dict(synapse=0.0), PopfitValueError, r"synapse must be finite and > 0 \(got 0.0\)"),
    (dict(neuron_type="Izhikevich"), PopfitValueError, r"unknown neuron_type 'Izhikevich'"),
    (dict(neuron_type=nengo.Sigmoid()), PopfitTypeError, r"unsupported neuron_type"),
    (dict(target=42), PopfitTypeError, r"target must be a name"),
    (dict(target=np.sin), PopfitValueError, r"domain is required for a callable target"),
    (dict(target=lambda x: x[:10], domain=(0, 1)), PopfitValueError,
     r"must return a real array of the input's shape \(2001,\)"),
    (dict(target=lambda x: 1 / x, domain=(-1, 1)), PopfitValueError,
     r"non-finite value inf at x=0.0"),
    (dict(target=lambda x: np.log(x), domain=(-1, 1)), PopfitValueError,
     r"non-finite value nan at x=-1.0"),
    (dict(seed=-1), PopfitValueError, r"seed must be an integer in \[0, 4294967295\]"),
])
def test_bad_input(kwargs, exc, match):
    args = dict(target="tanh", n_neurons=2)
    args.update(kwargs)
    target = args.pop("target")
    n = args.pop("n_neurons")
    with np.errstate(all="ignore"), pytest.raises(exc, match=match):
        popfit.fit_activation(target, n, **args)


def test_errors_are_popfit_errors():
    with pytest.raises(popfit.PopfitError):
        popfit.fit_activation("tanh", -1)
    with pytest.raises(ValueError):
        popfit.fit_activation("tanh", -1)


def test_report_and_html(tanh4):
    text = tanh4.report()
    assert "tanh with 4 LIF neurons" in text and f"{tanh4.nrmse:.5f}" in text
    assert len([ln for ln in text.splitlines() if ln.strip().startswith(("0 ", "1 ", "2 ", "3 "))]) == 4
    html = tanh4._repr_html_()
    assert html.count("<tr>") == 4 + 5 + 1 and "rate NRMSE" in html


@pytest.mark.parametrize("target, domain", [("tanh", None), (lambda x: 5.0 * np.tanh(x), (-3, 3))])
def test_noise_aware_decoders_are_optimal_for_the_reported_objective(target, domain):
    """Given the fitted rates, the decoders minimise rate error plus spike noise
    (a ridge problem, solved here independently with numpy's lstsq); this is
    where a target-scale mismatch between the two terms would show."""
    synapse = 0.01
    fit = popfit.fit_activation(target, 4, domain=domain, synapse=synapse, seed=0)
    x = np.linspace(*fit.domain, 1001)
    a = fit.rates(x)
    y = fit.target(x)
    var = spike_noise_variance(a, synapse)[0]
    lam = np.sqrt(var.mean(axis=0) * len(x))
    d_best = np.linalg.lstsq(np.vstack([a, np.diag(lam)]),
                             np.concatenate([y, np.zeros(4)]), rcond=None)[0]

    def expected(d):
        return np.sqrt(np.mean((a @ d - y) ** 2) + np.mean(var @ d**2)) / np.ptp(y)

    assert expected(fit.decoders) == pytest.approx(fit.spiking_nrmse, rel=1e-3)
    assert expected(fit.decoders) <= expected(d_best) * 1.002


def test_eval_points_weight_the_objective():
    """With eval_points the fit minimises the error over their distribution:
    on inputs concentrated off the centre it beats the uniform fit there, and
    loses on the domain as a whole (where the reported nrmse is measured).
    (Not near the centre: the uniform fit puts its onsets there, and is
    already about as good there as the search finds for weighted fits.)"""
    z = np.random.default_rng(0).normal(1.0, 0.4, 4000)
    z = z[np.abs(z) <= 3.0]
    uniform = popfit.fit_activation("tanh", 4, synapse=None, seed=0)
    weighted = popfit.fit_activation("tanh", 4, synapse=None, eval_points=z, seed=0)

    def rms_on(fit, x):
        return np.sqrt(np.mean((fit.predict(x) - np.tanh(x)) ** 2))

    assert rms_on(weighted, z) < 0.9 * rms_on(uniform, z)
    assert weighted.nrmse > uniform.nrmse
    same = popfit.fit_activation("tanh", 4, synapse=None, eval_points=z[:, None], seed=0)
    np.testing.assert_array_equal(same.decoders, weighted.decoders)  # (n, 1) accepted


@pytest.mark.parametrize("bad, match", [
    ([], r"eval_points must be a non-empty 1-d array .*shape \(0,\)"),
    (np.zeros((3, 2)), r"shape \(3, 2\)"),
    ([0.0, 3.5, np.nan], r"inside the domain \[-3.0, 3.0\] \(got 2 of 3 outside, e.g. 3.5\)"),
])
def test_eval_points_errors(bad, match):
    with pytest.raises(PopfitValueError, match=match):
        popfit.fit_activation("tanh", 2, eval_points=bad)


@pytest.mark.slow
def test_singular_levenberg_marquardt_system_does_not_crash():
    """A batch of the search can hold an exactly singular damped system (a neuron whose
    parameters have no effect on the grid): the fit goes on with the least-norm step.
    This fit (a bump, 12 rectified-linear neurons, seed 3) raised numpy's LinAlgError
    "Singular matrix" before; its objective still never increases with N."""
    fit = popfit.fit_activation(lambda x: np.exp(-x**2), 12, domain=(-2.5, 2.5),
                                neuron_type="RectifiedLinear", synapse=0.005, seed=3)
    objectives = np.array(fit.diagnostics.objectives)
    assert np.all(np.diff(objectives) <= 1e-9 * objectives[:-1] + 1e-12)
    assert np.all(np.isfinite(objectives)) and np.isfinite(fit.nrmse)
