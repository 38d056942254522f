"""Rate-level forward pass of a converted model in jax, for training its weights.

Each hidden unit is its population's exact decoded rate curve
(`popfit.PopulationFit.predict`): currents ``J = gain * (z * encoders) + bias``,
rates by the neuron type's rate formula, decoded by ``rates @ decoders``.

Supported neuron types (their rate curves, as nengo computes them):

* `nengo.LIF` / `nengo.LIFRate`: ``amplitude / (tau_ref + tau_rc * log1p(1 / (J - 1)))``
  for ``J > 1``, else 0. The forward value is this exact curve; for
  gradients only, ``J - 1`` is replaced by ``SMOOTH_WIDTH * softplus((J - 1) /
  SMOOTH_WIDTH)`` (nengo-dl's SoftLIFRate) within ``SMOOTH_CUT`` of the onset
  (a straight-through construction: ``exact + (smooth - stop_gradient(smooth))``
  with the exact value's own gradient stopped), so a silent neuron near its
  onset still receives a gradient. Far below the onset the gradient is 0;
  above ``SMOOTH_CUT`` it is the exact curve's.
* `nengo.RectifiedLinear` / `nengo.SpikingRectifiedLinear`: ``amplitude * max(J, 0)``.
* nengo-loihi's whole-step `LoihiLIF` / `LoihiSpikingRectifiedLinear`
  (`popfit.wholestep`; ``platform="loihi"`` fits): the staircase nengo-loihi's
  ``rates`` computes, ``amplitude / (dt * ceil(period / dt))`` with the
  period of the LIF at Loihi's discretized ``tau_rc`` / ``tau_ref`` (or
  ``1 / J``), forward; its derivative is 0 almost everywhere, so gradients
  are the smooth surrogate's whose curve is the staircase's mean
  (`popfit.wholestep.surrogate_neuron_type`: ``tau_ref`` half a step longer;
  ``J / (1 + J dt / 2)`` for the rectified-linear type), with the LIF onset
  smoothed as above.

NIR's LIF without refractory period (``platform="nir"``, ``"snntorch"``) is a
`nengo.LIF` with ``tau_ref`` 0 (or half snnTorch's step): the LIF case.
"""

import functools

import nengo
import numpy as np

from .. import wholestep
from .._optional import import_optional
from ..exceptions import ConversionError
from .weights import layer_input

jax = import_optional("jax", "popfit.finetune")
jnp = jax.numpy

#: Width (in nengo's current units, threshold 1) of the softplus smoothing of
#: the LIF onset used for gradients only.
SMOOTH_WIDTH = 0.02
#: Below ``1 - SMOOTH_CUT`` a LIF neuron's gradient is 0; above ``1 + SMOOTH_CUT``
#: it is the exact curve's (the softplus differs from ``J - 1`` by < 1e-8 there).
SMOOTH_CUT = 20 * SMOOTH_WIDTH


def x64():
    """A context in which jax computes in float64 (``jax.enable_x64`` in newer jax,
    ``jax.experimental.enable_x64`` in older)."""
    enable = getattr(jax, "enable_x64", None)
    if enable is None:
        enable = import_optional("jax.experimental", "popfit.finetune").enable_x64
    return enable(True)


def curve_kind(neuron_type):
    """``"lif"``, ``"relu"``, ``"step_lif"`` or ``"step_relu"`` (whole-step types):
    the rate formula of ``neuron_type`` (else ConversionError)."""
    step = wholestep.kind(neuron_type)
    if step is not None:
        return "step_" + step
    if type(neuron_type) in (nengo.LIF, nengo.LIFRate):
        return "lif"
    if type(neuron_type) in (nengo.RectifiedLinear, nengo.SpikingRectifiedLinear):
        return "relu"
    raise ConversionError(
        f"finetune supports fits of nengo.LIF, LIFRate, RectifiedLinear, "
        f"SpikingRectifiedLinear and nengo-loihi's LoihiLIF and LoihiSpikingRectifiedLinear "
        f"neurons (got {neuron_type!r}); convert the model with one of these neuron types")


def layer_constants(fit):
    """The fixed parameters of one layer's population fit, as a dict of arrays."""
    nt = fit.neuron_type
    kind = curve_kind(nt)
    const = {
        "gain_enc": np.asarray(fit.gain, dtype=float) * np.asarray(fit.encoders, dtype=float),
        "bias": np.asarray(fit.bias, dtype=float),
        "decoders": np.asarray(fit.decoders, dtype=float).reshape(-1),
        "amplitude": float(nt.amplitude),
        "half_width": float(np.max(np.abs(fit.domain))),
    }
    if kind == "lif":
        const["tau_rc"], const["tau_ref"] = float(nt.tau_rc), float(nt.tau_ref)
    elif kind.startswith("step_"):
        tau_rc, tau_ref = wholestep.discretized_taus(nt, wholestep.DT)
        const.update(dt=float(wholestep.DT), tau_rc=float(tau_rc), tau_ref=float(tau_ref))
    return kind, const


def _lif(x, c):
    """LIF rate at ``x = J - 1`` where ``x > 0`` (``x`` already safe: positive)."""
    return c["amplitude"] / (c["tau_ref"] + c["tau_rc"] * jnp.log1p(1.0 / x))


def _smooth_lif(x, c):
    """The LIF rate at ``x = J - 1`` with the onset softplus-smoothed (for gradients)."""
    near = x > -SMOOTH_CUT
    xs = jnp.where(near, x, 0.0)
    soft = SMOOTH_WIDTH * jax.nn.softplus(xs / SMOOTH_WIDTH)
    return jnp.where(near, _lif(jnp.maximum(soft, 1e-300), c), 0.0)


def _staircase(period, on, c):
    """nengo-loihi's whole-step rate ``amplitude / (dt * ceil(period / dt))`` where ``on``."""
    dt = c["dt"]
    return jnp.where(on, c["amplitude"] / dt / jnp.ceil(jnp.where(on, period, dt) / dt), 0.0)


def rates(kind, c, J):
    """Firing rates (Hz) at currents ``J``: the exact curve forward, a smooth one's
    gradient (see the module docstring)."""
    if kind == "relu":
        return c["amplitude"] * jnp.maximum(J, 0.0)
    if kind == "step_relu":
        on = J > 0
        Js = jnp.where(on, J, 1.0)
        exact = _staircase(1.0 / Js, on, c)
        smooth = jnp.where(on, c["amplitude"] * Js / (1.0 + 0.5 * c["dt"] * Js), 0.0)
    else:
        x = J - 1.0
        on = x > 0
        xs = jnp.where(on, x, 1.0)
        if kind == "lif":
            exact = jnp.where(on, _lif(xs, c), 0.0)
            smooth = _smooth_lif(x, c)
        else:  # step_lif: the surrogate has tau_ref half a step longer
            exact = _staircase(c["tau_ref"] + c["tau_rc"] * jnp.log1p(1.0 / xs), on, c)
            smooth = _smooth_lif(x, {**c, "tau_ref": wholestep.whole_step_tau_ref(
                c["tau_ref"], c["dt"])})
    return jax.lax.stop_gradient(exact) + (smooth - jax.lax.stop_gradient(smooth))


def population(kind, c, z):
    """Decoded output, shape ``z.shape``, and the summed rates per sample (Hz)."""
    J = z[..., None] * c["gain_enc"] + c["bias"]
    a = rates(kind, c, J)
    return a @ c["decoders"], jnp.sum(a, axis=tuple(range(1, a.ndim)))


def forward(params, layers, X, pre=None):
    """The converted model's rate-level output before the output nonlinearity.

    Parameters
    ----------
    params : list of (W, bias)
        Every layer's unit-level weights and bias (hidden layers, then the
        output layer), as `popfit.training.weights.initial_params` makes them:
        ``W`` a dense ``(n_in, n_out)`` array, the nonzeros of a sparse matrix
        (`SparseValues`) or, for a layer with skip connections, one of those
        per input (`Inputs`); every input of a layer is summed.
    layers : list of (kind, constants)
        Each hidden layer's population (`layer_constants`).
    X : array, shape (n_samples, n_features)
    pre : list, optional
        Receives each hidden layer's pre-activations (its weighted inputs plus
        bias), shape ``(n_samples, n_units)``, where the inputs are the earlier
        populations' decoded outputs (what the deployed network's layer receives).

    Returns
    -------
    out : array, shape (n_samples, n_outputs)
    spikes : array, shape (n_samples,)
        Expected spikes per second of all hidden neurons, per sample (Hz).
    """
    outputs, spikes = {-1: X}, 0.0
    for i, ((W, b), (kind, c)) in enumerate(zip(params[:-1], layers)):
        z = layer_input(W, outputs, i) + b
        if pre is not None:
            pre.append(z)
        outputs[i], s = population(kind, c, z)
        spikes = spikes + s
    W, b = params[-1]
    return layer_input(W, outputs, len(params) - 1) + b, spikes


def forward_compiled(params, layers, X, with_pre=False):
    """`forward`, compiled by ``jax.jit`` once per model structure and input shape.

    The neuron kinds (and sparsity patterns, skip sources) are static and
    the fits' constants traced, so refitted populations reuse the
    compilation; run op by op, a CNN's forward compiles dozens of small
    operations for every new input shape. Returns ``(out, spikes)``, and the
    list of pre-activations with ``with_pre``.
    """
    kinds = tuple(kind for kind, _ in layers)
    return _compiled(params, [c for _, c in layers], X, kinds, bool(with_pre))


@functools.partial(jax.jit, static_argnums=(3, 4))
def _compiled(params, consts, X, kinds, with_pre):
    pre = [] if with_pre else None
    out, spikes = forward(params, list(zip(kinds, consts)), X, pre=pre)
    return (out, spikes, pre) if with_pre else (out, spikes)


#: The output nonlinearities in jax (names as `popfit.targets`).
OUTPUT_FUNCTIONS = {
    "linear": lambda z: z,
    "sigmoid": lambda z: jax.nn.sigmoid(z),
    "softmax": lambda z: jax.nn.softmax(z, axis=-1),
    "tanh": lambda z: jnp.tanh(z),
    "relu": lambda z: jnp.maximum(z, 0.0),
    "exp": lambda z: jnp.exp(z),
}


def output_function(name):
    """The jax function of the output activation ``name`` (else ConversionError)."""
    if name not in OUTPUT_FUNCTIONS:
        raise ConversionError(
            f"finetune supports output activations {', '.join(OUTPUT_FUNCTIONS)} (got "
            f"{name!r})")
    return OUTPUT_FUNCTIONS[name]
