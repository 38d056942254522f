"""Target curves: the signed activation functions a population replaces.

A `Target` is a named scalar function with a default domain. The named ones
are registered in `TARGETS`; any callable ``f(x: ndarray) -> ndarray`` can be
wrapped with `resolve_target`, which checks what it returns.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple

import numpy as np

from ._validation import check_domain
from .exceptions import PopfitTypeError, PopfitValueError


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


def _softplus(x):
    return np.logaddexp(0.0, x)


@dataclass(frozen=True)
class Target:
    """A scalar function to approximate, with its default domain.

    Parameters
    ----------
    name : str
        ``"tanh"``, ``"sigmoid"``, ..., or a description of a user callable.
    function : callable
        Vectorized ``f(x: ndarray) -> ndarray`` of the same shape.
    default_domain : (float, float) or None
        Interval used when the caller gives none.
    named : bool
        True for the registered targets (which can be saved by name).
    """

    name: str
    function: Callable = field(repr=False, compare=False)
    default_domain: Optional[Tuple[float, float]] = None
    named: bool = False

    def __call__(self, x):
        return self.function(np.asarray(x, dtype=float))


TARGETS = {
    "tanh": Target("tanh", np.tanh, (-3.0, 3.0), True),
    "sigmoid": Target("sigmoid", _sigmoid, (-6.0, 6.0), True),
    "linear": Target("linear", lambda x: np.array(x, dtype=float), (-1.0, 1.0), True),
    "relu": Target("relu", lambda x: np.maximum(x, 0.0), (-1.0, 1.0), True),
    "softplus": Target("softplus", _softplus, (-4.0, 4.0), True),
}
ALIASES = {"logistic": "sigmoid", "identity": "linear"}


def known_target_names():
    """All accepted target names, aliases included, sorted."""
    return sorted(list(TARGETS) + list(ALIASES))


def get_named_target(name):
    """Return the registered `Target` called ``name`` (or an alias of it)."""
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in TARGETS:
        raise PopfitValueError(
            f"unknown target {name!r}; known names are "
            f"{', '.join(known_target_names())}, or pass a callable f(x) with a domain"
        )
    return TARGETS[key]


class _Interpolant:
    """Linear interpolation of samples ``(x, y)``, ``x`` increasing (picklable)."""

    def __init__(self, x, y):
        self.x = np.array(x, dtype=float)
        self.y = np.array(y, dtype=float)

    def __call__(self, q):
        return np.interp(q, self.x, self.y)


def tabulated_target(name, x, y):
    """A `Target` that linearly interpolates samples, ``x`` increasing.

    Used for loaded fits and for `PopulationRegressor`; it pickles.
    """
    f = _Interpolant(x, y)
    return Target(name, f, (float(f.x[0]), float(f.x[-1])), False)


def resolve_target(target, domain):
    """Turn ``target`` (name, `Target` or callable) and ``domain`` into both, checked.

    Returns
    -------
    target : Target
    domain : (float, float)
    """
    if isinstance(target, str):
        target = get_named_target(target)
    elif isinstance(target, Target):
        pass
    elif callable(target):
        name = getattr(target, "__name__", None) or type(target).__name__
        target = Target(f"callable {name}", target, None, False)
    else:
        raise PopfitTypeError(
            f"target must be a name ({', '.join(known_target_names())}) "
            f"or a callable f(x) (got {target!r} of type {type(target).__name__})"
        )
    if domain is None:
        if target.default_domain is None:
            raise PopfitValueError(
                f"domain is required for a callable target {target.name!r} "
                "(got None); pass domain=(lo, hi)"
            )
        domain = target.default_domain
    return target, check_domain(domain)


def evaluate_target(target, x):
    """Evaluate ``target`` at ``x`` and check shape and finiteness."""
    x = np.asarray(x, dtype=float)
    try:
        y = target(x)
    except Exception as err:
        raise PopfitValueError(
            f"target {target.name!r} raised {type(err).__name__}: {err} "
            f"when called on an array of shape {x.shape}; it must accept a numpy array"
        ) from err
    y = np.asarray(y, dtype=float) if not np.iscomplexobj(y) else y
    if np.iscomplexobj(y) or y.shape != x.shape:
        raise PopfitValueError(
            f"target {target.name!r} must return a real array of the input's "
            f"shape {x.shape} (got {getattr(y, 'dtype', type(y))} of shape "
            f"{np.shape(y)}); vectorize it, e.g. with np.vectorize"
        )
    bad = ~np.isfinite(y)
    if bad.any():
        i = int(np.argmax(bad))
        raise PopfitValueError(
            f"target {target.name!r} returned a non-finite value "
            f"{float(y[i])!r} at x={float(x[i])!r}; it must be finite over the whole domain"
        )
    return y
