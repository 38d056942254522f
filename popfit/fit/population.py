"""The fit of one population of a continuous-time neuron type (after the arguments' types).

`fit_population` climbs from one neuron to ``n_neurons`` (`popfit.fit.search`),
then exports the winner in nengo's convention: gains and biases from the
fitted intercepts and max rates, decoders solved again for nengo's own rates
of those gains and biases.
"""

import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from .._validation import check_eval_points, check_seed, check_synapse, user_stacklevel
from ..exceptions import PopfitTypeError
from ..metrics import error_scale
from ..neurons import RateModel, check_max_rate, gain_bias
from ..options import SearchDiagnostics, SearchOptions
from ..result import PopulationFit
from ..targets import evaluate_target, resolve_target
from .objective import Problem, grid_weights
from .search import fit_level

#: Largest gap (as a fraction of max_rate) tolerated between a neuron's fitted
#: rate curve and nengo's rates of the exported gain and bias (float64 rounding
#: of nengo's current J = gain * x + bias for very slow LIF neurons)
EXPORT_RATE_RTOL = 1e-3


def check_search(search):
    """``search`` as a `SearchOptions` (None: the default budget), or raise."""
    if search is None:
        return SearchOptions()
    if not isinstance(search, SearchOptions):
        raise PopfitTypeError(
            f"search must be a popfit.SearchOptions (got {search!r} of type "
            f"{type(search).__name__}); use SearchOptions(), SearchOptions.quick() or "
            "SearchOptions.thorough()")
    return search


def fit_population(target, n_neurons, neuron_type, *, domain=None, max_rate=400.0,
                   synapse=0.005, eval_points=None, seed=None, search=None, start_time=None):
    """`popfit.fit_activation` for a resolved continuous-time ``neuron_type``
    and a checked ``n_neurons`` (the other arguments are checked here)."""
    if start_time is None:
        start_time = time.perf_counter()
    max_rate = check_max_rate(max_rate, neuron_type)
    synapse = check_synapse(synapse, "synapse")
    target, (lo, hi) = resolve_target(target, domain)
    seed = check_seed(seed, allow_none=True)
    if eval_points is not None:
        eval_points = check_eval_points(eval_points, (lo, hi))
    options = check_search(search)

    model = RateModel(neuron_type)
    x_fine = np.linspace(lo, hi, options.fit_points)
    y_fine = evaluate_target(target, x_fine)
    scale = error_scale(y_fine)

    def problem(n_points):
        x = np.linspace(lo, hi, n_points)
        y = y_fine if n_points == options.fit_points else evaluate_target(target, x)
        return Problem(model, x, y, lo, hi, max_rate, synapse, scale,
                        grid_weights(eval_points, lo, hi, n_points))

    coarse, fine = problem(options.search_points), problem(options.fit_points)
    x_mid = 0.5 * (x_fine[1:] + x_fine[:-1])  # midpoints between fine grid points
    w_mid = None if fine.w is None or eval_points is None else 0.5 * (fine.w[1:] + fine.w[:-1])
    check = Problem(model, x_mid, evaluate_target(target, x_mid), lo, hi, max_rate, synapse,
                     scale, None if w_mid is None else w_mid / w_mid.sum())
    rng = np.random.default_rng(seed)
    times, objectives, previous, n_total, bound = {}, [], None, 0, np.inf
    with threadpool_limits(limits=1, user_api="blas"):
        for n in range(1, n_neurons + 1):
            level = fit_level(n, coarse, fine, previous, rng, options, times, check, bound)
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
    off = gap > EXPORT_RATE_RTOL * max_rate
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
