"""Property-based tests (issue 8): for random valid arguments, every fit is sound.

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
from hypothesis import HealthCheck, given, settings
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
