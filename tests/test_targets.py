import numpy as np
import pytest

from popfit.exceptions import PopfitValueError
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


def test_registry_serves_fitting_and_conversion():
    """One registry: fittable curves, output-only activations, aliases, numpy application."""
    import scipy.special

    from popfit.targets import (OUTPUT_ONLY, activation_names, apply_activation,
                                canonical_name, get_activation)

    assert activation_names(fittable=True) == ("tanh", "sigmoid", "linear", "relu", "softplus")
    assert activation_names(fittable=False) == ("softmax", "exp")
    assert get_activation("logistic") is TARGETS["sigmoid"]
    assert get_activation("Softmax") is OUTPUT_ONLY["softmax"]
    assert not OUTPUT_ONLY["exp"].fittable and TARGETS["tanh"].fittable
    assert canonical_name("identity") == "linear" and canonical_name("gelu") is None
    z = np.random.default_rng(0).normal(0, 30, (5, 4))
    np.testing.assert_allclose(apply_activation("softmax", z), scipy.special.softmax(z, axis=1))
    np.testing.assert_allclose(apply_activation("exp", z[:, :1] / 30), np.exp(z[:, :1] / 30))
    np.testing.assert_allclose(apply_activation("logistic", z), scipy.special.expit(z))
    np.testing.assert_allclose(apply_activation("relu", z), np.maximum(z, 0))
    with pytest.raises(PopfitValueError, match=r"target 'softmax' is an output-only activation"):
        get_named_target("softmax")
    with pytest.raises(PopfitValueError, match=r"unknown activation 'gelu'; known names are "
                                               r"exp, identity, linear, logistic, relu"):
        get_activation("gelu")
