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

- `popfit.options` (beside the result, which records it): `SearchOptions`
  (the search budget) and `SearchDiagnostics` (how a fit was found);
- `popfit.fit.objective`: the objective, the variable-projection problem on
  one grid (`cap_onset_slopes` bounds LIF onset slopes in its Jacobian) and
  the batched Levenberg-Marquardt;
- `popfit.fit.search`: the search stages (screening, short fits, the centre
  family, continuation, polish) and the fit of one population size;
- `popfit.fit.population`: the fit of a continuous-time neuron type and
  the export of its parameters in nengo's convention;
- `popfit.fit.whole_step`: fits for neurons that spike on whole time steps
  (nengo-loihi's), through a smooth surrogate, and `staircase_decoders`;
- this package: `fit_activation`, which dispatches between the two.
"""

import time

from .._validation import check_int, public
from ..neurons import resolve_neuron_type
from ..options import SearchDiagnostics, SearchOptions
from ..platforms import get_platform
from ..wholestep import is_whole_step
from .objective import cap_onset_slopes
from .population import fit_population
from .whole_step import fit_whole_step, staircase_decoders

__all__ = ["MAX_N_NEURONS", "SearchDiagnostics", "SearchOptions", "cap_onset_slopes",
           "fit_activation", "staircase_decoders"]

#: Largest population `fit_activation` accepts. The fit of N neurons climbs
#: through the fits of 1..N-1 (continuation), so its cost grows about as N**2
#: (benchmarks/bench_fit.py measures it).
MAX_N_NEURONS = 32


@public
def fit_activation(target, n_neurons=4, *, neuron_type=None, platform=None, domain=None,
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
        about as N**2 (benchmarks/bench_fit.py measures it).
    neuron_type : str or nengo.neurons.NeuronType, optional
        ``"LIF"`` (nengo's LIF, tau_rc=0.02 s, tau_ref=0.002 s),
        ``"RectifiedLinear"`` (``"relu"``), ``"LoihiLIF"`` (needs
        ``popfit[loihi]``), or an instance of `nengo.LIF`, `nengo.LIFRate`,
        `nengo.RectifiedLinear`, `nengo.SpikingRectifiedLinear`. Default: the
        platform's (``platform.fit_neuron_type()``); given, it overrides the
        platform's.
    platform : str or popfit.platforms.Platform, optional
        Where the population will run (`popfit.get_platform`; default
        ``"nengo"``, whose neuron type is ``"LIF"``): it chooses the neuron
        type fitted when ``neuron_type`` is None (``"loihi"``: nengo-loihi's
        whole-step ``LoihiLIF``; ``"nir"``: LIF without refractory period).
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
    start_time = time.perf_counter()
    n_neurons = check_int(n_neurons, "n_neurons", low=1, high=MAX_N_NEURONS)
    if neuron_type is None:
        neuron_type = get_platform(platform).fit_neuron_type()
    else:
        get_platform(platform)  # checked even when the neuron type is given
    neuron_type = resolve_neuron_type(neuron_type)
    fit = fit_whole_step if is_whole_step(neuron_type) else fit_population
    return fit(target, n_neurons, neuron_type, domain=domain, max_rate=max_rate,
               synapse=synapse, eval_points=eval_points, seed=seed, search=search,
               start_time=start_time)
