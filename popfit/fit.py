"""The optimizer: fit gains, biases, encoder signs and decoders of a small population.

Structure: given each neuron's encoder sign, intercept and
max rate, the decoders solve a linear least-squares problem, so only the 2N
nonlinear parameters are searched (variable projection, with the
Golub-Pereyra Jacobian). The objective is the expected squared error of the
*spiking* population at the deployment synapse:

    mean_x (A(x) d - y(x))**2  +  sum_i d_i**2 mean_x var_i(x)

where ``var_i`` is the variance of neuron i's synapse-filtered regular spike
train (`popfit.neurons.spike_noise_variance`). This is a ridge problem with a
per-neuron penalty, so the decoders stay exact. Encoder signs are discrete:
the search covers every split of the neurons into the two signs.

The search runs in named stages, with the budget in a frozen `SearchOptions`:

1. `_screen`: structured starts and scrambled Sobol points for every sign
   pattern, each costed with one linear solve on a coarse grid (from
   ``narrow_from`` neurons on: only the structured starts of the three
   patterns nearest balanced, as the continuation carries the quality there);
2. `_short_fits`: successive halving of Levenberg-Marquardt fits of the best
   screened starts, all starts stacked in one batched problem (numpy batched
   QR and solves: the per-call overhead of a general solver dominated on
   problems this small);
   `_centre_starts`: the centre family (onsets at the domain centre, optional
   offset neurons starting past the far edge), fitted on the coarse grid in
   a reduced space (the onsets held at the centre: its basins are narrower
   than a coarse grid step, where free short fits lose them), the best sent
   to stage 4 twice, with the onsets still held and free;
3. `_extend`: continuation, the N-1 fit plus one new neuron, the new neuron
   placed by screening;
4. `_polish`: all of these refined on the fine grid until the objective
   falls by less than ``rtol`` relative over ``window`` iterations.

The fit of N neurons is the best of stage 4 over the fresh search and the
continuation of the fit of N-1 neurons (itself made the same way, from N=1
up), among the candidates that are *sound off the grid*: a LIF onset is
infinitely steep, so neurons whose onsets differ by less than a grid step,
with large decoders of opposite signs, can fit the grid points while the
curve between them is far off (measured before this check: rate-only tanh
N=8 at 0.38x the best known on the grid, 27x between its points). A
candidate is sound if its objective at the midpoints between fine grid
points is at most `_OFF_GRID_RTOL` times the one on the grid; if no sound
candidate is as good as the fit of N-1, the best one is taken regardless.
N+1 neurons can reproduce N (the new neuron's decoder set to zero), and
every stage only accepts steps that lower the objective, so the minimised
objective never increases with N (up to rounding), and `fit_activation(f, N)`
is, for the same seed, exactly the level N of the chain that
`fit_activation(f, N + 1)` climbs.

The Jacobian is the Golub-Pereyra one, exact for the objective *except* at
LIF onsets, where `cap_onset_slopes` deliberately bounds the rate's slope
(the onset is infinitely steep; on a grid the residual moves by at most
about one rate per grid step).
"""

import time
import warnings
from dataclasses import dataclass, field, fields
from typing import Optional, Tuple

import numpy as np
import scipy.stats.qmc
from threadpoolctl import threadpool_limits

from .exceptions import PopfitError, PopfitTypeError, PopfitValueError
from ._validation import (check_eval_points, check_int, check_seed, check_synapse, public,
                          user_stacklevel)
from .metrics import error_scale
from .neurons import (LOWEST_RATE_FRACTION, RateModel, check_max_rate, gain_bias,
                      is_loihi_type, resolve_neuron_type, spike_noise_variance)
from .targets import evaluate_target, resolve_target

#: Largest population `fit_activation` accepts. The fit of N neurons climbs
#: through the fits of 1..N-1 (continuation), so its cost grows about as N**2
#: (measured: see the README's table of fit times).
MAX_N_NEURONS = 32
#: Largest gap (as a fraction of max_rate) tolerated between a neuron's fitted
#: rate curve and nengo's rates of the exported gain and bias (float64 rounding
#: of nengo's current J = gain * x + bias for very slow LIF neurons)
_EXPORT_RATE_RTOL = 1e-3

_C_BOUNDS = (-5.0, 0.95)  # intercepts, in units where the faced domain edge is 1 (below -1:
# the neuron fires over the whole domain, a saturating offset that tanh-like fits use)
_RHO_MIN = LOWEST_RATE_FRACTION  # lowest max rate, as a fraction of max_rate
_RATE_ONLY_RIDGE = 1e-14  # relative ridge keeping rate-only fits well posed
_UNIFORM_SHARE = 0.1  # share of the uniform distribution when eval_points are given
_MU0 = 1e-3  # initial Levenberg-Marquardt damping, relative to diag(J^T J)
_MAX_STEP = 0.2  # largest change of any parameter in one step (intercepts: units of the
# half domain; max rates: fractions of max_rate)
_MU_MAX = 1e12  # damping at which no step lowers the cost: a (numerical) minimum
_OFF_GRID_RTOL = 1.05  # largest ratio of the objective between fine grid points to the one on them
_MU_SMOOTH = 1.0  # below this damping, steps follow the capped-slope gradient


# --------------------------------------------------------------------------- options

@dataclass(frozen=True)
class SearchOptions:
    """Budget of `fit_activation`'s search (frozen; pass as ``search=``).

    The defaults reach the best known optima (rate-only tanh and sigmoid, LIF and
    ReLU, N = 2..8: exhaustive multi-start searches of 200-350 s per entry, the
    table in tests/test_search.py and benchmarks/bench_fit.py) within 10%,
    on the grid and between its points, in at most about 3 s of CPU time for
    N <= 8 (median over seeds 0-3; measured, see bench_fit.py). `quick` is
    for code that only needs *a* fit (tests, examples); `thorough` spends
    several times longer.

    Attributes
    ----------
    n_screen : int
        Sobol points screened per encoder-sign pattern (one linear solve each).
    max_patterns : int
        Encoder-sign patterns searched afresh: all N+1 splits up to this many,
        beyond it the ones nearest balanced (the continuation still reaches
        any split).
    narrow_from : int
        From this many neurons on, the fresh search is narrow: only the
        structured starts of the ``narrow_patterns`` sign patterns nearest
        balanced, no Sobol points (the continuation of the fit of one neuron
        fewer carries the quality there; measured, see bench_fit.py).
    narrow_patterns : int
        See ``narrow_from``.
    centre_screen : int
        Random members of the centre family (onsets at the domain centre,
        optional offset neurons starting past the far edge) per sign pattern,
        besides its structured members (see `_centre_members`) ...
    n_centre : int
        ... and the best this many (distinct) polished (0: none).
    centre_halving : tuple of (int, int)
        Successive halving of the centre family's reduced fits on the coarse
        grid (the onsets held at the centre): rounds of (Levenberg-Marquardt
        iterations, members kept for the next round); the last round should
        keep at least ``n_centre``.
    starts_per_neuron : int
        Short local fits per neuron in the population ...
    max_starts : int
        ... and at most this many, over all sign patterns.
    starts_per_pattern : int
        Every sign pattern keeps this many of its best screened Sobol points
        (besides its two structured starts); the rest of the budget goes to
        the best points overall.
    halving : tuple of (int, int)
        Successive halving of the short fits on the coarse grid: rounds of
        (Levenberg-Marquardt iterations, starts kept for the next round).
    n_polish : int
        Best short fits refined on the fine grid.
    n_extend : int
        Continuation starts (the N-1 fit plus one new neuron) refined on the
        fine grid; 0 turns continuation off (fits are then not monotone in N).
    polish_iterations : int
        Most Levenberg-Marquardt iterations of the refinement on the fine grid.
    rtol : float
        Convergence: the refinement stops when the objective (squared error)
        fell by less than ``rtol`` relative over the last ``window`` iterations.
    window : int
        See ``rtol``.
    search_points, fit_points : int
        Grid points of the coarse grid (search) and of the fine grid (the
        objective that is minimised and reported as ``diagnostics.objective``).
    """

    n_screen: int = 64
    max_patterns: int = 9
    narrow_from: int = 9
    narrow_patterns: int = 3
    centre_screen: int = 0
    n_centre: int = 2
    centre_halving: Tuple[Tuple[int, int], ...] = ((10, 4), (25, 2))
    starts_per_neuron: int = 10
    max_starts: int = 40
    starts_per_pattern: int = 1
    halving: Tuple[Tuple[int, int], ...] = ((8, 12), (16, 4), (24, 2))
    n_polish: int = 2
    n_extend: int = 2
    polish_iterations: int = 1000
    rtol: float = 1e-4
    window: int = 10
    search_points: int = 201
    fit_points: int = 2001

    def __post_init__(self):
        try:
            self._check()
        except PopfitError as err:
            err.where = err.where or "SearchOptions"
            raise

    def _check(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("halving", "centre_halving"):
                ok = (isinstance(value, tuple) and len(value) > 0 and all(
                    isinstance(r, tuple) and len(r) == 2
                    and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in r)
                    for r in value))
                if not ok:
                    raise PopfitValueError(
                        f"{f.name} must be a non-empty tuple of (iterations, kept) pairs of "
                        f"integers >= 1 (got {value!r})")
            elif f.name == "rtol":
                if not (isinstance(value, float) and 0 < value < 1):
                    raise PopfitValueError(f"rtol must be a float in (0, 1) (got {value!r})")
            else:
                low = {"n_extend": 0, "n_centre": 0, "centre_screen": 0, "starts_per_pattern": 0,
                       "search_points": 11, "fit_points": 11}.get(f.name, 1)
                check_int(value, f.name, low=low)

    @classmethod
    def quick(cls):
        """A small search, several times faster: for code that needs *a* good fit, not the best."""
        return cls(n_screen=32, max_patterns=3, narrow_from=4, narrow_patterns=3,
                   centre_screen=0, n_centre=1, centre_halving=((10, 2), (20, 1)),
                   starts_per_neuron=3, max_starts=12,
                   starts_per_pattern=0, halving=((10, 3), (20, 1)), n_polish=1, n_extend=1,
                   polish_iterations=200, rtol=1e-3, search_points=101)

    @classmethod
    def thorough(cls):
        """A wider search, several times slower than the default."""
        return cls(n_screen=1024, narrow_from=13, narrow_patterns=5, centre_screen=32,
                   n_centre=6, centre_halving=((10, 24), (30, 8)), starts_per_neuron=24,
                   max_starts=128, starts_per_pattern=3,
                   halving=((10, 32), (20, 12), (40, 4)), n_polish=4, n_extend=4,
                   polish_iterations=1000, rtol=2e-5)


@dataclass(frozen=True)
class SearchDiagnostics:
    """How a fit was found, kept on the result as ``fit.diagnostics``.

    Attributes
    ----------
    objective : float
        The minimised objective as an NRMSE on the fine grid: the root of
        the mean squared rate error plus (if ``synapse`` is set) the expected
        spike noise, divided by the target's range. Non-increasing in N for
        the same settings and seed.
    objectives : tuple of float
        ``objective`` of the fits of 1, 2, ..., N neurons made on the way
        (the last is ``objective``).
    origin : str
        ``"search"`` (the fresh multi-start search won) or ``"continuation"``
        (the fit of N-1 neurons plus one new neuron won).
    sign_pattern : (int, int)
        Neurons with encoder +1 and -1 in the winner.
    n_starts : int
        Local fits started at the last level (N neurons).
    n_starts_total : int
        Local fits started over all levels 1..N.
    iterations : int
        Levenberg-Marquardt iterations of the winner's refinement.
    converged : bool
        Whether the winner's refinement met the convergence test.
    message : str
        How the refinement ended.
    stage_times : tuple of (str, float)
        Seconds spent in each stage, summed over all levels.
    options : SearchOptions
        The budget used.
    """

    objective: float
    objectives: Tuple[float, ...]
    origin: str
    sign_pattern: Tuple[int, int]
    n_starts: int
    n_starts_total: int
    iterations: int
    converged: bool
    message: str
    stage_times: Tuple[Tuple[str, float], ...]
    options: SearchOptions = field(repr=False)


# --------------------------------------------------------------------------- the problem

def cap_onset_slopes(rates, slopes, dj_step):
    """Bound each rate's slope by the rate itself per grid step of current.

    A LIF rate curve is infinitely steep at its onset. On a grid, a grid point
    just past an onset would get a huge derivative, while moving the onset
    changes the residual there by at most about one rate per grid step; the
    exact derivative then dominates the Jacobian and the optimizer takes tiny
    steps. The cap is ``min(slope, rate / dj_step)``, where ``dj_step`` is the
    change of the input current between neighbouring grid points. Away from
    onsets (``rate >= slope * dj_step``) nothing changes; for ReLU it only
    touches the grid step next to the onset.

    Parameters
    ----------
    rates : ndarray
        Firing rates (Hz).
    slopes : ndarray
        ``d rate / d J`` (Hz per unit current), same shape.
    dj_step : ndarray
        Current change per grid step, broadcastable (one per neuron).

    Returns
    -------
    ndarray
        The capped slopes.
    """
    return np.minimum(slopes, rates / dj_step)


@dataclass(frozen=True)
class _Solution:
    """The decoders at fixed rates, and what the Jacobian reuses."""

    decoders: np.ndarray  # (B, n), in units of the scaled target per Hz
    residual: np.ndarray  # (B, m + n)
    q: np.ndarray  # (B, m + n, n): Q of the QR of the stacked basis
    r: np.ndarray  # (B, n, n)
    lam: np.ndarray  # (B, n): square roots of the ridge (noise) weights
    dnoise: Optional[np.ndarray]  # (B, m, n): weighted d var / d rate, None if rate-only


@dataclass(frozen=True)
class _Evaluation:
    cost: np.ndarray  # (B,): 0.5 * squared residual norm
    residual: np.ndarray  # (B, m + n)
    jacobian: Optional[np.ndarray]  # (B, m + n, 2n), onset slopes capped
    gradient: Optional[np.ndarray]  # (B, 2n): exact gradient of the cost


class _Problem:
    """The variable-projection least-squares problem on one grid, for a batch of
    parameter vectors ``theta = (c_1..c_n, rho_1..rho_n)`` (intercepts in units
    where the faced domain edge is 1, max rates as fractions of ``max_rate``),
    each with its own encoder signs.

    The residual is ``[sqrt(w) (A d - y); lam * d] / scale`` with ``d`` the
    optimal decoders, so its squared norm is the objective: the weighted mean
    squared rate error plus the expected spike noise, over ``scale**2``.
    """

    def __init__(self, model, x, y, lo, hi, max_rate, synapse, scale, weights=None):
        self.model = model
        self.max_rate = max_rate
        self.synapse = synapse
        self.m = len(x)
        mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        self.xhat = (x - mid) / half  # input scaled so the domain edges are -1 and +1
        self.ds = (x[1] - x[0]) / half
        # weights of the grid points (sum 1): uniform, or the eval_points density
        self.w = np.full(self.m, 1.0 / self.m) if weights is None else weights
        self.sqrt_w = np.sqrt(self.w)
        self.ty = self.sqrt_w * y / scale

    @staticmethod
    def bounds(n):
        """Lower and upper bounds of ``theta`` for ``n`` neurons."""
        return (np.concatenate([np.full(n, _C_BOUNDS[0]), np.full(n, _RHO_MIN)]),
                np.concatenate([np.full(n, _C_BOUNDS[1]), np.ones(n)]))

    def _terms(self, thetas, encoders):
        """Rates (B, m, n), d rate / d J, the current step per grid step and the
        factors turning d rate / d J into d rate / d c and d rate / d rho."""
        n = thetas.shape[-1] // 2
        c, r = thetas[:, None, :n], thetas[:, None, n:] * self.max_rate
        k, dk = self.model.k_and_dk(r)
        s = np.asarray(encoders)[..., None, :] * self.xhat[:, None]  # input along the encoder
        z = (s - c) / (1.0 - c)
        a, slope = self.model.rate_and_slope(self.model.j0 + k * z)
        return a, slope, k / (1.0 - c) * self.ds, k * (z - 1.0) / (1.0 - c), dk * z * self.max_rate

    def rates(self, thetas, encoders, derivatives=False, cap=True):
        """Rates (Hz), shape (B, m, n); with ``derivatives`` also d rate / d c
        and d rate / d rho, slopes capped at onsets unless ``cap`` is False."""
        a, slope, dj_step, f_c, f_rho = self._terms(thetas, encoders)
        if not derivatives:
            return a
        if cap:
            slope = cap_onset_slopes(a, slope, dj_step)
        return a, slope * f_c, slope * f_rho

    def _noise(self, a):
        """Ridge weight of each neuron (mean spike-noise variance) and its
        pointwise derivative in the rates (None if rate-only)."""
        if self.synapse is None:
            return np.full((a.shape[0], a.shape[2]), _RATE_ONLY_RIDGE * self.max_rate**2), None
        var, dvar = spike_noise_variance(a, self.synapse)
        return np.einsum("m,bmi->bi", self.w, var), dvar * self.w[:, None]

    def solve(self, a):
        """Optimal decoders for rates ``a`` (B, m, n), by QR of the stacked basis."""
        bsz, m, n = a.shape
        noise, dnoise = self._noise(a)
        lam = np.sqrt(noise + 1e-300)
        basis = np.zeros((bsz, m + n, n))
        basis[:, :m] = self.sqrt_w[:, None] * a
        basis[:, m + np.arange(n), np.arange(n)] = lam
        q, rr = np.linalg.qr(basis)
        d = np.linalg.solve(rr, np.einsum("m,bmn->bn", self.ty, q[:, :m])[..., None])[..., 0]
        resid = np.einsum("bkn,bn->bk", basis, d)
        resid[:, :m] -= self.ty
        return _Solution(d, resid, q, rr, lam, dnoise)

    def evaluate(self, thetas, encoders, jacobian=True, cap=True):
        """Cost, residual, and (with ``jacobian``) the Golub-Pereyra Jacobian of
        the residual in ``thetas`` (exact when ``cap`` is False, onset slopes
        capped by `cap_onset_slopes` otherwise) and the exact gradient of the cost."""
        with np.errstate(all="ignore"):
            a, slope, dj_step, f_c, f_rho = self._terms(thetas, encoders)
            sol = self.solve(a)
            cost = self._cost(sol.residual)
            if not jacobian:
                return _Evaluation(cost, sol.residual, None, None)
            capped = cap_onset_slopes(a, slope, dj_step) if cap else slope
            jac = self._jacobian(a, capped * f_c, capped * f_rho, sol)
            grad = self._gradient(slope * f_c, slope * f_rho, sol)
        return _Evaluation(cost, sol.residual, jac, grad)

    def _gradient(self, da_dc, da_drho, sol):
        """Exact gradient of the cost, ``J^T r = (dB/dtheta d)^T r`` (the residual
        is orthogonal to the basis, so the second Golub-Pereyra term drops)."""
        m = self.m
        top = self.sqrt_w * sol.residual[:, :m]
        out = []
        for da in (da_dc, da_drho):
            g = np.einsum("bm,bmi->bi", top, da)
            if sol.dnoise is not None:
                g += sol.residual[:, m:] * np.einsum("bmi,bmi->bi", sol.dnoise, da) / (2 * sol.lam)
            out.append(g * sol.decoders)
        return np.concatenate(out, axis=1)

    @staticmethod
    def _cost(resid):
        cost = 0.5 * np.sum(resid**2, axis=1)
        return np.where(np.isfinite(cost), cost, np.inf)

    def _jacobian(self, a, da_dc, da_drho, sol):
        bsz, m, n = a.shape
        # columns of dB/dtheta_k: the upper block is d a_i / d theta_k, the lower
        # block has d lam_i / d theta_k at row m + i
        bk = np.zeros((bsz, m + n, 2 * n))
        bk[:, :m, :n] = self.sqrt_w[:, None] * da_dc
        bk[:, :m, n:] = self.sqrt_w[:, None] * da_drho
        if sol.dnoise is not None:
            idx = np.arange(n)
            bk[:, m + idx, idx] = np.einsum("bmi,bmi->bi", sol.dnoise, da_dc) / (2 * sol.lam)
            bk[:, m + idx, n + idx] = np.einsum("bmi,bmi->bi", sol.dnoise, da_drho) / (2 * sol.lam)
        owner = np.concatenate([np.arange(n), np.arange(n)])
        # Golub-Pereyra: J = -P_perp dB d - (B^+)^T dB^T r (sign: r = B d - t)
        t1 = bk * sol.decoders[:, None, owner]
        t1 -= sol.q @ (sol.q.transpose(0, 2, 1) @ t1)
        w = np.einsum("bkp,bk->bp", bk, sol.residual)
        rinv_t = np.linalg.inv(sol.r).transpose(0, 2, 1)
        t2 = sol.q @ (rinv_t[:, :, owner] * w[:, None, :])
        return t1 - t2

    def cost_with(self, thetas, encoders, decoders):
        """Squared residual norm (rate error plus expected noise) on this grid
        of parameter vectors with the given ``decoders`` (B, n), not re-solved."""
        with np.errstate(all="ignore"):
            a = self.rates(thetas, encoders)
            noise = self._noise(a)[0]
            resid = self.sqrt_w * np.einsum("bmn,bn->bm", a, decoders) - self.ty
            cost = np.sum(resid**2, axis=1) + np.sum(noise * decoders**2, axis=1)
        return np.where(np.isfinite(cost), cost, np.inf)

    def batch_cost(self, thetas, encoders):
        """Squared residual norm for many parameter vectors at once, by the
        normal equations (for screening; `evaluate` uses QR)."""
        n = thetas.shape[1] // 2
        with np.errstate(all="ignore"):
            a = self.rates(thetas, encoders)
            noise = self._noise(a)[0]
            a = a * self.sqrt_w[:, None]
            at = a.transpose(0, 2, 1)
            gram = at @ a
            gram[:, np.arange(n), np.arange(n)] += noise + 1e-300
            d = np.linalg.solve(gram, (at @ self.ty)[..., None])[..., 0]
            resid = (a @ d[..., None])[..., 0] - self.ty
            cost = np.sum(resid**2, axis=1) + np.sum(noise * d**2, axis=1)
        return np.where(np.isfinite(cost), cost, np.inf)


# --------------------------------------------------------------------------- local fits

@dataclass
class _Batch:
    """Levenberg-Marquardt state of a stack of starts (mutated in place)."""

    thetas: np.ndarray  # (B, 2n)
    encoders: np.ndarray  # (B, n)
    origin: np.ndarray  # (B,) of str
    cost: np.ndarray = None
    residual: np.ndarray = None
    jacobian: np.ndarray = None
    gradient: np.ndarray = None
    mu: np.ndarray = None
    nu: np.ndarray = None
    history: list = None
    done: np.ndarray = None
    converged: np.ndarray = None
    iterations: np.ndarray = None
    frozen: np.ndarray = None  # (B, 2n) parameters held fixed, or None: all free

    def take(self, idx):
        """A new batch of the starts ``idx`` (state dropped: it is re-evaluated)."""
        return _Batch(self.thetas[idx].copy(), self.encoders[idx].copy(), self.origin[idx].copy(),
                      frozen=None if self.frozen is None else self.frozen[idx].copy())

    def subset(self, idx):
        """The starts ``idx`` with their state (the cost history restarts)."""
        return _Batch(self.thetas[idx], self.encoders[idx], self.origin[idx], self.cost[idx],
                      self.residual[idx], self.jacobian[idx], self.gradient[idx], self.mu[idx],
                      self.nu[idx], [], self.done[idx], self.converged[idx], self.iterations[idx],
                      None if self.frozen is None else self.frozen[idx])

    @staticmethod
    def concat(batches):
        batches = [b for b in batches if b is not None and len(b.thetas)]
        frozen = None
        if any(b.frozen is not None for b in batches):
            frozen = np.concatenate([np.zeros(b.thetas.shape, bool) if b.frozen is None
                                     else b.frozen for b in batches])
        return _Batch(np.concatenate([b.thetas for b in batches]),
                      np.concatenate([b.encoders for b in batches]),
                      np.concatenate([b.origin for b in batches]), frozen=frozen)


def _levenberg_marquardt(problem, batch, iterations, rtol=None, window=10):
    """Run bounded Levenberg-Marquardt on every start of ``batch`` at once.

    Each start keeps its own damping (Nielsen's update); a step is accepted
    only if it lowers that start's cost, so costs never increase. The
    curvature model is ``J^T J`` with onset slopes capped; the gradient is
    the capped ``J^T r`` while the damping is below `_MU_SMOOTH` and the
    exact one above (so a start that stalls on grid ripples still descends). Variables at
    a bound whose gradient points outward are held there (an active set);
    the rest of the step is projected into the box. With ``rtol``, a start
    stops once its objective (the root of the cost, an NRMSE) fell by less
    than ``rtol`` relative over the last ``window`` iterations (converged),
    or when no step can lower it.
    """
    n2 = batch.thetas.shape[1]
    lower, upper = problem.bounds(n2 // 2)
    bsz = len(batch.thetas)
    if batch.cost is None:
        batch.thetas = np.clip(batch.thetas, lower, upper)
        ev = problem.evaluate(batch.thetas, batch.encoders)
        batch.cost, batch.residual, batch.jacobian = ev.cost, ev.residual, ev.jacobian
        batch.gradient = ev.gradient
        batch.mu = np.full(bsz, _MU0)
        batch.nu = np.full(bsz, 2.0)
        batch.history = [batch.cost.copy()]
        batch.done = ~np.isfinite(batch.cost)
        batch.converged = np.zeros(bsz, bool)
        batch.iterations = np.zeros(bsz, int)
    eye = np.eye(n2, dtype=bool)
    for _ in range(iterations):
        live = np.flatnonzero(~batch.done)
        if len(live) == 0:
            break
        th, jac, g = batch.thetas[live], batch.jacobian[live], batch.gradient[live]
        # while the damping is small, step along the capped-slope gradient J^T r
        # (it ignores the grid-scale ripples LIF onsets put in the cost and
        # finds the basin); once that stops lowering the cost, the exact one
        g = np.where((batch.mu[live] < _MU_SMOOTH)[:, None],
                     np.einsum("bkp,bk->bp", jac, batch.residual[live]), g)
        h = jac.transpose(0, 2, 1) @ jac
        diag = np.diagonal(h, axis1=1, axis2=2)
        scale = np.maximum(diag, 1e-12 * np.maximum(diag.max(axis=1, keepdims=True), 1e-300))
        active = ((th <= lower) & (g > 0)) | ((th >= upper) & (g < 0))
        if batch.frozen is not None:
            active |= batch.frozen[live]
        lhs = h + (batch.mu[live, None] * scale)[:, :, None] * eye
        free = ~active
        lhs = np.where(free[:, :, None] & free[:, None, :], lhs, 0.0)
        lhs[:, eye] = np.where(active, 1.0, lhs[:, eye])
        with np.errstate(all="ignore"):
            step = np.linalg.solve(lhs, -np.where(active, 0.0, g)[..., None])[..., 0]
        step = np.where(np.isfinite(step), step, 0.0)
        # a trust region in the max norm keeps the quadratic model honest
        big = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, _MAX_STEP / np.maximum(big, 1e-300))
        trial = np.clip(th + step, lower, upper)
        step = trial - th
        predicted = -(np.einsum("bp,bp->b", g, step)
                      + 0.5 * np.einsum("bp,bpq,bq->b", step, h, step))
        ev = problem.evaluate(trial, batch.encoders[live])
        actual = batch.cost[live] - ev.cost
        accept = actual > 0
        ratio = np.where(predicted > 0, actual / np.where(predicted > 0, predicted, 1.0), 0.0)
        # Nielsen's damping update
        mu, nu = batch.mu[live], batch.nu[live]
        mu = np.where(accept, mu * np.maximum(1 / 3, 1 - (2 * ratio - 1) ** 3), mu * nu)
        nu = np.where(accept, 2.0, nu * 2)
        batch.mu[live], batch.nu[live] = mu, nu
        acc = live[accept]
        batch.thetas[acc] = trial[accept]
        batch.cost[acc] = ev.cost[accept]
        batch.residual[acc] = ev.residual[accept]
        batch.jacobian[acc] = ev.jacobian[accept]
        batch.gradient[acc] = ev.gradient[accept]
        batch.iterations[live] += 1
        batch.history.append(batch.cost.copy())
        stuck = live[mu > _MU_MAX]
        batch.done[stuck] = batch.converged[stuck] = True
        if rtol is not None and len(batch.history) > window:
            # the objective (the root of the cost) fell by less than rtol relative
            old = batch.history[-1 - window]
            flat = np.sqrt(old) - np.sqrt(batch.cost) <= rtol * np.sqrt(batch.cost)
            newly = flat & ~batch.done
            batch.done[newly] = batch.converged[newly] = True
    return batch


# --------------------------------------------------------------------------- stages

def _sign_patterns(n, max_patterns):
    """Encoder patterns: k neurons facing +, n - k facing -, for k = n..0, or
    the ``max_patterns`` values of k nearest n / 2."""
    ks = sorted(range(n + 1), key=lambda k: (abs(2 * k - n), -k))[:max_patterns]
    return [np.where(np.arange(n) < k, 1.0, -1.0) for k in sorted(ks, reverse=True)]


def _structured_starts(encoders):
    """Six starts per sign pattern: intercepts spread evenly within each sign
    group at 80% of max_rate (two spreads) or at max_rate (noise-aware fits
    favour high rates); onsets at the domain centre with max rates spread
    from 20% to 100% (tanh-like fits combine LIF curves of one onset and
    different gains); the same with one neuron per group firing over the
    whole domain (two ways). `_centre_starts` fits the centre ones in a reduced space."""
    n = len(encoders)
    out = []
    groups = [np.flatnonzero(encoders > 0), np.flatnonzero(encoders < 0)]
    for lo_c, hi_c, rho_all in ((-0.7, 0.5, 0.8), (-0.9, 0.2, 0.8), (-0.45, 0.02, 1.0)):
        c = np.zeros(n)
        for g in groups:
            c[g] = np.linspace(lo_c, hi_c, len(g)) if len(g) > 1 else 0.5 * (lo_c + hi_c)
        out.append(np.concatenate([c, np.full(n, rho_all)]))
    rho = np.zeros(n)
    for g in groups:
        rho[g] = np.linspace(0.2, 1.0, len(g)) if len(g) > 1 else 0.8
    out.append(np.concatenate([np.full(n, -0.01), rho]))
    # the same with the first neuron of each group firing over the whole
    # domain: a saturating offset (sigmoid-like fits use it)
    for c_off, rho_off in ((-1.5, 0.3), (-3.0, 0.6)):
        c, r = np.full(n, -0.01), rho.copy()
        for g in groups:
            if len(g) > 1:
                c[g[0]], r[g[0]] = c_off, rho_off
        out.append(np.concatenate([c, r]))
    return out


def _sobol_points(n, n_points, rng):
    """Scrambled Sobol points over intercepts in [-1.5, 0.9] and rates in [0.2, 1]."""
    u = scipy.stats.qmc.Sobol(2 * n, seed=rng).random(n_points)
    return np.column_stack([-1.5 + 2.4 * u[:, :n], 0.2 + 0.8 * u[:, n:]])


def _mirrored(points, encoders):
    """Sobol points made mirror-symmetric: the k-th neuron facing -1 copies the
    intercept and max rate of the k-th neuron facing +1 (odd and even targets
    about the domain centre have such optima; the search space halves)."""
    n = len(encoders)
    plus, minus = np.flatnonzero(encoders > 0), np.flatnonzero(encoders < 0)
    k = min(len(plus), len(minus))
    out = points.copy()
    out[:, minus[:k]] = points[:, plus[:k]]
    out[:, n + minus[:k]] = points[:, n + plus[:k]]
    return out


def _screen(problem, n, rng, options):
    """Stage 1: the starts of the fresh search, screened on the coarse grid.

    Candidates for each sign pattern: its structured starts, Sobol points,
    and (for the patterns within one neuron of balanced) mirror-symmetric
    Sobol points. Every pattern keeps its structured starts and its best
    ``starts_per_pattern`` points; the rest of the budget goes to the best
    screened points overall.
    """
    n_starts = min(options.max_starts, options.starts_per_neuron * n)
    if n >= options.narrow_from:
        patterns = _sign_patterns(n, options.narrow_patterns)
        kept = [(t, enc) for enc in patterns for t in _structured_starts(enc)]
        return _Batch(np.array([t for t, _ in kept]), np.array([e for _, e in kept]),
                      np.full(len(kept), "search", dtype=object))
    patterns = _sign_patterns(n, options.max_patterns)
    sobol = _sobol_points(n, options.n_screen, rng)
    kept, pool = [], []
    for p, enc in enumerate(patterns):
        points = sobol
        if abs(2 * np.sum(enc > 0) - n) <= 1 and n > 1:
            points = np.concatenate([sobol, _mirrored(sobol, enc)])
        costs = problem.batch_cost(points, enc)
        order = np.argsort(costs, kind="stable")
        kept += [(t, enc) for t in _structured_starts(enc)]
        kept += [(points[i], enc) for i in order[:options.starts_per_pattern]]
        pool += [(costs[i], p, j, points[i]) for j, i in enumerate(order[options.starts_per_pattern:
                                                                         n_starts])]
    pool.sort(key=lambda item: item[:3])
    for _, p, _, theta in pool[:max(n_starts - len(kept), 0)]:
        kept.append((theta, patterns[p]))
    return _Batch(np.array([t for t, _ in kept]), np.array([e for _, e in kept]),
                  np.full(len(kept), "search", dtype=object))


# offset neurons of the centre family, (intercept in edge units, max rate
# fraction): a slow neuron starting just past the far edge (a curved offset)
# and a fast one starting well past it (a saturating offset)
_CENTRE_OFFSETS = ((-1.15, _RHO_MIN), (-1.6, 1.0))


def _rank(cost):
    """Indices sorting ``cost``, costs equal to about 1e-9 relative kept in
    index order: mirror-image candidates of odd targets tie up to rounding,
    and the choice must not depend on it (a target scaled by 1e200 is fitted
    exactly like the unscaled one)."""
    with np.errstate(divide="ignore"):
        return np.argsort(np.round(np.log(cost) * 1e9), kind="stable")


def _centre_members(enc, m, rng):
    """Members of the centre family for one sign pattern: every choice of no
    offset neuron or one of `_CENTRE_OFFSETS` on each side with onset max rates
    spread from 100% to 50%, then ``m`` random ones (random max rates, offsets
    on random sides with random intercepts and max rates). Returns the
    parameter vectors, encoders and the mask of parameters frozen in the
    reduced fit (the intercepts of the onsets, which stay at the centre)."""
    n = len(enc)
    groups = [np.flatnonzero(enc > 0), np.flatnonzero(enc < 0)]
    choices = [None, *_CENTRE_OFFSETS]
    spread = np.zeros(n)
    for g in groups:
        spread[g] = np.linspace(1.0, 0.5, len(g))
    plans = [(a, b) for a in choices for b in choices
             if (a is None or len(groups[0])) and (b is None or len(groups[1]))]
    k = len(plans)
    c = np.zeros((k + m, n))
    rho = np.concatenate([np.tile(spread, (k, 1)), rng.uniform(0.5, 1.0, (m, n))])
    fixed = np.zeros((k + m, 2 * n), bool)
    fixed[:, :n] = True
    for row, plan in enumerate(plans):
        for offset, g in zip(plan, groups):
            if offset is not None:
                c[row, g[0]], rho[row, g[0]] = offset
                fixed[row, g[0]] = False
    mode = rng.integers(0, 4, m)  # offset neurons: none, + side, - side, both
    for bit, g in ((1, groups[0]), (2, groups[1])):
        if len(g):
            rows = k + np.flatnonzero(mode & bit)
            c[rows, g[0]] = -1.0 - 1.2 * rng.uniform(0.0, 1.0, len(rows)) ** 2
            rho[rows, g[0]] = _RHO_MIN ** rng.uniform(0.0, 1.0, len(rows))
            fixed[rows, g[0]] = False
    return np.column_stack([c, rho]), np.tile(enc, (k + m, 1)), fixed


def _centre_starts(problem, n, rng, options):
    """Stage 1b: the centre family, fitted on the coarse grid in a reduced space.

    Good LIF fits of tanh- and sigmoid-like targets put most onsets exactly
    at the domain centre with max rates spread, and sigmoid-like ones add an
    offset neuron starting past the far edge (rate-only sigmoid N = 6: a slow
    one at intercept -1.1 edge units; tanh-like fits also use fast ones
    further out). These basins are narrower than a step of the coarse grid:
    free short fits move the onsets off the centre and lose them. So the
    members of the family (`_centre_members`, for the three sign patterns
    nearest balanced) are fitted with the onsets held at the centre (only
    max rates and the offset neurons free), by successive halving
    (``centre_halving``), and the best ``n_centre`` distinct ones go to the
    polish twice: with the onsets still held together (exactly coincident
    onsets stay sound between grid points however large the decoders) and
    free. Only for 3 to ``narrow_from - 1``
    neurons (below, the short fits find these fits; from ``narrow_from`` on,
    the continuation carries them).
    """
    if options.n_centre == 0 or n < 3 or n >= options.narrow_from:
        return None
    members = [_centre_members(enc, options.centre_screen, rng) for enc in _sign_patterns(n, 3)]
    thetas, encoders, frozen = (np.concatenate(parts) for parts in zip(*members))
    batch = _Batch(thetas, encoders, np.full(len(thetas), "search", dtype=object), frozen=frozen)
    for iterations, keep in options.centre_halving:
        _levenberg_marquardt(problem, batch, iterations)
        batch = batch.subset(_rank(batch.cost)[:keep])
    # the onsets of one side are exchangeable: fits that differ only by their
    # order reach the same cost, so keep the first of each cost
    order = _rank(batch.cost)
    cost = batch.cost[order]
    distinct = np.concatenate([[True], np.diff(cost) > 1e-4 * cost[1:]])
    best = batch.take(order[distinct][:options.n_centre])
    # polished twice: with the onsets still held together at the centre
    # (exactly coincident onsets are sound between grid points, however large
    # the decoders) and free
    free = best.take(np.arange(len(best.thetas)))
    free.frozen = None
    return _Batch.concat([best, free])


def _short_fits(problem, batch, options):
    """Stage 2: successive halving of short Levenberg-Marquardt fits on the coarse grid."""
    for iterations, keep in options.halving:
        _levenberg_marquardt(problem, batch, iterations)
        order = np.argsort(batch.cost, kind="stable")[:keep]
        batch = batch.subset(order)
    return batch.take(np.argsort(batch.cost, kind="stable")[:options.n_polish])


# the new neuron of a continuation: intercepts from "fires everywhere" (a
# saturating offset) to "fires near the edge only", three max rates
_NEW_C = np.linspace(-2.0, 0.8, 15)
_NEW_RHO = np.array([0.35, 0.65, 1.0])


def _extend(problem, previous, options):
    """Stage 3: continuation starts, the fit of N-1 neurons plus one new neuron.

    The new neuron's sign, intercept and max rate are screened on the coarse
    grid with the others fixed; the best ``n_extend`` go to the polish. On any
    grid each costs at most the N-1 fit (the new decoder may be zero), and the
    polish only accepts steps that lower the cost.
    """
    theta, enc = previous
    n = len(enc)
    cs, rhos, signs = np.meshgrid(_NEW_C, _NEW_RHO, [1.0, -1.0], indexing="ij")
    cs, rhos, signs = cs.ravel(), rhos.ravel(), signs.ravel()
    thetas = np.column_stack([np.tile(theta[:n], (len(cs), 1)), cs,
                              np.tile(theta[n:], (len(cs), 1)), rhos])
    encoders = np.column_stack([np.tile(enc, (len(cs), 1)), signs])
    costs = np.concatenate([problem.batch_cost(thetas[signs == s], np.append(enc, s))
                            for s in (1.0, -1.0)])
    order = np.concatenate([np.flatnonzero(signs == s) for s in (1.0, -1.0)])
    best = order[np.argsort(costs, kind="stable")[:options.n_extend]]
    return _Batch(thetas[best], encoders[best], np.full(len(best), "continuation", dtype=object))


def _polish(problem, batch, options):
    """Stage 4: refine the candidates on the fine grid to convergence."""
    return _levenberg_marquardt(problem, batch, options.polish_iterations, rtol=options.rtol,
                                window=options.window)


# --------------------------------------------------------------------------- driver

def _grid_weights(eval_points, lo, hi, n_points):
    """Weights of an ``n_points`` grid over (lo, hi): the share of ``eval_points``
    nearest each grid point, mixed with a uniform share `_UNIFORM_SHARE`."""
    if eval_points is None:
        return None
    idx = np.rint((eval_points - lo) / (hi - lo) * (n_points - 1)).astype(int)
    density = np.bincount(idx, minlength=n_points) / len(eval_points)
    return (1.0 - _UNIFORM_SHARE) * density + _UNIFORM_SHARE / n_points


def _check_search(search):
    if search is None:
        return SearchOptions()
    if not isinstance(search, SearchOptions):
        raise PopfitTypeError(
            f"search must be a popfit.SearchOptions (got {search!r} of type "
            f"{type(search).__name__}); use SearchOptions(), SearchOptions.quick() or "
            "SearchOptions.thorough()")
    return search


@dataclass(frozen=True)
class _Level:
    """The fit of one population size: the winner of stage 4."""

    theta: np.ndarray
    encoders: np.ndarray
    cost: float
    origin: str
    converged: bool
    iterations: int
    n_starts: int


def _fit_level(n, coarse, fine, previous, rng, options, times, check=None, bound=np.inf):
    """The fit of ``n`` neurons: fresh search and continuation of ``previous``.

    The winner is the polished candidate of least cost on the fine grid among
    those whose objective at the midpoints between fine grid points
    (``check``, with the decoders solved on the fine grid: what the fit will
    predict there) is at most `_OFF_GRID_RTOL` times it and whose cost is at
    most ``bound`` (the cost of the fit of ``n - 1``, so the objective never
    increases with ``n``); if there is none, the one of least cost.
    """
    t0 = time.perf_counter()
    starts = _screen(coarse, n, rng, options)
    t1 = time.perf_counter()
    candidates = _short_fits(coarse, starts, options)
    t2 = time.perf_counter()
    candidates = _Batch.concat([candidates, _centre_starts(coarse, n, rng, options)])
    if previous is not None and options.n_extend > 0:
        candidates = _Batch.concat([candidates, _extend(coarse, previous, options)])
    t3 = time.perf_counter()
    polished = _polish(fine, candidates, options)
    t4 = time.perf_counter()
    for name, dt in (("screen", t1 - t0), ("short fits", t2 - t1), ("continuation", t3 - t2),
                     ("polish", t4 - t3)):
        times[name] = times.get(name, 0.0) + dt
    i = int(_rank(polished.cost)[0])
    if check is not None:
        # a fit that is good only at its grid points (LIF onsets inside one
        # grid cell with large cancelling decoders) is not a fit
        decoders = fine.solve(fine.rates(polished.thetas, polished.encoders)).decoders
        between = check.cost_with(polished.thetas, polished.encoders, decoders)
        sound = (between <= _OFF_GRID_RTOL**2 * 2.0 * polished.cost) & (polished.cost <= bound)
        if sound.any():
            ok = np.flatnonzero(sound)
            i = int(ok[_rank(polished.cost[ok])[0]])
    return _Level(polished.thetas[i].copy(), polished.encoders[i].copy(),
                  float(polished.cost[i]), str(polished.origin[i]),
                  bool(polished.converged[i]), int(polished.iterations[i]),
                  len(starts.thetas) + len(candidates.thetas) - options.n_polish)


@public("fit_activation")
def fit_activation(target, n_neurons=4, *, neuron_type="LIF", domain=None,
                   max_rate=400.0, synapse=0.005, eval_points=None, seed=None, search=None):
    """Fit a small population of positive-only neurons to a signed curve.

    Parameters
    ----------
    target : str or callable
        ``"tanh"``, ``"sigmoid"`` (``"logistic"``), ``"linear"`` (``"identity"``),
        ``"relu"``, ``"softplus"``, or a vectorized ``f(x: ndarray) -> ndarray``
        (which then needs ``domain``) returning real values of at most 1e300
        in magnitude.
    n_neurons : int
        Number of neurons in the population, in [1, `MAX_N_NEURONS`] (32).
        The fit of N climbs through the fits of 1..N-1, so the time grows
        about as N**2 (see the README's table of fit times).
    neuron_type : str or nengo.neurons.NeuronType
        ``"LIF"`` (nengo's LIF, tau_rc=0.02 s, tau_ref=0.002 s),
        ``"RectifiedLinear"`` (``"relu"``), or an instance of `nengo.LIF`,
        `nengo.LIFRate`, `nengo.RectifiedLinear`, `nengo.SpikingRectifiedLinear`.
    domain : (float, float), optional
        Input interval to fit on. Named targets have defaults: tanh (-3, 3),
        sigmoid (-6, 6), linear (-1, 1), relu (-1, 1), softplus (-4, 4).
        Its width must be in [1.5e-154, 1.3e154] and at least 1e-8 times
        ``max(|lo|, |hi|)`` (`popfit._validation.check_domain`).
    max_rate : float
        No neuron fires above this rate (Hz) anywhere in the domain. Bounds
        (`popfit.neurons.max_rate_bounds`): below ``1/tau_ref`` and at least
        about 7.8 Hz for LIF types (nengo's defaults), in [1e-3, 1e6) Hz for
        rectified-linear types.
    synapse : float or None
        Time constant (s) of the lowpass synapse that will filter the spikes.
        The fit minimises rate error plus the spike noise passed on by the
        decoders at that synapse; ``None`` fits rates only.
    eval_points : array_like, shape (n_samples,), optional
        Samples of the inputs the unit will see (as nengo's ``eval_points``:
        where the error is measured). The objective is then averaged over
        their distribution (90%) plus the uniform one over ``domain`` (10%,
        so the curve stays right where samples are sparse) instead of
        uniformly over ``domain``. All must lie inside ``domain``. The reported
        ``nrmse`` stays uniform over the domain.
    seed : int, optional
        Seed in [0, 2**32 - 1] for the random starts; the same seed gives an
        identical fit.
    search : SearchOptions, optional
        Budget of the search (default ``SearchOptions()``); ``SearchOptions.quick()``
        when any good fit will do, ``SearchOptions.thorough()`` for the best.

    Returns
    -------
    PopulationFit
        With ``diagnostics`` (a `SearchDiagnostics`): how the fit was found.
        Its decoders are solved for nengo's own rates of the exported gains
        and biases. If some of those rates differ from the fitted curves (LIF
        neurons so slow that nengo's float64 current cannot resolve them),
        ``success`` is False and a warning says so.

    Notes
    -----
    The fit of N neurons continues the fit of N-1 neurons (made the same way,
    from one neuron up), so for the same arguments and seed the minimised
    objective (``fit.diagnostics.objective``) never increases with N.
    """
    from .result import PopulationFit

    start_time = time.perf_counter()
    n_neurons = check_int(n_neurons, "n_neurons", low=1, high=MAX_N_NEURONS)
    neuron_type = resolve_neuron_type(neuron_type)
    if is_loihi_type(neuron_type):  # whole-step spiking: smooth surrogate, see popfit.loihi
        from .loihi import fit_loihi

        return fit_loihi(target, n_neurons, neuron_type=neuron_type, domain=domain,
                         max_rate=max_rate, synapse=synapse, eval_points=eval_points,
                         seed=seed, search=search)
    max_rate = check_max_rate(max_rate, neuron_type)
    synapse = check_synapse(synapse, "synapse")
    target, (lo, hi) = resolve_target(target, domain)
    seed = check_seed(seed, allow_none=True)
    if eval_points is not None:
        eval_points = check_eval_points(eval_points, (lo, hi))
    options = _check_search(search)

    model = RateModel(neuron_type)
    x_fine = np.linspace(lo, hi, options.fit_points)
    y_fine = evaluate_target(target, x_fine)
    scale = error_scale(y_fine)

    def problem(n_points):
        x = np.linspace(lo, hi, n_points)
        y = y_fine if n_points == options.fit_points else evaluate_target(target, x)
        return _Problem(model, x, y, lo, hi, max_rate, synapse, scale,
                        _grid_weights(eval_points, lo, hi, n_points))

    coarse, fine = problem(options.search_points), problem(options.fit_points)
    x_mid = 0.5 * (x_fine[1:] + x_fine[:-1])  # midpoints between fine grid points
    w_mid = None if fine.w is None or eval_points is None else 0.5 * (fine.w[1:] + fine.w[:-1])
    check = _Problem(model, x_mid, evaluate_target(target, x_mid), lo, hi, max_rate, synapse,
                     scale, None if w_mid is None else w_mid / w_mid.sum())
    rng = np.random.default_rng(seed)
    times, objectives, previous, n_total, bound = {}, [], None, 0, np.inf
    with threadpool_limits(limits=1, user_api="blas"):
        for n in range(1, n_neurons + 1):
            level = _fit_level(n, coarse, fine, previous, rng, options, times, check, bound)
            previous, bound = (level.theta, level.encoders), level.cost
            objectives.append(float(np.sqrt(2.0 * level.cost)))
            n_total += level.n_starts

    theta, encoders = level.theta, level.encoders
    c, r = theta[:n_neurons], theta[n_neurons:] * max_rate
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    gain_s, bias_s = gain_bias(neuron_type, r, c)
    # J = gain_s * s + bias_s with s = encoder * (x - mid) / half, so in
    # nengo's convention J = gain * (encoder * x) + bias:
    gain = gain_s / half
    bias = bias_s - gain_s * encoders * mid / half
    # decoders for the rates nengo computes from the exported gain and bias;
    # for very slow LIF neurons these differ from the fitted curves (J - 1
    # below float64's resolution of J), which is reported, not hidden
    exported = neuron_type.rates(x_fine[:, None] * encoders, gain, bias)
    with np.errstate(all="ignore"):
        decoders = fine.solve(exported[None]).decoders[0] * scale
        gap = np.max(np.abs(exported - fine.rates(theta[None], encoders[None])[0]), axis=0)
    off = gap > _EXPORT_RATE_RTOL * max_rate
    order = np.lexsort((c * encoders, -encoders))  # + neurons first, then by intercept
    if level.converged:
        message = (f"converged: the objective fell by less than {options.rtol:g} relative "
                   f"over the last {options.window} iterations")
    else:
        message = (f"not converged after {level.iterations} iterations (polish_iterations="
                   f"{options.polish_iterations}); the objective was still falling")
    success = level.converged
    if off.any():
        success = False
        message = (
            f"{int(off.sum())} of {n_neurons} neurons fire differently in nengo than fitted "
            f"(by up to {gap.max():.3g} Hz): their rates, down to {r[off].min():.3g} Hz, "
            "are too slow for nengo's float64 current J = gain * x + bias to resolve; "
            "the decoders were solved for nengo's rates; raise max_rate or fit fewer "
            f"neurons (optimizer: {message})"
        )
    diagnostics = SearchDiagnostics(
        objective=objectives[-1], objectives=tuple(objectives), origin=level.origin,
        sign_pattern=(int(np.sum(encoders > 0)), int(np.sum(encoders < 0))),
        n_starts=level.n_starts, n_starts_total=n_total, iterations=level.iterations,
        converged=level.converged, message=message,
        stage_times=tuple((k, round(v, 6)) for k, v in times.items()), options=options)
    fit = PopulationFit.from_parameters(
        target=target, domain=(lo, hi), neuron_type=neuron_type,
        gain=gain[order], bias=bias[order], encoders=encoders[order],
        decoders=decoders[order], max_rate=max_rate, synapse=synapse, seed=seed,
        success=success, message=message, nfev=level.iterations + 1,
        fit_time=time.perf_counter() - start_time, diagnostics=diagnostics,
    )
    if not fit.success:
        warnings.warn(f"fit_activation: the optimizer did not converge: {fit.message}",
                      RuntimeWarning, stacklevel=user_stacklevel())
    return fit
