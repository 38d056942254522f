"""popfit.finetune through nengo-loihi's whole-step curves, with 8-bit weights.

Runs only in the Loihi environment (numpy < 2, nengo-loihi 1.1.0, and jax
0.4.38 / optax 0.2.4, the last that take numpy 1.26: ``.ci/make_loihi_venv``).
A model converted with ``platform="loihi"`` (whole-step ``LoihiLIF`` or
``LoihiSpikingRectifiedLinear`` fits, 8-bit weights) is fine-tuned briefly;
its rate output (nengo-loihi's own ``rates`` of the rebuilt, rounded network)
must equal the jax forward pass it was trained through, and training must
raise the rate-level accuracy on the training digits. The gradient through
a whole-step curve is its surrogate's (tau_ref half a step longer), checked
by finite differences.
"""

import numpy as np
import pytest

nengo_loihi = pytest.importorskip("nengo_loihi")
try:  # the Loihi environment installs them (.ci/make_loihi_venv): missing is an error there
    import jax
    import optax  # noqa: F401
except ImportError as e:  # pragma: no cover
    raise ImportError(f"{e}: the Loihi environment needs jax and optax for popfit.finetune; "
                      "re-run `bash .ci/make_loihi_venv DIR`") from e

import popfit  # noqa: E402
from popfit.training import curves  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # nengo-loihi version notes


@pytest.mark.parametrize("neuron_type, kind", [(None, "step_lif"),
                                               ("LoihiSpikingRectifiedLinear", "step_relu")],
                         ids=["LoihiLIF", "LoihiSpikingRectifiedLinear"])
def test_whole_step_fits_and_8_bit_weights(small_digits_mlp, check_finetune, neuron_type, kind):
    mlp, X, y, X_test = small_digits_mlp
    model = popfit.convert(mlp, n_neurons=1, neuron_type=neuron_type, calibration_data=X[:200],
                           refit=False, seed=0, platform="loihi")
    assert model.weight_bits == 8 and not model.platform.sparse_host_transforms
    check_finetune(model, small_digits_mlp, kind)


def test_whole_step_gradient_is_the_surrogates():
    lif = nengo_loihi.neurons.LoihiLIF(min_voltage=0)
    fit = popfit.fit_activation("tanh", 1, neuron_type=lif, seed=0)
    kind, c = curves.layer_constants(fit)
    J = np.array([1.5, 2.0, 5.0, 30.0])
    with curves.x64():
        value = np.asarray(curves.rates(kind, c, jax.numpy.asarray(J)))
        grad = np.asarray(jax.vmap(jax.grad(lambda j: curves.rates(kind, c, j)))(
            jax.numpy.asarray(J)))
    # forward: nengo-loihi's own staircase
    np.testing.assert_allclose(value, lif.rates(J, np.ones(1), np.zeros(1)).ravel(), rtol=1e-12)
    # gradient: popfit's surrogate (tau_ref half a step longer), by finite differences
    sur = popfit.wholestep.surrogate_neuron_type(lif)
    h = 1e-6
    fd = (sur.rates(J + h, np.ones(1), np.zeros(1)) - sur.rates(J - h, np.ones(1),
                                                              np.zeros(1))).ravel() / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-4)
