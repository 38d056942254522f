"""`ConvertedModel.predict(simulator=...)` on nengo-loihi's emulator.

Runs only in the Loihi environment (numpy < 2, nengo-loihi 1.1.0), e.g.

    PYTHONPATH=$PWD /work/venvs/loihi/bin/python -m pytest -q tests/loihi

The batched prediction network (one Ensemble per hidden layer, inputs in the
bias currents, Sparse neuron-to-neuron weights, probed neurons decoded on the
host) is built unmodified by ``nengo_loihi.Simulator(..., target="sim")``.
The converted model is fitted for nengo's LIF, so on Loihi, whose neurons
fire on whole time steps (400 Hz nominal becomes 333 Hz), the outputs are
smaller than the ANN's; the test checks the shape of the response, not
popfit's own predictions.

`test_loihi_neuron_types_through_every_path` runs models fitted for
nengo-loihi's neuron types (the README's ``neuron_type="LoihiLIF"``), with
every network option, through every public path, in nengo.Simulator and in
the emulator.
"""

import functools
import warnings

import numpy as np
import pytest

nengo_loihi = pytest.importorskip("nengo_loihi")

from sklearn.neural_network import MLPRegressor  # noqa: E402

import popfit  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              # nengo-loihi's emulator fills int arrays with NaN when it builds
              pytest.mark.filterwarnings("ignore:invalid value encountered in cast")]


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


# ----------------------------------- nengo-loihi neuron types through every path
@pytest.fixture(scope="module")
def digits_small():
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", max_iter=200,
                            random_state=0).fit(X[:300], y[:300])
    return mlp, X[:300], X[300:303], y[300:303]


OPTIONS = {"default": {}, "refit=False": {"refit": False}, "loihi": {"hardware": "loihi"},
           "weight_bits=4": {"weight_bits": 4},
           "loihi+weight_bits=8": {"hardware": "loihi", "weight_bits": 8}}


@pytest.mark.parametrize("options", list(OPTIONS.values()), ids=list(OPTIONS))
@pytest.mark.parametrize("neuron_type", ["LoihiLIF", "LoihiSpikingRectifiedLinear"])
def test_loihi_neuron_types_through_every_path(digits_small, neuron_type, options):
    """The README's nengo-loihi example: convert(neuron_type="LoihiLIF", ...).predict(X)
    (batched, in nengo.Simulator and in the emulator), and every other path."""
    import pickle

    mlp, X_cal, X, y = digits_small
    model = popfit.convert(mlp, neuron_type=neuron_type, n_neurons=2,
                           calibration_data=X_cal, search=popfit.SearchOptions.quick(),
                           seed=0, **options)
    kw = dict(presentation_time=0.03, progress_bar=False)
    decoded = model.decoded_output(X, **kw)
    assert decoded.shape == (3, 10) and np.all(np.isfinite(decoded))
    out = model._outputs(decoded)
    labels = model.classes_[np.argmax(out, 1)]
    np.testing.assert_array_equal(model.predict(X, **kw), labels)
    np.testing.assert_array_equal(model.predict_proba(X, **kw), out)
    assert model.score(X, y, **kw) == np.mean(labels == y)
    seq = model.decoded_output(X, sequential=True, **kw)
    assert seq.shape == (3, 10) and np.all(np.isfinite(seq))
    rate = model.rate_output(X)
    assert rate.shape == (3, 10) and np.all(np.isfinite(rate))
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(copy.decoded_output(X, **kw), decoded)
    np.testing.assert_array_equal(copy.rate_output(X), rate)
    assert "[[layers]]" in model.report()
    # nengo-loihi's emulator: the batched network, and (hardware="loihi") model.network
    emulator = functools.partial(nengo_loihi.Simulator, target="sim")
    on_emulator = model.decoded_output(X, simulator=emulator, **kw)
    assert on_emulator.shape == (3, 10) and np.all(np.isfinite(on_emulator))
    assert model.predict(X, simulator=emulator, **kw).shape == (3,)
    if options.get("hardware") == "loihi":
        seq = model.decoded_output(X, simulator=emulator, sequential=True, **kw)
        assert np.all(np.isfinite(seq))
