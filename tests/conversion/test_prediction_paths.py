"""Every neuron type, platform and network option of `popfit.convert` through every path.

A converted model gives one answer whichever way it is asked: `predict`,
`predict_proba`, `score`, `decoded_output`, `rate_output`, the sequential
reference path, a pickled copy and (NIR platforms) `popfit.to_nir` all run
the same network. The nengo-loihi neuron types and the ``"loihi"`` platform
run the same matrix in tests/loihi/test_batched_predict.py.

The property tests draw `predict` options: any ``batch_size`` and ``n_jobs``
give identical outputs, and bad values raise popfit's errors, never raw ones.
"""

import json
import pickle
import warnings

import joblib
import nengo
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import popfit
from popfit.exceptions import PopfitError

QUICK = popfit.SearchOptions.quick()
PT = 0.03  # s; short: the matrix checks the plumbing, test_convert.py the accuracy

pytestmark = [
    pytest.mark.filterwarnings("ignore:presentation_time .* is below:UserWarning"),
    # LIF(tau_ref < dt) spiking at dt = 1 ms is warned about (and runs)
    pytest.mark.filterwarnings("ignore:.*has tau_ref = .* s < dt:UserWarning"),
    # nengo's own, when a Node without output is unpickled
    pytest.mark.filterwarnings("ignore:'Node.size_out' is being overwritten:UserWarning"),
]


@pytest.fixture(scope="module")
def digits_small():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", max_iter=200,
                            random_state=0).fit(X[:300], y[:300])
    return mlp, X[:300], X[300:303], y[300:303]


NEURON_TYPES = {"LIF": "LIF", "LIFRate": "LIFRate", "relu": "relu",
                "SpikingRectifiedLinear": "SpikingRectifiedLinear",
                "LIF(tau_ref=0)": nengo.LIF(tau_ref=0)}
#: Platforms whose networks run in nengo.Simulator (the loihi platform's recipe,
#: Dense host transforms and 8-bit weights, with nengo's simulator as its own).
OPTIONS = {"nengo": {}, "refit=False": {"refit": False},
           "nengo+Dense": {"platform": popfit.get_platform("nengo", host_transforms=("Dense",))},
           "nengo+weight_bits=4": {"platform": popfit.get_platform("nengo", weight_bits=4)},
           "loihi-on-nengo": {"platform": popfit.get_platform(
               "loihi", simulator=None, simulator_kwargs=())}}


def check_all_paths(model, X, y, copy_rtol=0.0):
    """Every public path of a classifier ``model`` on samples ``X`` (labels ``y``).

    ``copy_rtol``: how far a pickled copy's sequential outputs may differ (a
    model whose output node sums several connections: nengo may add them in
    another order after pickling, a difference of 1 ulp).
    """
    kw = dict(presentation_time=PT, progress_bar=False)
    decoded = model.decoded_output(X, **kw)
    assert decoded.shape == (len(X), 10) and np.all(np.isfinite(decoded))
    out = model._outputs(decoded)
    np.testing.assert_array_equal(model.predict(X, **kw), model.classes_[np.argmax(out, 1)])
    np.testing.assert_array_equal(model.predict_proba(X, **kw), out)
    assert model.score(X, y, **kw) == np.mean(model.classes_[np.argmax(out, 1)] == y)
    seq = model.decoded_output(X, sequential=True, **kw)
    assert seq.shape == decoded.shape and np.all(np.isfinite(seq))
    assert model.predict(X, sequential=True, **kw).shape == (len(X),)
    rate = model.rate_output(X)
    assert rate.shape == (len(X), 10) and np.all(np.isfinite(rate))
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy.decoded_output(X, **kw), decoded)
    np.testing.assert_allclose(copy.decoded_output(X, sequential=True, **kw), seq,
                               rtol=copy_rtol, atol=0)
    np.testing.assert_array_equal(copy.rate_output(X), rate)
    json.dumps(model.summary())
    assert "[[layers]]" in model.report()
    return decoded


@pytest.mark.parametrize("options", list(OPTIONS.values()), ids=list(OPTIONS))
@pytest.mark.parametrize("neuron_type", list(NEURON_TYPES.values()), ids=list(NEURON_TYPES))
def test_every_neuron_type_and_option_through_every_path(digits_small, neuron_type, options):
    mlp, X_cal, X, y = digits_small
    model = popfit.convert(mlp, neuron_type=neuron_type, n_neurons=2, calibration_data=X_cal,
                           search=QUICK, seed=0, **options)
    check_all_paths(model, X, y)


@pytest.fixture(scope="module")
def keras_graphs(digits_small):
    """A small Keras CNN (convolution, pooling, flatten) and a residual (Add) model on
    8x8 digits, trained briefly: the graph paths next to the dense chain."""
    keras = pytest.importorskip("keras")
    X = load_digits().data[:300].reshape(-1, 8, 8, 1) / 16.0
    L = keras.layers
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    h = L.Conv2D(2, 3, strides=2, activation="tanh")(inp)
    h = L.Flatten()(L.AveragePooling2D(2)(h))
    cnn = keras.Model(inp, L.Dense(10, activation="softmax")(h))
    inp = keras.Input((8, 8, 1))
    a = L.Dense(6, activation="tanh")(L.Flatten()(inp))
    b = L.Dense(6, activation="tanh")(a)
    residual = keras.Model(inp, L.Dense(10, activation="softmax")(L.Add()([a, b])))
    for model in (cnn, residual):
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(X, digits_small[0].predict(X.reshape(300, -1)), epochs=3, verbose=0)
    return cnn, residual, X


#: The CNN: every neuron type on the default platform, and every option with LIF (the
#: dense MLP above runs the full product; the graph code is the same for each pair).
CNN_CASES = {**{f"{nt}-nengo": (t, OPTIONS["nengo"]) for nt, t in NEURON_TYPES.items()},
             **{f"LIF-{o}": ("LIF", opt) for o, opt in OPTIONS.items() if o != "nengo"}}


@pytest.mark.parametrize("neuron_type, options", list(CNN_CASES.values()), ids=list(CNN_CASES))
def test_convolutional_model_through_every_path(keras_graphs, digits_small, neuron_type,
                                                options):
    cnn, _, X = keras_graphs
    model = popfit.convert(cnn, neuron_type=neuron_type, n_neurons=2, calibration_data=X[:100],
                           search=QUICK, seed=0, **options)
    assert model.spec.has_sparse
    check_all_paths(model, X[:3], digits_small[3])
    check_all_paths(model, X[:3].reshape(3, -1), digits_small[3])  # flattened samples


GRAPH_OPTIONS = {k: OPTIONS[k] for k in ("nengo", "nengo+Dense")}


@pytest.mark.parametrize("options", list(GRAPH_OPTIONS.values()), ids=list(GRAPH_OPTIONS))
@pytest.mark.parametrize("neuron_type", list(NEURON_TYPES.values()), ids=list(NEURON_TYPES))
def test_residual_model_through_every_path(keras_graphs, digits_small, neuron_type, options):
    _, residual, X = keras_graphs
    model = popfit.convert(residual, neuron_type=neuron_type, n_neurons=2,
                           calibration_data=X[:100], search=QUICK, seed=0, **options)
    assert not model.spec.is_chain
    check_all_paths(model, X[:3], digits_small[3], copy_rtol=1e-13)


@pytest.mark.parametrize("option", ["nengo+weight_bits=4", "loihi-on-nengo"])
def test_residual_model_with_rounded_weights_through_every_path(keras_graphs, digits_small,
                                                                option):
    _, residual, X = keras_graphs
    model = popfit.convert(residual, neuron_type="LIF", n_neurons=2, calibration_data=X[:100],
                           search=QUICK, seed=0, **OPTIONS[option])
    assert model.weight_bits is not None and model.refit_report is not None
    check_all_paths(model, X[:3], digits_small[3], copy_rtol=1e-13)


#: NIR platforms, with the neuron types they run (None: the platform's own).
NIR_CASES = {"nir": ("nir", None), "nir-relu": ("nir", "relu"),
             "snntorch": ("snntorch", None), "norse": ("norse", None),
             "rockpool": ("rockpool", None), "sinabs": ("sinabs", None)}


@pytest.mark.parametrize("platform, neuron_type", list(NIR_CASES.values()), ids=list(NIR_CASES))
def test_nir_platforms_through_every_path(digits_small, platform, neuron_type):
    """A model converted for a NIR platform predicts in nengo and exports for that
    platform by default (the model's platform, not to_nir's "nir")."""
    nir = pytest.importorskip("nir")
    mlp, X_cal, X, y = digits_small
    model = popfit.convert(mlp, platform=platform, neuron_type=neuron_type, n_neurons=2,
                           calibration_data=X_cal, search=QUICK, seed=0)
    assert model.platform.name == platform and model.summary()["platform"] == platform
    if neuron_type is None:
        assert model.neuron_type == popfit.get_platform(platform).fit_neuron_type()
    check_all_paths(model, X, y)
    graph = popfit.to_nir(model)
    assert isinstance(graph, nir.NIRGraph) and graph.metadata["platform"] == platform
    assert popfit.to_nir(pickle.loads(pickle.dumps(model))).metadata["platform"] == platform


@pytest.mark.parametrize("platform, neuron_type", list(NIR_CASES.values()), ids=list(NIR_CASES))
def test_convolutional_model_on_nir_platforms(keras_graphs, digits_small, platform, neuron_type):
    """The CNN for every NIR platform: every path, and a graph whose first Affine holds the
    convolution the network runs (dense, ``convolutions="affine"``; the platform's default
    writes Conv nodes where the consumer imports them: tests/nir_export)."""
    nir = pytest.importorskip("nir")
    cnn, _, X = keras_graphs
    model = popfit.convert(cnn, platform=platform, neuron_type=neuron_type, n_neurons=2,
                           calibration_data=X[:100], search=QUICK, seed=0)
    check_all_paths(model, X[:3], digits_small[3])
    graph = popfit.to_nir(model, convolutions="affine")
    assert isinstance(graph, nir.NIRGraph) and graph.metadata["platform"] == platform
    affine = [node for node in graph.nodes.values() if isinstance(node, nir.Affine)]
    assert affine[0].weight.shape == (model.network.layers[0].total_neurons, 64)


# ------------------------------------------------------------ property tests
@pytest.fixture(scope="module")
def small_model(digits_small):
    mlp, X_cal, _, _ = digits_small
    return popfit.convert(mlp, n_neurons=2, calibration_data=X_cal, search=QUICK, seed=3)


SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


@SETTINGS
@given(batch_size=st.one_of(st.none(), st.integers(1, 6)),
       n_jobs=st.sampled_from([None, 1, 2, -1]),
       steps=st.integers(2, 40))
def test_predict_identical_for_any_batching(small_model, digits_small, batch_size, n_jobs,
                                            steps):
    X = digits_small[1][:5]
    kw = dict(presentation_time=steps * 0.001, progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # short presentations
        ref = small_model.decoded_output(X, **kw)
        with joblib.parallel_config(backend="threading"):  # parallel, without process start-up
            out = small_model.decoded_output(X, batch_size=batch_size, n_jobs=n_jobs, **kw)
    np.testing.assert_array_equal(out, ref)


class NoRunSteps:
    """A class that is not a simulator (no ``run_steps``)."""

    def __init__(self, network, **kwargs):
        self.network = network


def returns_none(network, **kwargs):
    return None


ANY = st.one_of(st.text(max_size=3), st.just([1]), st.just({}), st.just(np.array([2])))
#: For each predict option, values it must refuse.
BAD = {
    "batch_size": st.one_of(ANY, st.floats(), st.integers(-3, 0), st.booleans()),
    "n_jobs": st.one_of(ANY, st.floats(), st.just(0), st.booleans()),
    "presentation_time": st.one_of(
        ANY, st.booleans(), st.just(None), st.integers(-3, 0),
        st.floats().filter(lambda v: not 0.0014 < v < 100.001)),
    "progress_bar": st.one_of(ANY, st.integers(), st.floats()),
    "sequential": st.one_of(ANY, st.integers(), st.floats(), st.just(None)),
    "simulator": st.one_of(ANY, st.integers(),
                           st.sampled_from([dict, NoRunSteps, returns_none])),
}


@SETTINGS
@given(option=st.sampled_from(sorted(BAD)).flatmap(
    lambda name: st.tuples(st.just(name), BAD[name])))
def test_bad_predict_options_raise_popfit_errors(small_model, digits_small, option):
    name, value = option
    X = digits_small[2][:2]
    kw = dict(presentation_time=0.02, progress_bar=False)
    kw[name] = value
    with pytest.raises(PopfitError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        small_model.predict(X, **kw)
    assert name in str(err.value)
