"""`evaluate_spiking`: real `nengo.Simulator` runs against independent references.

The references: the ideal trace is recomputed here by filtering ``target(x)``
with the discrete lowpass nengo probes use (scipy.signal.lfilter); spike counts
and errors are recomputed from the probed traces; the signed baseline's error
is predicted from the regular-spike-train noise model (validated against
simulated spike trains in test_neurons.py) and from a figure measured
independently before popfit existed: one ``nengo.RegularSpiking(nengo.Tanh(
tau_ref=0.0025))`` neuron (max 400 Hz, about 308 spikes/s) on a 6 s linear sweep
of (-3, 3), dt 1 ms, output and ideal both through ``Lowpass(0.01)``, gave NRMSE
0.036 (RMSE over the range of tanh on the domain).
"""

import dataclasses
import json

import nengo
import numpy as np
import pytest
import scipy.signal

import popfit
from popfit.exceptions import PopfitTypeError, PopfitValueError
from popfit.neurons import spike_noise_variance
from popfit.spiking import SpikingReport, evaluate_spiking

SYN = 0.01
MAX_RATE = 400.0


def _fit(target, n):
    return popfit.fit_activation(target, n, neuron_type="LIF", max_rate=MAX_RATE,
                                 synapse=SYN, seed=0)


@pytest.fixture(scope="module")
def reports():
    """One fit and one 6 s evaluation per case, shared by the tests below."""
    cases = {("tanh", 4), ("tanh", 8), ("sigmoid", 4), ("linear", 4)}
    return {case: evaluate_spiking(_fit(*case), synapse=SYN) for case in cases}


def lowpass(u, tau, dt):
    """nengo's probe filter: y[k] = a y[k-1] + (1 - a) u[k-1], a = exp(-dt / tau)."""
    a = np.exp(-dt / tau)
    return scipy.signal.lfilter([0.0, 1.0 - a], [1.0, -a], u)


@pytest.mark.slow  # shares the `reports` fixture: four 6 s simulations
def test_report_traces_against_independent_references(reports):
    rep = reports[("tanh", 4)]
    fit = rep.fit
    lo, hi = fit.domain
    n_steps = int(round(rep.duration / rep.dt))
    assert isinstance(rep, SpikingReport)
    assert rep.t.shape == rep.x.shape == rep.ideal.shape == rep.output.shape == (n_steps,)
    assert rep.spikes.shape == (n_steps, fit.n_neurons)
    # the sweep: linear from lo to hi over the duration
    np.testing.assert_allclose(rep.x, lo + (hi - lo) * rep.t / rep.duration, atol=1e-12)
    # the ideal is tanh(x) through the same lowpass the output gets
    np.testing.assert_allclose(rep.ideal, lowpass(np.tanh(rep.x), SYN, rep.dt), atol=1e-12)
    # the output is the decoded spikes through that same lowpass (a fair comparison)
    np.testing.assert_allclose(rep.output, lowpass(rep.spikes @ fit.decoders, SYN, rep.dt),
                               atol=1e-9)
    assert rep.internal_synapse is None and rep.synapse == SYN
    # positive-only: spikes are 0 or 1/dt; the signed baseline does emit negative ones
    assert set(np.unique(rep.spikes)) <= {0.0, 1.0 / rep.dt}
    assert rep.spikes.min() >= 0.0
    assert rep.baseline_spikes.shape == (n_steps, 1)
    assert rep.baseline_spikes.min() == -1.0 / rep.dt
    # counts and errors, recomputed from the traces
    count = int(np.count_nonzero(rep.spikes))
    assert rep.spike_count == count
    assert rep.mean_rate == pytest.approx(count / (rep.duration * fit.n_neurons))
    assert rep.baseline_spike_count == np.count_nonzero(rep.baseline_spikes)
    scale = 2 * np.tanh(3.0)
    err = rep.output - rep.ideal
    assert rep.nrmse == pytest.approx(np.sqrt(np.mean(err**2)) / scale)
    assert rep.max_error == pytest.approx(np.max(np.abs(err)) / scale)
    assert rep.ratio == pytest.approx(rep.nrmse / rep.baseline_nrmse)
    # the spiking error is real, not a trivial zero, and the rate error is small
    assert 0.015 < rep.nrmse < 0.05


@pytest.mark.slow  # shares the `reports` fixture: four 6 s simulations
@pytest.mark.parametrize("target", ["tanh", "sigmoid", "linear"])
def test_signed_baseline_matches_spike_noise_physics(reports, target):
    """The baseline's error is its regular-train noise: predicted within 5%."""
    rep = reports[(target, 4)]
    lo, hi = rep.fit.domain
    x = np.linspace(lo, hi, 1001)
    f = rep.fit.target(x)
    rate = {"tanh": MAX_RATE * np.abs(np.tanh(x)),
            "sigmoid": MAX_RATE * f,
            "linear": MAX_RATE * np.abs(x) / max(abs(lo), abs(hi))}[target]
    unit = {"tanh": 1 / MAX_RATE, "sigmoid": 1 / MAX_RATE,
            "linear": max(abs(lo), abs(hi)) / MAX_RATE}[target]
    var, _ = spike_noise_variance(rate, SYN)
    predicted = np.sqrt(var.mean()) * unit / np.ptp(f)
    assert rep.baseline_nrmse == pytest.approx(predicted, rel=0.05)
    # and the baseline tracks the target on average (no bias, right scale)
    assert abs(np.mean(rep.baseline_output - rep.ideal)) < 0.01 * np.ptp(f)
    if target == "tanh":
        # measured independently (module docstring): 0.036 at about 308 spikes/s
        assert rep.baseline_nrmse == pytest.approx(0.036, rel=0.05)
        assert rep.baseline_mean_rate == pytest.approx(308, rel=0.03)


@pytest.mark.slow  # shares the `reports` fixture: four 6 s simulations
@pytest.mark.parametrize("case", [("tanh", 4), ("tanh", 8), ("sigmoid", 4), ("linear", 4)])
def test_fit_noise_model_predicts_measured_error(reports, case):
    rep = reports[case]
    assert rep.nrmse == pytest.approx(rep.fit.spiking_nrmse, rel=0.08)


@pytest.mark.slow  # shares the `reports` fixture: four 6 s simulations
@pytest.mark.parametrize("case, bar", [
    (("tanh", 4), 0.85),
    (("tanh", 8), 0.62),
    (("sigmoid", 4), 1.0),
    (("linear", 4), 1.0),
])
def test_spiking_accuracy_beats_signed_baseline(reports, case, bar):
    rep = reports[case]
    assert rep.ratio <= bar, rep.report()


@pytest.mark.slow  # shares the `reports` fixture: four 6 s simulations
def test_report_and_to_dict(reports):
    rep = reports[("linear", 4)]
    text = rep.report()
    assert "RegularSpiking(LinearRate())" in text and f"{rep.nrmse:.5f}" in text
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["nrmse"] == rep.nrmse and d["baseline_spike_count"] == rep.baseline_spike_count
    assert d["ratio"] == pytest.approx(rep.ratio)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rep.nrmse = 0.0  # frozen


def test_no_baseline_for_relu_target_and_determinism():
    fit = popfit.fit_activation("relu", 2, neuron_type="relu", synapse=SYN, seed=0)
    rep = evaluate_spiking(fit, duration=1.0, seed=3)
    assert rep.baseline_name is None and rep.ratio is None
    assert rep.baseline_output is None and rep.baseline_spikes is None
    assert rep.baseline_nrmse is None and rep.baseline_spike_count is None
    assert "none" in rep.report()
    assert json.loads(json.dumps(rep.to_dict()))["baseline_nrmse"] is None
    assert rep.spikes.min() >= 0 and rep.spike_count > 100
    assert isinstance(rep.fit.neuron_type, nengo.RectifiedLinear)
    again = evaluate_spiking(fit, duration=1.0, seed=3)
    np.testing.assert_array_equal(again.output, rep.output)


def test_evaluate_spiking_errors():
    fit = popfit.fit_activation("tanh", 2, max_rate=MAX_RATE, synapse=None, seed=0)
    for bad in (0, -0.01):
        with pytest.raises(PopfitValueError,
                           match=rf"evaluate_spiking: synapse must be .*> 0 \(got {bad}"):
            evaluate_spiking(fit, synapse=bad)
    with pytest.raises(PopfitValueError, match="synapse"):
        evaluate_spiking(fit, synapse=None)
    with pytest.raises(PopfitValueError, match=r"duration .*\(got -1"):
        evaluate_spiking(fit, duration=-1)
    with pytest.raises(PopfitValueError, match=r"dt must be < 0.5"):
        evaluate_spiking(fit, duration=0.5, dt=1.0)
    with pytest.raises(PopfitTypeError, match="PopulationFit"):
        evaluate_spiking("tanh")
    # from_parameters refuses a signed rate type; a fit made by hand may still hold one
    odd = dataclasses.replace(fit, neuron_type=nengo.Sigmoid())
    with pytest.raises(PopfitValueError, match=r"neuron_type Sigmoid.*spiking"):
        evaluate_spiking(odd)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(fit=None), PopfitTypeError, r"fit must be a popfit.PopulationFit \(got NoneType\)"),
    (dict(synapse="0.01"), PopfitTypeError, r"synapse must be a positive number"),
    (dict(synapse=nengo.Lowpass(0.01)), PopfitTypeError, r"synapse must be a positive number"),
    (dict(duration="1"), PopfitTypeError, r"duration must be a positive number"),
    (dict(duration=np.inf), PopfitValueError, r"duration must be finite and > 0 \(got inf\)"),
    (dict(dt=np.nan), PopfitValueError, r"dt must be finite and > 0 \(got nan\)"),
    (dict(dt=[0.001]), PopfitTypeError, r"dt must be a positive number"),
    (dict(seed=1.5), PopfitTypeError, r"seed must be an integer in \[0, 4294967295\]"),
    (dict(seed=None), PopfitTypeError, r"seed must be an integer in \[0, 4294967295\]"),
])
def test_evaluate_spiking_argument_types(kwargs, error, match):
    fit = popfit.fit_activation("tanh", 1, max_rate=MAX_RATE, synapse=None, seed=0,
                                search=popfit.SearchOptions.quick())
    kwargs = {"fit": fit, **kwargs}
    with pytest.raises(error, match="^evaluate_spiking: " + match):
        evaluate_spiking(**kwargs)
