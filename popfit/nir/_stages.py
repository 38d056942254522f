"""Popfit objects read as populations and the weights between them.

A `ConvertedModel`, a `PopulationNeuron` or a chain of `PopulationLayer`s
becomes a `_Read`: one `_Stage` per population and the links that feed them
(a chain's links, plus a converted model's skip connections), which
`popfit.nir.to_nir` writes as NIR nodes. Nothing here knows NIR.
"""

from dataclasses import dataclass
from typing import Tuple

import numpy as np
import scipy.sparse

from ..conversion import ConvertedModel
from ..exceptions import PopfitTypeError, PopfitValueError
from ..network import PopulationLayer, PopulationNeuron, transform_matrix


class _Stage:
    """One population: its fit, per-neuron gain and bias, the block matrices that
    map unit inputs to neurons (encoder signs, no gain) and neurons to unit outputs
    (decoders), and its units' shape (channels last, ``(n_units,)`` for a flat layer)."""

    def __init__(self, fit, n_units, gain, bias, encoders_block, decoders_block, shape=None):
        self.fit = fit
        self.n_units = n_units
        self.gain = np.asarray(gain, dtype=float)
        self.bias = np.asarray(bias, dtype=float)
        self.encoders_block = scipy.sparse.csr_matrix(encoders_block)  # (total_neurons, n_units)
        self.decoders_block = scipy.sparse.csr_matrix(decoders_block)  # (n_units, total_neurons)
        self.shape = (n_units,) if shape is None else tuple(int(n) for n in shape)

    @property
    def total_neurons(self):
        return len(self.gain)

    @property
    def neuron_shape(self):
        """The neurons as a channels-last tensor: ``(*spatial, C * N)`` (neuron
        ``u * N + n`` of unit ``u``)."""
        return self.shape[:-1] + (self.total_neurons // int(np.prod(self.shape[:-1])),)

    def weights_in(self, transform):
        """Weight into the neurons: ``diag(gain) E transform`` (gain folded in, so the
        neuron's ``r = 1``); sparse for a sparse ``transform``."""
        if scipy.sparse.issparse(transform):
            return scipy.sparse.diags(self.gain) @ (self.encoders_block @ transform)
        return self.gain[:, None] * (self.encoders_block @ np.asarray(transform, dtype=float))


@dataclass
class _Read:
    """What `to_nir` writes.

    ``links``: ``(source, target, matrix)``, source -1 the graph input or a stage
    index, target a stage index or ``len(stages)`` (the output); ``matrix`` maps the
    source's neuron activities (the input's features) to the target's unit inputs
    (the outputs), decoders folded in. Each stage's first link is from the stage
    before it (the input, for the first), and carries the neurons' bias.
    """

    stages: list
    links: list
    out_bias: np.ndarray
    connection_synapse: object
    label: str
    input_shape: Tuple[int, ...]


def _dense(matrix):
    return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix, dtype=float)


def _layer_stage(layer, shape=None):
    ens = layer.ensemble
    return _Stage(layer.fit, layer.n_units, ens.gain, ens.bias, layer.encoders_block(),
                  layer.decoders_block(), shape)


def _folded(matrix, fit):
    """``matrix.T @ decoders_block``: unit outputs' weights -> neuron weights."""
    if scipy.sparse.issparse(matrix):
        return scipy.sparse.kron(matrix.T, fit.decoders[None, :], format="csr")
    return np.kron(np.asarray(matrix, dtype=float).T, fit.decoders[None, :])


def _spec_links(spec, fits):
    """Every layer's inputs (skips too) as links, the source model's weights with the
    decoders folded in (what `build_network` wires)."""
    links = []
    for j, layer in enumerate(spec.layers):
        for source, matrix in layer.inputs(j):
            if source == -1:
                link = matrix.T.tocsr() if scipy.sparse.issparse(matrix) else matrix.T
            else:
                link = _folded(matrix, fits[source])
            links.append((source, j, link))
    return links


def _network_links(model):
    """``(stages, links)`` read from ``model.network``'s connections (links as `_Read`).

    For a model converted with ``weight_bits``: `popfit.conversion.quantize.quantize_network`
    rounded ``gain * weights`` of every connection into a layer's neurons per
    neuron, which no unit-level weight matrix can express, so each link into a
    layer here is neuron level (the stages' encoders are the identity): from
    the model input, the (rounded) encoders times the source model's weights
    (divided by the input scale on a platform that sends ``x / input_scale``);
    from an earlier layer (the previous one, or a skip), the connection
    between their neurons as the network holds it. Links into the output are
    the decoding transforms (never rounded) and the source's weights from the
    input. Each target's links come in the order of its inputs in the spec.
    """
    import nengo

    def ends_at(obj, ensemble):
        return isinstance(obj, nengo.ensemble.Neurons) and obj.ensemble is ensemble

    net, spec = model.network, model.spec
    n = len(net.layers)
    ensembles = {layer.ensemble: k for k, layer in enumerate(net.layers)}
    stages, links = [], []
    for t, unit in enumerate(spec.layers):
        if t < n:
            layer, where = net.layers[t], f"layer {t}"
            into = [c for c in net.all_connections if ends_at(c.post_obj, layer.ensemble)]
        else:
            where = "output"
            into = [c for c in net.all_connections if c.post_obj is net.output]
        by_source = {}
        for c in into:
            pre = getattr(c.pre_obj, "ensemble", None)
            source = ensembles.get(pre, -1) if isinstance(c.pre_obj, nengo.ensemble.Neurons) \
                else -1
            if t == n and source == -1:
                continue  # into the output from the host: the spec's weights, or its bias Node
            if source in by_source:
                raise PopfitValueError(
                    f"the model's {where} has two connections "
                    f"from {'the host' if source == -1 else f'layer {source}'}: the network "
                    "was changed after convert; export the model convert returned")
            by_source[source] = c
        for source, matrix in unit.inputs(t):
            if source == -1 and t == n:  # the model input straight into the output
                links.append((-1, t, matrix.T.tocsr() if scipy.sparse.issparse(matrix)
                              else np.asarray(matrix, dtype=float).T))
                continue
            if source not in by_source:
                if source >= 0 and (not matrix.shape[0] or (
                        scipy.sparse.issparse(matrix) and not matrix.nnz)):
                    continue  # no such input (build_network makes no connection)
                raise PopfitValueError(
                    f"the model's {where} has no connection "
                    f"from {'the host' if source == -1 else f'layer {source}'}: the network "
                    "was changed after convert; export the model convert returned")
            conn = by_source.pop(source)
            w = _dense(transform_matrix(conn.transform, f"the {where}'s input weights"))
            if source == -1:
                if not layer.platform.sparse_host_transforms:  # input sent as x / scale
                    w = w / layer.input_scale[None, :]
                m = matrix.toarray() if scipy.sparse.issparse(matrix) else np.asarray(matrix)
                w = w @ m.T
            links.append((source, t, w))
        if by_source:
            raise PopfitValueError(
                f"the model's {where} has connections convert "
                "did not make: the network was changed after convert; export the model "
                "convert returned")
        if t < n:
            ens = layer.ensemble
            stages.append(_Stage(layer.fit, layer.n_units, ens.gain, ens.bias,
                                 scipy.sparse.identity(layer.total_neurons, format="csr"),
                                 layer.decoders_block(), spec.hidden[t].shape))
    return stages, links


def _chain(links, out_link):
    """A chain's links: ``links[k]`` into stage k from stage k-1 (the input for
    k = 0), ``out_link`` from the last stage to the output."""
    n = len(links)
    return [(k - 1, k, link) for k, link in enumerate(links)] + [(n - 1, n, out_link)]


def _fold(stages, ts):
    """Unit-level transforms -> links: ``ts[k] @ decoders`` of stage k-1 for k >= 1."""
    return [ts[0]] + [t @ _dense(pre.decoders_block) for pre, t in zip(stages[:-1], ts[1:])]


def _read_object(obj, transforms):
    """The `_Read` of ``obj``: its stages and links (see `_Read`)."""
    if transforms is not None and isinstance(obj, (ConvertedModel, PopulationNeuron)):
        raise PopfitValueError(
            f"transforms is only for a chain of PopulationLayers (got transforms with a "
            f"{type(obj).__name__}, which carries its own weights)")
    if isinstance(obj, ConvertedModel):
        spec = obj.spec
        label = f"popfit.convert({spec.source})"
        shapes = [layer.shape for layer in spec.hidden]
        if obj.weight_bits is not None:  # quantized per neuron: the weights the network runs
            biases = [spec.output.bias if obj.weights is None else obj.biases[-1]]
            stages, links = _network_links(obj)
        elif obj.weights is not None:  # re-solved: the links the network runs
            biases = obj.biases
            stages = [_layer_stage(layer, shape)
                      for layer, shape in zip(obj.network.layers, shapes)]
            solved = {(l, l + 1): w for l, w in enumerate(obj.weights)}
            solved.update(getattr(obj, "skip_weights", None) or {})
            links = [(s, t, link) for s, t, link in _spec_links(spec, obj.fits)
                     if s == -1 or (s, t) in solved]
            links = [(s, t, link if s == -1 else solved[s, t]) for s, t, link in links]
        else:  # the source model's weights, skips too, decoders folded in
            biases = [spec.output.bias]
            stages = [_layer_stage(layer, shape)
                      for layer, shape in zip(obj.network.layers, shapes)]
            links = _spec_links(spec, obj.fits)
        return _Read(stages, links, np.asarray(biases[-1], dtype=float).copy(),
                     obj.connection_synapse, label, tuple(spec.input_shape))
    if isinstance(obj, PopulationNeuron):
        fit = obj.fit
        stage = _Stage(fit, 1, fit.gain, fit.bias, fit.encoders[:, None],
                       fit.decoders[None, :])
        return _Read([stage], _chain([np.eye(1)], _dense(stage.decoders_block)), np.zeros(1),
                     None, obj.label, (1,))
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
                t = _dense(transform_matrix(t, f"transforms[{k}]"))
            if t.shape != shape:
                raise PopfitValueError(
                    f"transforms[{k}] must have shape {shape} (layer {k + 1} "
                    f"units, layer {k} units) (got shape {t.shape})")
            ts.append(t)
        last = layers[-1]
        label = " -> ".join(layer.label for layer in layers)
        stages = [_layer_stage(layer) for layer in layers]
        return _Read(stages, _chain(_fold(stages, ts), _dense(stages[-1].decoders_block)),
                     np.zeros(last.n_units), None, label, (layers[0].n_units,))
    raise PopfitTypeError(
        "obj must be a popfit.ConvertedModel, a PopulationNeuron, a "
        f"PopulationLayer or a non-empty list of PopulationLayers (got {obj!r:.100} of "
        f"type {type(obj).__name__})")


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
