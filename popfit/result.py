"""`PopulationFit`: the immutable result of `popfit.fit_activation`."""

import html
import numbers
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np

from . import wholestep
from ._validation import (
    check_bool,
    check_finite_array,
    check_int,
    check_positive,
    check_real_array,
    check_seed,
    check_synapse,
    public,
)
from .exceptions import PopfitTypeError, PopfitValueError
from .metrics import population_metrics
from .neurons import RateModel, check_max_rate, resolve_neuron_type
from .options import SearchDiagnostics
from .targets import Target, resolve_target


def _check_max_rate(max_rate, neuron_type):
    """``max_rate`` (Hz) within the bounds the fitting functions enforce for ``neuron_type``."""
    if not wholestep.is_whole_step(neuron_type):
        return check_max_rate(max_rate, neuron_type)
    tau_ref = wholestep.discretized_taus(neuron_type)[1]  # as popfit.fit.whole_step
    return check_positive(
        max_rate, "max_rate", upper=1.0 / tau_ref if tau_ref > 0 else None,
        upper_why=f" Hz (1/tau_ref: {type(neuron_type).__name__} with tau_ref = "
        f"{tau_ref:g} s after Loihi's rounding to whole steps)")


def _frozen(a):
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


#: Most neurons a fit may have (`PopulationFit.from_parameters`, fit files).
MAX_FILE_NEURONS = 256
"""Most neurons a fit file may declare. Loading evaluates every neuron on the
20,001-point grid of ``max_error`` (measured at 1024 neurons: 4.4 s and 0.9 GB
before the metrics were chunked), so the bound keeps a hostile or corrupted file
from taking minutes and gigabytes; 200,000 neurons would need ~30 GiB.
`popfit.fit_activation` fits far fewer."""
MAX_RATE_RTOL = 1e-9
"""Relative excess over ``max_rate`` tolerated in a loaded neuron's highest rate,
for the rounding of the rate formula; the rounding of nengo's current ``J`` is
allowed for separately (a few ulps of ``|gain * x| + |bias|``)."""
_J_ULPS = 8  # rounding of J = gain * x + bias tolerated when checking rates against max_rate


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
    @public
    def from_parameters(cls, *, target, domain, neuron_type, gain, bias, encoders,
                        decoders, max_rate, synapse, seed=None, success=True,
                        message="", nfev=0, fit_time=0.0, diagnostics=None):
        """Build a fit from its parameters, computing the derived quantities.

        Every argument is checked with the bounds `popfit.fit_activation`
        enforces (and `popfit.load_fit` for the number of neurons), so the fit
        describes neurons that nengo runs as the fit says.

        Parameters
        ----------
        target : str, Target or callable
            As in `popfit.fit_activation`.
        domain : (float, float)
            Input interval, as in `popfit.fit_activation`.
        neuron_type : str or nengo.neurons.NeuronType
            A type `popfit.fit_activation` fits (LIF, LIFRate, RectifiedLinear,
            SpikingRectifiedLinear, or nengo-loihi's with ``popfit[loihi]``).
        gain : array_like, shape (n_neurons,)
            Finite and > 0; ``1 <= n_neurons <= popfit.result.MAX_FILE_NEURONS``.
        bias : array_like, shape (n_neurons,)
            Finite.
        encoders : array_like, shape (n_neurons,)
            Exactly +1 or -1.
        decoders : array_like, shape (n_neurons,)
            Finite.
        max_rate : float
            In `popfit.neurons.max_rate_bounds` of ``neuron_type`` (Hz), and
            no neuron may fire above it anywhere in the domain: its rate at
            the edge it faces, by ``neuron_type.rates``, at most
            ``max_rate * (1 + popfit.io.MAX_RATE_RTOL)`` once the current is
            lowered by its float64 rounding (the rule `popfit.load_fit`
            applies to files).
        synapse : float or None
            Time constant (s), > 0, or None (rates only).
        seed : int or None
            In [0, 2**32 - 1].
        success : bool
        message : str
        nfev : int
            >= 0.
        fit_time : float
            Finite, >= 0 (s).
        diagnostics : SearchDiagnostics or None

        Returns
        -------
        PopulationFit

        Raises
        ------
        popfit.PopfitValueError, popfit.PopfitTypeError
            Naming the argument, its bound and the value received.
        """
        target, (lo, hi) = resolve_target(target, domain)
        neuron_type = resolve_neuron_type(neuron_type)
        gain = check_real_array(gain, "gain")
        n = gain.shape[0] if gain.ndim == 1 else 0
        if not 1 <= n <= MAX_FILE_NEURONS:
            raise PopfitValueError(
                f"gain must be a 1-d array of 1 to {MAX_FILE_NEURONS} values, one per neuron "
                f"(got shape {gain.shape})")
        shape, words = (n,), "(len(gain),)"
        gain = check_finite_array(gain, "gain")
        bias = check_finite_array(bias, "bias", shape, words)
        encoders = check_finite_array(encoders, "encoders", shape, words)
        decoders = check_finite_array(decoders, "decoders", shape, words)
        if not np.all(gain > 0):
            i = int(np.argmin(gain))
            raise PopfitValueError(
                f"gain must be > 0 for every neuron (got gain[{i}] = {float(gain[i])!r}); the "
                "encoders carry the sign")
        bad = np.abs(encoders) != 1
        if bad.any():
            i = int(np.argmax(bad))
            raise PopfitValueError(
                f"encoders must be exactly +1 or -1 (got encoders[{i}] = {float(encoders[i])!r}); "
                "scale the gain instead")
        max_rate = _check_max_rate(max_rate, neuron_type)
        synapse = check_synapse(synapse, "synapse")
        seed = check_seed(seed, allow_none=True)
        success = check_bool(success, "success")
        if not isinstance(message, str):
            raise PopfitTypeError(
                f"message must be a string (got {message!r} of type {type(message).__name__})")
        nfev = check_int(nfev, "nfev", low=0)
        if isinstance(fit_time, bool) or not isinstance(fit_time, numbers.Real):
            raise PopfitTypeError(f"fit_time must be a finite number >= 0 (s) (got "
                                  f"{fit_time!r} of type {type(fit_time).__name__})")
        if not (np.isfinite(fit_time) and fit_time >= 0):
            raise PopfitValueError(f"fit_time must be a finite number >= 0 (s) (got {fit_time!r})")
        if diagnostics is not None and not isinstance(diagnostics, SearchDiagnostics):
            raise PopfitTypeError(
                f"diagnostics must be a popfit.SearchDiagnostics or None (got "
                f"{type(diagnostics).__name__})")

        edge = np.where(encoders > 0, hi, -lo)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            max_rates = neuron_type.rates(edge[None, :], gain, bias)[0]
            intercepts = (RateModel(neuron_type).j0 - bias) / gain
            # rates rise with encoder * x (gain > 0), so the faced edge has the highest;
            # the current J there may be off by its float64 rounding (a few ulps of
            # |gain * x| + |bias|, large where they cancel), so it is lowered by that
            slack = _J_ULPS * np.finfo(float).eps * (np.abs(gain * edge) + np.abs(bias))
            lowest = neuron_type.rates(edge[None, :], gain, bias - slack)[0]
        over = ~(lowest <= max_rate * (1.0 + MAX_RATE_RTOL))  # NaN counts as over
        if over.any():
            i = int(np.argmax(np.where(np.isnan(max_rates), np.inf, max_rates)))
            raise PopfitValueError(
                f"no neuron may fire above max_rate = {max_rate:g} Hz on the domain "
                f"[{lo!r}, {hi!r}] (got {int(over.sum())} of {n}: neuron {i} fires "
                f"{max_rates[i]:.6g} Hz at x = {edge[i] * encoders[i]:g}, by "
                f"{type(neuron_type).__name__}.rates of its gain {gain[i]:g} and bias "
                f"{bias[i]:g}); lower the gains or biases, or raise max_rate")
        metrics = population_metrics(target, (lo, hi), neuron_type, gain, bias, encoders,
                                     decoders, synapse)
        return cls(
            target=target, domain=(lo, hi), neuron_type=neuron_type,
            gain=_frozen(gain), bias=_frozen(bias), encoders=_frozen(encoders),
            decoders=_frozen(decoders), max_rates=_frozen(max_rates),
            intercepts=_frozen(intercepts), max_rate=max_rate, synapse=synapse,
            nrmse=metrics.nrmse, max_error=metrics.max_error,
            spiking_nrmse=metrics.spiking_nrmse, success=success, message=message,
            nfev=nfev, fit_time=float(fit_time), seed=seed, diagnostics=diagnostics,
        )

    @property
    def n_neurons(self):
        """Number of neurons in the population."""
        return len(self.gain)

    @public
    def rates(self, x):
        """Firing rates (Hz), shape ``(x.size, n_neurons)``, at inputs ``x`` (flattened).

        NaN inputs give NaN rates (nengo's own ``rates`` would give 0).
        """
        x = check_real_array(x, "x").reshape(-1)
        a = self.neuron_type.rates(x[:, None] * self.encoders, self.gain, self.bias)
        a[np.isnan(x)] = np.nan
        return a

    @public
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
    @public
    def from_dict(cls, d):
        """Rebuild a fit from `to_dict` output, validating every field.

        Raises
        ------
        popfit.FitFileError
            Naming the field that is missing, mistyped or out of bounds.
        """
        from .io import fit_from_dict

        return fit_from_dict(d)

    @public
    def save(self, path):
        """Write the fit to ``path`` as JSON, atomically; see `popfit.files.atomic_write_text`.

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

    @public
    def network(self, label=None, spiking=True, **kwargs):
        """A `popfit.PopulationNeuron` (nengo.Network) that computes this fit.

        ``spiking`` must be True or False; see `popfit.PopulationNeuron`.
        """
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
