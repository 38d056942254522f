"""Re-solve the weights leaving each hidden layer for the populations actually there.

All units of a hidden layer share one fitted population, so the fit's
systematic error is the same in every unit and the next layer sums it. Given
calibration inputs, the weights from each hidden layer's *neurons* to the
next layer's units (or to the model's outputs) are instead solved in closed
form, like the decoders of a single fit (`popfit.fit_activation`):

    minimize over M, c   mean_x |M a(x) + c - z(x)|**2  +  sum_j |M[:, j]|**2 mean_x var_j(x)

with ``a(x)`` the neurons' real rates (`PopulationFit.rates` of each unit's
input), ``z(x)`` the source model's pre-activations of the next layer (the
output layer's for the last), and ``var_j`` the variance of neuron ``j``'s
synapse-filtered spike train (`popfit.solvers.spike_noise_penalty`): a ridge
problem with one penalty per neuron, and the expected squared error of the
spiking network's next pre-activations. Layers are solved in order, each fed
by the previous *converted* layer (its re-solved weights and rates), so
errors do not compound. ``c`` becomes the next layer's input bias.

A share of the calibration data is held out: each layer keeps its
re-solved weights only if they lower the held-out error (the objective above
for a hidden layer's successor; the squared error of the outputs after the
output nonlinearity for the last layer) *significantly*: by more than
`SIGNIFICANCE` standard errors of the paired per-sample difference; and the
re-solved weights are kept at all only if, together, they lower the
held-out error of the outputs significantly against the standard weights
everywhere (a hidden layer's re-solve can help its successor's inputs and
still leave the outputs worse when the next layer's re-solve is not kept). A
marginal held-out gain does not carry over to inputs unlike the calibration
data (benchmarks/bench_convert.py; figures in docs/benchmarks.md). `RefitReport` gives the rate-level output error on
the held-out share before and after.
"""

from dataclasses import dataclass
from typing import Tuple

import numpy as np
import scipy.sparse

from ..exceptions import PopfitValueError
from ..solvers import spike_noise_penalty, spike_noise_ridge
from ..targets import apply_activation
from .spec import dot

#: Fewest calibration samples in each of the solve and held-out shares.
MIN_SAMPLES = 10
#: Relative ridge keeping the solve well posed when neurons never fire.
_RIDGE = 1e-10
#: Standard errors (of the paired per-sample difference of held-out errors)
#: by which a re-solve must lower the held-out error to be kept (one-sided,
#: about 97.7% for a normal difference).
SIGNIFICANCE = 2.0


def layer_rates(fit, z):
    """Rates (Hz) of a layer's neurons at unit inputs ``z``, shape (m, n_units * N).

    Neuron ``u * N + i`` is neuron ``i`` of unit ``u``, as in `PopulationLayer`.
    """
    m, units = z.shape
    return fit.rates(z.ravel()).reshape(m, units * fit.n_neurons)


def folded_weights(fit, weights):
    """The standard weights ``weights.T @ decoders_block``: shape (n_next, n_units * N)."""
    if scipy.sparse.issparse(weights):
        return scipy.sparse.kron(weights.T, fit.decoders[None, :], format="csr")
    return np.kron(np.asarray(weights, dtype=float).T, fit.decoders[None, :])


def noise_penalty(a, synapse):
    """Mean spike-noise variance of each neuron (Hz**2) over the samples of ``a``."""
    return spike_noise_penalty(a, synapse)


def solve_weights(a, z, penalty):
    """Ridge solve of ``M a + c ~= z`` with penalty ``penalty_j |M[:, j]|**2``.

    Parameters
    ----------
    a : ndarray, shape (m, n)
        Rates (Hz).
    z : ndarray, shape (m, k)
        Targets.
    penalty : ndarray, shape (n,)

    Returns
    -------
    M : ndarray, shape (k, n)
    c : ndarray, shape (k,)
    """
    # the intercept c is an unpenalised column of ones; the tiny relative ridge
    # keeps a rank-deficient rate matrix (silent neurons) well posed
    ridge = _RIDGE * (a.var(axis=0).mean() + 1.0)
    x = spike_noise_ridge(np.column_stack([a, np.ones(len(a))]), z,
                          np.append(penalty + ridge, 0.0))
    return x[:-1].T, x[-1]


def sample_errors(a, z, weights, bias, penalty):
    """Expected squared error of ``weights a + bias`` vs ``z`` per sample, averaged
    over the targets: the rate error plus the spike noise (the same for every sample)."""
    err = a @ weights.T + bias - z
    return np.mean(err**2, axis=1) + penalty @ (weights**2).sum(axis=0) / z.shape[1]


def significantly_lower(new, old):
    """True if per-sample errors ``new`` are below ``old`` by more than `SIGNIFICANCE`
    standard errors of the paired difference (their mean difference over its
    standard error; False when they are equal)."""
    diff = np.asarray(old) - np.asarray(new)
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    return bool(diff.mean() > SIGNIFICANCE * se)


@dataclass(frozen=True)
class RefitReport:
    """What the weight re-solve did, measured on held-out calibration samples.

    Attributes
    ----------
    n_fit, n_holdout : int
        Calibration samples the weights were solved on, and held out.
    synapse : float
        Synapse (s) of the spike-noise model used as the per-neuron penalty.
    kept : tuple of bool
        Per hidden layer: True if its re-solved outgoing weights were kept
        (they lowered the held-out error significantly, see
        `significantly_lower`), False if the standard folded weights were kept.
    layer_rms_before, layer_rms_after : tuple of float
        Per hidden layer: held-out RMS error of the next layer's
        pre-activations (the model's outputs for the last), rate level, with
        the standard weights everywhere / with the converted model's weights.
    output_rms_before, output_rms_after : float
        Held-out RMS error of the decoded output (before the output
        nonlinearity) against the source model's, rate level.
    output_mae_before, output_mae_after : float
        Held-out mean absolute error of the outputs after the nonlinearity
        (class probabilities for a classifier), rate level.
    """

    n_fit: int
    n_holdout: int
    synapse: float
    kept: Tuple[bool, ...]
    layer_rms_before: Tuple[float, ...]
    layer_rms_after: Tuple[float, ...]
    output_rms_before: float
    output_rms_after: float
    output_mae_before: float
    output_mae_after: float

    def to_dict(self):
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def enough_for_refit(n, holdout):
    """True if ``n`` calibration samples leave `MIN_SAMPLES` to solve on and to hold out."""
    n_hold = int(round(holdout * n))
    return n - n_hold >= MIN_SAMPLES and n_hold >= MIN_SAMPLES


def split_calibration(X, holdout, seed):
    """Random (solve, held-out) split of the calibration samples."""
    n = len(X)
    n_hold = int(round(holdout * n))
    if not enough_for_refit(n, holdout):
        raise PopfitValueError(
            f"refit needs at least {MIN_SAMPLES} calibration samples to solve on and "
            f"{MIN_SAMPLES} to hold out (refit_holdout={holdout:g} of {n} samples gives "
            f"{n - n_hold} and {n_hold}); pass more calibration_data or refit=False")
    order = np.random.default_rng(seed).permutation(n)
    return X[order[n_hold:]], X[order[:n_hold]]


def links_of(weights, skip_weights=None):
    """``{(source, target): matrix}`` of the neuron-level weights between layers.

    ``weights[l]`` is the link from hidden layer ``l`` to layer ``l + 1``
    (the output, for the last); ``skip_weights`` adds the links of skip
    (merge) connections, keyed ``(source, target)``.
    """
    links = {(l, l + 1): w for l, w in enumerate(weights)}
    links.update(skip_weights or {})
    return links


def standard_links(spec, fits):
    """The standard neuron-level links: each source matrix with its decoders folded in."""
    return {(s, t): folded_weights(fits[s], matrix)
            for t, layer in enumerate(spec.layers) for s, matrix in layer.inputs(t) if s >= 0}


def forward(spec, fits, links, biases, X):
    """Rate-level pass through the converted model.

    ``links[(s, t)]``: the weights from hidden layer ``s``'s neurons to layer
    ``t``'s units (or the outputs), as `links_of`; ``biases[t - 1]``: layer
    ``t``'s input bias (``t >= 1``; the first layer's is the source's).
    Inputs from the model input (source -1) are the source's matrices.

    Returns each hidden layer's rates and the decoded output (before the
    output nonlinearity).
    """
    rates = []
    for t in range(len(spec.layers)):
        z = pre_activation(spec, t, links, biases, X, rates)
        if t < len(fits):
            rates.append(layer_rates(fits[t], z))
    return rates, z


def pre_activation(spec, t, links, biases, X, rates):
    """Layer ``t``'s pre-activations from the input ``X`` and the earlier layers' ``rates``."""
    layer = spec.layers[t]
    z = layer.bias if t == 0 else biases[t - 1]
    for s, matrix in layer.inputs(t):
        z = z + (dot(X, matrix) if s == -1 else dot(rates[s], links[s, t].T))
    return z


def refit_weights(spec, fits, X, *, holdout, synapse, seed):
    """Re-solve the weights into every layer after the first (see the module docstring).

    The inputs of layer ``t`` from hidden layers are solved together (one
    ridge problem over the concatenated rates of its sources), those from the
    model input and convolutions (sparse matrices, whose weight sharing is
    kept) held fixed at the source's weights.

    Returns
    -------
    weights : list of ndarray, shape (n_next, n_neurons_l)
        The link from hidden layer ``l`` to layer ``l + 1``.
    biases : list of ndarray, shape (n_next,)
        The input bias of layer ``l + 1``.
    skip_weights : dict
        ``{(source, target): ndarray}``, the links of skip connections.
    report : RefitReport
        ``kept[l]``: whether the weights into layer ``l + 1`` were re-solved.
    """
    X_fit, X_hold = split_calibration(X, holdout, seed)
    pre_fit = spec.forward(X_fit)[0]
    pre_hold, out_hold = spec.forward(X_hold)
    std = standard_links(spec, fits)
    std_b = [layer.bias.astype(float) for layer in spec.layers[1:]]
    n = len(fits)

    def output_errors(out):  # per held-out sample, after the output nonlinearity
        return np.mean((apply_activation(spec.output.activation, out) - out_hold) ** 2, axis=1)

    rates_fit = [layer_rates(fits[0], pre_activation(spec, 0, None, None, X_fit, []))]
    rates_hold = [layer_rates(fits[0], pre_activation(spec, 0, None, None, X_hold, []))]
    links, biases, kept = {}, [], []
    for t in range(1, n + 1):
        layer = spec.layers[t]
        free = [s for s, _ in layer.inputs(t) if s >= 0 and not scipy.sparse.issparse(std[s, t])]
        fixed = [(s, m) for s, m in layer.inputs(t) if s not in free]

        def fixed_part(X_, rates):
            f = 0.0
            for s, m in fixed:
                f = f + (dot(X_, m) if s == -1 else dot(rates[s], std[s, t].T))
            return f

        f_fit, f_hold = fixed_part(X_fit, rates_fit), fixed_part(X_hold, rates_hold)
        better = False
        if free:
            a_fit = np.hstack([rates_fit[s] for s in free])
            a_hold = np.hstack([rates_hold[s] for s in free])
            w, b = solve_weights(a_fit, pre_fit[t] - f_fit, noise_penalty(a_fit, synapse))
            w_std = np.hstack([np.asarray(std[s, t].todense()) if scipy.sparse.issparse(
                std[s, t]) else std[s, t] for s in free])
            if t < n:  # expected error of the next pre-activations, noise included
                hold_penalty = noise_penalty(a_hold, synapse)
                target = pre_hold[t] - f_hold
                better = significantly_lower(
                    sample_errors(a_hold, target, w, b, hold_penalty),
                    sample_errors(a_hold, target, w_std, std_b[t - 1], hold_penalty))
            else:  # the outputs, after the output nonlinearity (what predictions are)
                better = significantly_lower(output_errors(a_hold @ w.T + b + f_hold),
                                             output_errors(a_hold @ w_std.T + std_b[t - 1]
                                                           + f_hold))
        if better:
            cuts = np.cumsum([rates_fit[s].shape[1] for s in free])[:-1]
            links.update({(s, t): part for s, part in zip(free, np.split(w, cuts, axis=1))})
            links.update({(s, t): std[s, t] for s, _ in fixed if s >= 0})
            biases.append(b)
        else:
            links.update({(s, t): std[s, t] for s, _ in layer.inputs(t) if s >= 0})
            biases.append(std_b[t - 1])
        kept.append(bool(better))
        if t < n:
            rates_fit.append(layer_rates(fits[t], pre_activation(
                spec, t, links, biases, X_fit, rates_fit)))
            rates_hold.append(layer_rates(fits[t], pre_activation(
                spec, t, links, biases, X_hold, rates_hold)))

    # the model as a whole: a hidden layer's re-solve kept for its successor's
    # inputs can leave the outputs worse when the next re-solve is not kept
    if any(kept) and not significantly_lower(
            output_errors(forward(spec, fits, links, biases, X_hold)[1]),
            output_errors(forward(spec, fits, std, std_b, X_hold)[1])):
        links, biases, kept = dict(std), list(std_b), [False] * n

    def errors(ls, bs):
        rates, out = forward(spec, fits, ls, bs, X_hold)
        layer = [float(np.sqrt(np.mean((pre_activation(spec, t, ls, bs, X_hold, rates)
                                         - pre_hold[t]) ** 2))) for t in range(1, n + 1)]
        act = spec.output.activation
        rms = float(np.sqrt(np.mean((out - pre_hold[-1]) ** 2)))
        mae = float(np.mean(np.abs(apply_activation(act, out) - out_hold)))
        return layer, rms, mae

    before, after = errors(std, std_b), errors(links, biases)
    report = RefitReport(
        n_fit=len(X_fit), n_holdout=len(X_hold), synapse=float(synapse),
        kept=tuple(kept), layer_rms_before=tuple(before[0]), layer_rms_after=tuple(after[0]),
        output_rms_before=before[1], output_rms_after=after[1],
        output_mae_before=before[2], output_mae_after=after[2])
    weights = [links[l, l + 1] for l in range(n)]
    skip_weights = {k: v for k, v in links.items() if k[1] != k[0] + 1}
    return weights, biases, skip_weights, report
