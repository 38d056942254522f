"""The Loihi export option, weight quantization and chip mapping, without nengo-loihi.

These run in the main environment (numpy 2, no nengo-loihi): they check the
network structure nengo-loihi needs, that it computes the same thing in
nengo's reference simulator, and the quantization against an independent
rounding. tests/loihi/ runs the same networks on nengo-loihi's emulator.
"""

import copy
import importlib.util
import pickle
import warnings

import nengo
import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import popfit
from popfit.exceptions import PopfitTypeError, PopfitValueError
from popfit.conversion.quantize import quantization_cost, quantize, rate_forward
from popfit.loihi import chip_mapping
from popfit.network import PopulationLayer, PopulationNeuron

DT = 0.001
HAS_NENGO_LOIHI = importlib.util.find_spec("nengo_loihi") is not None


@pytest.fixture(scope="module")
def fit():
    return popfit.fit_activation("tanh", 4, synapse=0.01, seed=0)


@pytest.fixture(scope="module")
def digits_mlp():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier((16,), activation="tanh", max_iter=300, random_state=0)
        mlp.fit(X[:600], y[:600])
    return mlp, X[:600], X[600:640], y[600:640]


def reference(fit, x):
    """Rate-level output from the textbook LIF formula."""
    j = fit.gain * fit.encoders * np.asarray(x)[..., None] + fit.bias
    jm1 = np.where(j > 1, j - 1, 1.0)
    rate = np.where(j > 1, 1.0 / (fit.neuron_type.tau_ref
                                  + fit.neuron_type.tau_rc * np.log1p(1.0 / jm1)), 0.0)
    return rate @ fit.decoders


def host_connections(net, ensemble):
    """Connections between a Node and ``ensemble`` (either way): host <-> chip on Loihi."""
    out = []
    for c in net.all_connections:
        ends = [getattr(o, "ensemble", o) for o in (c.pre_obj, c.post_obj)]
        nodes = [isinstance(getattr(o, "obj", o), nengo.Node) for o in (c.pre_obj, c.post_obj)]
        if ensemble in ends and any(nodes):
            out.append(c)
    return out


def test_population_neuron_scales_input_by_radius(fit):
    """radius = max |domain| and gain * radius: host-encoded values inside [-1, 1],
    currents unchanged (the rate export stays exact)."""
    with nengo.Network(seed=0) as model:
        stim = nengo.Node(lambda t: -3 + 6 * t)
        pop = PopulationNeuron(fit, spiking=False)
        nengo.Connection(stim, pop.input, synapse=None)
        p_x, p_y = nengo.Probe(stim), nengo.Probe(pop.output)
    assert pop.ensemble.radius == 3.0
    np.testing.assert_allclose(pop.ensemble.gain, 3.0 * fit.gain)
    with nengo.Simulator(model, dt=DT, progress_bar=False) as sim:
        sim.run(1.0)
    np.testing.assert_allclose(sim.data[p_y][:, 0], reference(fit, sim.data[p_x][:, 0]),
                               atol=1e-9)
    assert np.ptp(sim.data[p_x]) > 5.9  # swept the whole domain
    for c in host_connections(model, pop.ensemble):
        assert not isinstance(c.transform, nengo.transforms.Sparse)


def test_layer_nodes_are_made_on_first_use(fit):
    """A chain driven and read through connect_to has no idle input/output Node."""
    with nengo.Network() as model:
        l1, l2 = PopulationLayer(fit, 3), PopulationLayer(fit, 3)
        l1.connect_to(l2)
    assert not model.all_nodes
    assert len(model.all_connections) == 1
    assert l1.input.size_out == 3  # made now, with its connection to the neurons
    assert len(model.all_nodes) == 1 and len(model.all_connections) == 2
    assert l1.input is l1.input


@pytest.mark.parametrize("spiking", [False, True])
def test_loihi_layer_structure_and_nengo_equivalence(fit, rng, spiking):
    """platform='loihi': Dense host<->chip transforms, input sent as x / input_scale
    inside [-1, 1]; in nengo it computes what the default layer computes."""
    n_units = 5
    b = rng.uniform(-0.5, 0.5, n_units)
    phase = rng.uniform(0, 2 * np.pi, n_units)
    outs = {}
    for platform in ("nengo", "loihi"):
        with nengo.Network(seed=1) as model:
            stim = nengo.Node(lambda t: 2.5 * np.sin(2 * np.pi * t + phase))
            layer = PopulationLayer(fit, n_units, spiking=spiking, input_bias=b,
                                    platform=platform)
            nengo.Connection(stim, layer.input, synapse=None)
            p_x, p_y = nengo.Probe(stim), nengo.Probe(layer.output)
        with nengo.Simulator(model, dt=DT, progress_bar=False, seed=1) as sim:
            sim.run(1.0)
        assert layer.platform is popfit.get_platform(platform)
        outs[platform] = nengo.Lowpass(0.01).filt(sim.data[p_y], dt=DT, y0=0)
        host = host_connections(model, layer.ensemble)
        assert len(host) == 2
        sparse = {isinstance(c.post_obj, nengo.ensemble.Neurons): isinstance(
            c.transform, nengo.transforms.Sparse) for c in host}  # {into neurons: Sparse}
        # default: Sparse in (nengo-loihi refuses it loudly), Dense out (a small layer)
        assert sparse == ({True: True, False: False} if platform == "nengo"
                          else {True: False, False: False})
    np.testing.assert_allclose(layer.input_scale, 3.0 + np.abs(b))
    scaled = [n for n in model.all_nodes if n.label == "input (scaled)"]
    assert len(scaled) == 1
    x = sim.data[p_x]
    assert np.abs(x / layer.input_scale).max() <= 1.0
    ref = nengo.Lowpass(0.01).filt(reference(fit, x + b), dt=DT, y0=0)
    if not spiking:  # rate level: identical up to float rounding
        np.testing.assert_allclose(outs["loihi"], outs["nengo"], atol=1e-9)
        np.testing.assert_allclose(outs["loihi"], ref, atol=1e-6)
    else:  # spiking: both as close to the rate reference (after the filter settles)
        keep = sim.trange() > 0.05
        errs = [np.sqrt(np.mean((outs[h][keep] - ref[keep]) ** 2)) / 2 for h in outs]
        assert max(errs) < 0.06, errs


def test_connect_to_node_is_dense_only_for_loihi(fit):
    """Into a Node: Dense for platform='loihi'; by default Sparse above
    DENSE_MAX_ENTRIES (70 units x 280 neurons), Dense below (tests/test_network.py)."""
    with nengo.Network():
        for platform, cls in (("nengo", nengo.transforms.Sparse),
                              ("loihi", nengo.transforms.Dense)):
            l1, l2 = (PopulationLayer(fit, 70, platform=platform) for _ in range(2))
            node = nengo.Node(size_in=70)
            assert isinstance(l1.connect_to(node).transform, cls)
            assert isinstance(l1.connect_to(node[:2], transform=np.eye(2, 70)).transform,
                              nengo.transforms.Dense)
            # chip to chip: Sparse either way (nengo-loihi supports it)
            assert isinstance(l1.connect_to(l2).transform, nengo.transforms.Sparse)


def test_platform_argument_is_checked(fit, digits_mlp):
    with nengo.Network():
        with pytest.raises(PopfitValueError, match=r"^PopulationLayer: platform must be a "
                           r"popfit.platforms.Platform or one of 'nengo', 'loihi'.*"
                           r"\(got 'spinnaker'\); register"):
            PopulationLayer(fit, 2, platform="spinnaker")
    with pytest.raises(PopfitTypeError, match=r"^convert: platform must be a name or a "
                       r"popfit.platforms.Platform \(got True of type bool\)"):
        popfit.convert(digits_mlp[0], platform=True)
    with pytest.raises(PopfitValueError, match=r"^get_platform: Platform.weight_bits must be "
                       r"an integer in \[2, 16\] \(got 1\)"):
        popfit.get_platform("nengo", weight_bits=1)


def test_spiking_export_warns_when_tau_ref_below_dt():
    fit = popfit.fit_activation("tanh", 3, neuron_type=nengo.LIF(tau_ref=0.0), seed=0)
    with pytest.warns(UserWarning, match=r"tau_ref = 0 s < dt = 0.001 s.*333 Hz"):
        PopulationNeuron(fit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PopulationNeuron(fit, spiking=False)  # the rate twin is exact
    # and the warning is right: nengo's spiking LIF misses its rate model
    with nengo.Network() as model:
        ens = nengo.Ensemble(1, 1, neuron_type=nengo.LIF(tau_ref=0.0), gain=[1.0],
                             bias=[10.0], encoders=[[1.0]])
        p = nengo.Probe(ens.neurons)
    with nengo.Simulator(model, dt=DT, progress_bar=False) as sim:
        sim.run(1.0)
    spiking_rate = sim.data[p].sum() * DT
    model_rate = 1.0 / (0.02 * np.log1p(1.0 / 9.0))
    assert model_rate == pytest.approx(474.6, abs=0.1)
    assert spiking_rate < 0.75 * model_rate


def test_quantize_against_independent_rounding(rng):
    w = rng.normal(size=(6, 9))
    q = quantize(w, 8)
    step = np.abs(w).max() / 255
    levels = q / step
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-9)  # on the grid
    assert np.abs(levels).max() == pytest.approx(255)
    assert np.abs(q - w).max() <= step / 2 + 1e-12  # nearest level
    assert len(np.unique(np.round(quantize(w, 2) / (np.abs(w).max() / 3)))) <= 7
    s = quantize(scipy.sparse.csr_matrix(w * (w > 0)), 4)
    np.testing.assert_allclose(s.toarray(), quantize(w * (w > 0), 4))
    np.testing.assert_array_equal(quantize(np.zeros(3), 8), np.zeros(3))


def test_quantize_network_reads_scalar_and_1d_transforms_as_nengo_does():
    """nengo's Dense with a scalar or 1-D init is a diagonal (elementwise) transform;
    rounding keeps it one (a full matrix of that value would connect all to all)."""
    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier((5,), activation="tanh", max_iter=30, random_state=0).fit(
            X[:200] / 16, y[:200])
    model = popfit.convert(mlp, n_neurons=1, refit=False, seed=0)
    neurons = model.network.layers[0].ensemble.neurons
    with model.network:
        extra = nengo.Node(np.ones(5))
        scalar = nengo.Connection(extra, neurons, transform=0.5)
        vector = nengo.Connection(extra, neurons, transform=np.arange(1.0, 6.0))
    popfit.conversion.quantize.quantize_network(model.network, 8)
    gain = model.network.layers[0].ensemble.gain
    for conn, diag in ((scalar, np.full(5, 0.5)), (vector, np.arange(1.0, 6.0))):
        w = conn.transform.init
        assert w.shape == (5, 5)
        np.testing.assert_array_equal(w - np.diag(np.diag(w)), 0)  # still diagonal
        step = np.max(np.abs(gain) * 5.0) / 255  # the layer's shared step, of w * gain
        np.testing.assert_allclose(np.diag(w) * gain, diag * gain, atol=step / 2 + 1e-12)


PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None)


@st.composite
def weights_and_bits(draw):
    """Finite arrays of 0-3 dimensions, scales 1e-100 to 1e100, some exact zeros."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))
    unit = draw(hnp.arrays(float, shape, elements=st.floats(-1, 1, allow_subnormal=False)))
    scale = 10.0 ** draw(st.integers(-100, 100))
    w = unit * scale
    return w, draw(st.integers(2, 16))


@PROPERTY_SETTINGS
@given(weights_and_bits())
def test_quantize_properties(args):
    """On the shared step grid, at most 2**bits - 1 nonzero magnitudes per sign,
    within half a step of the input, zeros kept, the largest magnitude exact."""
    w, bits = args
    q = quantize(w, bits)
    assert q.shape == w.shape and np.all(np.isfinite(q))
    if not np.any(w):
        np.testing.assert_array_equal(q, w)
        return
    wmax = np.abs(w).max()
    step = wmax / (2**bits - 1)
    levels = q / step
    np.testing.assert_allclose(levels, np.round(levels), rtol=0, atol=1e-6)  # on the grid
    for sign in (1, -1):
        mags = np.unique(np.round(levels[sign * q > 0]))
        assert len(mags) <= 2**bits - 1 and np.all(mags <= 2**bits - 1)
    assert np.all(np.abs(q - w) <= step * (0.5 + 1e-9))  # nearest level
    np.testing.assert_array_equal(q[w == 0], 0.0)  # zeros stay zero
    assert np.abs(q).max() == wmax  # the largest magnitude is exact
    assert np.all(np.sign(q) * np.sign(w) >= 0)  # no sign flips


@PROPERTY_SETTINGS
@given(weights_and_bits(), st.sampled_from([np.nan, np.inf, -np.inf]))
def test_quantize_refuses_non_finite_weights(args, bad):
    w, bits = args
    w = np.append(w.ravel(), bad)
    with pytest.raises(PopfitValueError, match=r"^quantize: weights must be a finite array"):
        quantize(w, bits)


@PROPERTY_SETTINGS
@given(weights_and_bits(), st.one_of(
    st.integers(max_value=1), st.integers(min_value=17),
    st.floats(allow_nan=True).filter(lambda b: b != int(b) if np.isfinite(b) else True)))
def test_quantize_refuses_bits_outside_2_to_16(args, bits):
    w, _ = args
    with pytest.raises((PopfitValueError, PopfitTypeError),
                       match=r"^quantize: bits must be an integer in \[2, 16\] \(got "):
        quantize(w, bits)


@pytest.mark.parametrize("bits, error, got", [
    (2.5, PopfitTypeError, "2.5 of type float"), (-1, PopfitValueError, "-1"),
    (0, PopfitValueError, "0"), (1, PopfitValueError, "1"), (17, PopfitValueError, "17"),
    (True, PopfitTypeError, "True of type bool"), ("8", PopfitTypeError, "'8' of type str")])
def test_quantize_refuses_bad_bits(bits, error, got):
    """bits outside [2, 16] used to run (-1 zeroed every weight, 2.5 made a
    fractional level count) or raise ZeroDivisionError (0)."""
    with pytest.raises(error, match=rf"^quantize: bits must be an integer in \[2, 16\] "
                                    rf"\(got {got}"):
        quantize(np.array([0.5, -1.0]), bits)


def test_quantize_refuses_non_finite_and_non_numeric_weights():
    with pytest.raises(PopfitValueError, match="^quantize: weights must be a finite array"):
        quantize([1.0, np.nan], 8)  # used to turn the finite weight into NaN too
    sparse = scipy.sparse.csr_matrix(np.array([[0.0, np.inf], [1.0, 0.0]]))
    with pytest.raises(PopfitValueError, match="^quantize: weights must be a finite array"):
        quantize(sparse, 8)
    with pytest.raises(PopfitTypeError, match="^quantize: weights must be an array of real"):
        quantize("abc", 8)


@pytest.fixture(scope="module")
def model_2bit(digits_mlp):
    mlp, X_cal, X, y = digits_mlp
    return popfit.convert(mlp, calibration_data=X_cal, seed=0,
                          platform=popfit.get_platform("nengo", weight_bits=2))


def test_quantization_cost_of_pickled_and_copied_model(model_2bit, digits_mlp):
    """The float weights were looked up by id(connection), stale in a copy: a
    pickled or deep-copied model reported a cost of exactly 0."""
    X = digits_mlp[2]
    cost = quantization_cost(model_2bit, X)
    assert cost["output_nrmse"] > 0
    for other in (pickle.loads(pickle.dumps(model_2bit)), copy.deepcopy(model_2bit)):
        again = quantization_cost(other, X)
        assert again == cost
        np.testing.assert_array_equal(rate_forward(other, X, float_weights=True),
                                      rate_forward(model_2bit, X, float_weights=True))
    # the float weights are the unquantized network's (an independent conversion)
    float_model = popfit.convert(digits_mlp[0], calibration_data=digits_mlp[1], seed=0)
    np.testing.assert_allclose(rate_forward(model_2bit, X, float_weights=True),
                               rate_forward(float_model, X), atol=1e-12)


@pytest.mark.parametrize("func", [rate_forward, quantization_cost], ids=lambda f: f.__name__)
def test_rate_forward_and_cost_refuse_bad_input(model_2bit, digits_mlp, func):
    name = func.__name__
    good = np.zeros((2, 64))
    nan = good.copy()
    nan[0, 0] = np.nan  # rate_forward gave a number, quantization_cost 0.0
    for X, error, match in [
            (nan, PopfitValueError, "X contains NaN"),
            (np.zeros((2, 3)), PopfitValueError, "X has 3 features but the model expects 64"),
            (np.zeros(64), PopfitValueError, r"X must be 2-D, shape \(n_samples, 64\)"),
            ("abc", PopfitTypeError, "X must be an array"),
            ([["a"] * 64], PopfitValueError, "X must be a numeric array")]:
        with pytest.raises(error, match=f"^{name}: {match}"):
            func(model_2bit, X)
    with pytest.raises(PopfitTypeError, match=f"^{name}: model must be a popfit.ConvertedModel "
                                              r"\(got MLPClassifier\)"):
        func(digits_mlp[0], good)  # the source model instead of the converted one
    if func is rate_forward:
        with pytest.raises(PopfitTypeError, match="^rate_forward: float_weights must be True"):
            rate_forward(model_2bit, good, float_weights="yes")


def test_chip_mapping_refuses_non_networks():
    for bad in (5, None, "net"):
        with pytest.raises(PopfitTypeError,
                           match=rf"^chip_mapping: network must be a nengo.Network \(got "
                                 rf"{type(bad).__name__}\)"):
            chip_mapping(bad)


def test_chip_mapping_says_the_default_network_will_not_build(model_2bit, digits_mlp):
    """nengo-loihi refuses Sparse host-to-chip transforms (the default layer input):
    chip_mapping and the report name the connection and the fix.
    tests/loihi/test_emulator.py checks the verdict against nengo-loihi itself."""
    m = chip_mapping(model_2bit.network)
    assert m["builds"] is False and len(m["problems"]) == 1
    problem = m["problems"][0]
    assert "Sparse transform, host to chip" in problem
    assert "hidden 0" in problem and 'convert(..., platform="loihi")' in problem
    text = model_2bit.report()
    assert "WILL NOT BUILD" in text and problem in text
    loihi = popfit.convert(digits_mlp[0], calibration_data=digits_mlp[1], seed=0,
                           platform="loihi", neuron_type="LIF")  # LoihiLIF: tests/loihi
    assert loihi.weight_bits == 8
    m = chip_mapping(loihi.network)
    assert m["builds"] is True and m["problems"] == []
    assert "WILL NOT BUILD" not in loihi.report()


@pytest.mark.parametrize("platform", ["nengo", "loihi"])
def test_convert_weight_bits(digits_mlp, platform):
    """weight_bits rounds gain * weights into each layer to 2**bits - 1 levels; the
    rate-level forward pass through the network's own weights matches rate_output
    when float, and the report states the cost."""
    mlp, X_cal, X, y = digits_mlp
    kw = dict(calibration_data=X_cal, seed=0, neuron_type="LIF")
    float_model = popfit.convert(
        mlp, platform=popfit.get_platform(platform, weight_bits=None), **kw)
    from popfit.targets import apply_activation

    np.testing.assert_allclose(apply_activation("softmax", rate_forward(float_model, X)),
                               float_model.rate_output(X), atol=1e-9)
    model = popfit.convert(mlp, platform=popfit.get_platform(platform, weight_bits=6), **kw)
    layer = model.network.layers[0]
    (conn,) = [c for c in model.network.all_connections
               if getattr(c.post_obj, "ensemble", None) is layer.ensemble]
    w = conn.transform.init
    w = w.toarray() if scipy.sparse.issparse(w) else np.asarray(w)
    eff = layer.ensemble.gain[:, None] * w
    levels = eff / (np.abs(eff).max() / 63)
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-6)
    cost = model.quantization["cost"]
    assert cost["n_samples"] == 500
    assert 0 < cost["output_nrmse"] < 0.05
    again = quantization_cost(model, X)
    assert again["output_nrmse"] > 0 and again["class_changed"] <= 0.1
    # float_weights=True reads the weights convert kept before rounding
    np.testing.assert_allclose(rate_forward(model, X, float_weights=True),
                               rate_forward(float_model, X), atol=1e-9)
    text = model.report()
    assert "[[loihi]]" in text and "6-bit" in text and "rate-level output NRMSE" in text
    assert model.summary()["weight_bits"] == 6
    # spiking predictions in nengo still match the ANN (loihi: its emulator by default)
    assert model.score(X, y, presentation_time=0.05, simulator=nengo.Simulator) >= \
        mlp.score(X, y) - 0.1


def test_convert_loihi_network_structure_and_mapping(digits_mlp):
    mlp, X_cal, X, y = digits_mlp
    model = popfit.convert(mlp, calibration_data=X_cal, seed=0, neuron_type="LIF",
                           platform=popfit.get_platform("loihi", weight_bits=None))
    net = model.network
    layer = net.layers[0]
    for c in host_connections(net, layer.ensemble):
        assert not isinstance(c.transform, nengo.transforms.Sparse)
    assert model.summary()["platform"] == "loihi" and model.weight_bits is None
    m = chip_mapping(net)
    assert m["neurons"] == 64 and m["blocks"] == 1
    assert m["host_inputs"] == 16 and m["host_outputs"] == 10
    assert m["ensembles"][0]["input_axons"] == 32
    assert "64 neurons in 1 block(s)" in model.report()
    # 600 units of 4 neurons behind a Dense host input: 1,200 input axons (on/off
    # pairs) of 2,400 stored weights, 37 groups of 64 (576 bits each) and one of
    # 32 (8 * 32 + 10 -> 320 bits): 25,958,400 bits, 25 cores' synapse memory, so
    # nengo-loihi splits it into 25 blocks (not the 3 its 2,400 compartments need)
    with nengo.Network() as big:
        PopulationLayer(model.fits[0], 600, platform="loihi").input
    m = chip_mapping(big)
    assert m["blocks"] == 25 and m["builds"] is True
    assert m["ensembles"][0]["largest"]["compartments"] == 96
    assert model.score(X, y, presentation_time=0.05, simulator=nengo.Simulator) >= \
        mlp.score(X, y) - 0.1


@pytest.mark.skipif(HAS_NENGO_LOIHI, reason="nengo-loihi is installed")
def test_loihi_types_need_the_extra():
    with pytest.raises(ImportError, match=r"pip install 'popfit\[loihi\]'"):
        popfit.fit_activation("tanh", 3, neuron_type="LoihiLIF")
    import sys

    assert "nengo_loihi" not in sys.modules  # popfit never imported it


@pytest.mark.skipif(HAS_NENGO_LOIHI, reason="nengo-loihi is installed")
def test_loihi_platform_defaults_need_the_extra(digits_mlp):
    """platform="loihi" fits LoihiLIF and predicts on nengo-loihi's emulator by
    default: without the extra both say what to install."""
    mlp, X_cal, X, y = digits_mlp
    with pytest.raises(ImportError, match=r"pip install 'popfit\[loihi\]'"):
        popfit.fit_activation("tanh", 3, platform="loihi")
    model = popfit.convert(mlp, platform="loihi", neuron_type="LIF", n_neurons=1, seed=0,
                           search=popfit.SearchOptions.quick())
    with pytest.raises(ImportError, match=r"the 'loihi' platform's simulator needs nengo_loihi, "
                       r"which is not installed .*pip install 'popfit\[loihi\]'"):
        model.predict(X[:1], presentation_time=0.02)


