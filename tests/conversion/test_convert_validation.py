"""popfit.convert and ConvertedModel: every bad input a clear
popfit error, edge cases that used to fail now work, and the conversion layout of
the conversion package's layout (one public present-and-read-out function).

Each test names the defect it covers; all of them failed on the code before the fix.
"""

import configparser
import pathlib
import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

import popfit
from popfit.conversion import present, read_model
from popfit.conversion.convert import round_up
from popfit.exceptions import ConversionError, PopfitTypeError, PopfitValueError

# these tests need *a* good fit, not the best: the quick search is ~2.4x cheaper
QUICK = popfit.SearchOptions.quick()

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(120, 2))
    return X, X[:, 0] * X[:, 1] + 0.5 * X[:, 0]


@pytest.fixture(scope="module")
def regressor(data):
    X, y = data
    return _fit(MLPRegressor(hidden_layer_sizes=(3,), activation="tanh", max_iter=200,
                             random_state=0), X, y)


@pytest.fixture(scope="module")
def converted(regressor):
    return popfit.convert(regressor, n_neurons=2, search=QUICK, seed=0)


@pytest.fixture(scope="module")
def binary(data):
    X, _ = data
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    mlp = _fit(MLPClassifier(hidden_layer_sizes=(6,), activation="tanh", max_iter=1000,
                             random_state=0), X, y)
    return mlp, popfit.convert(mlp, n_neurons=3, calibration_data=X, search=QUICK, seed=1)


def _with_weight(mlp, array, layer, value):
    """A copy of ``mlp`` whose ``array`` ("coefs_" / "intercepts_") has ``value`` in ``layer``."""
    mlp = pickle.loads(pickle.dumps(mlp))
    getattr(mlp, array)[layer].flat[0] = value
    return mlp


# ---------------------------------------------------------------- non-finite weights
@pytest.mark.parametrize("calibrated", [False, True])
def test_nan_or_inf_weights_name_the_layer_and_array(data, regressor, calibrated):
    """Defect: NaN/inf weights gave 'domain ends must be finite' (naming neither layer
    nor weights) with calibration data, and converted silently without it."""
    cal = data[0] if calibrated else None
    bad = _with_weight(regressor, "coefs_", 0, np.nan)
    with pytest.raises(ConversionError, match=r"^convert: MLPRegressor layer 0 \('coefs_\[0\]'\) "
                                              r"has 1 non-finite \(NaN or inf\) of 6 values in "
                                              r"its weights \(shape \(2, 3\)\)"):
        popfit.convert(bad, calibration_data=cal)
    bad = _with_weight(regressor, "intercepts_", 1, np.inf)
    with pytest.raises(ConversionError, match=r"layer 1 \('output \(coefs_\[1\]\)'\) has 1 "
                                              r"non-finite .* in its bias"):
        popfit.convert(bad, calibration_data=cal)


def test_nan_keras_kernel_names_the_layer():
    """Defect (Keras side of the same): the layer is named by its Keras name."""
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input(shape=(2,)),
                              keras.layers.Dense(3, activation="tanh", name="hid"),
                              keras.layers.Dense(1, name="out")])
    w, b = model.get_layer("hid").get_weights()
    w[1, 2] = -np.inf
    w[0, 0] = np.nan
    model.get_layer("hid").set_weights([w, b])
    with pytest.raises(ConversionError, match=r"Sequential layer 0 \('hid'\) has 2 non-finite"):
        popfit.convert(model)


def test_overflowing_calibration_names_the_layer(regressor, data):
    """Finite weights whose pre-activations overflow give a popfit error, not a NaN domain."""
    big = _with_weight(regressor, "coefs_", 0, 1e308)
    with pytest.raises(ConversionError, match=r"pre-activations of MLPRegressor layer 0 "
                                              r"\('coefs_\[0\]'\) over calibration_data overflow"):
        popfit.convert(big, calibration_data=data[0] + 10)


# ---------------------------------------------------------------- domain edge
def test_round_up_goes_outward():
    assert round_up(1.2345) == 1.24
    assert round_up(1.23) == 1.23
    assert round_up(9.9949) == 10.0
    assert round_up(0.0012341) == 0.00124
    rng = np.random.default_rng(0)
    for m in 10.0 ** rng.uniform(-6, 6, 2000):
        r = round_up(m)
        assert m <= r <= m * (1 + 1e-2 + 1e-12) and r == float(f"{r:.3g}")


@pytest.mark.parametrize("n_rows", [1, 10])
def test_preactivations_just_above_the_rounded_edge(data, n_rows):
    """Defect: one unit whose calibration pre-activations all equal 1.2345 (one row,
    or constant inputs) failed with 'eval_points must be non-empty': the domain
    edge was rounded to the nearest 3 digits, 1.23, below every point."""
    X, y = data
    mlp = _fit(MLPRegressor(hidden_layer_sizes=(1,), activation="tanh", max_iter=5,
                            random_state=0), X, y)
    mlp.coefs_[0][:] = 0.0
    mlp.intercepts_[0][:] = 1.2345
    cal = np.ones((n_rows, 2))  # constant inputs
    model = popfit.convert(mlp, n_neurons=2, calibration_data=cal, search=QUICK, seed=0)
    assert model.layers[0].domain == (-1.24, 1.24)
    assert model.layers[0].fraction_outside == 0.0
    # the fit is good where the unit's input actually is
    assert model.fits[0].predict(np.array([1.2345]))[0] == pytest.approx(np.tanh(1.2345),
                                                                          abs=0.02)


def test_constant_preactivations_of_several_units(data, regressor):
    """Constant inputs: every unit's pre-activation is a constant; the domain is
    rounded outward so all of them are fitted."""
    X, _ = data
    cal = np.full((5, 2), 0.3)
    z = cal @ regressor.coefs_[0] + regressor.intercepts_[0]
    model = popfit.convert(regressor, n_neurons=2, calibration_data=cal, search=QUICK, seed=0)
    lo, hi = model.layers[0].domain
    assert hi >= np.percentile(np.abs(z), 99) and hi >= 0.75  # floor: 1/4 of tanh's 3
    np.testing.assert_allclose(model.rate_output(cal[:1]).ravel(),
                               regressor.predict(cal[:1]), atol=0.05)


# ---------------------------------------------------------------- complex inputs
def test_complex_calibration_data_and_X_refused(data, regressor, converted):
    """Defect: complex calibration_data / X silently dropped the imaginary part."""
    X = data[0]
    with pytest.raises(PopfitValueError, match=r"^convert: calibration_data must be real "
                                              r"\(got a complex array of shape \(120, 2\)\)"):
        popfit.convert(regressor, calibration_data=X + 1j)
    with pytest.raises(PopfitValueError, match=r"ConvertedModel.predict: X must be real"):
        converted.predict(X[:2] + 0j)
    with pytest.raises(PopfitValueError, match=r"X must be real"):
        converted.rate_output(X[:2] * 1j)
    with pytest.raises(PopfitValueError, match=r"y must be real numbers"):
        converted.score(X[:2], np.array([1, 2]) + 1j)


# ---------------------------------------------------------------- seeds
def test_seed_above_2_32_refused(regressor, data):
    """Defect: seed=2**32 passed convert's check and failed inside numpy in predict."""
    with pytest.raises(PopfitValueError, match=r"^convert: seed must be an integer in "
                                               r"\[0, 4294967295\] \(got 4294967296\)"):
        popfit.convert(regressor, search=QUICK, seed=2**32)
    with pytest.raises(PopfitTypeError, match=r"seed must be an integer"):
        popfit.convert(regressor, search=QUICK, seed=1.5)


def test_largest_seed_predicts(regressor, data):
    model = popfit.convert(regressor, n_neurons=1, search=QUICK, seed=2**32 - 1)
    out = model.predict(data[0][:2], presentation_time=0.03, progress_bar=False)
    assert out.shape == (2,) and np.all(np.isfinite(out))


# ---------------------------------------------------------------- Keras subclass
def test_subclassed_keras_model_is_a_conversion_error():
    """Defect: a built, subclassed Keras model gave a raw AttributeError."""
    keras = pytest.importorskip("keras")

    class Custom(keras.Model):
        def __init__(self):
            super().__init__(name="custom")
            self.hidden = keras.layers.Dense(4, activation="tanh")
            self.out = keras.layers.Dense(1)

        def call(self, x):
            return self.out(self.hidden(x))

    model = Custom()
    model(np.zeros((2, 3), dtype="float32"))  # built
    assert model.built
    with pytest.raises(ConversionError, match=r"'custom' is a subclassed model \(Custom "
                                              r"defines its own call\(\)\).*keras.Sequential"):
        popfit.convert(model)


# ---------------------------------------------------------------- score / predict arguments
def test_score_checks_y_before_simulating(binary, converted, data):
    """Defect: y of shape (n, 2) on a (single-label) classifier, or a scalar y, gave raw
    numpy errors (after simulating the whole batch)."""
    X = data[0]
    _, clf = binary
    with pytest.raises(PopfitValueError, match=r"^ConvertedModel.score: y must have shape "
                                               r"\(4,\) of class labels for this classifier "
                                               r"\(got shape \(4, 2\)\)"):
        clf.score(X[:4], np.zeros((4, 2)))
    with pytest.raises(PopfitValueError, match=r"y must be an array of shape \(4,\) of class "
                                               r"labels \(got the scalar 'yes'\)"):
        clf.score(X[:4], "yes")
    with pytest.raises(PopfitValueError, match=r"y must be an array .* \(got the scalar 1.0\)"):
        converted.score(X[:4], 1.0)
    with pytest.raises(PopfitValueError, match=r"y must have shape \(4,\) or \(4, 1\) of target "
                                               r"values for this regressor \(got shape \(4, 3\)"):
        converted.score(X[:4], np.zeros((4, 3)))
    with pytest.raises(PopfitValueError, match=r"y contains NaN"):
        converted.score(X[:4], [0.0, np.nan, 1.0, 2.0])


def test_score_matches_sklearn_metrics(binary, data):
    """score is scikit-learn's accuracy / R^2 of the spiking predictions."""
    from sklearn.metrics import accuracy_score

    X = data[0][:20]
    mlp, clf = binary
    y = mlp.predict(X)
    pred = clf.predict(X, presentation_time=0.05, progress_bar=False)
    assert clf.score(X, y, presentation_time=0.05, progress_bar=False) \
        == accuracy_score(y, pred) >= 0.9
    assert clf.score(X, y.reshape(-1, 1), presentation_time=0.05, progress_bar=False) \
        == accuracy_score(y, pred)


def test_progress_bar_must_be_a_bool(converted, data):
    """Defect: predict(progress_bar="yes") crashed in nengo's progress thread."""
    with pytest.raises(PopfitTypeError, match=r"^ConvertedModel.predict: progress_bar must be "
                                              r"True, False, None .* \(got 'yes' of type str\)"):
        converted.predict(data[0][:2], progress_bar="yes")


def test_predict_proba_is_sklearn_available_if(binary, converted):
    _, clf = binary
    assert hasattr(clf, "predict_proba") and not hasattr(converted, "predict_proba")
    assert "Class probabilities" in type(clf).predict_proba.__doc__


# ---------------------------------------------------------------- presentation_time
def test_short_presentation_warns_not_refuses(binary, data):
    """Defect: presentation_time below 0.025 s was refused, though such short
    presentations classify well: now a UserWarning with the reason."""
    X = data[0][:30]
    mlp, clf = binary
    for T in (0.02, 0.01):
        with pytest.warns(UserWarning, match=rf"presentation_time {T:g} s is below 0.025 s "
                                             r"\(5 x connection_synapse \(0.005 s\) per "
                                             r"hidden layer "
                                             r"\(1\), and 10 time steps\): the output may not "
                                             "settle"):
            labels = clf.predict(X, presentation_time=T, progress_bar=False)
        assert np.mean(labels == mlp.predict(X)) >= 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at the recommended minimum
        clf.predict(X[:2], presentation_time=0.025, progress_bar=False)


@pytest.mark.parametrize("T, err, match", [
    (0.0, PopfitValueError, r"presentation_time must be finite and > 0 \(got 0.0\)"),
    (-0.1, PopfitValueError, r"presentation_time must be finite and > 0"),
    (float("nan"), PopfitValueError, r"presentation_time must be finite and > 0 \(got nan\)"),
    (float("inf"), PopfitValueError, r"presentation_time must be finite and > 0 \(got inf\)"),
    (0.0014, PopfitValueError, r"presentation_time must be at least 2 time steps"),
    ("0.1", PopfitTypeError, r"presentation_time must be a number of seconds"),
    (True, PopfitTypeError, r"presentation_time must be a number of seconds"),
])
def test_presentation_time_still_refused(converted, data, T, err, match):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused without a warning first
        with pytest.raises(err, match="^ConvertedModel.predict: " + match):
            converted.predict(data[0][:2], presentation_time=T)


# ---------------------------------------------------------------- pickling
@pytest.mark.parametrize("activation", ["tanh", "logistic", "identity", "relu"])
def test_converted_model_pickles(data, activation):
    """Defect: converted models with identity or ReLU layers did not pickle."""
    X, y = data
    mlp = _fit(MLPRegressor(hidden_layer_sizes=(3,), activation=activation, max_iter=100,
                            random_state=0), X, y)
    model = popfit.convert(mlp, n_neurons=1, search=QUICK, seed=3)
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy.rate_output(X), model.rate_output(X))
    np.testing.assert_array_equal(
        copy.predict(X[:3], presentation_time=0.03, progress_bar=False),
        model.predict(X[:3], presentation_time=0.03, progress_bar=False))


# ---------------------------------------------------------------- setup.cfg
def test_scikit_learn_minimum_is_stated():
    """Defect: setup.cfg said scikit-learn>=1.3, but popfit imports
    sklearn.utils.validation.validate_data and defines __sklearn_tags__ (both new
    in scikit-learn 1.6)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    (req,) = [r for r in cfg["options"]["install_requires"].split()
              if r.startswith("scikit-learn")]
    low = tuple(int(v) for v in re.fullmatch(r"scikit-learn>=([\d.]+)", req)[1].split("."))
    assert low >= (1, 6)
    import sklearn.utils.validation

    assert hasattr(sklearn.utils.validation, "validate_data")


# ---------------------------------------------------------------- layout
def test_present_reads_out_any_network():
    """present() is the public present-and-read-out loop: on a pass-through
    network it returns the samples themselves."""
    import nengo

    X = np.array([[0.5, -1.0], [2.0, 0.25], [-0.75, 0.0]])
    with nengo.Network() as net:
        net.input = nengo.Node(size_in=2)
        net.output = nengo.Node(size_in=2)
        nengo.Connection(net.input, net.output, synapse=None)
    np.testing.assert_allclose(present(net, X, 0.01, progress_bar=False), X)
    with pytest.raises(PopfitTypeError, match=r"^present: network must be a nengo.Network "
                                              r"with an `input` Node"):
        present(object(), X)
    with pytest.raises(PopfitValueError, match=r"^present: X has 3 features but the model "
                                               r"expects 2"):
        present(net, np.zeros((1, 3)))
    with pytest.raises(PopfitValueError, match=r"^present: seed must be an integer in"):
        present(net, X, seed=2**32)


def test_decoded_output_is_present(converted, data):
    X = data[0][:3]
    np.testing.assert_array_equal(
        converted.decoded_output(X, 0.03, progress_bar=False, sequential=True),
        present(converted.network, X, 0.03, seed=converted.seed, progress_bar=False))


def test_sklearn_reader_uses_public_attributes(data):
    """Multi-label is read from out_activation_ and n_outputs_."""
    X, _ = data
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, X.sum(axis=1) > 0.5]).astype(int)
    kw = dict(hidden_layer_sizes=(3,), max_iter=20, random_state=0)
    multi = _fit(MLPClassifier(**kw), X, Y)
    del multi._label_binarizer  # not needed
    spec = read_model(multi)
    assert spec.multilabel and spec.output.activation == "sigmoid" and spec.output.n_out == 3
    assert not read_model(_fit(MLPClassifier(**kw), X, Y[:, 0])).multilabel
    assert not read_model(_fit(MLPClassifier(**kw), X, Y.sum(axis=1))).multilabel


def test_conversion_modules_import_one_way():
    """No import circle inside popfit.conversion (imports inside
    functions count too), and the package's old names still work."""
    import ast
    import graphlib

    graph = {}
    for path in (ROOT / "popfit" / "conversion").glob("*.py"):
        deps = {node.module.split(".")[0] for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}
        graph[path.stem] = deps
    graph.pop("__init__")
    order = list(graphlib.TopologicalSorter(graph).static_order())  # CycleError on a circle
    assert order.index("spec") < order.index("convert") and "model" in graph["convert"]
    from popfit.conversion import ConvertedModel, LayerSpec, ModelSpec, convert

    assert popfit.convert is convert and popfit.ConvertedModel is ConvertedModel
    assert LayerSpec.__module__ == ModelSpec.__module__ == "popfit.conversion.spec"
