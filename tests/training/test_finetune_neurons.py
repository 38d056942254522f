"""finetune for every neuron type and platform: the trained model computes its forward.

For each kind of fit (nengo's LIF and RectifiedLinear, NIR's LIF without
refractory period, snnTorch's, and nengo-loihi's whole-step LoihiLIF and
LoihiSpikingRectifiedLinear with 8-bit weights, in ``tests/loihi/test_finetune.py``)
the model is fine-tuned briefly; its rate output (nengo's / nengo-loihi's own ``rates`` of the
rebuilt network) must equal the jax forward pass it was trained through,
and training must raise the rate-level accuracy on the training digits.
"""

import warnings

import nengo
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPClassifier

import popfit

jax = pytest.importorskip("jax")
pytest.importorskip("optax")
from popfit.training import curves, quantized  # noqa: E402


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning
        mlp = MLPClassifier(hidden_layer_sizes=(16, 12), activation="tanh", max_iter=100,
                            random_state=0).fit(X[:400], y[:400])
    return mlp, X[:400], y[:400], X[1500:]


def trained_forward(model, X):
    """The jax forward `finetune` trains (rounded for weight_bits), output nonlinearity applied."""
    layers = [curves.layer_constants(fit) for fit in model.fits]
    params = [(np.array(layer.weights), np.array(layer.bias)) for layer in model.spec.layers]
    quant = None if model.weight_bits is None else (model.weight_bits,
                                                    model.platform.sparse_host_transforms)
    with curves.x64():
        z = np.asarray(quantized.model_forward(params, layers, X, quant)[0])
    return model._outputs(z)


def check_finetune(model, data, kind):
    _, X, y, X_test = data
    assert curves.curve_kind(model.fits[0].neuron_type) == kind
    # before training, the jax forward is the converted network's rate output
    np.testing.assert_allclose(trained_forward(model, X_test), model.rate_output(X_test),
                               rtol=0, atol=1e-6)
    new = popfit.finetune(model, X, y, epochs=2, learning_rate=3e-3, seed=0)
    assert type(new.fits[0].neuron_type) is type(model.fits[0].neuron_type)
    assert new.platform == model.platform and new.weight_bits == model.weight_bits
    np.testing.assert_allclose(new.rate_output(X_test), trained_forward(new, X_test),
                               rtol=0, atol=1e-6)
    acc = lambda m: np.mean(m.rate_output(X).argmax(1) == y)  # noqa: E731
    assert acc(new) > acc(model)
    return new


@pytest.mark.parametrize("neuron_type, kind", [
    (nengo.LIF(), "lif"), (nengo.RectifiedLinear(), "relu"),
    (nengo.SpikingRectifiedLinear(), "relu"), (nengo.LIFRate(tau_rc=0.05), "lif")],
    ids=["LIF", "RectifiedLinear", "SpikingRectifiedLinear", "LIFRate tau_rc 50 ms"])
def test_nengo_neuron_types(data, neuron_type, kind):
    mlp, X, _, _ = data
    model = popfit.convert(mlp, n_neurons=1, neuron_type=neuron_type, calibration_data=X,
                           refit=False, seed=0)
    check_finetune(model, data, kind)


@pytest.mark.parametrize("platform", ["nir", "snntorch"])
def test_nir_platforms_lif_without_refractory_period(data, platform):
    mlp, X, _, _ = data
    model = popfit.convert(mlp, n_neurons=1, calibration_data=X, refit=False, seed=0,
                           platform=platform)
    nt = model.fits[0].neuron_type
    assert nt.tau_ref == popfit.get_platform(platform).fit_neuron_type().tau_ref < 1e-4
    check_finetune(model, data, "lif")
