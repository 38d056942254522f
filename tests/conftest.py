import os

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
os.environ.setdefault("KERAS_BACKEND", "jax")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
