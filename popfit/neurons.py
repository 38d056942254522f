"""The bridge to nengo neuron types: everything popfit knows about them is here.

popfit uses real nengo neuron types: their ``rates``, ``gain_bias`` and
``max_rates_intercepts`` methods define what a fitted population computes.
This module

* resolves user input to a supported neuron type (positive-only types with a
  closed-form rate curve: nengo's ``negative`` is False for them), and pairs
  each with its spiking and rate twin (picked by nengo's ``spiking`` property);
* bounds ``max_rate`` (`check_max_rate`) and converts (max rate, intercept)
  to gain and bias without cancellation (`gain_bias`);
* gives the optimizer the closed forms it needs for its Jacobian
  (`RateModel`, checked against nengo's ``rates`` in the tests) and the
  spike-noise model (`spike_noise_variance`);
* holds `LinearRate` (the signed linear rate neuron of the baselines) and
  `ignore_max_rates_warnings` (the filter for nengo's spurious build warnings).
"""

import contextlib
import numbers
import warnings

import nengo
import numpy as np

from . import wholestep
from ._validation import check_positive
from .exceptions import PopfitTypeError, PopfitValueError

_NAMES = {
    "lif": nengo.LIF,
    "lifrate": nengo.LIFRate,
    "rectifiedlinear": nengo.RectifiedLinear,
    "relu": nengo.RectifiedLinear,
    "spikingrectifiedlinear": nengo.SpikingRectifiedLinear,
}
#: Types popfit fits: positive-only (``negative`` False) with closed-form rate
#: curves. Each rate type (``spiking`` False) comes first, then its spiking twin.
SUPPORTED = (nengo.LIFRate, nengo.LIF, nengo.RectifiedLinear, nengo.SpikingRectifiedLinear)
assert not any(cls.negative for cls in SUPPORTED)
SUPPORTED_NAMES = "'LIF', 'LIFRate', 'RectifiedLinear' (or 'relu'), 'SpikingRectifiedLinear'"


def resolve_neuron_type(neuron_type):
    """Return a nengo neuron type instance from a name or an instance.

    Supported: `nengo.LIF`, `nengo.LIFRate`, `nengo.RectifiedLinear` and
    `nengo.SpikingRectifiedLinear`, with ``amplitude == 1``. A name gives nengo's
    defaults (LIF: ``tau_rc=0.02``, ``tau_ref=0.002``).
    """
    if isinstance(neuron_type, str):
        key = neuron_type.replace("_", "").replace("-", "").lower()
        if key in wholestep.NAMES:  # imports nengo_loihi (popfit[loihi])
            return wholestep.make(wholestep.NAMES[key])
        if key not in _NAMES:
            raise PopfitValueError(
                f"unknown neuron_type {neuron_type!r}; use one of "
                f"{SUPPORTED_NAMES} or a nengo neuron type instance"
            )
        return _NAMES[key]()
    if isinstance(neuron_type, type) and issubclass(neuron_type, nengo.neurons.NeuronType):
        raise PopfitTypeError(
            f"neuron_type must be an instance, not the class "
            f"{neuron_type.__name__}; write {neuron_type.__name__}()"
        )
    if wholestep.is_whole_step(neuron_type):
        return wholestep.check(neuron_type)
    if type(neuron_type) not in SUPPORTED:
        why = ("it can emit negative output (nengo's `negative` is True), and popfit "
               "puts the sign in encoders and decoders" if getattr(neuron_type, "negative", 0)
               else "popfit needs a positive-only neuron with a closed-form rate curve")
        raise PopfitTypeError(
            f"unsupported neuron_type {neuron_type!r}: {why}; popfit fits {SUPPORTED_NAMES}"
        )
    if neuron_type.amplitude != 1:
        raise PopfitValueError(
            f"neuron_type.amplitude must be 1 (got {neuron_type.amplitude!r}); "
            "the decoders already scale each neuron's output"
        )
    return neuron_type


def is_lif(neuron_type):
    return isinstance(neuron_type, nengo.LIFRate)  # nengo.LIF subclasses LIFRate


def max_firing_rate(neuron_type):
    """Highest rate (Hz) the type can reach: ``1 / tau_ref`` for LIF, else inf."""
    if is_lif(neuron_type) and neuron_type.tau_ref > 0:
        return 1.0 / neuron_type.tau_ref
    return np.inf


def _rate_class(cls):
    """The supported rate (non-spiking) class that ``cls`` is, or derives from."""
    return next(base for base in SUPPORTED if not base.spiking and issubclass(cls, base))


def _twin_kwargs(neuron_type):
    if is_lif(neuron_type):
        return {"tau_rc": neuron_type.tau_rc, "tau_ref": neuron_type.tau_ref}
    return {}


def spiking_twin(neuron_type):
    """The spiking version of ``neuron_type`` (itself if it already spikes), or None.

    Picked by nengo's ``spiking`` property among `SUPPORTED`: the spiking class
    derived from the same rate class (nengo.LIF for nengo.LIFRate, with
    ``min_voltage=0``; nengo.SpikingRectifiedLinear for nengo.RectifiedLinear).
    """
    if type(neuron_type) not in SUPPORTED:
        return None
    if neuron_type.spiking:
        return neuron_type
    rate_cls = _rate_class(type(neuron_type))
    cls = next(c for c in SUPPORTED if c.spiking and issubclass(c, rate_cls))
    kwargs = _twin_kwargs(neuron_type)
    if issubclass(cls, nengo.LIF):
        kwargs["min_voltage"] = 0
    return cls(**kwargs)


def rate_twin(neuron_type):
    """The rate (non-spiking) version of a supported ``neuron_type``."""
    if type(neuron_type) not in SUPPORTED:
        raise PopfitTypeError(
            f"neuron_type must be one of popfit's types {SUPPORTED_NAMES} (got "
            f"{neuron_type!r} of type {type(neuron_type).__name__})")
    return _rate_class(type(neuron_type))(**_twin_kwargs(neuron_type))


def neuron_type_to_dict(neuron_type):
    """JSON-safe description of a supported neuron type."""
    d = {"type": type(neuron_type).__name__}
    if is_lif(neuron_type):
        d["tau_rc"] = float(neuron_type.tau_rc)
        d["tau_ref"] = float(neuron_type.tau_ref)
    if isinstance(neuron_type, nengo.LIF):
        d["min_voltage"] = float(neuron_type.min_voltage)
    return d


def neuron_type_from_dict(d):
    """Inverse of `neuron_type_to_dict`; raises `PopfitValueError` on anything else
    (an unknown type or parameter, a parameter that is not a finite number, or
    one nengo refuses)."""
    classes = {cls.__name__: cls for cls in SUPPORTED}
    name = d.get("type") if isinstance(d, dict) else None
    if name in wholestep.NAMES.values():  # a fit for nengo-loihi: needs popfit[loihi]
        return wholestep.make(name, **{
            k: float(v) for k, v in d.items() if k in ("tau_rc", "tau_ref")})
    if name not in classes:
        raise PopfitValueError(f"unknown neuron type entry {d!r}; expected one of {sorted(classes)}")
    takes = sorted(set(neuron_type_to_dict(classes[name]())) - {"type"})
    unknown = sorted(set(d) - set(takes) - {"type"}, key=str)
    if unknown:
        raise PopfitValueError(
            f"neuron type entry {d!r} has unknown parameters {unknown}; {name} takes {takes}")
    kwargs = {}
    for k in takes:
        if k not in d:
            continue
        v = d[k]
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise PopfitTypeError(
                f"neuron type entry {name}.{k} must be a finite number (got {v!r} of type "
                f"{type(v).__name__})")
        if not np.isfinite(v):
            raise PopfitValueError(f"neuron type entry {name}.{k} must be a finite number "
                                   f"(got {v!r})")
        kwargs[k] = float(v)
    try:
        return classes[name](**kwargs)
    except ValueError as err:  # nengo's ValidationError names the parameter and its bound
        raise PopfitValueError(f"neuron type entry {d!r}: {err}") from None


class RateModel:
    """Closed-form rate curve of a supported type, parametrized for the optimizer.

    A neuron's input current is ``J = J0 + K(r) * z`` with ``z = (s - c) / (1 - c)``,
    where ``s`` is the input projected on the encoder and scaled so the domain
    edge the neuron faces is ``s = 1``, ``c`` is the intercept in those units and
    ``r`` the rate at the edge. This is exactly what ``neuron_type.gain_bias(r, c)``
    produces; the point of the class is the derivatives.
    """

    def __init__(self, neuron_type):
        self.neuron_type = neuron_type
        self.lif = is_lif(neuron_type)
        self.j0 = 1.0 if self.lif else 0.0
        if self.lif:
            self.tau_rc = float(neuron_type.tau_rc)
            self.tau_ref = float(neuron_type.tau_ref)

    def k_and_dk(self, r):
        """``K(r) = J_max(r) - J0`` and its derivative in ``r``."""
        if not self.lif:
            return r, np.ones_like(r)
        q = np.exp((self.tau_ref - 1.0 / r) / self.tau_rc)
        k = q / (1.0 - q)
        dk = q / ((1.0 - q) ** 2 * r**2 * self.tau_rc)
        return k, dk

    def rate_and_slope(self, j):
        """Rates (Hz) and ``d rate / d J`` for currents ``j``."""
        if not self.lif:
            on = j > 0
            return np.where(on, j, 0.0), on.astype(float)
        jm1 = j - 1.0
        on = jm1 > 0
        jm1 = np.where(on, jm1, 1.0)
        rate = 1.0 / (self.tau_ref + self.tau_rc * np.log1p(1.0 / jm1))
        slope = rate**2 * self.tau_rc / (jm1 * (jm1 + 1.0))
        return np.where(on, rate, 0.0), np.where(on, slope, 0.0)


def spike_noise_variance(rates, synapse):
    """Variance of a regular spike train at ``rates`` (Hz) filtered by Lowpass(synapse).

    For a regular train of rate ``r`` (random phase) through an exponential
    synapse with time constant ``tau`` the filtered trace has mean ``r`` and
    variance ``r / (2 tau) * (coth(u) - 1/u)`` with ``u = 1 / (2 r tau)``: about
    ``r / (2 tau)`` at low rates (Poisson-like) and ``1 / (12 tau**2)`` at high
    rates (a sawtooth). Returns the variance and its derivative in ``r``.
    """
    r = np.asarray(rates, dtype=float)
    on = r > 0
    u = (0.5 / synapse) / np.where(on, r, 1.0)
    # f(u) = coth(u) - 1/u and g(u) = f(u) - u f'(u) (csch**2 = coth**2 - 1);
    # below u = 0.15 the difference cancels, so use the series there
    coth = 1.0 / np.tanh(u)
    inv = 1.0 / u
    f = coth - inv
    g = f - inv + u * (coth * coth - 1.0)
    small = u < 0.15
    if small.any():
        us = u[small]
        u2 = us * us
        f[small] = us * (1 / 3 - u2 * (1 / 45 - u2 * (2 / 945 - u2 / 4725)))
        g[small] = us * u2 * (2 / 45 - u2 * (8 / 945 - u2 * (6 / 4725)))
    var = np.where(on, (0.5 / synapse) * r * f, 0.0)
    dvar = np.where(on, (0.5 / synapse) * g, 0.0)
    return var, dvar


#: Bounds (Hz) on ``max_rate`` for every type (LIF types have tighter ones,
#: see `max_rate_bounds`): rates, decoders and their squares stay far from
#: float64's limits.
MAX_RATE_BOUNDS = (1e-3, 1e6)
#: The lowest rate a fitted neuron may take at the edge of the domain it
#: faces, as a fraction of ``max_rate`` (the optimizer's lower bound).
LOWEST_RATE_FRACTION = 0.02
#: Smallest LIF current above threshold, ``J - 1``, at the faced domain edge
#: that `check_max_rate` admits for the lowest-rate neuron. Above it gain and
#: bias stay positive and finite for every admitted domain; a neuron near it is
#: silent in nengo (``J`` rounds to 1 in float64), which `fit_activation`
#: detects and reports.
LIF_MIN_CURRENT_ABOVE_THRESHOLD = 1e-140


def lif_rate(neuron_type, j_above):
    """LIF rate (Hz) at current ``J = 1 + j_above`` (``j_above > 0``), as nengo's LIFRate."""
    return 1.0 / (neuron_type.tau_ref + neuron_type.tau_rc * np.log1p(1.0 / j_above))


def max_rate_bounds(neuron_type):
    """``(low, high)``: the ``max_rate`` (Hz) range `check_max_rate` admits, ``low < max_rate < high``.

    For LIF types ``high = 1 / tau_ref`` and ``low`` is at least the rate
    whose `LOWEST_RATE_FRACTION` gives ``J - 1 = LIF_MIN_CURRENT_ABOVE_THRESHOLD``
    (about 7.8 Hz for nengo's default LIF, tau_rc = 0.02 s, tau_ref = 0.002 s).
    """
    low, high = MAX_RATE_BOUNDS
    if is_lif(neuron_type):
        floor = lif_rate(neuron_type, LIF_MIN_CURRENT_ABOVE_THRESHOLD) / LOWEST_RATE_FRACTION
        low = max(low, float(floor))
        high = min(high, max_firing_rate(neuron_type))
    return low, high


def check_max_rate(max_rate, neuron_type):
    """Return ``max_rate`` (Hz) as a float inside `max_rate_bounds` of ``neuron_type``."""
    low, high = max_rate_bounds(neuron_type)
    name = type(neuron_type).__name__
    if is_lif(neuron_type) and low >= high:
        raise PopfitValueError(
            f"{neuron_type!r} cannot be fitted: max_rate would have to be >= {low:.4g} Hz "
            f"for its slowest neurons ({LOWEST_RATE_FRACTION:g} of max_rate) to have a "
            f"current J - 1 >= {LIF_MIN_CURRENT_ABOVE_THRESHOLD:g} that float64 can hold, "
            f"but the type cannot fire above 1/tau_ref = {high:.4g} Hz; use a larger "
            "tau_rc or a smaller tau_ref"
        )
    if is_lif(neuron_type) and high == max_firing_rate(neuron_type):
        why = (f" Hz, the highest rate {name} with tau_ref={neuron_type.tau_ref} s "
               "can reach (1/tau_ref)")
    else:
        why = " Hz"
    value = check_positive(max_rate, "max_rate", upper=high, upper_why=why)
    if value < low:
        if is_lif(neuron_type) and low > MAX_RATE_BOUNDS[0]:
            why = (f"; below it the slowest fitted neurons ({LOWEST_RATE_FRACTION:g} of "
                   f"max_rate) of {neuron_type!r} would need a current J - 1 below "
                   f"{LIF_MIN_CURRENT_ABOVE_THRESHOLD:g}, which float64 cannot hold "
                   "(their gain would round to 0)")
        else:
            why = "; rates, decoders and their squares must stay far from float64's limits"
        raise PopfitValueError(f"max_rate must be >= {low:.4g} Hz (got {value:g}){why}")
    return value


def gain_bias(neuron_type, max_rates, intercepts):
    """Gain and bias of neurons with the given max rates (Hz) and intercepts.

    Equal to ``neuron_type.gain_bias(max_rates, intercepts)`` (nengo's
    convention: the rate is ``max_rates`` at input 1 and 0 up to
    ``intercepts``), but for LIF types computed without nengo's cancellation:
    nengo forms ``1 - 1 / (1 - q)`` with ``q = exp((tau_ref - 1/r) / tau_rc)``,
    which rounds to 0 (a dead neuron) below about 1.4 Hz at tau_rc = 0.02 s
    (where ``q`` falls below float64's epsilon). Here
    ``J(1) - 1 = q / (1 - q) = exp(-a) / -expm1(-a)`` with
    ``a = (1/r - tau_ref) / tau_rc``, exact to rounding at every rate above
    the underflow of ``exp(-a)`` (about 0.07 Hz at tau_rc = 0.02 s).
    """
    max_rates = np.asarray(np.atleast_1d(max_rates), dtype=float)
    intercepts = np.asarray(np.atleast_1d(intercepts), dtype=float)
    if not is_lif(neuron_type):
        return neuron_type.gain_bias(max_rates, intercepts)
    a = (1.0 / max_rates - neuron_type.tau_ref) / neuron_type.tau_rc
    j_above = np.exp(-a) / -np.expm1(-a)  # = q / (1 - q), no overflow for large a
    gain = j_above / (1.0 - intercepts)
    return gain, 1.0 - gain * intercepts


class LinearRate(nengo.neurons.NeuronType):
    """A signed rate neuron whose rate (Hz) equals its input current: ``rate = J``.

    nengo has no linear rate type; wrapped in `nengo.RegularSpiking` it gives the
    signed baseline for a linear unit (negative spikes for negative ``J``).
    """

    negative = True

    def gain_bias(self, max_rates, intercepts):
        max_rates = np.asarray(np.atleast_1d(max_rates), dtype=float)
        intercepts = np.asarray(np.atleast_1d(intercepts), dtype=float)
        gain = max_rates / (1.0 - intercepts)
        return gain, -gain * intercepts

    def max_rates_intercepts(self, gain, bias):
        return gain + bias, -bias / gain

    def step(self, dt, J, output):
        output[...] = J


@contextlib.contextmanager
def ignore_max_rates_warnings():
    """Silence nengo's spurious ``max_rates`` warnings while building popfit ensembles.

    Given an Ensemble's ``gain`` and ``bias``, the nengo builder computes the
    informational ``max_rates`` and ``intercepts`` of each neuron at the
    encoded input ``x = 1`` (``LIFRate.max_rates_intercepts``, called from
    ``nengo.builder.ensemble.get_gain_bias``). popfit neurons may legitimately
    reach threshold only beyond ``x = 1`` (wide domains, or a `PopulationLayer`
    ``input_bias`` folded into the bias). For an LIF neuron with
    ``0 < gain + bias <= 1``, nengo then warns (from ``nengo/neurons.py``)::

        RuntimeWarning: invalid value encountered in log1p
        UserWarning: Non-finite values detected in `max_rates`; ...

    The simulation uses only gain and bias and is unaffected. This context
    manager ignores exactly those messages, raised from ``nengo.neurons``; wrap
    only the ``nengo.Simulator(...)`` construction (the build) in it. popfit
    uses it around the simulators it builds itself (`ConvertedModel`
    predictions, `evaluate_spiking`); it never installs a global filter.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Non-finite values detected in `max_rates`",
            category=UserWarning, module=r"nengo\.neurons\Z")
        warnings.filterwarnings(
            "ignore", message=r"(invalid value|divide by zero) encountered in log1p",
            category=RuntimeWarning, module=r"nengo\.neurons\Z")
        yield
