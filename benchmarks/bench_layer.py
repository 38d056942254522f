"""Scale: a 1,000-unit tanh layer (4 LIF neurons per unit) vs. a signed baseline.

Measured side by side in one run (nengo reference simulator, dt 1 ms):

- popfit layer: one `popfit.PopulationLayer` (one Ensemble of 4,000 LIF
  neurons, `nengo.transforms.Sparse` block transforms in and out);
- signed baseline: `popfit.baseline.SignedBaselineLayer`, one Ensemble of
  1,000 `RegularSpiking(Tanh)` neurons at the same max rate, driven and
  decoded elementwise;
- naive: 1,000 separate `popfit.PopulationNeuron` networks (timed once, it is slow);
- floor: the layer's LIF neurons alone (nengo's LIF step, no connections);
- dense: the layer with `nengo.transforms.Dense` block transforms (timed once);
- small layers: the output connection Dense up to
  `popfit.network.DENSE_MAX_ENTRIES` (the default) against Sparse
  everywhere, 16 to 128 units, run time of 2 s (CPU time, min of interleaved
  repeats), decoded outputs compared.

"build" is constructing the network plus building the `nengo.Simulator`;
"run" is simulating 1 s. Layer and baseline are timed as medians of
interleaved repeats. Bars: build <= 2 x and run <= 4 x the baseline.

Usage: ``python benchmarks/bench_layer.py [--units 1000] [--repeats 5] [--naive-units 1000]``
"""

import argparse
import time
import warnings

import numpy as np
import nengo

import popfit
import popfit.network
from popfit.baseline import SignedBaselineLayer

MAX_RATE = 400.0
# the floor model folds the stimulus into the bias; nengo then warns that some
# derived max_rates are not finite (they are informational only)
warnings.filterwarnings("ignore", message="Non-finite values detected in `max_rates`")
warnings.filterwarnings("ignore", message="invalid value encountered in log1p")
SYNAPSE = 0.01


def stimulus(n_units):
    return np.linspace(-3.0, 3.0, n_units)


def model_layer(fit, n_units, dense=False):
    with nengo.Network(seed=0) as model:
        stim = nengo.Node(stimulus(n_units))
        layer = popfit.PopulationLayer(fit, n_units)
        if dense:  # the trap: replace the sparse transforms by dense ones
            for conn in list(layer.connections):
                layer.connections.remove(conn)
            with layer:
                nengo.Connection(layer.input, layer.ensemble.neurons, synapse=None,
                                 transform=layer.encoders_block().toarray())
                nengo.Connection(layer.ensemble.neurons, layer.output, synapse=None,
                                 transform=layer.decoders_block().toarray())
        nengo.Connection(stim, layer.input, synapse=None)
        nengo.Probe(layer.output, synapse=SYNAPSE)
    return model


def model_baseline(n_units):
    with nengo.Network(seed=0) as model:
        stim = nengo.Node(stimulus(n_units))
        base = SignedBaselineLayer("tanh", n_units, max_rate=MAX_RATE)
        nengo.Connection(stim, base.input, synapse=None)
        nengo.Probe(base.output, synapse=SYNAPSE)
    return model


def model_bare_lif(fit, n_units):
    """Floor: the layer's LIF neurons alone, the stimulus folded into their bias
    (same firing), no connections or probes."""
    n = n_units * fit.n_neurons
    gain = np.tile(fit.gain, n_units)
    bias = np.tile(fit.bias, n_units) + gain * np.tile(fit.encoders, n_units) * np.repeat(
        stimulus(n_units), fit.n_neurons)
    with nengo.Network(seed=0) as model:
        nengo.Ensemble(n, 1, neuron_type=fit.neuron_type, gain=gain, bias=bias,
                       encoders=np.ones((n, 1)), eval_points=np.zeros((1, 1)))
    return model


def model_naive(fit, n_units):
    with nengo.Network(seed=0) as model:
        stim = nengo.Node(stimulus(n_units))
        out = nengo.Node(size_in=n_units)
        for u in range(n_units):
            pop = popfit.PopulationNeuron(fit)
            nengo.Connection(stim[u], pop.input, synapse=None)
            nengo.Connection(pop.output, out[u], synapse=None)
        nengo.Probe(out, synapse=SYNAPSE)
    return model


def time_it(make):
    t0 = time.perf_counter()
    model = make()
    sim = nengo.Simulator(model, progress_bar=False)
    t1 = time.perf_counter()
    with sim:
        sim.run(1.0)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive-units", type=int, default=1000,
                        help="units in the naive version (timed once)")
    args = parser.parse_args()
    n = args.units
    fit = popfit.fit_activation("tanh", 4, neuron_type="LIF", max_rate=MAX_RATE,
                                synapse=SYNAPSE, seed=0)
    time_it(lambda: model_baseline(n))  # warm-up (imports, caches)
    time_it(lambda: model_layer(fit, n))
    times = {"baseline": [], "layer": [], "bare": []}
    for _ in range(args.repeats):  # interleaved
        times["baseline"].append(time_it(lambda: model_baseline(n)))
        times["layer"].append(time_it(lambda: model_layer(fit, n)))
        times["bare"].append(time_it(lambda: model_bare_lif(fit, n)))
    med = {k: np.median(np.array(v), axis=0) for k, v in times.items()}
    dense = time_it(lambda: model_layer(fit, n, dense=True))
    n_naive = args.naive_units
    naive = time_it(lambda: model_naive(fit, n_naive))
    base_b, base_r = med["baseline"]

    print(f"Layer of {n} tanh units, 4 LIF neurons each (max {MAX_RATE:g} Hz), "
          f"reference simulator, 1 s simulated")
    print(f"medians of {args.repeats} interleaved repeats (dense and naive: one run)\n")
    print(f"| {'version':52s} | build (s) | x base | run 1 s (s) | x base |")
    print(f"|{'-' * 54}|-----------|--------|-------------|--------|")

    def row(name, b, r):
        print(f"| {name:52s} | {b:9.3f} | {b / base_b:6.2f} | {r:11.3f} | {r / base_r:6.2f} |")

    row(f"signed baseline: 1 Ensemble of {n} RegularSpiking(Tanh)", base_b, base_r)
    row(f"popfit layer: 1 Ensemble of {4 * n} LIF, Sparse", *med["layer"])
    row(f"floor: the {4 * n} LIF neurons alone (no connections)", *med["bare"])
    row("popfit layer with Dense transforms", *dense)
    label = f"naive: {n_naive} separate PopulationNeuron"
    row(label, *naive)
    if n_naive != n:
        print(f"\n(naive version timed with {n_naive} units, not {n}; "
              f"scaled to {n}: build {naive[0] * n / n_naive:.2f} s, "
              f"run {naive[1] * n / n_naive:.2f} s)")
    lb, lr = med["layer"]
    print(f"\nbars: build {lb / base_b:.2f} x <= 2 x: {'PASS' if lb / base_b <= 2 else 'FAIL'}; "
          f"run {lr / base_r:.2f} x <= 4 x: {'PASS' if lr / base_r <= 4 else 'FAIL'}; "
          f"naive build {naive[0] * n / n_naive / lb:.0f} x the sparse layer")
    small_layers(fit, args.repeats)


def small_layers(fit, repeats, sizes=(16, 32, 64, 96, 128)):
    """Run time of small layers: the default (Dense output up to DENSE_MAX_ENTRIES)
    against Sparse everywhere, interleaved; outputs compared."""
    limit = popfit.network.DENSE_MAX_ENTRIES

    def run(n_units, dense_limit):
        popfit.network.DENSE_MAX_ENTRIES = dense_limit
        try:
            model = model_layer(fit, n_units)
        finally:
            popfit.network.DENSE_MAX_ENTRIES = limit
        probe = model.all_probes[0]
        with nengo.Simulator(model, progress_bar=False) as sim:
            start = time.process_time()
            sim.run(2.0)
            return time.process_time() - start, sim.data[probe]

    print(f"\nSmall layers: output Dense up to DENSE_MAX_ENTRIES = {limit} "
          f"(default) vs Sparse; run 2 s, CPU time, min of {repeats} interleaved repeats")
    print("| units | entries | default output | Sparse (s) | default (s) | default / Sparse "
          "| max |out diff| |")
    print("|------:|--------:|:---------------|-----------:|------------:|-----------------:"
          "|---------------:|")
    for n_units in sizes:
        times = {"sparse": [], "default": []}
        for _ in range(repeats):
            t_s, out_s = run(n_units, 0)
            t_d, out_d = run(n_units, limit)
            times["sparse"].append(t_s)
            times["default"].append(t_d)
        entries = n_units * n_units * fit.n_neurons
        kind = "Dense" if entries <= limit else "Sparse"
        ts, td = min(times["sparse"]), min(times["default"])
        print(f"| {n_units:5d} | {entries:7d} | {kind:14s} | {ts:10.3f} | {td:11.3f} | "
              f"{td / ts:16.2f} | {np.abs(out_d - out_s).max():14.1e} |")


if __name__ == "__main__":
    main()
