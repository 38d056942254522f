"""Spiking evaluation: run a fitted population in `nengo.Simulator`, beside a signed baseline.

`evaluate_spiking` sweeps the input slowly and linearly from the low to the
high end of the fit's domain, runs the exported spiking `PopulationNeuron`
and compares its synapse-filtered output with the ideal target, filtered by
the same synapse in the same simulation (so both carry the same lag). In the
same run, where one exists, a signed baseline is simulated: a single
`nengo.RegularSpiking` neuron of the equivalent rate type (`nengo.Tanh`,
`nengo.Sigmoid`, or a linear rate neuron) at the same maximum rate, whose
spikes are negative where the target is.
"""

from dataclasses import dataclass
from typing import Optional

import nengo
import numpy as np

from ._validation import check_positive, check_seed, check_synapse, public
from .baseline import SignedBaselineLayer, signed_baseline
from .exceptions import PopfitValueError
from .metrics import error_scale, grid
from .network import PopulationNeuron
from .neurons import ignore_max_rates_warnings
from .result import check_fit
from .targets import evaluate_target
from .wholestep import DT

__all__ = ["evaluate_spiking", "SpikingReport", "signed_baseline", "MAX_STEPS"]

# The longest run evaluate_spiking accepts (duration / dt). Every step's spikes
# and traces are kept (8 bytes x (n_neurons + 6) per step: 110 MB at N = 8) and
# nengo's reference simulator takes about 0.1-0.2 ms per step for this network
# (measured: 60,000 steps in 11 s on a shared 2-core machine), so 10**6 steps
# is a few minutes of simulation.
MAX_STEPS = 1_000_000


def _scalar(v):
    return None if v is None else float(v)


@dataclass(frozen=True, eq=False)
class SpikingReport:
    """Result of `evaluate_spiking`: a spiking population beside its signed baseline.

    Errors are normalised by the target's range on the domain (like the fit's
    NRMSE); both signals are filtered by ``synapse``.

    Attributes
    ----------
    fit : PopulationFit
    synapse : float
        Lowpass time constant (s) applied to the output, the ideal and the baseline.
    duration, dt : float
        Simulated time and time step (s).
    t : ndarray, shape (n_steps,)
        Simulation times (s).
    x : ndarray, shape (n_steps,)
        Input sweep, linear from the domain's low to its high end.
    ideal : ndarray, shape (n_steps,)
        ``target(x(t))`` filtered by ``synapse``.
    output : ndarray, shape (n_steps,)
        The population's decoded spikes filtered by ``synapse``.
    spikes : ndarray, shape (n_steps, n_neurons)
        Spike output as nengo probes it (1/dt per spike, never negative).
    nrmse, max_error : float
        RMS and largest ``|output - ideal|``, over the target's range.
    mean_rate : float
        Spikes per neuron per second (Hz), averaged over the population.
    spike_count : int
        Total spikes of the population.
    internal_synapse : float or None
        Synapse (s) the exported network adds internally (None: it adds none,
        so the ideal and the baseline need no extra filtering to match).
    baseline_name : str or None
        Description of the signed baseline neuron, or None when there is none
        (targets other than tanh, sigmoid and linear).
    baseline_output : ndarray, shape (n_steps,) or None
    baseline_spikes : ndarray, shape (n_steps, 1) or None
        Signed spikes (+-1/dt) of the baseline neuron.
    baseline_nrmse, baseline_max_error, baseline_mean_rate : float or None
        As above, for the baseline (its rate counts negative spikes too).
    baseline_spike_count : int or None
        Spikes of either sign of the baseline neuron.
    """

    fit: object
    synapse: float
    duration: float
    dt: float
    t: np.ndarray
    x: np.ndarray
    ideal: np.ndarray
    output: np.ndarray
    spikes: np.ndarray
    nrmse: float
    max_error: float
    mean_rate: float
    spike_count: int
    internal_synapse: Optional[float] = None
    baseline_name: Optional[str] = None
    baseline_output: Optional[np.ndarray] = None
    baseline_spikes: Optional[np.ndarray] = None
    baseline_nrmse: Optional[float] = None
    baseline_max_error: Optional[float] = None
    baseline_mean_rate: Optional[float] = None
    baseline_spike_count: Optional[int] = None

    @property
    def ratio(self):
        """``nrmse / baseline_nrmse``, or None without a baseline."""
        if self.baseline_nrmse is None or self.baseline_nrmse == 0:
            return None
        return self.nrmse / self.baseline_nrmse

    def report(self):
        """A plain-text comparison (returned, not printed)."""
        fit = self.fit
        lines = [
            f"[[popfit spiking]] {fit.target.name} with {fit.n_neurons} "
            f"{type(fit.neuron_type).__name__} neurons on [{fit.domain[0]:g}, "
            f"{fit.domain[1]:g}], max_rate {fit.max_rate:g} Hz",
            f"    sweep        : linear, {self.duration:g} s, dt {self.dt:g} s",
            f"    synapse      : Lowpass({self.synapse:g} s) on output, ideal and baseline",
            "    internal syn.: "
            + ("none" if self.internal_synapse is None else f"{self.internal_synapse:g} s"),
            "                      NRMSE   max error  mean rate (Hz)  spikes",
            f"    popfit       : {self.nrmse:9.5f}  {self.max_error:9.5f}  "
            f"{self.mean_rate:14.1f}  {self.spike_count:6d}",
        ]
        if self.baseline_name is None:
            lines.append("    baseline     : none for this target")
        else:
            lines.append(
                f"    baseline     : {self.baseline_nrmse:9.5f}  {self.baseline_max_error:9.5f}  "
                f"{self.baseline_mean_rate:14.1f}  {self.baseline_spike_count:6d}"
                f"   ({self.baseline_name})")
            lines.append(f"    ratio        : {self.ratio:.3f} x the signed baseline's NRMSE")
        return "\n".join(lines)

    def to_dict(self):
        """JSON-safe summary (scalars only; the traces are left out)."""
        return {
            "target": self.fit.target.name,
            "n_neurons": int(self.fit.n_neurons),
            "neuron_type": type(self.fit.neuron_type).__name__,
            "max_rate": float(self.fit.max_rate),
            "synapse": float(self.synapse),
            "internal_synapse": _scalar(self.internal_synapse),
            "duration": float(self.duration),
            "dt": float(self.dt),
            "nrmse": float(self.nrmse),
            "max_error": float(self.max_error),
            "mean_rate": float(self.mean_rate),
            "spike_count": int(self.spike_count),
            "baseline_name": self.baseline_name,
            "baseline_nrmse": _scalar(self.baseline_nrmse),
            "baseline_max_error": _scalar(self.baseline_max_error),
            "baseline_mean_rate": _scalar(self.baseline_mean_rate),
            "baseline_spike_count": (None if self.baseline_spike_count is None
                                     else int(self.baseline_spike_count)),
            "ratio": _scalar(self.ratio),
        }


@public
def evaluate_spiking(fit, synapse=0.01, duration=6.0, dt=DT, seed=0):
    """Simulate the fit as spiking neurons in `nengo.Simulator`, beside a signed baseline.

    The input sweeps linearly from the low to the high end of ``fit.domain``
    over ``duration``. The population's decoded spikes, the ideal
    ``target(x(t))`` and the baseline's decoded spikes are all probed through
    the same ``nengo.Lowpass(synapse)``, and compared over the whole run.

    Parameters
    ----------
    fit : PopulationFit
        A fit of a neuron type with a positive-only spiking twin.
    synapse : float
        Lowpass time constant (s), >= 2 * dt.
    duration : float
        Simulated time (s), > 0, at most ``MAX_STEPS`` (10**6) time steps.
    dt : float
        Simulator time step (s), > 0, < duration, and small enough for the
        comparison to mean something: ``dt <= synapse / 2``,
        ``dt <= 1 / (2 * max_rate)`` and, for LIF fits, ``dt <= tau_ref``
        (see Notes).
    seed : int
        Seed of the simulated network (initial neuron states), in [0, 2**32 - 1].

    Returns
    -------
    SpikingReport

    Notes
    -----
    The bounds on ``dt`` come from runs of the 4-LIF tanh fit (400 Hz,
    synapse 0.01 s) and ReLU fits (400 and 1000 Hz), compared with dt 0.1 ms:
    at ``dt = 1 / (2 * max_rate)`` the NRMSE and the ratio stay within 2%; at
    ``dt = 1 / max_rate`` spike times quantize to the step and the ratio is
    7-15% off; with ``dt > tau_ref`` nengo's spiking LIF fires too slowly
    (dt 2.5 ms, tau_ref 2 ms: NRMSE 0.18 instead of 0.029). At
    ``synapse = 2 * dt`` the NRMSE is within 3% of the fine-step value, at
    ``synapse = dt`` 8% off, and below ``1e-4 * dt`` nengo's discretized
    lowpass returns NaN.
    """
    fit = check_fit(fit)
    synapse = check_synapse(synapse, "synapse", allow_none=False)
    duration = check_positive(duration, "duration")
    dt = check_positive(dt, "dt", upper=duration, upper_why=" s (the duration)")
    _check_resolution(fit, synapse, duration, dt)
    seed = check_seed(seed)
    lo, hi = fit.domain
    target = fit.target

    def sweep(t):
        return lo + (hi - lo) * min(t / duration, 1.0)

    def ideal(t):
        return evaluate_target(target, np.array([sweep(t)]))

    has_baseline = signed_baseline(fit) is not None
    with nengo.Network(label="evaluate_spiking", seed=seed) as model:
        stim = nengo.Node(sweep, label="sweep")
        ideal_node = nengo.Node(ideal, label="ideal")
        pop = PopulationNeuron(fit, spiking=True)
        nengo.Connection(stim, pop.input, synapse=None)
        p_x = nengo.Probe(stim, synapse=None)
        p_ideal = nengo.Probe(ideal_node, synapse=nengo.Lowpass(synapse))
        p_out = nengo.Probe(pop.output, synapse=nengo.Lowpass(synapse))
        p_spikes = nengo.Probe(pop.ensemble.neurons, synapse=None)
        if has_baseline:
            base = SignedBaselineLayer(fit.target, 1, max_rate=fit.max_rate, domain=fit.domain)
            nengo.Connection(stim, base.input, synapse=None)
            p_base = nengo.Probe(base.output, synapse=nengo.Lowpass(synapse))
            p_base_spikes = nengo.Probe(base.ensemble.neurons, synapse=None)
    # only the build, and only nengo's spurious `max_rates` warnings (see
    # popfit.network.ignore_max_rates_warnings)
    with ignore_max_rates_warnings():
        sim = nengo.Simulator(model, dt=dt, progress_bar=False, seed=seed)
    with sim:
        sim.run(duration)

    scale = error_scale(evaluate_target(target, grid(fit.domain)))
    t = sim.trange()
    ideal_trace = sim.data[p_ideal][:, 0]

    def errors(out):
        err = out - ideal_trace
        return float(np.sqrt(np.mean(err**2)) / scale), float(np.max(np.abs(err)) / scale)

    def counts(spikes):
        n = int(np.rint(np.sum(np.abs(spikes)) * dt))
        return n, n / (duration * spikes.shape[1])

    output = sim.data[p_out][:, 0]
    spikes = sim.data[p_spikes]
    nrmse, max_error = errors(output)
    spike_count, mean_rate = counts(spikes)
    fields = {}
    if has_baseline:
        b_out = sim.data[p_base][:, 0]
        b_spikes = sim.data[p_base_spikes]
        b_nrmse, b_max = errors(b_out)
        b_count, b_rate = counts(b_spikes)
        fields = dict(baseline_name=base.baseline.name, baseline_output=b_out, baseline_spikes=b_spikes,
                      baseline_nrmse=b_nrmse, baseline_max_error=b_max,
                      baseline_mean_rate=b_rate, baseline_spike_count=b_count)
    return SpikingReport(
        fit=fit, synapse=synapse, duration=duration, dt=dt, t=t, x=sim.data[p_x][:, 0],
        ideal=ideal_trace, output=output, spikes=spikes, nrmse=nrmse, max_error=max_error,
        mean_rate=mean_rate, spike_count=spike_count, internal_synapse=None, **fields,
    )


def _check_resolution(fit, synapse, duration, dt):
    """Refuse a time step too coarse for the comparison, or a run too long (see
    `evaluate_spiking`'s Notes for the measurements behind each bound)."""
    limit = 0.5 / fit.max_rate
    if dt > limit:
        raise PopfitValueError(
            f"dt must be <= 1 / (2 * max_rate) = {limit:g} s for the fit's max_rate "
            f"{fit.max_rate:g} Hz (got {dt:g} s): with fewer than two steps between "
            "spikes at max_rate, spike times quantize to the step and the NRMSE and "
            f"ratio are off by 10% or more; pass dt <= {limit:g}"
        )
    tau_ref = getattr(fit.neuron_type, "tau_ref", None)
    if isinstance(fit.neuron_type, nengo.LIFRate) and dt > tau_ref:
        raise PopfitValueError(
            f"dt must be <= tau_ref = {tau_ref:g} s of the fit's LIF neurons (got {dt:g} s): "
            "nengo's spiking LIF fires too slowly when tau_ref < dt; pass "
            f"dt <= {tau_ref:g}"
        )
    if synapse < 2.0 * dt:
        raise PopfitValueError(
            f"synapse must be >= 2 * dt = {2.0 * dt:g} s (got {synapse:g} s): a lowpass "
            "shorter than two time steps hardly filters the spikes (and nengo's "
            "discretized lowpass gives NaN below 1e-4 * dt); raise synapse or lower dt"
        )
    n_steps = duration / dt
    if n_steps > MAX_STEPS:
        raise PopfitValueError(
            f"duration / dt must be at most {MAX_STEPS:,} time steps (got {n_steps:,.0f}: "
            f"duration {duration:g} s at dt {dt:g} s); every step is simulated and kept "
            "in memory (minutes and hundreds of MB at the bound): shorten the duration"
        )
