import importlib.util
import os
import warnings

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")


def _keras_backend():
    """KERAS_BACKEND if set, else the first installed of jax and torch (the Loihi and
    NIR environments have torch, not jax); set before any test module imports Keras."""
    for backend in (os.environ.get("KERAS_BACKEND"), "jax", "torch"):
        if backend and importlib.util.find_spec(backend) is not None:
            return backend
    return "jax"


os.environ["KERAS_BACKEND"] = _keras_backend()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def small_digits_mlp():
    """``(mlp, X, y, X_test)``: MLPClassifier((16, 12), tanh) on 400 digits (the
    fine-tuning tests' model), ``X_test`` digits 1500 on."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning
        mlp = MLPClassifier(hidden_layer_sizes=(16, 12), activation="tanh", max_iter=100,
                            random_state=0).fit(X[:400], y[:400])
    return mlp, X[:400], y[:400], X[1500:]


def _trained_forward(model, X):
    from popfit.training import curves, quantized, weights  # needs jax

    layers = [curves.layer_constants(fit) for fit in model.fits]
    quant = None if model.weight_bits is None else (model.weight_bits,
                                                    model.platform.sparse_host_transforms)
    with curves.x64():
        params = weights.initial_params(model.spec)
        z = np.asarray(quantized.model_forward(params, layers, X, quant)[0])
    return model._outputs(z)


@pytest.fixture
def trained_forward():
    """``f(model, X)``: the jax forward pass `popfit.finetune` trains through (weights
    rounded for ``weight_bits``), output nonlinearity applied."""
    return _trained_forward


def _check_finetune(model, data, kind):
    """Fine-tune ``model`` (``kind``: its curve, `popfit.training.curves.curve_kind`)
    briefly on ``data`` (`small_digits_mlp`'s): before and after, the rate output is
    the jax forward trained through; training raises the training accuracy. Returns
    the fine-tuned model."""
    import popfit
    from popfit.training import curves

    _, X, y, X_test = data
    assert curves.curve_kind(model.fits[0].neuron_type) == kind
    # before training, the jax forward is the converted network's rate output
    np.testing.assert_allclose(_trained_forward(model, X_test), model.rate_output(X_test),
                               rtol=0, atol=1e-6)
    new = popfit.finetune(model, X, y, epochs=2, learning_rate=3e-3, seed=0)
    assert type(new.fits[0].neuron_type) is type(model.fits[0].neuron_type)
    assert new.platform == model.platform and new.weight_bits == model.weight_bits
    np.testing.assert_allclose(new.rate_output(X_test), _trained_forward(new, X_test),
                               rtol=0, atol=1e-6)
    acc = lambda m: np.mean(m.rate_output(X).argmax(1) == y)  # noqa: E731
    assert acc(new) > acc(model)
    return new


@pytest.fixture
def check_finetune():
    """``f(model, data, kind)``: the fine-tuning check of every neuron type and platform."""
    return _check_finetune
