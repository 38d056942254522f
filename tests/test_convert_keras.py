"""popfit.convert (popfit.conversion) on real Keras 3 models trained in the tests."""

import os
import sys

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import popfit  # noqa: E402
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
    model = _seq(keras.layers.Dense(4, activation="elu", name="d0"), keras.layers.Dense(1))
    with pytest.raises(ConversionError,
                       match=r"'d0' \(Dense\) has activation 'elu'.*tanh, sigmoid, linear, relu"):
        popfit.convert(model)
    model = _seq(keras.layers.Dense(4, name="d1"), keras.layers.Activation("selu", name="a1"),
                 keras.layers.Dense(1))
    with pytest.raises(ConversionError, match=r"'a1' \(Activation\) applies 'selu'"):
        popfit.convert(model)
    model = _seq(keras.layers.Dense(4, activation="softmax", name="d2"), keras.layers.Dense(1))
    with pytest.raises(ConversionError, match=r"'d2' has activation 'softmax'.*output layer"):
        popfit.convert(model)
    model = _seq(keras.layers.Dense(4, activation="tanh", name="d3"),
                 keras.layers.Activation("relu", name="a3"), keras.layers.Dense(1))
    with pytest.raises(ConversionError, match=r"'a3' applies 'relu' after 'd3'"):
        popfit.convert(model)


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
