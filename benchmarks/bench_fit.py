"""Accuracy and speed of fit_activation, with Nengo's default tuning measured in the same run.

Run: python benchmarks/bench_fit.py [--seeds 20]

Prints
1. rate-level NRMSE (synapse=None) for tanh, sigmoid, linear x N = 1..8 x {LIF, ReLU},
   popfit next to the median of Nengo's default random tuning (nengo.Ensemble
   defaults + LstsqL2, 1001 points), with the ratio and the fit time;
2. callable targets (sin on (-pi, pi), |x| on (-1, 1)) with 6 neurons;
3. the bars of issue 2 with PASS/FAIL;
4. speed: median of fit_activation("tanh", 4) over repeats, next to a
   reference computation measured in the same run (Nengo's default tuning
   for the same population, 20 seeds), and the time of the whole table.
"""

import argparse
import time

import numpy as np

import popfit
from popfit.baseline import compute_accuracy, format_accuracy, nengo_default_nrmse

BEST_KNOWN = {("tanh", "LIF", 4): 0.0045, ("sigmoid", "LIF", 4): 0.0048}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="Nengo default seeds")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    seeds = range(args.seeds)
    bars = []

    print("1. Rate-level NRMSE (synapse=None, max_rate 400 Hz, 1001 points)")
    table_time = 0.0
    results = {}
    for neuron in ("LIF", "RectifiedLinear"):
        table = compute_accuracy(("tanh", "sigmoid", "linear"), range(1, 9), neuron_type=neuron,
                                 synapse=None, seeds=seeds)
        print(format_accuracy(table), flush=True)
        for target, r in table.items():
            table_time += sum(r["fit_time"])
            for k, n in enumerate(r["n_neurons"]):
                results[target, neuron, n] = (r["popfit"][k], float(np.median(r["nengo"][k])))

    print("\n2. Callable targets, 6 LIF neurons, rate level")
    for name, f, domain in (("sin", np.sin, (-np.pi, np.pi)), ("abs", np.abs, (-1.0, 1.0))):
        fit = popfit.fit_activation(f, 6, domain=domain, synapse=None, seed=0)
        base = float(np.median(nengo_default_nrmse(f, 6, domain=domain, seeds=seeds)))
        print(f"{name:>8} popfit {fit.nrmse:.5f}  nengo median {base:.5f}  ratio "
              f"{fit.nrmse / base:.4f}  ({fit.fit_time:.2f} s)")
        bars.append((f"{name} 6 LIF <= 1/10 nengo median", fit.nrmse / base, 0.1))

    for (target, neuron, n), best in BEST_KNOWN.items():
        nrmse = results[target, neuron, n][0]
        bars.append((f"{target} {n} {neuron} <= 0.006 (best known {best})", nrmse, 0.006))
    nrmse, base = results["linear", "LIF", 4]
    bars.append(("linear 4 LIF <= 1/10 nengo median (ratio)", nrmse / base, 0.1))
    bars.append(("linear 2 ReLU exact (< 1e-6)", results["linear", "RectifiedLinear", 2][0], 1e-6))

    print("\n3. Speed")
    fit_times, ref_times = [], []
    for _ in range(args.repeats):  # interleaved repeats
        t0 = time.perf_counter()
        popfit.fit_activation("tanh", 4, seed=0)
        fit_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        nengo_default_nrmse("tanh", 4, seeds=range(20))
        ref_times.append(time.perf_counter() - t0)
    med, ref = float(np.median(fit_times)), float(np.median(ref_times))
    print(f"fit_activation('tanh', 4): median {med:.3f} s over {args.repeats} runs; "
          f"Nengo default tuning of the same population, 20 seeds: {ref:.3f} s; "
          f"ratio {med / ref:.2f}")
    print(f"whole table (48 fits): {table_time:.1f} s of fitting")
    bars.append(("fit_activation('tanh', 4) median <= 1 s", med, 1.0))
    bars.append(("table of 48 fits <= 30 s", table_time, 30.0))

    a = popfit.fit_activation("tanh", 4, seed=11).to_dict()
    b = popfit.fit_activation("tanh", 4, seed=11).to_dict()
    a.pop("fit_time"), b.pop("fit_time")
    print(f"same seed bit-identical: {a == b}")

    print("\n4. Bars (issue 2)")
    for name, value, bound in bars:
        status = "PASS" if value <= bound else "FAIL"
        print(f"  [{status}] {name}: {value:.4g} (bound {bound:g})")
    print(f"  [{'PASS' if a == b else 'FAIL'}] same seed, bit-identical result")


if __name__ == "__main__":
    main()
