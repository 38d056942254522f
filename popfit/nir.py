"""Export popfit networks to NIR, the Neuromorphic Intermediate Representation.

NIR (``pip install popfit[nir]``, nir 1.0.x) is the exchange format read by
neuromorphic simulators and chips (snnTorch, Norse, Rockpool, Lava, Spyx,
SpiNNaker2, Speck, Xylo). `to_nir` writes a popfit model as a chain of NIR
nodes that describe the same neurons in continuous time::

    Input -> Affine -> LIF -> Affine -> CubaLIF -> ... -> Affine -> LI -> Output

The ``nir`` package is imported here, on first use, so ``import popfit``
never needs it. See `to_nir` for the mapping and docs/nir.md for which
consumers run the graphs.
"""

import numbers

import numpy as np

from ._validation import public
from .exceptions import PopfitTypeError, PopfitValueError

#: Time step (s) that snnTorch 1.0's NIR importer hard-codes.
SNNTORCH_DT = 1e-4
#: Consumers that `to_nir` can adapt a graph for, with their time step (s).
CONSUMERS = {"snntorch": SNNTORCH_DT}
READOUTS = ("LI", "affine")
#: Synapse (s) between layers and of the read-out when the object has none.
DEFAULT_SYNAPSE = 0.005


def import_nir(where="to_nir"):
    """The ``nir`` module, or an ImportError that names the extra to install."""
    try:
        import nir
    except ImportError as err:
        raise ImportError(
            f"{where} needs the 'nir' package (the Neuromorphic Intermediate "
            "Representation), which is not installed; install it with "
            "pip install 'popfit[nir]' (or pip install nir)"
        ) from err
    return nir


class _Stage:
    """One population of the chain: its fit, per-neuron gain and bias, and the
    block matrices that map unit inputs to neurons (encoder signs, no gain) and
    neurons to unit outputs (decoders)."""

    def __init__(self, fit, n_units, gain, bias, encoders_block, decoders_block):
        self.fit = fit
        self.n_units = n_units
        self.gain = np.asarray(gain, dtype=float)
        self.bias = np.asarray(bias, dtype=float)
        self.encoders_block = _dense(encoders_block)  # (n_neurons, n_units)
        self.decoders_block = _dense(decoders_block)  # (n_units, n_neurons)

    @property
    def n_neurons(self):
        return len(self.gain)

    def weights_in(self, transform):
        """Affine weight into the neurons: ``diag(gain) E transform`` (gain folded in,
        so the neuron's ``r = 1``)."""
        return self.gain[:, None] * (self.encoders_block @ transform)


def _dense(matrix):
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix, dtype=float)


def _layer_stage(layer):
    ens = layer.ensemble
    return _Stage(layer.fit, layer.n_units, ens.gain, ens.bias, layer.encoders_block(),
                  layer.decoders_block())


def _network_links(model):
    """``(stages, links, out_link)`` read from ``model.network``'s connections.

    For a model converted with ``weight_bits``: `popfit.loihi.quantize_network`
    rounded ``gain * weights`` of every connection into a layer's neurons per
    neuron, which no unit-level weight matrix can express, so each link here is
    neuron level (the stages' encoders are the identity): the input link is the
    (quantized) encoders times the first layer's weights, link ``k`` the
    connection from layer ``k - 1``'s neurons to layer ``k``'s.
    """
    import nengo

    from .network import _transform_matrix

    def ends_at(obj, ensemble):
        return isinstance(obj, nengo.ensemble.Neurons) and obj.ensemble is ensemble

    net = model.network
    stages, links = [], []
    for k, layer in enumerate(net.layers):
        conns = [c for c in net.all_connections if ends_at(c.post_obj, layer.ensemble)]
        pre = None if k == 0 else net.layers[k - 1].ensemble
        if len(conns) != 1 or (pre is not None and not ends_at(conns[0].pre_obj, pre)):
            raise PopfitValueError(
                f"the model's layer {k} has {len(conns)} incoming connections (expected "
                f"one, from {'its input' if pre is None else f'layer {k - 1}'}): the "
                "network was changed after convert; export the model convert returned")
        w = _dense(_transform_matrix(conns[0].transform, f"layer {k}'s input weights"))
        if k == 0:
            if layer.hardware == "loihi":  # the input is sent as x / scale (PopulationLayer.input)
                w = w / layer.input_scale[None, :]
            w = w @ model.spec.hidden[0].weights.T
        links.append(w)
        ens = layer.ensemble
        stages.append(_Stage(layer.fit, layer.n_units, ens.gain, ens.bias,
                             np.eye(layer.n_neurons), layer.decoders_block()))
    last = net.layers[-1].ensemble
    out = [c for c in net.all_connections
           if c.post_obj is net.output and ends_at(c.pre_obj, last)]
    if len(out) != 1:
        raise PopfitValueError(
            f"the model's output has {len(out)} connections from the last layer (expected "
            "one): the network was changed after convert; export the model convert returned")
    return stages, links, _dense(_transform_matrix(out[0].transform, "output weights"))


def _fold(stages, ts):
    """Unit-level transforms -> links: ``ts[k] @ decoders`` of stage k-1 for k >= 1."""
    return [ts[0]] + [t @ pre.decoders_block for pre, t in zip(stages[:-1], ts[1:])]


def _read_object(obj, transforms):
    """``(stages, links, out_link, out_bias, synapse, label)`` for ``obj``.

    ``links[0]`` maps the graph input to the first stage's unit inputs;
    ``links[k]`` (k >= 1) maps stage k-1's *neuron* activities to stage k's
    unit inputs (a transform with the decoders folded in, or a converted
    model's re-solved weights); ``out_link`` maps the last stage's neurons to
    the outputs.
    """
    from .conversion import ConvertedModel
    from .network import PopulationLayer, PopulationNeuron, _transform_matrix

    if transforms is not None and isinstance(obj, (ConvertedModel, PopulationNeuron)):
        raise PopfitValueError(
            f"transforms is only for a chain of PopulationLayers (got transforms with a "
            f"{type(obj).__name__}, which carries its own weights)")
    if isinstance(obj, ConvertedModel):
        spec = obj.spec
        weights, biases = obj.neuron_weights()  # neuron-level, decoders folded in
        if obj.weight_bits is None:
            stages = [_layer_stage(layer) for layer in obj.network.layers]
            links, out_link = [spec.hidden[0].weights.T] + weights[:-1], weights[-1]
        else:  # quantized per neuron: the weights the network runs
            stages, links, out_link = _network_links(obj)
        return (stages, links, out_link, np.asarray(biases[-1], dtype=float).copy(),
                obj.synapse, f"popfit.convert({spec.source})")
    if isinstance(obj, PopulationNeuron):
        fit = obj.fit
        stage = _Stage(fit, 1, fit.gain, fit.bias, fit.encoders[:, None],
                       fit.decoders[None, :])
        return [stage], [np.eye(1)], stage.decoders_block, np.zeros(1), None, obj.label
    if isinstance(obj, PopulationLayer):
        obj = [obj]
    if isinstance(obj, (list, tuple)) and obj and all(
            isinstance(layer, PopulationLayer) for layer in obj):
        layers = list(obj)
        n_links = len(layers) - 1
        if transforms is None:
            transforms = [None] * n_links
        want = (f"transforms must be a list of {n_links} matrices (or None entries "
                "for identity), one per link between consecutive layers")
        if not isinstance(transforms, (list, tuple)):
            raise PopfitTypeError(f"{want} (got {type(transforms).__name__})")
        if len(transforms) != n_links:
            raise PopfitValueError(f"{want} (got a list of {len(transforms)})")
        ts = [np.eye(layers[0].n_units)]
        for k, (pre, post, t) in enumerate(zip(layers[:-1], layers[1:], transforms)):
            shape = (post.n_units, pre.n_units)
            if t is None:
                if shape[0] != shape[1]:
                    raise PopfitValueError(
                        f"transforms[{k}] is None (identity) but layer {k} has "
                        f"{pre.n_units} units and layer {k + 1} has {post.n_units}; pass "
                        f"a matrix of shape {shape}")
                t = np.eye(shape[0])
            else:  # connect_to's check: finite real arrays, scipy sparse, nengo.Dense/Sparse
                t = _dense(_transform_matrix(t, f"transforms[{k}]"))
            if t.shape != shape:
                raise PopfitValueError(
                    f"transforms[{k}] must have shape {shape} (layer {k + 1} "
                    f"units, layer {k} units) (got shape {t.shape})")
            ts.append(t)
        last = layers[-1]
        label = " -> ".join(layer.label for layer in layers)
        stages = [_layer_stage(layer) for layer in layers]
        return (stages, _fold(stages, ts), stages[-1].decoders_block,
                np.zeros(last.n_units), None, label)
    raise PopfitTypeError(
        "obj must be a popfit.ConvertedModel, a PopulationNeuron, a "
        f"PopulationLayer or a non-empty list of PopulationLayers (got {obj!r:.100} of "
        f"type {type(obj).__name__})")


@public("nir_neuron_type")
def nir_neuron_type(consumer=None, tau_rc=0.02):
    """The nengo LIF type to fit populations meant for a NIR graph.

    NIR's LIF has no refractory period: in continuous time it is
    ``nengo.LIF(tau_rc, tau_ref=0)``. A consumer that steps the graph at a
    fixed ``dt`` and resets the membrane to 0 on the step it crosses threshold
    (snnTorch) loses the rest of that step: a neuron with constant input fires
    every ``ceil(T / dt)`` steps instead of every ``T`` seconds, on average
    half a step later, which is a refractory period of ``dt / 2``. For such a
    consumer this returns ``nengo.LIF(tau_rc, tau_ref=dt / 2)``, which
    `to_nir` accepts for that consumer (digits MLP in snnTorch, logits RMSE/std
    0.031 -> 0.027; see benchmarks/bench_nir.py).

    Parameters
    ----------
    consumer : {"snntorch"}, optional
        As in `to_nir`; None gives ``tau_ref = 0``.
    tau_rc : float
        Membrane time constant (s).

    Returns
    -------
    nengo.LIF
    """
    import nengo

    _check_choice(consumer, "consumer", tuple(CONSUMERS))
    tau_ref = 0.0 if consumer is None else CONSUMERS[consumer] / 2
    return nengo.LIF(tau_rc=tau_rc, tau_ref=tau_ref)


def _check_neuron_type(fit, k, drop_tau_ref, consumer):
    """``"LIF"`` or ``"IF"`` for the NIR node of this fit; refuses what NIR cannot express."""
    import nengo

    nt = fit.neuron_type
    if isinstance(nt, nengo.LIFRate):  # nengo.LIF too
        step = consumer is not None and np.isclose(nt.tau_ref, CONSUMERS[consumer] / 2,
                                                   rtol=1e-9, atol=0)
        if nt.tau_ref > 0 and not drop_tau_ref and not step:
            raise PopfitValueError(
                f"layer {k}'s fit uses {nt!r}, whose refractory period tau_ref = "
                f"{nt.tau_ref:g} s NIR cannot express (NIR's LIF has no refractory "
                "period): the graph's neurons would fire faster than the fit assumes "
                "(digits MLP in snnTorch: logits 60x further from the ANN's). Fit for NIR "
                "with neuron_type=nengo.LIF(tau_ref=0) (or popfit.nir.nir_neuron_type("
                "consumer)), e.g. popfit.convert(model, neuron_type=nengo.LIF(tau_ref=0)), "
                "or pass drop_tau_ref=True to export this fit anyway (tau_ref is kept in "
                "the node's metadata only)")
        return "LIF"
    if isinstance(nt, (nengo.RectifiedLinear, nengo.SpikingRectifiedLinear)):
        return "IF"
    raise PopfitValueError(  # pragma: no cover - fits only hold the types above
        f"layer {k}'s fit uses {nt!r}, which has no NIR node; export supports "
        "LIF, LIFRate, RectifiedLinear and SpikingRectifiedLinear fits")


def _check_finite_parameters(stages):
    """Refuse a fit or layer with NaN/inf gain, bias or decoders: they would be
    written into the graph's Affine nodes (as `PopulationLayer.connect_to`
    refuses them)."""
    for k, stage in enumerate(stages):
        for what in ("gain", "bias", "decoders"):
            values = np.asarray(getattr(stage.fit, what), dtype=float)
            bad = ~np.isfinite(values)
            if bad.any():
                raise PopfitValueError(
                    f"layer {k}'s fit {what} must be finite (got {int(bad.sum())} of "
                    f"{bad.size} non-finite, e.g. {float(values[bad].flat[0])!r}): the NIR "
                    "graph would carry them into its Affine weights; export a fit with finite "
                    "parameters (refit it, or check how it was built or loaded)")


def _affine(nir, node, weight, bias):
    """``nir.Affine(weight, bias)``, refusing entries that overflowed to inf."""
    for what, values in (("weight", weight), ("bias", bias)):
        bad = ~np.isfinite(values)
        if bad.any():
            raise PopfitValueError(
                f"the {what} of Affine node {node!r} overflows: {int(bad.sum())} of "
                f"{bad.size} entries are not finite (the transforms or the model's "
                "weights times the gains and decoders exceed the float range); scale "
                "the transforms or weights down")
    return nir.Affine(weight=weight, bias=bias)


def _check_choice(value, name, choices):
    if value is not None and value not in choices:
        raise PopfitValueError(
            f"{name} must be None or one of {', '.join(map(repr, choices))} "
            f"(got {value!r})")
    return value


def _check_synapse(synapse):
    if isinstance(synapse, bool) or not isinstance(synapse, numbers.Real) \
            or not np.isfinite(synapse) or synapse <= 0:
        raise PopfitValueError(
            f"synapse must be a time constant > 0 s (got {synapse!r})")
    return float(synapse)


@public("to_nir")
def to_nir(obj, *, synapse=None, transforms=None, readout=None, consumer=None,
           drop_tau_ref=False):
    """A popfit network as a NIR graph (`nir.NIRGraph`).

    The graph describes the exported nengo network in NIR's continuous-time
    terms: one neuron node per population layer, one ``Affine`` node per
    connection (gains, decoders and the model's weights folded into one matrix),
    the inter-layer synapse as a ``CubaLIF`` synaptic current and the read-out
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
    read-out filter (Lowpass, s)     LI(``tau = synapse``, ``r = 1``,
                                     ``v_leak = 0``)
    decoders (per spike of height    Affine ``weight`` (per unit-area spike:
    1/dt)                            the same numbers)
    RectifiedLinear /                IF(``r = 1``, ``v_threshold = 1``,
    SpikingRectifiedLinear           ``v_reset = 0``); a synapse into it is an
                                     LI(``tau = synapse``) node before the IF
    ``tau_ref``, ``min_voltage``     no field: NIR has no refractory period (see
                                     ``drop_tau_ref``)
    ===============================  ===========================================

    Units: time constants in seconds; neuron input currents in nengo's units
    (threshold 1), so an Affine node computes exactly the current ``J`` nengo
    feeds the neurons; the graph's output is the model's decoded output (before
    a classifier's output nonlinearity, which NIR has no node for: apply
    softmax etc. yourself). A neuron's ``gain`` and ``encoders``, the model's
    weights and the previous layer's decoders all multiply into one dense
    Affine weight of shape ``(n_neurons, n_inputs)``.

    NIR's neurons have no refractory period, so fits meant for NIR must be
    made for that neuron model: ``neuron_type=nengo.LIF(tau_ref=0)`` in
    `popfit.fit_activation` or `popfit.convert` (any ``max_rate`` then works:
    there is no ``1 / tau_ref`` cap). A fit with ``tau_ref > 0`` is refused,
    except ``tau_ref = dt / 2`` for a ``consumer`` stepping at ``dt`` (the
    whole-step correction of `nir_neuron_type`).

    Parameters
    ----------
    obj : ConvertedModel, PopulationNeuron, PopulationLayer or list of PopulationLayer
        What to export. A list of layers is a chain: layer ``k`` feeds layer
        ``k + 1`` neuron to neuron, as ``PopulationLayer.connect_to`` wires it;
        the graph input is the first layer's unit inputs, the output the last
        layer's decoded unit outputs.
    synapse : float, optional
        Time constant (s) of the inter-layer synapses and of the read-out
        filter. Default: the `ConvertedModel`'s ``synapse``, else 0.005
        (``connect_to``'s default).
    transforms : list of (array_like, scipy sparse, nengo.Dense/Sparse or None), optional
        Chains of layers only: ``transforms[k]`` of shape
        ``(layer[k+1].n_units, layer[k].n_units)`` maps layer ``k``'s outputs
        to layer ``k + 1``'s inputs: ``connect_to``'s ``transform``, checked
        and read as `PopulationLayer.connect_to` reads it (finite real
        values; a nengo transform with nengo's meaning of ``init``, not a
        Distribution); None is the identity.
    readout : {"LI", "affine"}, optional
        ``"LI"`` (default): the decoded output is filtered by an LI node with
        ``tau = synapse``, as nengo's probe of the converted output.
        ``"affine"``: the graph ends with the decoding Affine, whose output
        is the decoded spikes (``decoders * spikes``) and the output bias;
        filter or average it in the consumer.
    consumer : {"snntorch"}, optional
        Adapt the graph to a consumer that departs from NIR's semantics
        (docs/nir.md). ``"snntorch"`` (snnTorch 1.0, which fixes
        ``dt = 1e-4`` s): neurons get ``r = tau / dt`` (the Affine weights
        and biases into them are divided by ``r``, which leaves NIR's
        dynamics unchanged), Affine weights that carry spikes are multiplied
        by ``1 / dt`` (snnTorch counts a spike as 1 for one step, an area of
        ``dt``, where NIR's spike has unit area), and the read-out is
        ``"affine"`` (snnTorch has no LI node). The adapted graph is for
        snnTorch only: read by NIR's own semantics its spikes weigh
        ``1 / dt`` too much. RectifiedLinear fits are refused (snnTorch 1.0
        imports IF as a leaky neuron).
    drop_tau_ref : bool
        Export LIF fits with ``tau_ref > 0`` anyway, accepting that NIR's
        neurons fire faster than the fit assumes (``tau_ref`` is kept in the
        node metadata). Default False: such fits are refused.

    A `ConvertedModel` converted with ``weight_bits`` is exported with the
    quantized weights its network runs (read from its connections), not the
    float weights.

    Returns
    -------
    nir.NIRGraph
        Nodes ``input``, ``affine_0``, ``neurons_0`` (``synapse_k`` before an
        IF layer ``k > 0``), ``affine_1``, ``neurons_1``, ...,
        ``affine_out``, ``readout`` (``readout="LI"``), ``output``. The
        neuron nodes' ``metadata`` record the fit (target, domain, nengo
        neuron type, neurons per unit). Save it with ``nir.write(path, graph)``.

    Raises
    ------
    ImportError
        ``nir`` is not installed (``pip install 'popfit[nir]'``).
    popfit.PopfitValueError
        A fit NIR cannot express (``tau_ref > 0`` without ``drop_tau_ref``),
        a fit with non-finite parameters, a transform with non-finite values
        or the wrong shape, weights that overflow, or an invalid option.
    popfit.PopfitTypeError
        ``obj`` is not an exportable popfit object, or a transform is not
        real numbers (complex, strings) or not a matrix type `connect_to`
        takes.
    """
    nir = import_nir("to_nir")
    _check_choice(readout, "readout", READOUTS)
    _check_choice(consumer, "consumer", tuple(CONSUMERS))
    if not isinstance(drop_tau_ref, bool):
        raise PopfitTypeError("drop_tau_ref must be True or False (got "
                              f"{drop_tau_ref!r})")
    stages, links, out_link, out_bias, default_synapse, label = _read_object(obj, transforms)
    _check_finite_parameters(stages)
    if synapse is None:
        synapse = DEFAULT_SYNAPSE if default_synapse is None else default_synapse
    synapse = _check_synapse(synapse)
    kinds = [_check_neuron_type(stage.fit, k, drop_tau_ref, consumer)
             for k, stage in enumerate(stages)]
    dt = None
    if consumer is not None:
        dt = CONSUMERS[consumer]
        if readout == "LI":
            raise PopfitValueError(
                f"readout='LI' with consumer={consumer!r}: snnTorch 1.0 has no LI "
                "node; use readout='affine' (the default for this consumer) and average "
                "or filter the output in snnTorch")
        if "IF" in kinds:
            raise PopfitValueError(
                f"consumer={consumer!r} cannot run RectifiedLinear fits: snnTorch "
                "1.0 imports NIR's IF node as a leaky neuron (beta = 0.9). Fit with "
                "neuron_type=nengo.LIF(tau_ref=0) instead, or export without consumer")
        readout = "affine"
    readout = readout or "LI"

    def arr(value, n):
        return np.full(n, float(value))

    nodes = {"input": nir.Input(input_type=np.array([links[0].shape[1]]))}
    edges = []
    prev = "input"
    for k, (stage, link, kind) in enumerate(zip(stages, links, kinds)):
        n = stage.n_neurons
        fit = stage.fit
        weight = stage.weights_in(link)
        bias = stage.bias.copy()
        meta = _metadata(fit, stage, k, synapse if k > 0 else None)
        if kind == "LIF":
            tau = float(fit.neuron_type.tau_rc)
            r = 1.0 if dt is None else tau / dt
            weight, bias = weight / r, bias / r
            if k == 0:
                neuron = nir.LIF(tau=arr(tau, n), r=arr(r, n), v_leak=arr(0, n),
                                 v_threshold=arr(1, n), v_reset=arr(0, n), metadata=meta)
            else:
                neuron = nir.CubaLIF(tau_syn=arr(synapse, n), tau_mem=arr(tau, n),
                                     r=arr(r, n), v_leak=arr(0, n), v_threshold=arr(1, n),
                                     v_reset=arr(0, n), w_in=arr(1, n), metadata=meta)
        else:
            neuron = nir.IF(r=arr(1, n), v_threshold=arr(1, n), v_reset=arr(0, n),
                            metadata=meta)
        if k > 0 and dt is not None:
            weight = weight / dt  # spikes of area dt in the consumer
        nodes[f"affine_{k}"] = _affine(nir, f"affine_{k}", weight, bias)
        edges.append((prev, f"affine_{k}"))
        prev = f"affine_{k}"
        if kind == "IF" and k > 0:
            nodes[f"synapse_{k}"] = nir.LI(tau=arr(synapse, n), r=arr(1, n),
                                           v_leak=arr(0, n))
            edges.append((prev, f"synapse_{k}"))
            prev = f"synapse_{k}"
        nodes[f"neurons_{k}"] = neuron
        edges.append((prev, f"neurons_{k}"))
        prev = f"neurons_{k}"
    weight = np.array(out_link, dtype=float)
    if dt is not None:
        weight = weight / dt
    nodes["affine_out"] = _affine(nir, "affine_out", weight,
                                  np.asarray(out_bias, dtype=float))
    edges.append((prev, "affine_out"))
    prev = "affine_out"
    n_out = weight.shape[0]
    if readout == "LI":
        nodes["readout"] = nir.LI(tau=arr(synapse, n_out), r=arr(1, n_out),
                                  v_leak=arr(0, n_out))
        edges.append((prev, "readout"))
        prev = "readout"
    nodes["output"] = nir.Output(output_type=np.array([n_out]))
    edges.append((prev, "output"))
    metadata = {"source": "popfit", "label": str(label), "synapse": synapse,
                "readout": readout, "consumer": consumer or "none",
                "consumer_dt": dt if dt is not None else 0.0}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _metadata(fit, stage, k, synapse):
    """JSON/HDF5-safe description of one population layer, for a neuron node."""
    nt = fit.neuron_type
    return {
        "popfit_layer": k,
        "target": str(fit.target.name),
        "domain": np.array(fit.domain, dtype=float),
        "neuron_type": repr(nt),
        "tau_ref": float(getattr(nt, "tau_ref", 0.0)),
        "n_units": int(stage.n_units),
        "neurons_per_unit": int(fit.n_neurons),
        "input_synapse": 0.0 if synapse is None else float(synapse),
    }


def graphs_equal(a, b):
    """True when two NIR graphs have the same nodes, parameters, edges and metadata.

    NIR nodes compare by identity, so `nir.read(nir.write(g))` is never ``==``
    ``g``; this compares their contents (arrays exactly, edges as sets).
    """
    return _same(a.to_dict(), b.to_dict())


def _same(x, y):
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(x[key], y[key]) for key in x)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)) and len(x) == len(y) \
            and all(isinstance(e, (list, tuple)) and len(e) == 2 for e in list(x) + list(y)):
        return {tuple(map(str, e)) for e in x} == {tuple(map(str, e)) for e in y}
    if isinstance(x, (bytes, str)) or isinstance(y, (bytes, str)):
        decode = lambda v: v.decode() if isinstance(v, bytes) else v  # noqa: E731
        return decode(x) == decode(y)
    try:
        xa, ya = np.asarray(x), np.asarray(y)
    except Exception:  # pragma: no cover - only arrays, numbers and strings occur
        return x == y
    return xa.shape == ya.shape and np.array_equal(xa, ya)
