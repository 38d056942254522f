"""The public search budget (`SearchOptions`) and diagnostics (`SearchDiagnostics`) of
`popfit.fit_activation`.

The stages these options budget are described in `popfit.fit.search`.
"""

from dataclasses import dataclass, field, fields
from typing import Tuple

from ._validation import check_int
from .exceptions import PopfitError, PopfitValueError


@dataclass(frozen=True)
class SearchOptions:
    """Budget of `fit_activation`'s search (frozen; pass as ``search=``).

    The defaults reach the best known optima (rate-only tanh and sigmoid, LIF and
    ReLU, N = 2..8: exhaustive multi-start searches of 200-350 s per entry, the
    table in tests/fit/test_search.py and benchmarks/bench_fit.py) within 10%,
    on the grid and between its points (benchmarks/bench_fit.py measures
    accuracy and time; docs/benchmarks.md). `quick` is
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
