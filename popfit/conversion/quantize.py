"""Weights rounded as a chip stores them, and what that costs at rate level.

Loihi stores 8-bit weight magnitudes with one shared scale per connection
(nengo-loihi's ``discretize_weights``). `quantize` is that rounding of one
weight matrix; `quantize_model` returns a copy of a `ConvertedModel` whose
network holds rounded weights (what `popfit.convert` does for a platform
with ``weight_bits``); `rate_forward` computes a model's network at rate
level from the weights it holds, and `quantization_cost` compares the
rounded network with the float one.
"""

import copy

import nengo
import numpy as np
import scipy.sparse

from .._validation import check_bool, check_finite_array, check_int, public
from ..exceptions import PopfitTypeError, PopfitValueError
from ..graph import connects_into, population_layers
from ..targets import apply_activation
from .batch import connection_matrix
from .spec import check_samples, dot

#: Bits of a weight magnitude `quantize` accepts (a platform's ``weight_bits``).
WEIGHT_BITS_RANGE = (2, 16)


# --------------------------------------------------------------------- weights
@public
def quantize(weights, bits, w_max=None):
    """Round ``weights`` to ``2 * (2**bits - 1) + 1`` levels with one shared step.

    The step is ``w_max / (2**bits - 1)`` with ``w_max = max |w|`` by
    default, so the largest magnitude is exact: what nengo-loihi does to the
    weights of a block (8-bit magnitudes and a sign, scaled by one factor
    shared by every connection into the block, from their largest magnitude;
    ``discretize_block``). Every weight moves to the nearest level (at most
    half a step), so at most ``2**bits - 1`` nonzero magnitudes remain per
    sign and zeros stay zero. Works on dense arrays and scipy sparse matrices.

    Parameters
    ----------
    weights : array_like or scipy.sparse matrix
        Finite real weights, any shape.
    bits : int
        Bits of a weight magnitude, in [2, 16] (as a platform's
        ``weight_bits``; Loihi stores 8).
    w_max : float, optional
        The magnitude the step is based on, at least ``max |w|`` (the
        largest magnitude of all connections sharing the step). Default:
        ``max |w|``.

    Returns
    -------
    ndarray or scipy.sparse.csr_matrix
        The rounded weights, same shape (a new array).
    """
    lo, hi = WEIGHT_BITS_RANGE
    bits = check_int(bits, "bits", low=lo, high=hi)
    if scipy.sparse.issparse(weights):
        out = scipy.sparse.csr_matrix(weights, dtype=float, copy=True)
        out.data = quantize(out.data, bits, w_max)
        out.eliminate_zeros()
        return out
    w = check_finite_array(weights, "weights")
    wmax = float(np.max(np.abs(w))) if w.size else 0.0
    if w_max is not None:
        w_max = check_finite_array(w_max, "w_max")
        if w_max.ndim or not w_max >= wmax:
            raise PopfitValueError(
                f"w_max must be a number at least max |weights| = {wmax:g} (got "
                f"{w_max!r}); pass the largest magnitude of all the weights sharing the "
                "step, or None")
        wmax = float(w_max)
    if wmax == 0.0:
        return w.copy()
    levels = 2**bits - 1
    # levels relative to max |w| (no step that underflows for tiny weights);
    # the largest magnitude maps to exactly +-wmax
    return np.round(w / wmax * levels) / levels * wmax


@public
def quantize_network(network, bits, originals=None):
    """Quantize, in place, the weights into every `popfit.PopulationLayer` of ``network``.

    Each connection into a layer's ``ensemble.neurons`` gets its effective
    weights ``gain_post * transform`` (what the chip stores) rounded by
    `quantize` (one step shared by every connection into the layer, as nengo-loihi's
    ``discretize_block`` shares it), then divided by the gain
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
    for layer in population_layers(network):
        gain = np.asarray(layer.ensemble.gain, dtype=float)
        conns = [c for c in network.all_connections if connects_into(c, layer.ensemble)]
        effective = []
        for conn in conns:
            t = conn.transform
            w = _matrix(conn)
            if originals is not None:
                originals[id(conn)] = w
            effective.append(scipy.sparse.diags(gain) @ w
                             if isinstance(t, nengo.transforms.Sparse) else gain[:, None] * w)
        # one step for every connection into the layer (nengo-loihi's discretize_block)
        w_max = max((float(abs(w).max()) if w.shape[0] * w.shape[1] else 0.0
                     for w in effective), default=0.0)
        for conn, w in zip(conns, effective):
            sparse = isinstance(conn.transform, nengo.transforms.Sparse)
            q = quantize(w, int(bits), w_max)
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
                "step": w_max / (2**bits - 1),
                "max_relative_change": float(np.max(np.abs(q[nz] - w[nz]) / np.abs(w[nz])))
                if nz.any() else 0.0})
    return info


def _matrix(conn, transforms=None):
    if transforms is not None and id(conn) in transforms:
        return transforms[id(conn)]
    return connection_matrix(conn)


def _quantized_connections(network):
    """The connections `quantize_network` rounds, in the order it visits them."""
    return [conn for layer in population_layers(network) for conn in network.all_connections
            if connects_into(conn, layer.ensemble)]


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
    # a ConvertedModel by what it has (this module sits below popfit.conversion.model)
    if not all(hasattr(model, name) for name in ("network", "spec", "fits", "n_features_in_")):
        raise PopfitTypeError(
            f"model must be a popfit.ConvertedModel (got {type(model).__name__}); make one "
            "with popfit.convert")
    return model


@public
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
    model = _check_model(model)
    X = check_samples(X, model.n_features_in_, "X", model.spec.input_shape)
    transforms = _float_transforms(model) if check_bool(float_weights, "float_weights") \
        else None
    return _rate_forward(model, X, transforms)


def _rate_forward(model, X, transforms):
    net = model.network
    spec = model.spec
    index = {layer.ensemble: i for i, layer in enumerate(net.layers)}
    rates = []
    for i, (layer, unit) in enumerate(zip(net.layers, spec.hidden)):
        j = 0.0
        for conn in net.all_connections:
            if not connects_into(conn, layer.ensemble):
                continue
            w = _matrix(conn, transforms)
            pre = getattr(conn.pre_obj, "ensemble", None)
            if pre in index:  # another layer's neurons
                u = rates[index[pre]]
            else:  # the host: the model input into this layer (X -> layer.input)
                u = sum(dot(X, m) for s, m in unit.inputs(i) if s == -1)
                if conn.pre_obj is not layer.input:  # Dense host transforms: the scaled Node
                    u = u / layer.input_scale
            j = j + (w @ np.asarray(u).T).T
        j = j * layer.ensemble.gain + layer.ensemble.bias
        nt = layer.ensemble.neuron_type
        rates.append(nt.rates(j, np.ones(j.shape[1]), np.zeros(j.shape[1])))
    y = 0.0
    for c in net.all_connections:
        if c.post_obj is not net.output:
            continue
        pre = getattr(c.pre_obj, "ensemble", None)
        if pre in index:
            y = y + (_matrix(c, transforms) @ rates[index[pre]].T).T
        elif c.pre_obj is net.input:  # the model input straight into the output
            y = y + (_matrix(c, transforms) @ X.T).T
        elif isinstance(c.pre_obj, nengo.Node) and c.pre_obj.output is not None \
                and not callable(c.pre_obj.output):  # the constant output bias
            y = y + np.asarray(c.pre_obj.output, dtype=float)  # identity connection
    return y


@public
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
    model = _check_model(model)
    X = check_samples(X, model.n_features_in_, "X", model.spec.input_shape)
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


@public
def quantize_model(model, bits, X=None):
    """A copy of ``model`` whose network holds its weights rounded to ``bits`` magnitude bits.

    Every connection into a population layer's neurons is rounded by
    `quantize_network` (one shared step per layer, as the chip stores
    it); connections to the host stay in floating point. ``model`` itself is
    unchanged. Every prediction path of the copy (``predict``,
    ``decoded_output``, ``rate_output``, `popfit.to_nir`) runs the rounded
    weights.

    Parameters
    ----------
    model : popfit.ConvertedModel
        A model with float weights.
    bits : int
        Magnitude bits, in [2, 16] (Loihi: 8).
    X : array_like, shape (n_samples, n_features), optional
        Samples to measure the rate-level cost on (`quantization_cost`),
        reported in ``quantization["cost"]``.

    Returns
    -------
    popfit.ConvertedModel
        With ``weight_bits = bits`` and ``quantization``: each rounded
        connection (``"connections"``), the float weights (for
        `rate_forward`'s ``float_weights``) and the ``"cost"``.
    """
    model = _check_model(model)
    if model.weight_bits is not None:
        raise PopfitValueError(
            f"model's weights are already rounded to weight_bits={model.weight_bits}; "
            "quantize the float model (convert again for a platform with "
            "weight_bits=None)")
    lo, hi = WEIGHT_BITS_RANGE
    bits = check_int(bits, "weight_bits", low=lo, high=hi)
    new = copy.deepcopy(model)
    originals = {}
    new.weight_bits = bits
    new.quantization = {"connections": quantize_network(new.network, bits, originals),
                        "float_transforms": originals, "cost": None}
    if X is not None:
        new.quantization["cost"] = quantization_cost(new, X)
    return new
