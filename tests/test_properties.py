"""Property-based tests: for random valid arguments, every fit is sound.

For random targets (named curves and module-level callables), off-centre and
narrow domains, every supported neuron type, N = 1..8 and max rates of
10-1000 Hz (below what the neuron type can reach):

- outputs are finite and no neuron exceeds ``max_rate`` on a 20,001-point grid;
- ``fit.predict`` equals nengo's own rate simulation of ``fit.network(spiking=False)``;
- save/load round-trips the parameters bit-identically, and a loaded fit
  saves again to the same file;
- pickling round-trips;
- the same seed gives the same fit.

The examples are derandomized (the same ones on every run, so CI is
reproducible) and few enough to keep this file well under two minutes.
"""

import json
import pickle
import warnings

import nengo
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import popfit


def bump(x):
    return np.exp(-x**2)


def cubic(x):
    return 0.1 * x**3 - x


def wave(x):
    return np.sin(2.0 * x) + 0.3 * x


TARGETS = ["tanh", "sigmoid", "linear", "relu", "softplus", bump, cubic, wave]
NEURON_TYPES = [nengo.LIF(), nengo.LIFRate(), nengo.LIF(tau_rc=0.05, tau_ref=0.001),
                nengo.RectifiedLinear(), nengo.SpikingRectifiedLinear()]

SETTINGS = settings(max_examples=14, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def fit_arguments(draw):
    target = draw(st.sampled_from(TARGETS))
    neuron_type = draw(st.sampled_from(NEURON_TYPES))
    centre = draw(st.floats(-8.0, 8.0))
    width = draw(st.floats(0.05, 12.0))
    limit = 1000.0
    if getattr(neuron_type, "tau_ref", 0) > 0:
        limit = min(limit, 0.9 / neuron_type.tau_ref)
    return dict(
        target=target,
        n_neurons=draw(st.integers(1, 8)),
        neuron_type=neuron_type,
        domain=(centre - width / 2, centre + width / 2),
        max_rate=draw(st.floats(10.0, limit)),
        synapse=draw(st.one_of(st.none(), st.floats(0.002, 0.05))),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def _fit(args):
    with warnings.catch_warnings():
        # a fit that stops short warns (success=False); these tests check
        # soundness, which must hold for such fits too
        warnings.simplefilter("ignore", RuntimeWarning)
        return popfit.fit_activation(**args, search=popfit.SearchOptions.quick())


def _nengo_rate_output(fit, x):
    """Decoded output of ``fit.network(spiking=False)`` run by nengo.Simulator, one
    input per time step."""
    with nengo.Network() as net:
        stim = nengo.Node(nengo.processes.PresentInput(x[:, None], presentation_time=0.001))
        pop = fit.network(spiking=False)
        nengo.Connection(stim, pop.input, synapse=None)
        probe = nengo.Probe(pop.output, synapse=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nengo's informational max_rates warnings
        sim = nengo.Simulator(net, dt=0.001, progress_bar=False)
    with sim:
        sim.run_steps(len(x))
    return sim.data[probe][:, 0]


@SETTINGS
@given(fit_arguments())
def test_fit_is_sound_and_round_trips(tmp_path_factory, args):
    fit = _fit(args)
    lo, hi = fit.domain
    x = np.linspace(lo, hi, 20001)
    rates = fit.rates(x)
    for name in ("gain", "bias", "decoders", "max_rates", "intercepts"):
        assert np.all(np.isfinite(getattr(fit, name))), name
    assert np.all(fit.gain > 0)
    assert np.isfinite(fit.nrmse) and np.isfinite(fit.max_error)
    assert np.all(np.isfinite(rates)) and np.all(np.isfinite(fit.predict(x)))
    assert rates.max() <= args["max_rate"] * (1 + 1e-9)

    # nengo's own rate simulation of the exported network
    xs = np.linspace(lo, hi, 101)
    expected = fit.predict(xs)
    scale = max(float(np.ptp(expected)), float(np.abs(expected).max()), 1e-12)
    np.testing.assert_allclose(_nengo_rate_output(fit, xs), expected, rtol=0,
                               atol=1e-9 * scale)

    # JSON round trip: bit-identical parameters; the loaded fit saves again
    # to the same file (for callables, after the first load tabulates the target)
    folder = tmp_path_factory.mktemp("fit")
    fit.save(folder / "a.json")
    back = popfit.load_fit(folder / "a.json")
    for name in ("gain", "bias", "encoders", "decoders"):
        np.testing.assert_array_equal(getattr(back, name), getattr(fit, name))
    assert back.domain == fit.domain and back.max_rate == fit.max_rate
    assert back.synapse == fit.synapse and back.seed == fit.seed
    back.save(folder / "b.json")
    popfit.load_fit(folder / "b.json").save(folder / "c.json")
    if isinstance(args["target"], str):
        assert (folder / "b.json").read_text() == (folder / "a.json").read_text()
    assert (folder / "c.json").read_text() == (folder / "b.json").read_text()
    assert json.loads((folder / "a.json").read_text())["format"] == "popfit.PopulationFit"

    # pickling round-trips (joblib and multiprocessing users need it)
    clone = pickle.loads(pickle.dumps(fit))
    for name in ("gain", "bias", "encoders", "decoders"):
        np.testing.assert_array_equal(getattr(clone, name), getattr(fit, name))
    np.testing.assert_array_equal(clone.predict(xs), expected)


@settings(max_examples=5, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(fit_arguments())
def test_same_seed_same_fit(args):
    a, b = _fit(args), _fit(args)
    for name in ("gain", "bias", "encoders", "decoders"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.nrmse == b.nrmse


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t if isinstance(t, str) else t.__name__)
def test_every_target_pickles(target):
    domain = None if isinstance(target, str) else (-2.0, 2.0)
    fit = _fit(dict(target=target, n_neurons=2, domain=domain, synapse=None, seed=0))
    clone = pickle.loads(pickle.dumps(fit))
    x = np.linspace(*fit.domain, 11)
    np.testing.assert_array_equal(clone.target(x), fit.target(x))
    np.testing.assert_array_equal(clone.predict(x), fit.predict(x))


# to_nir transforms
# For random finite real transforms of the right shape, in every form connect_to
# takes (array, nested list, scipy sparse, nengo.Dense, nengo.Sparse), to_nir
# exports the weights connect_to wires into nengo (read from the nengo
# connection, times the post gain) and the graph round-trips through nir.write /
# nir.read; non-finite, complex, wrongly shaped or non-numeric transforms are
# refused with a popfit error that names transforms[k].
import functools  # noqa: E402
import io  # noqa: E402

import scipy.sparse  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from popfit.exceptions import PopfitTypeError, PopfitValueError  # noqa: E402

NIR_SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                        suppress_health_check=[HealthCheck.too_slow])
TRANSFORM_FORMS = ["array", "list", "csr", "nengo.Dense", "nengo.Sparse"]


@functools.lru_cache(maxsize=None)
def _nir_fit():
    # NIR's LIF has no refractory period: to_nir exports only tau_ref = 0 fits
    return popfit.fit_activation("tanh", 2, neuron_type=nengo.LIF(tau_ref=0),
                                 search=popfit.SearchOptions.quick(), seed=0)


def _layers(n_pre, n_post):
    with warnings.catch_warnings():  # tau_ref = 0 < dt: nengo's spiking LIF warning
        warnings.simplefilter("ignore")
        return (popfit.PopulationLayer(_nir_fit(), n_pre, label="pre"),
                popfit.PopulationLayer(_nir_fit(), n_post, label="post"))


def _as(form, t):
    if form == "list":
        return t.tolist()
    if form == "csr":
        return scipy.sparse.csr_matrix(t)
    if form == "nengo.Dense":
        return nengo.Dense(t.shape, init=t)
    if form == "nengo.Sparse":
        return nengo.transforms.Sparse(t.shape, init=scipy.sparse.csr_matrix(t))
    return t


def _wired_weights(pre, post, transform):
    """``gain_post * W`` of the nengo connection connect_to makes (what nengo runs)."""
    with nengo.Network():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            conn = pre.connect_to(post, transform=transform)
    t = conn.transform
    w = t.init.toarray() if isinstance(t, nengo.transforms.Sparse) else np.asarray(t.init)
    return post.ensemble.gain[:, None] * w


@st.composite
def shapes(draw):
    return draw(st.integers(1, 4)), draw(st.integers(1, 4))  # n_pre, n_post units


@st.composite
def finite_transforms(draw):
    n_pre, n_post = draw(shapes())
    t = draw(hnp.arrays(float, (n_post, n_pre),
                        elements=st.floats(-1e3, 1e3, allow_subnormal=False)))
    return n_pre, n_post, t, draw(st.sampled_from(TRANSFORM_FORMS))


@NIR_SETTINGS
@given(finite_transforms())
def test_to_nir_exports_finite_transforms_as_connect_to_wires_them(case):
    nir = pytest.importorskip("nir")
    n_pre, n_post, t, form = case
    pre, post = _layers(n_pre, n_post)
    graph = popfit.to_nir([pre, post], transforms=[_as(form, t)])
    weight = graph.nodes["affine_1"].weight
    assert weight.shape == (post.total_neurons, pre.total_neurons) and weight.dtype == float
    np.testing.assert_allclose(weight, _wired_weights(pre, post, _as(form, t)),
                               rtol=1e-12, atol=1e-300)
    buf = io.BytesIO()
    nir.write(buf, graph)
    buf.seek(0)
    assert popfit.nir.graphs_equal(nir.read(buf), graph)


@st.composite
def bad_transforms(draw, kind):
    """``(transform, n_pre, n_post, error, match)`` for a transform to_nir must refuse."""
    n_pre, n_post = draw(shapes())
    t = draw(hnp.arrays(float, (n_post, n_pre), elements=st.floats(-10, 10)))
    i, j = draw(st.integers(0, n_post - 1)), draw(st.integers(0, n_pre - 1))
    if kind == "non-finite":
        t[i, j] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        form = draw(st.sampled_from(["array", "list", "csr", "nengo.Dense"]))
        return (_as(form, t), n_pre, n_post, PopfitValueError,
                r"to_nir: transforms\[0\].* must be a finite array.*non-finite")
    if kind == "complex":
        t = t.astype(complex)
        t[i, j] += 1j * draw(st.floats(1e-6, 10))
        form = draw(st.sampled_from(["array", "list", "csr"]))
        return (_as(form, t), n_pre, n_post, PopfitTypeError,
                r"to_nir: transforms\[0\].* must be an array of real numbers .*complex")
    if kind == "shape":
        rows, cols = draw(shapes())
        if (cols, rows) == (n_pre, n_post):
            rows += 1
        t = np.ones((rows, cols))
        return (_as(draw(st.sampled_from(TRANSFORM_FORMS)), t), n_pre, n_post,
                PopfitValueError, rf"to_nir: transforms\[0\] must have shape "
                                  rf"\({n_post}, {n_pre}\).*got shape \({rows}, {cols}\)")
    bad = draw(st.sampled_from(["1.0", "abc", b"\x00", {"a": 1}, {1.0}, object(),
                                [["a"] * n_pre] * n_post, [[1.0], [1.0, 2.0]],
                                nengo.Convolution(1, (3, 1), kernel_size=(1,),
                                                  strides=(1,))]))
    return (bad, n_pre, n_post, PopfitTypeError,
            r"to_nir: transforms\[0\] must be an array")


@pytest.mark.parametrize("kind", ["non-finite", "complex", "shape", "type"])
@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_to_nir_refuses_bad_transforms_naming_them(kind, data):
    pytest.importorskip("nir")
    transform, n_pre, n_post, error, match = data.draw(bad_transforms(kind))
    pre, post = _layers(n_pre, n_post)
    with pytest.raises(error, match=match):
        popfit.to_nir([pre, post], transforms=[transform])


@pytest.mark.parametrize("transforms", ["abc", np.eye(2), {"0": np.eye(2)}, 1.0])
def test_to_nir_transforms_must_be_a_list(transforms):
    pytest.importorskip("nir")
    with pytest.raises(PopfitTypeError, match=r"to_nir: transforms must be a list of 1 "
                                              r"matrices .*\(got \w+\)"):
        popfit.to_nir(list(_layers(2, 2)), transforms=transforms)


# fit files
# A saved fit file edited by hand (or corrupted) must either be refused with a
# FitFileError, or load to a fit that computes what the file says: nengo's rates
# of the file's gain, bias and encoders, never above the file's max_rate, decoded
# by the file's decoders. What loads saves again byte for byte.

@pytest.fixture(scope="module")
def saved_fits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fitfiles")
    fits = {
        "lif": _fit(dict(target="tanh", n_neurons=3, max_rate=300.0, synapse=0.005, seed=1)),
        "relu": _fit(dict(target="sigmoid", n_neurons=2, neuron_type="relu", max_rate=200.0,
                          synapse=None, seed=2)),
    }
    texts = {}
    for name, fit in fits.items():
        fit.save(folder / f"{name}.json")
        texts[name] = (folder / f"{name}.json").read_text()
    return texts


_TOP = ["format", "format_version", "target", "domain", "neuron_type", "gain", "bias",
        "encoders", "decoders", "max_rate", "synapse", "seed"]


@st.composite
def file_mutations(draw):
    """(kind, function mutating a fit file's dict in place)."""
    kind = draw(st.sampled_from(["gain", "bias", "max_rate", "encoders", "decoders",
                                 "domain", "duplicate"]))
    i = draw(st.integers(0, 1))
    factor = draw(st.floats(0.25, 4.0))
    value = draw(st.floats(-1e308, 1e308) | st.floats(-10.0, 10.0))
    if kind == "gain":
        everyone = draw(st.booleans())

        def mutate(d):
            for j in range(len(d["gain"])) if everyone else [i]:
                d["gain"][j] *= factor
    elif kind == "bias":
        def mutate(d):
            d["bias"][i] = value
    elif kind == "max_rate":
        def mutate(d):
            d["max_rate"] *= factor
    elif kind == "encoders":
        def mutate(d):
            d["encoders"][i] = -d["encoders"][i]
    elif kind == "decoders":
        def mutate(d):
            d["decoders"][i] = value
    elif kind == "domain":
        shift = draw(st.floats(-2.0, 2.0))

        def mutate(d):
            d["domain"] = [d["domain"][0] * factor + shift, d["domain"][1] * factor + shift]
    else:
        key = draw(st.sampled_from(_TOP))

        def mutate(d):
            d[key] = ["duplicate", d[key]]  # marked for _dump below
    return kind, mutate


def _dump(d):
    """A fit file's text; a value ``["duplicate", v]`` becomes the key twice (v, then v)."""
    items = []
    for k, v in d.items():
        if isinstance(v, list) and v[:1] == ["duplicate"]:
            items += [f"{json.dumps(k)}: {json.dumps(v[1])}"] * 2
        else:
            items.append(f"{json.dumps(k)}: {json.dumps(v)}")
    return "{" + ", ".join(items) + "}"


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(["lif", "relu"]), mutation=file_mutations())
def test_an_edited_fit_file_is_refused_or_computes_what_it_says(saved_fits, tmp_path, which,
                                                                 mutation):
    kind, mutate = mutation
    d = json.loads(saved_fits[which])
    mutate(d)
    path = tmp_path / "edited.json"
    path.write_text(_dump(d))
    try:
        fit = popfit.load_fit(path)
    except popfit.FitFileError:
        event(f"{kind}: refused")
        return
    event(f"{kind}: loaded")
    assert kind != "duplicate", "a key given twice must be refused"
    # the reference: nengo's own rates of the file's numbers
    params = dict(d["neuron_type"])
    neuron_type = getattr(nengo, params.pop("type"))(**params)
    gain, bias, encoders, decoders = (np.array(d[k], dtype=float)
                                      for k in ("gain", "bias", "encoders", "decoders"))
    x = np.linspace(*d["domain"], 2001)
    rates = neuron_type.rates(x[:, None] * encoders, gain, bias)
    highest = float(rates.max())
    assert highest <= d["max_rate"] * (1 + 1e-9), f"{highest} Hz > max_rate {d['max_rate']}"
    np.testing.assert_array_equal(fit.rates(x), rates)
    np.testing.assert_allclose(fit.predict(x), rates @ decoders, rtol=1e-12,
                               atol=1e-12 * np.abs(rates @ decoders).max())
    assert fit.max_rate == d["max_rate"] and list(fit.domain) == d["domain"]
    fit.save(tmp_path / "a.json")
    popfit.load_fit(tmp_path / "a.json").save(tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


@pytest.mark.parametrize("which", ["lif", "relu"])
def test_save_load_save_is_byte_identical(saved_fits, tmp_path, which):
    (tmp_path / "a.json").write_text(saved_fits[which])
    popfit.load_fit(tmp_path / "a.json").save(tmp_path / "b.json")
    assert (tmp_path / "b.json").read_text() == saved_fits[which]


# calibration data
# `convert` given generated calibration data (random shapes, dtypes, NaN/inf
# placements, lists or arrays, 0..4 samples) either converts, and then the
# rate output is finite, or raises a popfit error: never a raw exception.
_TINY = []


def _tiny_mlp():
    """A tiny trained MLP (2 inputs, 2 tanh units), built once."""
    from sklearn.neural_network import MLPRegressor

    if _TINY:
        return _TINY[0]
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(40, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _TINY.append(MLPRegressor(hidden_layer_sizes=(2,), activation="tanh", max_iter=30,
                                  random_state=0).fit(X, X[:, 0] * X[:, 1]))
    return _TINY[0]


_SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1e308, -1e-308, 3.5])


@st.composite
def calibration_arrays(draw):
    rows = draw(st.integers(0, 4))
    cols = draw(st.sampled_from([2, 2, 2, 2, 2, 1, 3, 0]))
    dtype = draw(st.sampled_from(["float64", "float32", "int64", "int8", "bool", "object",
                                  "complex"]))
    n = rows * cols
    values = draw(st.lists(st.floats(-1e3, 1e3), min_size=n, max_size=n))
    if n and draw(st.booleans()):  # one special value (NaN, inf, huge, ...) somewhere
        values[draw(st.integers(0, n - 1))] = draw(_SPECIAL)
    if dtype in ("int64", "int8"):
        values = [int(v) % 100 if np.isfinite(v) else 0 for v in values]
    elif dtype == "object" and values and draw(st.booleans()):
        values[draw(st.integers(0, n - 1))] = draw(st.sampled_from([None, "1.5", 2, True]))
    array = np.array(values, dtype=object if dtype == "object" else None)
    if dtype != "object":
        with np.errstate(invalid="ignore", over="ignore"):
            array = array.astype(dtype)
    shape = draw(st.sampled_from(["2d"] * 6 + ["1d", "3d", "scalar", "ragged"]))
    if shape == "scalar":
        return array.ravel()[0] if n else draw(st.sampled_from([0, 1.5, np.float32(2)]))
    if shape == "ragged":  # a list whose last row is one value short
        rows = array.reshape(rows, cols).tolist()
        return rows[:-1] + [rows[-1][:-1]] if n else [[1.0, 2.0], [3.0]]
    array = array.reshape((rows, cols) if shape == "2d" else (n,) if shape == "1d"
                          else (rows, cols, 1))
    return array.tolist() if draw(st.booleans()) else array


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(calibration_arrays())
def test_calibration_data_converts_or_raises_a_popfit_error(data):
    mlp = _tiny_mlp()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            conv = popfit.convert(mlp, calibration_data=data, n_neurons=1,
                                  search=popfit.SearchOptions.quick(), seed=0)
    except popfit.PopfitError:
        return
    X = np.asarray(data, dtype=float)
    assert np.all(np.isfinite(conv.rate_output(X)))
    assert all(np.isfinite(layer.domain).all() for layer in conv.layers)
