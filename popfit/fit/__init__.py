"""The optimizer: fit gains, biases, encoder signs and decoders of a small population.

`fit_activation` fits N positive-only neurons, each facing one of two
encoder signs, to a signed curve. It minimises the expected squared error of
the *spiking* population at the deployment synapse (rate error plus the
spike noise the decoders pass on); the decoders are solved exactly for each
choice of the neurons' intercepts and max rates, so only those (and the
encoder signs) are searched. The fit of N neurons continues the fit of N-1
(made the same way, from one neuron up), so for the same arguments and seed
the minimised objective never increases with N, and `fit_activation(f, N)`
is exactly the level N of the chain that `fit_activation(f, N + 1)` climbs.

Modules:

- `popfit.fit.options`: `SearchOptions` (the search budget) and
  `SearchDiagnostics` (how a fit was found);
- `popfit.fit.objective`: the objective, the variable-projection problem on
  one grid (`cap_onset_slopes` bounds LIF onset slopes in its Jacobian) and
  the batched Levenberg-Marquardt;
- `popfit.fit.search`: the search stages (screening, short fits, the centre
  family, continuation, polish) and the fit of one population size;
- this package: `fit_activation`, its argument checks, and the export of
  the fitted parameters in nengo's convention.
"""

import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from ..exceptions import PopfitTypeError
from .._validation import (check_eval_points, check_int, check_seed, check_synapse, public,
                           user_stacklevel)
from ..metrics import error_scale
from ..neurons import RateModel, check_max_rate, gain_bias, is_loihi_type, resolve_neuron_type
from ..targets import evaluate_target, resolve_target
from .objective import Problem, cap_onset_slopes, grid_weights
from .options import SearchDiagnostics, SearchOptions
from .search import fit_level

__all__ = ["MAX_N_NEURONS", "SearchDiagnostics", "SearchOptions", "cap_onset_slopes",
           "fit_activation"]

#: Largest population `fit_activation` accepts. The fit of N neurons climbs
#: through the fits of 1..N-1 (continuation), so its cost grows about as N**2
#: (measured: see the README's table of fit times).
MAX_N_NEURONS = 32
#: Largest gap (as a fraction of max_rate) tolerated between a neuron's fitted
#: rate curve and nengo's rates of the exported gain and bias (float64 rounding
#: of nengo's current J = gain * x + bias for very slow LIF neurons)
_EXPORT_RATE_RTOL = 1e-3


def _check_search(search):
    if search is None:
        return SearchOptions()
    if not isinstance(search, SearchOptions):
        raise PopfitTypeError(
            f"search must be a popfit.SearchOptions (got {search!r} of type "
            f"{type(search).__name__}); use SearchOptions(), SearchOptions.quick() or "
            "SearchOptions.thorough()")
    return search


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
    from ..result import PopulationFit

    start_time = time.perf_counter()
    n_neurons = check_int(n_neurons, "n_neurons", low=1, high=MAX_N_NEURONS)
    neuron_type = resolve_neuron_type(neuron_type)
    if is_loihi_type(neuron_type):  # whole-step spiking: smooth surrogate, see popfit.loihi
        from ..loihi import fit_loihi

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
