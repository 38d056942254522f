"""The noise-aware decoder solve, once: a function for popfit and a nengo solver.

A spiking population's decoded output, filtered by ``Lowpass(tau)``, at a
constant input ``x`` is ``sum_i X_i s_i(t)``, where ``s_i`` is neuron i's
filtered spike train: mean ``a_i(x)`` (its rate, Hz) and, for a regular train
of random phase, variance ``var_i(x)`` (`popfit.neurons.spike_noise_variance`).
With the neurons' phases independent, the expected squared error of the
decoded output against a target ``y(x)``, averaged over the points ``x`` with
weights ``w`` (``sum w = 1``; uniform: the mean), is

    sum_x w_x (A(x) X - y(x))**2  +  sum_i X_i**2 p_i,   p_i = sum_x w_x var_i(x)

the rate error plus the spike noise the decoders pass on: a ridge problem
with one penalty ``p_i`` (Hz**2) per neuron, whose solution is

    X = (A^T W A + diag(p))^-1 A^T W Y,   W = diag(w).

This is the objective `popfit.fit_activation` minimises (there with the
target scaled by its range), the one `popfit.loihi` solves on the whole-step
staircase and the one the weight re-solve of `popfit.convert` solves per
layer (there with an unpenalised intercept). `spike_noise_ridge` solves it
(by QR of the stacked matrix ``[sqrt(W) A; diag(sqrt(p))]``, which does not
square the condition number as the normal equations do), `spike_noise_penalty`
gives ``p`` and `SpikeNoiseL2` is the same solve as a nengo solver, for any
``nengo.Connection(ens, post, solver=SpikeNoiseL2(synapse=tau))``.

Compared with ``nengo.solvers.LstsqL2(reg)``, whose penalty is the same for
every neuron (``(reg * max A)**2``), the penalty here is each neuron's own
spike noise at the connection's synapse: fast neurons (whose filtered
trains are smooth relative to their rate) are penalised less than their
rate suggests, and the penalty shrinks as the synapse lengthens. See
benchmarks/bench_solver.py for the spiking error of both on nengo ensembles.
"""

import time
import dataclasses
from dataclasses import dataclass

import nengo
import numpy as np
import scipy.linalg
from nengo.params import NumberParam
from nengo.utils.least_squares_solvers import rmses

from ._validation import check_real_array, check_synapse, public
from .exceptions import PopfitError, PopfitValueError
from .neurons import spike_noise_variance

__all__ = ["SpikeNoiseL2", "spike_noise_ridge", "spike_noise_penalty", "RidgeSolution",
           "RIDGE_FLOOR"]

#: Added to every penalty (Hz**2) before the solve: a neuron silent at every
#: point (no rate, no noise) gets decoder 0 instead of a singular system; far
#: below any real penalty, so it changes nothing else.
RIDGE_FLOOR = 1e-300


@dataclass(frozen=True, eq=False)
class RidgeSolution:
    """`spike_noise_ridge`'s result with ``full_output=True``: the solution and its QR.

    Shapes with ``...`` the batch dimensions of ``A``, ``m`` points, ``n``
    neurons and ``k`` targets; a 1-d ``Y`` drops the ``k`` axis everywhere.

    Attributes
    ----------
    X : ndarray, shape (..., n, k)
        The decoders (target units per Hz).
    residual : ndarray, shape (..., m + n, k)
        ``[sqrt(w) (A X - Y); sqrt(p) X]``: its squared norm (per target) is
        the minimised objective, the expected squared spiking error.
    q : ndarray, shape (..., m + n, n)
    r : ndarray, shape (..., n, n)
        The reduced QR factors of the stacked matrix ``[sqrt(w) A; diag(lam)]``.
    lam : ndarray, shape (..., n)
        ``sqrt(p + RIDGE_FLOOR)``, the lower block's diagonal.
    """

    X: np.ndarray
    residual: np.ndarray
    q: np.ndarray
    r: np.ndarray
    lam: np.ndarray


def _sample_weights(sample_weights, m):
    """Normalised weights of the ``m`` points (sum 1): uniform if None."""
    if sample_weights is None:
        return np.full(m, 1.0 / m)
    w = check_real_array(sample_weights, "sample_weights")
    if w.shape != (m,):
        raise PopfitValueError(
            f"sample_weights must have shape (n_points,) = ({m},), one weight per row of A "
            f"(got shape {w.shape})")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise PopfitValueError(
            "sample_weights must be finite and >= 0 with a positive sum (got min "
            f"{np.min(w)!r}, sum {np.sum(w)!r}); they are normalised to sum 1")
    return w / w.sum()


@public
def spike_noise_penalty(A, synapse, sample_weights=None):
    """Each neuron's spike-noise variance (Hz**2), averaged over the points.

    ``p_i = sum_x w_x var_i(|a_i(x)|)`` with ``var`` the variance of a regular
    spike train at that rate through ``Lowpass(synapse)``
    (`popfit.neurons.spike_noise_variance`) and ``w`` the normalised sample
    weights (uniform if None). A negative rate (a signed neuron type such as
    ``nengo.RegularSpiking(nengo.Tanh())``) counts as a train of negative
    spikes at ``|rate|``.

    Parameters
    ----------
    A : ndarray, shape (..., m, n)
        Rates (Hz) of ``n`` neurons at ``m`` points.
    synapse : float
        Lowpass time constant (s), > 0.
    sample_weights : ndarray, shape (m,), optional
        Weights of the points (normalised to sum 1).

    Returns
    -------
    ndarray, shape (..., n)
    """
    A = np.asarray(A, dtype=float)
    synapse = check_synapse(synapse, "synapse", allow_none=False)
    w = _sample_weights(sample_weights, A.shape[-2])
    var = spike_noise_variance(np.abs(A), synapse)[0]
    return np.einsum("m,...mn->...n", w, var)


@public
def spike_noise_ridge(A, Y, penalty, sample_weights=None, *, full_output=False):
    """Decoders minimising ``sum_x w (A X - Y)**2 + sum_i p_i X_i**2`` (see the module docstring).

    With ``p = spike_noise_penalty(A, synapse, w)`` and uniform weights this
    is the expected mean squared error of the spiking population's decoded
    output filtered by ``Lowpass(synapse)``; any other non-negative ``p`` (a
    constant for a rate-only ridge, the penalties of an unpenalised
    intercept column set to 0) is solved the same way. Inputs are not
    checked for finiteness: non-finite rates, targets or penalties give
    non-finite decoders (which popfit's optimizer relies on to reject a
    step; an infinite penalty gives NaN, not 0).

    Parameters
    ----------
    A : ndarray, shape (..., m, n)
        Rates (Hz) of ``n`` neurons at ``m`` points; leading dimensions are
        a batch of independent problems.
    Y : ndarray, shape (m,) or (..., m, k)
        Targets at the points (shared by the batch if 1-d or 2-d).
    penalty : float or ndarray, shape (..., n)
        Ridge weight of each neuron, ``>= 0`` (Hz**2); `RIDGE_FLOOR` is added.
    sample_weights : ndarray, shape (m,), optional
        Non-negative weights of the points, normalised to sum 1 (uniform if None).
    full_output : bool
        Return a `RidgeSolution` (decoders, stacked residual, QR factors)
        instead of the decoders alone.

    Returns
    -------
    X : ndarray, shape (..., n) for a 1-d ``Y``, else (..., n, k)
        Or a `RidgeSolution` if ``full_output``.
    """
    A = np.asarray(A, dtype=float)
    Y = np.asarray(Y, dtype=float)
    if A.ndim < 2:
        raise PopfitValueError(
            f"A must have shape (..., n_points, n_neurons) (got shape {A.shape}); "
            "pass a 2-d array of rates, one row per point")
    *batch, m, n = A.shape
    vector = Y.ndim == 1
    if vector:
        Y = Y[:, None]
    if Y.ndim < 2 or Y.shape[-2] != m:
        raise PopfitValueError(
            f"Y must have shape (n_points,) or (..., n_points, n_targets) with n_points = "
            f"{m} rows, as A (got shape {Y.shape if not vector else Y.shape[:1]})")
    penalty = np.asarray(penalty, dtype=float)
    try:
        penalty = np.broadcast_to(penalty, (*batch, n))
    except ValueError:
        raise PopfitValueError(
            f"penalty must be a number or have shape (..., n_neurons) = {(*batch, n)}, one "
            f"per neuron (got shape {penalty.shape})") from None
    if np.any(penalty < 0):
        raise PopfitValueError(
            f"penalty must be >= 0 (got min {float(np.min(penalty))!r}); it is a variance "
            "(Hz**2): use spike_noise_penalty or a non-negative ridge")
    w = _sample_weights(sample_weights, m)
    sw = np.sqrt(w)

    idx = np.arange(n)
    lam = np.sqrt(penalty + RIDGE_FLOOR)
    ty = sw[:, None] * Y
    if not full_output:
        # QR of the basis with the targets appended: R's top right block is
        # Q^T [ty; 0], so Q is never formed (forming it costs several times
        # more for large ensembles)
        k = Y.shape[-1]
        aug = np.zeros((*np.broadcast_shapes(tuple(batch), Y.shape[:-2]), m + n, n + k))
        aug[..., :m, :n] = sw[:, None] * A
        aug[..., m + idx, idx] = lam
        aug[..., :m, n:] = ty
        r = np.linalg.qr(aug, mode="r")
        if r.ndim == 2:
            X = scipy.linalg.solve_triangular(r[:n, :n], r[:n, n:], check_finite=False)
        else:
            X = np.linalg.solve(r[..., :n, :n], r[..., :n, n:])
        return X[..., 0] if vector else X
    sol = ridge_qr(A, ty, sw, lam)
    if vector:
        return dataclasses.replace(sol, X=sol.X[..., 0], residual=sol.residual[..., 0])
    return sol


def ridge_qr(A, ty, sqrt_w, lam):
    """The QR solve behind `spike_noise_ridge` (``full_output``), without its checks.

    For popfit's optimizer, which solves many small batches with inputs it
    built itself. ``A`` (..., m, n) rates; ``ty`` (m, k) the targets times
    ``sqrt_w``; ``sqrt_w`` (m,) square roots of the normalised sample
    weights; ``lam`` (..., n) square roots of the penalties (floor included).
    Returns a `RidgeSolution` with ``X`` (..., n, k).
    """
    m, n = A.shape[-2:]
    idx = np.arange(n)
    basis = np.zeros((*A.shape[:-2], m + n, n))
    basis[..., :m, :] = sqrt_w[:, None] * A
    basis[..., m + idx, idx] = lam
    q, r = np.linalg.qr(basis)
    X = np.linalg.solve(r, np.swapaxes(q[..., :m, :], -1, -2) @ ty)
    residual = basis @ X
    residual[..., :m, :] -= ty
    return RidgeSolution(X, residual, q, r, lam)


class _SynapseParam(NumberParam):
    """A lowpass time constant (s): finite and > 0; a `nengo.Lowpass` gives its ``tau``."""

    def coerce(self, instance, value):
        if isinstance(value, nengo.Lowpass):
            value = value.tau
        try:
            value = check_synapse(value, "synapse (the time constant in s of the "
                                  "connection's Lowpass synapse)", allow_none=False)
        except PopfitError as err:
            err.where = err.where or type(instance).__name__
            raise
        return super().coerce(instance, value)


class SpikeNoiseL2(nengo.solvers.Solver):
    """Least squares with each neuron's spike noise as its L2 penalty (a nengo solver).

    Minimises the expected mean squared error of the connection's decoded
    output when the ensemble spikes and its output is filtered by
    ``Lowpass(synapse)``: the rate error over the evaluation points plus the
    variance of the filtered spike trains passed on by the decoders,

        mean_x (A X - Y)**2 + sum_i X_i**2 mean_x var_i(a_i(x)),

    ``var_i`` the variance of a regular spike train at neuron i's rate through
    ``Lowpass(synapse)`` (`popfit.neurons.spike_noise_variance`), with
    independent phases (the same objective as `popfit.fit_activation`; see
    `spike_noise_ridge`). Use it on any connection from an ensemble of
    spiking neurons::

        nengo.Connection(ens, post, synapse=0.02, solver=SpikeNoiseL2(synapse=0.02))

    ``synapse`` should be the connection's own synapse (a solver does not see
    it). With ``weights=True`` nengo multiplies the decoders by the post
    ensemble's encoders; the solve is linear in the targets, so that is also
    the noise-aware solve of every post neuron's input current.

    Parameters
    ----------
    synapse : float or nengo.Lowpass
        Time constant (s) of the lowpass synapse that filters the spikes, > 0.
    weights : bool
        If False, solve for decoders; if True, nengo forms neuron-to-neuron
        weights from them.

    Attributes
    ----------
    synapse : float
        The time constant (s).
    weights : bool

    Notes
    -----
    The model assumes spiking neurons of amplitude 1 (nengo's ``LIF``,
    ``SpikingRectifiedLinear``, ``RegularSpiking`` of a rate type), whose
    spike train at a constant input is regular. For rate neurons (no spike
    noise) use ``nengo.solvers.LstsqL2`` with a small ``reg``; for
    ``PoissonSpiking`` the noise is larger than modelled. A neuron silent at
    every evaluation point gets decoder 0.

    The solver ``info`` has ``rmses`` (rate-level RMS error per target, as
    nengo's solvers), ``noise_rmses`` (RMS of the expected spike noise per
    target), ``expected_rmses`` (their root sum of squares: the expected
    spiking RMS error), ``penalty`` (Hz**2, per neuron) and ``time`` (s).
    nengo's decoder cache only fingerprints its own solver classes, so these
    decoders are solved at every build.
    """

    synapse = _SynapseParam("synapse")

    def __init__(self, synapse=0.005, weights=False):
        super().__init__(weights=weights)
        self.synapse = synapse

    @public
    def __call__(self, A, Y, rng=None):
        """Solve for decoders: ``A`` (n_points, n_neurons) in Hz, ``Y`` (n_points, n_targets).

        ``rng`` is unused (the solve is deterministic); it is accepted as
        nengo's solvers accept it. Returns ``(X, info)``, ``X`` of shape
        (n_neurons, n_targets).
        """
        tstart = time.time()
        A = check_real_array(A, "A")
        Y = check_real_array(Y, "Y")
        if A.ndim != 2 or Y.ndim not in (1, 2) or Y.shape[0] != A.shape[0]:
            raise PopfitValueError(
                f"A must have shape (n_points, n_neurons) and Y (n_points, n_targets) with "
                f"the same n_points (got A {A.shape}, Y {Y.shape})")
        if not (np.all(np.isfinite(A)) and np.all(np.isfinite(Y))):
            raise PopfitValueError(
                "A (rates, Hz) and Y (targets) must be finite (got non-finite values in "
                f"{'A' if not np.all(np.isfinite(A)) else 'Y'}); check the ensemble's gains "
                "and biases and the connection's function")
        penalty = spike_noise_penalty(A, self.synapse)
        X = spike_noise_ridge(A, Y, penalty)
        err = rmses(A, X, Y)
        noise = np.sqrt(penalty @ X**2)
        return X, {"rmses": err, "noise_rmses": noise,
                   "expected_rmses": np.sqrt(err**2 + noise**2), "penalty": penalty,
                   "time": time.time() - tstart}
