"""popfit networks on nengo-loihi's emulator (``nengo_loihi.Simulator(..., target="sim")``).

Runs only in the Loihi environment (numpy < 2, nengo-loihi 1.1.0):

    bash .ci/make_loihi_venv /work/venvs/loihi
    PYTHONPATH=$PWD /work/venvs/loihi/bin/python -m pytest -q tests/loihi

Every build path popfit offers is built unmodified and run on the emulator;
errors are measured against the ideal curve, not against popfit's own
predictions.
"""

import warnings

import numpy as np
import pytest

nengo_loihi = pytest.importorskip("nengo_loihi")

import nengo  # noqa: E402
from nengo_loihi.neurons import LoihiLIF, LoihiSpikingRectifiedLinear  # noqa: E402

import popfit  # noqa: E402
from popfit.fit import staircase_decoders  # noqa: E402
from popfit.loihi import chip_mapping  # noqa: E402
from popfit.wholestep import tau_rc_bounds  # noqa: E402
from popfit.network import PopulationLayer, PopulationNeuron  # noqa: E402

DT = 0.001
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # nengo-loihi version notes


def emulate(net, seconds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = nengo_loihi.Simulator(net, dt=DT, target="sim", progress_bar=False)
    with sim:
        sim.run(seconds)
    return sim


def sweep_nrmse(fit, seconds=3.0, synapse=0.01):
    """Sweep the fit's domain linearly; NRMSE of the filtered output vs the filtered target."""
    lo, hi = fit.domain
    f = lambda t: lo + (hi - lo) * t / seconds  # noqa: E731
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(f)
        ideal = nengo.Node(lambda t: np.tanh(f(t)))
        pop = PopulationNeuron(fit)
        nengo.Connection(stim, pop.input, synapse=None)
        p = nengo.Probe(pop.output, synapse=synapse)
        p_ideal = nengo.Probe(ideal, synapse=synapse)
    sim = emulate(net, seconds)
    return np.sqrt(np.mean((sim.data[p] - sim.data[p_ideal]) ** 2)) / (2 * np.tanh(hi))


@pytest.fixture(scope="module")
def fit_loihi():
    return popfit.fit_activation("tanh", 4, neuron_type=LoihiLIF(), synapse=0.01, seed=0)


@pytest.fixture(scope="module")
def fit_lif():
    return popfit.fit_activation("tanh", 4, synapse=0.01, seed=0)


def test_loihi_fit_is_a_staircase_fit(fit_loihi):
    fit = fit_loihi
    assert isinstance(fit.neuron_type, LoihiLIF)
    x = np.linspace(-3, 3, 3001)
    rates = fit.rates(x)
    # whole-step spiking: every rate is 1 / (k dt) for an integer k
    k = 1.0 / (rates[rates > 0] * DT)
    np.testing.assert_allclose(k, np.round(k), atol=1e-6)
    assert rates.max() <= 1000.0 / 3 + 1e-9  # tau_ref = 2 ms: at most every 3rd step
    assert np.all(fit.max_rates <= fit.max_rate)
    # the reported error is the staircase's, recomputed here from the ideal curve
    err = np.sqrt(np.mean((rates @ fit.decoders - np.tanh(x)) ** 2)) / (2 * np.tanh(3))
    assert err == pytest.approx(fit.nrmse, rel=0.05)
    assert "staircase" in fit.message


def test_population_neuron_on_emulator(fit_loihi, fit_lif):
    """A plain LIF fit saturated at 0.64 (NRMSE 0.128) before the radius
    scaling; a LoihiLIF fit beats the plain LIF fit on the emulator."""
    err_loihi = sweep_nrmse(fit_loihi)
    err_lif = sweep_nrmse(fit_lif)
    assert err_lif < 0.09  # builds, and no saturation (that was 0.128)
    assert err_loihi < 0.045
    assert err_loihi < 0.75 * err_lif


def test_staircase_decoders_and_relu(fit_lif):
    fixed = staircase_decoders(fit_lif)
    np.testing.assert_array_equal(fixed.gain, fit_lif.gain)
    assert isinstance(fixed.neuron_type, LoihiLIF)
    x = np.linspace(-3, 3, 1001)
    plain = LoihiLIF().rates(x[:, None] * fit_lif.encoders, fit_lif.gain, fit_lif.bias)
    plain_err = np.sqrt(np.mean((plain @ fit_lif.decoders - np.tanh(x)) ** 2))
    fixed_err = np.sqrt(np.mean((fixed.predict(x) - np.tanh(x)) ** 2))
    assert fixed_err < 0.7 * plain_err
    relu = popfit.fit_activation("tanh", 3, neuron_type=LoihiSpikingRectifiedLinear(),
                                 synapse=0.01, seed=0)
    assert relu.nrmse < 0.06 and np.all(relu.max_rates <= 400 + 1e-9)
    assert sweep_nrmse(relu) < 0.09


def test_named_type_and_save_load(tmp_path, fit_loihi):
    fit = popfit.fit_activation("tanh", 2, neuron_type="LoihiLIF", seed=0)
    assert type(fit.neuron_type) is LoihiLIF
    fit_loihi.save(tmp_path / "f.json")
    back = popfit.load_fit(tmp_path / "f.json")
    assert type(back.neuron_type) is LoihiLIF
    np.testing.assert_allclose(back.predict([0.5]), fit_loihi.predict([0.5]))
    with pytest.raises(popfit.PopfitValueError, match="no rate twin"):
        PopulationNeuron(fit_loihi, spiking=False)


def test_layer_input_output_on_emulator(fit_loihi):
    """platform='loihi': a layer driven through input, read through output."""
    n_units = 6
    b = np.linspace(-0.5, 0.5, n_units)
    phase = np.linspace(0, np.pi, n_units)
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: 2.5 * np.sin(2 * np.pi * 0.5 * t + phase))
        layer = PopulationLayer(fit_loihi, n_units, input_bias=b, platform="loihi")
        nengo.Connection(stim, layer.input, synapse=None)
        p = nengo.Probe(layer.output, synapse=0.01)
        p_x = nengo.Probe(stim, synapse=None)
    sim = emulate(net, 2.0)
    # the emulator filters host input by 5 ms on chip; the probe by 10 ms
    x = nengo.Lowpass(0.005).filt(sim.data[p_x], dt=DT, y0=0)
    ideal = nengo.Lowpass(0.01).filt(np.tanh(x + b), dt=DT, y0=0)
    keep = sim.trange() > 0.1
    err = np.sqrt(np.mean((sim.data[p][keep] - ideal[keep]) ** 2)) / 2
    assert err < 0.05


def test_default_layer_is_refused_and_loihi_layer_chain_runs(fit_loihi):
    """The default (Sparse) layer input is refused by nengo-loihi; a chain built with
    platform='loihi' runs, with the Sparse chip-to-chip connect_to."""
    with nengo.Network() as net:
        layer = PopulationLayer(fit_loihi, 2)
        nengo.Connection(nengo.Node([0.1, 0.2]), layer.input)
    with pytest.raises(nengo.exceptions.BuildError, match="Sparse"):
        emulate(net, 0.01)
    n_units = 8
    phase = np.linspace(0, np.pi, n_units)
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: 2.5 * np.sin(2 * np.pi * 0.5 * t + phase))
        l1 = PopulationLayer(fit_loihi, n_units, platform="loihi")
        l2 = PopulationLayer(fit_loihi, n_units, platform="loihi")
        out = nengo.Node(size_in=n_units)
        nengo.Connection(stim, l1.input, synapse=None)
        conn = l1.connect_to(l2, connection_synapse=0.005)
        assert isinstance(conn.transform, nengo.transforms.Sparse)
        l2.connect_to(out, connection_synapse=None)
        p = nengo.Probe(out, synapse=0.01)
        p_x = nengo.Probe(stim, synapse=None)
    assert len(net.all_nodes) == 4  # stim, l1.input, its scaled Node, out: none idle
    sim = emulate(net, 2.0)
    x = nengo.Lowpass(0.005).filt(sim.data[p_x], dt=DT, y0=0)
    h = nengo.Lowpass(0.005).filt(np.tanh(x), dt=DT, y0=0)
    ideal = nengo.Lowpass(0.01).filt(np.tanh(h), dt=DT, y0=0)
    keep = sim.trange() > 0.1
    err = np.sqrt(np.mean((sim.data[p][keep] - ideal[keep]) ** 2)) / (2 * np.tanh(1))
    assert err < 0.06
    assert chip_mapping(net)["blocks"] == len(sim.model.blocks) == 2


def test_convert_on_emulator_with_8bit_weights():
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier((16,), activation="tanh", max_iter=300, random_state=0)
        mlp.fit(X[:800], y[:800])
    X_test, y_test = X[800:840], y[800:840]
    logits = np.tanh(X_test @ mlp.coefs_[0] + mlp.intercepts_[0]) @ mlp.coefs_[1] \
        + mlp.intercepts_[1]
    model = popfit.convert(mlp, platform="loihi", calibration_data=X[:800], seed=0)
    assert type(model.neuron_type) is LoihiLIF and model.weight_bits == 8
    net = model.network
    with nengo.Network(seed=0) as wrapper:
        wrapper.networks.append(net)
        stim = nengo.Node(nengo.processes.PresentInput(X_test, 0.05))
        nengo.Connection(stim, net.input, synapse=None)
        p = nengo.Probe(net.output, synapse=None)
    sim = emulate(wrapper, 0.05 * len(X_test))
    out = sim.data[p].reshape(len(X_test), 50, -1)[:, 25:].mean(axis=1)
    assert np.mean(out.argmax(1) == y_test) >= np.mean(logits.argmax(1) == y_test) - 0.05
    assert np.sqrt(np.mean((out - logits) ** 2)) / np.std(logits) < 0.1
    assert chip_mapping(net)["blocks"] == len(sim.model.blocks) == 1
    # the default network is refused by nengo-loihi (Sparse host-to-chip input)
    plain = popfit.convert(mlp, seed=0, calibration_data=X[:800])
    with nengo.Network() as wrapper2:
        wrapper2.networks.append(plain.network)
        nengo.Connection(nengo.Node(np.zeros(64)), plain.network.input)
    with pytest.raises(nengo.exceptions.BuildError, match="Sparse"):
        emulate(wrapper2, 0.01)


@pytest.mark.parametrize("tau_rc", [1e-4, 5e-5, 10.0, 100.0])
def test_loihi_lif_tau_rc_outside_the_12_bit_decay_is_refused(tau_rc):
    """Loihi's 12-bit membrane decay rounds tau_rc = 1e-4 s to 0 (nengo then said
    "LIFRate.tau_rc: ... got 0.0") and 10 s to infinity (a rate curve of 0: a
    fit of nothing, silently)."""
    lo, hi = tau_rc_bounds()
    assert lo == pytest.approx(1.11e-4, rel=1e-3) and hi == pytest.approx(8.19, rel=1e-3)
    # the bounds are where nengo-loihi's own discretization leaves (0, inf)
    from nengo_loihi.neurons import discretize_tau_rc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert discretize_tau_rc(lo * 0.999, DT) == 0 and discretize_tau_rc(lo * 1.001, DT) > 0
        assert np.isinf(discretize_tau_rc(hi * 1.001, DT))
        assert np.isfinite(discretize_tau_rc(hi * 0.999, DT))
    with pytest.raises(popfit.PopfitValueError,
                       match=rf"^fit_activation: LoihiLIF tau_rc must be in \(0.000111, "
                             rf"8.189\) s \(got {tau_rc!r}\)"):
        popfit.fit_activation("tanh", 4, neuron_type=LoihiLIF(tau_rc=tau_rc))


def test_staircase_decoders_refuses_bad_arguments(fit_lif):
    with pytest.raises(popfit.PopfitTypeError,
                       match=r"^staircase_decoders: fit must be a popfit.PopulationFit "
                             r"\(got int\)"):
        staircase_decoders(5)
    for points, shown in [([0.0, np.nan], "nan"), ([0.0, 4.0], "4.0")]:
        with pytest.raises(popfit.PopfitValueError,
                           match=rf"^staircase_decoders: eval_points must be finite and "
                                 rf"inside the domain \[-3.0, 3.0\] .* e.g. {shown}"):
            staircase_decoders(fit_lif, eval_points=points)
    with pytest.raises(popfit.PopfitValueError, match="^staircase_decoders: LoihiLIF tau_rc"):
        staircase_decoders(popfit.fit_activation("tanh", 2, seed=0, neuron_type=nengo.LIF(
            tau_rc=10.0)))
    # in-domain eval_points still work
    fixed = staircase_decoders(fit_lif, eval_points=np.linspace(-1, 1, 50))
    assert np.all(np.isfinite(fixed.decoders))


def _builds_on_nengo_loihi(network):
    """Build ``network`` (driven by a host input Node) with nengo-loihi's emulator."""
    with nengo.Network() as wrapper:
        wrapper.networks.append(network)
        nengo.Connection(nengo.Node(np.zeros(network.input.size_in)), network.input,
                         synapse=None)
        nengo.Probe(network.output)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nengo_loihi.Simulator(wrapper, dt=DT, target="sim", progress_bar=False).close()
    except nengo.exceptions.BuildError as err:
        return False, str(err)
    return True, ""


@pytest.fixture(scope="module")
def small_digits_mlp():
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier((16,), activation="tanh", max_iter=200, random_state=0)
        mlp.fit(X[:400], y[:400])
    return mlp, X[:400]


@pytest.mark.parametrize("host", ["Sparse", "Dense"])
@pytest.mark.parametrize("hidden", [(16,), (8, 8)])
def test_chip_mapping_verdict_agrees_with_nengo_loihi(small_digits_mlp, host, hidden):
    """The default convert() network has a Sparse host-to-chip input, which
    nengo-loihi refuses; chip_mapping says so (naming the connection and
    convert(..., platform="loihi")) and is right both ways."""
    mlp, X = small_digits_mlp
    if hidden != (16,):
        from sklearn.neural_network import MLPClassifier

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlp = MLPClassifier(hidden, activation="tanh", max_iter=100,
                                random_state=0).fit(X, mlp.predict(X))
    platform = popfit.get_platform("loihi", host_transforms=(host,))
    model = popfit.convert(mlp, n_neurons=2, platform=platform, calibration_data=X, seed=0)
    m = chip_mapping(model.network)
    builds, error = _builds_on_nengo_loihi(model.network)
    assert m["builds"] is builds is (host == "Dense")
    if host == "Sparse":
        assert "Sparse" in error  # nengo-loihi's own refusal
        assert m["problems"] and all('platform="loihi"' in p for p in m["problems"])
        assert "hidden 0" in m["problems"][0]
    else:
        assert m["problems"] == []
