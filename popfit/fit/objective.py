"""The objective, the variable-projection problem, and the batched Levenberg-Marquardt.

Given each neuron's encoder sign, intercept and max rate, the decoders solve
a linear least-squares problem, so only the 2N nonlinear parameters are
searched (variable projection, with the Golub-Pereyra Jacobian). The
objective is the expected squared error of the *spiking* population at the
deployment synapse:

    mean_x (A(x) d - y(x))**2  +  sum_i d_i**2 mean_x var_i(x)

where ``var_i`` is the variance of neuron i's synapse-filtered regular spike
train (`popfit.neurons.spike_noise_variance`). This is a ridge problem with a
per-neuron penalty, so the decoders stay exact. `Problem` holds it on one
grid for a batch of parameter vectors; `grid_weights` turns ``eval_points``
into the weights of the grid points.

The Jacobian is the Golub-Pereyra one, exact for the objective *except* at
LIF onsets, where `cap_onset_slopes` deliberately bounds the rate's slope
(the onset is infinitely steep; on a grid the residual moves by at most
about one rate per grid step).

`levenberg_marquardt` runs bounded Levenberg-Marquardt on a stack of starts
(a `Batch`) at once, with numpy batched QR and solves: the per-call overhead
of a general solver dominated on problems this small.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..neurons import LOWEST_RATE_FRACTION, spike_noise_variance
from ..solvers import RIDGE_FLOOR, ridge_qr

_C_BOUNDS = (-5.0, 0.95)  # intercepts, in units where the faced domain edge is 1 (below -1:
# the neuron fires over the whole domain, a saturating offset that tanh-like fits use)
RHO_MIN = LOWEST_RATE_FRACTION  # lowest max rate, as a fraction of max_rate
RATE_ONLY_RIDGE = 1e-14  # relative ridge keeping rate-only fits well posed
UNIFORM_SHARE = 0.1  # share of the uniform distribution when eval_points are given
_MU0 = 1e-3  # initial Levenberg-Marquardt damping, relative to diag(J^T J)
_MAX_STEP = 0.2  # largest change of any parameter in one step (intercepts: units of the
# half domain; max rates: fractions of max_rate)
_MU_MAX = 1e12  # damping at which no step lowers the cost: a (numerical) minimum
_MU_SMOOTH = 1.0  # below this damping, steps follow the capped-slope gradient


# --------------------------------------------------------------------------- the problem

def cap_onset_slopes(rates, slopes, dj_step):
    """Bound each rate's slope by the rate itself per grid step of current.

    A LIF rate curve is infinitely steep at its onset. On a grid, a grid point
    just past an onset would get a huge derivative, while moving the onset
    changes the residual there by at most about one rate per grid step; the
    exact derivative then dominates the Jacobian and the optimizer takes tiny
    steps. The cap is ``min(slope, rate / dj_step)``, where ``dj_step`` is the
    change of the input current between neighbouring grid points. Away from
    onsets (``rate >= slope * dj_step``) nothing changes; for ReLU it only
    touches the grid step next to the onset.

    Parameters
    ----------
    rates : ndarray
        Firing rates (Hz).
    slopes : ndarray
        ``d rate / d J`` (Hz per unit current), same shape.
    dj_step : ndarray
        Current change per grid step, broadcastable (one per neuron).

    Returns
    -------
    ndarray
        The capped slopes.
    """
    return np.minimum(slopes, rates / dj_step)


@dataclass(frozen=True)
class _Solution:
    """The decoders at fixed rates, and what the Jacobian reuses."""

    decoders: np.ndarray  # (B, n), in units of the scaled target per Hz
    residual: np.ndarray  # (B, m + n)
    q: np.ndarray  # (B, m + n, n): Q of the QR of the stacked basis
    r: np.ndarray  # (B, n, n)
    lam: np.ndarray  # (B, n): square roots of the ridge (noise) weights
    dnoise: Optional[np.ndarray]  # (B, m, n): weighted d var / d rate, None if rate-only


@dataclass(frozen=True)
class _Evaluation:
    cost: np.ndarray  # (B,): 0.5 * squared residual norm
    residual: np.ndarray  # (B, m + n)
    jacobian: Optional[np.ndarray]  # (B, m + n, 2n), onset slopes capped
    gradient: Optional[np.ndarray]  # (B, 2n): exact gradient of the cost


class Problem:
    """The variable-projection least-squares problem on one grid, for a batch of
    parameter vectors ``theta = (c_1..c_n, rho_1..rho_n)`` (intercepts in units
    where the faced domain edge is 1, max rates as fractions of ``max_rate``),
    each with its own encoder signs.

    The residual is ``[sqrt(w) (A d - y); lam * d] / scale`` with ``d`` the
    optimal decoders, so its squared norm is the objective: the weighted mean
    squared rate error plus the expected spike noise, over ``scale**2``.
    """

    def __init__(self, model, x, y, lo, hi, max_rate, synapse, scale, weights=None):
        self.model = model
        self.max_rate = max_rate
        self.synapse = synapse
        self.m = len(x)
        mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        self.xhat = (x - mid) / half  # input scaled so the domain edges are -1 and +1
        self.ds = (x[1] - x[0]) / half
        # weights of the grid points (sum 1): uniform, or the eval_points density
        self.w = np.full(self.m, 1.0 / self.m) if weights is None else weights
        self.sqrt_w = np.sqrt(self.w)
        self.y_scaled = y / scale
        self.ty = self.sqrt_w * self.y_scaled

    @staticmethod
    def bounds(n):
        """Lower and upper bounds of ``theta`` for ``n`` neurons."""
        return (np.concatenate([np.full(n, _C_BOUNDS[0]), np.full(n, RHO_MIN)]),
                np.concatenate([np.full(n, _C_BOUNDS[1]), np.ones(n)]))

    def _terms(self, thetas, encoders):
        """Rates (B, m, n), d rate / d J, the current step per grid step and the
        factors turning d rate / d J into d rate / d c and d rate / d rho."""
        n = thetas.shape[-1] // 2
        c, r = thetas[:, None, :n], thetas[:, None, n:] * self.max_rate
        k, dk = self.model.k_and_dk(r)
        s = np.asarray(encoders)[..., None, :] * self.xhat[:, None]  # input along the encoder
        z = (s - c) / (1.0 - c)
        a, slope = self.model.rate_and_slope(self.model.j0 + k * z)
        return a, slope, k / (1.0 - c) * self.ds, k * (z - 1.0) / (1.0 - c), dk * z * self.max_rate

    def rates(self, thetas, encoders, derivatives=False, cap=True):
        """Rates (Hz), shape (B, m, n); with ``derivatives`` also d rate / d c
        and d rate / d rho, slopes capped at onsets unless ``cap`` is False."""
        a, slope, dj_step, f_c, f_rho = self._terms(thetas, encoders)
        if not derivatives:
            return a
        if cap:
            slope = cap_onset_slopes(a, slope, dj_step)
        return a, slope * f_c, slope * f_rho

    def _noise(self, a):
        """Ridge weight of each neuron (mean spike-noise variance) and its
        pointwise derivative in the rates (None if rate-only)."""
        if self.synapse is None:
            return np.full((a.shape[0], a.shape[2]), RATE_ONLY_RIDGE * self.max_rate**2), None
        var, dvar = spike_noise_variance(a, self.synapse)
        return np.einsum("m,bmi->bi", self.w, var), dvar * self.w[:, None]

    def solve(self, a):
        """Optimal decoders for rates ``a`` (B, m, n), by QR of the stacked basis."""
        noise, dnoise = self._noise(a)
        sol = ridge_qr(a, self.ty[:, None], self.sqrt_w, np.sqrt(noise + RIDGE_FLOOR))
        return _Solution(sol.X[..., 0], sol.residual[..., 0], sol.q, sol.r, sol.lam, dnoise)

    def evaluate(self, thetas, encoders, jacobian=True, cap=True):
        """Cost, residual, and (with ``jacobian``) the Golub-Pereyra Jacobian of
        the residual in ``thetas`` (exact when ``cap`` is False, onset slopes
        capped by `cap_onset_slopes` otherwise) and the exact gradient of the cost."""
        with np.errstate(all="ignore"):
            a, slope, dj_step, f_c, f_rho = self._terms(thetas, encoders)
            sol = self.solve(a)
            cost = self._cost(sol.residual)
            if not jacobian:
                return _Evaluation(cost, sol.residual, None, None)
            capped = cap_onset_slopes(a, slope, dj_step) if cap else slope
            jac = self._jacobian(a, capped * f_c, capped * f_rho, sol)
            grad = self._gradient(slope * f_c, slope * f_rho, sol)
        return _Evaluation(cost, sol.residual, jac, grad)

    def _gradient(self, da_dc, da_drho, sol):
        """Exact gradient of the cost, ``J^T r = (dB/dtheta d)^T r`` (the residual
        is orthogonal to the basis, so the second Golub-Pereyra term drops)."""
        m = self.m
        top = self.sqrt_w * sol.residual[:, :m]
        out = []
        for da in (da_dc, da_drho):
            g = np.einsum("bm,bmi->bi", top, da)
            if sol.dnoise is not None:
                g += sol.residual[:, m:] * np.einsum("bmi,bmi->bi", sol.dnoise, da) / (2 * sol.lam)
            out.append(g * sol.decoders)
        return np.concatenate(out, axis=1)

    @staticmethod
    def _cost(resid):
        cost = 0.5 * np.sum(resid**2, axis=1)
        return np.where(np.isfinite(cost), cost, np.inf)

    def _jacobian(self, a, da_dc, da_drho, sol):
        bsz, m, n = a.shape
        # columns of dB/dtheta_k: the upper block is d a_i / d theta_k, the lower
        # block has d lam_i / d theta_k at row m + i
        bk = np.zeros((bsz, m + n, 2 * n))
        bk[:, :m, :n] = self.sqrt_w[:, None] * da_dc
        bk[:, :m, n:] = self.sqrt_w[:, None] * da_drho
        if sol.dnoise is not None:
            idx = np.arange(n)
            bk[:, m + idx, idx] = np.einsum("bmi,bmi->bi", sol.dnoise, da_dc) / (2 * sol.lam)
            bk[:, m + idx, n + idx] = np.einsum("bmi,bmi->bi", sol.dnoise, da_drho) / (2 * sol.lam)
        owner = np.concatenate([np.arange(n), np.arange(n)])
        # Golub-Pereyra: J = -P_perp dB d - (B^+)^T dB^T r (sign: r = B d - t)
        t1 = bk * sol.decoders[:, None, owner]
        t1 -= sol.q @ (sol.q.transpose(0, 2, 1) @ t1)
        w = np.einsum("bkp,bk->bp", bk, sol.residual)
        rinv_t = np.linalg.inv(sol.r).transpose(0, 2, 1)
        t2 = sol.q @ (rinv_t[:, :, owner] * w[:, None, :])
        return t1 - t2

    def cost_with(self, thetas, encoders, decoders):
        """Squared residual norm (rate error plus expected noise) on this grid
        of parameter vectors with the given ``decoders`` (B, n), not re-solved."""
        with np.errstate(all="ignore"):
            a = self.rates(thetas, encoders)
            noise = self._noise(a)[0]
            resid = self.sqrt_w * np.einsum("bmn,bn->bm", a, decoders) - self.ty
            cost = np.sum(resid**2, axis=1) + np.sum(noise * decoders**2, axis=1)
        return np.where(np.isfinite(cost), cost, np.inf)

    def batch_cost(self, thetas, encoders):
        """Squared residual norm for many parameter vectors at once, by the
        normal equations (for screening; `evaluate` uses QR)."""
        n = thetas.shape[1] // 2
        with np.errstate(all="ignore"):
            a = self.rates(thetas, encoders)
            noise = self._noise(a)[0]
            a = a * self.sqrt_w[:, None]
            at = a.transpose(0, 2, 1)
            gram = at @ a
            gram[:, np.arange(n), np.arange(n)] += noise + 1e-300
            d = np.linalg.solve(gram, (at @ self.ty)[..., None])[..., 0]
            resid = (a @ d[..., None])[..., 0] - self.ty
            cost = np.sum(resid**2, axis=1) + np.sum(noise * d**2, axis=1)
        return np.where(np.isfinite(cost), cost, np.inf)


# --------------------------------------------------------------------------- local fits

@dataclass
class Batch:
    """Levenberg-Marquardt state of a stack of starts (mutated in place)."""

    thetas: np.ndarray  # (B, 2n)
    encoders: np.ndarray  # (B, n)
    origin: np.ndarray  # (B,) of str
    cost: np.ndarray = None
    residual: np.ndarray = None
    jacobian: np.ndarray = None
    gradient: np.ndarray = None
    mu: np.ndarray = None
    nu: np.ndarray = None
    history: list = None
    done: np.ndarray = None
    converged: np.ndarray = None
    iterations: np.ndarray = None
    frozen: np.ndarray = None  # (B, 2n) parameters held fixed, or None: all free

    def take(self, idx):
        """A new batch of the starts ``idx`` (state dropped: it is re-evaluated)."""
        return Batch(self.thetas[idx].copy(), self.encoders[idx].copy(), self.origin[idx].copy(),
                      frozen=None if self.frozen is None else self.frozen[idx].copy())

    def subset(self, idx):
        """The starts ``idx`` with their state (the cost history restarts)."""
        return Batch(self.thetas[idx], self.encoders[idx], self.origin[idx], self.cost[idx],
                      self.residual[idx], self.jacobian[idx], self.gradient[idx], self.mu[idx],
                      self.nu[idx], [], self.done[idx], self.converged[idx], self.iterations[idx],
                      None if self.frozen is None else self.frozen[idx])

    @staticmethod
    def concat(batches):
        batches = [b for b in batches if b is not None and len(b.thetas)]
        frozen = None
        if any(b.frozen is not None for b in batches):
            frozen = np.concatenate([np.zeros(b.thetas.shape, bool) if b.frozen is None
                                     else b.frozen for b in batches])
        return Batch(np.concatenate([b.thetas for b in batches]),
                      np.concatenate([b.encoders for b in batches]),
                      np.concatenate([b.origin for b in batches]), frozen=frozen)


def levenberg_marquardt(problem, batch, iterations, rtol=None, window=10):
    """Run bounded Levenberg-Marquardt on every start of ``batch`` at once.

    Each start keeps its own damping (Nielsen's update); a step is accepted
    only if it lowers that start's cost, so costs never increase. The
    curvature model is ``J^T J`` with onset slopes capped; the gradient is
    the capped ``J^T r`` while the damping is below `_MU_SMOOTH` and the
    exact one above (so a start that stalls on grid ripples still descends). Variables at
    a bound whose gradient points outward are held there (an active set);
    the rest of the step is projected into the box. With ``rtol``, a start
    stops once its objective (the root of the cost, an NRMSE) fell by less
    than ``rtol`` relative over the last ``window`` iterations (converged),
    or when no step can lower it.
    """
    n2 = batch.thetas.shape[1]
    lower, upper = problem.bounds(n2 // 2)
    bsz = len(batch.thetas)
    if batch.cost is None:
        batch.thetas = np.clip(batch.thetas, lower, upper)
        ev = problem.evaluate(batch.thetas, batch.encoders)
        batch.cost, batch.residual, batch.jacobian = ev.cost, ev.residual, ev.jacobian
        batch.gradient = ev.gradient
        batch.mu = np.full(bsz, _MU0)
        batch.nu = np.full(bsz, 2.0)
        batch.history = [batch.cost.copy()]
        batch.done = ~np.isfinite(batch.cost)
        batch.converged = np.zeros(bsz, bool)
        batch.iterations = np.zeros(bsz, int)
    eye = np.eye(n2, dtype=bool)
    for _ in range(iterations):
        live = np.flatnonzero(~batch.done)
        if len(live) == 0:
            break
        th, jac, g = batch.thetas[live], batch.jacobian[live], batch.gradient[live]
        # while the damping is small, step along the capped-slope gradient J^T r
        # (it ignores the grid-scale ripples LIF onsets put in the cost and
        # finds the basin); once that stops lowering the cost, the exact one
        g = np.where((batch.mu[live] < _MU_SMOOTH)[:, None],
                     np.einsum("bkp,bk->bp", jac, batch.residual[live]), g)
        h = jac.transpose(0, 2, 1) @ jac
        diag = np.diagonal(h, axis1=1, axis2=2)
        scale = np.maximum(diag, 1e-12 * np.maximum(diag.max(axis=1, keepdims=True), 1e-300))
        active = ((th <= lower) & (g > 0)) | ((th >= upper) & (g < 0))
        if batch.frozen is not None:
            active |= batch.frozen[live]
        lhs = h + (batch.mu[live, None] * scale)[:, :, None] * eye
        free = ~active
        lhs = np.where(free[:, :, None] & free[:, None, :], lhs, 0.0)
        lhs[:, eye] = np.where(active, 1.0, lhs[:, eye])
        rhs = -np.where(active, 0.0, g)[..., None]
        with np.errstate(all="ignore"):
            try:
                step = np.linalg.solve(lhs, rhs)[..., 0]
            except np.linalg.LinAlgError:  # an exactly singular system somewhere in the
                # batch (a neuron whose parameters have no effect on the grid, at zero
                # damping): the least-norm step solves the others unchanged
                step = (np.linalg.pinv(lhs) @ rhs)[..., 0]
        step = np.where(np.isfinite(step), step, 0.0)
        # a trust region in the max norm keeps the quadratic model honest
        big = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, _MAX_STEP / np.maximum(big, 1e-300))
        trial = np.clip(th + step, lower, upper)
        step = trial - th
        predicted = -(np.einsum("bp,bp->b", g, step)
                      + 0.5 * np.einsum("bp,bpq,bq->b", step, h, step))
        ev = problem.evaluate(trial, batch.encoders[live])
        actual = batch.cost[live] - ev.cost
        accept = actual > 0
        ratio = np.where(predicted > 0, actual / np.where(predicted > 0, predicted, 1.0), 0.0)
        # Nielsen's damping update
        mu, nu = batch.mu[live], batch.nu[live]
        mu = np.where(accept, mu * np.maximum(1 / 3, 1 - (2 * ratio - 1) ** 3), mu * nu)
        nu = np.where(accept, 2.0, nu * 2)
        batch.mu[live], batch.nu[live] = mu, nu
        acc = live[accept]
        batch.thetas[acc] = trial[accept]
        batch.cost[acc] = ev.cost[accept]
        batch.residual[acc] = ev.residual[accept]
        batch.jacobian[acc] = ev.jacobian[accept]
        batch.gradient[acc] = ev.gradient[accept]
        batch.iterations[live] += 1
        batch.history.append(batch.cost.copy())
        stuck = live[mu > _MU_MAX]
        batch.done[stuck] = batch.converged[stuck] = True
        if rtol is not None and len(batch.history) > window:
            # the objective (the root of the cost) fell by less than rtol relative
            old = batch.history[-1 - window]
            flat = np.sqrt(old) - np.sqrt(batch.cost) <= rtol * np.sqrt(batch.cost)
            newly = flat & ~batch.done
            batch.done[newly] = batch.converged[newly] = True
    return batch


# --------------------------------------------------------------------------- grid weights

def grid_weights(eval_points, lo, hi, n_points):
    """Weights of an ``n_points`` grid over (lo, hi): the share of ``eval_points``
    nearest each grid point, mixed with a uniform share `UNIFORM_SHARE`."""
    if eval_points is None:
        return None
    idx = np.rint((eval_points - lo) / (hi - lo) * (n_points - 1)).astype(int)
    density = np.bincount(idx, minlength=n_points) / len(eval_points)
    return (1.0 - UNIFORM_SHARE) * density + UNIFORM_SHARE / n_points
