"""Accuracy measures of a fitted population, and the grids they are measured on.

Every error popfit reports is normalised by `error_scale` of the target on
the domain: its range ``max f - min f``, floored at `SCALE_FLOOR` times the
target's largest magnitude (so a near-constant target such as
``1 + 1e-9 * x`` is measured against 1% of its size, not against its tiny
variation), and 1.0 for a target that is zero everywhere.

* NRMSE: root-mean-square error over `N_EVAL_POINTS` evenly spaced points of
  the domain, divided by the scale.
* max error: largest absolute error over `N_FINE_POINTS` evenly spaced points
  (fine enough to catch the steep LIF onsets), divided by the scale.
* expected spiking NRMSE: the NRMSE of the spiking population filtered by a
  lowpass synapse, ``sqrt(mean(err**2) + mean(var @ decoders**2)) / scale``,
  with ``var`` each neuron's spike-train variance
  (`popfit.neurons.spike_noise_variance`), over the `N_EVAL_POINTS` grid.

The population's rates are computed in chunks of at most `CHUNK_ELEMENTS`
(grid points times neurons), so memory stays bounded whatever the number of
neurons.
"""

from typing import NamedTuple, Optional

import numpy as np

from .neurons import spike_noise_variance
from .targets import evaluate_target

N_EVAL_POINTS = 1001  # grid NRMSE (rate and expected spiking) is reported on
N_FINE_POINTS = 20001  # grid max_error is reported on (steep LIF onsets)
SCALE_FLOOR = 0.01  # error scale >= this fraction of the target's largest |value|
CHUNK_ELEMENTS = 2**20  # rates computed at most this many (points x neurons) at a time


def grid(domain, n_points=N_EVAL_POINTS):
    """``n_points`` evenly spaced inputs over ``domain = (lo, hi)``, ends included."""
    return np.linspace(float(domain[0]), float(domain[1]), n_points)


def error_scale(y):
    """The scale errors on target values ``y`` are divided by (a positive float).

    ``max(y) - min(y)``, but at least ``SCALE_FLOOR * max|y|``; 1.0 if ``y``
    is zero everywhere. Computed without overflow for any finite ``y``.
    """
    y = np.asarray(y, dtype=float)
    hi, lo = float(np.max(y)), float(np.min(y))
    value_range = 2.0 * (0.5 * hi - 0.5 * lo)  # no overflow for |y| <= float max / 2
    scale = max(value_range, SCALE_FLOOR * max(abs(hi), abs(lo)))
    return scale if scale > 0 else 1.0


def nrmse(y_pred, y, scale=None):
    """Root-mean-square of ``y_pred - y``, divided by ``scale`` (default `error_scale(y)`)."""
    y = np.asarray(y, dtype=float)
    scale = error_scale(y) if scale is None else scale
    return float(np.sqrt(np.mean(((np.asarray(y_pred, dtype=float) - y) / scale) ** 2)))


def max_error(y_pred, y, scale=None):
    """Largest ``|y_pred - y|``, divided by ``scale`` (default `error_scale(y)`)."""
    y = np.asarray(y, dtype=float)
    scale = error_scale(y) if scale is None else scale
    return float(np.max(np.abs((np.asarray(y_pred, dtype=float) - y) / scale)))


def decode(neuron_type, gain, bias, encoders, decoders, x, synapse=None):
    """The population's decoded output at inputs ``x``, and its spike noise.

    Rates are nengo's own, ``neuron_type.rates(x[:, None] * encoders, gain,
    bias)``, computed in chunks of at most `CHUNK_ELEMENTS`.

    Parameters
    ----------
    neuron_type : nengo.neurons.NeuronType
    gain, bias, encoders, decoders : ndarray, shape (n_neurons,)
    x : ndarray, shape (n_points,)
        Inputs.
    synapse : float or None
        Lowpass time constant (s) filtering the spikes.

    Returns
    -------
    y_hat : ndarray, shape (n_points,)
        ``rates @ decoders``.
    noise_var : ndarray, shape (n_points,) or None
        Variance of the synapse-filtered spiking output around ``y_hat``
        (``spike_noise_variance(rates, synapse) @ decoders**2``); None if
        ``synapse`` is None.
    """
    x = np.asarray(x, dtype=float).reshape(-1)
    decoders = np.asarray(decoders, dtype=float)
    y_hat = np.empty(len(x))
    noise = None if synapse is None else np.empty(len(x))
    step = max(1, CHUNK_ELEMENTS // max(len(decoders), 1))
    for start in range(0, len(x), step):
        part = slice(start, start + step)
        a = neuron_type.rates(x[part, None] * encoders, gain, bias)
        y_hat[part] = a @ decoders
        if noise is not None:
            noise[part] = spike_noise_variance(a, synapse)[0] @ decoders**2
    return y_hat, noise


class FitMetrics(NamedTuple):
    """The accuracy figures of a fit (all divided by the target's `error_scale`)."""

    nrmse: float
    max_error: float
    spiking_nrmse: Optional[float]


def population_metrics(target, domain, neuron_type, gain, bias, encoders, decoders,
                       synapse=None):
    """NRMSE, max error and expected spiking NRMSE of a population (see the module doc).

    ``target`` is a `popfit.targets.Target` (or any checked callable); ``synapse``
    None gives ``spiking_nrmse=None``.
    """
    # everything in units of the scale, so targets near float's limits do not overflow
    x = grid(domain, N_EVAL_POINTS)
    y = evaluate_target(target, x)
    scale = error_scale(y)
    decoders = np.asarray(decoders, dtype=float) / scale
    y_hat, noise = decode(neuron_type, gain, bias, encoders, decoders, x, synapse)
    rate_nrmse = nrmse(y_hat, y / scale, 1.0)
    spiking = None if noise is None else float(np.sqrt(rate_nrmse**2 + np.mean(noise)))
    xf = grid(domain, N_FINE_POINTS)
    yf_hat = decode(neuron_type, gain, bias, encoders, decoders, xf)[0]
    return FitMetrics(rate_nrmse, max_error(yf_hat, evaluate_target(target, xf) / scale, 1.0),
                      spiking)
