"""popfit.finetune: training a converted model's weights through its rate curves."""

import json
import pickle
import warnings

import nengo
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPClassifier, MLPRegressor

import popfit
from popfit.conversion.quantize import quantize
from popfit.exceptions import PopfitTypeError, PopfitValueError

jax = pytest.importorskip("jax")
pytest.importorskip("optax")
from popfit.training import curves, quantized  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return X[:600], y[:600], X[1347:], y[1347:]


@pytest.fixture(scope="module")
def mlp(digits):
    X, y, _, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning
        return MLPClassifier(hidden_layer_sizes=(16,), activation="tanh", max_iter=150,
                             random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def model(mlp, digits):
    return popfit.convert(mlp, n_neurons=1, calibration_data=digits[0], refit=False, seed=0)


@pytest.fixture(scope="module")
def tuned(model, digits):
    X, y, _, _ = digits
    return popfit.finetune(model, X, y, epochs=3, seed=0)


def params_of(spec):
    return [(np.array(layer.weights), np.array(layer.bias)) for layer in spec.layers]


def jax_output(model, params, X):
    """The jax rate-level forward with the output nonlinearity, as rate_output."""
    layers = [curves.layer_constants(fit) for fit in model.fits]
    with curves.x64():
        z = np.asarray(curves.forward(params, layers, X)[0])
    return model._outputs(z)


def test_lif_curve_gradient_matches_finite_differences():
    lif = nengo.LIF()
    c = curves.layer_constants(popfit.fit_activation("tanh", 1, neuron_type=lif, seed=0))[1]
    J = np.array([-3.0, 0.2, 1.5, 2.0, 5.0, 30.0])  # every |J - 1| > SMOOTH_CUT
    assert np.all(np.abs(J - 1) > curves.SMOOTH_CUT)
    with curves.x64():
        value = np.asarray(curves.rates("lif", c, jax.numpy.asarray(J)))
        grad = np.asarray(jax.vmap(jax.grad(lambda j: curves.rates("lif", c, j)))(
            jax.numpy.asarray(J)))
    exact = lif.rates(J, np.ones(1), np.zeros(1)).ravel()  # nengo's own curve
    np.testing.assert_allclose(value, exact, rtol=1e-12, atol=1e-12)
    h = 1e-6
    fd = (lif.rates(J + h, np.ones(1), np.zeros(1)) - lif.rates(J - h, np.ones(1),
                                                                np.zeros(1))).ravel() / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-4, atol=1e-9)
    assert grad[0] == 0  # far below the onset


def test_forward_gradient_matches_finite_differences(model, digits):
    X = digits[0]
    layers = [curves.layer_constants(fit) for fit in model.fits]
    fit, layer = model.fits[0], model.spec.layers[0]
    J = (X @ layer.weights + layer.bias)[..., None] * fit.gain * fit.encoders + fit.bias
    far = np.all(np.abs(J - 1) > 2 * curves.SMOOTH_CUT, axis=(1, 2))
    Xs = X[far][:20]
    assert len(Xs) >= 5
    params = params_of(model.spec)
    with curves.x64():
        def loss(p):
            z = curves.forward(p, layers, Xs)[0]
            return jax.numpy.sum(jax.nn.log_softmax(z)[:, 3])
        grad = jax.grad(loss)(params)
        for (li, which, idx) in [(0, 0, (10, 3)), (0, 1, (5,)), (1, 0, (2, 7)), (1, 1, (4,))]:
            h = 1e-6
            up = [list(p) for p in params]
            dn = [list(p) for p in params]
            up[li][which] = up[li][which].copy()
            dn[li][which] = dn[li][which].copy()
            up[li][which][idx] += h
            dn[li][which][idx] -= h
            fd = (float(loss(up)) - float(loss(dn))) / (2 * h)
            np.testing.assert_allclose(float(grad[li][which][idx]), fd, rtol=1e-4)


@pytest.mark.parametrize("neuron_type", [nengo.LIF(), nengo.RectifiedLinear()],
                         ids=["LIF", "RectifiedLinear"])
def test_jax_forward_equals_rate_output(mlp, digits, neuron_type):
    X = digits[2]
    m = popfit.convert(mlp, n_neurons=2, neuron_type=neuron_type, calibration_data=digits[0],
                       refit=False, seed=0)
    np.testing.assert_allclose(jax_output(m, params_of(m.spec), X), m.rate_output(X),
                               rtol=0, atol=1e-6)


def test_finetuned_rate_output_is_the_trained_forward(tuned, digits):
    X = digits[2]
    assert isinstance(tuned, popfit.ConvertedModel)
    np.testing.assert_allclose(tuned.rate_output(X), jax_output(tuned, params_of(tuned.spec), X),
                               rtol=0, atol=1e-6)


def test_finetune_keeps_fits_and_settings_and_leaves_original(model, tuned, mlp):
    for a, b, row in zip(tuned.fits, model.fits, tuned.finetune_report["domains"]):
        assert (a is b) != bool(row["refitted"] and row["refit_kept"])  # unless re-fitted
        assert (a.n_neurons, a.neuron_type, a.max_rate) == (b.n_neurons, b.neuron_type,
                                                            b.max_rate)
    assert tuned.connection_synapse == model.connection_synapse
    assert tuned.platform == model.platform and tuned.weights is None
    # the original model still holds the source weights
    np.testing.assert_array_equal(model.spec.layers[0].weights, mlp.coefs_[0])
    np.testing.assert_array_equal(model.spec.layers[1].bias, mlp.intercepts_[1])
    assert not hasattr(model, "finetune_report")
    assert not np.array_equal(tuned.spec.layers[0].weights, mlp.coefs_[0])


def test_same_seed_same_weights(model, tuned, digits):
    X, y, _, _ = digits
    again = popfit.finetune(model, X, y, epochs=3, seed=0)
    other = popfit.finetune(model, X, y, epochs=3, seed=1)
    for a, b, c in zip(tuned.spec.layers, again.spec.layers, other.spec.layers):
        np.testing.assert_array_equal(a.weights, b.weights)
        np.testing.assert_array_equal(a.bias, b.bias)
    assert not np.array_equal(tuned.spec.layers[0].weights, other.spec.layers[0].weights)


def test_cross_entropy_raises_rate_level_accuracy(model, tuned, digits):
    X, y, _, _ = digits
    before = np.mean(model.rate_output(X).argmax(1) == y)
    after = np.mean(tuned.rate_output(X).argmax(1) == y)
    assert after > before + 0.03
    r = tuned.finetune_report
    assert r["loss"] == "cross_entropy"
    assert r["epochs"] == (6 if r["domains"][0]["refitted"] else 3)
    assert 0 <= r["heldout_accuracy"] <= 1 and r["max_output_difference"] >= 0
    assert "[[finetune]]" in tuned.report()
    json.dumps(tuned.summary()["finetune"])  # JSON-safe


def test_distill_without_targets(model, digits):
    X = digits[0]
    source = model.spec.forward(X)[1].argmax(1)
    before = np.mean(model.rate_output(X).argmax(1) == source)
    new = popfit.finetune(model, X, epochs=3)
    assert new.finetune_report["loss"] == "distill"
    assert np.mean(new.rate_output(X).argmax(1) == source) > before


def test_spike_cost_lowers_expected_spikes(model, digits):
    X, y, _, _ = digits
    new = popfit.finetune(model, X, y, epochs=3, spike_cost=1e-3, learning_rate=3e-3)
    r = new.finetune_report
    assert r["spikes_per_second_after"] < 0.9 * r["spikes_per_second_before"]


def test_regressor_mse():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (300, 2))
    t = np.sin(2 * X[:, 0]) * X[:, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = MLPRegressor(hidden_layer_sizes=(8,), activation="tanh", max_iter=500,
                           random_state=0).fit(X, t)
    m = popfit.convert(reg, n_neurons=2, calibration_data=X, refit=False, seed=0)
    new = popfit.finetune(m, X, t, epochs=5, learning_rate=3e-3)
    assert new.finetune_report["loss"] == "mse"
    err = lambda mm: np.sqrt(np.mean((mm.rate_output(X)[:, 0] - t) ** 2))  # noqa: E731
    assert err(new) < err(m)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(loss="hinge"), PopfitValueError, "loss"),
    (dict(epochs=0), PopfitValueError, "epochs"),
    (dict(epochs=2.5), PopfitTypeError, "epochs"),
    (dict(learning_rate=-1.0), PopfitValueError, "learning_rate"),
    (dict(batch_size=0), PopfitValueError, "batch_size"),
    (dict(spike_cost=-0.1), PopfitValueError, "spike_cost"),
    (dict(validation_fraction=1.0), PopfitValueError, "validation_fraction"),
    (dict(validation_fraction=0.0), PopfitValueError, "early_stopping"),
    (dict(early_stopping="yes"), PopfitTypeError, "early_stopping"),
    (dict(seed=-1), PopfitValueError, "seed"),
    (dict(loss="mse", y=None), PopfitValueError, "y"),
    (dict(schedule="linear"), PopfitValueError, "schedule"),
])
def test_bad_arguments(model, digits, kwargs, error, words):
    kwargs = {"y": digits[1], **kwargs}
    with pytest.raises(error, match=words) as info:
        popfit.finetune(model, digits[0], **kwargs)
    assert str(info.value).startswith("finetune")


def test_cosine_step_size_decays_to_zero_over_the_epochs(model, digits):
    from popfit.training.finetune import learning_rate_schedule

    lr = learning_rate_schedule(1e-3, epochs=4, steps_per_epoch=25)
    k = np.array([0, 10, 50, 99, 100])
    np.testing.assert_allclose([float(lr(i)) for i in k],
                               0.5e-3 * (1 + np.cos(np.pi * k / 100)), rtol=0, atol=1e-9)
    X, y, _, _ = digits
    kw = dict(epochs=2, learning_rate=3e-3, early_stopping=False, domain_tolerance=None, seed=0)
    cos = popfit.finetune(model, X, y, **kw)
    const = popfit.finetune(model, X, y, schedule="constant", **kw)
    assert cos.finetune_report["schedule"] == "cosine" and "cosine step size" in cos.report()
    assert const.finetune_report["schedule"] == "constant"
    # the decayed steps move the weights less from the same start with the same batches
    moved = lambda m: np.abs(m.spec.layers[0].weights - model.spec.layers[0].weights).sum()  # noqa: E731
    assert 0 < moved(cos) < moved(const)


def test_bad_model_and_samples(model, digits):
    with pytest.raises(PopfitTypeError, match="model must be a popfit.ConvertedModel"):
        popfit.finetune("not a model", digits[0])
    with pytest.raises(PopfitValueError, match="X"):
        popfit.finetune(model, digits[0][:, :5])


def qat_output(model, X):
    """The quantization-aware jax forward of a rounded model, with the output nonlinearity."""
    layers = [curves.layer_constants(fit) for fit in model.fits]
    quant = (model.weight_bits, model.platform.sparse_host_transforms)
    with curves.x64():
        z = np.asarray(quantized.model_forward(params_of(model.spec), layers, X, quant)[0])
    return model._outputs(z)


@pytest.fixture(scope="module")
def mlp2(digits):
    X, y, _, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning
        return MLPClassifier(hidden_layer_sizes=(16, 12), activation="tanh", max_iter=150,
                             random_state=0).fit(X, y)


@pytest.mark.parametrize("bits, n_neurons, host", [(6, 1, ("Sparse", "Dense")),
                                                   (4, 2, ("Dense",))],
                         ids=["6 bits, nengo", "4 bits, N=2, Dense host transforms (Loihi's)"])
def test_weight_bits_trained_model_equals_rounded_forward(mlp2, digits, bits, n_neurons, host):
    X, y, X_test, _ = digits
    platform = popfit.get_platform("nengo", weight_bits=bits, host_transforms=host)
    m = popfit.convert(mlp2, n_neurons=n_neurons, calibration_data=X, refit=False, seed=0,
                       platform=platform)
    # before training: the jax forward is the converted (rounded) network's
    np.testing.assert_allclose(qat_output(m, X_test), m.rate_output(X_test), rtol=0, atol=1e-6)
    new = popfit.finetune(m, X, y, epochs=3, learning_rate=3e-3, domain_tolerance=None)
    assert new.weight_bits == bits and new.quantization is not None
    # the trained model, rounded when rebuilt, computes the forward it was trained through
    out = new.rate_output(X_test)
    np.testing.assert_allclose(out, qat_output(new, X_test), rtol=0, atol=1e-6)
    # ... which is not the float forward of the same weights (the rounding matters)
    assert np.max(np.abs(out - jax_output(new, params_of(new.spec), X_test))) > 1e-3
    assert np.mean(new.rate_output(X).argmax(1) == y) > np.mean(m.rate_output(X).argmax(1) == y)


def test_straight_through_gradient_is_the_float_gradient(model):
    w = np.asarray(model.spec.layers[1].weights)
    with curves.x64():
        q = np.asarray(quantized.round_weights(jax.numpy.asarray(w), 3))
        # d/dw sum(q(w) * w) with the rounding's gradient taken as the identity: q(w) + w
        g = np.asarray(jax.grad(lambda v: jax.numpy.sum(quantized.round_weights(v, 3) * v))(
            jax.numpy.asarray(w)))
    np.testing.assert_allclose(g, q + w, rtol=1e-12)
    # the forward value is popfit's rounding: 7 magnitude levels, the largest exact
    np.testing.assert_allclose(q, quantize(w, 3), rtol=0, atol=1e-12)
    assert not np.allclose(q, w)


def test_domains_reported_and_refitted(model, digits):
    X, y, X_test, _ = digits
    # a large learning rate moves the pre-activations out of the fitted domains; without
    # a held-out share the re-fit is always kept
    new = popfit.finetune(model, X, y, epochs=3, learning_rate=3e-2, domain_tolerance=0.02,
                          validation_fraction=0.0, early_stopping=False)
    rows = new.finetune_report["domains"]
    assert len(rows) == 1
    row = rows[0]
    assert row["outside_before"] > 0.02 and row["refitted"] and row["refit_kept"]
    assert row["domain_after"][1] > row["domain_before"][1]
    assert new.fits[0] is not model.fits[0] and tuple(new.fits[0].domain) == tuple(
        row["domain_after"])
    assert new.fits[0].n_neurons == model.fits[0].n_neurons
    assert new.layers[0].domain == tuple(row["domain_after"])
    assert row["outside_after"] == pytest.approx(new.layers[0].fraction_outside)
    assert row["outside_after"] < row["outside_before"]
    assert new.finetune_report["epochs"] > 3  # training continued through the new fit
    assert "re-fitted" in new.report()
    # the rebuilt network runs the new fit: rate output is the trained forward
    np.testing.assert_allclose(new.rate_output(X_test), jax_output(new, params_of(new.spec),
                                                                   X_test), rtol=0, atol=1e-6)
    # with a held-out share the re-fit is kept only if the held-out loss is not higher
    held = popfit.finetune(model, X, y, epochs=3, learning_rate=3e-2, domain_tolerance=0.02)
    h = held.finetune_report["domains"][0]
    assert h["refitted"]
    assert h["refit_kept"] == (h["heldout_loss_after_refit"] <= h["heldout_loss_before_refit"])
    assert (held.fits[0] is model.fits[0]) != h["refit_kept"]
    assert tuple(held.fits[0].domain) == tuple(h["domain_after"])
    # None: report only
    kept = popfit.finetune(model, X, y, epochs=3, learning_rate=3e-2, domain_tolerance=None,
                           validation_fraction=0.0, early_stopping=False)
    assert not kept.finetune_report["domains"][0]["refitted"]
    assert kept.fits[0] is model.fits[0]
    assert kept.finetune_report["domains"][0]["outside_before"] == pytest.approx(
        row["outside_before"])


def test_progress_bar_and_device(model, digits, capfd):
    X, y, _, _ = digits
    quiet = popfit.finetune(model, X[:200], y[:200], epochs=2, domain_tolerance=None)
    assert capfd.readouterr().err == ""  # off by default
    loud = popfit.finetune(model, X[:200], y[:200], epochs=2, domain_tolerance=None,
                           progress_bar=True)
    err = capfd.readouterr().err
    assert "finetune: epoch 1/2" in err and "epoch 2/2" in err and err.endswith("\n")
    d = jax.devices()[0]
    assert quiet.finetune_report["device"] == loud.finetune_report["device"] == \
        f"{d.platform}:{d.id}"
    assert f"device: {d.platform}:{d.id}" in loud.report()
    with pytest.raises(PopfitTypeError, match="progress_bar"):
        popfit.finetune(model, X, y, progress_bar="yes")


def test_starting_weights_kept_when_no_epoch_improves(model, digits):
    X = digits[0]
    # far too large a step: every epoch's held-out loss is above the starting one
    new = popfit.finetune(model, X, epochs=2, learning_rate=5.0, early_stopping=True,
                          domain_tolerance=None)
    r = new.finetune_report
    assert r["best_epoch"] == 0 and r["epochs"] == 2
    for a, b in zip(new.spec.layers, model.spec.layers):
        np.testing.assert_array_equal(a.weights, b.weights)
        np.testing.assert_array_equal(a.bias, b.bias)


def test_finetuned_model_pickles(tuned, digits):
    X_test = digits[2][:20]
    again = pickle.loads(pickle.dumps(tuned))
    assert type(again) is type(tuned) and again.finetune_report == tuned.finetune_report
    np.testing.assert_array_equal(again.rate_output(X_test), tuned.rate_output(X_test))
    np.testing.assert_array_equal(again.predict(X_test, 0.05), tuned.predict(X_test, 0.05))

