"""Popfit objects read as a chain of populations and the weights between them.

A `ConvertedModel`, a `PopulationNeuron` or a chain of `PopulationLayer`s
becomes ``(stages, links, out_link, ...)``: one `_Stage` per population and
the dense matrices that feed them, which `popfit.nir.to_nir` writes as NIR
nodes. Nothing here knows NIR.
"""

import numpy as np

from ..conversion import ConvertedModel
from ..exceptions import PopfitTypeError, PopfitValueError
from ..network import PopulationLayer, PopulationNeuron, transform_matrix


class _Stage:
    """One population of the chain: its fit, per-neuron gain and bias, and the
    block matrices that map unit inputs to neurons (encoder signs, no gain) and
    neurons to unit outputs (decoders)."""

    def __init__(self, fit, n_units, gain, bias, encoders_block, decoders_block):
        self.fit = fit
        self.n_units = n_units
        self.gain = np.asarray(gain, dtype=float)
        self.bias = np.asarray(bias, dtype=float)
        self.encoders_block = _dense(encoders_block)  # (total_neurons, n_units)
        self.decoders_block = _dense(decoders_block)  # (n_units, total_neurons)

    @property
    def total_neurons(self):
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

    For a model converted with ``weight_bits``: `popfit.conversion.quantize.quantize_network`
    rounded ``gain * weights`` of every connection into a layer's neurons per
    neuron, which no unit-level weight matrix can express, so each link here is
    neuron level (the stages' encoders are the identity): the input link is the
    (quantized) encoders times the first layer's weights, link ``k`` the
    connection from layer ``k - 1``'s neurons to layer ``k``'s.
    """
    import nengo

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
        w = _dense(transform_matrix(conns[0].transform, f"layer {k}'s input weights"))
        if k == 0:
            if not layer.platform.sparse_host_transforms:  # input sent as x / input_scale
                w = w / layer.input_scale[None, :]
            w = w @ model.spec.hidden[0].weights.T
        links.append(w)
        ens = layer.ensemble
        stages.append(_Stage(layer.fit, layer.n_units, ens.gain, ens.bias,
                             np.eye(layer.total_neurons), layer.decoders_block()))
    last = net.layers[-1].ensemble
    out = [c for c in net.all_connections
           if c.post_obj is net.output and ends_at(c.pre_obj, last)]
    if len(out) != 1:
        raise PopfitValueError(
            f"the model's output has {len(out)} connections from the last layer (expected "
            "one): the network was changed after convert; export the model convert returned")
    return stages, links, _dense(transform_matrix(out[0].transform, "output weights"))


def _fold(stages, ts):
    """Unit-level transforms -> links: ``ts[k] @ decoders`` of stage k-1 for k >= 1."""
    return [ts[0]] + [t @ pre.decoders_block for pre, t in zip(stages[:-1], ts[1:])]


def _read_object(obj, transforms):
    """``(stages, links, out_link, out_bias, connection_synapse, label)`` for ``obj``.

    ``links[0]`` maps the graph input to the first stage's unit inputs;
    ``links[k]`` (k >= 1) maps stage k-1's *neuron* activities to stage k's
    unit inputs (a transform with the decoders folded in, or a converted
    model's re-solved weights); ``out_link`` maps the last stage's neurons to
    the outputs.
    """
    if transforms is not None and isinstance(obj, (ConvertedModel, PopulationNeuron)):
        raise PopfitValueError(
            f"transforms is only for a chain of PopulationLayers (got transforms with a "
            f"{type(obj).__name__}, which carries its own weights)")
    if isinstance(obj, ConvertedModel):
        spec = obj.spec
        spec.check_chain("popfit.to_nir")  # NIR graphs of skips: not exported yet
        # decoders folded in; per neuron when rounded (no unit-level form)
        weights, biases = obj.neuron_weights(per_neuron=obj.weight_bits is not None)
        if obj.weight_bits is None:
            stages = [_layer_stage(layer) for layer in obj.network.layers]
            links, out_link = [spec.hidden[0].weights.T] + weights[:-1], weights[-1]
        else:  # quantized per neuron: the weights the network runs
            stages, links, out_link = _network_links(obj)
        return (stages, links, out_link, np.asarray(biases[-1], dtype=float).copy(),
                obj.connection_synapse, f"popfit.convert({spec.source})")
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
                t = _dense(transform_matrix(t, f"transforms[{k}]"))
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
