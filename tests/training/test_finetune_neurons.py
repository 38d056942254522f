"""finetune for every neuron type and platform: the trained model computes its forward.

For each kind of fit (nengo's LIF and RectifiedLinear, NIR's LIF without
refractory period, snnTorch's, and nengo-loihi's whole-step LoihiLIF and
LoihiSpikingRectifiedLinear with 8-bit weights, in ``tests/loihi/test_finetune.py``)
the model is fine-tuned briefly; its rate output (nengo's / nengo-loihi's own ``rates`` of the
rebuilt network) must equal the jax forward pass it was trained through,
and training must raise the rate-level accuracy on the training digits.
"""

import nengo
import pytest

import popfit

jax = pytest.importorskip("jax")
pytest.importorskip("optax")


@pytest.mark.parametrize("neuron_type, kind", [
    (nengo.LIF(), "lif"), (nengo.RectifiedLinear(), "relu"),
    (nengo.SpikingRectifiedLinear(), "relu"), (nengo.LIFRate(tau_rc=0.05), "lif")],
    ids=["LIF", "RectifiedLinear", "SpikingRectifiedLinear", "LIFRate tau_rc 50 ms"])
def test_nengo_neuron_types(small_digits_mlp, check_finetune, neuron_type, kind):
    mlp, X, _, _ = small_digits_mlp
    model = popfit.convert(mlp, n_neurons=1, neuron_type=neuron_type, calibration_data=X,
                           refit=False, seed=0)
    check_finetune(model, small_digits_mlp, kind)


@pytest.mark.parametrize("platform", ["nir", "snntorch"])
def test_nir_platforms_lif_without_refractory_period(small_digits_mlp, check_finetune,
                                                    platform):
    mlp, X, _, _ = small_digits_mlp
    model = popfit.convert(mlp, n_neurons=1, calibration_data=X, refit=False, seed=0,
                           platform=platform)
    nt = model.fits[0].neuron_type
    assert nt.tau_ref == popfit.get_platform(platform).fit_neuron_type().tau_ref < 1e-4
    check_finetune(model, small_digits_mlp, "lif")
