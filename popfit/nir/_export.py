"""`to_nir`: popfit populations written as NIR nodes for a NIR platform."""

import numpy as np

from .._optional import import_optional
from .._validation import check_bool, check_synapse, public
from ..conversion import ConvertedModel
from ..exceptions import PopfitValueError
from ..platforms import READOUTS, get_platform, registered_platforms
from ._graph import _Writer
from ._stages import _check_finite_parameters, _read_object

#: Synapse (s) between layers and of the read-out when the object has none.
DEFAULT_CONNECTION_SYNAPSE = 0.005


def _nir_platform(platform):
    """``platform`` resolved with `get_platform`; refused unless it exports NIR graphs."""
    resolved = get_platform(platform)
    if resolved.export != "nir":
        what = repr(platform) if isinstance(platform, str) else \
            f"a Platform named {resolved.name!r}"
        names = [name for name in registered_platforms()
                 if get_platform(name).export == "nir"]
        raise PopfitValueError(
            f"platform must export a NIR graph: one of {', '.join(map(repr, names))} or a "
            f"popfit.platforms.Platform with export='nir' (got {what}, which "
            f"exports a {resolved.export} network; {_about(resolved)}); export to it with "
            "popfit.convert, or register a NIR platform with "
            "popfit.platforms.register_platform")
    return resolved


def _about(platform):
    """``"'snntorch' is snnTorch 1.0's NIR import (...)"``, for messages."""
    return f"{platform.name!r} is {platform.description}"


def _check_readout(readout, platform):
    """The read-out node to write: ``readout``, else the platform's default."""
    if readout is not None and readout not in READOUTS:
        raise PopfitValueError(
            f"readout must be None or one of {', '.join(map(repr, READOUTS))} "
            f"(got {readout!r})")
    default = platform.readout or platform.readouts[0]
    if readout is None:
        return default
    if readout not in platform.readouts:
        hint = " and average or filter the output in the consumer" \
            if default == "affine" else ""
        raise PopfitValueError(
            f"readout must be one of the read-outs platform {platform.name!r} runs, "
            f"{', '.join(map(repr, platform.readouts))} (got {readout!r}; "
            f"{_about(platform)}); use readout={default!r} (this platform's default)"
            f"{hint}, or export for another platform")
    return readout


#: How `to_nir` writes a convolutional layer's weights.
CONVOLUTIONS = ("conv", "affine")


def _check_convolutions(convolutions, platform):
    """``convolutions``, else the platform's: ``"conv"`` where it imports Conv nodes."""
    if convolutions is None:
        return "conv" if platform.nir_conv_nodes else "affine"
    if not isinstance(convolutions, str) or convolutions not in CONVOLUTIONS:
        raise PopfitValueError(
            f"convolutions must be None or one of {', '.join(map(repr, CONVOLUTIONS))} "
            f"(got {convolutions!r})")
    if convolutions == "conv" and not platform.nir_conv_nodes:
        raise PopfitValueError(
            f"convolutions='conv' writes Conv1d/Conv2d and Flatten nodes, which platform "
            f"{platform.name!r} does not import ({_about(platform)}); use "
            "convolutions='affine' (its default: every convolution as a dense Affine "
            "node), or export for another platform")
    return convolutions


def _neuron_node(fit, k, platform, drop_tau_ref):
    """``"LIF"`` or ``"IF"`` for the NIR node of this fit; refuses what ``platform``
    cannot run as the fit assumes.

    A LIF fit's ``tau_ref`` must be 0 (NIR's LIF has none) or the one
    ``platform.fit_neuron_type()`` has (a whole-step consumer's correction).
    """
    import nengo

    nt = fit.neuron_type
    fit_type = platform.fit_neuron_type()
    fix = (f"popfit.get_platform({platform.name!r}).fit_neuron_type() = {fit_type!r} "
           f"(the default of popfit.convert(model, platform={platform.name!r}) and "
           f"popfit.fit_activation(..., platform={platform.name!r}))")
    if isinstance(nt, nengo.LIFRate):  # nengo.LIF too
        kind = "LIF"
        accepted = float(getattr(fit_type, "tau_ref", 0.0))
        if nt.tau_ref > 0 and not drop_tau_ref and not np.isclose(
                nt.tau_ref, accepted, rtol=1e-9, atol=0):
            raise PopfitValueError(
                f"layer {k}'s fit uses {nt!r}, with refractory period tau_ref = "
                f"{nt.tau_ref:g} s, which platform {platform.name!r} does not run (NIR's LIF "
                f"has no refractory period; popfit fits this platform with tau_ref = "
                f"{accepted:g} s; {_about(platform)}): the graph's neurons "
                "would fire faster than the fit assumes (benchmarks/bench_nir.py measures "
                f"what that costs). Fit for this platform with neuron_type={fix}, "
                "or pass drop_tau_ref=True to export this fit anyway (tau_ref is kept in "
                "the node's metadata only)")
    elif isinstance(nt, (nengo.RectifiedLinear, nengo.SpikingRectifiedLinear)):
        kind = "IF"
    else:  # pragma: no cover - fits only hold the types above
        raise PopfitValueError(
            f"layer {k}'s fit uses {nt!r}, which has no NIR node; export supports "
            "LIF, LIFRate, RectifiedLinear and SpikingRectifiedLinear fits")
    if kind not in platform.neuron_nodes:
        raise PopfitValueError(
            f"layer {k}'s fit uses {nt!r}, which is NIR's {kind} node, and platform "
            f"{platform.name!r} runs only the neuron nodes "
            f"{', '.join(map(repr, platform.neuron_nodes))} as NIR defines them "
            f"({_about(platform)}). Fit this layer with neuron_type={fix}, or export for "
            "another platform")
    if kind == "IF" and k > 0 and "LI" not in platform.readouts:
        raise PopfitValueError(
            f"layer {k}'s fit uses {nt!r}, whose input synapse is written as an LI node, "
            f"which platform {platform.name!r} does not run ({_about(platform)}); fit "
            f"this layer with neuron_type={fix}, or export for another platform")
    return kind


@public
def to_nir(obj, *, platform=None, connection_synapse=None, transforms=None, readout=None,
           drop_tau_ref=False, convolutions=None):
    """A popfit network as a NIR graph (`nir.NIRGraph`) for a NIR platform.

    The graph describes the exported nengo network in NIR's continuous-time
    terms: one neuron node per population layer, one ``Affine`` node per
    connection (gains, decoders and the model's weights folded into one matrix),
    the connection synapse as a ``CubaLIF`` synaptic current and the read-out
    filter as an ``LI`` node::

        Input(n_in) -> Affine -> LIF -> Affine -> CubaLIF -> ... -> Affine -> LI -> Output

    ===============================  ===========================================
    nengo / popfit                   NIR
    ===============================  ===========================================
    LIF ``tau_rc`` (s)               LIF ``tau`` / CubaLIF ``tau_mem`` (s)
    threshold 1, reset to 0          ``v_threshold = 1``, ``v_reset = 0``
    neuron ``gain``                  folded into the Affine ``weight``; ``r = 1``
    neuron ``bias`` (with the        Affine ``bias`` (``v_leak = 0``; ``v_leak``
    model's layer bias folded in)    is equivalent in the spec but importers
                                     reject it)
    connection synapse (Lowpass, s)  CubaLIF ``tau_syn``, ``w_in = 1``
    read-out filter (Lowpass, s)     LI(``tau = connection_synapse``, ``r = 1``,
                                     ``v_leak = 0``)
    decoders (per spike of height    Affine ``weight`` (per unit-area spike:
    1/dt)                            the same numbers)
    RectifiedLinear /                IF(``r = 1``, ``v_threshold = 1``,
    SpikingRectifiedLinear           ``v_reset = 0``); a synapse into it is an
                                     LI(``tau = connection_synapse``) node
                                     before the IF
    ``tau_ref``, ``min_voltage``     no field: NIR has no refractory period (see
                                     ``drop_tau_ref``)
    ===============================  ===========================================

    Units: time constants in seconds; neuron input currents in nengo's units
    (threshold 1), so an Affine node computes exactly the current ``J`` nengo
    feeds the neurons; the graph's output is the model's decoded output (before
    a classifier's output nonlinearity, which NIR has no node for: apply
    softmax etc. yourself). A neuron's ``gain`` and ``encoders``, the model's
    weights and the previous layer's decoders all multiply into one
    Affine weight of shape ``(n_neurons, n_inputs)``.

    **Convolutions.** A converted model's convolutional layer (the
    convolution with the pooling, padding and BatchNormalization folded into
    it) is, neuron to neuron, a convolution again: a population of units of
    shape ``(H, W, C)`` with N neurons per unit is a tensor of ``(H, W, C * N)``
    neurons (neuron ``u * N + n`` of unit ``u``, channels last). Where that
    matrix is a convolution (one kernel, stride and symmetric zero padding per
    axis, checked by rebuilding it from the kernel: "same" average pooling of
    an odd size, for instance, is none), the link is written as NIR's
    ``Conv2d`` (``Conv1d`` for one spatial axis) in NIR's channels-first
    layout, the neuron nodes then have shape ``(C * N, H, W)`` and a dense
    layer after them reads them through a ``Flatten`` node
    (``start_dim = -3``: the same in NIR's unbatched shapes and in
    consumers that apply it to a batch), its columns permuted to the
    channels-first order. A convolution into the first layer makes the graph
    input channels first too, shape ``(C, H, W)``: pass
    ``np.moveaxis(X, -1, 1)`` of Keras's ``(n, H, W, C)`` samples. Links that
    are no convolution, and every link into a layer fed by one, stay Affine
    (as all do with ``convolutions="affine"``).

    **Skip connections** (a converted model's ``Add``, ``Concatenate``, ...
    merges) are extra Affine (or Conv) nodes from the source population (or
    the graph input) into the receiving neuron node, which NIR sums with its
    main input; links into the output meet in an identity Affine
    ``affine_out`` that holds the output bias. A skip from the graph input
    into a later layer passes that layer's synapse (CubaLIF/LI), which nengo's
    host connection does not: the same steady state, a slower onset.

    Everything that depends on the consumer comes from the platform
    (`popfit.platforms.Platform`), so a new consumer plugs in with
    `popfit.platforms.register_platform`, without changes here:

    - ``nir_dt``: None (platform ``"nir"``) keeps NIR's semantics (unit-area
      spikes, ``r = 1``). A consumer that steps at a fixed ``nir_dt`` and
      counts a spike as 1 for one step (an area of ``nir_dt``; platform
      ``"snntorch"``) gets neurons with ``r = tau / nir_dt`` (the Affine
      weights and biases into them divided by ``r``, which leaves NIR's
      dynamics unchanged) and spike-carrying Affine weights multiplied by
      ``1 / nir_dt``. Such a graph is for that consumer only: read by NIR's
      own semantics its spikes weigh ``1 / nir_dt`` too much.
    - ``readout`` / ``readouts``: the default read-out node and the ones the
      consumer runs (snnTorch 1.0 has no LI node).
    - ``neuron_nodes``: the neuron nodes the consumer runs as NIR defines them
      (snnTorch 1.0 imports IF as a leaky neuron, so RectifiedLinear fits are
      refused for it).
    - ``nir_r``, ``nir_input``, ``nir_tau``, ``nir_lif_node``: what ``r`` holds
      (``tau / nir_dt`` for snnTorch, 1 for Norse and sinabs, ``tau / nir_dt - 1``
      for Rockpool, which reads its dt from it), whether the Affine weights
      into a node hold NIR's current or the consumer's per-step increment
      (Rockpool, sinabs), the unit of time constants (sinabs: steps), and the
      node of a first LIF layer (Rockpool cannot import ``LIF``: ``CubaLIF``
      with ``tau_syn = nir_dt``). Built in: ``"norse"``, ``"rockpool"``,
      ``"sinabs"`` (docs/nir.md's table says what each accepts).
    - ``fit_neuron_type()``: the neuron type fits are made for. NIR's neurons
      have no refractory period, so a LIF fit must have ``tau_ref = 0`` or the
      platform's ``fit_neuron_type().tau_ref`` (for a consumer that resets on
      the step a neuron crosses threshold, the half step it loses:
      `popfit.wholestep.whole_step_tau_ref`); any other ``tau_ref > 0`` is
      refused unless ``drop_tau_ref``. Fit with
      ``platform=name`` in `popfit.fit_activation` or `popfit.convert`
      (which fit ``popfit.get_platform(name).fit_neuron_type()``; with
      ``tau_ref = 0`` any ``max_rate`` works: there is no ``1 / tau_ref`` cap).

    Parameters
    ----------
    obj : ConvertedModel, PopulationNeuron, PopulationLayer or list of PopulationLayer
        What to export. A list of layers is a chain: layer ``k`` feeds layer
        ``k + 1`` neuron to neuron, as ``PopulationLayer.connect_to`` wires it;
        the graph input is the first layer's unit inputs, the output the last
        layer's decoded unit outputs.
    platform : str or popfit.platforms.Platform, optional
        Where the graph runs: a registered name or a `Platform`, resolved with
        `popfit.get_platform`; it must have ``export == "nir"`` (built in:
        ``"nir"``, NIR's continuous-time semantics, ``"snntorch"``,
        ``"norse"``, ``"rockpool"`` and ``"sinabs"``, those consumers' NIR
        imports). Default: a `ConvertedModel`'s own
        platform when it exports NIR (a model converted with
        ``platform="snntorch"`` exports for snnTorch), else ``"nir"``.
    connection_synapse : float, optional
        Time constant (s) of the synapses between layers and of the read-out
        filter. Default: the `ConvertedModel`'s connection synapse, else 0.005
        (``connect_to``'s default). Not the ``synapse`` a fit's noise model
        assumes.
    transforms : list of (array_like, scipy sparse, nengo.Dense/Sparse or None), optional
        Chains of layers only: ``transforms[k]`` of shape
        ``(layer[k+1].n_units, layer[k].n_units)`` maps layer ``k``'s outputs
        to layer ``k + 1``'s inputs: ``connect_to``'s ``transform``, checked
        and read as `PopulationLayer.connect_to` reads it (finite real
        values; a nengo transform with nengo's meaning of ``init``, not a
        Distribution); None is the identity.
    readout : {"LI", "affine"}, optional
        ``"LI"``: the decoded output is filtered by an LI node with
        ``tau = connection_synapse``, as nengo's probe of the converted
        output. ``"affine"``: the graph ends with the decoding Affine, whose
        output is the decoded spikes (``decoders * spikes``) and the output
        bias; filter or average it in the consumer. Default: the platform's
        ``readout``; one the platform does not run is refused.
    drop_tau_ref : bool
        Export LIF fits with a ``tau_ref`` the platform does not run anyway,
        accepting that the graph's neurons fire faster than the fit assumes
        (``tau_ref`` is kept in the node metadata). Default False: such fits
        are refused.
    convolutions : {"conv", "affine"}, optional
        ``"conv"``: convolutional links as ``Conv1d``/``Conv2d`` nodes (see
        above) where the platform's ``nir_conv_nodes`` allow (snnTorch,
        Norse: every layer; sinabs: IF layers without a synapse node, i.e.
        the first; Rockpool: none). ``"affine"``: every link a dense Affine
        node (the matrix grows as ``(H * W * C * N)**2``). Default: ``"conv"``
        if the platform imports Conv nodes, else ``"affine"``;
        ``"conv"`` for one that does not is refused.

    A `ConvertedModel` converted with ``weight_bits`` is exported with the
    quantized weights its network runs (read from its connections), not the
    float weights.

    Returns
    -------
    nir.NIRGraph
        Nodes ``input``, ``affine_0``, ``neurons_0`` (``synapse_k`` before an
        IF layer ``k > 0``), ``affine_1``, ``neurons_1``, ...,
        ``affine_out``, ``readout`` (``readout="LI"``), ``output``; a
        convolution is ``conv_k`` instead of ``affine_k``, a skip from layer
        ``s`` (or the input) ``affine_k_from_s`` (``affine_k_from_input``),
        a Flatten of layer ``k`` ``flatten_k``. The
        neuron nodes' ``metadata`` record the fit (target, domain, nengo
        neuron type, neurons per unit); the graph's record the platform's
        name and ``nir_dt`` (0 for None). Save it with ``nir.write(path, graph)``.

    Raises
    ------
    ImportError
        ``nir`` is not installed (``pip install 'popfit[nir]'``).
    popfit.PopfitValueError
        A platform that does not export NIR, a fit the platform cannot run as
        fitted (a ``tau_ref`` it does not have without ``drop_tau_ref``, a
        neuron node it does not run), a read-out it does not run, a fit with
        non-finite parameters, a transform with non-finite values or the wrong
        shape, weights that overflow, or an invalid option.
    popfit.PopfitTypeError
        ``obj`` is not an exportable popfit object, ``platform`` is neither a
        name nor a `Platform`, or a transform is not real numbers (complex,
        strings) or not a matrix type `connect_to` takes.
    """
    nir = import_optional("nir")
    if platform is None:
        own = obj.platform if isinstance(obj, ConvertedModel) else None
        platform = own if own is not None and own.export == "nir" else "nir"
    platform = _nir_platform(platform)
    readout = _check_readout(readout, platform)
    drop_tau_ref = check_bool(drop_tau_ref, "drop_tau_ref")
    convolutions = _check_convolutions(convolutions, platform)
    read = _read_object(obj, transforms)
    _check_finite_parameters(read.stages)
    default_synapse = read.connection_synapse
    if connection_synapse is None:
        connection_synapse = DEFAULT_CONNECTION_SYNAPSE if default_synapse is None \
            else default_synapse
    synapse = check_synapse(connection_synapse, "connection_synapse", allow_none=False)
    kinds = [_neuron_node(stage.fit, k, platform, drop_tau_ref)
             for k, stage in enumerate(read.stages)]
    dt = platform.nir_dt
    nodes, edges = _Writer(nir, read, kinds, platform, synapse, readout,
                           convolutions == "conv").write()
    metadata = {"source": "popfit", "label": str(read.label), "connection_synapse": synapse,
                "readout": readout, "platform": platform.name,
                "nir_dt": dt if dt is not None else 0.0}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)
