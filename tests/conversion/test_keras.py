"""popfit.convert (popfit.conversion) on real Keras 3 models trained in the tests."""

import os
import pickle
import sys

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import popfit  # noqa: E402
from popfit.conversion import read_model  # noqa: E402
from popfit.exceptions import ConversionError, PopfitTypeError, PopfitValueError  # noqa: E402

# these tests need *a* good fit, not the best: the quick search is ~2.4x cheaper
QUICK = popfit.SearchOptions.quick()


@pytest.fixture(scope="module")
def regression_data():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(512, 1)).astype("float32")
    y = np.sin(2.5 * X) * 0.8
    return X, y


@pytest.fixture(scope="module")
def tanh_regressor(regression_data):
    X, y = regression_data
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(1,)),
        keras.layers.Dense(16, activation="tanh"),
        keras.layers.Dense(1, activation="linear"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.03), loss="mse")
    model.fit(X, y, epochs=40, batch_size=64, verbose=0)
    return model


def test_keras_regression_spiking_matches_keras(regression_data, tanh_regressor):
    X, y = regression_data
    model = tanh_regressor
    ref = model.predict(X[:40], verbose=0)
    assert np.sqrt(np.mean((ref - y[:40]) ** 2)) < 0.1  # the Keras model learned
    conv = popfit.convert(model, calibration_data=X, search=QUICK, seed=0)
    assert conv.spec.source == "Sequential" and not conv.is_classifier
    assert [layer.n_units for layer in conv.layers] == [16]
    pred = conv.predict(X[:40], presentation_time=0.1, progress_bar=False)
    assert pred.shape == ref.shape == (40, 1)
    rmse = np.sqrt(np.mean((pred - ref) ** 2))
    assert rmse < 0.05 * np.ptp(ref), rmse
    r2 = conv.score(X[:40], y[:40], presentation_time=0.1, progress_bar=False)
    assert r2 > 0.9


def test_keras_functional_classifier_with_activation_layers():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4)).astype("float32")
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)  # classes 0, 1, 2
    keras.utils.set_random_seed(1)
    inp = keras.Input(shape=(4,))
    h = keras.layers.Dense(12, name="hidden")(inp)
    h = keras.layers.Activation("sigmoid", name="squash")(h)
    h = keras.layers.Activation("linear", name="noop")(h)
    out = keras.layers.Dense(3, activation="softmax", name="out")(h)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(0.03), loss="sparse_categorical_crossentropy")
    model.fit(X, y, epochs=30, batch_size=64, verbose=0)

    conv = popfit.convert(model, calibration_data=X, n_neurons=4, search=QUICK, seed=0)
    assert conv.is_classifier and list(conv.classes_) == [0, 1, 2]
    assert conv.layers[0].activation == "sigmoid"
    assert conv.layers[0].label == "hidden+squash"
    ref = model.predict(X[:30], verbose=0)
    # rate level (no spike noise): 4 neurons per sigmoid unit over the calibrated
    # domain (about (-9, 9)) leave ~2% mean error in the probabilities
    rate = conv.rate_output(X[:30])
    assert np.mean(np.abs(rate - ref)) < 0.04
    assert np.mean(rate.argmax(axis=1) == ref.argmax(axis=1)) >= 0.9
    proba = conv.predict_proba(X[:30], presentation_time=0.1, progress_bar=False)
    assert proba.shape == (30, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.mean(np.abs(proba - ref)) < 0.06
    labels = conv.predict(X[:30], presentation_time=0.1, progress_bar=False)
    assert np.mean(labels == ref.argmax(axis=1)) >= 0.9


# ---------------------------------------------------------------- bad input
def _seq(*layers, n_in=3):
    return keras.Sequential([keras.Input(shape=(n_in,)), *layers])


def test_unsupported_layer_named():
    model = _seq(keras.layers.Dense(4, activation="tanh"),
                 keras.layers.Dropout(0.5, name="drop"), keras.layers.Dense(1))
    with pytest.raises(ConversionError,
                       match=r"layer 'drop' of type Dropout is not supported; supported layers "
                             r"are Dense and Activation"):
        popfit.convert(model)


def test_unsupported_activation_named():
    def centred(x):  # not elementwise: each output depends on its whole row
        return x - keras.ops.mean(x, axis=-1, keepdims=True)

    model = _seq(keras.layers.Dense(4, activation=centred, name="d0"), keras.layers.Dense(1))
    with pytest.raises(ConversionError,
                       match=r"'d0' \(Dense\) has activation 'centred', which is not "
                             r"elementwise.*tanh, sigmoid, linear, relu"):
        popfit.convert(model)
    model = _seq(keras.layers.Dense(4, name="d1"), keras.layers.Activation(centred, name="a1"),
                 keras.layers.Dense(1))
    with pytest.raises(ConversionError, match=r"'a1' \(Activation\) applies 'centred', which "
                                              r"is not elementwise"):
        popfit.convert(model)
    def needs_1d(x):  # fails on a batch
        return keras.ops.convert_to_tensor(float(x))

    model = _seq(keras.layers.Dense(4, activation=needs_1d, name="e"), keras.layers.Dense(1))
    with pytest.raises(ConversionError, match=r"'e' \(Dense\) has activation 'needs_1d', which "
                                              r"raised TypeError"):
        popfit.convert(model)
    model = _seq(keras.layers.Dense(4, activation="softmax", name="d2"), keras.layers.Dense(1))
    with pytest.raises(ConversionError, match=r"'d2' has activation 'softmax'.*output layer"):
        popfit.convert(model)
    model = _seq(keras.layers.Dense(4, activation="tanh", name="d3"),
                 keras.layers.Activation("relu", name="a3"), keras.layers.Dense(1))
    with pytest.raises(ConversionError, match=r"'a3' applies 'relu' after 'd3'"):
        popfit.convert(model)
    model = _seq(keras.layers.Dense(4, activation="tanh"),
                 keras.layers.Dense(1, activation="elu", name="o4"))
    with pytest.raises(ConversionError, match=r"'o4' \(Dense\) has activation 'elu', a custom "
                                              r"activation on the output layer"):
        popfit.convert(model)


def tanh(x):  # LeCun's scaled tanh, under the name of the plain one
    return 1.7159 * keras.ops.tanh(2.0 * x / 3.0)


def test_custom_activation_is_fitted_as_its_own_curve():
    """An activation is identified by its function, not its name: a custom
    function called ``tanh`` is fitted as the curve it computes."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3)).astype("float32")
    keras.utils.set_random_seed(3)
    model = _seq(keras.layers.Dense(6, activation=tanh, name="lecun"),
                 keras.layers.Dense(1, name="out"))
    ref = model.predict(X, verbose=0)
    conv = popfit.convert(model, calibration_data=X, n_neurons=4, search=QUICK, seed=0,
                          refit=False)
    assert conv.layers[0].activation == "custom tanh" and "custom tanh" in conv.report()
    assert "Keras activation tanh of layer lecun" in conv.fits[0].target.name
    # the fitted curve is the scaled tanh itself (to the fit's error), not np.tanh
    lo, hi = conv.layers[0].domain
    x = np.linspace(lo, hi, 201)
    curve = 1.7159 * np.tanh(2 * x / 3)
    fit_err = np.sqrt(np.mean((conv.fits[0].predict(x) - curve) ** 2))
    assert fit_err < 0.05 * np.ptp(curve)
    # so the converted model's rate output matches Keras within that fit error
    rate = conv.rate_output(X)
    rmse = np.sqrt(np.mean((rate - ref) ** 2))
    w_out = np.abs(conv.spec.output.weights).sum()
    assert rmse < 0.05 * np.std(ref) and rmse <= 1.5 * w_out * fit_err, (rmse, fit_err)
    # it pickles (batched prediction in processes), the function by reference
    clone = pickle.loads(pickle.dumps(conv))
    np.testing.assert_array_equal(clone.rate_output(X[:5]), rate[:5])
    # Keras's own functions, and functions equal to a named curve, keep the curve's name
    same = _seq(keras.layers.Dense(2, name="h"), keras.layers.Activation(keras.ops.tanh),
                keras.layers.Dense(1))
    assert read_model(same).layers[0].activation == "tanh"


def test_unsupported_architectures():
    inp = keras.Input(shape=(3,))
    a = keras.layers.Dense(4, activation="tanh")(inp)
    b = keras.layers.Dense(4, activation="tanh")(inp)
    out = keras.layers.Dense(1)(keras.layers.Add(name="merge")([a, b]))
    with pytest.raises(ConversionError, match="not fed by the previous layer alone"):
        popfit.convert(keras.Model(inp, out))
    with pytest.raises(ConversionError, match="at least two are needed"):
        popfit.convert(_seq(keras.layers.Dense(2)))
    with pytest.raises(ConversionError, match="comes before any Dense layer"):
        popfit.convert(_seq(keras.layers.Activation("tanh", name="first"),
                            keras.layers.Dense(4), keras.layers.Dense(1)))


def test_unbuilt_model_and_wrong_features(tanh_regressor):
    unbuilt = keras.Sequential([keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)])
    with pytest.raises(PopfitValueError, match="is not built"):
        popfit.convert(unbuilt)
    with pytest.raises(PopfitTypeError, match="Keras 3 keras.Model"):
        popfit.convert(keras.layers.Dense(3))
    conv = popfit.convert(tanh_regressor, search=QUICK, seed=0)
    with pytest.raises(PopfitValueError, match="X has 2 features but the model expects 1"):
        conv.predict(np.zeros((3, 2)))
    with pytest.warns(UserWarning, match=r"presentation_time 0.02 s is below 0.025 s"):
        conv.predict(np.zeros((3, 1)), presentation_time=0.02, progress_bar=False)


def test_missing_keras_gives_install_hint(monkeypatch):
    from popfit.conversion.keras import import_keras

    monkeypatch.setitem(sys.modules, "keras", None)  # `import keras` now fails
    with pytest.raises(ImportError, match=r"pip install popfit\[keras\]"):
        import_keras()


# ---------------------------------------------------------------- task
@pytest.fixture(scope="module")
def cancer_classifier():
    """A small Keras binary classifier (one sigmoid output) trained on breast cancer."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X = ((X - X.mean(axis=0)) / X.std(axis=0)).astype("float32")
    keras.utils.set_random_seed(0)
    model = _seq(keras.layers.Dense(8, activation="tanh"),
                 keras.layers.Dense(1, activation="sigmoid"), n_in=X.shape[1])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    model.fit(X, y, epochs=5, batch_size=32, verbose=0)
    return model, X, y


def test_sigmoid_output_trained_with_cross_entropy_is_a_classifier(cancer_classifier):
    from sklearn.metrics import accuracy_score

    model, X, y = cancer_classifier
    p = model.predict(X, verbose=0)[:, 0]
    assert accuracy_score(y, p > 0.5) > 0.9  # the Keras model learned
    conv = popfit.convert(model, calibration_data=X, n_neurons=4, search=QUICK, seed=0)
    assert conv.is_classifier and list(conv.classes_) == [0, 1]
    Xs, ys = X[::8], y[::8]  # 72 samples
    proba = conv.predict_proba(Xs, progress_bar=False)
    assert proba.shape == (len(Xs), 2)  # [1 - p, p], as scikit-learn's
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.mean(np.abs(proba[:, 1] - p[::8])) < 0.05
    labels = conv.predict(Xs, progress_bar=False)
    assert set(np.unique(labels)) <= {0, 1}
    np.testing.assert_array_equal(labels, (proba[:, 1] > 0.5).astype(int))
    acc = conv.score(Xs, ys, progress_bar=False)
    assert acc == accuracy_score(ys, labels) and acc > 0.85
    assert conv.summary()["task"] == "classifier"
    # task= overrides what the loss says
    reg = popfit.convert(model, calibration_data=X, n_neurons=2, search=QUICK, seed=0,
                         task="regressor")
    assert not reg.is_classifier and not hasattr(reg, "predict_proba")


@pytest.mark.parametrize("loss, task", [
    ("binary_crossentropy", "classifier"),
    ("BinaryCrossentropy", "classifier"),
    (lambda: keras.losses.BinaryCrossentropy(), "classifier"),
    (lambda: keras.losses.binary_crossentropy, "classifier"),
    (lambda: keras.losses.BinaryFocalCrossentropy(), "classifier"),
    ("mse", "regressor"),
    (lambda: keras.losses.MeanSquaredError(), "regressor"),
])
def test_task_of_a_sigmoid_output_from_the_compiled_loss(loss, task):
    model = _seq(keras.layers.Dense(3, activation="tanh"),
                 keras.layers.Dense(1, activation="sigmoid"))
    model.compile(loss=loss() if callable(loss) else loss)
    spec = read_model(model)
    assert spec.is_classifier == (task == "classifier")
    if spec.is_classifier:
        assert list(spec.classes) == [0, 1] and not spec.multilabel


def test_task_argument_checked_and_uncompiled_sigmoid_warns():

    model = _seq(keras.layers.Dense(3, activation="tanh"),
                 keras.layers.Dense(2, activation="sigmoid"))
    with pytest.warns(UserWarning, match=r"sigmoid output but no compiled loss.*"
                                         r"task='classifier'"):
        assert not read_model(model).is_classifier
    logits = _seq(keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1))
    logits.compile(loss=keras.losses.BinaryCrossentropy(from_logits=True))
    with pytest.warns(UserWarning, match=r"classifier's loss \(binarycrossentropy, on logits\) "
                                         r"but its output layer .* is linear"):
        assert not read_model(logits).is_classifier
    spec = read_model(model, task="classifier")  # two sigmoid outputs: multi-label
    assert spec.is_classifier and spec.multilabel
    with pytest.raises(PopfitValueError, match=r"task must be 'classifier', 'regressor' or "
                                               r"None.*\(got 'binary'\)"):
        popfit.convert(model, task="binary")
    linear = _seq(keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(2, name="lin"))
    with pytest.raises(ConversionError, match=r"task='classifier' needs a sigmoid or softmax "
                                              r"output layer.*'lin' has activation 'linear'"):
        popfit.convert(linear, task="classifier")
