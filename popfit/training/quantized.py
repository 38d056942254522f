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
* between layers: ``gain_post * encoder_post * W[v, u] * decoder_pre``,
  rounded over the whole connection;
* the unit biases are folded into the neurons' bias currents (float) and
  the output is decoded on the host (float).

Rounding is straight-through (``w + stop_gradient(round(w) - w)``): the
forward value is the rounded network's, the gradient the float one's. So
the model `finetune` returns, rounded again when it is rebuilt, computes
exactly the forward pass it was trained through.
"""

from .._optional import import_optional
from .curves import forward, forward_compiled, rates

jax = import_optional("jax", "popfit.finetune")
jnp = jax.numpy


def round_weights(w, bits):
    """``w`` rounded as `popfit.conversion.quantize.quantize` does, straight-through."""
    levels = 2**bits - 1
    wmax = jax.lax.stop_gradient(jnp.max(jnp.abs(w)))
    safe = jnp.where(wmax > 0, wmax, 1.0)
    q = jnp.where(wmax > 0, jnp.round(w / safe * levels) / levels * safe, w)
    return w + jax.lax.stop_gradient(q - w)


def forward_quantized(params, layers, X, bits, sparse_host):
    """`popfit.training.curves.forward` of the network with rounded weights.

    ``bits``: the model's ``weight_bits``; ``sparse_host``: its platform's
    ``sparse_host_transforms``. Returns ``(out, spikes)`` as ``forward``.
    """
    spikes = 0.0
    a = None  # neuron rates of the previous layer, shape (n_samples, n_units, N)
    for i, ((W, b), (kind, c)) in enumerate(zip(params[:-1], layers)):
        ge = c["gain_enc"]
        bias = c["bias"][None, :] + ge[None, :] * b[:, None]  # (n_units, N), float
        if i == 0:
            u = X @ W  # host
            if sparse_host:
                scale = jnp.ones_like(b)
            else:
                scale = c["half_width"] + jnp.abs(b)
            w = round_weights(ge[None, :] * scale[:, None], bits)  # (n_units, N)
            J = w[None] * (u / scale)[:, :, None] + bias[None]
        else:
            d = layers[i - 1][1]["decoders"]
            # (post unit u, post neuron n, pre unit v, pre neuron m)
            w = round_weights(ge[None, :, None, None] * W.T[:, None, :, None]
                              * d[None, None, None, :], bits)
            J = jnp.einsum("unvm,svm->sun", w, a) + bias[None]
        a = rates(kind, c, J)
        spikes = spikes + jnp.sum(a, axis=(1, 2))
    W, b = params[-1]
    decoded = a @ layers[-1][1]["decoders"]  # (n_samples, n_units), host
    return decoded @ W + b, spikes


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
