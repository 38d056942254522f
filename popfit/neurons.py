"""The bridge to nengo neuron types.

popfit uses real nengo neuron types: their ``rates``, ``gain_bias`` and
``max_rates_intercepts`` methods define what a fitted population computes.
This module resolves user input to a neuron type, pairs each supported type
with its spiking and rate twins, and gives the optimizer the closed forms it
needs for an exact Jacobian (checked against nengo's ``rates`` in the tests).
"""

import numpy as np
import nengo

from ._validation import check_positive
from .exceptions import PopfitTypeError, PopfitValueError

_NAMES = {
    "lif": nengo.LIF,
    "lifrate": nengo.LIFRate,
    "rectifiedlinear": nengo.RectifiedLinear,
    "relu": nengo.RectifiedLinear,
    "spikingrectifiedlinear": nengo.SpikingRectifiedLinear,
}
SUPPORTED = (nengo.LIF, nengo.LIFRate, nengo.RectifiedLinear, nengo.SpikingRectifiedLinear)
SUPPORTED_NAMES = "'LIF', 'LIFRate', 'RectifiedLinear' (or 'relu'), 'SpikingRectifiedLinear'"


def resolve_neuron_type(neuron_type):
    """Return a nengo neuron type instance from a name or an instance.

    Supported: `nengo.LIF`, `nengo.LIFRate`, `nengo.RectifiedLinear` and
    `nengo.SpikingRectifiedLinear`, with ``amplitude == 1``. A name gives nengo's
    defaults (LIF: ``tau_rc=0.02``, ``tau_ref=0.002``).
    """
    if isinstance(neuron_type, str):
        key = neuron_type.replace("_", "").replace("-", "").lower()
        if key in LOIHI_NAMES:  # imports nengo_loihi (popfit[loihi])
            from .loihi import loihi_neuron_type

            return loihi_neuron_type(LOIHI_NAMES[key])
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
    if is_loihi_type(neuron_type):
        from .loihi import check_loihi_neuron_type

        return check_loihi_neuron_type(neuron_type)
    if type(neuron_type) not in SUPPORTED:
        raise PopfitTypeError(
            f"unsupported neuron_type {neuron_type!r}; popfit fits {SUPPORTED_NAMES} "
            "(positive-only neurons whose rate curve it can differentiate)"
        )
    if neuron_type.amplitude != 1:
        raise PopfitValueError(
            f"neuron_type.amplitude must be 1 (got {neuron_type.amplitude!r}); "
            "the decoders already scale each neuron's output"
        )
    return neuron_type


#: nengo-loihi's neuron types, by name (resolved by `popfit.loihi`, which
#: imports nengo_loihi only when one is asked for).
LOIHI_NAMES = {"loihilif": "LoihiLIF",
               "loihispikingrectifiedlinear": "LoihiSpikingRectifiedLinear"}


def is_loihi_type(neuron_type):
    """True for an instance of a nengo-loihi neuron type (without importing nengo_loihi)."""
    module = getattr(type(neuron_type), "__module__", "") or ""
    return module.split(".")[0] == "nengo_loihi"


def is_lif(neuron_type):
    return isinstance(neuron_type, nengo.LIFRate)  # nengo.LIF subclasses LIFRate


def max_firing_rate(neuron_type):
    """Highest rate (Hz) the type can reach: ``1 / tau_ref`` for LIF, else inf."""
    if is_lif(neuron_type) and neuron_type.tau_ref > 0:
        return 1.0 / neuron_type.tau_ref
    return np.inf


def spiking_twin(neuron_type):
    """The spiking version of ``neuron_type`` (itself if it already spikes), or None."""
    if isinstance(neuron_type, nengo.LIF) or isinstance(neuron_type, nengo.SpikingRectifiedLinear):
        return neuron_type
    if isinstance(neuron_type, nengo.LIFRate):
        return nengo.LIF(tau_rc=neuron_type.tau_rc, tau_ref=neuron_type.tau_ref,
                         min_voltage=0)
    if isinstance(neuron_type, nengo.RectifiedLinear):
        return nengo.SpikingRectifiedLinear()
    return None


def rate_twin(neuron_type):
    """The rate (non-spiking) version of ``neuron_type``."""
    if isinstance(neuron_type, nengo.LIFRate):
        return nengo.LIFRate(tau_rc=neuron_type.tau_rc, tau_ref=neuron_type.tau_ref)
    return nengo.RectifiedLinear()


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
    """Inverse of `neuron_type_to_dict`; raises ValueError on anything else."""
    classes = {cls.__name__: cls for cls in SUPPORTED}
    name = d.get("type") if isinstance(d, dict) else None
    if name in LOIHI_NAMES.values():  # a fit for nengo-loihi: needs popfit[loihi]
        from .loihi import loihi_neuron_type

        return loihi_neuron_type(name, **{
            k: float(v) for k, v in d.items() if k in ("tau_rc", "tau_ref")})
    if name not in classes:
        raise PopfitValueError(f"unknown neuron type entry {d!r}; expected one of {sorted(classes)}")
    kwargs = {k: float(v) for k, v in d.items() if k in ("tau_rc", "tau_ref", "min_voltage")}
    return classes[name](**kwargs)


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


def check_max_rate(max_rate, neuron_type):
    """Return ``max_rate`` (Hz) as a float, > 0 and below what ``neuron_type`` can reach."""
    limit = max_firing_rate(neuron_type)
    return check_positive(
        max_rate, "max_rate", upper=limit if np.isfinite(limit) else None,
        upper_why=f" Hz, the highest rate {type(neuron_type).__name__} with "
        f"tau_ref={getattr(neuron_type, 'tau_ref', 0)} s can reach (1/tau_ref)",
    )
