"""Quantization-aware forward pass: the rounded network `finetune` trains for ``weight_bits``.

A model converted for a platform with ``weight_bits`` (``platform="loihi"``,
``get_platform("nengo", weight_bits=8)``) runs weights rounded by
`popfit.conversion.quantize.quantize_network`: every connection into a
layer's neurons holds ``gain * transform`` rounded to ``2**bits - 1``
magnitude levels with one shared step (its largest |weight| / (2**bits - 1)).
`forward_quantized` computes that network at rate level from the unit-level
weights, neuron by neuron:

* into the first layer: the host computes ``X @ W0`` (float); the neurons
  receive it through ``gain * encoder`` (nengo) or, on a platform without
  Sparse host transforms (Loihi), divided by the unit's input scale
  ``max |domain| + |b0_u|`` and multiplied back by ``gain * encoder *
  scale_u`` on chip (`popfit.PopulationLayer.input`); those weights are
  rounded;
* between layers: ``gain_post * encoder_post * W[v, u] * decoder_pre``, for
  a dense link and for each nonzero of a sparse one (a convolution: its
  pattern kept);
* every input of a layer (the host's, links from earlier layers, skips) is
  rounded with one shared step, the largest of them over ``2**bits - 1``
  (nengo-loihi's ``discretize_block``);
* the unit biases are folded into the neurons' bias currents (float) and
  the output is decoded on the host (float).

Rounding is straight-through (``w + stop_gradient(round(w) - w)``): the
forward value is the rounded network's, the gradient the float one's. So
the model `finetune` returns, rounded again when it is rebuilt, computes
exactly the forward pass it was trained through.
"""

import functools

from .._optional import import_optional
from .curves import forward, forward_compiled, rates
from .weights import Inputs, SparseValues, dot, layer_input

jax = import_optional("jax", "popfit.finetune")
jnp = jax.numpy


def round_weights(w, bits, wmax=None):
    """``w`` rounded as `popfit.conversion.quantize.quantize` does, straight-through.

    ``wmax``: the largest |weight| that sets the step (``wmax / (2**bits - 1)``);
    default ``max |w|``. A layer's connections share one (`forward_quantized`).
    """
    levels = 2**bits - 1
    wmax = jax.lax.stop_gradient(jnp.max(jnp.abs(w)) if wmax is None else wmax)
    safe = jnp.where(wmax > 0, wmax, 1.0)
    q = jnp.where(wmax > 0, jnp.round(w / safe * levels) / levels * safe, w)
    return w + jax.lax.stop_gradient(q - w)


def _neuron_weights(source, w, ge, scale, layers):
    """The float neuron-level weights of one input of a layer, as the network holds them
    times the post gain: ``(kind, values)`` (see `forward_quantized`); ``scale``: the
    layer's host input scale per unit."""
    if source == -1:  # host -> the layer's input Node -> its neurons, per unit
        return "host", ge[None, :] * scale[:, None]  # (n_units, N)
    d = layers[source][1]["decoders"]
    if isinstance(w, SparseValues):  # (nonzero, post neuron n, pre neuron m)
        return "sparse", ge[None, :, None] * w.values[:, None, None] * d[None, None, :]
    # (post unit u, post neuron n, pre unit v, pre neuron m)
    return "dense", ge[None, :, None, None] * w.T[:, None, :, None] * d[None, None, None, :]


def forward_quantized(params, layers, X, bits, sparse_host):
    """`popfit.training.curves.forward` of the network with rounded weights.

    ``bits``: the model's ``weight_bits``; ``sparse_host``: its platform's
    ``sparse_host_transforms``. Every input of a hidden layer (the host's,
    dense and sparse links from earlier layers, skips) is rounded with one
    shared step, the largest of them all (as
    `popfit.conversion.quantize.quantize_network`). Returns ``(out, spikes)``
    as ``forward``.
    """
    spikes = 0.0
    a = {}  # rates per hidden layer, shape (n_samples, n_units, N)
    decoded = {-1: X}
    for i, ((W, b), (kind, c)) in enumerate(zip(params[:-1], layers)):
        ge = c["gain_enc"]
        bias = c["bias"][None, :] + ge[None, :] * b[:, None]  # (n_units, N), float
        # the host sends x / scale on a platform without Sparse host transforms
        scale = jnp.ones_like(b) if sparse_host else c["half_width"] + jnp.abs(b)
        pairs = list(zip(W.sources, W.weights)) if isinstance(W, Inputs) else [(i - 1, W)]
        parts = [(s, w) + _neuron_weights(s, w, ge, scale, layers) for s, w in pairs]
        wmax = functools.reduce(jnp.maximum, [jnp.max(jnp.abs(v)) for *_, v in parts])
        J = bias[None]
        for s, w, kind_w, v in parts:
            v = round_weights(v, bits, wmax)
            if kind_w == "host":
                J = J + v[None] * (dot(X, w) / scale)[:, :, None]  # X @ w on the host, float
            elif kind_w == "sparse":
                p = w.pattern
                terms = jnp.einsum("knm,skm->kns", v, a[s][:, p.rows, :])
                J = J + jnp.transpose(jax.ops.segment_sum(
                    terms, p.cols, num_segments=p.shape[1], indices_are_sorted=True), (2, 0, 1))
            else:
                J = J + jnp.einsum("unvm,svm->sun", v, a[s])
        a[i] = rates(kind, c, J)
        decoded[i] = a[i] @ c["decoders"]  # what the next host-side read-out sees
        spikes = spikes + jnp.sum(a[i], axis=(1, 2))
    W, b = params[-1]  # the output is decoded on the host (float)
    return layer_input(W, decoded, len(params) - 1) + b, spikes


def model_forward(params, layers, X, quant=None, pre=None):
    """``forward`` (float weights) or `forward_quantized` (``quant = (bits, sparse_host)``)."""
    if quant is None:
        return forward(params, layers, X, pre=pre) if pre is not None else \
            forward_compiled(params, layers, X)
    return forward_quantized(params, layers, X, *quant)


def quant_of(model):
    """``(weight_bits, sparse_host_transforms)`` of a rounded model, else None."""
    if model.weight_bits is None:
        return None
    return int(model.weight_bits), bool(model.platform.sparse_host_transforms)
