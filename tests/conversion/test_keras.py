"""popfit.convert (popfit.conversion) on real Keras 3 models trained in the tests."""

import pickle
import re
import sys

import numpy as np
import pytest

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
    out = keras.layers.Dense(1)(keras.layers.Multiply(name="product")([a, b]))
    with pytest.raises(ConversionError, match=r"Multiply 'product': this merge is not linear"):
        popfit.convert(keras.Model(inp, out))
    two = keras.Model(inp, [a, b])
    with pytest.raises(ConversionError, match=r"has 1 inputs and 2 outputs"):
        popfit.convert(two)
    with pytest.raises(ConversionError, match="has no hidden layer whose units become neurons"):
        popfit.convert(_seq(keras.layers.Dense(2)))
    shared = keras.layers.Dense(3, activation="tanh", name="shared")
    h = shared(keras.layers.Dense(3)(inp))
    twice = keras.Model(inp, keras.layers.Dense(1)(shared(h)))
    with pytest.raises(ConversionError, match=r"Dense 'shared' is used more than once"):
        popfit.convert(twice)


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
    with pytest.raises(ImportError,
                       match=r"needs keras, which is not installed .*pip install 'popfit\[keras\]'"):
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


# ---------------------------------------------------------------- layer kinds folded
def _np(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable.value), dtype=float)


def _bn(layer, x):
    """Keras's inference-time BatchNormalization, in float64 from the layer's weights."""
    w = {v.path.rpartition("/")[2]: _np(v) for v in layer.weights}
    y = (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + layer.epsilon)
    return y * w.get("gamma", 1.0) + w.get("beta", 0.0)


def _reference(model, fits, X):
    """The Keras model evaluated layer by layer in numpy (float64), every hidden
    activation replaced by its fit's decoded curve (``fit.predict``), in order (a
    linear hidden layer's fit just before the next Dense layer)."""
    from scipy.special import softmax

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    last = max(i for i, layer in enumerate(layers) if isinstance(layer, keras.layers.Dense))
    fits = iter(fits)
    acts = (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU,
            keras.layers.ELU, keras.layers.PReLU, keras.layers.Softmax)
    a = np.asarray(X, dtype=float)
    pending = False  # a hidden Dense layer whose activation is still to come
    for i, layer in enumerate(layers):
        if isinstance(layer, keras.layers.BatchNormalization):
            a = _bn(layer, a)
            continue
        if isinstance(layer, keras.layers.Dense):
            if pending:  # linear hidden activation
                a = next(fits).predict(a)
            a = a @ _np(layer.kernel) + _np(layer.bias)
            pending = i < last
            fn = layer.activation
        elif isinstance(layer, acts):
            fn = getattr(layer, "activation", layer)
        else:  # Dropout, GaussianNoise, ...: identities at inference
            continue
        if fn is keras.activations.linear:
            continue
        if i >= last:  # the output activation
            a = softmax(a, axis=1) if fn in (keras.activations.softmax,) or isinstance(
                layer, keras.layers.Softmax) else np.asarray(fn(a))
        else:
            a = next(fits).predict(a)
            pending = False
    return a


def _randomize_bn(model, seed):
    """Non-trivial inference statistics (an untrained layer's are mean 0, variance 1)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.3, 3.0, tuple(v.shape)) if v.path.endswith(
                ("gamma", "moving_variance")) else rng.normal(size=tuple(v.shape))
                for v in layer.weights])


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype("float32"), y


@pytest.fixture(scope="module")
def folded_model(digits):
    """A functional digits classifier chaining every identity and BatchNormalization place."""
    X, y = digits
    keras.utils.set_random_seed(4)
    inp = keras.Input(shape=(64,))
    h = keras.layers.BatchNormalization(name="bn_in")(inp)  # right after the input
    h = keras.layers.Flatten(name="flat")(h)  # flat already: the identity
    h = keras.layers.Dense(24, name="d1")(h)
    h = keras.layers.BatchNormalization(name="bn_pre")(h)  # before the activation
    h = keras.layers.Activation("tanh", name="t1")(h)
    for layer in (keras.layers.Dropout(0.2), keras.layers.GaussianNoise(0.1),
                  keras.layers.GaussianDropout(0.1), keras.layers.AlphaDropout(0.1),
                  keras.layers.ActivityRegularization(1e-4)):
        h = layer(h)
    h = keras.layers.BatchNormalization(name="bn_post")(h)  # after the activation
    h = keras.layers.Dense(12, activation="relu", name="d2")(h)
    h = keras.layers.Dense(10, name="out")(h)
    out = keras.layers.Softmax(name="sm")(h)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(X, y, epochs=3, batch_size=64, verbose=0)
    return model


def test_functional_chain_with_batchnorm_and_identities_folds_exactly(digits, folded_model):
    X, y = digits
    model = folded_model
    assert np.mean(model.predict(X[:300], verbose=0).argmax(1) == y[:300]) > 0.8
    spec = read_model(model)
    # no new layers: three Dense layers, BatchNormalization folded into their weights
    assert [layer.label for layer in spec.layers] == ["bn_in+d1+bn_pre+t1",
                                                      "bn_post+d2", "out+sm"]
    assert [layer.activation for layer in spec.layers] == ["tanh", "relu", "softmax"]
    # the spec computes what Keras computes (to Keras's float32 precision)
    np.testing.assert_allclose(spec.forward(X[:200])[1], model.predict(X[:200], verbose=0),
                               atol=2e-5)
    conv = popfit.convert(model, calibration_data=X[:300], n_neurons=2, search=QUICK, seed=0,
                          refit=False)
    assert conv.is_classifier and conv.n_features_in_ == 64
    rng = np.random.default_rng(0)
    Xr = rng.uniform(0, 1, size=(50, 64))
    np.testing.assert_allclose(conv.rate_output(Xr), _reference(model, conv.fits, Xr),
                               rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("make, activation", [
    (lambda: keras.layers.ReLU(name="act"), "relu"),
    (lambda: keras.layers.Activation("linear", name="act"), "linear"),
    (lambda: keras.layers.ReLU(max_value=1.0, name="act"), r"custom ReLU\(max_value=1\)"),
    (lambda: keras.layers.ReLU(negative_slope=0.1, threshold=0.2, name="act"),
     r"custom ReLU\(negative_slope=0.1, threshold=0.2\)"),
    (lambda: keras.layers.LeakyReLU(0.2, name="act"), r"custom LeakyReLU\(negative_slope=0.2\)"),
    (lambda: keras.layers.ELU(name="act"), r"custom ELU\(alpha=1\)"),
    (lambda: keras.layers.PReLU(name="act", shared_axes=[1]),  # one slope, learned
     r"custom PReLU\(alpha=0\.\d+\)"),
], ids=["ReLU", "linear", "ReLU-max_value", "ReLU-slope-threshold", "LeakyReLU", "ELU",
        "PReLU-shared"])
def test_activation_layers_fitted_as_their_curves(digits, make, activation):
    """Each activation layer becomes its hidden layer's curve; the converted
    model's rate output is the Keras model with that curve's fit in its place."""
    X, y = digits
    keras.utils.set_random_seed(5)
    model = _seq(keras.layers.Dense(6, name="d"), keras.layers.BatchNormalization(name="bn"),
                 make(), keras.layers.Dense(10, activation="softmax", name="out"), n_in=64)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(X[:400], y[:400], epochs=1, batch_size=100, verbose=0)
    spec = read_model(model)
    np.testing.assert_allclose(spec.forward(X[:100])[1], model.predict(X[:100], verbose=0),
                               atol=2e-5)
    assert re.fullmatch(activation, spec.layers[0].activation), spec.layers[0].activation
    assert spec.layers[0].label == ("d+bn" if activation == "linear" else "d+bn+act")
    conv = popfit.convert(model, calibration_data=X[:200], n_neurons=2, search=QUICK, seed=0,
                          refit=False)
    Xr = np.random.default_rng(1).uniform(0, 1, size=(40, 64))
    np.testing.assert_allclose(conv.rate_output(Xr), _reference(model, conv.fits, Xr),
                               rtol=1e-6, atol=1e-12)


SUFFIX = (r"; popfit converts feed-forward graphs of Dense, convolution, average-pooling, "
          r"normalization, reshaping and merge layers \(README: supported layers\)")


def _functional(shape, *layers):
    inp = keras.Input(shape=shape)
    h = inp
    for layer in layers:
        h = layer(h)
    return keras.Model(inp, h)


@pytest.mark.parametrize("build, message", [
    (lambda: _functional((5, 2), keras.layers.LSTM(3, name="my_lstm"), keras.layers.Dense(2)),
     r"LSTM 'my_lstm': recurrent layers are not supported" + SUFFIX),
    (lambda: _functional((5, 2), keras.layers.GRU(3, name="g"), keras.layers.Dense(2)),
     r"GRU 'g': recurrent layers are not supported"),
    (lambda: _functional((5, 2), keras.layers.SimpleRNN(3, name="r"), keras.layers.Dense(2)),
     r"SimpleRNN 'r': recurrent layers are not supported"),
    (lambda: _functional((6, 2), keras.layers.Conv1D(3, 2, activation="tanh"),
                         keras.layers.MaxPooling1D(name="p"), keras.layers.Flatten(),
                         keras.layers.Dense(2)),
     r"MaxPooling1D 'p': max pooling is not linear.*" + SUFFIX
     + r"; retrain the model with the average pooling of the same pool size and strides"),
    (lambda: _functional((4, 4, 2), keras.layers.Conv2D(3, 2, groups=1, name="c",
                                                       data_format="channels_first"),
                         keras.layers.Flatten(), keras.layers.Dense(2)),
     r"Conv2D 'c': it uses data_format='channels_first'.*data_format='channels_last'"),
    (lambda: _functional((3,), keras.layers.Dense(4), keras.layers.PReLU(name="pr"),
                         keras.layers.Dense(2)),
     (r"PReLU 'pr': its learned slopes differ between units \(alpha from -0.5 to 0.5\).*"
      r"PReLU\(shared_axes=\[1\]\)")),
    (lambda: _functional((3,), keras.layers.Dense(4), keras.layers.LayerNormalization(name="ln"),
                         keras.layers.Dense(2)),
     r"LayerNormalization 'ln': it normalizes each sample by its own statistics.*"
     r"use BatchNormalization"),
    (lambda: _functional((3,), keras.layers.Dense(4, activation="tanh"),
                         keras.layers.Dense(2, activation="sigmoid", name="o"),
                         keras.layers.BatchNormalization(name="late")),
     r"Keras layer 'late' comes after the output activation 'sigmoid' of 'o'"),
    (lambda: _functional((3,), keras.layers.Dense(4, activation="tanh"),
                         keras.layers.Activation("sigmoid", name="twice"),
                         keras.layers.Dense(2)),
     r"Keras layer 'twice' applies 'sigmoid' after .* already applied 'tanh'; only one "
     r"nonlinearity"),
    (lambda: _functional((3, 3, 1), keras.layers.Conv2D(2, 2, activation="tanh"),
                         keras.layers.Conv2D(2, 1, activation="softmax", name="sm")),
     r"ends with a softmax over outputs of shape \(2, 2, 2\).*Flatten"),
    (lambda: _functional((4, 2), keras.layers.Conv1DTranspose(2, 2, name="ct"),
                         keras.layers.Flatten(), keras.layers.Dense(2)),
     r"Conv1DTranspose 'ct': transposed convolutions are not supported yet"),
], ids=["LSTM", "GRU", "SimpleRNN", "MaxPooling1D", "channels_first", "PReLU-per-unit",
        "LayerNormalization", "BatchNorm-after-output", "two-nonlinearities",
        "softmax-not-flat", "Conv1DTranspose"])
def test_unsupported_layers_refused_by_name(build, message):
    model = build()
    for layer in model.layers:  # per-unit slopes, as after training
        if isinstance(layer, keras.layers.PReLU):
            layer.set_weights([np.linspace(-0.5, 0.5, 4)])
    with pytest.raises(ConversionError, match=message):
        read_model(model)
    with pytest.raises(ConversionError, match=message):  # convert reads before any fit
        popfit.convert(model, calibration_data=np.zeros((4,) + tuple(model.inputs[0].shape[1:])))


@pytest.mark.parametrize("kwargs", [{}, {"center": False}, {"scale": False}],
                         ids=["gamma-beta", "no-beta", "no-gamma"])
def test_batchnorms_in_a_row_compose(kwargs):
    """Two normalizations after an activation, and two before one, fold into one Dense each."""
    keras.utils.set_random_seed(6)
    model = _seq(keras.layers.Dense(5, activation="tanh", name="d1"),
                 keras.layers.BatchNormalization(name="a", **kwargs),
                 keras.layers.BatchNormalization(name="b", **kwargs),
                 keras.layers.Dense(4, name="d2"),
                 keras.layers.BatchNormalization(name="c", **kwargs),
                 keras.layers.BatchNormalization(name="e", **kwargs),
                 keras.layers.Activation("sigmoid", name="s"),
                 keras.layers.Dense(2, name="out"), n_in=3)
    _randomize_bn(model, 6)
    spec = read_model(model)
    assert [layer.label for layer in spec.layers] == ["d1", "a+b+d2+c+e+s", "out"]
    X = np.random.default_rng(6).normal(size=(50, 3)).astype("float32")
    np.testing.assert_allclose(spec.forward(X)[1], model.predict(X, verbose=0), rtol=1e-5,
                               atol=1e-5)
