"""Benchmark: trained models converted to spiking neurons, against the ANN and the signed baseline.

All in one run (python benchmarks/bench_convert.py [--subset N] [--seed S] [--no-keras]
[--only real-models|graphs]):

1. Digits, MLPClassifier((64,), tanh), 450 held-out digits: the ANN (reference);
   the signed baseline (one nengo.RegularSpiking(nengo.Tanh(tau_ref=1/400))
   neuron per hidden unit, negative spikes allowed; popfit.spiking.signed_baseline);
   popfit.convert with 4 LIF neurons per unit (max 400 Hz, synapse 5 ms,
   domain calibrated on the training set) without and with refit (the
   default), and with 8 LIF per unit (refit), at presentation times 0.03,
   0.05, 0.1 and 0.2 s, reading the
   decoded output averaged over the last half of each presentation.
2. Throughput: the same 450 digits at 0.1 s, today's sequential predict
   (``sequential=True``: the converted network, samples one after another)
   against batched predict (n_jobs=1, and n_jobs=2 cold and warm), with the
   signed baseline network's sequential time beside them; the outputs
   compared.
3. A two-hidden-layer MLP, (64, 32) tanh, 4 LIF per unit, with and without refit.
4. Notebook 03's Keras regressor (Dense(8, tanh) -> Dense(1) on 0.8 sin(3x)),
   4 and 8 neurons per unit, with and without refit: RMS from Keras.
5. Real-model layers (``--only real-models`` runs just this): a digits Keras
   model Dense(64, tanh) + BatchNormalization + Dropout + Dense(10, softmax)
   (BatchNormalization folded into the output layer), 4 LIF per unit, 450
   test digits at 0.1 s: spiking accuracy beside Keras's and beside the
   signed RegularSpiking network of the same (folded) weights; and a
   scikit-learn Pipeline(StandardScaler(), MLPClassifier((64,), tanh)),
   the scaler folded into the first layer: accuracy beside the pipeline's.
6. Keras graphs (``--only graphs``): the digits CNN (Conv2D(8, 3, same, tanh),
   BatchNormalization, AveragePooling2D(2), Dropout, Conv2D(16, 3, tanh),
   Flatten, Dropout, Dense(10, softmax)) and a residual functional model
   (Dense(64, tanh) -> Dense(64, tanh), Add of the two, Dense(10, softmax)),
   4 LIF per unit, 450 test digits at 0.1 s: accuracy beside Keras's and
   beside the signed network of the same weights
   (popfit.baseline.signed_model_network: one RegularSpiking neuron per unit),
   with neurons, spikes per digit (sequential run on 100 digits), convert
   time and batched predict time.

The signed baseline and the sequential reference run through
popfit.conversion.present; popfit's batched rows through ConvertedModel.predict_proba.
"""

import argparse
import os
import time
import types
import warnings

import numpy as np
import nengo
from scipy.special import softmax
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import popfit
from digits_models import (accuracy, digits_cnn, digits_residual, import_keras, simulate,
                           sine_regressor, trained)
from popfit.conversion import present, read_model
from popfit.spiking import signed_baseline

MAX_RATE = 400.0
SYNAPSE = 0.005
PRESENTATION_TIMES = (0.03, 0.05, 0.1, 0.2)


def signed_network(mlp, fit):
    """popfit's signed one-neuron baseline (`popfit.spiking.signed_baseline` of the
    layer's fit) for every hidden unit of a one-hidden-layer MLP: negative spikes allowed."""
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


def timed(f, *args, **kwargs):
    start = time.perf_counter()
    out = f(*args, **kwargs)
    return out, time.perf_counter() - start


def scores(proba, p_ann, y, classes):
    """(accuracy, mean |proba - ANN proba|)."""
    return float(np.mean(classes[proba.argmax(axis=1)] == y)), float(np.mean(np.abs(proba - p_ann)))


def digits(seed, subset):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    if subset:
        X_test, y_test = X_test[:subset], y_test[:subset]
    return X_train, X_test, y_train, y_test


def section_digits(args, data):
    X_train, X_test, y_train, y_test = data
    mlp = MLPClassifier(hidden_layer_sizes=(64,), activation="tanh", max_iter=1000,
                        random_state=0).fit(X_train, y_train)
    p_ann = mlp.predict_proba(X_test)
    ann = float(np.mean(mlp.predict(X_test) == y_test))
    n = len(X_test)
    variants = {"popfit LIF N=4, no refit": (4, False), "popfit LIF N=4, refit": (4, True),
                "popfit LIF N=8, refit": (8, True)}
    models = {}
    for name, (n_neurons, refit) in variants.items():
        models[name], t = timed(popfit.convert, mlp, n_neurons=n_neurons, max_rate=MAX_RATE,
                                connection_synapse=SYNAPSE, calibration_data=X_train,
                                seed=args.seed, refit=refit)
        print(f"convert {name}: {t:.1f} s")
    print(models["popfit LIF N=4, refit"].report())
    signed = signed_network(mlp, models["popfit LIF N=4, refit"].fits[0])

    rows = {"signed RegularSpiking(Tanh), N=1": {}, **{name: {} for name in variants}}
    for T in PRESENTATION_TIMES:
        out = present(signed, X_test, T, seed=args.seed, progress_bar=False)
        rows["signed RegularSpiking(Tanh), N=1"][T] = scores(softmax(out, axis=1), p_ann,
                                                           y_test, mlp.classes_)
        for name, model in models.items():
            proba = model.predict_proba(X_test, T, progress_bar=False)
            rows[name][T] = scores(proba, p_ann, y_test, mlp.classes_)
    rate = {name: scores(model.rate_output(X_test), p_ann, y_test, mlp.classes_)
            for name, model in models.items()}

    print(f"\n== 1. digits, MLPClassifier((64,), tanh), {n} test digits; ANN accuracy "
          f"{100 * ann:.2f}%; LIF max {MAX_RATE:g} Hz, synapse {SYNAPSE * 1e3:g} ms, dt 1 ms; "
          f"seed {args.seed}")
    head = "".join(f" | T={T:g} s: acc     vs ANN   |dp|  " for T in PRESENTATION_TIMES)
    print(f"{'network':<34}{head} | rates: acc   |dp|")
    for name, res in rows.items():
        cells = "".join(f" | {100 * a:11.2f}% {100 * (a - ann):+6.2f}pp {dp:7.1e}"
                        for a, dp in (res[T] for T in PRESENTATION_TIMES))
        r = rate.get(name)
        tail = f" | {100 * r[0]:6.2f}% {r[1]:7.1e}" if r else " |      -       -"
        print(f"{name:<34}{cells}{tail}")
    sg, rf = rows["signed RegularSpiking(Tanh), N=1"], rows["popfit LIF N=4, refit"]
    nr = rows["popfit LIF N=4, no refit"]
    print("|dp|: mean absolute difference of the class probabilities from the ANN's; "
          "rates: the converted network at rate level (no spikes), the floor popfit's "
          "rows approach with longer presentations")
    for T in PRESENTATION_TIMES:
        print(f"  T={T:g} s: |dp| refit / signed = {rf[T][1] / sg[T][1]:.2f}, "
              f"no refit / signed = {nr[T][1] / sg[T][1]:.2f}; refit acc - ANN = "
              f"{100 * (rf[T][0] - ann):+.2f} pp")
    bars = [("|dp| refit <= signed at 0.05 s", rf[0.05][1] <= sg[0.05][1]),
            ("|dp| refit <= signed at 0.1 s", rf[0.1][1] <= sg[0.1][1]),
            ("accuracy refit >= ANN - 0.5 pp at 0.03 s", rf[0.03][0] >= ann - 0.005)]
    for what, ok in bars:
        print(f"  bar: {what}: {'met' if ok else 'NOT met'}")
    n8 = rows["popfit LIF N=8, refit"]
    print(f"  (N=8 per unit, refit: |dp| / signed = {n8[0.05][1] / sg[0.05][1]:.2f} at 0.05 s, "
          f"{n8[0.1][1] / sg[0.1][1]:.2f} at 0.1 s)")
    return mlp, models["popfit LIF N=4, refit"], signed


def section_throughput(args, data, model, signed):
    _, X_test, _, y_test = data
    n, T = len(X_test), 0.1
    seq, t_seq = timed(model.predict_proba, X_test, T, progress_bar=False, sequential=True)
    _, t_signed = timed(present, signed, X_test, T, seed=args.seed, progress_bar=False)
    b1, t_b1 = timed(model.predict_proba, X_test, T, progress_bar=False)
    b2, t_cold = timed(model.predict_proba, X_test, T, progress_bar=False, n_jobs=2)
    b2w, t_warm = timed(model.predict_proba, X_test, T, progress_bar=False, n_jobs=2)
    b50, t_b50 = timed(model.predict_proba, X_test, T, progress_bar=False, batch_size=50)
    acc = lambda p: 100 * float(np.mean(model.classes_[p.argmax(1)] == y_test))  # noqa: E731
    print(f"\n== 2. throughput: {n} digits at {T:g} s ({n * T:g} s simulated), "
          f"nengo.Simulator, {os.cpu_count()} CPUs")
    print(f"{'path':<52}{'wall s':>8}{'speed-up':>10}{'acc':>9}  max |p - batched p|")
    print(f"{'signed baseline network, sequential (present)':<52}{t_signed:8.2f}"
          f"{t_seq / t_signed:9.2f}x{'':>9}")
    for name, p, t in (("popfit refit, sequential=True (reference)", seq, t_seq),
                       ("popfit refit, batched, n_jobs=1", b1, t_b1),
                       ("popfit refit, batched, batch_size=50", b50, t_b50),
                       ("popfit refit, batched, n_jobs=2 (first call)", b2, t_cold),
                       ("popfit refit, batched, n_jobs=2 (warm workers)", b2w, t_warm)):
        print(f"{name:<52}{t:8.2f}{t_seq / t:9.2f}x{acc(p):8.2f}%  {np.abs(p - b1).max():.1e}")
    best = min(t_b1, t_warm)
    print(f"  bar: batched >= 8x faster than sequential: {t_seq / best:.1f}x "
          f"({'met' if t_seq / best >= 8 else 'NOT met'}); batched outputs identical for "
          f"batch_size=50, n_jobs=2: {np.array_equal(b1, b50) and np.array_equal(b1, b2)}")


def section_deep(args, data):
    X_train, X_test, y_train, y_test = data
    mlp = MLPClassifier(hidden_layer_sizes=(64, 32), activation="tanh", max_iter=1000,
                        random_state=0).fit(X_train, y_train)
    p_ann = mlp.predict_proba(X_test)
    ann = float(np.mean(mlp.predict(X_test) == y_test))
    print(f"\n== 3. digits, MLPClassifier((64, 32), tanh), 4 LIF per unit; ANN accuracy "
          f"{100 * ann:.2f}%")
    print(f"{'':<22}{'T=0.05 s acc':>14}{'T=0.1 s acc':>13}{'vs ANN':>9}{'|dp| 0.1 s':>12}"
          f"{'rates acc':>11}{'rates |dp|':>12}")
    res = {}
    for refit in (False, True):
        model = popfit.convert(mlp, n_neurons=4, max_rate=MAX_RATE,
                               connection_synapse=SYNAPSE, calibration_data=X_train,
                               seed=args.seed, refit=refit)
        a5 = scores(model.predict_proba(X_test, 0.05, progress_bar=False), p_ann, y_test,
                    mlp.classes_)
        a1 = scores(model.predict_proba(X_test, 0.1, progress_bar=False), p_ann, y_test,
                    mlp.classes_)
        r = scores(model.rate_output(X_test), p_ann, y_test, mlp.classes_)
        res[refit] = a1
        print(f"{'refit' if refit else 'no refit':<22}{100 * a5[0]:13.2f}%{100 * a1[0]:12.2f}%"
              f"{100 * (a1[0] - ann):+8.2f}pp{a1[1]:12.1e}{100 * r[0]:10.2f}%{r[1]:12.1e}")
        if refit:
            print("  " + model.report().split("[[refit]]")[1].replace("\n", "\n  "))
    print(f"  bar: refit within 1 pp of the ANN at 0.1 s: "
          f"{'met' if res[True][0] >= ann - 0.01 else 'NOT met'}")


def section_keras(args):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:
        print("\n== 4. Keras regressor: skipped (Keras not installed)")
        return
    net, x_train, x_grid, y_keras = sine_regressor(keras)
    rms = lambda a: float(np.sqrt(np.mean((a - y_keras) ** 2)))  # noqa: E731
    print("\n== 4. notebook 03's Keras regressor, Dense(8, tanh) -> Dense(1), 60 points on "
          "[-1, 1], 0.1 s each: RMS difference from Keras")
    print(f"{'N/unit':>6}{'refit':>7}{'spiking':>10}{'rates':>9}")
    got = {}
    for n_neurons in (4, 8):
        for refit in (False, True):
            km = popfit.convert(net, n_neurons=n_neurons, calibration_data=x_train,
                                seed=args.seed, refit=refit)
            got[n_neurons, refit] = rms(km.predict(x_grid, 0.1, progress_bar=False))
            print(f"{n_neurons:>6}{str(refit):>7}{got[n_neurons, refit]:10.4f}"
                  f"{rms(km.rate_output(x_grid)):9.4f}")
    print(f"  bar: 4 neurons per unit with refit within 0.05 RMS of Keras: "
          f"{got[4, True]:.4f} ({'met' if got[4, True] <= 0.05 else 'NOT met'})")


def section_real_models(args, data):
    X_train, X_test, y_train, y_test = data
    n, T = len(X_test), 0.1
    print(f"\n== 5. real-model layers: {n} test digits at {T:g} s, 4 LIF per unit (max "
          f"{MAX_RATE:g} Hz), synapse {SYNAPSE * 1e3:g} ms, seed {args.seed}")
    print(f"{'model':<58}{'source':>9}{'popfit':>9}{'vs source':>11}{'signed N=1':>12}"
          f"{'rates':>8}")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:
        keras = None
        print("Keras model: skipped (Keras not installed)")
    if args.no_keras:
        keras = None
    if keras is not None:
        keras.utils.set_random_seed(args.seed)
        net = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="tanh"),
                                keras.layers.BatchNormalization(), keras.layers.Dropout(0.2),
                                keras.layers.Dense(10, activation="softmax")])
        net.compile(optimizer=keras.optimizers.Adam(0.005),
                    loss="sparse_categorical_crossentropy")
        net.fit(X_train, y_train, epochs=40, batch_size=32, verbose=0)
        src = float(np.mean(net.predict(X_test, verbose=0).argmax(1) == y_test))
        model = popfit.convert(net, n_neurons=4, max_rate=MAX_RATE, connection_synapse=SYNAPSE,
                               calibration_data=X_train, seed=args.seed)
        acc = float(np.mean(model.predict(X_test, T, progress_bar=False) == y_test))
        rates = float(np.mean(model.rate_output(X_test).argmax(1) == y_test))
        spec = read_model(net)  # the folded weights the signed network uses too
        mlp = types.SimpleNamespace(coefs_=[layer.weights for layer in spec.layers],
                                    intercepts_=[layer.bias for layer in spec.layers])
        out = present(signed_network(mlp, model.fits[0]), X_test, T, seed=args.seed,
                      progress_bar=False)
        signed = float(np.mean(out.argmax(1) == y_test))
        print(f"{'Keras Dense(64,tanh)+BatchNorm+Dropout+Dense(10,softmax)':<58}"
              f"{100 * src:8.2f}%{100 * acc:8.2f}%{100 * (acc - src):+9.2f}pp"
              f"{100 * signed:11.2f}%{100 * rates:7.2f}%")
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,),
                                                         activation="tanh", max_iter=1000,
                                                         random_state=0))
    pipe.fit(X_train, y_train)
    src = float(np.mean(pipe.predict(X_test) == y_test))
    model = popfit.convert(pipe, n_neurons=4, max_rate=MAX_RATE, connection_synapse=SYNAPSE,
                           calibration_data=X_train, seed=args.seed)
    acc = float(np.mean(model.predict(X_test, T, progress_bar=False) == y_test))
    rates = float(np.mean(model.classes_[model.rate_output(X_test).argmax(1)] == y_test))
    print(f"{'Pipeline(StandardScaler(), MLPClassifier((64,), tanh))':<58}{100 * src:8.2f}%"
          f"{100 * acc:8.2f}%{100 * (acc - src):+9.2f}pp{'-':>12}{100 * rates:7.2f}%")
    print("  popfit: refit on (the default); rates: the converted network at rate level")


def section_graphs(args, data):
    """6. Keras graphs: the digits CNN and a residual model, against the signed network."""
    keras = import_keras()
    X_train, X_test, y_train, y_test = data
    T, n_spk = 0.1, min(100, len(X_test))
    print(f"\n== 6. Keras graphs on {len(X_test)} test digits at {T:g} s (spikes: "
          f"sequential run on {n_spk} digits), 4 LIF per unit (max {MAX_RATE:g} Hz), synapse "
          f"{SYNAPSE * 1e3:g} ms, seed {args.seed}")
    print(f"{'model':<28}{'network':<34}{'neurons':>8}{'accuracy':>10}{'vs Keras':>10}"
          f"{'spikes/digit':>13}{'convert s':>10}{'predict s':>10}")
    bars = []
    for name, build in (("CNN (Conv2D x2, pool, BN)", digits_cnn),
                        ("residual (Add) functional", digits_residual)):
        net, shape = trained(keras, build, X_train, y_train, args.seed)
        Xtr, Xte = X_train.reshape((-1,) + shape), X_test.reshape((-1,) + shape)
        src = accuracy(net, X_test, y_test)
        model, t_conv = timed(popfit.convert, net, n_neurons=4, max_rate=MAX_RATE,
                              connection_synapse=SYNAPSE, calibration_data=Xtr, seed=args.seed)
        pred, t_pred = timed(model.predict, Xte, T, progress_bar=False)
        acc = float(np.mean(pred == y_test))
        _, spikes = simulate(model.network, [layer.ensemble.neurons for layer in
                                             model.network.layers],
                             X_test[:n_spk], T, args.seed, SYNAPSE)
        signed = popfit.baseline.signed_model_network(model)
        neurons = [ens.neurons for ens in signed.layers]
        (out, _), t_signed = timed(simulate, signed, neurons, X_test, T, args.seed, SYNAPSE)
        s_acc = float(np.mean(out.argmax(1) == y_test))
        s_spikes = simulate(signed, neurons, X_test[:n_spk], T, args.seed, SYNAPSE)[1]
        units = sum(layer.n_out for layer in model.spec.hidden)
        print(f"{name:<28}{'Keras (float)':<34}{'-':>8}{100 * src:9.2f}%{'':>10}")
        print(f"{'':<28}{'popfit 4 LIF/unit, batched':<34}{model.total_neurons:8d}"
              f"{100 * acc:9.2f}%{100 * (acc - src):+8.2f}pp{spikes:13.0f}{t_conv:10.1f}"
              f"{t_pred:10.1f}")
        print(f"{'':<28}{'signed RegularSpiking, 1/unit':<34}{units:8d}{100 * s_acc:9.2f}%"
              f"{100 * (s_acc - src):+8.2f}pp{s_spikes:13.0f}{'-':>10}{t_signed:10.1f}")
        bars.append((f"{name}: popfit >= Keras - 1 pp", acc >= src - 0.01))
        for refit in (False, True):  # 1 LIF per unit: what the weight re-solve recovers
            one, t_one = timed(popfit.convert, net, n_neurons=1, max_rate=MAX_RATE,
                               connection_synapse=SYNAPSE, calibration_data=Xtr,
                               seed=args.seed, refit=refit)
            one_pred, t_one_pred = timed(one.predict, Xte, T, progress_bar=False)
            one_acc = float(np.mean(one_pred == y_test))
            one_spikes = simulate(one.network, [layer.ensemble.neurons for layer in
                                                one.network.layers],
                                  X_test[:n_spk], T, args.seed, SYNAPSE)[1]
            kept = "" if not refit else f" (kept {sum(one.refit_report.kept)}/" \
                f"{len(one.refit_report.kept)})"
            print(f"{'':<28}{f'popfit 1 LIF/unit, refit={refit}{kept}':<34}"
                  f"{one.total_neurons:8d}{100 * one_acc:9.2f}%{100 * (one_acc - src):+8.2f}pp"
                  f"{one_spikes:13.0f}{t_one:10.1f}{t_one_pred:10.1f}")
    print("  signed: one nengo.RegularSpiking neuron (negative spikes allowed) per unit, same "
          "weights (popfit.baseline.signed_model_network); its predict time is sequential")
    print("  refit: weights into each population re-solved from all the layers feeding it "
          "(skips included; the CNN's convolution kept); kept: layers whose re-solve lowered "
          "the held-out error")
    for what, ok in bars:
        print(f"  bar: {what}: {'met' if ok else 'NOT met'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subset", type=int, default=None,
                        help="evaluate on the first N of the 450 test digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-keras", action="store_true")
    parser.add_argument("--only", choices=["real-models", "graphs"], default=None,
                        help="run only this section")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)  # short-presentation notes
    t0 = time.perf_counter()
    data = digits(args.seed, args.subset)
    if args.only in ("real-models", "graphs"):
        (section_real_models if args.only == "real-models" else section_graphs)(args, data)
        print(f"\ntotal wall time {time.perf_counter() - t0:.0f} s")
        return
    _, model, signed = section_digits(args, data)
    section_throughput(args, data, model, signed)
    section_deep(args, data)
    if not args.no_keras:
        section_keras(args)
    section_real_models(args, data)
    if not args.no_keras:
        section_graphs(args, data)
    print(f"\ntotal wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
