"""The search inside `fit_activation`: Jacobian, slope cap, screening cost,
options, diagnostics, monotonicity in N and accuracy against best known optima."""

import dataclasses

import nengo
import numpy as np
import pytest

import popfit
from popfit.fit.objective import Problem, cap_onset_slopes
from popfit.fit.search import _sign_patterns
from popfit.neurons import RateModel, spike_noise_variance

# Best known rate-only NRMSE (LIF tau_rc 0.02 s, tau_ref 0.002 s / ReLU, max
# rate 400 Hz, tanh on (-3, 3), sigmoid on (-6, 6)): from an exhaustive
# multi-start search of 200-350 s per entry (docs/benchmarks.md, bench_fit.py).
BEST_KNOWN = {
    ("tanh", "LIF"): {2: 0.0148, 3: 0.0102, 4: 0.0045, 6: 0.0030, 8: 0.0015},
    ("sigmoid", "LIF"): {2: 0.0268, 3: 0.0082, 4: 0.0048, 6: 0.0016, 8: 0.0014},
    ("tanh", "RectifiedLinear"): {3: 0.0146, 4: 0.0061, 6: 0.0032, 8: 0.0019},
    ("sigmoid", "RectifiedLinear"): {4: 0.0082, 6: 0.0042, 8: 0.0025},
}


def _problem(neuron_type, synapse, m=201, target=np.tanh, domain=(-3.0, 3.0)):
    lo, hi = domain
    x = np.linspace(lo, hi, m)
    y = target(x)
    return Problem(RateModel(neuron_type), x, y, lo, hi, 400.0, synapse, float(np.ptp(y)))


# intercepts and max rates placed so that no onset is within 0.3 grid steps of a
# grid point (central differences across an onset are meaningless)
_THETA = np.array([-0.4137, 0.2263, -0.1719, 0.5561, 0.9, 0.55, 0.7, 0.3])
_ENC = np.array([1.0, 1.0, -1.0, -1.0])


@pytest.mark.parametrize("neuron_type", [nengo.LIF(), nengo.RectifiedLinear()])
@pytest.mark.parametrize("synapse", [None, 0.01])
def test_golub_pereyra_jacobian_matches_central_differences(neuron_type, synapse):
    problem = _problem(neuron_type, synapse)
    ev = problem.evaluate(_THETA[None], _ENC[None], cap=False)
    jac = ev.jacobian[0]
    fd = np.empty_like(jac)
    h = 1e-6
    for k in range(len(_THETA)):
        up, down = _THETA.copy(), _THETA.copy()
        up[k] += h
        down[k] -= h
        fd[:, k] = (problem.evaluate(up[None], _ENC[None], jacobian=False).residual[0]
                    - problem.evaluate(down[None], _ENC[None], jacobian=False).residual[0]) / (2 * h)
    assert np.abs(jac - fd).max() <= 1e-5 * np.abs(fd).max()
    # the exact gradient of the cost, with or without the cap, is J^T r
    grad = jac.T @ ev.residual[0]
    np.testing.assert_allclose(ev.gradient[0], grad, rtol=1e-9, atol=1e-12 * np.abs(grad).max())
    capped = problem.evaluate(_THETA[None], _ENC[None], cap=True)
    np.testing.assert_allclose(capped.gradient[0], grad, rtol=1e-9,
                               atol=1e-12 * np.abs(grad).max())


def test_onset_slope_cap():
    """`cap_onset_slopes` bounds d rate / dJ by rate per grid step of current:
    it changes the slope only next to LIF onsets, and the capped Jacobian is
    then no longer the derivative of the residual (which is why it is named)."""
    rates = np.array([0.0, 5.0, 50.0, 300.0])
    slopes = np.array([0.0, 1e4, 300.0, 10.0])
    np.testing.assert_array_equal(cap_onset_slopes(rates, slopes, 0.1),
                                  [0.0, 50.0, 300.0, 10.0])
    problem = _problem(nengo.LIF(), None)
    a, dc, drho = problem.rates(_THETA[None], _ENC[None], derivatives=True, cap=False)
    _, dc_cap, drho_cap = problem.rates(_THETA[None], _ENC[None], derivatives=True, cap=True)
    changed = dc_cap != dc
    assert changed.any() and np.all(np.abs(dc_cap) <= np.abs(dc))
    assert np.all(np.abs(drho_cap) <= np.abs(drho))
    # only grid points just past a neuron's onset are touched
    for i in range(4):
        on = np.flatnonzero(a[0, :, i] > 0)
        onset = on[0] if _ENC[i] > 0 else on[-1]
        rows = np.flatnonzero(changed[0, :, i])
        assert np.all(np.abs(rows - onset) <= 3), (i, rows, onset)
    exact = problem.evaluate(_THETA[None], _ENC[None], cap=False).jacobian
    capped = problem.evaluate(_THETA[None], _ENC[None], cap=True).jacobian
    assert not np.allclose(exact, capped)


@pytest.mark.parametrize("neuron_type", [nengo.LIF(), nengo.RectifiedLinear()])
@pytest.mark.parametrize("synapse", [None, 0.005])
def test_batch_cost_is_the_squared_residual_norm(neuron_type, synapse):
    problem = _problem(neuron_type, synapse)
    rng = np.random.default_rng(0)
    thetas = np.column_stack([rng.uniform(-1.5, 0.9, (50, 4)), rng.uniform(0.2, 1.0, (50, 4))])
    for enc in _sign_patterns(4, 5):
        cost = problem.batch_cost(thetas, enc)
        resid = problem.evaluate(thetas, np.tile(enc, (50, 1)), jacobian=False).residual
        np.testing.assert_allclose(cost, np.sum(resid**2, axis=1), rtol=1e-7)
        # with the optimal decoders given, cost_with is the same norm; other decoders cost more
        encs = np.tile(enc, (50, 1))
        d = problem.solve(problem.rates(thetas, encs)).decoders
        np.testing.assert_allclose(problem.cost_with(thetas, encs, d), cost, rtol=1e-7)
        assert np.all(problem.cost_with(thetas, encs, 1.01 * d) > cost)


def test_objective_is_recomputed_from_the_fit():
    """diagnostics.objective is the spiking NRMSE on the fine grid, recomputed
    here from nengo's own rates and the noise model."""
    fit = popfit.fit_activation("tanh", 3, synapse=0.01, seed=0, search=popfit.SearchOptions.quick())
    x = np.linspace(-3, 3, 2001)
    a = nengo.LIF().rates(x[:, None] * fit.encoders, fit.gain, fit.bias)
    err = a @ fit.decoders - np.tanh(x)
    var = spike_noise_variance(a, 0.01)[0]
    expected = np.sqrt(np.mean(err**2) + np.mean(var @ fit.decoders**2)) / np.ptp(np.tanh(x))
    assert fit.diagnostics.objective == pytest.approx(expected, rel=1e-9)


def test_search_options_and_diagnostics():
    quick = popfit.SearchOptions.quick()
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.n_screen = 3
    assert popfit.SearchOptions.thorough().max_starts > popfit.SearchOptions().max_starts
    fit = popfit.fit_activation("sigmoid", 3, seed=1, search=quick)
    d = fit.diagnostics
    assert isinstance(d, popfit.SearchDiagnostics) and d.options is quick
    assert d.origin in ("search", "continuation")
    assert d.sign_pattern == (int(np.sum(fit.encoders > 0)), int(np.sum(fit.encoders < 0)))
    assert len(d.objectives) == 3 and d.objectives[-1] == d.objective
    assert d.n_starts_total >= d.n_starts > 0 and d.converged and fit.success
    assert {name for name, _ in d.stage_times} == {"screen", "short fits", "continuation",
                                                   "polish"}
    assert sum(t for _, t in d.stage_times) <= fit.fit_time
    # the quick search does a fraction of the default's work (fewer starts,
    # a coarser search grid) for the same fit here
    default = popfit.fit_activation("sigmoid", 3, seed=1)
    assert d.n_starts_total <= 0.75 * default.diagnostics.n_starts_total
    assert quick.search_points < default.diagnostics.options.search_points
    assert d.objective <= 1.01 * default.diagnostics.objective
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.objective = 0.0


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(n_screen=0), popfit.PopfitValueError, r"SearchOptions: n_screen must be an integer >= 1"),
    (dict(halving=((8, 0),)), popfit.PopfitValueError, r"halving must be a non-empty tuple"),
    (dict(rtol=0.0), popfit.PopfitValueError, r"rtol must be a float in \(0, 1\)"),
    (dict(n_extend=1.5), popfit.PopfitTypeError, r"n_extend must be an integer"),
])
def test_search_options_are_checked(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        popfit.SearchOptions(**kwargs)


def test_search_must_be_search_options():
    with pytest.raises(popfit.PopfitTypeError, match=r"fit_activation: search must be a "
                                                     r"popfit.SearchOptions \(got 'quick'"):
        popfit.fit_activation("tanh", 2, search="quick")


@pytest.mark.filterwarnings("error::RuntimeWarning")  # the N=8 fits converge
@pytest.mark.parametrize("target, domain, neuron_type, synapse", [
    ("tanh", None, "LIF", None),
    ("sigmoid", None, "LIF", 0.005),
    (lambda x: np.exp(-x**2), (-2.5, 2.5), "RectifiedLinear", None),
    ("linear", None, "RectifiedLinear", 0.01),
])
def test_objective_never_increases_with_n(target, domain, neuron_type, synapse):
    """The fit of N neurons continues the fit of N-1: the minimised objective
    is non-increasing in N, and a fit of N-1 neurons is exactly the step the
    fit of N neurons climbed through."""
    kwargs = dict(domain=domain, neuron_type=neuron_type, synapse=synapse, seed=2)
    fit = popfit.fit_activation(target, 8, **kwargs)
    obj = np.array(fit.diagnostics.objectives)
    assert len(obj) == 8
    assert np.all(np.diff(obj) <= 1e-9 * obj[:-1] + 1e-12), obj
    smaller = popfit.fit_activation(target, 5, **kwargs)
    assert smaller.diagnostics.objectives == fit.diagnostics.objectives[:5]


@pytest.mark.parametrize("target, neuron_type, n", [
    ("tanh", "LIF", 3), ("tanh", "LIF", 4), ("sigmoid", "LIF", 3), ("tanh", "RectifiedLinear", 4)])
def test_near_best_known_optimum(target, neuron_type, n):
    """Rate-only fits reach the best known optimum of the table within 10%
    (tanh LIF N=4 needs the centre family: 1.19x without it)."""
    fit = popfit.fit_activation(target, n, neuron_type=neuron_type, synapse=None, seed=0)
    assert fit.nrmse <= 1.1 * BEST_KNOWN[target, neuron_type][n], fit.nrmse


@pytest.mark.parametrize("target, function, domain", [
    ("tanh", np.tanh, (-3.0, 3.0)), ("sigmoid", lambda x: 1 / (1 + np.exp(-x)), (-6.0, 6.0))])
def test_rate_only_fits_hold_between_grid_points(target, function, domain):
    """A LIF onset is infinitely steep: neurons with onsets less than a grid
    step apart and large decoders of opposite signs can fit the grid points
    and miss between them (tanh N=6, seed 0, before the off-grid check: 0.74x
    the best known on the 1001-point grid, 1.55x between its points). The fit
    holds at the midpoints of a 100,001-point grid (no fitting grid point), and
    there both are within 10% of the best known optimum (sigmoid N=6's best
    fits put five onsets exactly together at the centre)."""
    fit = popfit.fit_activation(target, 6, synapse=None, seed=0)
    edges = np.linspace(*domain, 100001)
    x = 0.5 * (edges[1:] + edges[:-1])
    off_grid = np.sqrt(np.mean((fit.predict(x) - function(x)) ** 2)) / np.ptp(function(edges))
    assert off_grid <= 1.05 * fit.nrmse, (off_grid, fit.nrmse)
    assert off_grid <= 1.1 * BEST_KNOWN[target, "LIF"][6], off_grid
