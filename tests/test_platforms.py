"""`popfit.platforms`: one argument selects where a network runs, everywhere.

`get_platform` resolves names and per-field overrides; a platform the user
registers drives `fit_activation`, `PopulationLayer` and `convert` (neuron
type, weight bits, host transforms) without any popfit code naming it. The
``"loihi"`` platform against nengo-loihi itself is in tests/loihi.
"""

import pickle
import subprocess
import sys
import warnings

import nengo
import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import popfit
import popfit.platforms
from popfit.exceptions import PopfitTypeError, PopfitValueError
from popfit.platforms import Platform, get_platform, register_platform

QUICK = popfit.SearchOptions.quick()


# ------------------------------------------------------------ resolution
def test_get_platform_resolves_names_platforms_and_none():
    assert get_platform() is get_platform(None) is get_platform("nengo")
    assert get_platform("nengo").weight_bits is None and get_platform("nengo").simulator is None
    loihi = get_platform("loihi")
    assert get_platform(loihi) is loihi
    assert (loihi.neuron_type, loihi.weight_bits, loihi.host_transforms) == \
        ("LoihiLIF", 8, ("Dense",))
    assert not loihi.sparse_host_transforms and get_platform("nengo").sparse_host_transforms
    assert {"nengo", "loihi", "nir", "snntorch"} <= set(popfit.platforms.registered_platforms())


def test_overrides_return_a_checked_copy():
    loihi = get_platform("loihi")
    floats = get_platform("loihi", weight_bits=None)
    assert floats.weight_bits is None and floats.name == "loihi"
    assert loihi.weight_bits == 8 and get_platform("loihi").weight_bits == 8  # unchanged
    assert get_platform("nengo", weight_bits=4) == get_platform("nengo").replace(weight_bits=4)
    with pytest.raises(PopfitValueError, match=r"^get_platform: Platform.weight_bits must be "
                                               r"an integer in \[2, 16\] \(got 1\)"):
        get_platform("nengo", weight_bits=1)
    with pytest.raises(PopfitTypeError, match=r"^get_platform: 'bits' is not a field of "
                                              r"Platform; the fields are"):
        get_platform("nengo", bits=8)
    with pytest.raises(PopfitValueError, match=r"host_transforms must be a non-empty subset"):
        get_platform("nengo", host_transforms=("Convolution",))


@pytest.mark.parametrize("bad, error, match", [
    ("spinnaker", PopfitValueError,
     r"platform must be a popfit.platforms.Platform or one of 'nengo', 'loihi', 'nir', "
     r"'snntorch'.* \(got 'spinnaker'\); register a new one with "
     r"popfit.platforms.register_platform"),
    (3, PopfitTypeError, r"platform must be a name or a popfit.platforms.Platform \(got 3 of "
                         r"type int\)"),
])
def test_bad_platforms_are_refused_by_every_entry_point(bad, error, match):
    with pytest.raises(error, match="^get_platform: " + match):
        get_platform(bad)
    with pytest.raises(error, match="^fit_activation: " + match):
        popfit.fit_activation("tanh", 2, platform=bad)
    fit = popfit.fit_activation("tanh", 2, search=QUICK, seed=0)
    with nengo.Network(), pytest.raises(error, match="^PopulationLayer: " + match):
        popfit.PopulationLayer(fit, 2, platform=bad)
    with pytest.raises(PopfitTypeError, match="^register_platform: platform must be a "
                                              "popfit.platforms.Platform"):
        register_platform(bad)


def test_platforms_import_no_optional_package():
    """Resolving the loihi platform and reading its fields imports no nengo-loihi;
    only its neuron type or simulator would."""
    code = ("import sys, popfit\n"
            "p = popfit.get_platform('loihi', weight_bits=None)\n"
            "assert not p.sparse_host_transforms and p.step == 0.001\n"
            "assert 'nengo_loihi' not in sys.modules\n"
            "assert 'nir' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------ fit_activation
def test_fit_activation_fits_the_platforms_neuron_type():
    default = popfit.fit_activation("tanh", 2, search=QUICK, seed=0)
    assert default.neuron_type == nengo.LIF()  # "nengo": unchanged behaviour
    nir = popfit.fit_activation("tanh", 2, platform="nir", search=QUICK, seed=0)
    assert nir.neuron_type == get_platform("nir").fit_neuron_type() == nengo.LIF(tau_ref=0)
    given = popfit.fit_activation("tanh", 2, platform="nir", neuron_type="relu",
                                  search=QUICK, seed=0)
    assert isinstance(given.neuron_type, nengo.RectifiedLinear)  # explicit wins


# ------------------------------------------------- a platform popfit does not know
@pytest.fixture()
def tiny(monkeypatch):
    """A user platform: rectified-linear neurons, 3-bit weights, Dense host transforms
    (registered in a copy of the registry, restored after the test)."""
    monkeypatch.setattr(popfit.platforms, "_PLATFORMS", dict(popfit.platforms._PLATFORMS))
    return register_platform(get_platform("nengo").replace(
        name="tiny", description="a tiny chip", neuron_type="RectifiedLinear",
        weight_bits=3, host_transforms=("Dense",)))


@pytest.fixture(scope="module")
def digits_two_layers():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier(hidden_layer_sizes=(8, 6), activation="tanh", max_iter=200,
                            random_state=0).fit(X[:300], y[:300])
    return mlp, X[:300], X[300:304], y[300:304]


def _host_connections(net, ensemble):
    return [c for c in net.all_connections
            if (isinstance(c.pre_obj, nengo.Node) and getattr(c.post_obj, "ensemble", None)
                is ensemble) or (getattr(c.pre_obj, "ensemble", None) is ensemble
                                 and isinstance(c.post_obj, nengo.Node))]


def _matrix(conn):
    init = conn.transform.init
    return init.toarray() if scipy.sparse.issparse(init) else np.asarray(init, dtype=float)


def test_registered_platform_drives_fit_layer_and_convert(tiny, digits_two_layers):
    # fit_activation: the platform's neuron type
    fit = popfit.fit_activation("tanh", 3, platform="tiny", search=QUICK, seed=0)
    assert isinstance(fit.neuron_type, nengo.RectifiedLinear)
    # PopulationLayer: Dense host transforms, input scaled into [-1, 1]
    with nengo.Network() as net:
        layer = popfit.PopulationLayer(fit, 40, platform="tiny")
        nengo.Connection(nengo.Node(np.zeros(40)), layer.input)
        layer.connect_to(nengo.Node(size_in=40))
        assert layer.platform is tiny and layer.total_neurons == 120
    host = _host_connections(net, layer.ensemble)
    assert len(host) == 2
    assert all(isinstance(c.transform, nengo.transforms.Dense) for c in host)
    assert any(n.label == "input (scaled)" for n in net.all_nodes)
    # convert: the neuron type, the 3-bit weights, the Dense host transforms
    mlp, X_cal, X, y = digits_two_layers
    model = popfit.convert(mlp, platform="tiny", n_neurons=2, calibration_data=X_cal,
                           search=QUICK, seed=0)
    assert model.platform == tiny and model.weight_bits == 3
    assert all(isinstance(f.neuron_type, nengo.RectifiedLinear) for f in model.fits)
    s = model.summary()
    assert s["platform"] == "tiny" and s["weight_bits"] == 3
    assert "platform      : tiny, 3-bit weights" in model.report()
    layers = model.network.layers
    (conn,) = [c for c in model.network.all_connections
               if getattr(c.post_obj, "ensemble", None) is layers[1].ensemble]
    assert getattr(conn.pre_obj, "ensemble", None) is layers[0].ensemble  # neuron to neuron
    eff = layers[1].ensemble.gain[:, None] * _matrix(conn)
    levels = eff / (np.abs(eff).max() / (2 ** 3 - 1))
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-6)  # on a 3-bit grid
    assert len(np.unique(np.abs(np.round(levels)))) > 2
    for hidden in layers:
        for c in _host_connections(model.network, hidden.ensemble):
            assert not isinstance(c.transform, nengo.transforms.Sparse)
    # it runs in nengo's simulator (the platform names none) and pickles
    out = model.predict(X, presentation_time=0.05, progress_bar=False)
    assert out.shape == (4,)
    assert pickle.loads(pickle.dumps(model)).platform == tiny


def test_convert_records_the_platform_and_its_overrides(digits_two_layers):
    mlp, X_cal, X, y = digits_two_layers
    kw = dict(n_neurons=1, search=QUICK, seed=0)
    default = popfit.convert(mlp, **kw)
    assert default.platform is get_platform("nengo") and default.weight_bits is None
    assert default.summary()["platform"] == "nengo" and "[[loihi]]" not in default.report()
    rounded = popfit.convert(mlp, platform=get_platform("nengo", weight_bits=4), **kw)
    assert rounded.weight_bits == 4 and rounded.platform.weight_bits == 4
    assert "[[loihi]]" in rounded.report()  # what the chip would run: its mapping
    with pytest.raises(PopfitTypeError, match=r"^convert: platform must be a name"):
        popfit.convert(mlp, platform=object(), **kw)


def test_platform_dataclass_checks_its_fields():
    with pytest.raises(PopfitTypeError, match="Platform.name must be a non-empty string"):
        Platform(name="", description="x")
    with pytest.raises(PopfitValueError, match="Platform.export must be one of"):
        Platform(name="x", description="x", export="onnx")


# ------------------------------------------------- NIR consumers' conventions
def test_nir_consumer_platforms_say_what_they_accept():
    """Norse, Rockpool and sinabs: the nodes, read-outs and neuron each one runs
    (their importers in tests/nir_export/test_nir_consumers.py)."""
    norse, rockpool, sinabs = (get_platform(n) for n in ("norse", "rockpool", "sinabs"))
    assert all(p.export == "nir" and p.nir_dt == 1e-4 and p.readout == "affine"
               for p in (norse, rockpool, sinabs))
    # Norse resets on the crossing step (one spike per step): the half step it loses
    assert norse.fit_neuron_type() == nengo.LIF(tau_ref=5e-5)
    assert (norse.nir_r, norse.nir_input, norse.neuron_nodes, norse.readouts) == \
        ("one", "current", ("LIF",), ("affine",))
    # Rockpool and sinabs emit several spikes per step and subtract the threshold
    assert rockpool.fit_neuron_type() == nengo.LIF(tau_ref=0)
    assert (rockpool.nir_r, rockpool.nir_input, rockpool.nir_lif_node) == \
        ("tau/dt-1", "increment", "CubaLIF")
    assert isinstance(sinabs.fit_neuron_type(), nengo.SpikingRectifiedLinear)
    assert (sinabs.neuron_nodes, sinabs.nir_tau, sinabs.readouts) == \
        (("IF",), "steps", ("LI", "affine"))


@pytest.mark.parametrize("field, value", [
    ("nir_r", "tau/dt-1"), ("nir_input", "increment"), ("nir_tau", "steps")])
def test_stepped_nir_conventions_need_the_consumers_time_step(field, value):
    with pytest.raises(PopfitValueError, match=rf"^get_platform: Platform {field}={value!r} "
                                               r"describe a consumer that steps .* "
                                               r"Platform.nir_dt must be set \(got None\)"):
        get_platform("nir", **{field: value})
    with pytest.raises(PopfitValueError, match=r"Platform.nir_lif_node must be one of 'LIF', "
                                               r"'CubaLIF' \(got 'IF'\)"):
        get_platform("nir", nir_lif_node="IF")


def _graph(platform, neuron_type, n_layers=2):
    pytest.importorskip("nir")
    fit = popfit.fit_activation("tanh", 2, neuron_type=neuron_type, search=QUICK, seed=0)
    layers = [popfit.PopulationLayer(fit, 2) for _ in range(n_layers)]
    return fit, popfit.to_nir(layers, platform=platform)


def test_to_nir_writes_each_consumers_conventions():
    """The same two-layer chain for NIR, Norse, Rockpool: r, node types and weights."""
    fit, spec = _graph("nir", nengo.LIF(tau_ref=0))
    tau, dt = fit.neuron_type.tau_rc, 1e-4
    _, norse = _graph("norse", nengo.LIF(tau_ref=0))
    _, rockpool = _graph("rockpool", nengo.LIF(tau_ref=0))
    assert type(norse.nodes["neurons_0"]).__name__ == "LIF"
    assert np.all(norse.nodes["neurons_0"].r == 1)
    # Norse: NIR's currents into neurons, spikes of area dt into the next layer
    np.testing.assert_allclose(norse.nodes["affine_0"].weight, spec.nodes["affine_0"].weight)
    np.testing.assert_allclose(norse.nodes["affine_1"].weight,
                               spec.nodes["affine_1"].weight / dt)
    # Rockpool: no LIF node; r = tau/dt - 1 (its dt = tau / (1 + r)); per-step increments
    first = rockpool.nodes["neurons_0"]
    assert type(first).__name__ == "CubaLIF"
    np.testing.assert_allclose(first.tau_mem / (1 + first.r), dt)
    np.testing.assert_allclose(first.tau_syn, dt)
    a, b = np.exp(-dt / tau), np.exp(-1.0)
    np.testing.assert_allclose(rockpool.nodes["affine_0"].weight,
                               spec.nodes["affine_0"].weight * (1 - a) * (1 - b) / b)
    b1 = np.exp(-dt / rockpool.nodes["neurons_1"].tau_syn[0])
    np.testing.assert_allclose(rockpool.nodes["affine_1"].weight,
                               spec.nodes["affine_1"].weight * (1 - a) * (1 - b1) / b1 / dt)


def test_to_nir_writes_sinabs_if_layers_in_steps():
    fit, spec = _graph("nir", nengo.SpikingRectifiedLinear())
    _, graph = _graph("sinabs", nengo.SpikingRectifiedLinear())
    dt, synapse = 1e-4, popfit.nir.DEFAULT_CONNECTION_SYNAPSE
    assert [type(graph.nodes[n]).__name__ for n in ("neurons_0", "synapse_1", "neurons_1")] \
        == ["IF", "LI", "IF"]
    np.testing.assert_allclose(graph.nodes["synapse_1"].tau, synapse / dt)  # steps
    assert np.all(graph.nodes["synapse_1"].r == 1)  # sinabs refuses any other r
    np.testing.assert_allclose(graph.nodes["affine_0"].weight, spec.nodes["affine_0"].weight * dt)
    a = np.exp(-dt / synapse)  # the LI's v <- a v + x has gain 1 / (1 - a)
    np.testing.assert_allclose(graph.nodes["affine_1"].weight,
                               spec.nodes["affine_1"].weight * (1 - a))


@pytest.mark.parametrize("platform, neuron_type, match", [
    ("sinabs", nengo.LIF(tau_ref=0), r"which is NIR's LIF node, and platform 'sinabs' runs "
                                     r"only the neuron nodes 'IF'"),
    ("rockpool", nengo.SpikingRectifiedLinear(), r"which is NIR's IF node, and platform "
                                                 r"'rockpool' runs only the neuron nodes 'LIF'"),
    ("norse", nengo.LIF(), r"tau_ref = 0.002 s, which platform 'norse' does not run"),
])
def test_to_nir_refuses_fits_a_consumer_does_not_run(platform, neuron_type, match):
    pytest.importorskip("nir")
    fit = popfit.fit_activation("tanh", 2, neuron_type=neuron_type, search=QUICK, seed=0)
    with pytest.raises(PopfitValueError, match="^to_nir: layer 0's fit uses " + ".*" + match):
        popfit.to_nir(popfit.PopulationLayer(fit, 2), platform=platform)


# ------------------------------------------------- chip limits of a NIR graph
def test_check_chip_limits_names_the_limit_the_excess_and_the_fix():
    """Against Rockpool's own Xylo rules: tests/nir_export/test_nir_chips.py."""
    pytest.importorskip("nir")
    from popfit.nir import check_chip_limits

    fit = popfit.fit_activation("tanh", 4, platform="nir", search=QUICK, seed=0)
    graph = popfit.to_nir([popfit.PopulationLayer(fit, 20), popfit.PopulationLayer(fit, 3)],
                          transforms=[np.ones((3, 20))])
    limits = dict(max_inputs=16, max_neurons=80, max_outputs=8)
    problems = {p["limit"]: p for p in check_chip_limits(graph, limits)}
    assert problems["input channels"] == dict(
        limit="input channels", allowed=16, needed=20, excess=4,
        fix=problems["input channels"]["fix"])
    assert problems["neurons on chip"]["needed"] == 92
    assert "convert with n_neurons=3 per unit (23 units x 3 = 69 neurons)" in \
        problems["neurons on chip"]["fix"]
    assert "output channels" not in problems
    assert check_chip_limits(graph, dict(max_inputs=20, max_neurons=92, max_outputs=3),
                             spiking_outputs=False) == []
    with pytest.raises(PopfitValueError, match=r"^check_chip_limits: chip must be one of "
                                               r"'xylo-audio2', .* \(got 'speck'\)"):
        check_chip_limits(graph, "speck")
    with pytest.raises(PopfitValueError, match=r"chip limits must give max_outputs"):
        check_chip_limits(graph, dict(max_inputs=1, max_neurons=1))
