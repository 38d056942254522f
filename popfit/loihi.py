"""How a popfit network maps onto Loihi (nengo-loihi 1.1's emulator or chip).

nengo-loihi splits a network into chip and host parts: `chip_mapping` counts
the neurons, blocks (at most 1,024 compartments each) and input axons on
chip, what the host sends and reads, and whether nengo-loihi will build the
network at all (it takes no ``Sparse`` transform between host and chip);
`report_lines` is the ``[[loihi]]`` section of a converted model's report.
The rest of popfit's Loihi support lives with its concept: whole-step
neurons in `popfit.wholestep` and `popfit.fit.whole_step`, 8-bit weights in
`popfit.conversion.quantize`, the platform in `popfit.platforms` (see
docs/loihi.md). This module never imports nengo-loihi.
"""

import nengo

from ._validation import public
from .exceptions import PopfitTypeError
from .graph import base_object, population_layers
from .network import PopulationNeuron
from .platforms import LOIHI
from .wholestep import is_whole_step

#: Compartments per Loihi core (nengo-loihi's ``MAX_COMPARTMENTS``).
MAX_COMPARTMENTS = 1024
#: Input axons per Loihi core (nengo-loihi's ``MAX_IN_AXONS``).
MAX_IN_AXONS = 4096
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
    """How a popfit network maps onto Loihi: neurons, blocks, and what stays on the host.

    Counts every `popfit.PopulationLayer` and `popfit.PopulationNeuron` in
    ``network``. Blocks: nengo-loihi puts each Ensemble in
    ``ceil(n_neurons / 1024)`` blocks (one core each) or more when a block
    would receive more than 4,096 input axons (estimated as the spiking
    inputs: presynaptic neurons, and two encoding neurons per host-sent
    value). Also says whether nengo-loihi 1.1 will build the network
    (`build_problems`: a Sparse transform between host and chip, as in
    the default ``convert()`` network, is refused). Needs no nengo-loihi.

    Parameters
    ----------
    network : nengo.Network
        E.g. ``ConvertedModel.network``, a `popfit.PopulationLayer`, or a
        network containing them.

    Returns
    -------
    dict
        ``ensembles`` (label, neurons, blocks, input_axons each),
        ``neurons``, ``blocks``, ``host_inputs`` (values encoded on the host
        and sent to the chip), ``host_outputs`` (values decoded on the host),
        ``builds`` (False if nengo-loihi will refuse the network) and
        ``problems`` (one message per refused connection, naming it and the
        fix).
    """
    if not isinstance(network, nengo.Network):
        raise PopfitTypeError(
            f"network must be a nengo.Network (got {type(network).__name__}): e.g. "
            "ConvertedModel.network, a PopulationLayer or a PopulationNeuron")
    ensembles = [(layer.label, layer.ensemble) for layer in population_layers(network)]
    pops = [net for net in network.all_networks if isinstance(net, PopulationNeuron)]
    if isinstance(network, PopulationNeuron):
        pops.append(network)
    ensembles += [(pop.label, pop.ensemble) for pop in pops]
    chip = {id(ens) for _, ens in ensembles}
    rows, host_in, host_out = [], 0, 0
    conns = network.all_connections
    for label, ens in ensembles:
        axons = 0
        for c in conns:
            if base_object(c.post_obj) is not ens:
                continue
            if id(base_object(c.pre_obj)) in chip:  # spikes from chip neurons
                axons += c.pre_obj.size_out
            else:  # a host value: one on/off encoding pair per dimension
                dims = c.size_mid if isinstance(c.post_obj, nengo.ensemble.Neurons) \
                    else c.size_out
                axons += 2 * dims
                host_in += dims
        blocks = max(-(-ens.n_neurons // MAX_COMPARTMENTS), -(-axons // MAX_IN_AXONS), 1)
        rows.append({"label": label, "neurons": ens.n_neurons, "blocks": blocks,
                     "input_axons": axons})
    for c in conns:
        if id(base_object(c.pre_obj)) in chip and id(base_object(c.post_obj)) not in chip:
            host_out += c.size_out
    problems = build_problems(network, {id(ens): label for label, ens in ensembles})
    return {"ensembles": rows, "neurons": sum(r["neurons"] for r in rows),
            "blocks": sum(r["blocks"] for r in rows), "host_inputs": host_in,
            "host_outputs": host_out, "builds": not problems, "problems": problems}


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
        lines.append("    nengo-loihi   : WILL NOT BUILD this network; convert again with "
                     "convert(..., platform=\"loihi\"):")
        lines += [f"      {p}" for p in m["problems"]]
    lines.append(f"    on chip       : {m['neurons']} neurons in {m['blocks']} block(s) "
                 f"(<= {MAX_COMPARTMENTS} compartments each, one core per block)")
    for row in m["ensembles"]:
        lines.append(f"      {row['label'][:40]:<40} {row['neurons']:6d} neurons  "
                     f"{row['blocks']:3d} block(s)  {row['input_axons']:6d} input axons")
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
                     f"connection; {cost}")
    return lines
