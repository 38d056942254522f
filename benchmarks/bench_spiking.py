"""Spiking accuracy of fitted populations vs. the signed one-neuron baseline.

For each target (tanh, sigmoid, linear), synapse (0.005 s, 0.01 s) and
population size N (2, 3, 4, 6, 8): fit N LIF neurons (max rate 400 Hz) for
that synapse, then `popfit.evaluate_spiking` runs one `nengo.Simulator`
with the population and the signed baseline (one `nengo.RegularSpiking`
neuron of the equivalent rate type at 400 Hz) side by side: a linear sweep
of the domain over 6 s, dt 1 ms, every signal filtered by the same synapse.

Columns: expected spiking NRMSE from the fit's noise model, measured NRMSE,
baseline NRMSE, their ratio, mean rate per neuron, fit time.
Bars (synapse 0.01): tanh N=4 <= 0.85 x, tanh N=8 <= 0.62 x,
sigmoid and linear N=4 <= 1.0 x.

Usage: ``python benchmarks/bench_spiking.py``
"""

import time

import popfit

TARGETS = ("tanh", "sigmoid", "linear")
SYNAPSES = (0.005, 0.01)
SIZES = (2, 3, 4, 6, 8)
MAX_RATE = 400.0
BARS = {("tanh", 4): 0.85, ("tanh", 8): 0.62, ("sigmoid", 4): 1.0, ("linear", 4): 1.0}


def main():
    print("Spiking NRMSE, LIF (tau_rc 0.02 s, tau_ref 0.002 s), max rate 400 Hz, "
          "6 s linear sweep, dt 1 ms, seed 0")
    print("| target  | synapse (s) | N | expected | measured | baseline | ratio | "
          "mean rate (Hz) | fit time (s) | bar |")
    print("|---------|-------------|---|----------|----------|----------|-------|"
          "----------------|--------------|-----|")
    for target in TARGETS:
        for synapse in SYNAPSES:
            for n in SIZES:
                t0 = time.perf_counter()
                fit = popfit.fit_activation(target, n, neuron_type="LIF", max_rate=MAX_RATE,
                                            synapse=synapse, seed=0)
                fit_time = time.perf_counter() - t0
                rep = popfit.evaluate_spiking(fit, synapse=synapse, seed=0)
                bar = BARS.get((target, n)) if synapse == 0.01 else None
                verdict = ""
                if bar is not None:
                    verdict = f"<= {bar:g}: {'PASS' if rep.ratio <= bar else 'FAIL'}"
                print(f"| {target:7s} | {synapse:11g} | {n} | {fit.spiking_nrmse:8.4f} | "
                      f"{rep.nrmse:8.4f} | {rep.baseline_nrmse:8.4f} | {rep.ratio:5.3f} | "
                      f"{rep.mean_rate:14.1f} | {fit_time:12.2f} | {verdict} |", flush=True)


if __name__ == "__main__":
    main()
