"""What the benchmarks share, defined once: the Keras digits models and a spike counter.

Trained on scikit-learn's 8x8 digits (X / 16, 25% held out with
``train_test_split(..., test_size=0.25, random_state=0)``), with whichever
Keras backend the environment has (jax in the main one, torch in the
toolchain venvs): the same architecture and seed, trained there.
"""

import os
import warnings

import nengo
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def digits_split():
    """``X_train, X_test, y_train, y_test`` of the 8x8 digits, flat, scaled to [0, 1]."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0)


def import_keras():
    """Keras 3 on ``KERAS_BACKEND`` if that backend is installed, else jax, else torch."""
    import importlib.util

    wanted = os.environ.get("KERAS_BACKEND")
    for backend in (wanted, "jax", "torch"):
        if backend and importlib.util.find_spec(backend) is not None:
            os.environ["KERAS_BACKEND"] = backend
            break
    import keras

    return keras


def digits_cnn(keras, seed=0):
    """Conv2D(8, 3, same, tanh), BatchNormalization, AveragePooling2D(2), Dropout,
    Conv2D(16, 3, tanh), Flatten, Dropout, Dense(10, softmax), on (8, 8, 1) digits."""
    L = keras.layers
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((8, 8, 1)), L.Conv2D(8, 3, padding="same", activation="tanh"),
        L.BatchNormalization(), L.AveragePooling2D(2), L.Dropout(0.2),
        L.Conv2D(16, 3, activation="tanh"), L.Flatten(), L.Dropout(0.2),
        L.Dense(10, activation="softmax")])


def digits_residual(keras, seed=0):
    """A residual block: Dense(64, tanh) -> Dropout -> Dense(64, tanh), Add of the two,
    Dense(10, softmax)."""
    L = keras.layers
    keras.utils.set_random_seed(seed)
    inp = keras.Input((64,))
    h = L.Dense(64, activation="tanh")(inp)
    r = L.Dense(64, activation="tanh")(L.Dropout(0.2)(h))
    return keras.Model(inp, L.Dense(10, activation="softmax")(L.Add()([h, r])))


def trained(keras, build, X_train, y_train, seed=0, epochs=40):
    """``build(keras, seed)`` trained with Adam(0.005) and sparse cross-entropy on the
    digits (reshaped to the model's input), and its input shape."""
    model = build(keras, seed)
    model.compile(optimizer=keras.optimizers.Adam(0.005),
                  loss="sparse_categorical_crossentropy")
    shape = tuple(model.inputs[0].shape[1:])
    model.fit(X_train.reshape((-1,) + shape), y_train, epochs=epochs, batch_size=32,
              verbose=0)
    return model, shape


def accuracy(model, X, y):
    """A Keras classifier's accuracy on flat digits ``X``."""
    shape = tuple(model.inputs[0].shape[1:])
    return float(np.mean(model.predict(X.reshape((-1,) + shape), verbose=0).argmax(1) == y))


def sine_regressor(keras):
    """Notebook 03's Keras regressor, Dense(8, tanh) -> Dense(1), trained on 0.8 sin(3x).

    Returns ``(net, x_train, x_grid, y_keras)``: the trained model, its 1,000
    training inputs, 60 points on [-1, 1] and Keras's outputs there.
    """
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_train = rng.uniform(-1, 1, size=(1000, 1))
    y_train = 0.8 * np.sin(3 * x_train)
    net = keras.Sequential([keras.Input((1,)), keras.layers.Dense(8, activation="tanh"),
                            keras.layers.Dense(1)])
    net.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    net.fit(x_train, y_train, epochs=60, batch_size=32, verbose=0)
    x_grid = np.linspace(-1, 1, 60)[:, None]
    return net, x_train, x_grid, net.predict(x_grid, verbose=0)


def simulate(net, neurons, X, T, seed, synapse=None):
    """(outputs averaged over each presentation's last half, |spikes| per sample).

    One sequential ``nengo.Simulator`` run of ``net`` (with ``input`` and
    ``output`` Nodes) presenting ``X`` for ``T`` s each at dt 1 ms; ``neurons``
    is a neurons object or a list of them (all probed, spikes counted over the
    whole presentation; negative spikes count by their size); ``synapse``
    filters the output probe.
    """
    neurons = neurons if isinstance(neurons, (list, tuple)) else [neurons]
    steps = int(round(T / 0.001))
    with nengo.Network(seed=seed) as wrap:
        wrap.add(net)
        stim = nengo.Node(nengo.processes.PresentInput(X, T))
        nengo.Connection(stim, net.input, synapse=None)
        p_out = nengo.Probe(net.output, synapse=synapse)
        probes = [nengo.Probe(n, synapse=None) for n in neurons]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with nengo.Simulator(wrap, seed=seed, progress_bar=False) as sim:
            sim.run_steps(steps * len(X))
    out = sim.data[p_out].reshape(len(X), steps, -1)[:, steps // 2:].mean(axis=1)
    spikes = sum(np.abs(sim.data[p]).sum() for p in probes) * 0.001 / len(X)
    return out, float(spikes)
