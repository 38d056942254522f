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
