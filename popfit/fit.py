"""The optimizer: fit gains, biases, encoder signs and decoders of a small population.

Structure (see DESIGN.md): given each neuron's encoder sign, intercept and
max rate, the decoders solve a linear least-squares problem, so only the 2N
nonlinear parameters go to `scipy.optimize.least_squares` (variable
projection, Golub-Pereyra Jacobian computed exactly). The objective is the
expected squared error of the *spiking* population at the deployment synapse:

    mean_x (A(x) d - y(x))**2  +  sum_i d_i**2 mean_x var_i(x)

where ``var_i`` is the variance of neuron i's synapse-filtered regular spike
train (`popfit.neurons.spike_noise_variance`). This is a ridge problem with a
per-neuron penalty, so the decoders stay exact. Encoder signs are discrete:
structured starts cover every split of the neurons into the two signs.
"""

import time
import warnings

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.stats.qmc
from threadpoolctl import threadpool_limits

from ._validation import check_eval_points, check_int, check_seed, check_synapse, public
from .metrics import error_scale
from .neurons import (LOWEST_RATE_FRACTION, RateModel, check_max_rate, gain_bias,
                      is_loihi_type, resolve_neuron_type, spike_noise_variance)
from .targets import evaluate_target, resolve_target

#: Largest population `fit_activation` accepts. The search covers every split
#: of the neurons into the two encoder signs, so its cost grows quickly with N
#: (measured on one core: see the README's table of fit times).
MAX_N_NEURONS = 32
N_FIT_POINTS = 2001  # grid the final fit is polished on
N_SEARCH_POINTS = 201  # coarse grid of the global search
#: Largest gap (as a fraction of max_rate) tolerated between a neuron's fitted
#: rate curve and nengo's rates of the exported gain and bias (float64 rounding
#: of nengo's current J = gain * x + bias for very slow LIF neurons)
_EXPORT_RATE_RTOL = 1e-3

_C_BOUNDS = (-5.0, 0.95)  # intercepts, in units where the faced domain edge is 1 (below -1:
# the neuron fires over the whole domain, a saturating offset that tanh-like fits use)
_RHO_MIN = LOWEST_RATE_FRACTION  # lowest max rate, as a fraction of max_rate
_RATE_ONLY_RIDGE = 1e-14  # relative ridge keeping rate-only fits well posed
_N_SCREEN = 512  # Sobol points screened per encoder-sign pattern
_N_SHORT = 64  # screened points that get a short local fit, over all sign patterns
_MIN_SHORT_PER_PATTERN = 3
_HALVING = ((8, 24), (20, 8), (40, 3))  # (max_nfev, survivors) rounds on the coarse grid
_N_POLISH = 3
_STALL_NFEV = 20  # extra evaluations that test whether a polish out of budget has stalled
_STALL_RTOL = 2e-3  # relative cost, i.e. the error moves by < 0.1%
_UNIFORM_SHARE = 0.1  # share of the uniform distribution when eval_points are given
_POLISH_NFEV = 200


class _Problem:
    """The variable-projection least-squares problem for one encoder-sign pattern."""

    def __init__(self, model, x, y, lo, hi, encoders, max_rate, synapse, scale, weights=None):
        self.model = model
        self.encoders = encoders
        self.max_rate = max_rate
        self.synapse = synapse
        self.m = len(x)
        mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        # s: input projected on each encoder, scaled so the faced edge is s = 1
        self.ds = (x[1] - x[0]) / half
        self.s = (x[:, None] * encoders[None, :] - mid * encoders[None, :]) / half
        # weights of the grid points (sum 1): uniform, or the eval_points density
        self.w = np.full(self.m, 1.0 / self.m) if weights is None else weights
        self.sqrt_w = np.sqrt(self.w)
        self.t = np.concatenate([self.sqrt_w * y / scale, np.zeros(len(encoders))])
        self._key = self._last = None

    def unpack(self, theta):
        n = len(self.encoders)
        return theta[:n], theta[n:] * self.max_rate  # intercepts c, max rates r

    def rates(self, theta, derivatives=False):
        c, r = self.unpack(theta)
        k, dk = self.model.k_and_dk(r)
        z = (self.s - c) / (1.0 - c)
        j = self.model.j0 + k * z
        a, slope = self.model.rate_and_slope(j)
        if not derivatives:
            return a
        # LIF onsets are infinitely steep; on a grid the residual moves by at
        # most about one rate per grid step, so cap the slope there (without
        # this a grid point next to an onset dominates the Jacobian)
        dj_step = k / (1.0 - c) * self.ds
        slope = np.minimum(slope, a / dj_step)
        da_dc = slope * k * (z - 1.0) / (1.0 - c)
        da_drho = slope * dk * z * self.max_rate
        return a, da_dc, da_drho

    def solve(self, a):
        """Decoders (in units of the scaled target), residual, and the QR of B."""
        n = a.shape[1]
        if self.synapse is None:
            noise = np.full(n, _RATE_ONLY_RIDGE * self.max_rate**2)
            dnoise = None
        else:
            var, dvar = spike_noise_variance(a, self.synapse)
            noise = self.w @ var
            dnoise = dvar * self.w[:, None]
        lam = np.sqrt(noise + 1e-300)
        b = np.vstack([self.sqrt_w[:, None] * a, np.diag(lam)])
        q, rr = scipy.linalg.qr(b, mode="economic", check_finite=False)
        d = scipy.linalg.solve_triangular(rr, q.T @ self.t, check_finite=False)
        resid = b @ d - self.t
        return d, resid, b, q, rr, lam, dnoise

    def _evaluate(self, theta):
        """Rates, their derivatives and the solve at ``theta``; the last one is
        kept, since least_squares asks for the Jacobian where it just evaluated."""
        key = theta.tobytes()
        if key != self._key:
            a, da_dc, da_drho = self.rates(theta, derivatives=True)
            self._key, self._last = key, (a, da_dc, da_drho, self.solve(a))
        return self._last

    def residual(self, theta):
        return self._evaluate(theta)[3][1]

    def jacobian(self, theta):
        a, da_dc, da_drho, (d, resid, b, q, rr, lam, dnoise) = self._evaluate(theta)
        m, n = a.shape
        # columns of dB/dtheta_k: the upper block is d a_i / d theta_k, the lower
        # block has d lam_i / d theta_k at row m + i
        bk = np.zeros((m + n, 2 * n))
        bk[:m, :n] = self.sqrt_w[:, None] * da_dc
        bk[:m, n:] = self.sqrt_w[:, None] * da_drho
        if dnoise is not None:
            idx = np.arange(n)
            bk[m + idx, idx] = (dnoise * da_dc).sum(axis=0) / (2 * lam)
            bk[m + idx, n + idx] = (dnoise * da_drho).sum(axis=0) / (2 * lam)
        owner = np.concatenate([np.arange(n), np.arange(n)])
        t1 = bk * d[owner]
        t1 -= q @ (q.T @ t1)
        w = bk.T @ resid
        rinv_t = scipy.linalg.solve_triangular(rr, np.eye(n), trans="T", check_finite=False)
        t2 = q @ (rinv_t[:, owner] * w)
        return t1 - t2

    def batch_cost(self, thetas):
        """Squared residual norm for many parameter vectors at once (normal
        equations; for screening)."""
        n = len(self.encoders)
        c = thetas[:, None, :n]
        r = thetas[:, n:] * self.max_rate
        k = self.model.k_and_dk(r)[0][:, None, :]
        a = self.model.rate_and_slope(self.model.j0 + k * (self.s - c) / (1.0 - c))[0]
        if self.synapse is None:
            noise = np.full((len(thetas), n), _RATE_ONLY_RIDGE * self.max_rate**2)
        else:
            noise = np.einsum("m,bmi->bi", self.w, spike_noise_variance(a, self.synapse)[0])
        a = a * self.sqrt_w[:, None]
        t = self.t[:self.m]
        at = a.transpose(0, 2, 1)
        gram = at @ a
        gram[:, np.arange(n), np.arange(n)] += noise + 1e-300
        rhs = at @ t
        with np.errstate(all="ignore"):
            d = np.linalg.solve(gram, rhs[..., None])[..., 0]
            resid = (a @ d[..., None])[..., 0] - t
            cost = np.sum(resid**2, axis=1) + np.sum(noise * d**2, axis=1)
        return np.where(np.isfinite(cost), cost, np.inf)


def _structured_starts(n, encoders_plus):
    """Intercepts spread evenly within each sign group, at 80% of max_rate."""
    out = []
    groups = [np.flatnonzero(encoders_plus), np.flatnonzero(~encoders_plus)]
    for lo_c, hi_c in ((-0.7, 0.5), (-0.9, 0.2)):
        c = np.zeros(n)
        for g in groups:
            if len(g) == 1:
                c[g] = 0.5 * (lo_c + hi_c)
            elif len(g) > 1:
                c[g] = np.linspace(lo_c, hi_c, len(g))
        out.append(np.concatenate([c, np.full(n, 0.8)]))
    return out


def _screen_starts(n, n_points, seed):
    """Scrambled Sobol points over intercepts in [-1.5, 0.9] and rates in [0.2, 1]."""
    u = scipy.stats.qmc.Sobol(2 * n, seed=seed).random(n_points)
    return np.column_stack([-1.5 + 2.4 * u[:, :n], 0.2 + 0.8 * u[:, n:]])


def _sign_patterns(n):
    """Encoder patterns: k neurons facing +, n - k facing -, for k = 0..n."""
    return [np.array([True] * k + [False] * (n - k)) for k in range(n, -1, -1)]


def _local_fit(problem, theta0, max_nfev):
    n = len(problem.encoders)
    lower = np.concatenate([np.full(n, _C_BOUNDS[0]), np.full(n, _RHO_MIN)])
    upper = np.concatenate([np.full(n, _C_BOUNDS[1]), np.ones(n)])
    theta0 = np.clip(theta0, lower + 1e-9, upper - 1e-9)
    return scipy.optimize.least_squares(
        problem.residual, theta0, jac=problem.jacobian, bounds=(lower, upper),
        method="trf", x_scale=1.0, max_nfev=max_nfev, ftol=1e-10, xtol=1e-10, gtol=1e-10,
    )


def _grid_weights(eval_points, lo, hi, n_points):
    """Weights of an ``n_points`` grid over (lo, hi): the share of ``eval_points``
    nearest each grid point, mixed with a uniform share `_UNIFORM_SHARE`."""
    if eval_points is None:
        return None
    idx = np.rint((eval_points - lo) / (hi - lo) * (n_points - 1)).astype(int)
    density = np.bincount(idx, minlength=n_points) / len(eval_points)
    return (1.0 - _UNIFORM_SHARE) * density + _UNIFORM_SHARE / n_points


@public("fit_activation")
def fit_activation(target, n_neurons=4, *, neuron_type="LIF", domain=None,
                   max_rate=400.0, synapse=0.005, eval_points=None, seed=None):
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
        Seed in [0, 2**32 - 1] for the extra random starts; the same seed
        gives an identical fit.

    Returns
    -------
    PopulationFit
        Its decoders are solved for nengo's own rates of the exported gains
        and biases. If some of those rates differ from the fitted curves (LIF
        neurons so slow that nengo's float64 current cannot resolve them),
        ``success`` is False and a warning says so.
    """
    from .result import PopulationFit

    start_time = time.perf_counter()
    n_neurons = check_int(n_neurons, "n_neurons", low=1, high=MAX_N_NEURONS)
    neuron_type = resolve_neuron_type(neuron_type)
    if is_loihi_type(neuron_type):  # whole-step spiking: smooth surrogate, see popfit.loihi
        from .loihi import fit_loihi

        return fit_loihi(target, n_neurons, neuron_type=neuron_type, domain=domain,
                         max_rate=max_rate, synapse=synapse, eval_points=eval_points,
                         seed=seed)
    max_rate = check_max_rate(max_rate, neuron_type)
    synapse = check_synapse(synapse, "synapse")
    target, (lo, hi) = resolve_target(target, domain)
    seed = check_seed(seed, allow_none=True)
    if eval_points is not None:
        eval_points = check_eval_points(eval_points, (lo, hi))

    model = RateModel(neuron_type)
    grids = {}

    def problem_for(encoders, n_points):
        if n_points not in grids:
            xg = np.linspace(lo, hi, n_points)
            grids[n_points] = (xg, evaluate_target(target, xg))
        xg, yg = grids[n_points]
        return _Problem(model, xg, yg, lo, hi, encoders, max_rate, synapse, scale,
                        _grid_weights(eval_points, lo, hi, n_points))

    y = evaluate_target(target, np.linspace(lo, hi, N_FIT_POINTS))
    scale = error_scale(y)
    sobol = _screen_starts(n_neurons, _N_SCREEN, np.random.default_rng(seed))
    n_short = min(_N_SHORT, 16 * n_neurons)  # small populations need fewer starts
    with threadpool_limits(limits=1, user_api="blas"):
        # 1. screen, on a coarse grid: structured starts and Sobol points, one
        #    linear solve each, for every split of the neurons into the two signs
        #    Every pattern gets its structured starts and its best few Sobol
        #    points; the rest of the budget goes to the best points overall
        starts, pool = [], []
        for plus in _sign_patterns(n_neurons):
            problem = problem_for(np.where(plus, 1.0, -1.0), N_SEARCH_POINTS)
            costs = problem.batch_cost(sobol)
            screened = np.argsort(costs, kind="stable")
            starts += [(problem, t) for t in _structured_starts(n_neurons, plus)]
            starts += [(problem, sobol[i]) for i in screened[:_MIN_SHORT_PER_PATTERN]]
            pool += [(costs[i], len(pool) + k, problem, sobol[i])
                     for k, i in enumerate(screened[_MIN_SHORT_PER_PATTERN:n_short])]
        pool.sort(key=lambda item: item[:2])
        n_extra = n_short - _MIN_SHORT_PER_PATTERN * (n_neurons + 1)
        starts += [(problem, theta) for _, _, problem, theta in pool[:max(n_extra, 0)]]
        # 2. successive halving of short local fits on the coarse grid
        candidates = [(problem, theta0) for problem, theta0 in starts]
        for nfev, keep in _HALVING:
            short = []
            for problem, theta0 in candidates:
                res = _local_fit(problem, theta0, max_nfev=nfev)
                short.append((res.cost, problem, res.x))
            short.sort(key=lambda item: item[0])
            candidates = [(problem, theta) for _, problem, theta in short[:keep]]
        # 3. polish the best on the fine grid, to convergence
        best = None
        for coarse, theta in candidates[:_N_POLISH]:
            problem = problem_for(coarse.encoders, N_FIT_POINTS)
            res = _local_fit(problem, theta, max_nfev=_POLISH_NFEV)
            if best is None or res.cost < best[0].cost:
                best = (res, problem)
        res, problem = best
        if res.status == 0:  # out of evaluations: stalled, or still descending?
            more = _local_fit(problem, res.x, max_nfev=_STALL_NFEV)
            gain = (res.cost - more.cost) / max(res.cost, 1e-300)
            if more.cost < res.cost:
                more.nfev += res.nfev
                res = more
            if gain < _STALL_RTOL:
                res.success = True
                res.message = (f"stalled: {_STALL_NFEV} more evaluations lowered the squared "
                               f"error by {max(gain, 0.0):.1e} relative (< {_STALL_RTOL:g}); "
                               "steep LIF onsets on the grid keep the optimizer taking "
                               "tiny steps")
    c, r = problem.unpack(res.x)
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    gain_s, bias_s = gain_bias(neuron_type, r, c)
    encoders = problem.encoders
    # J = gain_s * s + bias_s with s = encoder * (x - mid) / half, so in
    # nengo's convention J = gain * (encoder * x) + bias:
    gain = gain_s / half
    bias = bias_s - gain_s * encoders * mid / half
    # decoders for the rates nengo computes from the exported gain and bias;
    # for very slow LIF neurons these differ from the fitted curves (J - 1
    # below float64's resolution of J), which is reported, not hidden
    x_fit = np.linspace(lo, hi, N_FIT_POINTS)
    exported = neuron_type.rates(x_fit[:, None] * encoders, gain, bias)
    decoders = problem.solve(exported)[0] * scale
    gap = np.max(np.abs(exported - problem.rates(res.x)), axis=0)
    off = gap > _EXPORT_RATE_RTOL * max_rate
    if off.any():
        res.success = False
        res.message = (
            f"{int(off.sum())} of {n_neurons} neurons fire differently in nengo than fitted "
            f"(by up to {gap.max():.3g} Hz): their rates, down to {r[off].min():.3g} Hz, "
            "are too slow for nengo's float64 current J = gain * x + bias to resolve; "
            "the decoders were solved for nengo's rates; raise max_rate or fit fewer "
            f"neurons (optimizer: {res.message})"
        )
    order = np.lexsort((c * encoders, -encoders))  # + neurons first, then by intercept
    fit = PopulationFit.from_parameters(
        target=target, domain=(lo, hi), neuron_type=neuron_type,
        gain=gain[order], bias=bias[order], encoders=encoders[order],
        decoders=decoders[order], max_rate=max_rate, synapse=synapse, seed=seed,
        success=bool(res.success), message=str(res.message), nfev=int(res.nfev),
        fit_time=time.perf_counter() - start_time,
    )
    if not fit.success:
        warnings.warn(f"fit_activation: the optimizer did not converge: {fit.message}",
                      RuntimeWarning, stacklevel=2)
    return fit
