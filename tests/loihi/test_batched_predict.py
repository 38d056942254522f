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
nengo-loihi's neuron types, for every platform and network option (the
README's ``platform="loihi"`` among them), through every public path, in
nengo.Simulator and in the emulator.
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


OPTIONS = {"nengo": {}, "refit=False": {"refit": False}, "loihi": {"platform": "loihi"},
           "nengo+weight_bits=4": {"platform": popfit.get_platform("nengo", weight_bits=4)},
           "loihi-float": {"platform": popfit.get_platform("loihi", weight_bits=None)}}


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
    # nengo-loihi's emulator: the batched network, and (platform="loihi") model.network
    emulator = functools.partial(nengo_loihi.Simulator, target="sim")
    on_emulator = model.decoded_output(X, simulator=emulator, **kw)
    assert on_emulator.shape == (3, 10) and np.all(np.isfinite(on_emulator))
    assert model.predict(X, simulator=emulator, **kw).shape == (3,)
    if model.platform.name == "loihi":
        seq = model.decoded_output(X, simulator=emulator, sequential=True, **kw)
        assert np.all(np.isfinite(seq))


def test_loihi_platform_is_the_three_argument_recipe(digits_small):
    """convert(mlp, platform="loihi") is what hardware="loihi", neuron_type="LoihiLIF"
    and weight_bits=8 were: the same fits (LoihiLIF), Dense host transforms, the same
    8-bit rounded weights; and it predicts on nengo-loihi's emulator by default."""
    import nengo
    from nengo_loihi.neurons import LoihiLIF

    from popfit.conversion.quantize import quantize_model

    mlp, X_cal, X, y = digits_small
    kw = dict(n_neurons=2, calibration_data=X_cal, search=popfit.SearchOptions.quick(),
              seed=0)
    model = popfit.convert(mlp, platform="loihi", **kw)
    recipe = quantize_model(popfit.convert(
        mlp, neuron_type="LoihiLIF", platform=popfit.get_platform(
            "nengo", host_transforms=("Dense",)), **kw), 8, X_cal[:500])
    assert type(model.neuron_type) is LoihiLIF and model.weight_bits == recipe.weight_bits == 8
    for a, b in zip(model.fits, recipe.fits):
        for name in ("gain", "bias", "encoders", "decoders"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for a, b in zip(model.neuron_weights(per_neuron=True)[0],
                    recipe.neuron_weights(per_neuron=True)[0]):
        a = a.toarray() if hasattr(a, "toarray") else a
        b = b.toarray() if hasattr(b, "toarray") else b
        np.testing.assert_array_equal(a, b)
    assert model.quantization["cost"] == recipe.quantization["cost"]
    host = [c for c in model.network.all_connections
            if isinstance(c.pre_obj, nengo.Node) != isinstance(c.post_obj, nengo.Node)
            and not isinstance(c.transform, nengo.transforms.NoTransform)]
    assert host and not any(isinstance(c.transform, nengo.transforms.Sparse) for c in host)
    # predictions: nengo-loihi's emulator by default
    simulator = model.platform.make_simulator()
    assert simulator.func is nengo_loihi.Simulator and simulator.keywords == {"target": "sim"}
    kw = dict(presentation_time=0.03, progress_bar=False)
    emulator = functools.partial(nengo_loihi.Simulator, target="sim")
    np.testing.assert_array_equal(model.decoded_output(X, **kw),
                                  model.decoded_output(X, simulator=emulator, **kw))
    np.testing.assert_array_equal(model.predict(X, sequential=True, **kw),
                                  model.predict(X, sequential=True, simulator=emulator, **kw))
