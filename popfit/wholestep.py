"""Whole-step spiking: the simulation step, and neurons that spike only on it.

nengo simulates with a time step ``DT``; its `nengo.LIF` spikes inside a
step (its rate is the continuous-time curve). nengo-loihi's `LoihiLIF` and
`LoihiSpikingRectifiedLinear` spike only on whole steps, as Loihi does, so a
neuron of period ``p`` fires every ``ceil(p / dt)`` steps: its rate is the
staircase ``1 / (ceil(p / dt) * dt)`` (nengo-loihi's ``rates`` gives it).
This module is everything popfit knows about those types: making them by
name, checking them, how Loihi discretizes their time constants, and the
smooth surrogate the optimizer fits instead of the staircase
(`popfit.fit.whole_step` does the fitting).

nengo-loihi is optional (``popfit[loihi]``, numpy < 2): it is imported only
when a whole-step type is asked for by name, and an instance can only exist
once it is imported, so `is_whole_step` never imports it.
"""

import sys

import nengo
import numpy as np

from ._optional import import_optional
from .exceptions import PopfitTypeError, PopfitValueError

#: Simulation time step (s): nengo's and nengo-loihi's default, and the step
#: of the staircase curves.
DT = 0.001

#: Whole-step neuron types by lower-case name (as `popfit.neurons` resolves names).
NAMES = {"loihilif": "LoihiLIF", "loihispikingrectifiedlinear": "LoihiSpikingRectifiedLinear"}
#: tau_rc (s) of the LIF whose limit is the rectified-linear surrogate
#: (``rate = 1 / (tau_ref + 1 / j)``: an LIF with tau_rc -> inf).
_RELU_SURROGATE_TAU_RC = 10.0
#: Loihi stores a compartment's membrane decay in 12 bits (nengo-loihi's
#: ``discretize_tau_rc`` rounds ``1 - exp(-dt / tau_rc)`` to steps of 1 / 4095).
_DECAY_LEVELS = 2**12 - 1


def whole_step_tau_ref(tau_ref, step):
    """Refractory period (s) that makes a continuous-time LIF match whole-step spiking.

    A neuron that may spike only at the end of a time step of ``step``
    seconds, and restarts from rest on that step, fires every
    ``ceil(period / step)`` steps: over a range of currents half a step later
    than its continuous-time period on average, which is what a refractory
    period ``step / 2`` longer adds. This is the one place popfit makes that
    correction (nengo-loihi's whole-step neurons, and NIR consumers that
    reset on the crossing step: `popfit.platforms`).
    """
    return tau_ref + 0.5 * step


def _classes():
    """nengo-loihi's whole-step classes by kind, if nengo_loihi is imported (else {})."""
    module = sys.modules.get("nengo_loihi.neurons")
    if module is None:
        return {}
    return {module.LoihiLIF: "lif", module.LoihiSpikingRectifiedLinear: "relu"}


def kind(neuron_type):
    """``"lif"`` or ``"relu"`` for nengo-loihi's two whole-step types, else None."""
    return _classes().get(type(neuron_type))


def is_whole_step(neuron_type):
    """True for an instance of nengo-loihi's `LoihiLIF` or `LoihiSpikingRectifiedLinear`.

    Decided by class, not by name: other nengo-loihi types are not whole-step
    types popfit fits (`popfit.neurons.resolve_neuron_type` refuses them).
    """
    return kind(neuron_type) is not None


def make(name, **kwargs):
    """nengo-loihi's ``LoihiLIF`` (``min_voltage=0``) or ``LoihiSpikingRectifiedLinear`` by name."""
    neurons = import_optional("nengo_loihi.neurons")
    if name == "LoihiSpikingRectifiedLinear":
        return neurons.LoihiSpikingRectifiedLinear()
    return neurons.LoihiLIF(min_voltage=0, **kwargs)


def tau_rc_bounds(dt=DT):
    """Open interval of ``tau_rc`` (s) that Loihi's 12-bit decay keeps finite and > 0 at ``dt``.

    At or below the lower end the decay rounds to 1 (``tau_rc`` 0: the
    voltage is lost every step); at or above the upper end it rounds to 0
    (``tau_rc`` infinite: nengo-loihi's rate curve is 0 everywhere).
    """
    half = 0.5 / _DECAY_LEVELS
    return dt / -np.log(half), dt / -np.log1p(-half)


def check(neuron_type):
    """Return a supported whole-step neuron type instance, or raise."""
    if kind(neuron_type) is None:
        raise PopfitTypeError(
            f"unsupported nengo-loihi neuron_type {neuron_type!r}; popfit fits "
            "nengo_loihi.neurons.LoihiLIF and LoihiSpikingRectifiedLinear")
    if neuron_type.amplitude != 1:
        raise PopfitValueError(
            f"neuron_type.amplitude must be 1 (got {neuron_type.amplitude!r}); "
            "the decoders already scale each neuron's output")
    if kind(neuron_type) == "lif" and neuron_type.min_voltage != 0:
        raise PopfitValueError(
            f"LoihiLIF min_voltage must be 0 (got {neuron_type.min_voltage!r}), "
            "as Loihi's and popfit's LIF neurons")
    if kind(neuron_type) == "lif":
        lo, hi = tau_rc_bounds()
        tau_rc = float(neuron_type.tau_rc)
        if not lo < tau_rc < hi or not 0 < discretized_taus(neuron_type)[0] < np.inf:
            raise PopfitValueError(
                f"LoihiLIF tau_rc must be in ({lo:.4g}, {hi:.4g}) s (got {tau_rc!r}): Loihi "
                f"stores the membrane decay 1 - exp(-dt / tau_rc) in 12 bits at dt = {DT:g} s, "
                "and outside that range it rounds to a tau_rc of 0 (no memory) or infinity "
                "(no leak; nengo-loihi's rate curve is then 0); pick a tau_rc inside it, "
                "e.g. the default 0.02 s")
    return neuron_type


def export_neuron_type(neuron_type, spiking):
    """The neuron type a popfit network uses for a fit of a whole-step type."""
    if not spiking:
        raise PopfitValueError(
            f"fit.neuron_type {neuron_type!r} spikes on whole time steps and has "
            "no rate twin; export it with spiking=True (or fit nengo.LIFRate for a rate "
            "network)")
    return neuron_type


def discretized_taus(neuron_type, dt=DT):
    """``(tau_rc, tau_ref)`` (s) as Loihi runs them (nengo-loihi's discretization).

    ``tau_ref`` becomes ``dt * round(tau_ref / dt)``; ``tau_rc`` is rounded
    through its 12-bit decay constant. Rectified-linear neurons: ``(inf, 0)``.
    """
    if kind(neuron_type) == "relu":
        return np.inf, 0.0
    neurons = import_optional("nengo_loihi.neurons")
    return (float(neurons.discretize_tau_rc(neuron_type.tau_rc, dt)),
            float(neurons.discretize_tau_ref(neuron_type.tau_ref, dt)))


def staircase_max_rate(neuron_type, dt=DT):
    """Highest rate (Hz) the whole-step neuron can fire: ``1 / (dt * (round(tau_ref/dt) + 1))``."""
    tau_ref = discretized_taus(neuron_type, dt)[1]
    return 1.0 / (dt * (round(tau_ref / dt) + 1))


def surrogate_neuron_type(neuron_type, dt=DT):
    """The smooth rate neuron whose curve is the staircase's mean.

    Over a range of currents ``ceil(p / dt) * dt`` is ``p + dt / 2`` on
    average (`whole_step_tau_ref`), so the surrogate is an LIF whose
    ``tau_ref`` is ``dt / 2`` longer (for `LoihiSpikingRectifiedLinear`,
    ``1 / (dt / 2 + 1 / j)``: an LIF with a long ``tau_rc`` whose currents
    map back to the rectified-linear ones by `surrogate_to_currents`).
    """
    tau_rc, tau_ref = discretized_taus(neuron_type, dt)
    if kind(neuron_type) == "relu":
        tau_rc = _RELU_SURROGATE_TAU_RC
    return nengo.LIFRate(tau_rc=tau_rc, tau_ref=whole_step_tau_ref(tau_ref, dt))


def surrogate_to_currents(neuron_type, gain, bias):
    """Gains and biases of the surrogate fit in ``neuron_type``'s current units."""
    if kind(neuron_type) == "relu":
        # LIF(tau_rc) period tau_rc * log1p(1 / (J - 1)) ~ 1 / j with j = (J - 1) / tau_rc
        return gain / _RELU_SURROGATE_TAU_RC, (bias - 1.0) / _RELU_SURROGATE_TAU_RC
    return gain, bias
