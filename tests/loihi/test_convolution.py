"""A Keras CNN converted for Loihi builds and runs on nengo-loihi's emulator.

Runs only in the Loihi environment (numpy < 2, nengo-loihi 1.1.0, Keras on
torch's CPU build: ``.ci/make_loihi_venv``). The convolution's weights run
chip to chip as a Sparse neuron-to-neuron transform; the emulator's output
is compared with the Keras model's own (not with popfit's predictions).
"""

import warnings

import numpy as np
import pytest

nengo_loihi = pytest.importorskip("nengo_loihi")
keras = pytest.importorskip("keras")

import nengo  # noqa: E402

import popfit  # noqa: E402
from popfit.loihi import chip_mapping  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # nengo-loihi version notes


def test_cnn_on_emulator_with_8bit_weights():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).reshape(-1, 8, 8, 1)
    L = keras.layers
    keras.utils.set_random_seed(0)
    cnn = keras.Sequential([keras.Input((8, 8, 1)),
                            L.Conv2D(4, 3, strides=2, activation="tanh"),
                            L.BatchNormalization(), L.Flatten(),
                            L.Dense(10, activation="softmax")])
    cnn.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    cnn.fit(X[:800], y[:800], epochs=15, batch_size=32, verbose=0)
    X_test, y_test = X[800:840], y[800:840]
    proba = cnn.predict(X_test, verbose=0)
    model = popfit.convert(cnn, platform="loihi", n_neurons=2, calibration_data=X[:800],
                           seed=0)
    assert model.spec.has_sparse and model.weight_bits == 8
    net = model.network
    with nengo.Network(seed=0) as wrapper:
        wrapper.networks.append(net)
        stim = nengo.Node(nengo.processes.PresentInput(X_test.reshape(len(X_test), -1), 0.05))
        nengo.Connection(stim, net.input, synapse=None)
        p = nengo.Probe(net.output, synapse=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim = nengo_loihi.Simulator(wrapper, dt=0.001, target="sim", progress_bar=False)
    with sim:
        sim.run(0.05 * len(X_test))
    out = sim.data[p].reshape(len(X_test), 50, -1)[:, 25:].mean(axis=1)
    keras_acc = np.mean(proba.argmax(1) == y_test)
    assert np.mean(out.argmax(1) == y_test) >= keras_acc - 0.05
    assert np.mean(out.argmax(1) == proba.argmax(1)) >= 0.9
    mapping = chip_mapping(net)
    assert mapping["blocks"] == len(sim.model.blocks)
