"""Running popfit models on Loihi (nengo-loihi 1.1's emulator or chip).

popfit's core never imports ``nengo_loihi``: this module imports it only
inside the functions that need it, and raises an ImportError naming the
``popfit[loihi]`` extra when it is missing. What nengo-loihi changes, and
what popfit does about it (see docs/loihi.md):

- **Whole-step spiking.** A Loihi neuron spikes on whole time steps, so its
  rate is ``1 / (ceil(period / dt) * dt)``: a staircase (nengo-loihi's
  `LoihiLIF` and `LoihiSpikingRectifiedLinear` give that curve in
  ``rates``). `fit_loihi` (reached through
  ``fit_activation(..., neuron_type=LoihiLIF())``) optimizes gains and biases
  on a smooth surrogate whose period is the staircase's mean, then solves
  the decoders exactly against the staircase.
- **Transforms and host/chip traffic.** ``PopulationLayer(hardware="loihi")``
  and ``convert(hardware="loihi")`` build networks whose host-chip
  connections are Dense and whose host-encoded values stay in [-1, 1] (see
  `popfit.network`).
- **8-bit weights.** `quantize_network` rounds the on-chip weights to
  ``weight_bits`` with one shared scale per connection, as nengo-loihi's
  discretization does; `rate_forward` measures what that costs at rate level.
- **Chip mapping.** `chip_mapping` counts the neurons, blocks (at most 1,024
  compartments each) and what stays on the host.
"""

import numpy as np
import nengo
import scipy.sparse

from ._validation import check_bool, check_finite_array, check_int, public
from .exceptions import PopfitTypeError, PopfitValueError
#: Compartments per Loihi core (nengo-loihi's ``MAX_COMPARTMENTS``).
MAX_COMPARTMENTS = 1024
#: Input axons per Loihi core (nengo-loihi's ``MAX_IN_AXONS``).
MAX_IN_AXONS = 4096
#: Bits of a weight magnitude `quantize` accepts (``convert``'s ``weight_bits``).
WEIGHT_BITS_RANGE = (2, 16)


# --------------------------------------------------------------------- weights
@public("quantize")
def quantize(weights, bits):
    """Round ``weights`` to ``2 * (2**bits - 1) + 1`` levels with one shared step.

    The step is ``max |w| / (2**bits - 1)``, so the largest magnitude is
    exact: what nengo-loihi does to the weights of a block with one incoming
    connection (8-bit magnitudes and a sign, scaled by one shared factor;
    ``discretize_weights``). Every weight moves to the nearest level (at most
    half a step), so at most ``2**bits - 1`` nonzero magnitudes remain per
    sign and zeros stay zero. Works on dense arrays and scipy sparse matrices.

    Parameters
    ----------
    weights : array_like or scipy.sparse matrix
        Finite real weights, any shape.
    bits : int
        Bits of a weight magnitude, in [2, 16] (as ``convert``'s
        ``weight_bits``; Loihi stores 8).

    Returns
    -------
    ndarray or scipy.sparse.csr_matrix
        The rounded weights, same shape (a new array).
    """
    lo, hi = WEIGHT_BITS_RANGE
    bits = check_int(bits, "bits", low=lo, high=hi)
    if scipy.sparse.issparse(weights):
        out = scipy.sparse.csr_matrix(weights, dtype=float, copy=True)
        out.data = quantize(out.data, bits)
        out.eliminate_zeros()
        return out
    w = check_finite_array(weights, "weights")
    wmax = float(np.max(np.abs(w))) if w.size else 0.0
    if wmax == 0.0:
        return w.copy()
    levels = 2**bits - 1
    # levels relative to max |w| (no step that underflows for tiny weights);
    # the largest magnitude maps to exactly +-wmax
    return np.round(w / wmax * levels) / levels * wmax


def _into(conn, ensemble):
    """True if ``conn`` ends at ``ensemble.neurons`` (nengo makes a new Neurons
    object at every access, so ``is`` does not work)."""
    post = conn.post_obj
    return isinstance(post, nengo.ensemble.Neurons) and post.ensemble is ensemble


def _from(conn, ensemble):
    pre = conn.pre_obj
    return isinstance(pre, nengo.ensemble.Neurons) and pre.ensemble is ensemble


def _base(obj):
    """The Ensemble or Node behind a Neurons object or a slice."""
    obj = getattr(obj, "obj", obj)  # ObjView
    return obj.ensemble if isinstance(obj, nengo.ensemble.Neurons) else obj


def _layers(network):
    from .network import PopulationLayer

    return [net for net in network.all_networks if isinstance(net, PopulationLayer)] + (
        [network] if isinstance(network, PopulationLayer) else [])


@public("quantize_network")
def quantize_network(network, bits, originals=None):
    """Quantize, in place, the weights into every `popfit.PopulationLayer` of ``network``.

    Each connection into a layer's ``ensemble.neurons`` gets its effective
    weights ``gain_post * transform`` (what the chip stores) rounded by
    `quantize` (one shared step per connection), then divided by the gain
    again (nengo multiplies it back). Connections to the host (decoded
    outputs) stay in floating point: they run off chip.

    ``originals``, a dict, receives each quantized connection's float
    weight matrix under ``id(connection)`` (for `rate_forward`'s
    ``transforms``).

    Returns
    -------
    list of dict
        One per quantized connection: its label, shape, step and the largest
        relative change of a nonzero weight.
    """
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) \
            or not 2 <= bits <= 16:
        raise PopfitValueError(
            f"weight_bits must be an integer in [2, 16] (got {bits!r}); "
            "Loihi stores 8-bit weight magnitudes (weight_bits=8)")
    info = []
    for layer in _layers(network):
        gain = np.asarray(layer.ensemble.gain, dtype=float)
        for conn in network.all_connections:
            if not _into(conn, layer.ensemble):
                continue
            t = conn.transform
            sparse = isinstance(t, nengo.transforms.Sparse)
            w = t.init if sparse else np.asarray(t.init, dtype=float)
            if sparse and not scipy.sparse.issparse(w):
                w = scipy.sparse.csr_matrix((w.data, w.indices.T), shape=t.shape)
            if originals is not None:
                originals[id(conn)] = _matrix(conn)
            w = scipy.sparse.diags(gain) @ w if sparse else gain[:, None] * w
            q = quantize(w, int(bits))
            if sparse:
                qt = scipy.sparse.diags(1.0 / gain) @ q
                conn.transform = nengo.transforms.Sparse(qt.shape, init=qt.tocsr())
                w, q = w.toarray(), q.toarray()
            else:
                qt = q / gain[:, None]
                conn.transform = nengo.transforms.Dense(qt.shape, init=qt)
            nz = w != 0
            info.append({
                "connection": str(conn), "shape": tuple(w.shape),
                "step": float(np.max(np.abs(w))) / (2**bits - 1),
                "max_relative_change": float(np.max(np.abs(q[nz] - w[nz]) / np.abs(w[nz])))
                if nz.any() else 0.0})
    return info


def _matrix(conn, transforms=None):
    if transforms is not None and id(conn) in transforms:
        return transforms[id(conn)]
    t = conn.transform
    if isinstance(t, nengo.transforms.Sparse):
        init = t.init
        if not scipy.sparse.issparse(init):
            init = scipy.sparse.csr_matrix((init.data, init.indices.T), shape=t.shape)
        return init
    return np.asarray(t.init, dtype=float) * np.ones(t.shape) if np.ndim(t.init) < 2 \
        else np.asarray(t.init, dtype=float)


def _quantized_connections(network):
    """The connections `quantize_network` rounds, in the order it visits them."""
    return [conn for layer in _layers(network) for conn in network.all_connections
            if _into(conn, layer.ensemble)]


def _float_transforms(model):
    """``{id(connection): float weights}`` for the live connections of ``model.network``.

    `quantize_network` keeps the float weights in ``model.quantization``
    under the ``id`` of each connection it rounds, in the order it visits
    them. Those ids are stale in a pickled or copied model (the copy's
    connections are new objects), so the weights are matched to the
    connections by that order, which pickling and copying keep; shapes are
    checked. None if the model's weights were not quantized.
    """
    kept = (getattr(model, "quantization", None) or {}).get("float_transforms")
    if not kept:
        return None
    conns = _quantized_connections(model.network)
    mats = list(kept.values())
    if len(mats) != len(conns) or any(
            tuple(m.shape) != tuple(c.transform.shape) for m, c in zip(mats, conns)):
        raise PopfitValueError(
            f"model.quantization holds float weights for {len(mats)} connection(s) of "
            f"shapes {[tuple(m.shape) for m in mats]}, but model.network has "
            f"{len(conns)} connection(s) into its layers of shapes "
            f"{[tuple(c.transform.shape) for c in conns]}: the network was changed after "
            "convert; convert the source model again")
    return {id(c): m for c, m in zip(conns, mats)}


def _check_model(model):
    from .conversion.model import ConvertedModel

    if not isinstance(model, ConvertedModel):
        raise PopfitTypeError(
            f"model must be a popfit.ConvertedModel (got {type(model).__name__}); make one "
            "with popfit.convert")
    return model


@public("rate_forward")
def rate_forward(model, X, float_weights=False):
    """Decoded output of a `popfit.ConvertedModel`'s network at rate level.

    Reads the weights from the network's own connections (so it includes a
    `quantize_network` rounding) and runs every neuron at its rate-model
    (``neuron_type.rates``; the staircase for nengo-loihi types), without
    spike noise. With float weights it equals ``ConvertedModel.rate_output``
    before the output nonlinearity.

    Parameters
    ----------
    model : popfit.ConvertedModel
    X : array_like, shape (n_samples, n_features)
        Finite inputs.
    float_weights : bool
        If True, use the float weights ``convert`` kept in
        ``model.quantization`` before rounding them (``weight_bits``) instead
        of the network's rounded ones; no difference without ``weight_bits``.

    Returns
    -------
    ndarray, shape (n_samples, n_outputs)
        The output before the output nonlinearity.
    """
    from .conversion.spec import check_samples

    model = _check_model(model)
    X = check_samples(X, model.n_features_in_, "X")
    transforms = _float_transforms(model) if check_bool(float_weights, "float_weights") \
        else None
    return _rate_forward(model, X, transforms)


def _rate_forward(model, X, transforms):
    net = model.network
    spec = model.spec
    a = None
    for i, (layer, dense) in enumerate(zip(net.layers, spec.hidden)):
        conns = [c for c in net.all_connections if _into(c, layer.ensemble)]
        if len(conns) != 1:
            raise PopfitValueError(
                f"layer {i} has {len(conns)} incoming connections (expected 1): "
                "the network was changed after convert")
        w = _matrix(conns[0], transforms)
        if i == 0:
            v = X @ dense.weights  # the host part: X -> layer.input
            if conns[0].pre_obj is not layer.input:  # hardware="loihi": the scaled Node
                v = v / layer.input_scale
            u = v
        else:
            u = a
        j = (w @ u.T).T * layer.ensemble.gain + layer.ensemble.bias
        nt = layer.ensemble.neuron_type
        a = nt.rates(j, np.ones(j.shape[1]), np.zeros(j.shape[1]))
    y = 0.0
    for c in net.all_connections:
        if c.post_obj is not net.output:
            continue
        if _from(c, net.layers[-1].ensemble):
            y = y + (_matrix(c, transforms) @ a.T).T
        elif isinstance(c.pre_obj, nengo.Node) and c.pre_obj.output is not None \
                and not callable(c.pre_obj.output):  # the constant output bias
            y = y + np.asarray(c.pre_obj.output, dtype=float)  # identity connection
    return y


@public("quantization_cost")
def quantization_cost(model, X):
    """What weight quantization costs at rate level, on samples ``X``.

    Compares `rate_forward` of ``model``'s network (quantized if it was
    converted with ``weight_bits``) with the same network with its float
    weights (``rate_forward(..., float_weights=True)``). A pickled or copied
    model gives the same cost.

    Parameters
    ----------
    model : popfit.ConvertedModel
    X : array_like, shape (n_samples, n_features)
        Finite inputs.

    Returns
    -------
    dict
        ``output_nrmse``: RMSE of the decoded outputs (before the output
        nonlinearity) over their range, ``class_changed``: fraction of
        samples whose predicted class changes (classifiers; else None),
        ``n_samples``.
    """
    from .conversion.spec import check_samples
    from .targets import apply_activation

    model = _check_model(model)
    X = check_samples(X, model.n_features_in_, "X")
    q = _rate_forward(model, X, None)
    originals = _float_transforms(model)
    f = _rate_forward(model, X, originals) if originals else q
    scale = float(np.ptp(f)) or 1.0
    changed = None
    if model.is_classifier:
        act = model.spec.output.activation
        pq, pf = apply_activation(act, q), apply_activation(act, f)
        changed = float(np.mean(np.any(model._labels(pq) != model._labels(pf), axis=-1)
                                if pq.ndim == 2 and model.spec.multilabel
                                else model._labels(pq) != model._labels(pf)))
    return {"output_nrmse": float(np.sqrt(np.mean((q - f) ** 2)) / scale),
            "class_changed": changed, "n_samples": int(len(X))}


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
        pre, post = _base(c.pre_obj), _base(c.post_obj)
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
            "the network with convert(..., hardware=\"loihi\") (or "
            "PopulationLayer(..., hardware=\"loihi\"))")
    return problems


@public("chip_mapping")
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
    from .network import PopulationNeuron

    if not isinstance(network, nengo.Network):
        raise PopfitTypeError(
            f"network must be a nengo.Network (got {type(network).__name__}): e.g. "
            "ConvertedModel.network, a PopulationLayer or a PopulationNeuron")
    ensembles = [(layer.label, layer.ensemble) for layer in _layers(network)]
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
            if _base(c.post_obj) is not ens:
                continue
            if id(_base(c.pre_obj)) in chip:  # spikes from chip neurons
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
        if id(_base(c.pre_obj)) in chip and id(_base(c.post_obj)) not in chip:
            host_out += c.size_out
    problems = build_problems(network, {id(ens): label for label, ens in ensembles})
    return {"ensembles": rows, "neurons": sum(r["neurons"] for r in rows),
            "blocks": sum(r["blocks"] for r in rows), "host_inputs": host_in,
            "host_outputs": host_out, "builds": not problems, "problems": problems}


def report_lines(model):
    """The ``[[loihi]]`` section of `ConvertedModel.report` (``hardware="loihi"``)."""
    m = chip_mapping(model.network)
    spec = model.spec
    lines = ["[[loihi]] (nengo_loihi.Simulator(model.network); docs/loihi.md)"]
    if m["problems"]:
        lines.append("    nengo-loihi   : WILL NOT BUILD this network; convert again with "
                     "convert(..., hardware=\"loihi\"):")
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
                     "builds; convert(weight_bits=8) measures the cost)")
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
