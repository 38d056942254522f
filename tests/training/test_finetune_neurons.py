"""finetune for every neuron type and platform: the trained model computes its forward.

For each kind of fit (nengo's LIF and RectifiedLinear, NIR's LIF without
refractory period, snnTorch's, and nengo-loihi's whole-step LoihiLIF and
LoihiSpikingRectifiedLinear with 8-bit weights, in ``tests/loihi/test_finetune.py``)
the model is fine-tuned briefly; its rate output (nengo's / nengo-loihi's own ``rates`` of the
rebuilt network) must equal the jax forward pass it was trained through,
and training must raise the rate-level accuracy on the training digits.
"""

import nengo
import numpy as np
import pytest

import popfit

jax = pytest.importorskip("jax")
pytest.importorskip("optax")
from popfit.training import curves  # noqa: E402


def check_finetune(model, data, kind, trained_forward):
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
def test_nengo_neuron_types(small_digits_mlp, trained_forward, neuron_type, kind):
    mlp, X, _, _ = small_digits_mlp
    model = popfit.convert(mlp, n_neurons=1, neuron_type=neuron_type, calibration_data=X,
                           refit=False, seed=0)
    check_finetune(model, small_digits_mlp, kind, trained_forward)


@pytest.mark.parametrize("platform", ["nir", "snntorch"])
def test_nir_platforms_lif_without_refractory_period(small_digits_mlp, trained_forward,
                                                    platform):
    mlp, X, _, _ = small_digits_mlp
    model = popfit.convert(mlp, n_neurons=1, calibration_data=X, refit=False, seed=0,
                           platform=platform)
    nt = model.fits[0].neuron_type
    assert nt.tau_ref == popfit.get_platform(platform).fit_neuron_type().tau_ref < 1e-4
    check_finetune(model, small_digits_mlp, "lif", trained_forward)
