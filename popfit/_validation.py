"""Argument checks shared by the public functions, and their error context.

A check raises a popfit error that names the argument, the bound and the
value received; it does not know who called it. Public functions and methods
are wrapped in `public`, which records their name on any popfit error raised
inside (the outermost public call wins), so the message starts with the
function the user called::

    fit_activation: n_neurons must be an integer >= 1 (got 0)
"""

import contextvars
import functools
import numbers

import numpy as np

from .exceptions import PopfitError, PopfitTypeError, PopfitValueError

_CALLER = contextvars.ContextVar("popfit_public_caller", default=None)

SEED_MAX = 2**32 - 1  # numpy's legacy seeding (used by nengo) takes seeds < 2**32


def public(func):
    """Decorate a public function or method: errors raised inside name it.

    The name comes from the function itself (``__qualname__``; a class's
    ``__init__`` and ``__call__`` are named by their class), so it cannot
    drift from the code.
    Only the outermost decorated call sets the name, so a function used by
    another public function (``fit_activation`` inside
    ``PopulationRegressor.fit``) reports the one the user called.
    """
    return _wrap(func, public_name(func))


def public_name(func):
    """``"convert"``, ``"ConvertedModel.predict"``, ``"PopulationLayer"`` (for its
    ``__init__``), ``"SpikeNoiseL2"`` (for its ``__call__``)."""
    name = func.__qualname__.replace(".<locals>", "")
    for special in (".__init__", ".__call__"):
        if name.endswith(special):
            return name[:-len(special)]
    return name


def _wrap(func, name):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if _CALLER.get() is not None:
            return func(*args, **kwargs)
        token = _CALLER.set(name)
        try:
            return func(*args, **kwargs)
        except PopfitError as err:
            if err.where is None:
                err.where = name
            raise
        finally:
            _CALLER.reset(token)
    return wrapper


def current_caller():
    """Name of the public popfit call under way (for warnings), or ``"popfit"``."""
    return _CALLER.get() or "popfit"


def check_int(value, name, low=1, high=None):
    """Return ``value`` as an int, checking ``low <= value <= high``."""
    bound = f">= {low}" if high is None else f"in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise PopfitTypeError(
            f"{name} must be an integer {bound} (got {value!r} of type {type(value).__name__})"
        )
    value = int(value)
    if value < low or (high is not None and value > high):
        raise PopfitValueError(f"{name} must be an integer {bound} (got {value})")
    return value


def check_bool(value, name):
    """Return ``value`` as a bool; only ``True``/``False`` (and numpy bools) are accepted.

    A non-empty string such as ``"False"`` is truthy in Python, so accepting
    truthiness would silently do the opposite of what was asked.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise PopfitTypeError(
        f"{name} must be True or False (got {value!r} of type {type(value).__name__})")


def check_seed(seed, name="seed", allow_none=False):
    """Return ``seed`` as an int in [0, 2**32 - 1] (what numpy and nengo accept)."""
    if seed is None and allow_none:
        return None
    return check_int(seed, name, low=0, high=SEED_MAX)


def check_positive(value, name, upper=None, upper_why="", allow_none=False):
    """Return ``value`` as a float, checking ``0 < value`` (and ``< upper``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PopfitTypeError(
            f"{name} must be a positive number (got {value!r} of type "
            f"{type(value).__name__})"
        )
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise PopfitValueError(f"{name} must be finite and > 0 (got {value!r})")
    if upper is not None and value >= upper:
        raise PopfitValueError(f"{name} must be < {upper:g}{upper_why} (got {value:g})")
    return value


#: Domain widths allowed: squares of the width (and of gains scaled by it)
#: stay finite and normal in float64.
DOMAIN_WIDTH_BOUNDS = (float(np.sqrt(np.finfo(float).tiny)), float(np.sqrt(np.finfo(float).max)))
#: A domain must be at least this wide relative to its largest |end|: below
#: that, nengo's current ``J = gain * x + bias`` loses the input's variation
#: to float64 rounding (about 2e-16 relative); shift the input instead.
MIN_RELATIVE_WIDTH = 1e-8


def check_domain(domain):
    """Return ``domain`` as a ``(lo, hi)`` tuple of finite floats with lo < hi.

    The width ``hi - lo`` must lie within `DOMAIN_WIDTH_BOUNDS` and be at
    least `MIN_RELATIVE_WIDTH` times ``max(|lo|, |hi|)``.
    """
    try:
        lo, hi = (float(v) for v in domain)
    except (TypeError, ValueError):
        raise PopfitValueError(
            f"domain must be a pair (lo, hi) of finite numbers (got {domain!r})"
        ) from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise PopfitValueError(f"domain ends must be finite (got lo={lo!r}, hi={hi!r})")
    if lo >= hi:
        raise PopfitValueError(
            f"domain must have lo < hi (got lo={lo!r}, hi={hi!r}); "
            "swap the ends or widen the interval"
        )
    with np.errstate(over="ignore"):
        width = hi - lo
    low, high = DOMAIN_WIDTH_BOUNDS
    if not low <= width <= high:
        raise PopfitValueError(
            f"domain width hi - lo must be in [{low:.3g}, {high:.3g}] (got lo={lo!r}, "
            f"hi={hi!r}, width {width:.3g}); rescale the input"
        )
    if width < MIN_RELATIVE_WIDTH * max(abs(lo), abs(hi)):
        raise PopfitValueError(
            f"domain width hi - lo must be at least {MIN_RELATIVE_WIDTH:g} times "
            f"max(|lo|, |hi|) (got lo={lo!r}, hi={hi!r}, width {width:.3g}); float64 "
            "cannot resolve inputs that close together; subtract a constant from the input"
        )
    return lo, hi


def check_real_array(value, name):
    """Return ``value`` as a float ndarray, refusing strings, objects, dicts and complex.

    Shape and finiteness are left to the caller.
    """
    what = type(value).__name__
    arr = None
    if not isinstance(value, (dict, set, str, bytes)):
        try:
            arr = np.asarray(value)
            what = f"an array of dtype {arr.dtype}"
        except (TypeError, ValueError):  # ragged sequences
            pass
    if arr is None or arr.dtype.kind not in "biuf":
        fix = ("; take the real part explicitly if the imaginary part is zero"
               if arr is not None and arr.dtype.kind == "c" else "")
        raise PopfitTypeError(f"{name} must be an array of real numbers (got {what}){fix}")
    return np.asarray(arr, dtype=float)


def check_eval_points(eval_points, domain, name="eval_points"):
    """Return ``eval_points`` as a 1-d float array of finite inputs inside ``domain``.

    Shapes ``(n,)`` and ``(n, 1)`` are accepted; ``n`` must be >= 1.
    """
    lo, hi = domain
    x = check_real_array(eval_points, name)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1 or x.size == 0:
        raise PopfitValueError(
            f"{name} must be a non-empty 1-d array of inputs (got shape {x.shape})"
        )
    bad = ~np.isfinite(x) | (x < lo) | (x > hi)
    if bad.any():
        raise PopfitValueError(
            f"{name} must be finite and inside the domain [{lo!r}, {hi!r}] "
            f"(got {int(bad.sum())} of {x.size} outside, e.g. {float(x[bad][0])!r}); "
            "widen the domain or drop those points"
        )
    return x


def check_synapse(synapse, name, allow_none=True):
    """Return a synapse time constant in seconds (or None if allowed)."""
    if synapse is None:
        if allow_none:
            return None
        raise PopfitValueError(f"{name} must be a time constant > 0 s (got None)")
    return check_positive(synapse, name)


def check_finite_array(value, name, shape=None, shape_name=None):
    """`check_real_array`, then ``shape`` (if given) and finiteness, as a PopfitValueError.

    ``shape_name`` describes the shape in words, e.g. ``"(n_units,)"``.
    """
    arr = check_real_array(value, name)
    want = ""
    if shape is not None:
        want = f" of shape {shape_name + ' = ' if shape_name else ''}{tuple(shape)}"
        if arr.shape != tuple(shape):
            raise PopfitValueError(f"{name} must be a finite array{want} (got shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise PopfitValueError(
            f"{name} must be a finite array{want} (got shape {arr.shape} with non-finite values)"
        )
    return arr


def user_stacklevel():
    """``warnings.warn`` stacklevel that points at the first frame outside popfit.

    Call it as ``warnings.warn(msg, category, stacklevel=user_stacklevel())``
    from any depth inside popfit (public functions are wrapped by `public`,
    so a fixed stacklevel would name popfit's own wrapper).
    """
    import inspect
    import os

    root = os.path.dirname(os.path.abspath(__file__))
    frame, level = inspect.currentframe().f_back, 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(root):
        frame, level = frame.f_back, level + 1
    return level
