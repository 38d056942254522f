"""Spiking decode error of `popfit.solvers.SpikeNoiseL2` beside nengo's default `LstsqL2`.

Plain nengo: one ``nengo.Ensemble(n_neurons, 1)`` with nengo's default
random tuning (LIF, max rates 200-400 Hz, intercepts in [-1, 1], 750
evaluation points), driven directly (no input synapse) by a slow linear
sweep of [-1, 1]. From it, for each function (x, x**2, sin(pi x)) and
connection synapse s (5 ms, 20 ms), two connections into passthrough Nodes
with ``synapse=s``: one solved by ``SpikeNoiseL2(synapse=s)``, one by
``nengo.solvers.LstsqL2()`` (nengo's default, reg 0.1). The ideal
``f(x(t))`` (a Node) goes through the same ``synapse=s`` connection, so both
carry the same lag (as popfit.spiking.evaluate_spiking does). The NRMSE is
the RMS of (decoded - ideal) over the run, divided by the function's range
on [-1, 1]; the median over seeds 0-4 (each seed a different ensemble and
network) is reported, with the ratio SpikeNoiseL2 / LstsqL2 and the number of seeds where
SpikeNoiseL2's NRMSE is the lower.

"model" columns: the expected spiking NRMSE that the noise model predicts
for each solver's decoders on the evaluation points
(``sqrt(mean (A X - Y)**2 + p @ X**2) / range``, ``p`` from
`popfit.solvers.spike_noise_penalty`): SpikeNoiseL2 minimises it, so its
model value is never above LstsqL2's; the measured values show how well
nengo's spiking LIF follows the model.

Bar: for every function, n_neurons and synapse, the median NRMSE with
SpikeNoiseL2 is <= LstsqL2's.

Usage: ``python benchmarks/bench_solver.py`` (about a minute on one core)
"""

import sys
import time

import numpy as np
import nengo
from nengo.builder.ensemble import get_activities

from popfit.solvers import SpikeNoiseL2, spike_noise_penalty

FUNCTIONS = {"x": lambda x: x, "x**2": lambda x: x**2, "sin(pi x)": lambda x: np.sin(np.pi * x)}
RANGES = {"x": 2.0, "x**2": 1.0, "sin(pi x)": 2.0}  # max - min on [-1, 1]
SIZES = (10, 30, 100)
SYNAPSES = (0.005, 0.02)
SEEDS = range(5)
DURATION = 4.0  # s: the sweep of [-1, 1]
DT = 0.001


def solvers(synapse):
    return {"SpikeNoiseL2": SpikeNoiseL2(synapse=synapse), "LstsqL2": nengo.solvers.LstsqL2()}


def run(n_neurons, seed):
    """Measured and model NRMSE of every (function, synapse, solver) for one ensemble."""
    def sweep(t):
        return -1.0 + 2.0 * min(t / DURATION, 1.0)

    conns, probes = {}, {}
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(sweep)
        ens = nengo.Ensemble(n_neurons, 1)
        nengo.Connection(stim, ens, synapse=None)
        for name, f in FUNCTIONS.items():
            ideal = nengo.Node(lambda t, x, f=f: f(x), size_in=1)
            nengo.Connection(stim, ideal, synapse=None)
            for s in SYNAPSES:
                out = nengo.Node(size_in=1)
                nengo.Connection(ideal, out, synapse=s)
                probes[name, s, "ideal"] = nengo.Probe(out, synapse=None)
                for label, solver in solvers(s).items():
                    out = nengo.Node(size_in=1)
                    conns[name, s, label] = nengo.Connection(
                        ens, out, function=f, synapse=s, solver=solver)
                    probes[name, s, label] = nengo.Probe(out, synapse=None)
    with nengo.Simulator(net, dt=DT, progress_bar=False, seed=seed) as sim:
        sim.run(DURATION)
        built = sim.data[ens]
        x = built.eval_points
        A = get_activities(built, ens, x)
    measured, model = {}, {}
    for (name, s, label), conn in conns.items():
        ideal = sim.data[probes[name, s, "ideal"]][:, 0]
        out = sim.data[probes[name, s, label]][:, 0]
        measured[name, s, label] = np.sqrt(np.mean((out - ideal) ** 2)) / RANGES[name]
        X = sim.data[conn].weights[0]  # (n_neurons,): the decoders
        err = A @ X - FUNCTIONS[name](x[:, 0])
        noise = spike_noise_penalty(A, s) @ X**2
        model[name, s, label] = np.sqrt(np.mean(err**2) + noise) / RANGES[name]
    return measured, model


def main():
    t0 = time.perf_counter()
    results = {n: [run(n, seed) for seed in SEEDS] for n in SIZES}
    elapsed = time.perf_counter() - t0
    print(f"Spiking decode NRMSE (median over seeds {SEEDS.start}-{SEEDS.stop - 1}), "
          f"nengo.Ensemble(n, 1) default tuning (LIF), {DURATION:g} s sweep of [-1, 1], "
          f"dt {DT:g} s; nengo {nengo.__version__}")
    print("| function  | n_neurons | synapse (s) | SpikeNoiseL2 | LstsqL2 | ratio | "
          "seeds won | model SpikeNoiseL2 | model LstsqL2 | bar |")
    print("|-----------|-----------|-------------|--------------|---------|-------|"
          "-----------|--------------------|---------------|-----|")
    failures = []
    for name in FUNCTIONS:
        for n in SIZES:
            for s in SYNAPSES:
                med = {}
                for kind, idx in (("measured", 0), ("model", 1)):
                    for label in ("SpikeNoiseL2", "LstsqL2"):
                        med[kind, label] = float(np.median(
                            [r[idx][name, s, label] for r in results[n]]))
                new, old = med["measured", "SpikeNoiseL2"], med["measured", "LstsqL2"]
                won = sum(r[0][name, s, "SpikeNoiseL2"] <= r[0][name, s, "LstsqL2"]
                          for r in results[n])
                ok = new <= old
                if not ok:
                    failures.append(f"{name}, n={n}, synapse={s:g}")
                print(f"| {name:9s} | {n:9d} | {s:11g} | {new:12.4f} | {old:7.4f} | "
                      f"{new / old:5.3f} | {won:4d} of {len(results[n])} | "
                      f"{med['model', 'SpikeNoiseL2']:18.4f} | {med['model', 'LstsqL2']:13.4f} | "
                      f"{'PASS' if ok else 'FAIL'} |")
    print(f"total time {elapsed:.1f} s")
    if failures:
        print(f"FAIL: SpikeNoiseL2's median NRMSE is above LstsqL2's for {len(failures)} of "
              f"{len(FUNCTIONS) * len(SIZES) * len(SYNAPSES)}: " + "; ".join(failures))
        return 1
    print("PASS: SpikeNoiseL2's median NRMSE is <= LstsqL2's for every function, n_neurons "
          "and synapse")
    return 0


if __name__ == "__main__":
    sys.exit(main())
