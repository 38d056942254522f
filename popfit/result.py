"""`PopulationFit`: the immutable result of `popfit.fit_activation`."""

import html
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np

from ._validation import check_real_array, public
from .exceptions import PopfitTypeError
from .metrics import population_metrics
from .neurons import RateModel
from .targets import Target


def _frozen(a):
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class PopulationFit:
    """A fitted population of positive-only neurons approximating a signed curve.

    The population computes, exactly as nengo does::

        rates = neuron_type.rates(x[:, None] * encoders, gain, bias)   # Hz
        y = rates @ decoders

    Attributes
    ----------
    target : Target
        The curve approximated.
    domain : (float, float)
        Input interval of the fit.
    neuron_type : nengo.neurons.NeuronType
        Neuron type whose ``rates`` define the population.
    gain, bias : ndarray, shape (n_neurons,)
        Gain and bias current of each neuron, in nengo's convention.
    encoders : ndarray, shape (n_neurons,)
        +1 or -1: the side of zero each neuron responds to.
    decoders : ndarray, shape (n_neurons,)
        Output weight of each neuron's firing rate (units of the target per Hz).
    max_rates : ndarray, shape (n_neurons,)
        Firing rate (Hz) at the domain edge each neuron faces (its highest rate).
    intercepts : ndarray, shape (n_neurons,)
        Value of ``encoder * x`` at which each neuron starts to fire.
    max_rate : float
        Bound (Hz) on every neuron's rate over the domain, used by the fit.
    synapse : float or None
        Synapse time constant (s) the fit was optimized for (None: rates only).
    nrmse : float
        Rate-level RMSE over 1001 points of the domain, divided by the target's
        range there (floored at 1% of the target's largest magnitude, so a
        near-constant target is not judged against its tiny variation; see
        `popfit.metrics`).
    max_error : float
        Largest rate-level error over 20001 points, on the same scale.
    spiking_nrmse : float or None
        Expected NRMSE of the spiking population, filtered by ``synapse``:
        rate error plus the spike noise the decoders pass on (None if
        ``synapse`` is None).
    success, message, nfev, fit_time, seed
        Optimizer status, its message, residual evaluations of the final
        refinement, wall time (s) and the seed used.
    diagnostics : popfit.SearchDiagnostics or None
        How the search found the fit (None for a fit built from parameters
        or loaded from a file).
    """

    target: Target
    domain: Tuple[float, float]
    neuron_type: object
    gain: np.ndarray
    bias: np.ndarray
    encoders: np.ndarray
    decoders: np.ndarray
    max_rates: np.ndarray
    intercepts: np.ndarray
    max_rate: float
    synapse: Optional[float]
    nrmse: float
    max_error: float
    spiking_nrmse: Optional[float]
    success: bool = True
    message: str = ""
    nfev: int = 0
    fit_time: float = field(default=0.0)
    seed: Optional[int] = None
    diagnostics: Optional[object] = field(default=None, repr=False)

    @classmethod
    def from_parameters(cls, *, target, domain, neuron_type, gain, bias, encoders,
                        decoders, max_rate, synapse, seed=None, success=True,
                        message="", nfev=0, fit_time=0.0, diagnostics=None):
        """Build a fit from its parameters, computing the derived quantities."""
        lo, hi = float(domain[0]), float(domain[1])
        gain, bias, encoders, decoders = (
            np.array(v, dtype=float) for v in (gain, bias, encoders, decoders))
        edge = np.where(encoders > 0, hi, -lo)
        max_rates = neuron_type.rates(edge[None, :], gain, bias)[0]
        intercepts = (RateModel(neuron_type).j0 - bias) / gain

        metrics = population_metrics(target, (lo, hi), neuron_type, gain, bias, encoders,
                                     decoders, synapse)
        return cls(
            target=target, domain=(lo, hi), neuron_type=neuron_type,
            gain=_frozen(gain), bias=_frozen(bias), encoders=_frozen(encoders),
            decoders=_frozen(decoders), max_rates=_frozen(max_rates),
            intercepts=_frozen(intercepts), max_rate=float(max_rate),
            synapse=None if synapse is None else float(synapse), nrmse=metrics.nrmse,
            max_error=metrics.max_error, spiking_nrmse=metrics.spiking_nrmse,
            success=bool(success),
            message=str(message), nfev=int(nfev), fit_time=float(fit_time),
            seed=None if seed is None else int(seed), diagnostics=diagnostics,
        )

    @property
    def n_neurons(self):
        """Number of neurons in the population."""
        return len(self.gain)

    @public("PopulationFit.rates")
    def rates(self, x):
        """Firing rates (Hz), shape ``(x.size, n_neurons)``, at inputs ``x`` (flattened).

        NaN inputs give NaN rates (nengo's own ``rates`` would give 0).
        """
        x = check_real_array(x, "x").reshape(-1)
        a = self.neuron_type.rates(x[:, None] * self.encoders, self.gain, self.bias)
        a[np.isnan(x)] = np.nan
        return a

    @public("PopulationFit.predict")
    def predict(self, x):
        """Rate-level approximation of the target at ``x`` (same shape as ``x``).

        NaN inputs give NaN outputs.
        """
        x = check_real_array(x, "x")
        return (self.rates(x) @ self.decoders).reshape(x.shape)

    __call__ = predict

    def report(self):
        """A plain-text fit report (returned, not printed)."""
        nt = self.neuron_type
        lines = [
            f"[[popfit fit]] {self.target.name} with {self.n_neurons} {type(nt).__name__} "
            f"neurons on [{self.domain[0]:g}, {self.domain[1]:g}]",
            f"    neuron type   : {nt!r}",
            f"    max_rate      : {self.max_rate:g} Hz",
            "    synapse       : "
            + ("None (rates only)" if self.synapse is None else f"{self.synapse:g} s"),
            f"    success       : {self.success} ({self.message})",
            f"    evaluations   : {self.nfev}    fit time: {self.fit_time:.3f} s",
            "[[accuracy]] (normalised by the target's range on the domain)",
            f"    rate NRMSE    : {self.nrmse:.5f}",
            f"    rate max error: {self.max_error:.5f}",
        ]
        if self.spiking_nrmse is not None:
            lines.append(f"    spiking NRMSE : {self.spiking_nrmse:.5f} (expected, at "
                         f"synapse {self.synapse:g} s)")
        lines.append("[[neurons]]")
        lines.append("    #  encoder     gain        bias   intercept  max_rate(Hz)   decoder")
        for i in range(self.n_neurons):
            lines.append(
                f"   {i:2d}  {self.encoders[i]:+5.0f}  {self.gain[i]:10.4g}  {self.bias[i]:10.4g}"
                f"  {self.intercepts[i]:10.4g}  {self.max_rates[i]:12.1f}  {self.decoders[i]:+.4e}"
            )
        return "\n".join(lines)

    def _repr_html_(self):
        rows = "".join(
            f"<tr><td>{i}</td><td>{self.encoders[i]:+.0f}</td><td>{self.gain[i]:.4g}</td>"
            f"<td>{self.bias[i]:.4g}</td><td>{self.intercepts[i]:.4g}</td>"
            f"<td>{self.max_rates[i]:.1f}</td><td>{self.decoders[i]:+.4e}</td></tr>"
            for i in range(self.n_neurons)
        )
        spiking = ("" if self.spiking_nrmse is None else
                   f"<tr><th>spiking NRMSE (expected)</th><td>{self.spiking_nrmse:.5f}</td></tr>")
        return (
            f"<h4>popfit: {html.escape(self.target.name)} with {self.n_neurons} "
            f"{type(self.neuron_type).__name__} neurons on [{self.domain[0]:g}, "
            f"{self.domain[1]:g}]</h4><table>"
            f"<tr><th>rate NRMSE</th><td>{self.nrmse:.5f}</td></tr>"
            f"<tr><th>rate max error</th><td>{self.max_error:.5f}</td></tr>{spiking}"
            f"<tr><th>max_rate</th><td>{self.max_rate:g} Hz</td></tr>"
            f"<tr><th>synapse</th><td>{self.synapse}</td></tr>"
            f"<tr><th>success</th><td>{self.success} ({html.escape(self.message)})</td></tr>"
            "</table><table><tr><th>#</th><th>encoder</th><th>gain</th><th>bias</th>"
            "<th>intercept</th><th>max rate (Hz)</th><th>decoder</th></tr>"
            f"{rows}</table>"
        )

    def __repr__(self):
        return (f"PopulationFit(target={self.target.name!r}, n_neurons={self.n_neurons}, "
                f"neuron_type={self.neuron_type!r}, domain={self.domain}, "
                f"nrmse={self.nrmse:.3g})")

    # The file format lives in popfit/io.py; these convenience methods import it
    # on use (the one documented exception to "io imports result, never back").
    def to_dict(self):
        """JSON-safe dictionary of the fit's parameters: the content of its file.

        See `popfit.io` for the format; `from_dict` and `popfit.load_fit` invert it.
        """
        from .io import fit_to_dict

        return fit_to_dict(self)

    @classmethod
    @public("PopulationFit.from_dict")
    def from_dict(cls, d):
        """Rebuild a fit from `to_dict` output, validating every field.

        Raises
        ------
        popfit.FitFileError
            Naming the field that is missing, mistyped or out of bounds.
        """
        from .io import fit_from_dict

        return fit_from_dict(d)

    @public("PopulationFit.save")
    def save(self, path):
        """Write the fit to ``path`` as JSON, atomically; see `popfit.io.atomic_write_text`.

        An existing file keeps its permissions and a symbolic link is written
        through to its target. Raises `popfit.PopfitValueError` (before
        writing) if `popfit.load_fit` would refuse the file, and ``OSError``
        naming ``path`` if it cannot be written.
        """
        from .io import save_fit

        save_fit(self, path)

    def plot(self, ax=None, **kwargs):
        """Target vs. approximation, tuning curves and error; see `popfit.plot_fit`."""
        from .plotting import plot_fit

        return plot_fit(self, ax=ax, **kwargs)

    def network(self, label=None, spiking=True, **kwargs):
        """A `popfit.PopulationNeuron` (nengo.Network) that computes this fit."""
        from .network import PopulationNeuron

        return PopulationNeuron(self, label=label, spiking=spiking, **kwargs)


def check_fit(fit, name="fit"):
    """Return ``fit``, checking that it is a `PopulationFit`."""
    if not isinstance(fit, PopulationFit):
        raise PopfitTypeError(
            f"{name} must be a popfit.PopulationFit (got {type(fit).__name__}); "
            "make one with popfit.fit_activation or popfit.load_fit"
        )
    return fit
