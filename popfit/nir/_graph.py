"""Populations and links (`popfit.nir._stages`) written as a `nir.NIRGraph`.

One neuron node per population; one ``Affine`` node per link (``Conv1d`` /
``Conv2d`` for a link that is a convolution between two populations or from
the graph input, `popfit.nir._conv`), summed by NIR at the node they enter. A
population fed only by convolutions is a channels-first tensor ``(C * N,
*spatial)`` (its neuron nodes' parameters have that shape); an Affine fed by
such a tensor reads it through a ``Flatten`` node, its columns permuted from
popfit's channels-last order to the flattened channels-first one.
"""

import numpy as np

from ..exceptions import PopfitValueError
from ._conv import channels_first, channels_first_order, find_convolution


class _Conventions:
    """A NIR consumer's conventions (`popfit.platforms.Platform`'s ``nir_*`` fields):
    what ``r`` holds, the factor on the Affine weights into a node, time units."""

    def __init__(self, platform):
        self.dt = platform.nir_dt
        self.r_kind = platform.nir_r
        self.increment = platform.nir_input == "increment"
        self.steps = platform.nir_tau == "steps"

    def tau(self, tau):
        """A time constant (s) in the consumer's unit."""
        return tau / self.dt if self.steps else tau

    def r(self, tau):
        if self.dt is None or self.r_kind == "one":
            return 1.0
        return tau / self.dt - (1.0 if self.r_kind == "tau/dt-1" else 0.0)

    def decay(self, tau):
        return np.exp(-self.dt / tau)

    def neuron_scale(self, tau, r):
        """Weight factor into a LIF membrane fed with nengo's current J."""
        return 1.0 - self.decay(tau) if self.increment else 1.0 / r

    def cuba_scale(self, tau_syn):
        """Factor for a CubaLIF synapse: ``i <- b (i + x)`` has gain ``b / (1 - b)``."""
        if not self.increment:
            return 1.0
        b = self.decay(tau_syn)
        return (1.0 - b) / b

    def li_scale(self, tau):
        """Factor for an LI node: ``v <- a v + x`` has gain ``1 / (1 - a)``."""
        return 1.0 - self.decay(tau) if self.increment else 1.0

    def if_scale(self):
        """Factor into an IF node: it adds ``J dt`` per step."""
        return self.dt if self.increment else 1.0


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


def _check_finite(kind, node, what, values):
    bad = ~np.isfinite(values)
    if bad.any():
        raise PopfitValueError(
            f"the {what} of {kind} node {node!r} overflows: {int(bad.sum())} of "
            f"{bad.size} entries are not finite (the transforms or the model's "
            "weights times the gains and decoders exceed the float range); scale "
            "the transforms or weights down")


def _affine(nir, node, weight, bias):
    """``nir.Affine(weight, bias)``, refusing entries that overflowed to inf."""
    weight = weight.toarray() if hasattr(weight, "toarray") else np.asarray(weight, float)
    for what, values in (("weight", weight), ("bias", bias)):
        _check_finite("Affine", node, what, values)
    return nir.Affine(weight=weight, bias=np.asarray(bias, dtype=float))


def _conv_node(nir, node, conv):
    """``nir.Conv1d`` / ``nir.Conv2d`` of a `popfit.nir._conv.Convolution`."""
    for what, values in (("weight", conv.weight), ("bias", conv.bias)):
        _check_finite("Conv", node, what, values)
    spatial = conv.in_shape[1:]
    if len(spatial) == 1:
        return nir.Conv1d(input_shape=int(spatial[0]), weight=conv.weight,
                          stride=int(conv.stride[0]), padding=int(conv.padding[0]),
                          dilation=1, groups=1, bias=conv.bias)
    return nir.Conv2d(input_shape=tuple(int(n) for n in spatial), weight=conv.weight,
                      stride=tuple(int(s) for s in conv.stride),
                      padding=tuple(int(p) for p in conv.padding), dilation=(1, 1),
                      groups=1, bias=conv.bias)


class _Writer:
    """Builds the graph's nodes and edges (see the module docstring)."""

    def __init__(self, nir, read, kinds, platform, synapse, readout, convolutions):
        self.nir, self.read, self.kinds = nir, read, kinds
        self.platform, self.synapse, self.readout = platform, synapse, readout
        self.conv = _Conventions(platform)
        self.convolutions = convolutions
        self.nodes, self.edges = {}, []

    # ---------------------------------------------------------------- layout
    def _weights(self):
        """Per link ``(source, target, weight, bias)`` as the graph's nodes compute them:
        into neurons (gains, encoders, the consumer's scale) or into the output."""
        read, n = self.read, len(self.read.stages)
        self.neuron_nodes, scales, first = [], [], set()
        for k, (stage, kind) in enumerate(zip(read.stages, self.kinds)):
            node, scale = self._neuron(stage, kind, k)
            self.neuron_nodes.append(node)
            scales.append(scale)
        dt = self.platform.nir_dt
        out_scale = self.conv.li_scale(self.synapse) if self.readout == "LI" else 1.0
        result = []
        for source, target, matrix in read.links:
            if target < n:
                weight = read.stages[target].weights_in(matrix) * scales[target]
                bias = read.stages[target].bias * scales[target]
                if source >= 0 and dt is not None:
                    weight = weight / dt  # spikes of area dt in the consumer
            else:
                weight = matrix / dt if source >= 0 and dt is not None else matrix
                weight = weight * out_scale if out_scale != 1.0 else weight
                bias = np.asarray(read.out_bias, dtype=float) * out_scale
            if target in first:  # the target's bias rides on its first link
                bias = np.zeros(weight.shape[0])
            first.add(target)
            result.append((source, target, weight, bias))
        return result

    def _layout(self, links):
        """Which links are convolutions; which sources are channels-first tensors."""
        read, n = self.read, len(self.read.stages)
        in_shape = read.input_shape
        spatial = {-1: in_shape if self.convolutions and len(in_shape) in (2, 3) else None}
        convs = {}
        for target in range(n + 1):
            into = [i for i, link in enumerate(links) if link[1] == target]
            shape = read.stages[target].neuron_shape if target < n else ()
            found = {}
            if self.convolutions and len(shape) in (2, 3) and set(
                    self._node_kinds(target)) <= set(self.platform.nir_conv_nodes):
                for i in into:
                    source, _, weight, bias = links[i]
                    if spatial.get(source) is not None:
                        conv = find_convolution(weight, bias, spatial[source], shape)
                        if conv is None:
                            break
                        found[i] = conv
            whole = len(found) == len(into)
            spatial[target] = shape if whole and found else None
            convs.update(found if whole else {})
        if spatial[-1] is not None and not any(links[i][0] == -1 for i in convs):
            spatial[-1] = None  # nothing convolves the input: keep it flat
        return convs, spatial

    def _node_kinds(self, k):
        """The NIR node kinds stage ``k`` is written as (its synapse node too)."""
        params = self.neuron_nodes[k]
        kind = params["cls"].__name__
        return (kind, "LI") if kind == "IF" and k > 0 else (kind,)

    # ---------------------------------------------------------------- nodes
    def _neuron(self, stage, kind, k):
        """The neuron node of stage ``k`` (flat; reshaped later) and its input scale."""
        nir, conv, fit = self.nir, self.conv, stage.fit
        n, synapse, dt = stage.total_neurons, self.synapse, self.platform.nir_dt
        arr = lambda value: np.full(n, float(value))  # noqa: E731
        meta = _metadata(fit, stage, k, synapse if k > 0 else None)
        if kind == "LIF":
            tau = float(fit.neuron_type.tau_rc)
            r = conv.r(tau)
            scale = conv.neuron_scale(tau, r)
            if k == 0 and self.platform.nir_lif_node == "LIF":
                return dict(cls=nir.LIF, tau=arr(conv.tau(tau)), r=arr(r), v_leak=arr(0),
                            v_threshold=arr(1), v_reset=arr(0), metadata=meta), scale
            tau_syn = synapse if k > 0 else dt
            scale *= conv.cuba_scale(tau_syn)
            return dict(cls=nir.CubaLIF, tau_syn=arr(conv.tau(tau_syn)),
                        tau_mem=arr(conv.tau(tau)), r=arr(r), v_leak=arr(0),
                        v_threshold=arr(1), v_reset=arr(0), w_in=arr(1),
                        metadata=meta), scale
        scale = conv.if_scale()
        if k > 0:
            scale *= conv.li_scale(synapse)
        return dict(cls=nir.IF, r=arr(1), v_threshold=arr(1), v_reset=arr(0),
                    metadata=meta), scale

    def _shaped(self, params, shape):
        """A node from ``params`` with every array reshaped to ``shape`` (channels first)."""
        params = dict(params)
        cls = params.pop("cls")
        if shape is not None:
            params = {key: value.reshape(shape) if isinstance(value, np.ndarray) else value
                      for key, value in params.items()}
        return cls(**params)

    def _name(self, source, target, kind):
        n = len(self.read.stages)
        into = [link for link in self.read.links if link[1] == target]
        main = into[0][0] == source
        where = "out" if target == n else str(target)
        if main and (target < n or len(into) == 1):
            return f"{kind}_{where}"
        frm = "input" if source == -1 else str(source)
        return f"{kind}_{where}_from_{frm}"

    def write(self):
        """``(nodes, edges)``: in topological order, a target's links before it."""
        nir, read, n = self.nir, self.read, len(self.read.stages)
        links = self._weights()
        convs, spatial = self._layout(links)
        cf = {key: None if shape is None else channels_first(shape)
              for key, shape in spatial.items()}
        in_type = cf[-1] if cf[-1] is not None else (int(np.prod(read.input_shape)),)
        self.nodes["input"] = nir.Input(input_type=np.array(in_type))
        n_out = links[-1][2].shape[0]
        into_out = [i for i, link in enumerate(links) if link[1] == n]
        end = "readout" if self.readout == "LI" else "output"
        if len(into_out) > 1:  # summed by an identity Affine holding the output bias
            # (nirtorch's Output node takes one input)
            out_bias = links[into_out[0]][3]
            links[into_out[0]] = links[into_out[0]][:3] + (np.zeros(n_out),)
        flat = {}
        for target in range(n + 1):
            if target < n and self.kinds[target] == "IF" and target > 0:
                entry = f"synapse_{target}"
            elif target < n:
                entry = f"neurons_{target}"
            else:
                entry = "affine_out" if len(into_out) > 1 else end
            for i, (source, _, weight, bias) in enumerate(links):
                if links[i][1] != target:
                    continue
                src = "input" if source == -1 else f"neurons_{source}"
                if i in convs:
                    name = self._name(source, target, "conv")
                    self.nodes[name] = _conv_node(nir, name, convs[i])
                    self.edges += [(src, name), (name, entry)]
                    continue
                if cf[source] is not None:  # a channels-first tensor: flatten, permute
                    if source not in flat:
                        flat[source] = f"flatten_{'input' if source == -1 else source}"
                        self.nodes[flat[source]] = nir.Flatten(
                            input_type={"input": np.array(cf[source])},
                            start_dim=-len(cf[source]), end_dim=-1)
                        self.edges.append((src, flat[source]))
                    src = flat[source]
                    weight = weight[:, channels_first_order(spatial[source])]
                name = self._name(source, target, "affine")
                self.nodes[name] = _affine(nir, name, weight, bias)
                self.edges += [(src, name), (name, entry)]
            if target < n:
                if entry != f"neurons_{target}":
                    n_neurons = read.stages[target].total_neurons
                    li = dict(cls=nir.LI, r=np.ones(n_neurons), v_leak=np.zeros(n_neurons),
                              tau=np.full(n_neurons, self.conv.tau(self.synapse)))
                    self.nodes[entry] = self._shaped(li, cf[target])
                    self.edges.append((entry, f"neurons_{target}"))
                self.nodes[f"neurons_{target}"] = self._shaped(self.neuron_nodes[target],
                                                               cf[target])
        if len(into_out) > 1:
            self.nodes["affine_out"] = _affine(nir, "affine_out", np.eye(n_out), out_bias)
            self.edges.append(("affine_out", end))
        if self.readout == "LI":
            tau = self.conv.tau(self.synapse)
            self.nodes["readout"] = nir.LI(tau=np.full(n_out, tau), r=np.ones(n_out),
                                           v_leak=np.zeros(n_out))
            self.edges.append(("readout", "output"))
        self.nodes["output"] = nir.Output(output_type=np.array([n_out]))
        return self.nodes, self.edges
