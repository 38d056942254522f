"""How a popfit network maps onto Loihi (nengo-loihi 1.1's emulator or chip).

nengo-loihi splits a network into chip and host parts: `chip_mapping` counts
the neurons, the blocks nengo-loihi splits them into and what each block
uses of a core (`popfit.loihi_blocks` models the split and the limits), what
the host sends and reads, and whether nengo-loihi will build the network at
all (it takes no ``Sparse`` transform between host and chip, and no block
over a core's limits); `set_block_shapes` gives nengo-loihi block sizes that
fit; `report_lines` is the ``[[loihi]]`` section of a converted model's report.
The rest of popfit's Loihi support lives with its concept: whole-step
neurons in `popfit.wholestep` and `popfit.fit.whole_step`, 8-bit weights in
`popfit.conversion.quantize`, the platform in `popfit.platforms` (see
docs/loihi.md). Only `set_block_shapes` imports nengo-loihi.
"""

import importlib.util

import nengo

from ._optional import import_optional
from ._validation import public
from .exceptions import PopfitTypeError
from .graph import base_object, population_layers
from .loihi_blocks import (LIMITS, MAX_COMPARTMENTS, MAX_IN_AXONS, MAX_OUT_AXONS,
                           MAX_SYNAPSE_BITS, Blocks)
from .network import PopulationNeuron
from .platforms import LOIHI
from .wholestep import is_whole_step

# --------------------------------------------------------------------- mapping
#: Transforms nengo-loihi 1.1 builds on connections between the host and the
#: chip (``build_host_to_chip`` / ``build_chip_to_host``).
HOST_CHIP_TRANSFORMS = ("Dense", "NoTransform")


def _on_chip(obj):
    """True for what nengo-loihi puts on the chip by default: spiking Ensembles."""
    return isinstance(obj, nengo.Ensemble) and not isinstance(obj.neuron_type, nengo.Direct)


def build_problems(network, labels=None):
    """Connections of ``network`` nengo-loihi 1.1 refuses to build, each with the fix.

    nengo-loihi builds only Dense (or no) transforms on connections between
    a host object (a Node) and the chip (an Ensemble or its neurons);
    popfit's default layers take their input through a Sparse transform
    (fast in nengo's simulator). ``labels`` maps ``id(ensemble)`` to the
    label of the popfit layer or population it belongs to.
    """
    labels = labels or {}
    problems = []
    for c in network.all_connections:
        pre, post = base_object(c.pre_obj), base_object(c.post_obj)
        if _on_chip(pre) == _on_chip(post):
            continue
        kind = type(c.transform).__name__
        if kind in HOST_CHIP_TRANSFORMS:
            continue
        ens = post if _on_chip(post) else pre
        where = "host to chip" if _on_chip(post) else "chip to host"
        owner = labels.get(id(ens))
        owner = f" (of {owner!r})" if owner else ""
        problems.append(
            f"{c}{owner} has a {kind} transform, {where}: nengo-loihi builds only "
            f"{' or '.join(HOST_CHIP_TRANSFORMS)} transforms between host and chip; build "
            "the network with convert(..., platform=\"loihi\") (or "
            "PopulationLayer(..., platform=\"loihi\"))")
    return problems


@public
def chip_mapping(network):
    """How a network maps onto Loihi, and whether nengo-loihi 1.1 will build it.

    Models nengo-loihi's build without importing it (`popfit.loihi_blocks`):
    each on-chip Ensemble (spiking, not ``on_chip=False``) becomes blocks of
    at most 1,024 compartments, split as nengo-loihi splits them (its own
    sequential split, counting compartments, input axons, output axons and
    synapse memory, or the ``block_shape`` in the config of the network that
    holds the ensemble), and every block must then fit a core: at most
    4,096 input axons, 4,096 output axons (a neuron reaching a target split
    into k blocks takes up to k) and 1,048,576 bits of synapse memory. A
    network over a limit is reported with the layer, the limit and the
    excess; `set_block_shapes` finds block sizes that fit. Also refused:
    Sparse transforms between host and chip (`build_problems`, as in the
    default ``convert()`` network). tests/loihi checks the prediction against
    nengo-loihi's own build, both ways.

    Parameters
    ----------
    network : nengo.Network
        E.g. ``ConvertedModel.network``, a `popfit.PopulationLayer`, or a
        network containing them.

    Returns
    -------
    dict
        ``ensembles`` (one row per on-chip Ensemble: ``label``, ``neurons``,
        ``blocks``, ``input_axons`` before splitting, and ``largest``: the
        most any of its blocks uses of each resource), ``neurons``,
        ``blocks``, ``host_inputs`` (values encoded on the host and sent to
        the chip), ``host_outputs`` (values read from probed spikes),
        ``builds`` (False if nengo-loihi will refuse the network),
        ``problems`` (one message per refused connection or resource over a
        core's limit, naming it, the excess and the fix) and ``unmodelled``
        (connections the model leaves out; nengo-loihi may add blocks for
        them).
    """
    if not isinstance(network, nengo.Network):
        raise PopfitTypeError(
            f"network must be a nengo.Network (got {type(network).__name__}): e.g. "
            "ConvertedModel.network, a PopulationLayer or a PopulationNeuron")
    labels = _labels(network)
    model = Blocks(network, labels)
    blocks = model.evaluate()
    rows = []
    for ens in model.ensembles:
        rows.append({"label": model.labels[ens], "neurons": ens.n_neurons,
                     "blocks": len(blocks[ens]),
                     "input_axons": sum(s.n_axons for s in model.synapses[ens]),
                     "largest": {name: max(b[name] for b in blocks[ens])
                                 for name, _ in LIMITS}})
    problems = build_problems(network, labels) + limit_problems(model, blocks)
    return {"ensembles": rows, "neurons": sum(r["neurons"] for r in rows),
            "blocks": sum(r["blocks"] for r in rows), "host_inputs": model.host_inputs,
            "host_outputs": model.host_outputs, "builds": not problems,
            "problems": problems, "unmodelled": model.unmodelled}


def _labels(network):
    """``{id(ensemble): label}`` of the popfit layers and populations in ``network``."""
    pops = [net for net in network.all_networks if isinstance(net, PopulationNeuron)]
    if isinstance(network, PopulationNeuron):
        pops.append(network)
    return {id(obj.ensemble): obj.label for obj in population_layers(network) + pops}


def limit_problems(model, blocks):
    """One message per ensemble and resource over a core's limit (its fullest block)."""
    problems = []
    for ens in model.ensembles:
        rows = blocks[ens]
        for name, limit in LIMITS:
            at = max(range(len(rows)), key=lambda b: rows[b][name])
            worst = rows[at]
            if worst[name] <= limit:
                continue
            over = sum(b[name] > limit for b in rows)
            idx = worst["indices"]
            why = ""
            if name == "output axons":
                targets = [f"{model.labels[post]!r} into {len(blocks[post])} blocks"
                           for _, post in model.outputs[ens] if len(blocks[post]) > 1]
                if targets:
                    why = (" (a neuron takes one output axon per block it reaches: "
                           f"nengo-loihi splits {', '.join(targets)})")
            problems.append(
                f"{model.labels[ens]}: {over} of its {len(rows)} block(s) exceed a core's "
                f"{name}: block {at} (neurons {idx.min()}..{idx.max()}) needs "
                f"{worst[name]:,} (max {limit:,}, {worst[name] - limit:,} over){why}; give "
                "nengo-loihi smaller blocks with popfit.loihi.set_block_shapes(network) "
                "(nengo_loihi.BlockShape), or use fewer neurons per unit")
    return problems


@public
def set_block_shapes(network):
    """Give nengo-loihi block shapes under which every block of ``network`` fits a core.

    Searches sequential block sizes (`popfit.loihi_blocks.Blocks.plan`):
    from nengo-loihi's own split, an ensemble with a block over a limit is
    split further, in proportion to the excess, until every block fits; then
    sets ``nengo_loihi.BlockShape((size,), (n_neurons,))`` as the
    ``block_shape`` of each ensemble whose split differs from nengo-loihi's
    default (in the config of the network that holds it, where nengo-loihi
    reads it; ``nengo_loihi.add_params`` first). Ensembles that already have
    a block shape keep it. Needs nengo-loihi (``popfit[loihi]``).
    ``convert(..., platform="loihi")`` calls it on the networks it builds
    and on the batched prediction's networks.

    Parameters
    ----------
    network : nengo.Network

    Returns
    -------
    dict
        `chip_mapping` of the network with its new block shapes.
    """
    if not isinstance(network, nengo.Network):
        raise PopfitTypeError(
            f"network must be a nengo.Network (got {type(network).__name__}): e.g. "
            "ConvertedModel.network")
    _set_block_shapes(network)
    return chip_mapping(network)


def _set_block_shapes(network):
    nengo_loihi = import_optional("nengo_loihi")
    model = Blocks(network, _labels(network))
    sizes, _ = model.plan()
    for ens, size in sizes.items():
        parent = model.parent[ens]
        nengo_loihi.add_params(parent)
        parent.config[ens].block_shape = nengo_loihi.BlockShape((size,), (ens.n_neurons,))


def prepare_network(network):
    """The ``"loihi"`` platform's `popfit.platforms.Platform.prepare_network` hook:
    `set_block_shapes` where nengo-loihi is installed (without it nothing runs the
    network on Loihi, and popfit does not import it)."""
    if importlib.util.find_spec("nengo_loihi") is not None:
        _set_block_shapes(network)
    return network


def reports_on(model):
    """Whether `ConvertedModel.report` ends with the ``[[loihi]]`` section: a model
    for platform ``"loihi"`` (with any overrides), with rounded weights
    (``weight_bits``), or with whole-step neuron types (nengo-loihi's)."""
    return model.platform.name == LOIHI.name or model.weight_bits is not None or any(
        is_whole_step(fit.neuron_type) for fit in model.fits)


def report_lines(model):
    """The ``[[loihi]]`` section of `ConvertedModel.report` (see `reports_on`)."""
    m = chip_mapping(model.network)
    spec = model.spec
    lines = ["[[loihi]] (nengo_loihi.Simulator(model.network); docs/loihi.md)"]
    if m["problems"]:
        lines.append("    nengo-loihi   : WILL NOT BUILD this network:")
        lines += [f"      {p}" for p in m["problems"]]
    lines.append(f"    on chip       : {m['neurons']} neurons in {m['blocks']} block(s) "
                 f"(one core each: <= {MAX_COMPARTMENTS} compartments, "
                 f"{MAX_IN_AXONS} input and {MAX_OUT_AXONS} output axons, "
                 f"{MAX_SYNAPSE_BITS // 8 // 1024} KiB synapse memory); fullest block:")
    for row in m["ensembles"]:
        big = row["largest"]
        lines.append(f"      {row['label'][:40]:<40} {row['neurons']:6d} neurons "
                     f"{row['blocks']:3d} block(s)  {big['input axons']:5d} in / "
                     f"{big['output axons']:5d} out axons, "
                     f"{100 * big['synapse bits'] / MAX_SYNAPSE_BITS:3.0f}% synapse memory")
    for note in m["unmodelled"]:
        lines.append(f"      not modelled: {note}")
    lines.append(
        f"    off chip      : input weights {spec.n_features} -> {spec.hidden[0].n_out} "
        f"(host), {m['host_inputs']} values sent to the chip (on/off encoding pairs, "
        f"5 ms filter), {m['host_outputs']} outputs decoded on the host from probed "
        f"spikes, output bias and {spec.output.activation} nonlinearity")
    q = model.quantization
    if model.weight_bits is None:
        lines.append("    weights       : float (nengo-loihi rounds them to 8 bits when it "
                     "builds; convert(..., platform=\"loihi\") measures the cost)")
    else:
        cost = "no calibration_data to measure the rate-level cost"
        if q.get("cost") is not None:
            c = q["cost"]
            cost = (f"rate-level output NRMSE vs float {c['output_nrmse']:.4f}"
                    + ("" if c["class_changed"] is None else
                       f", class changed on {100 * c['class_changed']:.1f}%")
                    + f" of {c['n_samples']} calibration samples")
        lines.append(f"    weights       : {model.weight_bits}-bit, one shared step per "
                     f"layer; {cost}")
    return lines
