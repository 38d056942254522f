import time, numpy as np, keras, popfit, jax
from sklearn.datasets import load_digits
X, y = load_digits(return_X_y=True); X = X[:300] / 16; y = y[:300]
L = keras.layers
keras.utils.set_random_seed(0)
cnn = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(3, 3, padding="same", activation="tanh"),
    L.BatchNormalization(), L.AveragePooling2D(2), L.Conv2D(4, 3, activation="tanh"), L.Flatten(),
    L.Dense(10, activation="softmax")])
m = popfit.convert(cnn, n_neurons=1, calibration_data=X, refit=False, search=popfit.SearchOptions.quick(), seed=0)
jax.config.update("jax_log_compiles", True)
import logging; logging.basicConfig(level=logging.WARNING)
t=time.time(); popfit.finetune(m, X, y, epochs=2, seed=0); print("finetune", time.time()-t)
