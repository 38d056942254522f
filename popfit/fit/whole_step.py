"""Fits for neurons that spike on whole time steps (nengo-loihi's types).

The staircase rate curve ``1 / (ceil(period / dt) * dt)`` of a whole-step
neuron (`popfit.wholestep`) has zero derivative almost everywhere, so
`fit_whole_step` fits a smooth surrogate first (`popfit.fit.population`),
then solves the decoders on the staircase and polishes gains and biases on
it. `staircase_decoders` re-solves only the decoders of an existing fit.
"""

import time

import nengo
import numpy as np
import scipy.optimize

from .._validation import check_eval_points, check_positive, public
from ..exceptions import PopfitTypeError
from ..neurons import is_lif, spike_noise_variance
from ..result import PopulationFit, check_fit
from ..solvers import spike_noise_penalty, spike_noise_ridge
from ..targets import evaluate_target, resolve_target
from ..wholestep import (
    DT,
    check,
    discretized_taus,
    kind,
    make,
    surrogate_neuron_type,
    surrogate_to_currents,
    whole_step_tau_ref,
)
from .objective import RATE_ONLY_RIDGE, grid_weights
from .population import fit_population

#: Points the staircase decoders are solved on (as fit_activation's polish grid).
_N_SOLVE_POINTS = 2001


def _grid_weights(eval_points, x):
    """Weights of the grid ``x`` (`popfit.fit.objective.grid_weights`; uniform without samples)."""
    w = grid_weights(eval_points, x[0], x[-1], len(x))
    return np.full(len(x), 1.0 / len(x)) if w is None else w


def solve_decoders(rates, y, weights, synapse, max_rate):
    """Decoders minimizing ``sum_x w (A d - y)**2 + sum_i d_i**2 sum_x w var_i``.

    ``var_i`` is the variance of neuron i's regular spike train filtered by
    ``Lowpass(synapse)`` (`popfit.neurons.spike_noise_variance`); ``synapse``
    None fits rates only (a tiny ridge keeps the solve well posed). This is
    the objective `popfit.fit_activation` minimizes, solved for fixed rates.
    """
    noise = (RATE_ONLY_RIDGE * max_rate**2 if synapse is None
             else spike_noise_penalty(rates, synapse, weights))
    return spike_noise_ridge(rates, y, noise, weights)


class _Staircase:
    """The fit objective of `popfit.fit_activation` on the whole-step rate curve.

    ``cost(gain, bias)`` is the weighted squared rate error plus the spike
    noise the decoders pass on, with the decoders solved exactly
    (`solve_decoders`) for the given gains and biases; a neuron above
    ``max_rate`` or silent everywhere makes the cost infinite.
    """

    def __init__(self, neuron_type, x, y, weights, encoders, synapse, max_rate):
        self.neuron_type, self.x, self.y, self.w = neuron_type, x, y, weights
        self.encoders, self.synapse, self.max_rate = encoders, synapse, max_rate

    def rates(self, gain, bias):
        return self.neuron_type.rates(self.x[:, None] * self.encoders, gain, bias)

    def decoders(self, gain, bias):
        return solve_decoders(self.rates(gain, bias), self.y, self.w, self.synapse,
                              self.max_rate)

    def cost(self, gain, bias):
        a = self.rates(gain, bias)
        peak = a.max(axis=0)
        if np.any(peak > self.max_rate * (1 + 1e-9)) or np.any(peak == 0):
            return np.inf
        d = solve_decoders(a, self.y, self.w, self.synapse, self.max_rate)
        cost = self.w @ (a @ d - self.y) ** 2
        if self.synapse is not None:
            cost += (self.w @ spike_noise_variance(a, self.synapse)[0]) @ d**2
        return float(cost)


@public
def staircase_decoders(fit, neuron_type=None, eval_points=None):
    """``fit`` with its decoders solved again against Loihi's whole-step rate curve.

    Keeps ``fit``'s gains, biases and encoders (so ``fit`` must be of an LIF
    or rectified-linear type whose currents mean the same on Loihi) and
    solves the decoders with the same noise-aware ridge as the fit, on the
    staircase of ``neuron_type`` (default: nengo-loihi's `LoihiLIF` with the
    fit's ``tau_rc``/``tau_ref``, or `LoihiSpikingRectifiedLinear`). This is
    the cheap fix for an existing fit; `fit_whole_step` also refits the tuning.

    Returns
    -------
    PopulationFit
        Of ``neuron_type``.
    """
    fit = check_fit(fit)
    if neuron_type is None:
        nt = fit.neuron_type
        if is_lif(nt):
            neuron_type = make("LoihiLIF", tau_rc=nt.tau_rc, tau_ref=nt.tau_ref)
        elif isinstance(nt, nengo.RectifiedLinear):
            neuron_type = make("LoihiSpikingRectifiedLinear")
        else:
            raise PopfitTypeError(
                f"fit.neuron_type must be an LIF or rectified-linear type, whose currents "
                f"mean the same on Loihi (got {nt!r}); refit with "
                "fit_activation(..., neuron_type='LoihiLIF') instead")
    neuron_type = check(neuron_type)
    lo, hi = fit.domain
    x = np.linspace(lo, hi, _N_SOLVE_POINTS)
    points = None if eval_points is None else check_eval_points(eval_points, fit.domain)
    stair = _Staircase(neuron_type, x, evaluate_target(fit.target, x),
                       _grid_weights(points, x), fit.encoders, fit.synapse, fit.max_rate)
    return PopulationFit.from_parameters(
        target=fit.target, domain=fit.domain, neuron_type=neuron_type, gain=fit.gain,
        bias=fit.bias, encoders=fit.encoders, decoders=stair.decoders(fit.gain, fit.bias),
        max_rate=fit.max_rate, synapse=fit.synapse, seed=fit.seed, success=fit.success,
        message=f"{fit.message}; decoders solved on the whole-step staircase",
        nfev=fit.nfev, fit_time=fit.fit_time)


def fit_whole_step(target, n_neurons, neuron_type, *, domain=None, max_rate=400.0,
                   synapse=0.005, eval_points=None, seed=None, search=None, start_time=None):
    """`popfit.fit_activation` for nengo-loihi's whole-step neuron types.

    Called by ``fit_activation(..., neuron_type=LoihiLIF())`` (or
    ``LoihiSpikingRectifiedLinear()``, or the names ``"LoihiLIF"``,
    ``"LoihiSpikingRectifiedLinear"``). The staircase rate curve
    ``1 / (ceil(period / dt) * dt)`` has zero derivative almost everywhere, so

    1. gains, biases and encoder signs are optimized by `fit_population` on
       the smooth `surrogate_neuron_type` (the staircase's mean: tau_ref
       + dt / 2), with the same noise model and ``eval_points``;
    2. the decoders are solved exactly (the same noise-aware ridge) against
       the true staircase rates on 2,001 points;
    3. gains and biases are polished on the staircase objective itself by
       Nelder-Mead (derivative-free; ``300 * n_neurons`` evaluations at most),
       the decoders solved exactly at each step.

    benchmarks/bench_loihi.py measures what each step gives on nengo-loihi's
    emulator, beside a plain LIF fit.

    ``max_rate`` bounds the staircase rate: the surrogate's is
    ``1 / (1 / max_rate + dt / 2)`` and the polish rejects any neuron above
    ``max_rate``. (A `LoihiLIF` with ``tau_ref = 2 ms`` cannot exceed 333 Hz.)
    The fit's metrics (``nrmse``, ``spiking_nrmse``...) and ``predict`` use
    the staircase at ``dt = 1 ms`` (nengo-loihi's default).

    Returns
    -------
    PopulationFit
        With ``neuron_type`` the nengo-loihi type, gains and biases in its
        current units.
    """
    start = time.perf_counter() if start_time is None else start_time
    neuron_type = check(neuron_type)
    tau_ref = discretized_taus(neuron_type)[1]
    limit = 1.0 / tau_ref if tau_ref > 0 else None
    max_rate = check_positive(
        max_rate, "max_rate", upper=limit,
        upper_why=f" Hz (1/tau_ref: {type(neuron_type).__name__} with tau_ref = "
        f"{tau_ref:g} s after Loihi's rounding to whole steps)")
    surrogate = surrogate_neuron_type(neuron_type)
    smooth = fit_population(target, n_neurons, surrogate, domain=domain,
                            max_rate=1.0 / whole_step_tau_ref(1.0 / max_rate, DT),
                            synapse=synapse, eval_points=eval_points, seed=seed, search=search)
    gain, bias = surrogate_to_currents(neuron_type, smooth.gain, smooth.bias)
    target, (lo, hi) = resolve_target(target, domain)
    x = np.linspace(lo, hi, _N_SOLVE_POINTS)
    points = None if eval_points is None else np.asarray(eval_points, dtype=float).ravel()
    stair = _Staircase(neuron_type, x, evaluate_target(target, x),
                       _grid_weights(points, x), smooth.encoders, smooth.synapse, max_rate)
    n = n_neurons
    # polish in (log gain, bias / gain): scale-free steps for every neuron
    theta0 = np.concatenate([np.log(gain), bias / gain])

    def cost(theta):
        g = np.exp(theta[:n])
        return stair.cost(g, theta[n:] * g)

    cost0 = cost(theta0)
    res = scipy.optimize.minimize(
        cost, theta0, method="Nelder-Mead",
        options={"maxfev": 300 * n, "xatol": 1e-6, "fatol": 1e-12 * max(cost0, 1e-300),
                 "adaptive": True})
    if np.isfinite(res.fun) and res.fun < cost0:
        gain = np.exp(res.x[:n])
        bias = res.x[n:] * gain
    j0 = 1.0 if kind(neuron_type) == "lif" else 0.0  # + neurons first, by intercept
    order = np.lexsort(((j0 - bias) / gain * smooth.encoders, -smooth.encoders))
    return PopulationFit.from_parameters(
        target=target, domain=(lo, hi), neuron_type=neuron_type, gain=gain[order],
        bias=bias[order], encoders=smooth.encoders[order],
        decoders=stair.decoders(gain, bias)[order], max_rate=max_rate,
        synapse=smooth.synapse, seed=seed, success=smooth.success,
        message=(f"gains and biases fitted on the surrogate {surrogate!r} ({smooth.message}), "
                 f"polished on the whole-step staircase ({res.nfev} evaluations, squared "
                 f"error {cost0:.3g} -> {min(res.fun, cost0):.3g}); decoders solved on the "
                 "staircase"),
        nfev=smooth.nfev + int(res.nfev), fit_time=time.perf_counter() - start)


