"""The baselines popfit is measured against, in one place.

Three baselines, each measured in the same run as popfit's own numbers:

1. **Nengo's default random tuning** (`nengo_default_nrmse`,
   `nengo_default_tuning`): a ``nengo.Ensemble(n_neurons, 1, seed=seed)``
   with nengo's default distributions (encoders
   ``ScatteredHypersphere(surface=True)``, i.e. +1/-1 in one dimension;
   ``max_rates`` ``Uniform(200, 400)``; ``intercepts`` ``Uniform(-1, 0.9)``),
   decoders solved by ``nengo.solvers.LstsqL2(reg=0.1)``. The random numbers
   are drawn exactly as nengo's builder draws them (same generator, same
   order), so ``seed=s`` gives the gains and biases that ``nengo.Simulator``
   builds for ``nengo.Ensemble(..., seed=s)`` -- without paying for a
   simulator build per seed.
2. **The signed one-neuron baseline** (`signed_baseline_neuron`,
   `signed_baseline`, `SignedBaselineLayer`): one ``nengo.RegularSpiking``
   neuron of the signed rate type (``nengo.Tanh``, ``nengo.Sigmoid``, or a
   linear rate) per unit, at the same maximum rate, whose spikes are
   negative where the target is: what a unit costs when the hardware allows
   negative spikes.
3. **The accuracy table** (`compute_accuracy`, `format_accuracy`): popfit's
   NRMSE against Nengo's default tuning per target and size, as the CLI
   (``popfit table``), `popfit.plot_accuracy` and ``benchmarks/bench_fit.py``
   show it.
"""

from collections import namedtuple

import nengo
import numpy as np

from ._validation import check_finite_array, check_int, check_seed, public
from .exceptions import PopfitTypeError, PopfitValueError
from .fit import fit_activation
from .metrics import N_EVAL_POINTS, error_scale, nrmse
from .neurons import LinearRate, check_max_rate, resolve_neuron_type
from .targets import evaluate_target, resolve_target

__all__ = ["nengo_default_nrmse", "nengo_default_median", "nengo_default_tuning",
           "SignedBaseline", "signed_baseline_neuron", "signed_baseline", "signed_model_network",
           "SignedBaselineLayer", "compute_accuracy", "format_accuracy"]


def _check_seeds(seeds):
    try:
        seeds = list(seeds)
    except TypeError:
        raise PopfitTypeError(
            f"seeds must be an iterable of integers in [0, 2**32 - 1] (got {seeds!r})"
        ) from None
    if not seeds:
        raise PopfitValueError(f"seeds must hold at least one seed (got {seeds!r})")
    return [check_seed(s, f"seeds[{i}]") for i, s in enumerate(seeds)]


@public
def nengo_default_tuning(n_neurons, *, neuron_type="LIF", max_rate=400.0, seed=0):
    """Encoders, gains and biases nengo builds for a default 1-D Ensemble.

    The ensemble is ``nengo.Ensemble(n_neurons, 1, neuron_type=neuron_type,
    max_rates=Uniform(max_rate / 2, max_rate), seed=seed)`` (with the default
    ``max_rate=400`` that is nengo's default ``Uniform(200, 400)``); the
    values equal ``nengo.Simulator(...).data[ens]`` for that ensemble.

    Parameters
    ----------
    n_neurons : int
        Number of neurons (>= 1).
    neuron_type : str or nengo.neurons.NeuronType
        As in `popfit.fit_activation`.
    max_rate : float
        Upper end (Hz) of the uniform max-rate distribution.
    seed : int
        The ensemble's seed, in [0, 2**32 - 1].

    Returns
    -------
    encoders, gain, bias : ndarray, shape (n_neurons,)
        Encoder signs (+1/-1), gains and bias currents, for the represented
        value in [-1, 1] (radius 1).
    """
    n_neurons = check_int(n_neurons, "n_neurons", low=1)
    neuron_type = resolve_neuron_type(neuron_type)
    max_rate = check_max_rate(max_rate, neuron_type)
    seed = check_seed(seed)
    return _tuning(_default_ensemble(n_neurons, neuron_type, max_rate), seed)


def _default_ensemble(n_neurons, neuron_type, max_rate):
    """The default 1-D Ensemble whose build `_tuning` reproduces (not in any network)."""
    with nengo.Network(add_to_container=False):
        return nengo.Ensemble(n_neurons, 1, neuron_type=neuron_type,
                              max_rates=nengo.dists.Uniform(max_rate / 2.0, max_rate))


def _tuning(ens, seed):
    """Encoder signs, gains and biases nengo's builder draws for ``ens`` with ``seed``."""
    from nengo.builder.ensemble import gen_eval_points, get_gain_bias
    from nengo.dists import get_samples

    # the builder's draws, in the builder's order (nengo/builder/ensemble.py)
    rng = np.random.RandomState(seed)
    gen_eval_points(ens, ens.eval_points, rng=rng)
    encoders = get_samples(ens.encoders, ens.n_neurons, 1, rng=rng)
    encoders = encoders / np.linalg.norm(encoders, axis=1, keepdims=True)
    gain, bias, _, _ = get_gain_bias(ens, rng)
    return encoders[:, 0].astype(float), gain.astype(float), bias.astype(float)


@public
def nengo_default_nrmse(target, n_neurons, *, neuron_type="LIF", domain=None,
                        max_rate=400.0, seeds=range(20), n_points=N_EVAL_POINTS):
    """NRMSE of Nengo's default random tuning, one value per seed.

    For each seed, a default ``nengo.Ensemble(n_neurons, 1, seed=seed)`` (see
    `nengo_default_tuning`) represents the input mapped linearly from
    ``domain`` onto [-1, 1] (for the symmetric default domains this is an
    ensemble with ``radius = hi``); its decoders for the target are solved by
    ``nengo.solvers.LstsqL2(reg=0.1)`` on ``n_points`` evenly spaced points,
    and the error is measured on the same points.

    Parameters
    ----------
    target : str or callable
        As in `popfit.fit_activation`.
    n_neurons : int
        Number of neurons (>= 1).
    neuron_type : str or nengo.neurons.NeuronType
        As in `popfit.fit_activation` (default ``"LIF"``).
    domain : (float, float), optional
        Input interval; named targets have defaults.
    max_rate : float
        Max rates are drawn from ``Uniform(max_rate / 2, max_rate)`` (Hz); the
        default 400 gives nengo's default ``Uniform(200, 400)``. No neuron
        fires above ``max_rate`` on the domain.
    seeds : iterable of int
        Ensemble seeds, each in [0, 2**32 - 1] (default ``range(20)``).
    n_points : int
        Number of evenly spaced points the decoders are solved and the error
        measured on (>= 2).

    Returns
    -------
    ndarray, shape (len(seeds),)
        RMSE divided by the target's range (max f - min f) on the domain, per seed.
    """
    n_neurons = check_int(n_neurons, "n_neurons", low=1)
    neuron_type = resolve_neuron_type(neuron_type)
    max_rate = check_max_rate(max_rate, neuron_type)
    target, (lo, hi) = resolve_target(target, domain)
    n_points = check_int(n_points, "n_points", low=2)
    seeds = _check_seeds(seeds)

    x = np.linspace(lo, hi, n_points)
    y = evaluate_target(target, x)
    scale = error_scale(y)
    v = (x - 0.5 * (lo + hi)) / (0.5 * (hi - lo))  # the represented value, in [-1, 1]
    solver = nengo.solvers.LstsqL2(reg=0.1)
    ens = _default_ensemble(n_neurons, neuron_type, max_rate)
    out = np.empty(len(seeds))
    for k, seed in enumerate(seeds):
        encoders, gain, bias = _tuning(ens, seed)
        a = neuron_type.rates(v[:, None] * encoders, gain, bias)
        d, _ = solver(a, y[:, None])
        out[k] = nrmse(a @ d[:, 0], y, scale)
    return out


def nengo_default_median(target, n_neurons, **kwargs):
    """Median over seeds of `nengo_default_nrmse` (same arguments), a float."""
    return float(np.median(nengo_default_nrmse(target, n_neurons, **kwargs)))


# --- 2. the signed one-neuron baseline --------------------------------------

SignedBaseline = namedtuple("SignedBaseline", "name neuron_type gain decoder")
SignedBaseline.__doc__ = """The signed one-neuron baseline of a unit.

The neuron is ``nengo.RegularSpiking(neuron_type)`` with input current
``J = gain * x`` (bias 0); its decoded output is ``decoder * spikes``.

Attributes
----------
name : str
    Description, e.g. ``"RegularSpiking(Tanh(tau_ref=0.0025))"``.
neuron_type : nengo.neurons.NeuronType
    The signed rate type wrapped in ``nengo.RegularSpiking``.
gain : float
    Input current per unit of ``x``.
decoder : float
    Output per spike/dt (the reciprocal of the rate, in Hz, at output 1).
"""


def signed_baseline_neuron(target, max_rate, domain=None):
    """The signed one-neuron baseline of a named target, or None if it has none.

    Parameters
    ----------
    target : str or Target
        ``"tanh"``, ``"sigmoid"`` or ``"linear"`` (or their aliases) have a
        baseline; other targets and callables return None.
    max_rate : float
        The neuron's highest rate (Hz) on the domain.
    domain : (float, float), optional
        Input interval (used by ``"linear"``, whose rate is
        ``max_rate * x / max|x|``); the target's default if None.

    Returns
    -------
    SignedBaseline or None
        Its rate is ``max_rate * tanh(x)``, ``max_rate * sigmoid(x)`` or
        ``max_rate * x / max|x|`` over the domain (negative rates are negative
        spikes).
    """
    target, (lo, hi) = resolve_target(target, domain)
    if not target.named:
        return None
    rate = float(max_rate)
    if target.name in ("tanh", "sigmoid"):
        base = (nengo.Tanh if target.name == "tanh" else nengo.Sigmoid)(tau_ref=1.0 / rate)
        return SignedBaseline(f"RegularSpiking({type(base).__name__}(tau_ref={1.0 / rate:g}))",
                              base, 1.0, 1.0 / rate)
    if target.name == "linear":
        gain = rate / max(abs(lo), abs(hi))
        return SignedBaseline("RegularSpiking(LinearRate())", LinearRate(), gain, 1.0 / gain)
    return None


def signed_baseline(fit):
    """The signed one-neuron baseline for ``fit`` (its target, max rate and domain).

    Returns
    -------
    SignedBaseline or None
        See `signed_baseline_neuron`; None for targets other than tanh,
        sigmoid and linear.
    """
    return signed_baseline_neuron(fit.target, fit.max_rate, fit.domain)


class SignedBaselineLayer(nengo.Network):
    """``n_units`` signed baseline units: one ``RegularSpiking`` neuron each.

    The counterpart of `popfit.PopulationLayer` for the signed baseline: unit
    ``u`` is one neuron of `signed_baseline_neuron` (``target``,
    ``max_rate``, ``domain``) fed ``x_u + input_bias_u``, whose spikes are
    negative where the target is. The input and output connections add no
    synapse (``synapse=None``).

    Parameters
    ----------
    target : str or Target
        ``"tanh"``, ``"sigmoid"`` or ``"linear"``.
    n_units : int
        Number of units (>= 1).
    max_rate : float
        Highest rate (Hz) of each neuron on the domain.
    domain : (float, float), optional
        Input interval (sets the linear baseline's gain); the target's default if None.
    input_bias : array_like, shape (n_units,), optional
        Added to each unit's input (folded into the neurons' bias currents).
    label : str, optional
        Network label (default ``"SignedBaselineLayer(<target>, <n_units>)"``).
    **kwargs
        Passed to `nengo.Network` (e.g. ``seed``).

    Attributes
    ----------
    baseline : SignedBaseline
    ensemble : nengo.Ensemble
        ``n_units`` neurons; probe ``ensemble.neurons`` for the signed spikes
        (+-1/dt).
    input, output : nengo.Node
        Size ``n_units``; ``output`` is ``decoder * spikes`` per unit.
    """

    @public
    def __init__(self, target, n_units=1, *, max_rate=400.0, domain=None, input_bias=None,
                 label=None, **kwargs):
        n_units = check_int(n_units, "n_units", low=1)
        base = signed_baseline_neuron(target, max_rate, domain)
        if base is None:
            raise PopfitValueError(
                f"target {target!r} has no signed baseline neuron; "
                "use 'tanh', 'sigmoid' or 'linear'"
            )
        bias = np.zeros(n_units) if input_bias is None else check_finite_array(
            input_bias, "input_bias", shape=(n_units,), shape_name="(n_units,)")
        self.baseline = base
        if label is None:
            label = f"SignedBaselineLayer({base.name}, {n_units})"
        super().__init__(label=label, **kwargs)
        with self:
            self.input = nengo.Node(size_in=n_units, label="input")
            self.ensemble = nengo.Ensemble(
                n_units, 1, neuron_type=nengo.RegularSpiking(base.neuron_type),
                gain=np.ones(n_units), bias=base.gain * bias,
                encoders=np.ones((n_units, 1)), eval_points=np.zeros((1, 1)),
                label="signed baseline")
            self.output = nengo.Node(size_in=n_units, label="output")
            nengo.Connection(self.input, self.ensemble.neurons, transform=base.gain,
                             synapse=None)
            nengo.Connection(self.ensemble.neurons, self.output, transform=base.decoder,
                             synapse=None)


def signed_model_network(model, connection_synapse=None):
    """The signed baseline of a converted model: one signed neuron per unit.

    Every hidden unit of ``model`` (a `popfit.ConvertedModel`) becomes one
    `signed_baseline` neuron of its layer's fit (same target, maximum rate
    and domain), with the source model's weights between them (sparse for
    convolutions, and the skip connections): the network a converter that
    allows negative spikes builds (nengo's ``RegularSpiking(Tanh())``). One
    Ensemble per layer; ``net.input``, ``net.output`` (before the output
    nonlinearity) and ``net.layers`` (the ensembles) as in
    `popfit.conversion.build_network`.

    Parameters
    ----------
    model : popfit.ConvertedModel
    connection_synapse : float, optional
        Lowpass time constant (s) of the connections from neurons; default the
        model's.
    """
    spec, fits = model.spec, model.fits
    synapse = model.connection_synapse if connection_synapse is None else connection_synapse
    bases = [signed_baseline(fit) for fit in fits]
    for layer, base in zip(spec.hidden, bases):
        if base is None:
            raise PopfitValueError(
                f"layer {layer.label!r} has activation {layer.activation!r}, which has no "
                "signed baseline neuron (tanh, sigmoid and linear have one)")

    def sparse_or_dense(matrix):
        if hasattr(matrix, "toarray"):
            return nengo.transforms.Sparse(matrix.shape, init=matrix.tocsr())
        return np.asarray(matrix)

    with nengo.Network(label=f"signed baseline of {spec.source}") as net:
        net.input = nengo.Node(size_in=spec.n_features, label="input")
        net.output = nengo.Node(size_in=spec.output.n_out, label="output")
        net.layers = [nengo.Ensemble(
            layer.n_out, 1, neuron_type=nengo.RegularSpiking(base.neuron_type),
            gain=np.ones(layer.n_out), bias=base.gain * layer.bias,
            encoders=np.ones((layer.n_out, 1)), eval_points=np.zeros((1, 1)),
            label=f"signed {layer.label}") for layer, base in zip(spec.hidden, bases)]
        for j, layer in enumerate(spec.layers):
            out = j == len(spec.hidden)
            post = net.output if out else net.layers[j].neurons
            scale = 1.0 if out else bases[j].gain
            for source, matrix in layer.inputs(j):
                if source == -1:
                    nengo.Connection(net.input, post, synapse=None,
                                     transform=sparse_or_dense(scale * matrix.T))
                elif matrix.shape[0] and (not hasattr(matrix, "nnz") or matrix.nnz):
                    w = scale * bases[source].decoder * matrix.T
                    nengo.Connection(net.layers[source].neurons, post, synapse=synapse,
                                     transform=sparse_or_dense(w))
        if np.any(spec.output.bias != 0):
            nengo.Connection(nengo.Node(spec.output.bias, label="output bias"), net.output,
                             synapse=None)
    return net


# --- 3. the accuracy table ---------------------------------------------------

@public
def compute_accuracy(targets=("tanh", "sigmoid", "linear"), n_neurons=(1, 2, 3, 4, 6, 8), *,
                     neuron_type="LIF", max_rate=400.0, synapse=None, seeds=range(10)):
    """popfit's NRMSE and Nengo's default tuning's, per target and population size.

    The numbers of `popfit.plot_accuracy`, ``popfit table`` and
    ``benchmarks/bench_fit.py`` (`format_accuracy` prints them). Each fit
    uses ``seed=0``.

    Parameters
    ----------
    targets : str or sequence of str
        Named targets, each on its default domain.
    n_neurons : sequence of int
        Population sizes (>= 1 each).
    neuron_type, max_rate, synapse
        As in `popfit.fit_activation` (max_rate in Hz, synapse in s).
    seeds : iterable of int
        Ensemble seeds for Nengo's default tuning (`nengo_default_nrmse`).

    Returns
    -------
    dict
        ``{target: {"n_neurons": list of int, "popfit": list of float (rate
        NRMSE), "popfit_spiking": list of float or None (expected spiking
        NRMSE, when ``synapse`` is given), "nengo": ndarray of shape
        (len(n_neurons), len(seeds)), "fit_time": list of float (s),
        "neuron_type": str, "max_rate": float, "synapse": float or None}}``.
    """
    if isinstance(targets, str):
        targets = (targets,)
    targets = list(targets)
    if not targets:
        raise PopfitValueError("targets must hold at least one named target (got none)")
    try:
        sizes = list(n_neurons)
    except TypeError:
        raise PopfitTypeError(
            f"n_neurons must be a sequence of integers >= 1 (got {n_neurons!r})") from None
    sizes = [check_int(n, f"n_neurons[{i}]", low=1) for i, n in enumerate(sizes)]
    if not sizes:
        raise PopfitValueError(f"n_neurons must hold at least one size (got {n_neurons!r})")
    seeds = _check_seeds(seeds)
    results = {}
    for target in targets:
        fits = [fit_activation(target, n, neuron_type=neuron_type, max_rate=max_rate,
                               synapse=synapse, seed=0) for n in sizes]
        results[target] = {
            "n_neurons": sizes,
            "popfit": [f.nrmse for f in fits],
            "popfit_spiking": None if synapse is None else [f.spiking_nrmse for f in fits],
            "nengo": np.array([
                nengo_default_nrmse(target, n, neuron_type=neuron_type, max_rate=max_rate,
                                    seeds=seeds) for n in sizes]),
            "fit_time": [f.fit_time for f in fits],
            "neuron_type": type(fits[0].neuron_type).__name__,
            "max_rate": fits[0].max_rate,
            "synapse": fits[0].synapse,
        }
    return results


@public
def format_accuracy(results):
    """The accuracy table of `compute_accuracy` as plain text (returned, not printed).

    One row per target and size: popfit's rate NRMSE (and its expected
    spiking NRMSE when a synapse was given), the median over seeds of Nengo's
    default tuning, their ratio and the fit time (s).
    """
    if not isinstance(results, dict) or not results:
        raise PopfitTypeError(
            f"results must be a non-empty dict from popfit.baseline.compute_accuracy "
            f"(got {type(results).__name__})"
        )
    first = next(iter(results.values()))
    n_seeds = np.shape(first["nengo"])[1]
    spiking = first.get("popfit_spiking") is not None
    lines = [
        f"NRMSE over the domain (RMSE / range of the target, {N_EVAL_POINTS} points), "
        f"max_rate {first.get('max_rate', 400.0):g} Hz, synapse {first.get('synapse')}; "
        f"nengo = Nengo default tuning, median over {n_seeds} seeds (LstsqL2 reg 0.1)",
        f"{'target':>9} {'neuron':>15} {'N':>3} {'popfit':>10}"
        + (f" {'spiking':>10}" if spiking else "")
        + f" {'nengo':>10} {'ratio':>7} {'fit s':>6}",
    ]
    for target, r in results.items():
        medians = np.median(np.asarray(r["nengo"], dtype=float), axis=1)
        times = r.get("fit_time") or [float("nan")] * len(r["n_neurons"])
        for k, n in enumerate(r["n_neurons"]):
            row = f"{target:>9} {r.get('neuron_type', ''):>15} {n:>3} {r['popfit'][k]:>10.5f}"
            if spiking:
                row += f" {r['popfit_spiking'][k]:>10.5f}"
            row += (f" {medians[k]:>10.5f} {r['popfit'][k] / medians[k]:>7.4f}"
                    f" {times[k]:>6.2f}")
            lines.append(row)
    return "\n".join(lines)
