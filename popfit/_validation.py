"""Small argument checks shared by the public functions.

Each check raises an error that names the function, the argument, the bound
and the value received.
"""

import numbers

import numpy as np

from .exceptions import PopfitTypeError, PopfitValueError


def check_int(value, name, where, low=1, high=None):
    """Return ``value`` as an int, checking ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise PopfitTypeError(
            f"{where}: {name} must be an integer >= {low} "
            f"(got {value!r} of type {type(value).__name__})"
        )
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise PopfitValueError(f"{where}: {name} must be an integer {bound} (got {value})")
    return value


def check_positive(value, name, where, upper=None, upper_why="", allow_none=False):
    """Return ``value`` as a float, checking ``0 < value`` (and ``< upper``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PopfitTypeError(
            f"{where}: {name} must be a positive number (got {value!r} of type "
            f"{type(value).__name__})"
        )
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise PopfitValueError(f"{where}: {name} must be finite and > 0 (got {value!r})")
    if upper is not None and value >= upper:
        raise PopfitValueError(
            f"{where}: {name} must be < {upper:g}{upper_why} (got {value:g})"
        )
    return value


def check_domain(domain, where):
    """Return ``domain`` as a ``(lo, hi)`` tuple of finite floats with lo < hi."""
    try:
        lo, hi = (float(v) for v in domain)
    except (TypeError, ValueError):
        raise PopfitValueError(
            f"{where}: domain must be a pair (lo, hi) of finite numbers (got {domain!r})"
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise PopfitValueError(
            f"{where}: domain ends must be finite (got lo={lo!r}, hi={hi!r})"
        )
    if lo >= hi:
        raise PopfitValueError(
            f"{where}: domain must have lo < hi (got lo={lo!r}, hi={hi!r}); "
            "swap the ends or widen the interval"
        )
    return lo, hi


def check_synapse(synapse, name, where, allow_none=True):
    """Return a synapse time constant in seconds (or None if allowed)."""
    if synapse is None:
        if allow_none:
            return None
        raise PopfitValueError(f"{where}: {name} must be a time constant > 0 s (got None)")
    return check_positive(synapse, name, where)
