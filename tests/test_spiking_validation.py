"""Bad and extreme arguments of `evaluate_spiking`: settings that gave NaN, meaningless ratios
or unbounded runs are refused with the bound and its reason; seeds are checked.

The bounds (see `evaluate_spiking`'s Notes) were measured against dt = 0.1 ms runs
of a 4-LIF tanh fit: at dt = 1/(2 max_rate) and at synapse = 2 dt the NRMSE stays
within 3%; at dt = 1/max_rate the ratio is 7-15% off; dt > tau_ref breaks nengo's
LIF (NRMSE 0.18 instead of 0.029); synapse 1e-9 s gave NaN.
"""

import numpy as np
import pytest

import popfit
from popfit.exceptions import PopfitTypeError, PopfitValueError
from popfit.spiking import MAX_STEPS, evaluate_spiking

# these tests need *a* good fit, not the best: the quick search is ~2.4x cheaper
QUICK = popfit.SearchOptions.quick()


@pytest.fixture(scope="module")
def fit():
    return popfit.fit_activation("tanh", 2, max_rate=400.0, synapse=None, search=QUICK, seed=0)


def test_tiny_synapse_is_refused_not_nan(fit):
    with pytest.raises(PopfitValueError,
                       match=r"evaluate_spiking: synapse must be >= 2 \* dt = 0.002 s "
                             r"\(got 1e-09 s\)"):
        evaluate_spiking(fit, synapse=1e-9)


@pytest.mark.parametrize("dt", [0.05, 0.1, 0.5])
def test_coarse_dt_is_refused_with_the_rate_bound(fit, dt):
    with pytest.raises(PopfitValueError,
                       match=r"evaluate_spiking: dt must be <= 1 / \(2 \* max_rate\) = "
                             rf"0.00125 s for the fit's max_rate 400 Hz \(got {dt:g} s\)"):
        evaluate_spiking(fit, synapse=1.0, duration=10.0, dt=dt)


def test_dt_beyond_lif_tau_ref_is_refused():
    slow = popfit.fit_activation("tanh", 2, max_rate=100.0, synapse=None, search=QUICK, seed=0)
    # 1 / (2 * 100 Hz) = 5 ms allows 4 ms, but the LIF's tau_ref is 2 ms
    with pytest.raises(PopfitValueError, match=r"dt must be <= tau_ref = 0.002 s .*got 0.004"):
        evaluate_spiking(slow, synapse=0.05, dt=0.004)


def test_duration_is_bounded_by_a_step_cap(fit):
    with pytest.raises(PopfitValueError,
                       match=r"duration / dt must be at most 1,000,000 time steps "
                             r"\(got 10,000,000,000: duration 1e\+07 s"):
        evaluate_spiking(fit, duration=1e7)
    assert MAX_STEPS == 1_000_000


def test_runs_exactly_at_the_bounds(fit):
    """The bounds are inclusive: dt = 1/(2 max_rate) and synapse = 2 dt run and give
    a finite error near the one at the default dt (same 0.1 s sweep)."""
    dt = 0.5 / fit.max_rate
    edge = evaluate_spiking(fit, synapse=2 * dt, duration=0.5, dt=dt)
    fine = evaluate_spiking(fit, synapse=2 * dt, duration=0.5, dt=dt / 5)
    assert np.isfinite(edge.nrmse) and np.isfinite(edge.baseline_nrmse)
    assert edge.nrmse == pytest.approx(fine.nrmse, rel=0.15)


@pytest.mark.parametrize("seed, error", [(2**32, PopfitValueError), (-1, PopfitValueError),
                                         (True, PopfitTypeError), (1.5, PopfitTypeError)])
def test_seed_is_checked_before_numpy_sees_it(fit, seed, error):
    with pytest.raises(error, match=r"evaluate_spiking: seed must be an integer in "
                                    r"\[0, 4294967295\]"):
        evaluate_spiking(fit, seed=seed)


def test_largest_seed_runs(fit):
    rep = evaluate_spiking(fit, duration=0.05, seed=2**32 - 1)
    assert np.isfinite(rep.nrmse)
