"""A Keras CNN exported with `popfit.to_nir` runs in snnTorch (nir environment).

Keras runs on torch's CPU build here (``.ci/make_nir_venv``). A convolution's
sparse weights are exported as a dense NIR ``Affine`` (exact: the same
matrix the nengo network runs); the snnTorch run is compared with the Keras
model's own predictions, not with popfit's.
"""

import importlib.util
import os

import numpy as np
import pytest

for _backend in (os.environ.get("KERAS_BACKEND"), "jax", "torch"):
    if _backend and importlib.util.find_spec(_backend) is not None:
        os.environ["KERAS_BACKEND"] = _backend
        break
keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
pytest.importorskip("snntorch")

from sklearn.datasets import load_digits  # noqa: E402
from test_nir_snntorch import run_snntorch  # noqa: E402  (this folder's helper)

import popfit  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def cnn():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).reshape(-1, 8, 8, 1)
    L = keras.layers
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(4, 3, strides=2, activation="tanh"),
                            L.Flatten(),
                            L.Dense(10, activation="softmax")])
    net.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    net.fit(X[:800], y[:800], epochs=15, batch_size=32, verbose=0)
    return net, X


def test_cnn_in_snntorch(cnn):
    net, X = cnn
    X_test = X[800:840]
    model = popfit.convert(net, platform="snntorch", n_neurons=4, calibration_data=X[:800],
                           seed=0)
    assert model.spec.has_sparse
    graph = popfit.to_nir(model)
    first = next(node for node in graph.nodes.values() if type(node).__name__ == "Affine")
    assert first.weight.shape == (model.network.layers[0].total_neurons, 64)
    total = run_snntorch(graph, X_test.reshape(len(X_test), -1), 0.1)
    keras_labels = net.predict(X_test, verbose=0).argmax(1)
    assert np.mean(total.argmax(1) == keras_labels) >= 0.95


def test_skip_connections_are_not_exported_yet(cnn):
    L = keras.layers
    inp = keras.Input((4,))
    h = L.Dense(3, activation="tanh")(inp)
    r = L.Dense(3, activation="tanh")(h)
    model = popfit.convert(keras.Model(inp, L.Dense(2)(L.Add()([h, r]))), n_neurons=1,
                           platform="snntorch", search=popfit.SearchOptions.quick())
    with pytest.raises(popfit.ConversionError, match=r"popfit.to_nir supports models whose "
                                                     r"layers form a chain"):
        popfit.to_nir(model)
