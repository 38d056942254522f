"""The search stages of `popfit.fit_activation`, with the budget in a frozen `SearchOptions`.

Encoder signs are discrete: the search covers every split of the neurons
into the two signs. It runs in named stages:

1. `_screen`: structured starts and scrambled Sobol points for every sign
   pattern, each costed with one linear solve on a coarse grid (from
   ``narrow_from`` neurons on: only the structured starts of the three
   patterns nearest balanced, as the continuation carries the quality there);
2. `_short_fits`: successive halving of Levenberg-Marquardt fits of the best
   screened starts, all starts stacked in one batched problem
   (`popfit.fit.objective.levenberg_marquardt`);
   `_centre_starts`: the centre family (onsets at the domain centre, optional
   offset neurons starting past the far edge), fitted on the coarse grid in
   a reduced space (the onsets held at the centre: its basins are narrower
   than a coarse grid step, where free short fits lose them), the best sent
   to stage 4 twice, with the onsets still held and free;
3. `_extend`: continuation, the N-1 fit plus one new neuron, the new neuron
   placed by screening;
4. `_polish`: all of these refined on the fine grid until the objective
   falls by less than ``rtol`` relative over ``window`` iterations.

The fit of N neurons (`fit_level`) is the best of stage 4 over the fresh
search and the continuation of the fit of N-1 neurons (itself made the same
way, from N=1 up), among the candidates that are *sound off the grid*: a LIF
onset is infinitely steep, so neurons whose onsets differ by less than a grid
step, with large decoders of opposite signs, can fit the grid points while
the curve between them is far off (benchmarks/bench_fit.py reports the
error between grid points). A
candidate is sound if its objective at the midpoints between fine grid
points is at most `_OFF_GRID_RTOL` times the one on the grid; if no sound
candidate is as good as the fit of N-1, the best one is taken regardless.
N+1 neurons can reproduce N (the new neuron's decoder set to zero), and
every stage only accepts steps that lower the objective, so the minimised
objective never increases with N (up to rounding), and `fit_activation(f, N)`
is, for the same seed, exactly the level N of the chain that
`fit_activation(f, N + 1)` climbs.
"""

import time
from dataclasses import dataclass

import numpy as np
import scipy.stats.qmc

from .objective import RHO_MIN, Batch, levenberg_marquardt

_OFF_GRID_RTOL = 1.05  # largest ratio of the objective between fine grid points to the one on them


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
        return Batch(np.array([t for t, _ in kept]), np.array([e for _, e in kept]),
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
    return Batch(np.array([t for t, _ in kept]), np.array([e for _, e in kept]),
                  np.full(len(kept), "search", dtype=object))


# offset neurons of the centre family, (intercept in edge units, max rate
# fraction): a slow neuron starting just past the far edge (a curved offset)
# and a fast one starting well past it (a saturating offset)
_CENTRE_OFFSETS = ((-1.15, RHO_MIN), (-1.6, 1.0))


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
            rho[rows, g[0]] = RHO_MIN ** rng.uniform(0.0, 1.0, len(rows))
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
    batch = Batch(thetas, encoders, np.full(len(thetas), "search", dtype=object), frozen=frozen)
    for iterations, keep in options.centre_halving:
        levenberg_marquardt(problem, batch, iterations)
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
    return Batch.concat([best, free])


def _short_fits(problem, batch, options):
    """Stage 2: successive halving of short Levenberg-Marquardt fits on the coarse grid."""
    for iterations, keep in options.halving:
        levenberg_marquardt(problem, batch, iterations)
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
    return Batch(thetas[best], encoders[best], np.full(len(best), "continuation", dtype=object))


def _polish(problem, batch, options):
    """Stage 4: refine the candidates on the fine grid to convergence."""
    return levenberg_marquardt(problem, batch, options.polish_iterations, rtol=options.rtol,
                                window=options.window)


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


def fit_level(n, coarse, fine, previous, rng, options, times, check=None, bound=np.inf):
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
    candidates = Batch.concat([candidates, _centre_starts(coarse, n, rng, options)])
    if previous is not None and options.n_extend > 0:
        candidates = Batch.concat([candidates, _extend(coarse, previous, options)])
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
