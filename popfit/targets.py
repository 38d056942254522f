"""Target curves: the one registry of named activation functions.

A `Target` is a named function with a default domain. The registry holds
every activation name popfit knows, used by fitting and by model conversion
alike:

* `TARGETS`: the fittable curves (scalar, elementwise): tanh, sigmoid,
  linear, relu, softplus. `fit_activation` takes their names.
* `OUTPUT_ONLY`: activations a converted model applies in numpy to its
  decoded output but that no population replaces: ``softmax`` (over the last
  axis, not elementwise) and ``exp``. Their `Target.fittable` is False.
* `ALIASES`: other names of the same curves (scikit-learn's ``logistic`` and
  ``identity``).

Look names up with `get_activation` (any registered name) or
`get_named_target` (fittable ones only); `apply_activation` evaluates one in
numpy. Every registered function is a module-level function, so targets and
the fits holding them pickle. Any other callable ``f(x: ndarray) -> ndarray``
can be wrapped with `resolve_target`; `evaluate_target` checks what it returns.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple

import numpy as np
import scipy.special

from ._validation import check_domain, check_real_array
from .exceptions import PopfitTypeError, PopfitValueError


def _sigmoid(x):
    return scipy.special.expit(x)  # overflow-free, accurate in both tails


def _softplus(x):
    return np.logaddexp(0.0, x)


def _linear(x):
    return np.array(x, dtype=float)


def _relu(x):
    return np.maximum(x, 0.0)


def _softmax(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


#: Largest |value| a target may take: leaves headroom for the sums of
#: predictions and errors in float64 (max ~1.8e308).
MAX_TARGET_MAGNITUDE = 1e300


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
    fittable : bool
        False for the output-only activations (`OUTPUT_ONLY`), which no
        population replaces.
    """

    name: str
    function: Callable = field(repr=False, compare=False)
    default_domain: Optional[Tuple[float, float]] = None
    named: bool = False
    fittable: bool = True

    def __call__(self, x):
        return self.function(np.asarray(x, dtype=float))


TARGETS = {
    "tanh": Target("tanh", np.tanh, (-3.0, 3.0), True),
    "sigmoid": Target("sigmoid", _sigmoid, (-6.0, 6.0), True),
    "linear": Target("linear", _linear, (-1.0, 1.0), True),
    "relu": Target("relu", _relu, (-1.0, 1.0), True),
    "softplus": Target("softplus", _softplus, (-4.0, 4.0), True),
}
OUTPUT_ONLY = {
    "softmax": Target("softmax", _softmax, None, True, fittable=False),
    "exp": Target("exp", np.exp, None, True, fittable=False),
}
ALIASES = {"logistic": "sigmoid", "identity": "linear"}


def known_target_names():
    """All accepted target names, aliases included, sorted."""
    return sorted(list(TARGETS) + list(ALIASES))


def activation_names(fittable=None):
    """Canonical registered names (no aliases), in registry order.

    Parameters
    ----------
    fittable : bool or None
        True: the curves a population can replace (`TARGETS`); False: the
        output-only ones (`OUTPUT_ONLY`); None: all of them.
    """
    names = []
    if fittable is None or fittable:
        names += list(TARGETS)
    if fittable is None or not fittable:
        names += list(OUTPUT_ONLY)
    return tuple(names)


def canonical_name(name):
    """The registry name of ``name`` (aliases resolved, case-insensitive), or None."""
    key = str(name).lower()
    key = ALIASES.get(key, key)
    return key if key in TARGETS or key in OUTPUT_ONLY else None


def get_activation(name):
    """Return the registered `Target` called ``name``, fittable or output-only.

    Aliases and case are accepted (``"logistic"`` gives the sigmoid). Raises
    `PopfitValueError` naming the known names for anything else.
    """
    key = canonical_name(name)
    if key is None:
        raise PopfitValueError(
            f"unknown activation {name!r}; known names are "
            f"{', '.join(sorted(activation_names() + tuple(ALIASES)))}"
        )
    return TARGETS.get(key) or OUTPUT_ONLY[key]


def apply_activation(name, z):
    """Apply the registered activation ``name`` to ``z`` in numpy.

    Elementwise, except ``softmax``, which normalises over the last axis.
    """
    return get_activation(name).function(np.asarray(z, dtype=float))


def get_named_target(name):
    """Return the registered fittable `Target` called ``name`` (or an alias of it)."""
    key = canonical_name(name)
    if key in OUTPUT_ONLY:
        raise PopfitValueError(
            f"target {name!r} is an output-only activation: no population replaces "
            f"it; fittable names are {', '.join(known_target_names())}"
        )
    if key is None:
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
    """Evaluate ``target`` at ``x`` and check what it returns.

    The result must be a real numeric array of ``x``'s shape, finite, and
    at most `MAX_TARGET_MAGNITUDE` in absolute value; otherwise a popfit
    error names the target and what it returned.
    """
    x = np.asarray(x, dtype=float)
    try:
        y = target(x)
    except Exception as err:
        raise PopfitValueError(
            f"target {target.name!r} raised {type(err).__name__}: {err} "
            f"when called on an array of shape {x.shape}; it must accept a numpy array"
        ) from err
    y = check_real_array(y, f"the output of target {target.name!r}")
    if y.shape != x.shape:
        raise PopfitValueError(
            f"target {target.name!r} must return a real array of the input's "
            f"shape {x.shape} (got shape {y.shape}); vectorize it, e.g. with np.vectorize"
        )
    bad = ~np.isfinite(y)
    if bad.any():
        i = int(np.argmax(bad))
        raise PopfitValueError(
            f"target {target.name!r} returned a non-finite value "
            f"{float(y[i])!r} at x={float(x[i])!r}; it must be finite over the whole domain"
        )
    big = np.abs(y) > MAX_TARGET_MAGNITUDE
    if big.any():
        i = int(np.argmax(big))
        raise PopfitValueError(
            f"target {target.name!r} must stay within +-{MAX_TARGET_MAGNITUDE:g} "
            f"(got {float(y[i])!r} at x={float(x[i])!r}); divide it by a constant "
            "and scale the decoders back"
        )
    return y
