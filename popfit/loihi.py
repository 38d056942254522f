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

from ._validation import (check_bool, check_eval_points, check_finite_array, check_fit,
                          check_int, check_positive, current_caller, public)
from .exceptions import PopfitTypeError, PopfitValueError

#: Time step (s) of the staircase curves (nengo-loihi's ``rates`` default and
#: ``nengo_loihi.Simulator``'s default dt).
DT = 0.001
#: Compartments per Loihi core (nengo-loihi's ``MAX_COMPARTMENTS``).
MAX_COMPARTMENTS = 1024
#: Input axons per Loihi core (nengo-loihi's ``MAX_IN_AXONS``).
MAX_IN_AXONS = 4096
#: tau_rc (s) of the LIF whose limit is the rectified-linear surrogate
#: (``rate = 1 / (tau_ref + 1 / j)``: an LIF with tau_rc -> inf).
_RELU_SURROGATE_TAU_RC = 10.0
#: Points the staircase decoders are solved on (as fit_activation's polish grid).
_N_SOLVE_POINTS = 2001
_UNIFORM_SHARE = 0.1  # as popfit.fit: uniform share of the eval_points weighting
_RATE_ONLY_RIDGE = 1e-14
#: Loihi stores a compartment's membrane decay in 12 bits (nengo-loihi's
#: ``discretize_tau_rc`` rounds ``1 - exp(-dt / tau_rc)`` to steps of 1 / 4095).
_DECAY_LEVELS = 2**12 - 1
#: Bits of a weight magnitude `quantize` accepts (``convert``'s ``weight_bits``).
WEIGHT_BITS_RANGE = (2, 16)


def tau_rc_bounds(dt=DT):
    """Open interval of ``tau_rc`` (s) that Loihi's 12-bit decay keeps finite and > 0 at ``dt``.

    At or below the lower end the decay rounds to 1 (``tau_rc`` 0: the
    voltage is lost every step); at or above the upper end it rounds to 0
    (``tau_rc`` infinite: nengo-loihi's rate curve is 0 everywhere).
    """
    half = 0.5 / _DECAY_LEVELS
    return dt / -np.log(half), dt / -np.log1p(-half)


def import_nengo_loihi():
    """Import and return ``nengo_loihi``, or raise an ImportError that says how to get it."""
    try:
        import nengo_loihi
    except ImportError as err:
        raise ImportError(
            f"{current_caller()}: this needs nengo-loihi, which is not installed ({err}); install "
            "popfit's Loihi extra: pip install 'popfit[loihi]' (nengo-loihi 1.1 needs "
            "numpy < 2, so use a separate environment: see docs/loihi.md)") from None
    return nengo_loihi


def loihi_neuron_type(name, **kwargs):
    """nengo-loihi's ``LoihiLIF`` or ``LoihiSpikingRectifiedLinear`` by class name."""
    neurons = import_nengo_loihi().neurons
    if name == "LoihiSpikingRectifiedLinear":
        return neurons.LoihiSpikingRectifiedLinear()
    return neurons.LoihiLIF(min_voltage=0, **kwargs)


def _kind(neuron_type):
    """``"lif"`` or ``"relu"`` for the two supported nengo-loihi types, else None."""
    name = type(neuron_type).__name__
    return {"LoihiLIF": "lif", "LoihiSpikingRectifiedLinear": "relu"}.get(name)


def check_loihi_neuron_type(neuron_type):
    """Return a supported nengo-loihi neuron type instance, or raise."""
    if _kind(neuron_type) is None:
        raise PopfitTypeError(
            f"unsupported nengo-loihi neuron_type {neuron_type!r}; popfit fits "
            "nengo_loihi.neurons.LoihiLIF and LoihiSpikingRectifiedLinear")
    if neuron_type.amplitude != 1:
        raise PopfitValueError(
            f"neuron_type.amplitude must be 1 (got {neuron_type.amplitude!r}); "
            "the decoders already scale each neuron's output")
    if _kind(neuron_type) == "lif" and neuron_type.min_voltage != 0:
        raise PopfitValueError(
            f"LoihiLIF min_voltage must be 0 (got {neuron_type.min_voltage!r}), "
            "as Loihi's and popfit's LIF neurons")
    if _kind(neuron_type) == "lif":
        lo, hi = tau_rc_bounds()
        tau_rc = float(neuron_type.tau_rc)
        if not lo < tau_rc < hi or not 0 < discretized_taus(neuron_type)[0] < np.inf:
            raise PopfitValueError(
                f"LoihiLIF tau_rc must be in ({lo:.4g}, {hi:.4g}) s (got {tau_rc!r}): Loihi "
                f"stores the membrane decay 1 - exp(-dt / tau_rc) in 12 bits at dt = {DT:g} s, "
                "and outside that range it rounds to a tau_rc of 0 (no memory) or infinity "
                "(no leak; nengo-loihi's rate curve is then 0); pick a tau_rc inside it, "
                "e.g. the default 0.02 s")
    return neuron_type


def loihi_export_neuron_type(neuron_type, spiking):
    """The neuron type a popfit network uses for a fit of a nengo-loihi type."""
    if not spiking:
        raise PopfitValueError(
            f"fit.neuron_type {neuron_type!r} spikes on whole time steps and has "
            "no rate twin; export it with spiking=True (or fit nengo.LIFRate for a rate "
            "network)")
    return neuron_type


def discretized_taus(neuron_type, dt=DT):
    """``(tau_rc, tau_ref)`` (s) as Loihi runs them (nengo-loihi's discretization).

    ``tau_ref`` becomes ``dt * round(tau_ref / dt)``; ``tau_rc`` is rounded
    through its 12-bit decay constant. Rectified-linear neurons: ``(inf, 0)``.
    """
    if _kind(neuron_type) == "relu":
        return np.inf, 0.0
    from nengo_loihi.neurons import discretize_tau_rc, discretize_tau_ref

    return (float(discretize_tau_rc(neuron_type.tau_rc, dt)),
            float(discretize_tau_ref(neuron_type.tau_ref, dt)))


def staircase_max_rate(neuron_type, dt=DT):
    """Highest rate (Hz) the whole-step neuron can fire: ``1 / (dt * (round(tau_ref/dt) + 1))``."""
    tau_ref = discretized_taus(neuron_type, dt)[1]
    return 1.0 / (dt * (round(tau_ref / dt) + 1))


def surrogate_neuron_type(neuron_type, dt=DT):
    """The smooth rate neuron whose curve is the staircase's mean.

    A whole-step neuron with period ``p`` fires every ``ceil(p / dt)`` steps;
    over a range of currents ``ceil(p / dt) * dt`` is ``p + dt / 2`` on
    average, so the surrogate is an LIF whose ``tau_ref`` is ``dt / 2`` longer
    (for `LoihiSpikingRectifiedLinear`, ``1 / (dt / 2 + 1 / j)``: an LIF with a
    long ``tau_rc`` whose currents map back to the rectified-linear ones by
    `surrogate_to_currents`).
    """
    tau_rc, tau_ref = discretized_taus(neuron_type, dt)
    if _kind(neuron_type) == "relu":
        tau_rc = _RELU_SURROGATE_TAU_RC
    return nengo.LIFRate(tau_rc=tau_rc, tau_ref=tau_ref + 0.5 * dt)


def surrogate_to_currents(neuron_type, gain, bias):
    """Gains and biases of the surrogate fit in ``neuron_type``'s current units."""
    if _kind(neuron_type) == "relu":
        # LIF(tau_rc) period tau_rc * log1p(1 / (J - 1)) ~ 1 / j with j = (J - 1) / tau_rc
        return gain / _RELU_SURROGATE_TAU_RC, (bias - 1.0) / _RELU_SURROGATE_TAU_RC
    return gain, bias


def _grid_weights(eval_points, x):
    if eval_points is None:
        return np.full(len(x), 1.0 / len(x))
    lo, hi = x[0], x[-1]
    idx = np.rint((eval_points - lo) / (hi - lo) * (len(x) - 1)).astype(int)
    density = np.bincount(idx, minlength=len(x)) / len(eval_points)
    return (1.0 - _UNIFORM_SHARE) * density + _UNIFORM_SHARE / len(x)


def solve_decoders(rates, y, weights, synapse, max_rate):
    """Decoders minimizing ``sum_x w (A d - y)**2 + sum_i d_i**2 sum_x w var_i``.

    ``var_i`` is the variance of neuron i's regular spike train filtered by
    ``Lowpass(synapse)`` (`popfit.neurons.spike_noise_variance`); ``synapse``
    None fits rates only (a tiny ridge keeps the solve well posed). This is
    the objective `popfit.fit_activation` minimizes, solved for fixed rates.
    """
    from .neurons import spike_noise_variance

    if synapse is None:
        noise = np.full(rates.shape[1], _RATE_ONLY_RIDGE * max_rate**2)
    else:
        noise = weights @ spike_noise_variance(rates, synapse)[0]
    sw = np.sqrt(weights)
    a = np.vstack([sw[:, None] * rates, np.diag(np.sqrt(noise + 1e-300))])
    t = np.concatenate([sw * y, np.zeros(rates.shape[1])])
    return np.linalg.lstsq(a, t, rcond=None)[0]


class _Staircase:
    """The fit objective of `popfit.fit_activation` on the whole-step rate curve.

    ``cost(gain, bias)`` is the weighted squared rate error plus the spike
    noise the decoders pass on, with the decoders solved exactly
    (`solve_decoders`) for the given gains and biases; a neuron above
    ``max_rate`` or silent everywhere makes the cost infinite.
    """

    def __init__(self, neuron_type, x, y, weights, encoders, synapse, max_rate):
        self.neuron_type, self.x, self.y, self.w = neuron_type, x, y, weights
        self.encoders, self.synapse, self.max_rate = encoders, synapse, max_rate

    def rates(self, gain, bias):
        return self.neuron_type.rates(self.x[:, None] * self.encoders, gain, bias)

    def decoders(self, gain, bias):
        return solve_decoders(self.rates(gain, bias), self.y, self.w, self.synapse,
                              self.max_rate)

    def cost(self, gain, bias):
        from .neurons import spike_noise_variance

        a = self.rates(gain, bias)
        peak = a.max(axis=0)
        if np.any(peak > self.max_rate * (1 + 1e-9)) or np.any(peak == 0):
            return np.inf
        d = solve_decoders(a, self.y, self.w, self.synapse, self.max_rate)
        cost = self.w @ (a @ d - self.y) ** 2
        if self.synapse is not None:
            cost += (self.w @ spike_noise_variance(a, self.synapse)[0]) @ d**2
        return float(cost)


@public("staircase_decoders")
def staircase_decoders(fit, neuron_type=None, eval_points=None):
    """``fit`` with its decoders solved again against Loihi's whole-step rate curve.

    Keeps ``fit``'s gains, biases and encoders (so ``fit`` must be of an LIF
    or rectified-linear type whose currents mean the same on Loihi) and
    solves the decoders with the same noise-aware ridge as the fit, on the
    staircase of ``neuron_type`` (default: nengo-loihi's `LoihiLIF` with the
    fit's ``tau_rc``/``tau_ref``, or `LoihiSpikingRectifiedLinear`). This is
    the cheap fix for an existing fit; `fit_loihi` also refits the tuning.

    Returns
    -------
    PopulationFit
        Of ``neuron_type``.
    """
    from .neurons import is_lif
    from .result import PopulationFit
    from .targets import evaluate_target

    fit = check_fit(fit)
    if neuron_type is None:
        nt = fit.neuron_type
        if is_lif(nt):
            neuron_type = loihi_neuron_type("LoihiLIF", tau_rc=nt.tau_rc, tau_ref=nt.tau_ref)
        elif isinstance(nt, nengo.RectifiedLinear):
            neuron_type = loihi_neuron_type("LoihiSpikingRectifiedLinear")
        else:
            raise PopfitTypeError(
                f"fit.neuron_type must be an LIF or rectified-linear type, whose currents "
                f"mean the same on Loihi (got {nt!r}); refit with "
                "fit_activation(..., neuron_type='LoihiLIF') instead")
    neuron_type = check_loihi_neuron_type(neuron_type)
    lo, hi = fit.domain
    x = np.linspace(lo, hi, _N_SOLVE_POINTS)
    points = None if eval_points is None else check_eval_points(eval_points, fit.domain)
    stair = _Staircase(neuron_type, x, evaluate_target(fit.target, x),
                       _grid_weights(points, x), fit.encoders, fit.synapse, np.inf)
    return PopulationFit.from_parameters(
        target=fit.target, domain=fit.domain, neuron_type=neuron_type, gain=fit.gain,
        bias=fit.bias, encoders=fit.encoders, decoders=stair.decoders(fit.gain, fit.bias),
        max_rate=fit.max_rate, synapse=fit.synapse, seed=fit.seed, success=fit.success,
        message=f"{fit.message}; decoders solved on the whole-step staircase",
        nfev=fit.nfev, fit_time=fit.fit_time)


def fit_loihi(target, n_neurons=4, *, neuron_type, domain=None, max_rate=400.0,
              synapse=0.005, eval_points=None, seed=None, search=None):
    """`popfit.fit_activation` for nengo-loihi's whole-step neuron types.

    Called by ``fit_activation(..., neuron_type=LoihiLIF())`` (or
    ``LoihiSpikingRectifiedLinear()``, or the names ``"LoihiLIF"``,
    ``"LoihiSpikingRectifiedLinear"``). The staircase rate curve
    ``1 / (ceil(period / dt) * dt)`` has zero derivative almost everywhere, so

    1. gains, biases and encoder signs are optimized by `fit_activation` on
       the smooth `surrogate_neuron_type` (the staircase's mean: tau_ref
       + dt / 2), with the same noise model and ``eval_points``;
    2. the decoders are solved exactly (the same noise-aware ridge) against
       the true staircase rates on 2,001 points;
    3. gains and biases are polished on the staircase objective itself by
       Nelder-Mead (derivative-free; ``300 * n_neurons`` evaluations at most),
       the decoders solved exactly at each step.

    Measured (benchmarks/bench_loihi.py, tanh, 6 s sweep, 10 ms filter,
    nengo-loihi's emulator): steps 1-2 gave 0.039 NRMSE for 4 neurons,
    step 3 0.037; a plain LIF fit gives 0.068 there.

    ``max_rate`` bounds the staircase rate: the surrogate's is
    ``1 / (1 / max_rate + dt / 2)`` and the polish rejects any neuron above
    ``max_rate``. (A `LoihiLIF` with ``tau_ref = 2 ms`` cannot exceed 333 Hz.)
    The fit's metrics (``nrmse``, ``spiking_nrmse``...) and ``predict`` use
    the staircase at ``dt = 1 ms`` (nengo-loihi's default).

    Returns
    -------
    PopulationFit
        With ``neuron_type`` the nengo-loihi type, gains and biases in its
        current units.
    """
    import time

    import scipy.optimize

    from .fit import fit_activation
    from .result import PopulationFit
    from .targets import evaluate_target, resolve_target

    start = time.perf_counter()
    neuron_type = check_loihi_neuron_type(neuron_type)
    tau_ref = discretized_taus(neuron_type)[1]
    limit = 1.0 / tau_ref if tau_ref > 0 else None
    max_rate = check_positive(
        max_rate, "max_rate", upper=limit,
        upper_why=f" Hz (1/tau_ref: {type(neuron_type).__name__} with tau_ref = "
        f"{tau_ref:g} s after Loihi's rounding to whole steps)")
    surrogate = surrogate_neuron_type(neuron_type)
    smooth = fit_activation(target, n_neurons, neuron_type=surrogate, domain=domain,
                            max_rate=1.0 / (1.0 / max_rate + 0.5 * DT), synapse=synapse,
                            eval_points=eval_points, seed=seed, search=search)
    gain, bias = surrogate_to_currents(neuron_type, smooth.gain, smooth.bias)
    target, (lo, hi) = resolve_target(target, domain)
    x = np.linspace(lo, hi, _N_SOLVE_POINTS)
    points = None if eval_points is None else np.asarray(eval_points, dtype=float).ravel()
    stair = _Staircase(neuron_type, x, evaluate_target(target, x),
                       _grid_weights(points, x), smooth.encoders, smooth.synapse, max_rate)
    n = n_neurons
    # polish in (log gain, bias / gain): scale-free steps for every neuron
    theta0 = np.concatenate([np.log(gain), bias / gain])

    def cost(theta):
        g = np.exp(theta[:n])
        return stair.cost(g, theta[n:] * g)

    cost0 = cost(theta0)
    res = scipy.optimize.minimize(
        cost, theta0, method="Nelder-Mead",
        options={"maxfev": 300 * n, "xatol": 1e-6, "fatol": 1e-12 * max(cost0, 1e-300),
                 "adaptive": True})
    if np.isfinite(res.fun) and res.fun < cost0:
        gain = np.exp(res.x[:n])
        bias = res.x[n:] * gain
    j0 = 1.0 if _kind(neuron_type) == "lif" else 0.0  # + neurons first, by intercept
    order = np.lexsort(((j0 - bias) / gain * smooth.encoders, -smooth.encoders))
    return PopulationFit.from_parameters(
        target=target, domain=(lo, hi), neuron_type=neuron_type, gain=gain[order],
        bias=bias[order], encoders=smooth.encoders[order],
        decoders=stair.decoders(gain, bias)[order], max_rate=max_rate,
        synapse=smooth.synapse, seed=seed, success=smooth.success,
        message=(f"gains and biases fitted on the surrogate {surrogate!r} ({smooth.message}), "
                 f"polished on the whole-step staircase ({res.nfev} evaluations, squared "
                 f"error {cost0:.3g} -> {min(res.fun, cost0):.3g}); decoders solved on the "
                 "staircase"),
        nfev=smooth.nfev + int(res.nfev), fit_time=time.perf_counter() - start)


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
    from .conversion.spec import apply_activation, check_samples

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
