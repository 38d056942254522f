"""The baseline popfit is measured against: Nengo's default random tuning.

`nengo_default_nrmse` reproduces what DESIGN.md's baseline table measured: a
``nengo.Ensemble(n_neurons, 1, seed=seed)`` with nengo's default
distributions (encoders ``ScatteredHypersphere(surface=True)``, i.e. +1/-1 in
one dimension; ``max_rates`` ``Uniform(200, 400)``; ``intercepts``
``Uniform(-1, 0.9)``), decoders solved by ``nengo.solvers.LstsqL2(reg=0.1)``.
The random numbers are drawn exactly as nengo's builder draws them (same
generator, same order), so ``seed=s`` gives the gains and biases that
``nengo.Simulator`` builds for ``nengo.Ensemble(..., seed=s)`` -- without
paying for a simulator build per seed.
"""

import numpy as np

from ._validation import check_int, public
from .exceptions import PopfitValueError
from .neurons import check_max_rate, resolve_neuron_type
from .targets import evaluate_target, resolve_target

__all__ = ["nengo_default_nrmse", "nengo_default_median", "nengo_default_tuning"]


def _check_seeds(seeds):
    try:
        seeds = list(seeds)
    except TypeError:
        raise PopfitValueError(
            f"seeds must be an iterable of integers >= 0 (got {seeds!r})"
        ) from None
    if not seeds:
        raise PopfitValueError(f"seeds must hold at least one seed (got {seeds!r})")
    return [check_int(s, "seeds[i]", low=0) for s in seeds]


@public("nengo_default_tuning")
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
        The ensemble's seed.

    Returns
    -------
    encoders, gain, bias : ndarray, shape (n_neurons,)
        Encoder signs (+1/-1), gains and bias currents, for the represented
        value in [-1, 1] (radius 1).
    """
    n_neurons = check_int(n_neurons, "n_neurons", low=1)
    neuron_type = resolve_neuron_type(neuron_type)
    max_rate = check_max_rate(max_rate, neuron_type)
    seed = check_int(seed, "seed", low=0)
    return _tuning(n_neurons, neuron_type, max_rate, seed)


def _tuning(n_neurons, neuron_type, max_rate, seed, _cache={}):
    import nengo
    from nengo.builder.ensemble import gen_eval_points, get_gain_bias
    from nengo.dists import get_samples

    key = (n_neurons, repr(neuron_type), max_rate)
    ens = _cache.get(key)
    if ens is None:
        with nengo.Network(add_to_container=False):
            ens = nengo.Ensemble(
                n_neurons, 1, neuron_type=neuron_type,
                max_rates=nengo.dists.Uniform(max_rate / 2.0, max_rate))
        _cache.clear()
        _cache[key] = ens
    # the builder's draws, in the builder's order (nengo/builder/ensemble.py)
    rng = np.random.RandomState(seed)
    gen_eval_points(ens, ens.eval_points, rng=rng)
    encoders = get_samples(ens.encoders, n_neurons, 1, rng=rng)
    encoders = encoders / np.linalg.norm(encoders, axis=1, keepdims=True)
    gain, bias, _, _ = get_gain_bias(ens, rng)
    return encoders[:, 0].astype(float), gain.astype(float), bias.astype(float)


@public("nengo_default_nrmse")
def nengo_default_nrmse(target, n_neurons, *, neuron_type="LIF", domain=None,
                        max_rate=400.0, seeds=range(20), n_points=1001):
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
        Ensemble seeds (default ``range(20)``).
    n_points : int
        Number of evenly spaced points the decoders are solved and the error
        measured on (>= 2).

    Returns
    -------
    ndarray, shape (len(seeds),)
        RMSE divided by the target's range (max f - min f) on the domain, per seed.
    """
    import nengo

    n_neurons = check_int(n_neurons, "n_neurons", low=1)
    neuron_type = resolve_neuron_type(neuron_type)
    max_rate = check_max_rate(max_rate, neuron_type)
    target, (lo, hi) = resolve_target(target, domain)
    n_points = check_int(n_points, "n_points", low=2)
    seeds = _check_seeds(seeds)

    x = np.linspace(lo, hi, n_points)
    y = evaluate_target(target, x)
    scale = float(np.ptp(y)) or 1.0
    v = (x - 0.5 * (lo + hi)) / (0.5 * (hi - lo))  # the represented value, in [-1, 1]
    solver = nengo.solvers.LstsqL2(reg=0.1)
    out = np.empty(len(seeds))
    for k, seed in enumerate(seeds):
        encoders, gain, bias = _tuning(n_neurons, neuron_type, max_rate, seed)
        a = neuron_type.rates(v[:, None] * encoders, gain, bias)
        d, _ = solver(a, y[:, None])
        out[k] = np.sqrt(np.mean((a @ d[:, 0] - y) ** 2)) / scale
    return out


def nengo_default_median(target, n_neurons, **kwargs):
    """Median over seeds of `nengo_default_nrmse` (same arguments), a float."""
    return float(np.median(nengo_default_nrmse(target, n_neurons, **kwargs)))
