"""Fitting with extreme and invalid arguments: extreme and invalid arguments give a correct fit
or a clear popfit error, never a silent wrong result or a raw numpy/scipy error.

Each test names the defect it covers; every one of them failed before the fix.
"""

import pickle

import nengo
import numpy as np
import pytest

import popfit
from popfit.exceptions import PopfitTypeError, PopfitValueError


def _fit(target="tanh", n_neurons=2, **kwargs):
    kwargs.setdefault("seed", 0)
    return popfit.fit_activation(target, n_neurons, **kwargs)


# --- LIF at very low rates -------------------------------------------------

def test_lif_gain_bias_is_nengos_where_nengo_is_accurate_and_positive_below():
    """popfit.neurons.gain_bias equals nengo's LIFRate.gain_bias at ordinary
    rates, and stays exact where nengo's ``1 - 1/(1 - q)`` cancels (gain -0.0)."""
    from popfit.neurons import gain_bias, lif_rate

    lif = nengo.LIF()
    r = np.array([20.0, 63.0, 150.0, 400.0, 499.0])
    c = np.array([-0.9, -0.2, 0.0, 0.5, 0.95])
    np.testing.assert_allclose(gain_bias(lif, r, c), lif.gain_bias(r, c), rtol=1e-12)
    slow = np.array([0.1, 0.5, 1.0])
    gain, bias = gain_bias(lif, slow, np.zeros(3))
    assert np.all(gain > 0)
    assert np.all(lif.gain_bias(slow, np.zeros(3))[0] == 0)  # nengo's cancellation
    # independent check: the LIF rate at the current J(1) = gain + bias is the max rate
    np.testing.assert_allclose(lif_rate(lif, gain), slow, rtol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_rate=3.0), r"max_rate must be >= 7\.75\d* Hz \(got 3\).*J - 1"),
    (dict(max_rate=1e-9), r"max_rate must be >= 7\.75\d* Hz \(got 1e-09\)"),
    (dict(max_rate=3.0, domain=(8.22, 8.31), synapse=0.089), r"max_rate must be >= 7\.75"),
    (dict(neuron_type=nengo.LIF(tau_rc=1e-6)),
     r"LIF\(tau_rc=1e-06\) cannot be fitted: max_rate would have to be >= 2\.15\d*e\+04 Hz"
     r".*larger tau_rc"),
    (dict(neuron_type="RectifiedLinear", max_rate=1e-300), r"max_rate must be >= 0\.001 Hz"),
    (dict(neuron_type="RectifiedLinear", max_rate=1e300), r"max_rate must be < 1e\+06 Hz"),
])
def test_max_rate_too_low_for_float64_is_refused_naming_the_bound(kwargs, match):
    """Defect: LIF at <= 3 Hz gave success=True with dead neurons (gain -0.0, NaN
    intercepts) or crashed inside scipy ("array must not contain infs or NaNs")."""
    with pytest.raises(PopfitValueError, match=match):
        _fit(**kwargs)


def test_slowest_admitted_lif_fit_is_valid_saves_and_loads(tmp_path):
    """At the lowest admitted max_rate every gain is positive, every intercept
    finite, no neuron exceeds max_rate, and the saved file loads."""
    from popfit.neurons import max_rate_bounds

    max_rate = max_rate_bounds(nengo.LIF())[0] * 1.01
    fit = _fit("tanh", 3, max_rate=max_rate)
    assert np.all(fit.gain > 0) and np.all(np.isfinite(fit.intercepts))
    x = np.linspace(*fit.domain, 20001)
    assert fit.rates(x).max() <= max_rate * (1 + 1e-12)
    fit.save(tmp_path / "slow.json")
    back = popfit.load_fit(tmp_path / "slow.json")
    np.testing.assert_array_equal(back.predict(x), fit.predict(x))


def test_decoders_are_solved_for_nengos_rates_and_unresolved_neurons_are_reported(
        monkeypatch):
    """If nengo's rates of the exported gain and bias differ from the fitted
    curves (neurons too slow for float64's J), the fit says so (success False,
    a warning) and its decoders are the least-squares ones for nengo's rates."""
    import popfit.fit.population as fit_module

    # emulate float64 losing the slowest neuron: shift one exported bias below threshold
    real = fit_module.gain_bias

    def lossy(neuron_type, max_rates, intercepts):
        gain, bias = real(neuron_type, max_rates, intercepts)
        bias = bias.copy()
        bias[0] -= 10.0 * gain[0]  # neuron 0 never reaches threshold on the domain
        return gain, bias

    monkeypatch.setattr(fit_module, "gain_bias", lossy)
    with pytest.warns(RuntimeWarning, match=r"1 of 3 neurons fire differently in nengo"):
        fit = _fit("tanh", 3, synapse=None)
    assert not fit.success and "raise max_rate" in fit.message
    x = np.linspace(*fit.domain, 2001)
    a = fit.rates(x)
    assert (a == 0).all(axis=0).sum() == 1  # one silent neuron
    live = ~(a == 0).all(axis=0)
    d = np.linalg.lstsq(a[:, live], np.tanh(x), rcond=None)[0]
    np.testing.assert_allclose(fit.decoders[live], d, rtol=1e-5)


# --- n_neurons ---------------------------------------------------------------

@pytest.mark.parametrize("n", [33, 300, 10_601, 100_000])
def test_n_neurons_above_the_documented_limit_is_refused(n):
    """Defect: no limit (N=64 took minutes, N=300 > 15 min, N >= 10,601 failed in scipy)."""
    from popfit.fit import MAX_N_NEURONS

    assert MAX_N_NEURONS == 32
    with pytest.raises(PopfitValueError,
                       match=rf"n_neurons must be an integer in \[1, 32\] \(got {n}\)"):
        _fit("tanh", n)


# --- domains -------------------------------------------------------------------

@pytest.mark.parametrize("domain, match", [
    ((-1e308, 1e308), r"domain width hi - lo must be in \[1\.49e-154, 1\.34e\+154\] "
                      r"\(got lo=-1e\+308, hi=1e\+308, width inf\)"),
    ((0.0, 1e-310), r"domain width hi - lo must be in .*width 1e-310"),
    ((1e15, 1e15 + 1), r"at least 1e-08 times max\(\|lo\|, \|hi\|\).*width 1\)"),
])
def test_domain_width_out_of_float64_range_is_refused(domain, match):
    """Defects: (-1e308, 1e308) overflowed the width, (0, 1e-310) gave gain inf
    and rates above max_rate with success=True, (1e15, 1e15+1) a raw scipy error."""
    with pytest.raises(PopfitValueError, match=match):
        _fit("tanh", 2, domain=domain)


def test_narrow_off_centre_domain_inside_the_bounds_is_fitted_correctly():
    """A domain 1e-7 as wide as it is far from 0 fits as well as the same curve
    centred on 0, and its predict is nengo's own rates times the decoders."""
    lo, hi = 1000.0, 1000.0001
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    far = _fit(lambda x: np.tanh(3.0 * (x - mid) / half), 3, domain=(lo, hi), synapse=None)
    near = _fit(lambda x: np.tanh(3.0 * x / half), 3, domain=(-half, half), synapse=None)
    assert far.nrmse < 1.5 * near.nrmse + 1e-4, (far.nrmse, near.nrmse)
    x = np.linspace(lo, hi, 20001)
    rates = nengo.LIF().rates(x[:, None] * far.encoders, far.gain, far.bias)
    np.testing.assert_allclose(far.predict(x), rates @ far.decoders, rtol=0, atol=1e-12)
    assert rates.max() <= far.max_rate * (1 + 1e-6)


# --- targets and eval_points ------------------------------------------------------

@pytest.mark.parametrize("target, got", [
    (lambda x: np.array(["a"] * len(x)), r"got an array of dtype <U1"),
    (lambda x: {"a": 1}, r"got dict"),
    (lambda x: np.array([object()] * len(x)), r"got an array of dtype object"),
    (lambda x: [[0.0]] * (len(x) - 1) + [[0.0, 1.0]], r"got list"),
    (lambda x: x + 1j, r"got an array of dtype complex128"),
])
def test_target_returning_non_numbers_is_a_popfit_error(target, got):
    """Defect: strings, a dict or an object array gave raw ValueError/TypeError."""
    with pytest.raises(PopfitTypeError,
                       match=r"the output of target 'callable <lambda>' must be an array of "
                             rf"real numbers \({got}"):
        _fit(target, 2, domain=(0, 1))


@pytest.mark.parametrize("eval_points, got", [
    (["a", "b"], r"got an array of dtype <U1"),
    ({"a": 1.0}, r"got dict"),
    ([0.1 + 1j, 0.2], r"got an array of dtype complex128\); take the real part"),
    ("0.5", r"got str"),
])
def test_eval_points_that_are_not_real_numbers_are_refused(eval_points, got):
    """Defects: strings or a dict gave raw errors; complex values silently lost
    their imaginary part."""
    with pytest.raises(PopfitTypeError,
                       match=rf"eval_points must be an array of real numbers \({got}"):
        _fit("tanh", 2, eval_points=eval_points)


def test_target_scaled_by_1e200_is_fitted_like_the_unscaled_one():
    """Defect: a target times 1e200 gave nrmse inf. The fit is normalised
    internally: the same seed gives the same neurons, decoders scaled by 1e200,
    and the same (finite) metrics."""
    one = _fit(lambda x: np.tanh(x), 3, domain=(-3, 3))
    big = _fit(lambda x: 1e200 * np.tanh(x), 3, domain=(-3, 3))
    np.testing.assert_allclose(big.gain, one.gain, rtol=1e-9)
    np.testing.assert_allclose(big.decoders, 1e200 * one.decoders, rtol=1e-9)
    for name in ("nrmse", "max_error", "spiking_nrmse"):
        assert getattr(big, name) == pytest.approx(getattr(one, name), rel=1e-9)
    x = np.linspace(-3, 3, 101)
    np.testing.assert_allclose(big.predict(x), 1e200 * one.predict(x), rtol=1e-8)


def test_target_beyond_1e300_is_refused():
    """Defect: a target times 1e308 gave NaN decoders with success=True."""
    with pytest.raises(PopfitValueError,
                       match=r"must stay within \+-1e\+300 \(got -9\.95\d*e\+307 at x=-3\.0\)"):
        _fit(lambda x: 1e308 * np.tanh(x), 2, domain=(-3, 3))


# --- metrics ------------------------------------------------------------------

def test_near_constant_target_nrmse_is_relative_to_its_magnitude():
    """Defect: 1 + 1e-9 x reported NRMSE 3e6 (its range is 2e-9). The scale is
    floored at 1% of the target's largest magnitude."""
    from popfit.metrics import error_scale

    fit = _fit(lambda x: 1.0 + 1e-9 * x, 2, domain=(-1, 1), synapse=None)
    x = np.linspace(-1, 1, 1001)
    rmse = np.sqrt(np.mean((fit.rates(x) @ fit.decoders - (1.0 + 1e-9 * x)) ** 2))
    assert fit.nrmse == pytest.approx(rmse / 0.01, rel=1e-6)
    assert fit.nrmse < 0.1
    assert error_scale(np.tanh(x * 3)) == pytest.approx(2 * np.tanh(3.0))  # the range
    assert error_scale(1.0 + 1e-9 * x) == pytest.approx(0.01 * (1 + 1e-9))
    assert error_scale(np.zeros(5)) == 1.0
    assert error_scale(np.array([-1e300, 1e300])) == 2e300  # no overflow


def test_predict_and_rates_of_nan_are_nan():
    """Defect: fit.predict([nan]) returned 0 (nengo's rates give 0 for NaN input)."""
    fit = _fit("tanh", 2)
    out = fit.predict(np.array([[np.nan, 0.5]]))
    assert out.shape == (1, 2) and np.isnan(out[0, 0]) and np.isfinite(out[0, 1])
    rates = fit.rates([np.nan, 0.5])
    assert np.isnan(rates[0]).all() and np.isfinite(rates[1]).all()
    with pytest.raises(PopfitTypeError, match=r"PopulationFit.predict: x must be an array "
                                              r"of real numbers \(got an array of dtype <U1"):
        fit.predict(["a"])


def test_metrics_are_computed_in_bounded_chunks(monkeypatch):
    """The 20,001-point metrics of a population with many neurons are computed
    chunk by chunk (what a loaded file with many neurons needs) and equal the
    direct computation."""
    import popfit.metrics as metrics
    from popfit.neurons import spike_noise_variance

    rng = np.random.default_rng(0)
    n = 40
    lif = nengo.LIF()
    gain, bias = lif.gain_bias(rng.uniform(100, 300, n), rng.uniform(-0.9, 0.9, n))
    enc = rng.choice([-1.0, 1.0], n)
    dec = rng.normal(0, 1e-3, n)
    x = np.linspace(-3, 3, 1001)
    calls = []
    real_rates = lif.rates

    class CountingLIF(nengo.LIF):
        def rates(self, xs, g, b):
            calls.append(xs.size)
            return real_rates(xs, g, b)

    monkeypatch.setattr(metrics, "CHUNK_ELEMENTS", 4000)
    y_hat, noise = metrics.decode(CountingLIF(), gain, bias, enc, dec, x, synapse=0.01)
    assert max(calls) <= 4000 and len(calls) == int(np.ceil(1001 / (4000 // n)))
    a = lif.rates(x[:, None] * enc, gain, bias)
    np.testing.assert_allclose(y_hat, a @ dec, rtol=1e-12)
    np.testing.assert_allclose(noise, spike_noise_variance(a, 0.01)[0] @ dec**2, rtol=1e-12)


# --- pickling -------------------------------------------------------------------

def test_every_named_target_and_a_fit_of_each_pickle():
    """Defect: fits of "linear" and "relu" did not pickle (their targets were lambdas)."""
    from popfit.targets import OUTPUT_ONLY, TARGETS

    z = np.linspace(-2, 2, 7)
    for name, target in {**TARGETS, **OUTPUT_ONLY}.items():
        back = pickle.loads(pickle.dumps(target))
        np.testing.assert_array_equal(back(z), target(z))
    for name in TARGETS:
        fit = _fit(name, 1, synapse=None)
        back = pickle.loads(pickle.dumps(fit))
        np.testing.assert_array_equal(back.predict(z), fit.predict(z))
        assert back.target.name == name


# --- seeds ------------------------------------------------------------------------

def test_seed_beyond_numpys_range_is_refused():
    """Defect: seeds >= 2**32 passed fit_activation's check."""
    with pytest.raises(PopfitValueError,
                       match=r"seed must be an integer in \[0, 4294967295\] \(got 4294967296\)"):
        _fit("tanh", 2, seed=2**32)
    assert _fit("tanh", 1, seed=2**32 - 1).seed == 2**32 - 1
