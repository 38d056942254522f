"""Fitted domains after training: how many pre-activations leave them, and re-fitting.

Training moves the weights, so a hidden layer's pre-activations can leave
the domain its population was fitted on (outside it the fit is not
controlled). `outside_shares` measures the share outside, per layer, in the
converted network (each layer fed by the previous population's decoded
output); `refit_layers` re-calibrates the domain of every layer whose share
exceeds a tolerance as `popfit.convert` does (`popfit.conversion.convert.choose_domain`:
the 99th percentile of ``|pre-activation|``, rounded up) and fits its
population again on those pre-activations, with the fit's own target,
neuron count, neuron type, ``max_rate``, ``synapse`` and seed.
"""

import numpy as np

from ..conversion.convert import choose_domain
from ..fit import fit_activation


def outside_shares(fits, pre):
    """Share of each layer's pre-activations ``pre[i]`` outside ``fits[i].domain``."""
    shares = []
    for fit, z in zip(fits, pre):
        lo, hi = fit.domain
        z = np.asarray(z)
        shares.append(float(np.mean((z < lo) | (z > hi))))
    return shares


def refit_layers(fits, pre, tolerance, search=None):
    """Fits with re-calibrated domains where the share outside exceeds ``tolerance``.

    Returns the new list of fits (unchanged layers keep their fit object)
    and, per layer, ``{"domain_before", "outside_before", "refitted",
    "domain_after"}``.
    """
    new, rows = [], []
    for i, (fit, share) in enumerate(zip(fits, outside_shares(fits, pre))):
        row = {"domain_before": [float(v) for v in fit.domain], "outside_before": share,
               "refitted": False, "domain_after": [float(v) for v in fit.domain]}
        if share > tolerance:
            z = np.asarray(pre[i], dtype=float)
            domain, _ = choose_domain(fit.target, z, f"hidden layer {i} after training")
            inside = z[(z >= domain[0]) & (z <= domain[1])]
            fit = fit_activation(fit.target, fit.n_neurons, neuron_type=fit.neuron_type,
                                 domain=domain, max_rate=fit.max_rate, synapse=fit.synapse,
                                 eval_points=inside, seed=fit.seed, search=search)
            row.update(refitted=True, domain_after=[float(v) for v in fit.domain])
        new.append(fit)
        rows.append(row)
    return new, rows
