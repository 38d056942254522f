"""popfit on Loihi: nengo's reference simulator and nengo-loihi's emulator side by side.

Runs in the Loihi environment (numpy < 2, nengo-loihi 1.1.0; made by
``.ci/make_loihi_venv``)::

    PYTHONPATH=$PWD /work/venvs/loihi/bin/python benchmarks/bench_loihi.py

Every network is built once and run in ``nengo.Simulator`` and in
``nengo_loihi.Simulator(..., target="sim")`` (dt 1 ms). Rows:

1. tanh, one `popfit.PopulationNeuron`, input swept linearly over (-3, 3) in
   6 s, output filtered by a 10 ms lowpass; NRMSE = RMSE against the ideal
   tanh filtered by the same lowpass, over the range 2 tanh(3). Fits use
   ``synapse=0.01``. Variants: a plain LIF fit (what popfit gave before),
   that fit with its decoders solved on Loihi's staircase
   (`popfit.fit.staircase_decoders`), and a fit of ``LoihiLIF``
   (`popfit.fit.whole_step.fit_whole_step`); nengo-loihi's own decoded ``Ensemble`` of 4 and
   20 neurons (default tuning, radius 3); the signed baseline, one
   ``RegularSpiking(Tanh)`` neuron, which nengo-loihi refuses.
   Bars: LoihiLIF N=4 <= 0.040, N=8 <= 0.032 on the emulator.
2. identity on (-1, 1), same sweep: popfit ``LoihiLIF`` fits of the linear
   target vs nengo-loihi's signed-value device, ``Preset10DecodeNeurons``
   (its 20 neurons as an Ensemble on chip, decoded as nengo-loihi decodes
   them). Bar: popfit reaches equal or lower error with fewer neurons.
3. two chained 100-unit tanh layers (``PopulationLayer(platform="loihi")``,
   ``connect_to`` with transform 2.5 I, 5 ms synapse), inputs
   ``3 sin(2 pi 0.25 t + phase)`` over 2 s; NRMSE against
   ``tanh(2.5 tanh(x))`` passed through the same filters (including
   nengo-loihi's 5 ms input filter on the emulator) over the last 1.5 s.
   Bar: emulator <= 0.05.
4. digits: ``MLPClassifier((32,), tanh)`` (bench_convert's split), converted
   with 4 neurons per unit for ``platform="loihi"`` (its float-weight
   variant ``get_platform("loihi", weight_bits=None)`` with LIF and LoihiLIF
   fits, and the whole recipe: LoihiLIF, 8-bit weights), 100 test digits at
   0.1 s each. Logit NRMSE = RMSE of the decoded outputs against the ANN's
   logits over the standard deviation of those logits (the stricter scale;
   /range in brackets). Bars: accuracy >= ANN - 1 pp, logit NRMSE <= 0.05.
5. the digits CNN (benchmarks/digits_models.py: Conv2D tanh, BatchNormalization,
   AveragePooling2D, Dropout, Conv2D tanh, Flatten, Dropout, Dense softmax;
   Keras on torch here), ``platform="loihi"`` (LoihiLIF, 8-bit weights) with
   4 neurons per unit and per-layer counts ([6, 6], [8, 4]; ``--cnn-neurons
   4 6,6 8,4``), 100 test digits at 0.1 s: rate level, nengo (batched
   predict) and the emulator (``predict``'s default on this platform, whose
   batched networks get block shapes from `popfit.loihi.set_block_shapes`;
   a network nengo-loihi refuses to build is reported with its error), and
   how `popfit.loihi.chip_mapping` maps ``model.network``. Bar: emulator
   accuracy >= Keras - 1.5 pp.
6. (``--only cnn-rates``, not in the default run) why the CNN needs many
   neurons per unit on Loihi: the 2-per-unit conversion (float weights, no
   refit), 20 test digits at 0.2 s in one sequential nengo run; each hidden
   layer's measured spike rates (last half of each digit) against its rate
   model at the same inputs (pre-activations from the rate model of the
   network), for LIF fits (``platform="nengo"``) and whole-step LoihiLIF fits
   (``platform="loihi"``), at connection synapses of 5, 10 and 20 ms.
"""

import argparse
import functools
import time
import warnings

import numpy as np
import nengo
import nengo_loihi
from nengo_loihi.decode_neurons import Preset10DecodeNeurons
from nengo_loihi.neurons import LoihiLIF

import popfit
from popfit.conversion.batch import BatchPlan, chunk_size
from popfit.fit import staircase_decoders
from popfit.loihi import chip_mapping
from popfit.conversion.quantize import quantization_cost, rate_forward

warnings.filterwarnings("ignore")  # nengo-loihi's version and discretization chatter
DT = 0.001
SYNAPSE = 0.01
SWEEP_S = 6.0


def simulate(net, emulator, steps):
    if emulator:
        sim = nengo_loihi.Simulator(net, dt=DT, target="sim", progress_bar=False)
    else:
        sim = nengo.Simulator(net, dt=DT, progress_bar=False)
    with sim:
        sim.run_steps(steps)
    return sim


def lowpass(x, tau):
    return nengo.Lowpass(tau).filt(x, dt=DT, y0=0) if tau else x


def sweep_error(make, lo, hi, f, emulator):
    """NRMSE of a 1-d unit swept linearly over (lo, hi) in 6 s."""
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: lo + (hi - lo) * t / SWEEP_S)
        ideal = nengo.Node(lambda t: f(lo + (hi - lo) * t / SWEEP_S))
        out = make(stim)
        p = nengo.Probe(out, synapse=SYNAPSE)
        p_ideal = nengo.Probe(ideal, synapse=SYNAPSE)
    sim = simulate(net, emulator, int(round(SWEEP_S / DT)))
    span = float(np.ptp(f(np.linspace(lo, hi, 1001))))
    return float(np.sqrt(np.mean((sim.data[p] - sim.data[p_ideal]) ** 2)) / span)


def pop_maker(fit):
    def make(stim):
        pop = popfit.PopulationNeuron(fit)
        nengo.Connection(stim, pop.input, synapse=None)
        return pop.output
    return make


def native_maker(n, radius, f):
    def make(stim):
        ens = nengo.Ensemble(n, 1, radius=radius)
        out = nengo.Node(size_in=1)
        nengo.Connection(stim, ens, synapse=None)
        nengo.Connection(ens, out, function=f, synapse=None)
        return out
    return make


def signed_maker(stim):
    ens = nengo.Ensemble(1, 1, neuron_type=nengo.RegularSpiking(nengo.Tanh(tau_ref=1 / 400)),
                         gain=[1.0], bias=[0.0], encoders=[[1.0]])
    out = nengo.Node(size_in=1)
    nengo.Connection(stim, ens.neurons, synapse=None)
    nengo.Connection(ens.neurons, out, transform=1 / 400, synapse=None)
    return out


def preset10_maker(stim):
    dn = Preset10DecodeNeurons(dt=DT)
    ens = dn.get_ensemble(1)
    out = nengo.Node(size_in=1)
    nengo.Connection(stim, ens, synapse=None)
    decoders = dn.scale * DT * ens.encoders[:, 0]  # on neurons +, off neurons -
    nengo.Connection(ens.neurons, out, transform=decoders[None, :], synapse=None)
    return out


def row(name, neurons, ref, emu, bar=None, words=("PASS", "FAIL")):
    ok = "" if bar is None else ("  <= %.4f %s" % (bar, words[0] if emu <= bar else words[1]))
    ref = f"{ref:8.4f}" if isinstance(ref, float) else f"{ref:>8}"
    emu = f"{emu:8.4f}" if isinstance(emu, float) else f"{emu}"
    print(f"| {name:44s} | {neurons:>7} | {ref} | {emu}{ok}")


def tanh_rows():
    print("\n## 1. tanh, PopulationNeuron, sweep (-3, 3) in 6 s, 10 ms filter (NRMSE)")
    print(f"| {'network':44s} | neurons | nengo    | emulator")
    for n in (4, 8):
        t = time.perf_counter()
        lif = popfit.fit_activation("tanh", n, synapse=SYNAPSE, seed=0)
        t_lif = time.perf_counter() - t
        t = time.perf_counter()
        loihi = popfit.fit_activation("tanh", n, neuron_type=LoihiLIF(), synapse=SYNAPSE, seed=0)
        t_loihi = time.perf_counter() - t
        for name, fit, bar in (
                (f"popfit LIF fit ({t_lif:.1f} s)", lif, None),
                ("popfit LIF fit, staircase decoders", staircase_decoders(lif), None),
                (f"popfit LoihiLIF fit ({t_loihi:.1f} s)", loihi,
                 {4: 0.040, 8: 0.032}[n])):
            make = pop_maker(fit)
            row(name, n, sweep_error(make, -3, 3, np.tanh, False),
                sweep_error(make, -3, 3, np.tanh, True), bar)
    for n in (4, 20):
        make = native_maker(n, 3.0, np.tanh)
        row(f"nengo Ensemble({n}), radius 3, decoded tanh", n,
            sweep_error(make, -3, 3, np.tanh, False), sweep_error(make, -3, 3, np.tanh, True))
    ref = sweep_error(signed_maker, -3, 3, np.tanh, False)
    try:
        emu = sweep_error(signed_maker, -3, 3, np.tanh, True)
    except Exception as err:  # nengo-loihi refuses signed spikes
        emu = "refused: " + str(err).split(".")[0][:70]
    row("signed RegularSpiking(Tanh), 400 Hz", 1, ref, emu)


def identity_rows():
    print("\n## 2. identity on (-1, 1), sweep in 6 s, 10 ms filter (NRMSE)")
    print(f"| {'network':44s} | neurons | nengo    | emulator")
    ident = lambda x: x  # noqa: E731
    preset = sweep_error(preset10_maker, -1, 1, ident, True)
    row("nengo-loihi Preset10DecodeNeurons", 20,
        sweep_error(preset10_maker, -1, 1, ident, False), preset)
    for n in (2, 4, 8):
        fit = popfit.fit_activation("linear", n, neuron_type=LoihiLIF(), synapse=SYNAPSE,
                                    seed=0)
        make = pop_maker(fit)
        row("popfit LoihiLIF fit, linear", n, sweep_error(make, -1, 1, ident, False),
            sweep_error(make, -1, 1, ident, True), preset,
            ("as good as Preset10", "worse than Preset10"))


def chain_rows():
    print("\n## 3. two chained 100-unit tanh layers, 2 s (NRMSE over the last 1.5 s)")
    print(f"| {'network':44s} | neurons | nengo    | emulator")
    n_units, gain, T = 100, 2.5, 2.0
    phase = np.random.default_rng(0).uniform(0, 2 * np.pi, n_units)

    def x_of(t):
        return 3.0 * np.sin(2 * np.pi * 0.25 * np.asarray(t)[..., None] + phase)

    for name, nt in (("LIF fits", "LIF"), ("LoihiLIF fits", LoihiLIF())):
        fit = popfit.fit_activation("tanh", 4, neuron_type=nt, synapse=SYNAPSE, seed=0)
        errs = []
        for emulator in (False, True):
            with nengo.Network(seed=0) as net:
                stim = nengo.Node(lambda t: x_of(t))
                l1 = popfit.PopulationLayer(fit, n_units, platform="loihi")
                l2 = popfit.PopulationLayer(fit, n_units, platform="loihi")
                out = nengo.Node(size_in=n_units)
                nengo.Connection(stim, l1.input, synapse=None)
                l1.connect_to(l2, transform=gain * np.eye(n_units), connection_synapse=0.005)
                l2.connect_to(out, connection_synapse=None)
                p = nengo.Probe(out, synapse=SYNAPSE)
            sim = simulate(net, emulator, int(round(T / DT)))
            x = x_of(sim.trange())
            # the same filters as the network (the emulator filters inputs by 5 ms on chip)
            ideal = np.tanh(gain * lowpass(np.tanh(lowpass(x, 0.005 if emulator else None)),
                                           0.005))
            ideal = lowpass(ideal, SYNAPSE)
            keep = sim.trange() > 0.5
            errs.append(float(np.sqrt(np.mean((sim.data[p][keep] - ideal[keep]) ** 2))
                              / (2 * np.tanh(gain * np.tanh(3.0)))))
        row(f"popfit PopulationLayer x2, {name}", 2 * 4 * n_units, errs[0], errs[1],
            0.05 if nt != "LIF" else None)


def digits_rows():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    print("\n## 4. digits MLPClassifier((32,), tanh), 4 neurons per unit, 100 test digits "
          "at 0.1 s")
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    X_test, y_test = X_test[:100], y_test[:100]
    mlp = MLPClassifier((32,), activation="tanh", max_iter=1000, random_state=0)
    mlp.fit(X_train, y_train)
    logits = np.tanh(X_test @ mlp.coefs_[0] + mlp.intercepts_[0]) @ mlp.coefs_[1] \
        + mlp.intercepts_[1]
    ann = float(np.mean(logits.argmax(1) == y_test))
    std, span = float(np.std(logits)), float(np.ptp(logits))
    print(f"ANN accuracy {100 * ann:.1f}%; logits std {std:.2f}, range {span:.2f}")
    print("| conversion                              | rate level      | nengo"
          "           | emulator        | emulator s")

    def score(out):
        err = float(np.sqrt(np.mean((out - logits) ** 2)))
        return f"{100 * np.mean(out.argmax(1) == y_test):5.1f}% {err / std:.4f}"

    steps = 100
    for name, nt, bits in (("LIF, float weights", "LIF", None),
                           ("LoihiLIF, float weights", None, None),
                           ('platform="loihi" (LoihiLIF, 8-bit)', None, 8)):
        platform = popfit.get_platform("loihi", weight_bits=bits)
        model = popfit.convert(mlp, n_neurons=4, neuron_type=nt, calibration_data=X_train,
                               seed=0, platform=platform)
        cells = [score(rate_forward(model, X_test))]
        for emulator in (False, True):
            with nengo.Network(seed=0) as wrapper:
                wrapper.networks.append(model.network)
                stim = nengo.Node(nengo.processes.PresentInput(X_test, steps * DT))
                nengo.Connection(stim, model.network.input, synapse=None)
                p = nengo.Probe(model.network.output, synapse=None)
            t = time.perf_counter()
            sim = simulate(wrapper, emulator, steps * len(X_test))
            wall = time.perf_counter() - t
            out = sim.data[p].reshape(len(X_test), steps, -1)[:, steps // 2:].mean(axis=1)
            cells.append(score(out))
        ok = float(cells[2].split("%")[0]) >= 100 * ann - 1 and \
            float(cells[2].split()[-1]) <= 0.05
        print(f"| {name:39s} | {cells[0]} | {cells[1]} | {cells[2]} | {wall:6.1f}"
              f"  {'PASS' if ok else 'FAIL'}")
        if bits:
            cost = quantization_cost(model, X_test)
            print(f"  8-bit rate-level cost on the test digits: output NRMSE vs float "
                  f"{cost['output_nrmse']:.4f} (/range), class changed on "
                  f"{100 * cost['class_changed']:.1f}%")
    print()
    print(model.report())


def cnn_rows(neurons=(4, [6, 6], [8, 4])):
    from digits_models import accuracy, digits_cnn, digits_split, import_keras, trained

    keras = import_keras()
    X_train, X_test, y_train, y_test = digits_split()
    X_test, y_test = X_test[:100], y_test[:100]
    net, shape = trained(keras, digits_cnn, X_train, y_train)
    src = accuracy(net, X_test, y_test)
    print(f"\n## 5. digits CNN (Keras {keras.__version__} on {keras.backend.backend()}), "
          f"platform=\"loihi\", 100 test digits at 0.1 s; Keras accuracy {100 * src:.1f}%")
    print("| neurons per unit | neurons | rate level | nengo (batched) | emulator | "
          "emulator s | bar (>= Keras - 1.5 pp)")
    for n in neurons:
        model = popfit.convert(net, platform="loihi", n_neurons=n, seed=0,
                               calibration_data=X_train.reshape((-1,) + shape))
        m = chip_mapping(model.network)
        chunk = chunk_size(BatchPlan(model, 100, DT, 0, None), len(X_test), None, 1)
        print(f"  model.network: {m['blocks']} blocks, builds: {m['builds']}; batched "
              f"prediction: {chunk} digits per simulator, block shapes from "
              "popfit.loihi.set_block_shapes", flush=True)
        rate = float(np.mean(model.rate_output(X_test).argmax(1) == y_test))
        ref = model.score(X_test, y_test, 0.1, simulator=nengo.Simulator, progress_bar=False)
        t = time.perf_counter()
        try:
            emu = model.score(X_test, y_test, 0.1, progress_bar=False)
        except nengo.exceptions.BuildError as err:
            print(f"| {str(n):>16} | {model.total_neurons:7d} | {100 * rate:9.1f}% | "
                  f"{100 * ref:14.1f}% | nengo-loihi refuses to build it: {err}")
            continue
        wall = time.perf_counter() - t
        print(f"| {str(n):>16} | {model.total_neurons:7d} | {100 * rate:9.1f}% | "
              f"{100 * ref:14.1f}% | {100 * emu:7.1f}% | {wall:10.0f} | "
              f"{'PASS' if emu >= src - 0.015 else 'FAIL'}", flush=True)
    print()
    print(model.report())


def cnn_rate_rows(synapses=(0.005, 0.01, 0.02), n_test=20, T=0.2):
    from digits_models import digits_cnn, digits_split, import_keras, trained

    keras = import_keras()
    X_train, X_test, y_train, _ = digits_split()
    X_test = X_test[:n_test]
    net, shape = trained(keras, digits_cnn, X_train, y_train)
    steps = int(round(T / DT))
    print(f"\n## 6. digits CNN, 2 neurons per unit (float weights, no refit), {n_test} digits "
          f"at {T:g} s, sequential nengo run: measured rates against the rate model")
    print("| fits | synapse | layer | mean measured | mean modelled | RMS difference |")
    for name, platform in (("LIF", "nengo"), ("LoihiLIF", popfit.get_platform(
            "loihi", weight_bits=None))):
        for synapse in synapses:
            model = popfit.convert(net, n_neurons=2, refit=False, platform=platform, seed=0,
                                   connection_synapse=synapse,
                                   calibration_data=X_train.reshape((-1,) + shape))
            with nengo.Network(seed=0) as wrapper:
                wrapper.networks.append(model.network)
                stim = nengo.Node(nengo.processes.PresentInput(X_test, T))
                nengo.Connection(stim, model.network.input, synapse=None)
                probes = [nengo.Probe(layer.ensemble.neurons, synapse=None)
                          for layer in model.network.layers]
            sim = simulate(wrapper, False, steps * n_test)
            pre = model.spec.forward(X_test, [fit.predict for fit in model.fits])[0]
            for i, (layer, probe) in enumerate(zip(model.network.layers, probes)):
                measured = sim.data[probe].reshape(n_test, steps, -1)[:, steps // 2:].mean(1)
                ens, fit = layer.ensemble, model.fits[i]
                z = pre[i] - model.spec.layers[i].bias  # the input bias is in ens.bias
                J = (np.repeat(z, fit.n_neurons, axis=1) * ens.gain
                     * np.tile(fit.encoders, z.shape[1]) + ens.bias)
                modelled = ens.neuron_type.rates(J, np.ones(J.shape[1]), np.zeros(J.shape[1]))
                rms = float(np.sqrt(np.mean((measured - modelled) ** 2)))
                print(f"| {name} | {synapse * 1e3:g} ms | {i} | {measured.mean():.1f} Hz | "
                      f"{modelled.mean():.1f} Hz | {rms:.1f} Hz |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("tanh", "identity", "chain", "digits", "cnn",
                                           "cnn-rates"))
    parser.add_argument("--cnn-neurons", nargs="+", default=["4", "6,6", "8,4"],
                        help="neurons per unit of the CNN rows: N or N1,N2 per layer")
    args = parser.parse_args()
    cnn = functools.partial(cnn_rows, [int(n) if "," not in n else [int(k) for k in n.split(
        ",")] for n in args.cnn_neurons])
    t0 = time.perf_counter()
    print(f"nengo {nengo.__version__}, nengo-loihi {nengo_loihi.__version__}, "
          f"numpy {np.__version__}")
    for name, fn in (("tanh", tanh_rows), ("identity", identity_rows),
                     ("chain", chain_rows), ("digits", digits_rows), ("cnn", cnn),
                     ("cnn-rates", cnn_rate_rows)):
        if args.only == name or (args.only is None and name != "cnn-rates"):
            fn()
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
