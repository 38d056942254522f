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
