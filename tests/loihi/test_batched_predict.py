"""`ConvertedModel.predict(simulator=...)` on nengo-loihi's emulator (issue 12).

Runs only in the Loihi environment (numpy < 2, nengo-loihi 1.1.0), e.g.

    PYTHONPATH=$PWD /work/venvs/loihi/bin/python -m pytest -q tests/loihi

The batched prediction network (one Ensemble per hidden layer, inputs in the
bias currents, Sparse neuron-to-neuron weights, probed neurons decoded on the
host) is built unmodified by ``nengo_loihi.Simulator(..., target="sim")``.
The converted model is fitted for nengo's LIF, so on Loihi, whose neurons
fire on whole time steps (400 Hz nominal becomes 333 Hz), the outputs are
smaller than the ANN's; the test checks the shape of the response, not
popfit's own predictions.
"""

import functools
import warnings

import numpy as np
import pytest

nengo_loihi = pytest.importorskip("nengo_loihi")

from sklearn.neural_network import MLPRegressor  # noqa: E402

import popfit  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_predict_on_loihi_emulator():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(300, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPRegressor(hidden_layer_sizes=(8,), activation="tanh", max_iter=800,
                           learning_rate_init=0.02, random_state=0).fit(X, 0.8 * np.sin(3 * X[:, 0]))
    model = popfit.convert(mlp, n_neurons=4, calibration_data=X, seed=0)
    x = np.linspace(-0.9, 0.9, 12)[:, None]
    loihi = functools.partial(nengo_loihi.Simulator, target="sim")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = model.predict(x, 0.1, progress_bar=False, simulator=loihi, batch_size=6)
    y_ann = mlp.predict(x)
    assert y.shape == (12,)
    assert np.corrcoef(y, y_ann)[0, 1] > 0.97
    assert np.sqrt(np.mean((y - y_ann) ** 2)) < 0.2 * np.ptp(y_ann)
