"""The fit file format, both directions: JSON (never pickle), validated, written atomically.

A fit file is one JSON object (format ``"popfit.PopulationFit"``, version 1)::

    format, format_version          "popfit.PopulationFit", 1
    target                          {"name": str, "named": true} for a registered
                                    curve, or {"name", "named": false, "x": [...],
                                    "y": [...]}: samples (increasing x covering the
                                    domain) interpolated linearly on load
    domain                          [lo, hi]
    neuron_type                     {"type": "LIF", "tau_rc": s, "tau_ref": s,
                                    "min_voltage": v}, {"type": "RectifiedLinear"}, ...
    gain, bias, encoders, decoders  lists of n_neurons numbers (encoders +1 or -1)
    max_rate, synapse               Hz; s or null
    seed, success, message, nfev, fit_time   how the fit was made (optional)

Only the parameters are stored. The metrics (``nrmse``, ``max_error``,
``spiking_nrmse``) and the derived ``max_rates`` and ``intercepts`` are
recomputed on load from the parameters, the single source of truth, so they
follow the current definitions and a file whose decoders were edited loads with
the error of the edited decoders, never a stale one. Files written by popfit
0.1.0 also hold a ``metrics`` block; it is accepted and ignored (a stored copy
would go stale when a metric's definition improves, and checking it would make
such files unloadable).

Loading is strict, so that what loads also saves, and a loaded fit saves again
to the same bytes: every field has its JSON type (integers where integers go,
no strings for numbers, no ``NaN`` or ``Infinity``, no key twice in one
object), the bounds `popfit.fit_activation` enforces (on ``domain``,
``max_rate``, the neuron type; gains finite and > 0, encoders +1 or -1), and a
size bound checked before anything is allocated (`MAX_FILE_BYTES`,
`MAX_FILE_NEURONS`, `MAX_TARGET_SAMPLES`). The neurons must keep the file's own
promise: each one's rate over the domain, recomputed with nengo's ``rates`` of
the stored neuron type from ``gain``, ``bias`` and ``encoders``, may not exceed
``max_rate`` by more than the rounding of nengo's current ``J = gain * x + bias``
(`MAX_RATE_RTOL`). Saving checks the same rules first, so a fit that saves also
loads.
"""

import json
import math
import reprlib

import numpy as np

from . import wholestep
from ._validation import check_domain, check_seed, check_synapse, public
from .exceptions import FitFileError, PopfitError, PopfitValueError
from .files import atomic_write_text, check_path, read_regular_file
from .neurons import (
    SUPPORTED,
    check_max_rate,
    neuron_type_from_dict,
    neuron_type_to_dict,
)
from .result import _J_ULPS, MAX_FILE_NEURONS, MAX_RATE_RTOL, PopulationFit
from .targets import evaluate_target, get_named_target, tabulated_target

FORMAT = "popfit.PopulationFit"
FORMAT_VERSION = 1

MAX_FILE_BYTES = 16 * 2**20
"""Largest fit file `load_fit` reads (bytes); a 256-neuron fit with a callable
target takes about 0.1 MB."""
MAX_TARGET_SAMPLES = 100_001
"""Most samples a tabulated (callable) target may hold in a file."""
N_TARGET_SAMPLES = 2001
"""Samples written for a callable target (linear interpolation error ~1e-7 of
the range for smooth curves)."""

_MAX_INT_DIGITS = 400  # longer JSON integers are too large for any field (no float has > 309)
_TOP_KEYS = ("format", "format_version", "target", "domain", "neuron_type", "gain", "bias",
             "encoders", "decoders", "max_rate", "synapse", "seed", "success", "message",
             "nfev", "fit_time")
_OPTIONAL = {"seed": None, "success": True, "message": "", "nfev": 0, "fit_time": 0.0}
_LEGACY_KEYS = ("metrics",)  # written by popfit 0.1.0; ignored

_show = reprlib.Repr()
_show.maxlevel, _show.maxlist, _show.maxdict, _show.maxstring, _show.maxother = 2, 4, 4, 40, 40


class _HugeInt:
    """A JSON integer too long to be any field's value (kept unconverted)."""

    def __init__(self, text):
        self.digits = len(text.lstrip("-"))

    def __repr__(self):
        return f"an integer of {self.digits} digits"


def _parse_int(text):
    return int(text) if len(text) <= _MAX_INT_DIGITS else _HugeInt(text)


def _describe(value):
    """Short description of a JSON value for a message (bounded in size and depth)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, _HugeInt):
        return repr(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value)))} digits"
    return _show.repr(value)


def _fail(source, msg):
    raise FitFileError(msg if source is None else f"{source}: {msg}")


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value, key, source, what="a finite number", at=""):
    """A JSON number as a finite float (``at``: where in the field, for messages)."""
    if not _is_number(value) and not isinstance(value, _HugeInt):
        _fail(source, f"field {key!r} must be {what} (got {_describe(value)}{at})")
    try:
        x = float(value)
    except (OverflowError, TypeError):  # an int beyond 1.8e308, a _HugeInt
        x = math.inf
    if not math.isfinite(x):
        why = "" if isinstance(value, float) else ", beyond the range of a float"
        _fail(source, f"field {key!r} must be {what} (got {_describe(value)}{at}{why})")
    return x


def _integer(value, key, source, low, high=None):
    """A JSON integer (not a float, not a boolean) in [low, high]."""
    bound = f">= {low}" if high is None else f"in [{low}, {high}]"
    if not isinstance(value, int) or isinstance(value, bool) or not (
            low <= value and (high is None or value <= high)):
        _fail(source, f"field {key!r} must be an integer {bound} (got {_describe(value)})")
    return value


def _array(d, key, n, source):
    """Field ``key`` of ``d``: a list of ``n`` finite numbers, as a float array."""
    v = d.get(key)
    if not isinstance(v, list) or len(v) != n:
        _fail(source, f"field {key!r} must be a list of {n} numbers (got {_describe(v)})")
    return np.array([_finite(e, key, source, f"a list of {n} finite numbers", f" at index {i}")
                     for i, e in enumerate(v)])


def _checked(check, key, source, *args, **kwargs):
    """Run a popfit argument check, reporting its error as a file error on ``key``."""
    try:
        return check(*args, **kwargs)
    except PopfitError as err:
        msg = str(err)  # the check names the argument first: "max_rate must be ..."
        arg = key.split(".")[-1] + " "
        _fail(source, f"field {key!r} {msg[len(arg):]}" if msg.startswith(arg)
              else f"field {key!r}: {msg}")


def _neuron_type(v, source):
    classes = {cls.__name__: cls for cls in SUPPORTED}
    name = v.get("type") if isinstance(v, dict) else None
    if name in wholestep.NAMES.values():  # a fit for nengo-loihi: needs popfit[loihi]
        classes[name] = type(wholestep.make(name))
    if not isinstance(name, str) or name not in classes:
        _fail(source, f"field 'neuron_type' must be an object whose 'type' is one of "
                      f"{sorted(classes)} (got {_describe(v)}): unknown neuron type")
    allowed = set(neuron_type_to_dict(classes[v["type"]]()))  # "type" and its parameters
    unknown = sorted(set(v) - allowed, key=str)
    if unknown:
        _fail(source, f"field 'neuron_type' has unknown entries {unknown} for {v['type']} "
                      f"(it takes {sorted(allowed - {'type'})})")
    params = {k: _finite(e, f"neuron_type.{k}", source) for k, e in v.items() if k != "type"}
    try:
        return neuron_type_from_dict({"type": v["type"], **params})
    except (ValueError, TypeError) as err:  # nengo's ValidationError is a ValueError
        _fail(source, f"field 'neuron_type': {err}")


def _target(t, lo, hi, source):
    if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not isinstance(
            t.get("named"), bool):
        _fail(source, "field 'target' must be an object with a string 'name' and a boolean "
                      f"'named' (got {_describe(t)})")
    allowed = {"name", "named"} if t["named"] else {"name", "named", "x", "y"}
    unknown = sorted(set(t) - allowed, key=str)
    if unknown:
        _fail(source, f"field 'target' has unknown entries {unknown} (a "
                      f"{'named' if t['named'] else 'tabulated'} target takes "
                      f"{sorted(allowed)})")
    if t["named"]:
        return _checked(get_named_target, "target", source, t["name"])
    xs = t.get("x")
    m = len(xs) if isinstance(xs, list) else 0
    if not 2 <= m <= MAX_TARGET_SAMPLES:
        _fail(source, f"field 'target': a tabulated target needs 2 to {MAX_TARGET_SAMPLES} "
                      f"samples 'x' and 'y' (got {_describe(xs)})")
    xs, ys = _array(t, "x", m, source), _array(t, "y", m, source)
    if np.any(np.diff(xs) <= 0):
        _fail(source, "field 'target': samples 'x' must increase")
    if xs[0] > lo or xs[-1] < hi:
        _fail(source, f"field 'target': samples 'x' cover [{float(xs[0])!r}, "
                      f"{float(xs[-1])!r}], not the whole domain [{lo!r}, {hi!r}]")
    return tabulated_target(t["name"], xs, ys)


def fit_from_dict(d, source=None):
    """Validate a fit's dictionary (the JSON object of a fit file) and rebuild the fit.

    Parameters
    ----------
    d : dict
        As returned by `fit_to_dict` (or parsed from a fit file).
    source : str, optional
        The file ``d`` was read from, named in error messages.

    Returns
    -------
    PopulationFit

    Raises
    ------
    FitFileError
        Naming the field, if any field is missing, of the wrong JSON type, out
        of bounds, or the parameters give non-finite rates or outputs.
    """
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        got = _describe(d.get("format")) if isinstance(d, dict) else type(d).__name__
        _fail(source, f"not a popfit fit (expected format {FORMAT!r}, got {got})")
    v = d.get("format_version")
    if not isinstance(v, int) or isinstance(v, bool) or v != FORMAT_VERSION:
        _fail(source, f"unsupported format_version {_describe(v)}; this popfit reads version "
                      f"{FORMAT_VERSION}")
    unknown = sorted(set(d) - set(_TOP_KEYS) - set(_LEGACY_KEYS), key=str)
    if unknown:
        _fail(source, f"unknown fields {unknown}; a version {FORMAT_VERSION} fit has "
                      f"{list(_TOP_KEYS)}")
    missing = [k for k in _TOP_KEYS if k not in d and k not in _OPTIONAL]
    if missing:
        _fail(source, f"missing fields {missing}")
    d = {**_OPTIONAL, **d}

    dom = d["domain"]
    if not isinstance(dom, list) or len(dom) != 2:
        _fail(source, "field 'domain' must be [lo, hi] of finite numbers with lo < hi "
                      f"(got {_describe(dom)})")
    lo, hi = (_finite(e, "domain", source, "[lo, hi] of finite numbers with lo < hi") for e in dom)
    lo, hi = _checked(check_domain, "domain", source, (lo, hi))  # fit_activation's bounds

    gain = d["gain"]
    if not isinstance(gain, list) or not 1 <= len(gain) <= MAX_FILE_NEURONS:
        n = len(gain) if isinstance(gain, list) else _describe(gain)
        _fail(source, f"field 'gain' must be a list of 1 to {MAX_FILE_NEURONS} numbers, one "
                      f"per neuron (got {n}{' numbers' if isinstance(gain, list) else ''})")
    n = len(gain)
    gain, bias, encoders, decoders = (
        _array(d, k, n, source) for k in ("gain", "bias", "encoders", "decoders"))
    if not np.all(np.abs(encoders) == 1):
        _fail(source, "field 'encoders' must hold only +1 and -1")
    if not np.all(gain > 0):
        _fail(source, f"field 'gain' must be positive (got {float(gain.min())!r})")
    neuron_type = _neuron_type(d["neuron_type"], source)
    target = _target(d["target"], lo, hi, source)
    max_rate = _finite(d["max_rate"], "max_rate", source, "a finite number > 0 (Hz)")
    max_rate = _checked(check_max_rate, "max_rate", source, max_rate, neuron_type)
    synapse = d["synapse"]
    if synapse is not None:
        synapse = _finite(synapse, "synapse", source, "null or a finite number > 0 (s)")
        if synapse <= 0:
            _fail(source, "field 'synapse' must be null or a finite number > 0 (s) "
                          f"(got {synapse!r})")
        synapse = _checked(check_synapse, "synapse", source, synapse, "synapse")
    seed = d["seed"]
    if seed is not None:
        seed = _integer(seed, "seed", source, 0)
        seed = _checked(check_seed, "seed", source, seed)
    if not isinstance(d["success"], bool):
        _fail(source, f"field 'success' must be true or false (got {_describe(d['success'])})")
    if not isinstance(d["message"], str):
        _fail(source, f"field 'message' must be a string (got {_describe(d['message'])})")
    nfev = _integer(d["nfev"], "nfev", source, 0)
    fit_time = _finite(d["fit_time"], "fit_time", source, "a finite number >= 0 (s)")
    if fit_time < 0:
        _fail(source, f"field 'fit_time' must be a finite number >= 0 (s) (got {fit_time!r})")

    # before from_parameters, which enforces the same rule, so a file gets this message
    _check_rates(neuron_type, (lo, hi), gain, bias, encoders, max_rate, source)
    with np.errstate(all="ignore"):
        try:
            fit = PopulationFit.from_parameters(
                target=target, domain=(lo, hi), neuron_type=neuron_type, gain=gain,
                bias=bias, encoders=encoders, decoders=decoders, max_rate=max_rate,
                synapse=synapse, seed=seed, success=d["success"], message=d["message"],
                nfev=nfev, fit_time=fit_time)
        except PopfitError as err:
            _fail(source, str(err))
    if not (np.all(np.isfinite(fit.max_rates)) and np.all(np.isfinite(fit.intercepts))):
        _fail(source, "fields 'gain' and 'bias' give non-finite firing rates or intercepts "
                      f"(gain in [{float(gain.min())!r}, {float(gain.max())!r}])")
    if not (math.isfinite(fit.nrmse) and math.isfinite(fit.max_error)):
        _fail(source, "field 'decoders' gives a non-finite output over the domain (decoders "
                      f"up to {float(np.abs(decoders).max())!r}, rates up to "
                      f"{float(fit.max_rates.max()):.4g} Hz)")
    if fit.spiking_nrmse is not None and not math.isfinite(fit.spiking_nrmse):
        _fail(source, f"field 'synapse' ({synapse!r} s) gives a non-finite spike noise")
    return fit


def _check_rates(neuron_type, domain, gain, bias, encoders, max_rate, source):
    """Refuse neurons that fire above ``max_rate`` anywhere in the domain.

    Rates are nengo's (``neuron_type.rates``), monotone in the current, so each
    neuron's highest rate over the domain is at the edge it faces; ``J`` there
    is lowered by its rounding (`_J_ULPS`) before comparing with ``max_rate``.
    `PopulationFit.from_parameters` applies the same rule to every fit.
    """
    lo, hi = domain
    edge = np.where(encoders > 0, hi, -lo)  # largest encoder * x in the domain
    with np.errstate(all="ignore"):
        slack = _J_ULPS * np.finfo(float).eps * (np.abs(gain * edge) + np.abs(bias))
        lowest = neuron_type.rates(edge[None, :], gain, bias - slack)[0]
        max_rates = neuron_type.rates(edge[None, :], gain, bias)[0]
    over = ~(lowest <= max_rate * (1.0 + MAX_RATE_RTOL))  # NaN counts as over
    if over.any():
        rates = np.where(over, max_rates, -np.inf)
        i = int(np.argmax(rates))
        _fail(source, f"{int(over.sum())} of {len(gain)} neurons fire above the file's "
                      f"max_rate {max_rate:g} Hz: neuron {i} fires at "
                      f"{float(max_rates[i]):.6g} Hz at x = {float(edge[i]*encoders[i])!r}"
                      f" (nengo's rates of {type(neuron_type).__name__} from fields 'gain', "
                      "'bias' and 'encoders' over 'domain'); the file was changed after the "
                      "fit: restore it or refit with popfit.fit_activation")


def fit_to_dict(fit):
    """The JSON-safe dictionary of a fit file (see the module docstring).

    `fit_from_dict` inverts it.
    """
    lo, hi = fit.domain
    target = {"name": fit.target.name, "named": fit.target.named}
    if not fit.target.named:
        xs = np.linspace(lo, hi, N_TARGET_SAMPLES)
        target["x"] = xs.tolist()
        target["y"] = evaluate_target(fit.target, xs).tolist()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "target": target,
        "domain": [lo, hi],
        "neuron_type": neuron_type_to_dict(fit.neuron_type),
        "gain": fit.gain.tolist(),
        "bias": fit.bias.tolist(),
        "encoders": fit.encoders.tolist(),
        "decoders": fit.decoders.tolist(),
        "max_rate": fit.max_rate,
        "synapse": fit.synapse,
        "seed": fit.seed,
        "success": fit.success,
        "message": fit.message,
        "nfev": fit.nfev,
        "fit_time": fit.fit_time,
    }


class _DuplicateKey(Exception):
    def __init__(self, key, keys):
        self.key = key
        self.where = ("the top-level object" if "format" in keys else
                      f"the object with keys {_describe(sorted(keys, key=str))}")


def _unique_keys(pairs):
    """``object_pairs_hook`` for `json.loads`: a dict, refusing a key given twice."""
    d = dict(pairs)
    if len(d) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key, d)
            seen.add(key)
    return d


def save_fit(fit, path):
    """Save ``fit`` to ``path`` as JSON, atomically (see `atomic_write_text`).

    Raises
    ------
    PopfitValueError
        If `load_fit` would refuse the file (checked before writing).
    OSError
        If the file cannot be written; the message names ``path``.
    """
    path = check_path(path)
    d = fit_to_dict(fit)
    try:
        fit_from_dict(d)
    except FitFileError as err:
        raise PopfitValueError(
            f"cannot save this fit to {path!r}: load_fit would refuse the file: {err}"
        ) from None
    atomic_write_text(path, json.dumps(d, indent=1, allow_nan=False) + "\n")


@public
def load_fit(path):
    """Load a fit saved with `PopulationFit.save` (JSON; validated; never executes code).

    Parameters
    ----------
    path : str or os.PathLike
        The fit file.

    Returns
    -------
    PopulationFit
        With its metrics recomputed from the stored parameters.

    Raises
    ------
    FitFileError
        If the file is not UTF-8 JSON, is truncated, larger than
        `MAX_FILE_BYTES`, not a popfit fit of a known format version, or any
        field is invalid (the message names the file and the field).
        It is also raised, naming ``path``, if ``path`` is not a regular
        file (a directory, FIFO, device or socket: refused before opening, so
        loading never blocks on a pipe) or reading fails (``EIO``, ...), and
        if a JSON object holds a key twice.
    OSError
        If the file cannot be opened (it does not exist, permission denied);
        the message names ``path``.
    """
    path = check_path(path)
    data = read_regular_file(path, MAX_FILE_BYTES)
    if len(data) > MAX_FILE_BYTES:
        _fail(path, f"file is larger than {MAX_FILE_BYTES} bytes (MAX_FILE_BYTES); a popfit "
                    "fit is far smaller")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _fail(path, "file is not UTF-8 text (a popfit fit is JSON)")
    try:
        d = json.loads(text, parse_int=_parse_int, object_pairs_hook=_unique_keys)
    except _DuplicateKey as err:
        _fail(path, f"key {err.key!r} appears twice in {err.where}; JSON parsers disagree "
                    "on which value wins, so popfit refuses: keep one and delete the other")
    except json.JSONDecodeError as err:
        _fail(path, f"not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
                    "the file may be truncated or not a popfit fit")
    except RecursionError:
        _fail(path, "JSON nested too deeply to parse (a popfit fit nests 3 levels); "
                    "the file is not a popfit fit")
    return fit_from_dict(d, source=path)
