import nengo
import numpy as np
import pytest
import scipy.signal

from popfit.exceptions import PopfitTypeError, PopfitValueError
from popfit.neurons import (RateModel, neuron_type_from_dict, neuron_type_to_dict,
                            resolve_neuron_type, spike_noise_variance, spiking_twin)


@pytest.mark.parametrize("neuron_type", [nengo.LIF(), nengo.LIFRate(tau_rc=0.05, tau_ref=0.001),
                                         nengo.RectifiedLinear(), nengo.SpikingRectifiedLinear()])
def test_rate_model_matches_nengo_rates(neuron_type, rng):
    """The closed forms the optimizer uses are nengo's own curves, and their slopes."""
    model = RateModel(neuron_type)
    r = rng.uniform(20, 400, size=5)
    c = rng.uniform(-0.9, 0.9, size=5)
    gain, bias = neuron_type.gain_bias(r, c)
    s = np.linspace(-1, 1, 301)
    k, dk = model.k_and_dk(r)
    j = model.j0 + k * (s[:, None] - c) / (1 - c)
    ours, slope = model.rate_and_slope(j)
    theirs = neuron_type.rates(s[:, None] * np.ones(5), gain, bias)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-9)
    # slope by central differences, away from the LIF onset
    h = 1e-6
    up, _ = model.rate_and_slope(j + h)
    dn, _ = model.rate_and_slope(j - h)
    ok = (j - model.j0) > 1e-3
    np.testing.assert_allclose(slope[ok], ((up - dn) / (2 * h))[ok], rtol=1e-4)
    kh, _ = model.k_and_dk(r + 1e-4)
    kl, _ = model.k_and_dk(r - 1e-4)
    np.testing.assert_allclose(dk, (kh - kl) / 2e-4, rtol=1e-5)


def test_spike_noise_variance_matches_simulated_regular_trains():
    """Phase-averaged variance of a Lowpass-filtered regular spike train."""
    tau, dt = 0.01, 1e-5
    for rate in (5.0, 50.0, 300.0):
        t = np.arange(0, 4.0, dt)
        spikes = np.zeros_like(t)
        spikes[(np.arange(0, 4.0, 1 / rate) / dt).astype(int)] = 1 / dt
        decay = np.exp(-dt / tau)
        filtered = scipy.signal.lfilter([1 - decay], [1, -decay], spikes)
        steady = filtered[t > 1.0]
        var = float(spike_noise_variance(rate, tau)[0])
        assert abs(steady.var() - var) / var < 0.03, (rate, steady.var(), var)


def test_resolve_neuron_type_names_and_errors():
    assert isinstance(resolve_neuron_type("LIF"), nengo.LIF)
    assert isinstance(resolve_neuron_type("relu"), nengo.RectifiedLinear)
    with pytest.raises(PopfitValueError, match="unknown neuron_type 'izhikevich'"):
        resolve_neuron_type("izhikevich")
    with pytest.raises(PopfitTypeError, match="unsupported neuron_type"):
        resolve_neuron_type(nengo.Tanh())
    with pytest.raises(PopfitTypeError, match="instance, not the class LIF"):
        resolve_neuron_type(nengo.LIF)
    with pytest.raises(PopfitValueError, match="amplitude must be 1"):
        resolve_neuron_type(nengo.LIF(amplitude=0.5))


def test_neuron_type_dict_round_trip_and_twins():
    for nt in (nengo.LIF(tau_rc=0.03), nengo.LIFRate(), nengo.RectifiedLinear(),
               nengo.SpikingRectifiedLinear()):
        back = neuron_type_from_dict(neuron_type_to_dict(nt))
        assert type(back) is type(nt) and repr(back) == repr(nt)
    assert isinstance(spiking_twin(nengo.LIFRate(tau_rc=0.03)), nengo.LIF)
    assert isinstance(spiking_twin(nengo.RectifiedLinear()), nengo.SpikingRectifiedLinear)


def test_twins_follow_nengos_spiking_property():
    """Twins are picked by nengo's `spiking` flag."""
    from popfit.neurons import SUPPORTED, rate_twin

    assert not any(cls.negative for cls in SUPPORTED)
    for cls in SUPPORTED:
        nt = cls()
        assert spiking_twin(nt).spiking and not rate_twin(nt).spiking
        assert isinstance(spiking_twin(nt), type(rate_twin(nt)))  # spiking derives from rate
    lif = spiking_twin(nengo.LIFRate(tau_rc=0.03, tau_ref=0.004))
    assert (lif.tau_rc, lif.tau_ref, lif.min_voltage) == (0.03, 0.004, 0)
    assert spiking_twin(nengo.Tanh()) is None
    with pytest.raises(PopfitTypeError, match=r"can emit negative output \(nengo's `negative`"):
        resolve_neuron_type(nengo.Tanh())


@pytest.mark.parametrize("entry, error, match", [
    ({"type": "LIF", "tau_rc": "0.02"}, PopfitTypeError,
     r"neuron type entry LIF.tau_rc must be a finite number \(got '0.02' of type str\)"),
    ({"type": "LIF", "tau_ref": True}, PopfitTypeError, r"LIF.tau_ref must be a finite number"),
    ({"type": "LIF", "tau_rc": float("nan")}, PopfitValueError,
     r"LIF.tau_rc must be a finite number \(got nan\)"),
    ({"type": "LIF", "tau_rc": -0.02}, PopfitValueError,
     r"neuron type entry .*: LIF.tau_rc: Value must be greater than 0 \(got -0.02\)"),
    ({"type": "RectifiedLinear", "tau_rc": 0.02}, PopfitValueError,
     r"unknown parameters \['tau_rc'\]; RectifiedLinear takes \[\]"),
    ({"type": "LIFRate", "min_voltage": 0}, PopfitValueError,
     r"unknown parameters \['min_voltage'\]; LIFRate takes \['tau_rc', 'tau_ref'\]"),
    ({"type": "Tanh"}, PopfitValueError, r"unknown neuron type entry"),
    (["LIF"], PopfitValueError, r"unknown neuron type entry"),
])
def test_neuron_type_from_dict_errors(entry, error, match):
    """A string parameter raised float()'s error, a negative one nengo's, and a parameter
    of another type (tau_rc for RectifiedLinear) Python's TypeError; LIFRate silently
    dropped a min_voltage."""
    with pytest.raises(error, match=match):
        neuron_type_from_dict(entry)


def test_rate_twin_of_an_unsupported_type_is_a_popfit_error():
    from popfit.neurons import rate_twin

    with pytest.raises(PopfitTypeError, match=r"neuron_type must be one of popfit's types .*"
                                              r"\(got Tanh\(\) of type Tanh\)"):
        rate_twin(nengo.Tanh())
