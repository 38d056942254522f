"""Benchmark: popfit.finetune on digits, against the ANN and nengo's signed network.

python benchmarks/bench_finetune.py [--subset N] [--seed S] [--only cnn|residual|distill]
    [--toolchain loihi|snntorch]

Digits, MLPClassifier((64,), tanh) trained as in bench_convert.py, 450 held-out
digits, presentation times 0.03, 0.05 and 0.1 s (dt 1 ms, synapse 5 ms, max
400 Hz), output averaged over the last half of each presentation:

* the ANN (reference);
* the signed baseline: one nengo.RegularSpiking(Tanh) neuron per hidden unit,
  negative spikes allowed (bench_convert.signed_network);
* popfit 1 LIF per unit, converted (no refit);
* the same, fine-tuned (popfit.finetune, cross-entropy, 20 epochs, Adam 1e-3
  decayed by a cosine; domains re-fitted where more than 2% of the
  pre-activations leave them, then training continued: the defaults), with
  ``schedule="constant"`` (the step size before the cosine decay) and with
  ``domain_tolerance=None`` (checked, never re-fitted);
* the same, fine-tuned with a spike cost chosen on a held-out share of the
  training digits (popfit.training.choose_spike_cost with a spike budget:
  the most accurate candidate whose expected spikes there are at most half
  the signed network's expected spikes on the training digits, both from
  the rate models; the test digits are not looked at), and with a larger
  one (3e-4) beside it;
* popfit 4 LIF per unit, converted (refit, the default with calibration data);
* popfit 4 LIF per unit, distilled from the training inputs alone (no labels:
  ``popfit.finetune(model, X_train)``, loss "distill", from the conversion
  without refit): mean |class probability - the ANN's| at 0.1 s, beside
  plain conversion's.

Then notebook 03's Keras regressor (Dense(8, tanh) -> Dense(1) fitted to
0.8 sin(3x), 60 points on [-1, 1], 0.1 s each): RMS difference from Keras,
spiking and rate level, converted at 4 neurons per unit (refit; the bar of
bench_convert: within 0.05) and at 1 and 2, plain and fine-tuned (loss
"distill": towards Keras's outputs on its 1,000 training inputs; 80 epochs,
Adam 3e-3: at 40 the 1-neuron model still improved in its last epoch).

With ``--only cnn`` (or ``--only residual``), only bench_convert's section 6 Keras
graph: the digits CNN (Conv2D(8, 3, same, tanh), BatchNormalization,
AveragePooling2D(2), Dropout, Conv2D(16, 3, tanh), Flatten, Dropout,
Dense(10, softmax); or the residual Add model), trained as there, 450 test
digits at 0.1 s: converted at 4 LIF per unit (refit), and at 1 and 2 LIF per
unit plain and fine-tuned (cross-entropy, at most 20 epochs, the convolutions'
nonzeros trained with their sparsity patterns fixed), beside Keras and the
signed network of the same weights (popfit.baseline.signed_model_network);
spiking accuracy from the batched ``predict``, spikes per digit counted in a
sequential run of the first 100 test digits.

With ``--toolchain loihi`` (run in the nengo-loihi venv) or ``--toolchain
snntorch`` (run in the NIR venv), the same digits model is converted for that
platform at 1 neuron per unit (``platform="loihi"``: whole-step LoihiLIF fits
and 8-bit weights; ``platform="snntorch"``: LIF with tau_ref = dt/2 for
snnTorch's whole-step reset), fine-tuned in that environment (jax and optax
must be importable there: ``.ci/make_loihi_venv`` installs jax 0.4.38 / optax
0.2.4 beside numpy < 2; elsewhere ``pip install 'popfit[train]'``), and run on the first 100 test
digits for 0.1 s on the nengo-loihi emulator (``ConvertedModel.predict``
with the platform's simulator) or through ``popfit.to_nir`` in snnTorch
(``bench_nir.run_snntorch``), beside the plain conversion and the ANN.

With ``--only distill``, why the distillation bar fails: the 4-LIF-per-unit
model distilled (no labels) with the defaults, without early stopping, at a
smaller step size and on mixup blends of the training digits, its mean
|p - p_ANN| at rate level on the training digits beside the test digits, and
how much of the test figure the 20 worst digits hold.

With ``--toolchain loihi --only cnn`` (nengo-loihi venv; Keras on torch there:
``KERAS_BACKEND=torch``), the digits CNN of ``--only cnn`` converted for
``platform="loihi"`` at 1 and 2 neurons per unit (no refit; synapse 5 ms, and
10 ms at 2 per unit, as its second layer's rates follow the rate model more
closely with a longer synapse: ``bench_loihi.py --only cnn-rates``) and fine-tuned
(cross-entropy, quantization-aware: every input of a layer rounded to 8 bits
with its one step, as the network rounds it), on the first 100 test digits
at 0.1 s: rate level, nengo's reference simulator and the nengo-loihi
emulator, against bench_loihi.py's CNN bar (emulator >= Keras - 1.5 pp; there
the plain conversion needs [6, 6] neurons per unit).

Spikes per digit are COUNTED in the simulation: the hidden neurons are probed
and their spikes (|spikes| for the signed network) summed over each whole
presentation, averaged over digits. All networks run sequentially (samples one
after another, no reset) in nengo's reference simulator.
"""

import argparse
import os
import sys
import time
import warnings

import nengo
import numpy as np
from scipy.special import softmax
from sklearn.neural_network import MLPClassifier

import popfit
from digits_models import simulate, sine_regressor
from popfit.spiking import signed_baseline
from popfit.training import choose_spike_cost

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_convert import MAX_RATE, SYNAPSE, digits, signed_network  # noqa: E402

PRESENTATION_TIMES = (0.03, 0.05, 0.1)
#: The spike-cost candidates for the spike budget (finer than the default grid
#: where the budget of half the signed network's spikes falls).
SPIKE_COSTS = (5e-6, 1e-5, 1.5e-5, 2e-5, 3e-5, 1e-4)
#: The spike budget: this share of the signed network's expected spikes.
SPIKE_BUDGET = 0.5
#: A larger spike cost shown beside the chosen one.
SPIKE_COST_HIGH = 3e-4
#: Epochs (at most: early stopping) of the Keras graphs' fine-tuning (``--only cnn|residual``).
GRAPH_EPOCHS = 20


def toolchain(name, seed, n_test=100):
    """The fine-tuned 1-neuron-per-unit digits model on nengo-loihi's emulator or snnTorch."""
    X_train, X_test, y_train, y_test = digits(seed, n_test)
    mlp = MLPClassifier(hidden_layer_sizes=(64,), activation="tanh", max_iter=1000,
                        random_state=0).fit(X_train, y_train)
    ann = float(np.mean(mlp.predict(X_test) == y_test))
    kw = dict(max_rate=MAX_RATE, connection_synapse=SYNAPSE, calibration_data=X_train,
              seed=seed, platform=name, refit=False)
    one = popfit.convert(mlp, n_neurons=1, **kw)
    start = time.perf_counter()
    tuned = popfit.finetune(one, X_train, y_train, epochs=20, seed=seed)
    print(f"finetune ({name}, 1 neuron per unit): {time.perf_counter() - start:.1f} s; "
          f"neuron type {one.fits[0].neuron_type!r}, weight_bits {one.weight_bits}; "
          f"device {tuned.finetune_report.get('device')}")
    rows = {}
    for label, m in (("converted", one), ("fine-tuned", tuned)):
        start = time.perf_counter()
        if name == "snntorch":
            from bench_nir import run_snntorch
            out = run_snntorch(popfit.to_nir(m, platform="snntorch"), X_test)[0]
            pred = mlp.classes_[out.argmax(1)]
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred = m.predict(X_test, presentation_time=0.1)
        rate = float(np.mean(m.rate_output(X_test).argmax(1) == y_test))
        rows[label] = (float(np.mean(pred == y_test)), rate, time.perf_counter() - start)
    where = {"loihi": "nengo-loihi emulator", "snntorch": "snnTorch (NIR)"}[name]
    print(f"\n== digits MLPClassifier((64,), tanh), first {len(X_test)} test digits, 0.1 s, "
          f"{where}, 1 neuron per unit; ANN {100 * ann:.2f}%")
    print(f"{'model':<34}{'rate acc':>10}{'spiking acc':>13}{'wall s':>9}")
    for label, (acc, rate, wall) in rows.items():
        print(f"{'popfit 1/unit, ' + label:<34}{100 * rate:9.2f}%{100 * acc:12.2f}%{wall:9.1f}")
    ok = rows["fine-tuned"][0] >= ann - 0.01
    print(f"bar: fine-tuned {100 * rows['fine-tuned'][0]:.2f}% >= ANN - 1 pp "
          f"({100 * (ann - 0.01):.2f}%): {'PASS' if ok else 'FAIL'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--toolchain", choices=("loihi", "snntorch"), default=None)
    args = parser.parse_args()
    if args.toolchain:
        return toolchain(args.toolchain, args.seed)
    X_train, X_test, y_train, y_test = digits(args.seed, args.subset)
    mlp = MLPClassifier(hidden_layer_sizes=(64,), activation="tanh", max_iter=1000,
                        random_state=0).fit(X_train, y_train)
    ann = float(np.mean(mlp.predict(X_test) == y_test))
    kw = dict(max_rate=MAX_RATE, connection_synapse=SYNAPSE, calibration_data=X_train,
              seed=args.seed)
    one = popfit.convert(mlp, n_neurons=1, refit=False, **kw)
    four = popfit.convert(mlp, n_neurons=4, **kw)
    start = time.perf_counter()
    distilled = popfit.finetune(popfit.convert(mlp, n_neurons=4, refit=False, **kw), X_train,
                                epochs=20, seed=args.seed)  # no labels
    t_distill = time.perf_counter() - start
    start = time.perf_counter()
    tuned = popfit.finetune(one, X_train, y_train, epochs=20, seed=args.seed)
    t_tune = time.perf_counter() - start
    kept = popfit.finetune(one, X_train, y_train, epochs=20, seed=args.seed,
                           domain_tolerance=None)  # domains checked, never re-fitted
    constant = popfit.finetune(one, X_train, y_train, epochs=20, seed=args.seed,
                               schedule="constant")
    signed_fit = signed_baseline(four.fits[0])
    z_train = X_train @ mlp.coefs_[0] + mlp.intercepts_[0]
    ones = np.ones(z_train.shape[1])
    signed_rate = float(np.mean(np.abs(signed_fit.neuron_type.rates(
        signed_fit.gain * z_train, ones, 0 * ones)).sum(axis=1)))  # expected spikes/s, signed
    start = time.perf_counter()
    cheap = choose_spike_cost(one, X_train, y_train, spike_costs=SPIKE_COSTS,
                              max_spikes=SPIKE_BUDGET * signed_rate, epochs=20, seed=args.seed)
    t_cheap = time.perf_counter() - start
    chosen_cost = cheap.finetune_report["spike_cost"]
    cheaper = popfit.finetune(one, X_train, y_train, epochs=20, spike_cost=SPIKE_COST_HIGH,
                              seed=args.seed)
    print(f"finetune: {t_tune:.1f} s; choose_spike_cost ({len(SPIKE_COSTS)} "
          f"candidates): {t_cheap:.1f} s; distill (4 LIF/unit): {t_distill:.1f} s")
    print(tuned.report())
    sel = cheap.finetune_report["spike_cost_selection"]
    print(f"spike cost chosen on {sel['n_selection']} held-out training digits (ANN "
          f"{100 * sel['source_score']:.2f}% there); budget {SPIKE_BUDGET:g} x the signed "
          f"network's expected {0.1 * signed_rate:.0f} spikes per 0.1 s on the training "
          f"digits = {0.1 * sel['bound']:.0f}:")
    for r in sel["candidates"]:
        print(f"  spike_cost {r['spike_cost']:<8g} rate acc {100 * r['accuracy']:.2f}%  "
              f"loss {r['loss']:.4f}  expected spikes {r['spikes_per_second'] * 0.1:.0f} "
              "per 0.1 s")
    print(f"  -> chosen {chosen_cost:g}")
    signed = signed_network(mlp, four.fits[0])
    signed_neurons = [e for e in signed.all_ensembles][0].neurons
    rows = {"signed RegularSpiking(Tanh), N=1": (signed, signed_neurons, None)}
    for name, m in (("popfit 1 LIF/unit, converted", one),
                    ("popfit 1 LIF/unit, fine-tuned", tuned),
                    ("popfit 1 LIF/unit, fine-tuned, constant step size", constant),
                    ("popfit 1 LIF/unit, fine-tuned, domains not re-fitted", kept),
                    (f"popfit 1 LIF/unit, fine-tuned, spike_cost {chosen_cost:g} (chosen)", cheap),
                    (f"popfit 1 LIF/unit, fine-tuned, spike_cost {SPIKE_COST_HIGH:g}", cheaper),
                    ("popfit 4 LIF/unit, converted (refit)", four),
                    ("popfit 4 LIF/unit, distilled (no labels)", distilled)):
        rows[name] = (m.network, m.network.layers[0].ensemble.neurons, m)
    results = {}
    p_ann = mlp.predict_proba(X_test)
    for name, (net, neurons, m) in rows.items():
        results[name] = {}
        for T in PRESENTATION_TIMES:
            out, spikes = simulate(net, neurons, X_test, T, args.seed)
            acc = float(np.mean(mlp.classes_[softmax(out, axis=1).argmax(1)] == y_test))
            results[name][T] = (acc, spikes)
        results[name]["dp"] = float(np.mean(np.abs(softmax(out, axis=1) - p_ann)))
        rate = "" if m is None else \
            f"{100 * np.mean(m.rate_output(X_test).argmax(1) == y_test):.2f}%"
        results[name]["rate"] = rate
    n = len(X_test)
    print(f"\n== digits, MLPClassifier((64,), tanh), {n} test digits; ANN accuracy "
          f"{100 * ann:.2f}%; max {MAX_RATE:g} Hz, synapse {SYNAPSE * 1e3:g} ms, dt 1 ms; "
          f"spikes/digit counted in the simulation (whole presentation)")
    head = "".join(f" | T={T:g}: acc    spikes" for T in PRESENTATION_TIMES)
    print(f"{'model':<52}{'rate acc':>9}{head} | |p - p_ANN| at 0.1 s")
    for name, r in results.items():
        cells = "".join(f" | {100 * r[T][0]:6.2f}% {r[T][1]:8.0f}" for T in PRESENTATION_TIMES)
        print(f"{name:<52}{r['rate']:>9}{cells} | {r['dp']:.5f}")
    sg = results["signed RegularSpiking(Tanh), N=1"]
    ft = results["popfit 1 LIF/unit, fine-tuned"]
    sc = results[f"popfit 1 LIF/unit, fine-tuned, spike_cost {chosen_cost:g} (chosen)"]
    print("\nbars:")
    for T in PRESENTATION_TIMES:
        ok_acc = ft[T][0] >= ann - 0.0025
        ok_spk = ft[T][1] <= 0.8 * sg[T][1]
        print(f"  T={T:g} s fine-tuned: acc {100 * ft[T][0]:.2f}% >= ANN - 0.25 pp "
              f"({100 * (ann - 0.0025):.2f}%): {'PASS' if ok_acc else 'FAIL'}; spikes "
              f"{ft[T][1]:.0f} <= 0.8 x signed ({0.8 * sg[T][1]:.0f}): "
              f"{'PASS' if ok_spk else 'FAIL'}")
    for label, key in (("with a constant step size (schedule='constant')",
                         "popfit 1 LIF/unit, fine-tuned, constant step size"),
                        ("without the domain re-fit (domain_tolerance=None)",
                         "popfit 1 LIF/unit, fine-tuned, domains not re-fitted")):
        nr = results[key]
        print(f"  {label}: acc " + ", ".join(
            f"{100 * nr[T][0]:.2f}% ({'PASS' if nr[T][0] >= ann - 0.0025 else 'FAIL'})"
            for T in PRESENTATION_TIMES) + "; spikes/0.8 x signed " + ", ".join(
            f"{nr[T][1] / (0.8 * sg[T][1]):.2f}" for T in PRESENTATION_TIMES))
    nr = results["popfit 1 LIF/unit, fine-tuned, domains not re-fitted"]
    d = kept.finetune_report["domains"][0]
    print(f"    (its layer 0: {100 * d['outside_before']:.2f}% of training pre-activations "
          f"outside the fitted domain)")
    ok_acc = sc[0.1][0] >= ann - 0.01
    ok_spk = sc[0.1][1] <= 0.5 * sg[0.1][1]
    print(f"  T=0.1 s spike cost: acc {100 * sc[0.1][0]:.2f}% >= ANN - 1 pp: "
          f"{'PASS' if ok_acc else 'FAIL'}; spikes {sc[0.1][1]:.0f} <= 0.5 x signed "
          f"({0.5 * sg[0.1][1]:.0f}): {'PASS' if ok_spk else 'FAIL'}")
    dp_conv = results["popfit 4 LIF/unit, converted (refit)"]["dp"]
    dp_dist = results["popfit 4 LIF/unit, distilled (no labels)"]["dp"]
    print(f"  T=0.1 s distillation (no labels, 4 LIF/unit): mean |p - p_ANN| {dp_dist:.5f} < "
          f"plain conversion's {dp_conv:.5f}: {'PASS' if dp_dist < dp_conv else 'FAIL'}")
    keras_regressor(args.seed)


def keras_regressor(seed):
    """Notebook 03's Keras regressor: fine-tuned at 1 and 2 neurons per unit vs converted at 4."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:
        print("\n== Keras regressor: skipped (Keras not installed)")
        return
    net, x_train, x_grid, y_keras = sine_regressor(keras)
    rms = lambda a: float(np.sqrt(np.mean((a - y_keras) ** 2)))  # noqa: E731
    print("\n== notebook 03's Keras regressor, Dense(8, tanh) -> Dense(1), 60 points on "
          "[-1, 1], 0.1 s each: RMS difference from Keras")
    print(f"{'model':<36}{'spiking':>9}{'rates':>9}{'spikes/point':>14}")
    got = {}
    kw = dict(calibration_data=x_train, seed=seed)
    for name, make in (
            ("4 LIF/unit, converted (refit)", lambda: popfit.convert(net, n_neurons=4, **kw)),
            ("1 LIF/unit, converted", lambda: popfit.convert(net, n_neurons=1, refit=False, **kw)),
            ("1 LIF/unit, fine-tuned (distill)", lambda: popfit.finetune(
                popfit.convert(net, n_neurons=1, refit=False, **kw), x_train, epochs=80,
                learning_rate=3e-3, seed=seed)),
            ("2 LIF/unit, converted", lambda: popfit.convert(net, n_neurons=2, refit=False, **kw)),
            ("2 LIF/unit, fine-tuned (distill)", lambda: popfit.finetune(
                popfit.convert(net, n_neurons=2, refit=False, **kw), x_train, epochs=80,
                learning_rate=3e-3, seed=seed))):
        km = make()
        out, spikes = simulate(km.network, km.network.layers[0].ensemble.neurons, x_grid, 0.1,
                               seed)
        got[name] = rms(out)
        print(f"{name:<36}{got[name]:9.4f}{rms(km.rate_output(x_grid)):9.4f}{spikes:14.1f}")
    bar = got["4 LIF/unit, converted (refit)"]
    for n in (1, 2):
        v = got[f"{n} LIF/unit, fine-tuned (distill)"]
        print(f"  bar: {n} LIF/unit fine-tuned {v:.4f} within bench_convert's 0.05 of Keras: "
              f"{'PASS' if v <= 0.05 else 'FAIL'}; vs 4 LIF/unit converted {bar:.4f}")


#: ``--only cnn`` / ``--only residual``: the Keras digits models of bench_convert's section 6
#: (``--only distill``: `distill_section`).
GRAPH_MODELS = {
    "cnn": ("digits CNN (Keras: Conv2D(8, 3, same, tanh), BN, AveragePooling2D(2), Dropout, "
            "Conv2D(16, 3, tanh), Flatten, Dropout, Dense(10, softmax))", "digits_cnn"),
    "residual": ("digits residual model (Keras: Dense(64, tanh) -> Dropout -> Dense(64, tanh), "
                 "Add of the two, Dense(10, softmax))", "digits_residual")}


def digits_graph_section(which, seed, subset, epochs=GRAPH_EPOCHS):
    """``--only cnn|residual``: a Keras digits graph fine-tuned at 1 and 2 LIF per unit,
    beside plain conversion at 4 (refit) and the signed network of the same weights."""
    import digits_models

    keras = digits_models.import_keras()
    title, build = GRAPH_MODELS[which]
    X_train, X_test, y_train, y_test = digits(seed, subset)
    net, shape = digits_models.trained(keras, getattr(digits_models, build), X_train, y_train,
                                       seed)
    src = digits_models.accuracy(net, X_test, y_test)
    T, n_spk = 0.1, min(100, len(X_test))
    kw = dict(max_rate=MAX_RATE, connection_synapse=SYNAPSE,
              calibration_data=X_train.reshape((-1,) + shape), seed=seed)
    rows, times = {}, {}
    four = popfit.convert(net, n_neurons=4, **kw)
    rows["popfit 4 LIF/unit, converted (refit)"] = four
    for n in (1, 2):
        plain = popfit.convert(net, n_neurons=n, refit=False, **kw)
        rows[f"popfit {n} LIF/unit, converted"] = plain
        start = time.perf_counter()
        rows[f"popfit {n} LIF/unit, fine-tuned"] = popfit.finetune(
            plain, X_train, y_train, epochs=epochs, seed=seed)
        times[n] = time.perf_counter() - start
    print("finetune: " + ", ".join(f"{n} LIF/unit {t:.1f} s" for n, t in times.items())
          + f" ({epochs} epochs max, early stopping)")
    print(rows["popfit 1 LIF/unit, fine-tuned"].report())
    signed = popfit.baseline.signed_model_network(four)
    signed_neurons = [ens.neurons for ens in signed.layers]
    units = sum(layer.n_out for layer in four.spec.hidden)
    print(f"\n== {title}, {len(X_test)} test digits at {T:g} s; Keras {100 * src:.2f}%; max "
          f"{MAX_RATE:g} Hz, synapse {SYNAPSE * 1e3:g} ms; spikes/digit counted in a "
          f"sequential run on {n_spk} digits")
    print(f"{'model':<40}{'neurons':>8}{'rate acc':>10}{'spiking acc':>13}{'vs Keras':>10}"
          f"{'spikes/digit':>14}")
    out, _ = simulate(signed, signed_neurons, X_test, T, seed, SYNAPSE)
    s_spikes = simulate(signed, signed_neurons, X_test[:n_spk], T, seed, SYNAPSE)[1]
    s_acc = float(np.mean(out.argmax(1) == y_test))
    print(f"{'signed RegularSpiking, 1/unit':<40}{units:8d}{'-':>10}{100 * s_acc:12.2f}%"
          f"{100 * (s_acc - src):+9.2f}pp{s_spikes:14.0f}")
    results = {}
    for name, m in rows.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            acc = float(np.mean(m.predict(X_test, T, progress_bar=False) == y_test))
        rate = float(np.mean(m.rate_output(X_test).argmax(1) == y_test))
        spikes = simulate(m.network, [layer.ensemble.neurons for layer in m.network.layers],
                          X_test[:n_spk], T, seed, SYNAPSE)[1]
        results[name] = (acc, spikes)
        print(f"{name:<40}{m.total_neurons:8d}{100 * rate:9.2f}%{100 * acc:12.2f}%"
              f"{100 * (acc - src):+9.2f}pp{spikes:14.0f}")
    four_acc, four_spikes = results["popfit 4 LIF/unit, converted (refit)"]
    for n in (1, 2):
        acc, spikes = results[f"popfit {n} LIF/unit, fine-tuned"]
        print(f"  bar: {n} LIF/unit fine-tuned {100 * acc:.2f}% >= Keras - 1 pp "
              f"({100 * (src - 0.01):.2f}%): {'PASS' if acc >= src - 0.01 else 'FAIL'}; "
              f"spikes {spikes / s_spikes:.2f} x the signed network's, "
              f"{spikes / four_spikes:.2f} x 4 LIF/unit converted ({100 * four_acc:.2f}%)")


def distill_section(seed):
    """``--only distill``: why distillation from calibration data alone does not lower
    the 4-LIF-per-unit model's |p - p_ANN| on held-out digits (rate level)."""
    X_train, X_test, y_train, y_test = digits(seed, 0)
    mlp = MLPClassifier(hidden_layer_sizes=(64,), activation="tanh", max_iter=1000,
                        random_state=0).fit(X_train, y_train)
    p_train, p_test = mlp.predict_proba(X_train), mlp.predict_proba(X_test)
    plain = popfit.convert(mlp, n_neurons=4, refit=False, max_rate=MAX_RATE,
                           connection_synapse=SYNAPSE, calibration_data=X_train, seed=seed)
    rng = np.random.default_rng(seed)
    i, j = rng.integers(len(X_train), size=(2, 4 * len(X_train)))
    lam = rng.beta(1.0, 1.0, size=(len(i), 1))
    blends = np.vstack([X_train, lam * X_train[i] + (1 - lam) * X_train[j]])  # mixup, no labels
    free = dict(validation_fraction=0.0, early_stopping=False)
    rows = {"converted (no refit)": plain,
            "distilled, defaults (early stopping)": popfit.finetune(plain, X_train, seed=seed),
            "distilled, 20 epochs, no early stopping": popfit.finetune(
                plain, X_train, seed=seed, **free),
            "distilled, learning_rate 1e-4, no early stopping": popfit.finetune(
                plain, X_train, seed=seed, learning_rate=1e-4, **free),
            "distilled on mixup blends (5x), no early stopping": popfit.finetune(
                plain, blends, seed=seed, **free)}
    print(f"== distillation, digits MLPClassifier((64,), tanh), 4 LIF per unit, rate level; "
          f"mean |p - p_ANN| on the {len(X_train)} training (calibration) digits and the "
          f"{len(X_test)} test digits")
    print(f"{'model':<52}{'train':>10}{'test':>10}{'epochs':>8}")
    for name, m in rows.items():
        dp = [float(np.mean(np.abs(m.rate_output(X) - p))) for X, p in
              ((X_train, p_train), (X_test, p_test))]
        epochs = m.finetune_report["best_epoch"] if hasattr(m, "finetune_report") else "-"
        print(f"{name:<52}{dp[0]:10.6f}{dp[1]:10.6f}{epochs!s:>8}")
    d = np.abs(plain.rate_output(X_test) - p_test).sum(axis=1)
    top = np.sort(d)[::-1]
    print(f"the 20 test digits with the largest |p - p_ANN| hold {100 * top[:20].sum() / d.sum():.0f}%"
          f" of it (the ANN's largest class probability there: median "
          f"{np.median(p_test.max(1)[np.argsort(d)[::-1][:20]]):.2f}; on the training digits "
          f"it is below 0.9 for {int(np.sum(p_train.max(1) < 0.9))} of {len(X_train)})")


#: ``--toolchain loihi --only cnn``: (neurons per unit, connection synapse) of each row.
LOIHI_CNN_ROWS = ((1, SYNAPSE), (2, SYNAPSE), (2, 0.01))


def toolchain_cnn(seed, rows=LOIHI_CNN_ROWS, epochs=GRAPH_EPOCHS, n_test=100):
    """``--toolchain loihi --only cnn``: the digits CNN converted for ``platform="loihi"``
    (whole-step LoihiLIF fits, 8-bit weights) at each (neurons per unit, connection
    synapse) of ``rows``, fine-tuned quantization-aware, on nengo-loihi's emulator
    (100 test digits, 0.1 s)."""
    import digits_models

    keras = digits_models.import_keras()
    X_train, X_test, y_train, y_test = digits(seed, n_test)
    net, shape = digits_models.trained(keras, digits_models.digits_cnn, X_train, y_train, seed)
    src = digits_models.accuracy(net, X_test, y_test)
    print(f"== digits CNN (Keras {keras.__version__} on {keras.backend.backend()}), "
          f"platform=\"loihi\", first {len(X_test)} test digits at 0.1 s; Keras "
          f"{100 * src:.2f}%")
    print(f"{'model':<42}{'neurons':>8}{'rate acc':>10}{'nengo':>9}{'emulator':>10}"
          f"{'finetune s':>12}{'emulator s':>12}")
    for n, synapse in rows:
        plain = popfit.convert(net, n_neurons=n, refit=False, platform="loihi", seed=seed,
                               max_rate=MAX_RATE, connection_synapse=synapse,
                               calibration_data=X_train.reshape((-1,) + shape))
        start = time.perf_counter()
        tuned = popfit.finetune(plain, X_train, y_train, epochs=epochs, seed=seed)
        t_tune = time.perf_counter() - start
        for label, m in (("converted", plain), ("fine-tuned", tuned)):
            rate = float(np.mean(m.rate_output(X_test).argmax(1) == y_test))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = m.score(X_test, y_test, 0.1, simulator=nengo.Simulator,
                              progress_bar=False)
                start = time.perf_counter()
                emu = m.score(X_test, y_test, 0.1, progress_bar=False)  # the emulator
            wall = time.perf_counter() - start
            tt = f"{t_tune:12.0f}" if label == "fine-tuned" else f"{'-':>12}"
            name = f"popfit {n}/unit, synapse {synapse * 1e3:g} ms, {label}"
            print(f"{name:<42}{m.total_neurons:8d}{100 * rate:9.2f}%{100 * ref:8.2f}%"
                  f"{100 * emu:9.2f}%{tt}{wall:12.0f}", flush=True)
        ok = emu >= src - 0.015
        print(f"  bar (bench_loihi's CNN bar, emulator >= Keras - 1.5 pp): fine-tuned "
              f"{100 * emu:.2f}%: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    if "--only" in sys.argv:  # a separate section: python bench_finetune.py --only cnn
        only = argparse.ArgumentParser()
        only.add_argument("--only", choices=tuple(GRAPH_MODELS) + ("distill",), required=True)
        only.add_argument("--subset", type=int, default=0)
        only.add_argument("--seed", type=int, default=0)
        only.add_argument("--epochs", type=int, default=GRAPH_EPOCHS)
        only.add_argument("--toolchain", choices=("loihi",), default=None)
        a = only.parse_args()
        if a.only == "distill":
            distill_section(a.seed)
        elif a.toolchain:
            if a.only != "cnn":
                only.error("--toolchain loihi takes --only cnn")
            toolchain_cnn(a.seed, epochs=a.epochs)
        else:
            digits_graph_section(a.only, a.seed, a.subset, a.epochs)
    else:
        main()
