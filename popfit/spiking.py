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

import numpy as np
import nengo

from ._validation import check_int, check_positive, check_synapse, public
from .network import PopulationNeuron, _check_fit, ignore_max_rates_warnings
from .neurons import LinearRate
from .targets import evaluate_target


def signed_baseline(fit):
    """The signed one-neuron baseline for ``fit``, or None if none exists.

    Returns
    -------
    (name, neuron_type, gain, decoder) or None
        The baseline neuron is ``RegularSpiking(neuron_type)`` with input
        current ``J = gain * x`` (bias 0); its decoded output is
        ``decoder * spikes``. Its rate is ``max_rate * tanh(x)``,
        ``max_rate * sigmoid(x)`` or ``max_rate * x / max|x|`` over the domain.
    """
    if not fit.target.named:
        return None
    name = fit.target.name
    rate = fit.max_rate
    if name == "tanh":
        base = nengo.Tanh(tau_ref=1.0 / rate)
        return f"RegularSpiking(Tanh(tau_ref={1.0 / rate:g}))", base, 1.0, 1.0 / rate
    if name == "sigmoid":
        base = nengo.Sigmoid(tau_ref=1.0 / rate)
        return f"RegularSpiking(Sigmoid(tau_ref={1.0 / rate:g}))", base, 1.0, 1.0 / rate
    if name == "linear":
        peak = max(abs(fit.domain[0]), abs(fit.domain[1]))
        gain = rate / peak
        return "RegularSpiking(LinearRate())", LinearRate(), gain, 1.0 / gain
    return None


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


@public("evaluate_spiking")
def evaluate_spiking(fit, synapse=0.01, duration=6.0, dt=0.001, seed=0):
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
        Lowpass time constant (s), > 0.
    duration : float
        Simulated time (s), > 0.
    dt : float
        Simulator time step (s), > 0 and < duration.
    seed : int
        Seed of the simulated network (initial neuron states).

    Returns
    -------
    SpikingReport
    """
    fit = _check_fit(fit)
    synapse = check_synapse(synapse, "synapse", allow_none=False)
    duration = check_positive(duration, "duration")
    dt = check_positive(dt, "dt", upper=duration, upper_why=" s (the duration)")
    seed = check_int(seed, "seed", low=0)
    lo, hi = fit.domain
    target = fit.target

    def sweep(t):
        return lo + (hi - lo) * min(t / duration, 1.0)

    def ideal(t):
        return evaluate_target(target, np.array([sweep(t)]))

    baseline = signed_baseline(fit)
    with nengo.Network(label="evaluate_spiking", seed=seed) as model:
        stim = nengo.Node(sweep, label="sweep")
        ideal_node = nengo.Node(ideal, label="ideal")
        pop = PopulationNeuron(fit, spiking=True)
        nengo.Connection(stim, pop.input, synapse=None)
        p_x = nengo.Probe(stim, synapse=None)
        p_ideal = nengo.Probe(ideal_node, synapse=nengo.Lowpass(synapse))
        p_out = nengo.Probe(pop.output, synapse=nengo.Lowpass(synapse))
        p_spikes = nengo.Probe(pop.ensemble.neurons, synapse=None)
        if baseline is not None:
            name, base_type, base_gain, base_decoder = baseline
            base = nengo.Ensemble(1, 1, neuron_type=nengo.RegularSpiking(base_type),
                                  gain=[1.0], bias=[0.0], encoders=[[1.0]],
                                  label="signed baseline")
            base_out = nengo.Node(size_in=1, label="baseline output")
            nengo.Connection(stim, base.neurons, transform=[[base_gain]], synapse=None)
            nengo.Connection(base.neurons, base_out, transform=[[base_decoder]],
                             synapse=None)
            p_base = nengo.Probe(base_out, synapse=nengo.Lowpass(synapse))
            p_base_spikes = nengo.Probe(base.neurons, synapse=None)
    # only the build, and only nengo's spurious `max_rates` warnings (see
    # popfit.network.ignore_max_rates_warnings)
    with ignore_max_rates_warnings():
        sim = nengo.Simulator(model, dt=dt, progress_bar=False, seed=seed)
    with sim:
        sim.run(duration)

    grid = np.linspace(lo, hi, 1001)
    scale = float(np.ptp(evaluate_target(target, grid))) or 1.0
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
    if baseline is not None:
        b_out = sim.data[p_base][:, 0]
        b_spikes = sim.data[p_base_spikes]
        b_nrmse, b_max = errors(b_out)
        b_count, b_rate = counts(b_spikes)
        fields = dict(baseline_name=name, baseline_output=b_out, baseline_spikes=b_spikes,
                      baseline_nrmse=b_nrmse, baseline_max_error=b_max,
                      baseline_mean_rate=b_rate, baseline_spike_count=b_count)
    return SpikingReport(
        fit=fit, synapse=synapse, duration=duration, dt=dt, t=t, x=sim.data[p_x][:, 0],
        ideal=ideal_trace, output=output, spikes=spikes, nrmse=nrmse, max_error=max_error,
        mean_rate=mean_rate, spike_count=spike_count, internal_synapse=None, **fields,
    )
