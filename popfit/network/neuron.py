"""`PopulationNeuron`: one fitted signed unit as a nengo network, and the export rules
shared with `PopulationLayer` (which neuron type runs a fit, network keyword
arguments)."""


import warnings

import nengo
import numpy as np

from .._validation import (
    check_bool,
    check_seed,
    current_caller,
    public,
    user_stacklevel,
)
from ..exceptions import PopfitTypeError, PopfitValueError
from ..neurons import SUPPORTED, rate_twin, spiking_twin  # noqa: F401
from ..result import check_fit
from ..wholestep import DT, is_whole_step
from ..wholestep import export_neuron_type as whole_step_export


class PopulationNeuron(nengo.Network):
    """One signed unit as a Nengo network of positive-only neurons.

    Drop it into any model: ``nengo.Connection(a, pop.input)`` and
    ``nengo.Connection(pop.output, b, synapse=...)``. The network adds no
    synapse of its own: the input Node drives the ensemble with
    ``synapse=None`` and the decoded neurons reach the output Node with
    ``synapse=None``, so ``output`` carries the raw decoded spikes
    (``decoders * spikes``, spikes of height 1/dt) and the user's outgoing
    connection sets all the filtering.

    Parameters
    ----------
    fit : PopulationFit
        The fitted population.
    label : str, optional
        Network label (default ``"PopulationNeuron(<target>)"``).
    spiking : bool
        True: the fit's spiking twin (`nengo.LIF`, `nengo.SpikingRectifiedLinear`);
        False: its rate twin (`nengo.LIFRate`, `nengo.RectifiedLinear`), which
        reproduces ``fit.predict`` exactly. Only True or False: a string such
        as ``"False"`` is refused.
    **kwargs
        Passed to `nengo.Network`: ``seed`` (None or an int in [0, 2**32 - 1])
        and ``add_to_container`` (None, True or False).

    Attributes
    ----------
    fit : PopulationFit
    spiking : bool
    ensemble : nengo.Ensemble
        ``fit.n_neurons`` neurons, 1 dimension, with the fitted bias and
        encoders, ``radius = max |fit.domain|`` and ``gain = fit.gain * radius``
        (nengo divides the input by the radius, so each neuron's current is
        exactly ``fit.gain * encoder * x + fit.bias``).
    input : nengo.Node
        Size 1: the unit's input ``x``.
    output : nengo.Node
        Size 1: ``sum_i decoders_i * activity_i`` (activity in Hz for rate
        neurons, spikes of height 1/dt for spiking ones).

    Notes
    -----
    The network builds unmodified on ``nengo_loihi.Simulator`` (see
    docs/loihi.md): the radius keeps the value nengo-loihi encodes on the host
    inside [-1, 1], and the decoded output is computed on the host.

    The ensemble's ``max_rates`` and ``intercepts`` that nengo reports
    (``sim.data[pop.ensemble]``) are nengo's reading of the gain and bias at
    the encoded input ``x = radius`` and are not the fit's tuning. For a neuron that
    reaches threshold only just beyond ``x = 1`` (possible on domains wider
    than ``[-1, 1]``), building the network in ``nengo.Simulator`` can emit
    the harmless warnings described in `PopulationLayer`.
    """

    @public
    def __init__(self, fit, label=None, spiking=True, **kwargs):
        self.fit = check_fit(fit)
        self.spiking = check_bool(spiking, "spiking")
        kwargs = network_kwargs(label, kwargs)
        neuron_type = export_neuron_type(fit, self.spiking)
        if label is None:
            label = f"PopulationNeuron({fit.target.name})"
        super().__init__(label=label, **kwargs)
        with self:
            self.input = nengo.Node(size_in=1, label="input")
            # radius = max |domain|, gain multiplied back: nengo divides the input by
            # the radius (exact), and nengo-loihi's host-to-chip encoders, which
            # cover [-1, 1], then see only values inside [-1, 1]
            radius = float(np.max(np.abs(fit.domain)))
            self.ensemble = nengo.Ensemble(
                fit.n_neurons, 1, neuron_type=neuron_type, gain=fit.gain * radius,
                bias=fit.bias.copy(), encoders=fit.encoders[:, None].copy(),
                radius=radius, label="ensemble",
            )
            self.output = nengo.Node(size_in=1, label="output")
            nengo.Connection(self.input, self.ensemble, synapse=None)
            nengo.Connection(self.ensemble.neurons, self.output,
                             transform=fit.decoders[None, :].copy(), synapse=None)


#: Keyword arguments popfit's networks pass on to `nengo.Network` (besides ``label``).
NETWORK_KWARGS = ("seed", "add_to_container")


def network_kwargs(label, kwargs):
    """Check the `nengo.Network` arguments popfit's networks pass on: ``label``
    (None or a string), ``seed`` (None or an int in [0, 2**32 - 1], what
    nengo's simulator accepts) and ``add_to_container`` (None, True or False)."""
    if label is not None and not isinstance(label, str):
        raise PopfitTypeError(
            f"label must be a string or None (got {label!r} of type {type(label).__name__})")
    unknown = sorted(set(kwargs) - set(NETWORK_KWARGS))
    if unknown:
        raise PopfitTypeError(
            f"unexpected keyword arguments {unknown}; besides its own arguments the "
            f"network takes nengo.Network's label, {' and '.join(NETWORK_KWARGS)}")
    if "seed" in kwargs:
        kwargs["seed"] = check_seed(kwargs["seed"], allow_none=True)
    if kwargs.get("add_to_container") is not None:
        kwargs["add_to_container"] = check_bool(kwargs["add_to_container"], "add_to_container")
    return kwargs


def warn_tau_ref_below_dt(neuron_type, dt=DT):
    """Warn when a spiking nengo LIF has ``tau_ref < dt``.

    nengo's spiking `nengo.LIF` does not reach its rate model then: with
    ``tau_ref=0`` and ``J = 10`` it fires 333 Hz at ``dt = 1 ms`` where
    ``LIF.rates`` says 475 Hz, so a fit made against the rate model is wrong in
    ``nengo.Simulator``.
    """
    if isinstance(neuron_type, nengo.LIF) and neuron_type.tau_ref < dt:
        warnings.warn(
            f"{current_caller()}: spiking {neuron_type!r} has tau_ref = "
            f"{neuron_type.tau_ref:g} s < "
            f"dt = {dt:g} s: nengo's spiking LIF then fires below its rate model (tau_ref=0, "
            f"J=10: 333 Hz instead of 475 Hz), so the fitted decoders are wrong in "
            f"nengo.Simulator; fit with tau_ref >= {dt:g} s, or export with spiking=False",
            UserWarning, stacklevel=user_stacklevel())


def export_neuron_type(fit, spiking):
    """The positive-only neuron type that runs ``fit`` (spiking or rate).

    Raises `PopfitValueError` when the fit's neuron type has no positive-only
    spiking twin (``spiking=True``) or is not a type popfit supports.
    """
    nt = fit.neuron_type
    if is_whole_step(nt):  # nengo-loihi's whole-step types (popfit.wholestep)
        return whole_step_export(nt, spiking)
    twin = spiking_twin(nt) if spiking else None
    if spiking and twin is not None:
        warn_tau_ref_below_dt(twin)
    if type(nt) not in SUPPORTED or (spiking and twin is None):
        mode = "spiking=True" if spiking else "spiking=False"
        raise PopfitValueError(
            f"fit.neuron_type {nt!r} has no positive-only "
            f"{'spiking' if spiking else 'rate'} twin ({mode}); export supports fits of "
            "LIF, LIFRate, RectifiedLinear and SpikingRectifiedLinear"
        )
    return twin if spiking else rate_twin(nt)


