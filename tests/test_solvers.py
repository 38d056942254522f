"""`popfit.solvers`: the noise-aware ridge and `SpikeNoiseL2`, against independent references.

The references: the normal equations ``(A^T W A + diag(p)) X = A^T W Y``
solved here with numpy, with ``p`` from the regular-spike-train variance
written out here (``r / (2 tau) (coth(u) - 1/u)``, ``u = 1 / (2 r tau)``);
nengo's own build and simulation of a connection; nengo's ``LstsqL2`` on the
same ensemble. The optimizer (`popfit.fit.objective.Problem.solve`) and the
whole-step decoders call `spike_noise_ridge` itself.
"""

import nengo
import numpy as np
import pytest
from nengo.builder.ensemble import get_activities
from nengo.exceptions import ReadonlyError

from popfit.conversion import refit
from popfit.exceptions import PopfitTypeError, PopfitValueError
from popfit.solvers import (RidgeSolution, SpikeNoiseL2, spike_noise_penalty,
                            spike_noise_ridge)


def reference_variance(rates, tau):
    """Variance of a regular spike train at ``rates`` (Hz) through Lowpass(tau), written out.

    In extended precision (``coth(u) - 1/u`` cancels at high rates), rounded to float64.
    """
    r = np.asarray(rates, dtype=np.longdouble)
    out = np.zeros_like(r)
    on = r > 0
    u = 1 / (2 * r[on] * np.longdouble(tau))
    out[on] = r[on] / (2 * np.longdouble(tau)) * (1 / np.tanh(u) - 1 / u)
    return out.astype(float)


def reference_solve(A, Y, penalty, weights=None):
    """The normal equations of the weighted ridge problem, solved with numpy."""
    m = A.shape[0]
    w = np.full(m, 1.0 / m) if weights is None else weights / weights.sum()
    gram = A.T @ (w[:, None] * A) + np.diag(penalty)
    wy = w * Y if Y.ndim == 1 else w[:, None] * Y
    return np.linalg.solve(gram, A.T @ wy)


def lif_rates(n_neurons, x, seed):
    """Rates (Hz) of nengo-style random LIF tuning curves at 1-d inputs ``x``."""
    rng = np.random.default_rng(seed)
    lif = nengo.LIF()
    gain, bias = lif.gain_bias(rng.uniform(200, 400, n_neurons), rng.uniform(-0.9, 0.9, n_neurons))
    enc = rng.choice([-1.0, 1.0], n_neurons)
    return lif.rates(x[:, None] * enc, gain, bias)


def close(actual, desired, rtol):
    """Max abs difference within ``rtol`` times the reference's largest magnitude."""
    scale = np.max(np.abs(desired))
    np.testing.assert_allclose(actual, desired, rtol=0, atol=rtol * scale)


@pytest.mark.parametrize("synapse", [0.005, 0.02])
def test_solver_equals_normal_equations(synapse):
    x = np.linspace(-1, 1, 300)
    A = lif_rates(25, x, seed=1)
    Y = np.column_stack([x, x**2, np.sin(np.pi * x)])
    X, info = SpikeNoiseL2(synapse=synapse)(A, Y)
    penalty = reference_variance(A, synapse).mean(axis=0)
    ref = reference_solve(A, Y, penalty)
    assert X.shape == (25, 3)
    close(X, ref, 1e-10)
    # info: nengo's rmses, the expected noise and the expected spiking RMS error
    np.testing.assert_allclose(info["rmses"], np.sqrt(np.mean((A @ X - Y) ** 2, axis=0)),
                               rtol=1e-12)
    # popfit.neurons.spike_noise_variance's series (u < 0.15) is exact to about 2e-11
    np.testing.assert_allclose(info["penalty"], penalty, rtol=1e-10)
    noise = np.sqrt(penalty @ X**2)
    np.testing.assert_allclose(info["noise_rmses"], noise, rtol=1e-10)
    np.testing.assert_allclose(info["expected_rmses"], np.hypot(info["rmses"], noise),
                               rtol=1e-12)


def test_ridge_weights_batches_and_silent_neurons():
    x = np.linspace(-1, 1, 200)
    A = lif_rates(12, x, seed=2)
    A[:, 3] = 0.0  # a neuron silent everywhere: decoder exactly 0, no singular solve
    y = np.tanh(2 * x)
    w = np.random.default_rng(0).uniform(0.0, 3.0, len(x))
    p = spike_noise_penalty(A, 0.01, w)
    np.testing.assert_allclose(p, (w / w.sum()) @ reference_variance(A, 0.01), rtol=1e-10)
    X = spike_noise_ridge(A, y, p, sample_weights=w)
    assert X.shape == (12,) and X[3] == 0.0
    keep = np.arange(12) != 3
    close(X[keep], reference_solve(A[:, keep], y, p[keep], w), 1e-10)
    # a batch of problems is each problem solved alone; the full output's
    # stacked residual has the objective as its squared norm
    B = np.stack([A, 1.5 * A])
    sol = spike_noise_ridge(B, y, spike_noise_penalty(B, 0.01, w), w, full_output=True)
    assert isinstance(sol, RidgeSolution)
    assert sol.X.shape == (2, 12) and sol.residual.shape == (2, 200 + 12)
    np.testing.assert_allclose(sol.X[0], X, rtol=0, atol=1e-13 * np.abs(X).max())
    # without full_output (the targets appended to the QR, Q never formed):
    # a batch, batched targets, and more targets than points
    close(spike_noise_ridge(B, y, spike_noise_penalty(B, 0.01, w), w), sol.X, 1e-12)
    Yb = np.stack([np.column_stack([y, x]), np.column_stack([x**2, y])])
    Xb = spike_noise_ridge(B, Yb, 50.0)
    assert Xb.shape == (2, 12, 2)
    close(Xb[1], spike_noise_ridge(B[1], Yb[1], 50.0), 1e-12)
    wide = np.random.default_rng(1).normal(size=(5, 9))  # 5 points, 9 targets
    close(spike_noise_ridge(A[:5], wide, 1e3), reference_solve(A[:5], wide, np.full(12, 1e3)),
          1e-10)
    for b in range(2):
        wn = w / w.sum()
        noise = spike_noise_penalty(B[b], 0.01, w) @ sol.X[b] ** 2
        objective = wn @ (B[b] @ sol.X[b] - y) ** 2 + noise
        np.testing.assert_allclose(np.sum(sol.residual[b] ** 2), objective, rtol=1e-10)


def test_ridge_rejects_bad_shapes_and_weights():
    A = np.ones((5, 2))
    with pytest.raises(PopfitValueError, match=r"spike_noise_ridge: Y must have shape"):
        spike_noise_ridge(A, np.ones(4), 1.0)
    with pytest.raises(PopfitValueError, match=r"penalty must be a number or have shape"):
        spike_noise_ridge(A, np.ones(5), np.ones(3))
    with pytest.raises(PopfitValueError, match=r"penalty must be >= 0 \(got min -1.0\)"):
        spike_noise_ridge(A, np.ones(5), -1.0)
    with pytest.raises(PopfitValueError, match=r"sample_weights must have shape \(n_points,\)"):
        spike_noise_ridge(A, np.ones(5), 1.0, sample_weights=np.ones(4))
    with pytest.raises(PopfitValueError, match=r"sample_weights must be finite and >= 0"):
        spike_noise_ridge(A, np.ones(5), 1.0, sample_weights=-np.ones(5))


@pytest.mark.parametrize("bad", [0, -0.01, float("nan"), float("inf"), None])
def test_bad_synapse_raises(bad):
    with pytest.raises(PopfitValueError,
                       match=r"^SpikeNoiseL2: synapse \(the time constant in s of the "
                             r"connection's Lowpass synapse\) must be"):
        SpikeNoiseL2(synapse=bad)


def test_synapse_type_lowpass_and_frozen():
    with pytest.raises(PopfitTypeError, match=r"^SpikeNoiseL2: synapse .* must be a positive "
                                              r"number \(got '5ms' of type str\)"):
        SpikeNoiseL2(synapse="5ms")
    solver = SpikeNoiseL2(synapse=nengo.Lowpass(0.02))
    assert solver.synapse == 0.02 and solver == SpikeNoiseL2(0.02)
    assert not solver.weights
    with pytest.raises(ReadonlyError):
        solver.synapse = 0.01


@pytest.fixture(scope="module")
def built():
    """One network with SpikeNoiseL2 decoders and weights, built and run by nengo."""
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(lambda t: np.sin(2 * np.pi * t))
        ens = nengo.Ensemble(40, 1)
        post = nengo.Ensemble(20, 1)
        out = nengo.Node(size_in=1)
        nengo.Connection(stim, ens, synapse=None)
        dec = nengo.Connection(ens, out, function=np.square, synapse=0.02,
                               solver=SpikeNoiseL2(synapse=0.02))
        wts = nengo.Connection(ens, post, synapse=0.02,
                               solver=SpikeNoiseL2(synapse=0.02, weights=True))
        probe = nengo.Probe(out)
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run(0.3)
    return sim, ens, post, dec, wts, probe


def test_builds_and_runs_in_nengo(built):
    sim, ens, post, dec, wts, probe = built
    # the decoders nengo built are the reference solve of nengo's own activities
    x = sim.data[ens].eval_points
    A = get_activities(sim.data[ens], ens, x)
    ref = reference_solve(A, x**2, reference_variance(A, 0.02).mean(axis=0))
    close(sim.data[dec].weights.T, ref, 1e-10)
    assert sim.data[dec].solver_info["rmses"].shape == (1,)
    # weights=True: nengo composes the decoders with the post encoders
    d = reference_solve(A, x, reference_variance(A, 0.02).mean(axis=0))
    close(sim.data[wts].weights, sim.data[post].scaled_encoders @ d.T, 1e-10)
    out = sim.data[probe][:, 0]
    assert np.all(np.isfinite(out)) and out.shape == (300,)


def _sweep_nrmse(solvers, n_neurons=30, synapse=0.02, duration=1.5, seed=0):
    """Spiking NRMSE of x**2 decoded by each solver on one ensemble, over a sweep of [-1, 1]."""
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: -1.0 + 2.0 * min(t / duration, 1.0))
        ens = nengo.Ensemble(n_neurons, 1)
        nengo.Connection(stim, ens, synapse=None)
        ideal = nengo.Node(size_in=1)
        nengo.Connection(stim, ideal, function=np.square, synapse=synapse)
        p_ideal = nengo.Probe(ideal)
        probes = []
        for solver in solvers:
            out = nengo.Node(size_in=1)
            nengo.Connection(ens, out, function=np.square, synapse=synapse, solver=solver)
            probes.append(nengo.Probe(out))
    with nengo.Simulator(net, progress_bar=False, seed=seed) as sim:
        sim.run(duration)
    ideal = sim.data[p_ideal]
    return [float(np.sqrt(np.mean((sim.data[p] - ideal) ** 2))) for p in probes]


def test_spiking_error_not_worse_than_lstsql2():
    """x**2 from 30 default LIF neurons through a 20 ms synapse (see bench_solver.py
    for the full comparison): the noise-aware decoders decode no worse."""
    ours, lstsq = _sweep_nrmse([SpikeNoiseL2(synapse=0.02), nengo.solvers.LstsqL2()])
    assert ours <= lstsq


def test_refit_weights_equal_centred_normal_equations():
    """refit's solve (an unpenalised intercept column) equals the centred normal equations
    ``(A_c^T A_c / m + diag(p)) M^T = A_c^T Z_c / m``, ``c = mean(z) - mean(a) M^T``."""
    rng = np.random.default_rng(6)
    x = rng.uniform(-1, 1, 150)
    a = lif_rates(16, x, seed=6)
    z = np.column_stack([np.sin(3 * x), x**2 - 0.3])
    penalty = refit.noise_penalty(a, 0.005)
    M, c = refit.solve_weights(a, z, penalty)
    ac, zc = a - a.mean(axis=0), z - z.mean(axis=0)
    ridge = refit._RIDGE * (a.var(axis=0).mean() + 1.0)
    mt = np.linalg.solve(ac.T @ ac / len(a) + np.diag(penalty + ridge), ac.T @ zc / len(a))
    close(M, mt.T, 1e-9)
    close(c, z.mean(axis=0) - a.mean(axis=0) @ mt, 1e-9)
