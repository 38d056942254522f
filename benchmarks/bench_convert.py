"""Benchmark: a scikit-learn tanh MLP on the digits data, converted to spiking neurons.

All in one run (python benchmarks/bench_convert.py [--subset N] [--seed S]):

- the ANN's own test accuracy (reference);
- popfit.convert with 2, 4 and 8 LIF neurons per hidden unit (max 400 Hz,
  synapse 5 ms, fits optimized for spike noise at convert's default
  noise_synapse of 20 ms, domain calibrated on the training set);
- the signed baseline: one nengo.RegularSpiking(nengo.Tanh(tau_ref=1/400))
  neuron per hidden unit (negative spikes allowed; popfit.spiking.signed_baseline);
- nengo's default random populations with the same neuron counts: one
  nengo.networks.EnsembleArray(n, 64) with default tuning, radius = the
  layer's calibrated domain, decoding tanh (LstsqL2);

each at presentation times 0.05, 0.1 and 0.2 s, reading the decoded output
averaged over the last half of each presentation (popfit.conversion.present,
which ConvertedModel.predict_proba uses too), with wall seconds per sample
(build + simulation). Every spiking network uses the same 5 ms synapse on its
hidden-to-output connection and the same readout.
"""

import argparse
import time

import numpy as np
import nengo
from scipy.special import softmax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

import popfit
from popfit.conversion import present
from popfit.spiking import signed_baseline

MAX_RATE = 400.0
SYNAPSE = 0.005
PRESENTATION_TIMES = (0.05, 0.1, 0.2)
NEURON_COUNTS = (2, 4, 8)


def run_readout(net, X, presentation_time, seed):
    """popfit.conversion.present on ``net``, timed. Returns (decoded output, wall s)."""
    start = time.perf_counter()
    out = present(net, X, presentation_time, seed=seed, progress_bar=False)
    return out, time.perf_counter() - start


def score(mlp, proba, X, y, seconds_per_sample):
    """(accuracy, mean |proba - ANN proba|, s/sample)."""
    acc = float(np.mean(mlp.classes_[proba.argmax(axis=1)] == y))
    return acc, float(np.mean(np.abs(proba - mlp.predict_proba(X)))), seconds_per_sample


def signed_layer(mlp, fit):
    """popfit's signed one-neuron baseline (`popfit.spiking.signed_baseline` of the
    layer's fit) for every hidden unit: negative spikes allowed."""
    w1, w2 = mlp.coefs_
    b1, b2 = mlp.intercepts_
    _, neuron_type, gain, decoder = signed_baseline(fit)  # J = gain * x, out = decoder * spikes
    n_units = w1.shape[1]
    with nengo.Network(label="signed baseline") as net:
        net.input = nengo.Node(size_in=w1.shape[0])
        ens = nengo.Ensemble(n_units, 1, neuron_type=nengo.RegularSpiking(neuron_type),
                             gain=np.full(n_units, gain), bias=gain * b1,
                             encoders=np.ones((n_units, 1)))
        net.output = nengo.Node(size_in=w2.shape[1])
        # connections into neurons are scaled by the ensemble's gain
        nengo.Connection(net.input, ens.neurons, transform=w1.T, synapse=None)
        nengo.Connection(ens.neurons, net.output, transform=w2.T * decoder, synapse=SYNAPSE)
        nengo.Connection(nengo.Node(b2), net.output, synapse=None)
    return net


def nengo_default(mlp, n_neurons, radius):
    """nengo's default random tuning: an EnsembleArray decoding tanh."""
    w1, w2 = mlp.coefs_
    b1, b2 = mlp.intercepts_
    with nengo.Network(label="nengo default") as net:
        net.input = nengo.Node(size_in=w1.shape[0])
        ea = nengo.networks.EnsembleArray(n_neurons, w1.shape[1], radius=radius)
        out = ea.add_output("tanh", np.tanh)
        net.output = nengo.Node(size_in=w2.shape[1])
        nengo.Connection(net.input, ea.input, transform=w1.T, synapse=None)
        nengo.Connection(nengo.Node(b1), ea.input, synapse=None)
        nengo.Connection(out, net.output, transform=w2.T, synapse=SYNAPSE)
        nengo.Connection(nengo.Node(b2), net.output, synapse=None)
    return net


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subset", type=int, default=None,
                        help="evaluate on the first N of the 450 test digits")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0)
    mlp = MLPClassifier(hidden_layer_sizes=(64,), activation="tanh", max_iter=1000,
                        random_state=0).fit(X_train, y_train)
    if args.subset:
        X_test, y_test = X_test[:args.subset], y_test[:args.subset]
    n = len(X_test)
    ann = mlp.score(X_test, y_test)

    rows = []  # (name, neurons per unit, {T: (acc, s/sample)})
    radius = None
    for n_neurons in NEURON_COUNTS:
        t = time.perf_counter()
        model = popfit.convert(mlp, n_neurons=n_neurons, max_rate=MAX_RATE, synapse=SYNAPSE,
                               calibration_data=X_train, seed=args.seed)
        convert_s = time.perf_counter() - t
        radius = model.layers[0].domain[1]
        res = {}
        for T in PRESENTATION_TIMES:
            t = time.perf_counter()
            proba = model.predict_proba(X_test, presentation_time=T, progress_bar=False)
            res[T] = score(mlp, proba, X_test, y_test, (time.perf_counter() - t) / n)
        rows.append((f"popfit LIF (convert {convert_s:.1f} s)", n_neurons, res))
        if n_neurons == 4:
            summary, fit4 = model.report(), model.fits[0]

    net = signed_layer(mlp, fit4)
    res = {}
    for T in PRESENTATION_TIMES:
        out, wall = run_readout(net, X_test, T, args.seed)
        res[T] = score(mlp, softmax(out, axis=1), X_test, y_test, wall / n)
    rows.insert(0, ("signed RegularSpiking(Tanh)", 1, res))

    for n_neurons in NEURON_COUNTS:
        net = nengo_default(mlp, n_neurons, radius)
        res = {}
        for T in PRESENTATION_TIMES:
            out, wall = run_readout(net, X_test, T, args.seed)
            res[T] = score(mlp, softmax(out, axis=1), X_test, y_test, wall / n)
        rows.append(("nengo default EnsembleArray", n_neurons, res))

    print("popfit.convert benchmark: MLPClassifier(hidden_layer_sizes=(64,), "
          "activation='tanh') on load_digits")
    print(f"test digits: {n}" + (" (subset of 450)" if n < 450 else " (all held-out 25%)")
          + f"; LIF max {MAX_RATE:g} Hz, synapse {SYNAPSE * 1e3:g} ms, dt 1 ms, output "
          "averaged over the last half of each presentation; seed", args.seed)
    print(summary)
    print()
    head = "".join(f" | T={T:g} s: acc   vs ANN   |dp|   s/smp" for T in PRESENTATION_TIMES)
    print(f"{'network':<34}{'N/unit':>6}{head}")
    print(f"{'ANN (MLPClassifier, float)':<34}{'-':>6}"
          + "".join(f" | {100 * ann:11.2f}%  {'':>7} {'':>7} {'-':>7}"
                    for _ in PRESENTATION_TIMES))
    for name, nn, res in rows:
        cells = "".join(f" | {100 * a:11.2f}% {100 * (a - ann):+6.2f}pp {dp:7.1e} {s:7.4f}"
                        for a, dp, s in (res[T] for T in PRESENTATION_TIMES))
        print(f"{name:<34}{nn:>6}{cells}")
    signed = rows[0][2]
    pop4 = [r for r in rows if r[0].startswith("popfit") and r[1] == 4][0][2]
    print("acc: test accuracy; vs ANN: difference in percentage points; |dp|: mean absolute "
          "difference of the class probabilities from the ANN's; s/smp: wall seconds per "
          "sample (build + simulation)")
    print()
    print(f"goal at T=0.1 s: popfit N=4 {100 * pop4[0.1][0]:.2f}% vs ANN {100 * ann:.2f}% "
          f"(gap {100 * (ann - pop4[0.1][0]):.2f} pp, goal <= 1 pp); vs signed baseline "
          f"{100 * signed[0.1][0]:.2f}% (ratio of errors popfit/signed: "
          f"{(1 - pop4[0.1][0]) / max(1 - signed[0.1][0], 1e-9):.2f}; ratio of |dp|: "
          f"{pop4[0.1][1] / max(signed[0.1][1], 1e-12):.2f})")
    print(f"total wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
