"""Saving and loading fits as JSON (never pickle), with atomic writes."""

import json
import math
import os
import tempfile

import numpy as np

from .exceptions import FitFileError
from .neurons import neuron_type_from_dict
from .result import FORMAT, FORMAT_VERSION
from .targets import get_named_target, tabulated_target


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".popfit-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_fit(fit, path):
    """Save ``fit`` to ``path`` as JSON."""
    atomic_write_text(path, json.dumps(fit.to_dict(), indent=1, allow_nan=False) + "\n")


def _fail(source, msg):
    raise FitFileError(f"load_fit: {source}: {msg}")


def _array(d, key, n, source):
    v = d.get(key)
    if not isinstance(v, list) or len(v) != n or not all(
            isinstance(e, (int, float)) and not isinstance(e, bool) for e in v):
        _fail(source, f"field {key!r} must be a list of {n} numbers (got {str(v)[:80]})")
    a = np.array(v, dtype=float)
    if not np.all(np.isfinite(a)):
        _fail(source, f"field {key!r} holds non-finite values")
    return a


def fit_from_dict(d, source="dict"):
    """Validate a `PopulationFit.to_dict` dictionary and rebuild the fit."""
    from .result import PopulationFit

    if not isinstance(d, dict) or d.get("format") != FORMAT:
        _fail(source, f"not a popfit fit (expected format {FORMAT!r}, got "
                     f"{d.get('format') if isinstance(d, dict) else type(d).__name__!r})")
    if d.get("format_version") != FORMAT_VERSION:
        _fail(source, f"unsupported format_version {d.get('format_version')!r}; this popfit "
                     f"reads version {FORMAT_VERSION}")
    try:
        dom = d["domain"]
        lo, hi = float(dom[0]), float(dom[1])
        if len(dom) != 2 or not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError
    except (KeyError, TypeError, ValueError, IndexError):
        _fail(source, f"field 'domain' must be [lo, hi] with lo < hi (got {d.get('domain')!r})")
    gain = d.get("gain")
    if not isinstance(gain, list) or len(gain) < 1:
        _fail(source, "field 'gain' must be a non-empty list")
    n = len(gain)
    gain, bias, encoders, decoders = (
        _array(d, k, n, source) for k in ("gain", "bias", "encoders", "decoders"))
    if not np.all(np.abs(encoders) == 1):
        _fail(source, "field 'encoders' must hold only +1 and -1")
    if not np.all(gain > 0):
        _fail(source, "field 'gain' must be positive")
    try:
        neuron_type = neuron_type_from_dict(d.get("neuron_type"))
    except (ValueError, TypeError) as err:
        _fail(source, f"field 'neuron_type': {err}")
    t = d.get("target")
    if not isinstance(t, dict) or not isinstance(t.get("name"), str):
        _fail(source, f"field 'target' must be an object with a name (got {str(t)[:80]})")
    if t.get("named"):
        try:
            target = get_named_target(t["name"])
        except ValueError as err:
            _fail(source, str(err))
    else:
        xs = t.get("x")
        m = len(xs) if isinstance(xs, list) else 0
        if m < 2:
            _fail(source, "a callable target needs its samples 'x' and 'y'")
        xs, ys = _array(t, "x", m, source), _array(t, "y", m, source)
        if np.any(np.diff(xs) <= 0):
            _fail(source, "target samples 'x' must increase")
        target = tabulated_target(t["name"], xs, ys)
    max_rate = d.get("max_rate")
    synapse = d.get("synapse")
    if not isinstance(max_rate, (int, float)) or not max_rate > 0:
        _fail(source, f"field 'max_rate' must be a number > 0 (got {max_rate!r})")
    if synapse is not None and (not isinstance(synapse, (int, float)) or not synapse > 0):
        _fail(source, f"field 'synapse' must be null or a number > 0 (got {synapse!r})")
    seed = d.get("seed")
    return PopulationFit.from_parameters(
        target=target, domain=(lo, hi), neuron_type=neuron_type, gain=gain, bias=bias,
        encoders=encoders, decoders=decoders, max_rate=max_rate, synapse=synapse,
        seed=seed if isinstance(seed, int) else None, success=bool(d.get("success", True)),
        message=str(d.get("message", "")), nfev=int(d.get("nfev", 0) or 0),
        fit_time=float(d.get("fit_time", 0.0) or 0.0),
    )


def load_fit(path):
    """Load a fit saved with `PopulationFit.save` (JSON; validated; never executes code).

    Raises
    ------
    FitFileError
        If the file is not valid JSON, is truncated, or is not a popfit fit of a
        known format version.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        _fail(path, "file is not UTF-8 text (a popfit fit is JSON)")
    try:
        d = json.loads(text)
    except json.JSONDecodeError as err:
        _fail(path, f"not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
                    "the file may be truncated or not a popfit fit")
    return fit_from_dict(d, source=path)
