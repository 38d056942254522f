"""popfit.convert (package popfit.conversion) on scikit-learn MLPs, checked against their predictions."""

import importlib
import json
import types
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.neural_network import MLPClassifier, MLPRegressor

import popfit
from popfit.conversion import ConvertedModel
from popfit.exceptions import ConversionError, PopfitTypeError, PopfitValueError

# these tests need *a* good fit, not the best: the quick search is ~2.4x cheaper
QUICK = popfit.SearchOptions.quick()


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return X[:600], y[:600], X[600:680], y[600:680]


@pytest.fixture(scope="module")
def digits_mlp(digits):
    X, y, _, _ = digits
    return _fit(MLPClassifier(hidden_layer_sizes=(24,), activation="tanh", max_iter=300,
                              random_state=0), X, y)


@pytest.fixture(scope="module")
def digits_converted(digits, digits_mlp):
    return popfit.convert(digits_mlp, calibration_data=digits[0], search=QUICK, seed=1)


@pytest.fixture(scope="module")
def sine():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(300, 2))
    y = np.sin(X[:, 0]) + 0.5 * np.cos(1.5 * X[:, 1])
    return X, y


def test_exports():
    assert popfit.ConvertedModel is ConvertedModel
    # importing the package binds popfit.conversion; popfit.convert stays the function
    conversion = importlib.import_module("popfit.conversion")

    assert popfit.conversion is conversion
    assert popfit.convert is popfit.conversion.convert
    assert isinstance(popfit.convert, types.FunctionType)
    assert popfit.conversion.ConvertedModel is ConvertedModel


def test_classifier_matches_ann(digits, digits_mlp, digits_converted):
    _, _, X_test, y_test = digits
    model = digits_converted
    proba = model.predict_proba(X_test, presentation_time=0.1, progress_bar=False)
    ann_proba = digits_mlp.predict_proba(X_test)
    assert proba.shape == ann_proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    labels = digits_mlp.classes_[np.argmax(proba, axis=1)]
    agree = np.mean(labels == digits_mlp.predict(X_test))
    assert agree >= 0.95, agree
    assert np.mean(np.abs(proba - ann_proba)) < 0.05
    ann_acc = digits_mlp.score(X_test, y_test)
    assert np.mean(labels == y_test) >= ann_acc - 0.05
    # rate level (no spike noise): close to the ANN's own computation
    np.testing.assert_allclose(model.rate_output(X_test), ann_proba, atol=0.1)


def test_network_structure_and_summary(digits, digits_mlp, digits_converted):
    import nengo

    X = digits[0]
    model = digits_converted
    net = model.network
    assert isinstance(net, nengo.Network)
    (layer,) = net.layers
    assert isinstance(layer, popfit.PopulationLayer)
    assert layer.n_units == 24 and layer.ensemble.n_neurons == 24 * 4
    assert isinstance(layer.ensemble.neuron_type, nengo.LIF)
    assert net.input.size_in == 64 and net.output.size_in == 10
    np.testing.assert_allclose(layer.input_bias, digits_mlp.intercepts_[0])
    # domain from an independent computation of the pre-activations
    z = X @ digits_mlp.coefs_[0] + digits_mlp.intercepts_[0]
    m = np.percentile(np.abs(z), 99)
    lo, hi = model.layers[0].domain
    assert lo == -hi and hi == pytest.approx(m, rel=1e-2)
    assert model.fits[0].domain == (lo, hi)
    s = model.summary()
    json.dumps(s)
    h = s["hidden_layers"][0]
    assert h["n_units"] == 24 and h["total_neurons"] == 96 and s["total_neurons"] == 96
    assert h["fraction_outside_domain"] == pytest.approx(np.mean(np.abs(z) > hi))
    assert 0 < h["mean_rate_hz"] < 400 and s["expected_spikes_per_second"] > 0
    assert s["task"] == "classifier" and s["output_activation"] == "softmax"
    text = model.report()
    assert "coefs_[0]" in text and "softmax" in text and "calibration" in text


def test_regressor_matches_ann(sine):
    X, y = sine
    mlp = _fit(MLPRegressor(hidden_layer_sizes=(16,), activation="tanh", max_iter=2000,
                            random_state=0), X, y)
    model = popfit.convert(mlp, calibration_data=X, search=QUICK, seed=2)
    X_test = X[:40]
    pred = model.predict(X_test, presentation_time=0.1, progress_bar=False)
    ref = mlp.predict(X_test)
    assert pred.shape == ref.shape == (40,)
    rmse = np.sqrt(np.mean((pred - ref) ** 2))
    assert rmse < 0.05 * np.ptp(ref), rmse
    assert model.score(X_test, y[:40], progress_bar=False) > mlp.score(X_test, y[:40]) - 0.05
    with pytest.raises(AttributeError, match="has no attribute 'predict_proba'") as err:
        model.predict_proba(X_test)
    assert "only available for classifiers" in str(err.value.__cause__)
    assert not hasattr(model, "predict_proba")


@pytest.mark.parametrize("activation", ["logistic", "identity", "relu"])
def test_hidden_activations_rate_level(sine, activation):
    X, y = sine
    mlp = _fit(MLPRegressor(hidden_layer_sizes=(8, 6), activation=activation, max_iter=500,
                            random_state=0), X, y)
    model = popfit.convert(mlp, calibration_data=X, search=QUICK, seed=0, refit=False)
    target = {"logistic": "sigmoid", "identity": "linear", "relu": "relu"}[activation]
    assert [f.target.name for f in model.fits] == [target, target]
    # plumbing, exactly: the rate-level network is the MLP with each hidden
    # activation replaced by its fitted population (computed here from the
    # MLP's own weights and PopulationFit.predict)
    h = X[:100]
    for w, b, fit in zip(mlp.coefs_[:-1], mlp.intercepts_[:-1], model.fits):
        h = fit.predict((h @ w + b).ravel()).reshape(len(h), -1)
    expected = h @ mlp.coefs_[-1] + mlp.intercepts_[-1]
    out = model.rate_output(X[:100])
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-9 * np.ptp(expected))
    # accuracy: the fits trade rate error for spike noise (synapse 5 ms), and
    # the errors of units sharing one fit add up through two layers
    ref = mlp.predict(X[:100])
    assert np.sqrt(np.mean((out[:, 0] - ref) ** 2)) < 0.1 * np.ptp(ref)


def test_two_hidden_layers_spiking(sine):
    X, y = sine
    mlp = _fit(MLPRegressor(hidden_layer_sizes=(12, 8), activation="tanh", max_iter=2000,
                            random_state=0), X, y)
    model = popfit.convert(mlp, calibration_data=X, search=QUICK, seed=0)
    assert len(model.network.layers) == 2
    assert model.min_presentation_time == pytest.approx(2 * 5 * 0.005)
    ref = mlp.predict(X[:30])
    pred = model.predict(X[:30], presentation_time=0.1, progress_bar=False)
    assert np.sqrt(np.mean((pred - ref) ** 2)) < 0.08 * np.ptp(ref)


def test_fits_shared_without_calibration(sine):
    X, y = sine
    mlp = _fit(MLPRegressor(hidden_layer_sizes=(5, 7), activation="tanh", max_iter=50,
                            random_state=0), X, y)
    model = popfit.convert(mlp, n_neurons=3, search=QUICK, seed=0)
    assert model.fits[0] is model.fits[1]  # one fit per (activation, domain)
    assert model.fits[0].domain == (-3.0, 3.0) and model.fits[0].n_neurons == 3
    s = model.summary()
    assert not s["calibrated"] and s["n_fits"] == 1
    assert s["hidden_layers"][0]["fraction_outside_domain"] is None
    assert "no calibration data" in model.report()


def test_binary_classifier_and_determinism():
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, size=(200, 3))
    y = np.where(X[:, 0] + X[:, 1] ** 2 > 0.3, "yes", "no")
    mlp = _fit(MLPClassifier(hidden_layer_sizes=(10,), activation="tanh", max_iter=1000,
                             random_state=0), X, y)
    model = popfit.convert(mlp, calibration_data=X, search=QUICK, seed=5)
    p1 = model.predict_proba(X[:20], presentation_time=0.05, progress_bar=False)
    p2 = model.predict_proba(X[:20], presentation_time=0.05, progress_bar=False)
    np.testing.assert_array_equal(p1, p2)
    assert p1.shape == (20, 2)
    np.testing.assert_allclose(p1, mlp.predict_proba(X[:20]), atol=0.1)
    labels = model.predict(X[:20], presentation_time=0.05, progress_bar=False)
    assert set(labels) <= {"yes", "no"}
    assert np.mean(labels == mlp.predict(X[:20])) >= 0.9


# ---------------------------------------------------------------- bad input
def test_unfitted_model():
    with pytest.raises(PopfitValueError, match="MLPClassifier instance is not fitted"):
        popfit.convert(MLPClassifier(hidden_layer_sizes=(4,)))


def test_unsupported_model_type():
    lr = LinearRegression().fit(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(PopfitTypeError, match="MLPClassifier or MLPRegressor"):
        popfit.convert(lr)
    with pytest.raises(PopfitTypeError, match="got str"):
        popfit.convert("model.pkl")


def test_unsupported_activations(sine):
    X, y = sine
    mlp = _fit(MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, random_state=0), X, y)
    mlp.activation = "softsign"
    with pytest.raises(ConversionError, match=r"'softsign'.*'tanh', 'logistic'"):
        popfit.convert(mlp)
    mlp.activation = "tanh"
    mlp.out_activation_ = "softplus"
    with pytest.raises(ConversionError, match=r"out_activation_\) 'softplus'.*'identity'"):
        popfit.convert(mlp)


def test_bad_arguments(digits, digits_mlp):
    X = digits[0]
    with pytest.raises(PopfitValueError, match="n_neurons must be an integer >= 1 \\(got 0\\)"):
        popfit.convert(digits_mlp, n_neurons=0)
    with pytest.raises(PopfitValueError, match="max_rate must be < 500"):
        popfit.convert(digits_mlp, max_rate=600.0)
    with pytest.raises(PopfitValueError,
                       match="convert: connection_synapse must be finite and > 0"):
        popfit.convert(digits_mlp, connection_synapse=0.0)
    with pytest.raises(PopfitValueError, match=r"convert: synapse must be .*> 0 \(got -0.01"):
        popfit.convert(digits_mlp, synapse=-0.01)
    with pytest.raises(PopfitValueError, match="calibration_data has 10 features but the model "
                                               "expects 64"):
        popfit.convert(digits_mlp, calibration_data=X[:, :10])
    with pytest.raises(PopfitValueError, match="NaN"):
        bad = X.copy()
        bad[0, 0] = np.nan
        popfit.convert(digits_mlp, calibration_data=bad)


def test_bad_predict_input(digits, digits_converted):
    X = digits[2]
    model = digits_converted
    with pytest.raises(PopfitValueError, match="X has 63 features but the model expects 64"):
        model.predict(X[:, :63])
    with pytest.raises(PopfitValueError, match="must be 2-D"):
        model.predict(X[0])
    with pytest.raises(PopfitValueError, match="at least one sample"):
        model.predict(X[:0])
    with pytest.warns(UserWarning,
                      match=r"presentation_time 0.01 s is below 0.025 s.*5 x connection_synapse"):
        model.predict(X[:2], presentation_time=0.01, progress_bar=False)
    with pytest.raises(PopfitValueError, match=r"presentation_time must be at least 2 time "
                                               r"steps \(0.002 s at dt=0.001 s\) \(got 0.001"):
        model.predict(X[:2], presentation_time=0.001)
    with pytest.raises(PopfitTypeError, match="presentation_time must be a number"):
        model.predict(X[:2], presentation_time="0.1")
    with pytest.raises(PopfitValueError, match="y has 3 samples but X has 2"):
        model.score(X[:2], [1, 2, 3], presentation_time=0.03, progress_bar=False)


def test_synapse_sets_the_fits_noise_model(digits, digits_mlp, digits_converted):
    """The connections use ``connection_synapse``; the fits are optimized for spike
    noise at ``synapse`` (default 0.02 s), or for rates alone with None."""
    default = digits_converted
    assert default.connection_synapse == 0.005 and default.fits[0].synapse == 0.02
    assert default.summary()["connection_synapse"] == 0.005
    assert default.summary()["synapse"] == 0.02
    assert "spike noise at synapse 0.02 s" in default.report()
    same = popfit.convert(digits_mlp, calibration_data=digits[0], synapse=0.005,
                          search=QUICK, seed=1)
    rates = popfit.convert(digits_mlp, calibration_data=digits[0], synapse=None,
                           search=QUICK, seed=1)
    assert same.fits[0].synapse == 0.005 and rates.fits[0].synapse is None
    assert "synapse None (rates only)" in rates.report()
    # rate-only fits: the re-solve penalizes spike noise at the connection synapse
    assert rates.refit_report.synapse == rates.connection_synapse == 0.005
    # less assumed noise: smaller rate error where the pre-activations fall
    z = (digits[0] @ digits_mlp.coefs_[0] + digits_mlp.intercepts_[0]).ravel()
    lo, hi = default.fits[0].domain
    zin = z[np.abs(z) <= hi]
    errs = [np.sqrt(np.mean((m.fits[0].predict(zin) - np.tanh(zin)) ** 2))
            for m in (same, default, rates)]
    assert errs[0] > errs[1] > errs[2]
    # the same fit as fit_activation with those arguments, on the layer's pre-activations
    direct = popfit.fit_activation("tanh", 4, domain=(lo, hi), synapse=0.02,
                                   eval_points=z[np.abs(z) <= hi], search=QUICK, seed=1)
    np.testing.assert_array_equal(direct.decoders, default.fits[0].decoders)


# ------------------------------------------- one model, one answer; bounded runs
@pytest.fixture(scope="module")
def digits_two_layers(digits):
    X, y, _, _ = digits
    return _fit(MLPClassifier(hidden_layer_sizes=(8, 6), activation="tanh", max_iter=300,
                              random_state=0), X, y)


def _rms(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


@pytest.mark.parametrize("host", ["Sparse", "Dense"])
def test_weight_bits_every_path_runs_the_rounded_weights(digits, digits_two_layers, host):
    """With weight_bits, predict/decoded_output (batched), the sequential path,
    rate_output and neuron_weights all describe the network that runs: its
    rounded weights, not the float ones."""
    import scipy.sparse

    from popfit.conversion.quantize import rate_forward

    X_cal, X = digits[0], digits[2][:8]
    kw = dict(n_neurons=2, calibration_data=X_cal, search=QUICK, seed=0)
    platform = popfit.get_platform("nengo", host_transforms=(host,))
    exact = popfit.convert(digits_two_layers, platform=platform, **kw)
    rounded = popfit.convert(digits_two_layers, platform=platform.replace(weight_bits=2), **kw)
    run = dict(presentation_time=0.2, progress_bar=False)
    batched = rounded.decoded_output(X, **run)
    sequential = rounded.decoded_output(X, sequential=True, **run)
    floats = exact.decoded_output(X, **run)
    # the same network: batched and sequential agree within spike noise, and
    # both are far from the float model
    assert _rms(batched, sequential) < 0.5 * _rms(batched, floats)
    assert _rms(batched, rate_forward(rounded, X)) < 0.5 * _rms(batched, floats)
    # rate_output describes the rounded network
    np.testing.assert_allclose(rounded.rate_output(X),
                               rounded._outputs(rate_forward(rounded, X)), atol=1e-12)
    assert _rms(rounded.rate_output(X), exact.rate_output(X)) > 1e-3
    # neuron_weights: exactly the network's neuron-to-neuron transform
    weights, biases = rounded.neuron_weights(per_neuron=True)
    layers = rounded.network.layers
    (conn,) = [c for c in rounded.network.all_connections
               if getattr(c.post_obj, "ensemble", None) is layers[1].ensemble]
    init = conn.transform.init
    init = init.toarray() if scipy.sparse.issparse(init) else np.asarray(init)
    w = weights[0].toarray() if scipy.sparse.issparse(weights[0]) else weights[0]
    np.testing.assert_array_equal(w, init)
    assert w.shape == (layers[1].total_neurons, layers[0].total_neurons)
    assert weights[1].shape == (10, layers[1].total_neurons)
    np.testing.assert_array_equal(biases[1], digits_two_layers.intercepts_[-1])
    with pytest.raises(PopfitValueError, match=r"neuron_weights\(per_neuron=True\)"):
        rounded.neuron_weights()
    # without weight_bits, the neuron-level weights are the unit-level ones
    # behind each receiving neuron's encoder
    unit, _ = exact.neuron_weights()
    per, _ = exact.neuron_weights(per_neuron=True)
    enc = np.kron(np.eye(6), exact.fits[1].encoders[:, None])
    per0 = per[0].toarray() if scipy.sparse.issparse(per[0]) else per[0]
    np.testing.assert_allclose(per0, enc @ unit[0], rtol=1e-12, atol=1e-12)


def test_presentation_time_bounded(digits, digits_converted):
    from popfit.conversion.present import MAX_PRESENTATION_STEPS, MAX_TOTAL_STEPS

    X = digits[2]
    model = digits_converted
    for kwargs in (dict(), dict(sequential=True)):
        with pytest.raises(PopfitValueError, match=r"presentation_time must be at most "
                                                   r"100,000 time steps per sample \(100 s"):
            model.predict(X[:1], presentation_time=1e5, **kwargs)
        with pytest.raises(PopfitValueError, match="100,000 time steps per sample"):
            model.decoded_output(X[:1], presentation_time=1e9, **kwargs)
        n = MAX_TOTAL_STEPS // MAX_PRESENTATION_STEPS + 1
        with pytest.raises(PopfitValueError, match=rf"at most 10,000,000 time steps in one "
                                                   rf"call \(got {n} samples x 100,000"):
            model.predict(np.repeat(X[:1], n, axis=0), presentation_time=100.0, **kwargs)
    with pytest.raises(PopfitValueError, match=r"present: presentation_time must be at most"):
        popfit.conversion.present(model.network, X[:1], 1e9)


def test_n_jobs_capped_by_chunks_and_cpus(digits, digits_converted):
    import threading

    import joblib
    import nengo

    threads = []

    class Counting(nengo.Simulator):  # a real simulator that notes the threads running
        def __init__(self, *args, **kwargs):
            threads.append(threading.active_count())
            super().__init__(*args, **kwargs)

    X = digits[2][:3]
    before = threading.active_count()
    ref = digits_converted.decoded_output(X, 0.03, progress_bar=False)
    with joblib.parallel_config(backend="threading"):
        out = digits_converted.decoded_output(X, 0.03, progress_bar=False, n_jobs=40,
                                              simulator=Counting)
        np.testing.assert_array_equal(out, ref)
        assert len(threads) == min(3, joblib.cpu_count())  # chunks over the workers
        # the workers, plus the pool's three handler threads (40 workers before)
        assert max(threads) <= before + min(3, joblib.cpu_count()) + 3
        np.testing.assert_array_equal(
            digits_converted.decoded_output(X, 0.03, progress_bar=False, n_jobs=-1), ref)


def test_simulator_must_be_a_simulator(digits, digits_converted):
    X = digits[2][:2]

    class NoRunSteps:
        def __init__(self, network, **kwargs):
            pass

    for sequential in (False, True):
        kw = dict(presentation_time=0.03, progress_bar=False, sequential=sequential)
        with pytest.raises(PopfitTypeError, match=r"predict: simulator must be .*with "
                                                  r"run_steps.*got <class 'dict'>"):
            digits_converted.predict(X, simulator=dict, **kw)
        with pytest.raises(PopfitTypeError, match=r"simulator must be .*got .*NoRunSteps"):
            digits_converted.predict(X, simulator=NoRunSteps, **kw)
        with pytest.raises(PopfitTypeError, match=r"simulator must return a simulator .* "
                                                  r"returned None of type NoneType"):
            digits_converted.predict(X, simulator=lambda net, **k: None, **kw)


def test_numpy_integer_n_neurons_reports(digits, digits_mlp):
    model = popfit.convert(digits_mlp, n_neurons=np.int64(2), search=QUICK, seed=0)
    s = model.summary()
    assert s["n_neurons_per_unit"] == 2 and type(s["n_neurons_per_unit"]) is int
    json.dumps(s)
    assert "2 x LIF() per unit" in model.report()
