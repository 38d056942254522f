import numpy as np
import pytest

from popfit.targets import TARGETS, get_named_target, known_target_names, resolve_target


def test_named_targets_and_aliases():
    assert get_named_target("logistic") is TARGETS["sigmoid"]
    assert get_named_target("identity") is TARGETS["linear"]
    x = np.linspace(-5, 5, 11)
    np.testing.assert_allclose(TARGETS["sigmoid"](x), 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(TARGETS["softplus"](x), np.log1p(np.exp(x)))
    np.testing.assert_allclose(TARGETS["relu"](x), np.maximum(x, 0))
    assert resolve_target("tanh", None)[1] == (-3.0, 3.0)
    assert resolve_target("sigmoid", None)[1] == (-6.0, 6.0)
    assert resolve_target("linear", (0, 2))[1] == (0.0, 2.0)
    assert set(known_target_names()) >= {"tanh", "sigmoid", "logistic", "linear", "identity"}


def test_sigmoid_does_not_overflow():
    with np.errstate(all="raise"):
        assert TARGETS["sigmoid"](np.array([-1000.0, 1000.0])).tolist() == [0.0, 1.0]
