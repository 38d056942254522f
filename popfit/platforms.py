"""Where a network runs: one concept, one registry.

A `Platform` says everything popfit must know about a place a network runs,
so one argument selects it everywhere (``fit_activation(..., platform=)``,
``PopulationLayer(..., platform=)``, ``convert(..., platform=)``,
``to_nir(..., platform=)``):

- the neuron model fits are made for (``neuron_type``; a platform that
  spikes on whole time steps of ``step`` seconds and resets on the step a
  neuron crosses threshold loses on average half a step per spike, which
  `popfit.wholestep.whole_step_tau_ref` turns into a refractory period);
- the weight precision (``weight_bits``: None for floats);
- which transforms it takes on connections between the host and its neurons
  (``host_transforms``; nengo-loihi takes no ``Sparse`` transform there);
- how a network leaves popfit (``export``: a nengo network or a NIR graph,
  with the NIR consumer's conventions: ``nir_dt`` and ``readout``);
- how it is simulated (``simulator``, a ``"module:attribute"`` path and
  keyword arguments, imported only when asked for, with ``requires`` naming
  the pip extra).

Platforms are frozen: ``get_platform("loihi", weight_bits=4)`` returns a copy
with that field overridden. New platforms plug in with `register_platform`
(as model readers do with `popfit.conversion.readers.register_reader`); the
code that uses a platform knows no platform names.
"""

import dataclasses
import functools
import importlib
from typing import Optional, Tuple

from ._optional import import_optional
from ._validation import check_int, check_positive, public
from .exceptions import PopfitTypeError, PopfitValueError
from .neurons import resolve_neuron_type
from .wholestep import DT, whole_step_tau_ref

#: Transform kinds a platform may accept between host and neurons.
TRANSFORMS = ("Dense", "Sparse")
EXPORTS = ("nengo", "nir")
READOUTS = ("LI", "affine")
NEURON_NODES = ("LIF", "IF")
#: What a LIF/CubaLIF node's ``r`` holds for a NIR consumer (see `Platform`).
NIR_R = ("tau/dt", "one", "tau/dt-1")
#: What the Affine weights into a neuron or synapse node hold (see `Platform`).
NIR_INPUTS = ("current", "increment")
#: The unit of a NIR node's time constants for a consumer.
NIR_TAU_UNITS = ("s", "steps")
#: The NIR node a first LIF layer (no synapse in nengo) is written as.
NIR_LIF_NODES = ("LIF", "CubaLIF")
#: Neuron and synapse nodes that may hold a convolution's output (see `Platform`).
NIR_CONV_NODES = ("LIF", "CubaLIF", "IF", "LI")


@dataclasses.dataclass(frozen=True)
class Platform:
    """Where a network runs (see the module docstring).

    Parameters
    ----------
    name : str
        Registry key.
    description : str
        One line for reports and error messages.
    neuron_type : str
        Name of the neuron type fits are made for (`popfit.neurons`
        resolves it; a name needing an optional package imports it then).
    tau_ref : float or None
        Refractory period (s) the platform's neurons have, where it differs
        from the named type's default (NIR's LIF has none: 0).
    step : float or None
        Whole-step spiking period (s), or None for continuous-time spiking.
    weight_bits : int or None
        Magnitude bits of the weights between populations; None: floats.
    host_transforms : tuple of str
        Transform kinds accepted on connections between host and neurons.
    export : {"nengo", "nir"}
        What `popfit.convert` / `popfit.to_nir` hand over.
    nir_dt : float or None
        Time step (s) a NIR consumer fixes (spikes of area ``nir_dt``).
    readout : {"LI", "affine"} or None
        A NIR graph's default read-out node.
    readouts : tuple of str
        The read-outs the consumer can run (snnTorch 1.0 has no LI node).
    neuron_nodes : tuple of str
        The NIR neuron nodes the consumer runs as NIR defines them
        (snnTorch 1.0 imports ``IF`` as a leaky neuron).
    nir_r : {"tau/dt", "one", "tau/dt-1"}
        What a LIF / CubaLIF node's ``r`` holds: ``tau / nir_dt`` (snnTorch
        adds its input once per step, ``v <- beta v + I``; 1 without
        ``nir_dt``), 1 (Norse warns on any other value and integrates
        NIR's equation by Euler steps), or ``tau / nir_dt - 1`` (Rockpool
        3.1 reads its time step from ``r`` as ``tau / (1 + r)``).
    nir_input : {"current", "increment"}
        What the Affine weights into a neuron (or synapse) node hold:
        ``"current"``, NIR's input current divided by ``r`` (NIR's own
        semantics); ``"increment"``, what the consumer adds to the node's
        state each step: ``J (1 - exp(-nir_dt / tau))`` for a leaky neuron
        (``v <- a v + x``), ``J nir_dt`` for IF, divided by an LI synapse's
        gain ``1 / (1 - a)`` and a CubaLIF synapse's ``b / (1 - b)``
        (Rockpool adds the input to the synaptic current before it decays).
        Needs ``nir_dt``.
    nir_tau : {"s", "steps"}
        Unit of the nodes' time constants (sinabs 2 reads them in steps of
        ``nir_dt``).
    nir_lif_node : {"LIF", "CubaLIF"}
        The node a first LIF layer (fed by the graph input, no synapse) is
        written as; ``"CubaLIF"`` with ``tau_syn = nir_dt`` for a consumer
        that cannot import ``LIF`` (Rockpool 3.1 reads ``LIF.tau_mem``,
        which NIR's LIF does not have).
    nir_conv_nodes : tuple of str
        The nodes (of ``"LIF"``, ``"CubaLIF"``, ``"IF"``, ``"LI"``) the
        consumer imports as channels-first tensors ``(C, *spatial)`` behind
        NIR's ``Conv1d``/``Conv2d`` nodes, which it imports with ``Flatten``:
        `popfit.to_nir` writes a convolution into a layer whose nodes are all
        here as a Conv node, other ones as dense ``Affine`` nodes. Empty: no
        Conv nodes (Rockpool 3.1 has none; sinabs 2.0's LI import fails on a
        multi-dimensional node).
    simulator : str or None
        ``"module:attribute"`` of the nengo backend's Simulator.
    simulator_kwargs : tuple of (str, object)
        Keyword arguments for the simulator (a tuple of pairs, so the
        platform stays hashable).
    requires : str or None
        The pip extra (``popfit[...]``) the platform's optional packages
        come from.
    prepare_network : str or None
        ``"module:attribute"`` of a function popfit calls on every nengo
        network it builds for the platform (a converted model's, the batched
        prediction's) before anything simulates it: ``"loihi"``'s sets
        nengo-loihi block shapes that fit its cores
        (`popfit.loihi.prepare_network`).
    """

    name: str
    description: str
    neuron_type: str = "LIF"
    tau_ref: Optional[float] = None
    step: Optional[float] = None
    weight_bits: Optional[int] = None
    host_transforms: Tuple[str, ...] = TRANSFORMS
    export: str = "nengo"
    nir_dt: Optional[float] = None
    readout: Optional[str] = None
    readouts: Tuple[str, ...] = READOUTS
    neuron_nodes: Tuple[str, ...] = NEURON_NODES
    nir_r: str = "tau/dt"
    nir_input: str = "current"
    nir_tau: str = "s"
    nir_lif_node: str = "LIF"
    nir_conv_nodes: Tuple[str, ...] = NIR_CONV_NODES
    simulator: Optional[str] = None
    simulator_kwargs: Tuple[Tuple[str, object], ...] = ()
    requires: Optional[str] = None
    prepare_network: Optional[str] = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise PopfitTypeError(f"Platform.name must be a non-empty string (got {self.name!r})")
        if self.tau_ref is not None and not (self.tau_ref >= 0):
            raise PopfitValueError(f"Platform.tau_ref must be >= 0 s (got {self.tau_ref!r})")
        for name in ("step", "nir_dt"):
            if getattr(self, name) is not None:
                check_positive(getattr(self, name), f"Platform.{name}")
        if self.weight_bits is not None:
            check_int(self.weight_bits, "Platform.weight_bits", low=2, high=16)
        if not set(self.host_transforms) <= set(TRANSFORMS) or not self.host_transforms:
            raise PopfitValueError(
                f"Platform.host_transforms must be a non-empty subset of {TRANSFORMS} "
                f"(got {self.host_transforms!r})")
        _check_choice(self.export, "Platform.export", EXPORTS)
        if self.readout is not None:
            _check_choice(self.readout, "Platform.readout", self.readouts)
        if not set(self.readouts) <= set(READOUTS) or not set(self.neuron_nodes) <= set(
                NEURON_NODES):
            raise PopfitValueError(
                f"Platform.readouts must be a subset of {READOUTS} and Platform.neuron_nodes "
                f"of {NEURON_NODES} (got {self.readouts!r}, {self.neuron_nodes!r})")
        _check_choice(self.nir_r, "Platform.nir_r", NIR_R)
        _check_choice(self.nir_input, "Platform.nir_input", NIR_INPUTS)
        _check_choice(self.nir_tau, "Platform.nir_tau", NIR_TAU_UNITS)
        _check_choice(self.nir_lif_node, "Platform.nir_lif_node", NIR_LIF_NODES)
        if not set(self.nir_conv_nodes) <= set(NIR_CONV_NODES):
            raise PopfitValueError(
                f"Platform.nir_conv_nodes must be a subset of {NIR_CONV_NODES} (got "
                f"{self.nir_conv_nodes!r})")
        stepped = [f"{name}={getattr(self, name)!r}" for name, free in (
            ("nir_r", ("tau/dt", "one")), ("nir_input", ("current",)), ("nir_tau", ("s",)))
            if getattr(self, name) not in free]
        if stepped and self.nir_dt is None:
            raise PopfitValueError(
                f"Platform {', '.join(stepped)} describe a consumer that steps at a fixed "
                "time step, so Platform.nir_dt must be set (got None); give the "
                "consumer's time step in seconds")

    @property
    def sparse_host_transforms(self):
        """Whether host<->neuron connections may use ``nengo.transforms.Sparse``."""
        return "Sparse" in self.host_transforms

    def replace(self, **overrides):
        """A copy with some fields overridden (checked as a new platform)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise PopfitTypeError(
                f"{unknown[0]!r} is not a field of Platform; the fields are "
                f"{', '.join(sorted(names))}")
        return dataclasses.replace(self, **overrides)

    def fit_neuron_type(self):
        """The nengo neuron type popfit fits for this platform.

        A NIR consumer that steps at ``step`` and resets on the crossing step
        gets its lost half step as refractory period (`whole_step_tau_ref`);
        whole-step nengo-loihi types model their staircase themselves.
        """
        import nengo

        neuron_type = resolve_neuron_type(self.neuron_type)
        if self.tau_ref is None:
            return neuron_type
        tau_ref = self.tau_ref
        if self.step is not None and self.export == "nir":
            tau_ref = whole_step_tau_ref(tau_ref, self.step)
        return nengo.LIF(tau_rc=neuron_type.tau_rc, tau_ref=tau_ref)

    def prepare(self, network):
        """Apply ``prepare_network`` (if any) to ``network``; returns ``network``."""
        if self.prepare_network is not None:
            module, _, attribute = self.prepare_network.partition(":")
            getattr(importlib.import_module(module), attribute)(network)
        return network

    def make_simulator(self):
        """The nengo backend's Simulator class (with its keyword arguments bound),
        or None for nengo's reference simulator."""
        if self.simulator is None:
            return None
        module, _, attribute = self.simulator.partition(":")
        cls = getattr(import_optional(module, f"the {self.name!r} platform's simulator"), attribute)
        kwargs = dict(self.simulator_kwargs)
        return functools.partial(cls, **kwargs) if kwargs else cls


def _check_choice(value, name, choices):
    if value not in choices:
        raise PopfitValueError(
            f"{name} must be one of {', '.join(map(repr, choices))} (got {value!r})")
    return value


_PLATFORMS = {}


@public
def register_platform(platform):
    """Add ``platform`` to the registry under ``platform.name`` (replacing one of that name).

    Returns the platform, so a module can register its own at import time.
    """
    if not isinstance(platform, Platform):
        raise PopfitTypeError(
            f"platform must be a popfit.platforms.Platform, e.g. popfit.get_platform("
            f"'nengo').replace(name=...) (got {platform!r:.80} of type "
            f"{type(platform).__name__})")
    _PLATFORMS[platform.name] = platform
    return platform


def registered_platforms():
    """The registered platform names, in registration order."""
    return tuple(_PLATFORMS)


@public
def get_platform(platform=None, **overrides):
    """Resolve a platform name (or a `Platform`) and apply per-field overrides.

    ``None`` is nengo's reference simulator (``"nengo"``). Every override
    given is applied, None included: ``get_platform("loihi", weight_bits=None)``
    turns quantization off. Pass only the fields you mean to change.
    """
    if platform is None:
        platform = "nengo"
    if isinstance(platform, str):
        if platform not in _PLATFORMS:
            raise PopfitValueError(
                f"platform must be a popfit.platforms.Platform or one of "
                f"{', '.join(map(repr, _PLATFORMS))} (got {platform!r}); register a new "
                "one with popfit.platforms.register_platform")
        platform = _PLATFORMS[platform]
    elif not isinstance(platform, Platform):
        raise PopfitTypeError(
            f"platform must be a name or a popfit.platforms.Platform (got {platform!r:.80} "
            f"of type {type(platform).__name__})")
    return platform.replace(**overrides) if overrides else platform


NENGO = register_platform(Platform(
    name="nengo",
    description="nengo's reference simulator (float weights, block-sparse transforms)",
))

LOIHI = register_platform(Platform(
    name="loihi",
    description="Intel Loihi through nengo-loihi 1.1 (whole-step spiking, 8-bit weights, "
                "Dense transforms between host and chip)",
    neuron_type="LoihiLIF",
    step=DT,
    weight_bits=8,
    host_transforms=("Dense",),
    simulator="nengo_loihi:Simulator",
    simulator_kwargs=(("target", "sim"),),
    requires="loihi",
    prepare_network="popfit.loihi:prepare_network",
))

NIR = register_platform(Platform(
    name="nir",
    description="a NIR graph in continuous time (LIF without refractory period)",
    tau_ref=0.0,
    export="nir",
    readout="LI",
    requires="nir",
))

SNNTORCH = register_platform(Platform(
    name="snntorch",
    description="snnTorch 1.0's NIR import (dt 0.1 ms, reset on the crossing step, no LI node)",
    tau_ref=0.0,
    step=1e-4,
    export="nir",
    nir_dt=1e-4,
    readout="affine",
    readouts=("affine",),
    neuron_nodes=("LIF",),
    requires="nir",
))

NORSE = register_platform(Platform(
    name="norse",
    description="Norse 1.1's NIR import (Euler steps of NIR's LIF at dt 0.1 ms, r = 1, "
                "reset on the crossing step, no LI node)",
    tau_ref=0.0,
    step=1e-4,
    export="nir",
    nir_dt=1e-4,
    readout="affine",
    readouts=("affine",),
    neuron_nodes=("LIF",),
    nir_r="one",
    requires="nir",
))

ROCKPOOL = register_platform(Platform(
    name="rockpool",
    description="Rockpool 3.1's NIR import (LIFTorch at dt 0.1 ms read from r, several "
                "spikes per step with subtractive reset, no LIF or usable LI node)",
    tau_ref=0.0,
    export="nir",
    nir_dt=1e-4,
    readout="affine",
    readouts=("affine",),
    neuron_nodes=("LIF",),
    nir_r="tau/dt-1",
    nir_input="increment",
    nir_lif_node="CubaLIF",
    nir_conv_nodes=(),
    requires="nir",
))

SINABS = register_platform(Platform(
    name="sinabs",
    description="sinabs 2.0's NIR import (integrate-and-fire IAF at dt 0.1 ms, several "
                "spikes per step with subtractive reset, time constants in steps, "
                "no CubaLIF node)",
    neuron_type="SpikingRectifiedLinear",
    export="nir",
    nir_dt=1e-4,
    readout="affine",
    neuron_nodes=("IF",),
    nir_r="one",
    nir_input="increment",
    nir_tau="steps",
    nir_conv_nodes=("IF",),
    requires="nir",
))
