"""Fit files: hostile or malformed files give a `FitFileError` naming the
field, what loads also saves (to the same bytes), and saves behave as editors do
(permissions kept, symbolic links written through, no stray temporary files)."""

import json
import os
import stat
import subprocess
import sys
import tracemalloc

import nengo
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import popfit
import popfit.files
import popfit.io
from popfit.exceptions import FitFileError, PopfitTypeError, PopfitValueError
from popfit.result import PopulationFit

# these tests need *a* good fit, not the best: the quick search is ~2.4x cheaper
QUICK = popfit.SearchOptions.quick()


@pytest.fixture(scope="module")
def fit():
    """A real LIF fit with a synapse (so every field of the format is in play)."""
    return popfit.fit_activation("tanh", 3, max_rate=300.0, synapse=0.01, search=QUICK, seed=1)


@pytest.fixture(scope="module")
def text(fit):
    return json.dumps(fit.to_dict(), indent=1)


def _load_text(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    return popfit.load_fit(path)


def _load_dict(tmp_path, d):
    return _load_text(tmp_path, json.dumps(d))


def _replace(text, key, raw):
    """``text`` (a fit file) with the JSON value of top-level ``key`` replaced by ``raw``."""
    d = json.loads(text)
    d[key] = "@@"
    return json.dumps(d).replace('"@@"', raw)


# --- a file may not make load_fit allocate without bound ---------------------------

def test_file_with_200000_neurons_is_refused_before_allocating(fit, tmp_path):
    d = fit.to_dict()
    n = 200_000
    for key in ("gain", "bias", "encoders", "decoders"):
        d[key] = [1] * n
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(d))
    tracemalloc.start()
    try:
        with pytest.raises(FitFileError, match=r"'gain' must be a list of 1 to 256 numbers.*"
                                               r"\(got 200000 numbers\)"):
            popfit.load_fit(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100e6  # the JSON parse itself; the metrics grid alone would be ~30 GiB


def test_file_neuron_cap_admits_every_fit_the_library_makes():
    cap = getattr(popfit.fit, "MAX_N_NEURONS", None)  # set by the fit's own limit
    assert popfit.io.MAX_FILE_NEURONS >= (cap or 0)
    assert popfit.io.MAX_FILE_NEURONS <= 256  # a 20,001 x n grid of rates stays < 50 MB


def test_file_larger_than_the_byte_cap_is_refused(fit, tmp_path, monkeypatch):
    path = tmp_path / "fit.json"
    fit.save(path)
    monkeypatch.setattr(popfit.io, "MAX_FILE_BYTES", path.stat().st_size - 1)
    with pytest.raises(FitFileError, match="larger than .* bytes"):
        popfit.load_fit(path)


# --- raw errors from json / float / nengo become FitFileError naming the field ------

def test_deeply_nested_json(tmp_path):
    with pytest.raises(FitFileError, match="nested too deeply"):
        _load_text(tmp_path, '{"format": ' + "[" * 100_000 + "]" * 100_000 + "}")


@pytest.mark.parametrize("key", ["nfev", "gain", "seed"])
def test_5000_digit_integer(text, tmp_path, key):
    raw = "9" * 5000
    if key == "gain":
        raw = f"[{raw}, 1, 1]"
    with pytest.raises(FitFileError, match=f"field '{key}' .*an integer of 5000 digits"):
        _load_text(tmp_path, _replace(text, key, raw))


@pytest.mark.parametrize("digits", [310, 401])  # just beyond a float; beyond the int cap
@pytest.mark.parametrize("key", ["gain", "bias", "max_rate", "synapse", "neuron_type.tau_rc"])
def test_integer_too_large_for_a_float(text, tmp_path, key, digits):
    big = "1" + "0" * (digits - 1)
    if key == "neuron_type.tau_rc":
        bad = text.replace('"tau_rc": 0.02', f'"tau_rc": {big}')
        assert bad != text
    elif key in ("gain", "bias"):
        bad = _replace(text, key, f"[1, {big}, 1]")
    else:
        bad = _replace(text, key, big)
    with pytest.raises(FitFileError, match=f"field '{key}' .*(finite|float).*{digits} digits"):
        _load_text(tmp_path, bad)


@pytest.mark.parametrize("key,raw,match", [
    ("nfev", '"abc"', "'nfev' must be an integer >= 0 \\(got 'abc'\\)"),
    ("nfev", "[1]", "'nfev' must be an integer >= 0 \\(got \\[1\\]\\)"),
    ("nfev", "Infinity", "'nfev' must be an integer >= 0 \\(got Infinity\\)"),
    ("nfev", "NaN", "'nfev' must be an integer >= 0 \\(got NaN\\)"),
    ("nfev", "12.0", "'nfev' must be an integer >= 0 \\(got 12.0\\)"),
    ("nfev", "-1", "'nfev' must be an integer >= 0 \\(got -1\\)"),
    ("fit_time", '"slow"', "'fit_time' must be a finite number >= 0 \\(s\\) \\(got 'slow'\\)"),
    ("fit_time", "NaN", "'fit_time' .*got NaN"),
    ("fit_time", "-1", "'fit_time' must be a finite number >= 0"),
    ("max_rate", "Infinity", "'max_rate' .*got Infinity"),
    ("max_rate", '"400"', "'max_rate' must be a finite number > 0 \\(Hz\\) \\(got '400'\\)"),
    ("synapse", "Infinity", "'synapse' .*got Infinity"),
    ("synapse", "true", "'synapse' must be null or a finite number > 0 \\(s\\) \\(got True\\)"),
    ("domain", "[-1e308, 1e308]", "'domain' width hi - lo must be in .*width inf"),
    ("domain", '"12"', "'domain' must be \\[lo, hi\\] of finite .* \\(got '12'\\)"),
    ("domain", '["1", 2]', "'domain' must be \\[lo, hi\\] of finite .* \\(got '1'\\)"),
    ("domain", "[-1, 1e999]", "'domain' .*got Infinity"),
    ("domain", "[1e15, 1.000000000000001e15]", "'domain' width hi - lo must be at least"),
    ("seed", "-5", "'seed' must be an integer >= 0 \\(got -5\\)"),
    ("seed", "true", "'seed' must be an integer >= 0 \\(got True\\)"),
    ("seed", "1e30", "'seed' must be an integer >= 0 \\(got 1e\\+30\\)"),
    ("seed", str(2**32), "'seed' .*4294967295"),
    ("format_version", "true", "unsupported format_version True"),
    ("format_version", "1.0", "unsupported format_version 1.0"),
    ("success", '"yes"', "'success' must be true or false"),
    ("message", "5", "'message' must be a string"),
    ("decoders", "[1e300, 1, 1]", "'decoders' gives a non-finite output"),
    ("decoders", "[NaN, 1, 1]",
     "'decoders' must be a list of 3 finite .*\\(got NaN at index 0\\)"),
    ("gain", "[1e-320, 1, 1]", "'gain' and 'bias' give non-finite"),
    ("encoders", "[1, true, -1]", "'encoders' must be a list of 3 finite numbers \\(got True"),
])
def test_bad_field(text, tmp_path, key, raw, match):
    with pytest.raises(FitFileError, match=match):
        _load_text(tmp_path, _replace(text, key, raw))


@pytest.mark.parametrize("entry,match", [
    ('"tau_rc": NaN', "'neuron_type.tau_rc' .*got NaN"),
    ('"tau_rc": Infinity', "'neuron_type.tau_rc' .*got Infinity"),
    ('"tau_rc": "0.02"', "'neuron_type.tau_rc' must be a finite number \\(got '0.02'\\)"),
    ('"tau_rc": -0.02', "'neuron_type'.*tau_rc.*greater than 0"),
    ('"tau_RC": 0.05', "'neuron_type' has unknown entries \\['tau_RC'\\]"),
])
def test_bad_neuron_type_entry(text, tmp_path, entry, match):
    bad = text.replace('"tau_rc": 0.02', entry)
    assert bad != text
    with pytest.raises(FitFileError, match=match):
        _load_text(tmp_path, bad)


def test_missing_and_unknown_fields(fit, tmp_path):
    d = fit.to_dict()
    del d["synapse"]  # would silently give a rate-only fit
    with pytest.raises(FitFileError, match=r"missing fields \['synapse'\]"):
        _load_dict(tmp_path, d)
    d = {**fit.to_dict(), "synapes": 0.01}
    with pytest.raises(FitFileError, match=r"unknown fields \['synapes'\]"):
        _load_dict(tmp_path, d)


def test_tabulated_target_must_cover_the_domain(tmp_path):
    sin = popfit.fit_activation(np.sin, 2, domain=(-1, 1), synapse=None, search=QUICK, seed=0)
    d = sin.to_dict()
    d["domain"] = [-2, 1]
    with pytest.raises(FitFileError, match="samples 'x' cover \\[-1.0, 1.0\\], not the whole"):
        _load_dict(tmp_path, d)


def test_from_dict_names_the_method_not_load_fit(fit):
    d = {**fit.to_dict(), "nfev": "abc"}
    with pytest.raises(FitFileError) as info:
        PopulationFit.from_dict(d)
    assert str(info.value).startswith("PopulationFit.from_dict: field 'nfev' must be")


# --- what loads saves, to the same bytes --------------------------------------------

@pytest.mark.parametrize("kind", ["named", "callable", "relu"])
def test_load_then_save_gives_the_same_bytes(tmp_path, kind):
    if kind == "named":
        fit = popfit.fit_activation("sigmoid", 2, neuron_type=nengo.LIF(tau_rc=0.03),
                                    synapse=0.005, search=QUICK, seed=4)
    elif kind == "callable":
        fit = popfit.fit_activation(np.sin, 2, domain=(-2, 3), synapse=None, search=QUICK, seed=0)
    else:
        fit = popfit.fit_activation("tanh", 2, neuron_type="relu", synapse=0.02,
                                    search=QUICK, seed=2)
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    fit.save(first)
    loaded = popfit.load_fit(first)
    loaded.save(second)
    assert second.read_bytes() == first.read_bytes()
    for name in ("nrmse", "max_error", "spiking_nrmse"):
        assert getattr(popfit.load_fit(second), name) == getattr(loaded, name)


def test_hand_written_variants_load_and_save(fit, tmp_path):
    """Integers for floats, no optional fields, a 0.1.0 metrics block: load, then save."""
    d = fit.to_dict()
    for key in ("seed", "success", "message", "nfev", "fit_time"):
        del d[key]
    d["domain"] = [-3, 3]
    d["metrics"] = {"nrmse": 123.0}  # popfit 0.1.0 wrote this; ignored, recomputed
    loaded = _load_dict(tmp_path, d)
    assert loaded.domain == (-3.0, 3.0) and loaded.seed is None and loaded.nfev == 0
    assert loaded.nrmse == fit.nrmse
    loaded.save(tmp_path / "again.json")
    assert popfit.load_fit(tmp_path / "again.json").nrmse == fit.nrmse


def test_files_hold_parameters_not_metrics(fit):
    """The metrics are recomputed on load (see popfit/io.py), so the file has none."""
    assert "metrics" not in fit.to_dict()


def test_save_refuses_what_load_would_refuse(fit, tmp_path):
    with np.errstate(over="ignore", invalid="ignore"):
        bad = PopulationFit.from_parameters(
            target=fit.target, domain=fit.domain, neuron_type=fit.neuron_type, gain=fit.gain,
            bias=fit.bias, encoders=fit.encoders, decoders=fit.decoders * 1e300,
            max_rate=fit.max_rate, synapse=fit.synapse)
    with pytest.raises(PopfitValueError, match="PopulationFit.save: cannot save this fit to "
                                               ".*load_fit would refuse.*'decoders'"):
        bad.save(tmp_path / "bad.json")
    assert os.listdir(tmp_path) == []


# --- saving as editors do ---------------------------------------------------------

def test_overwrite_keeps_the_file_mode(fit, tmp_path):
    path = tmp_path / "fit.json"
    path.write_text("old")
    os.chmod(path, 0o644)
    fit.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    os.chmod(path, 0o640)
    fit.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_new_file_gets_the_mode_open_would_give(fit, tmp_path):
    old = os.umask(0o027)
    try:
        with open(tmp_path / "reference", "w"):
            pass
        fit.save(tmp_path / "fit.json")
    finally:
        os.umask(old)
    assert (stat.S_IMODE((tmp_path / "fit.json").stat().st_mode)
            == stat.S_IMODE((tmp_path / "reference").stat().st_mode) == 0o640)


def test_symlink_is_written_through(fit, tmp_path):
    real = tmp_path / "store" / "fit.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    fit.save(link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert popfit.load_fit(real).n_neurons == 3
    assert sorted(os.listdir(real.parent)) == ["fit.json"]
    assert sorted(os.listdir(tmp_path)) == ["link.json", "store"]


def test_killed_save_leaves_an_obvious_temporary_that_a_later_save_removes(fit, tmp_path):
    src = tmp_path / "src.json"
    fit.save(src)
    code = (
        "import os, signal, popfit\n"
        f"fit = popfit.load_fit({str(src)!r})\n"
        "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"fit.save({str(tmp_path / 'fit.json')!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    left = sorted(set(os.listdir(tmp_path)) - {"src.json"})
    assert len(left) == 1 and left[0].startswith(".fit.json.popfit-tmp-"), left
    fit.save(tmp_path / "fit.json")  # a fresh temporary: kept (could be a concurrent save)
    assert left[0] in os.listdir(tmp_path)
    hour_ago = os.stat(tmp_path / left[0]).st_mtime - popfit.files.STALE_TMP_SECONDS - 1
    os.utime(tmp_path / left[0], (hour_ago, hour_ago))
    (tmp_path / ".fit.json.popfit-tmp-notours").write_text("x")  # not the exact pattern
    os.utime(tmp_path / ".fit.json.popfit-tmp-notours", (hour_ago, hour_ago))
    fit.save(tmp_path / "fit.json")
    assert sorted(os.listdir(tmp_path)) == [".fit.json.popfit-tmp-notours", "fit.json",
                                            "src.json"]


@pytest.mark.parametrize("case", ["missing folder", "directory"])
def test_save_errors_name_the_users_path(fit, tmp_path, case):
    if case == "directory":
        path = tmp_path / "adir"
        path.mkdir()
        error = IsADirectoryError
    else:
        path = tmp_path / "missing" / "fit.json"
        error = FileNotFoundError
    with pytest.raises(error) as info:
        fit.save(path)
    assert info.value.filename == str(path)
    assert "tmp" not in str(info.value).replace(str(tmp_path), "")
    assert sorted(os.listdir(tmp_path)) == (["adir"] if case == "directory" else [])


@pytest.mark.parametrize("path,error", [("", PopfitValueError), (3, PopfitTypeError)])
def test_save_and_load_refuse_a_non_path(fit, path, error):
    with pytest.raises(error, match="path must be a non-empty file name"):
        fit.save(path)
    with pytest.raises(error, match="load_fit: path must be a non-empty file name"):
        popfit.load_fit(path)


# --- property: any one-field corruption is a FitFileError or a fit that saves -------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**500, 10**500) | st.floats()
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                               max_size=3),
    max_leaves=8)
_PLACES = ["format", "format_version", "target", "domain", "neuron_type", "gain", "bias",
           "encoders", "decoders", "max_rate", "synapse", "seed", "success", "message", "nfev",
           "fit_time", "metrics", "extra", "domain.0", "domain.1", "gain.1", "bias.0",
           "encoders.2", "decoders.1", "neuron_type.type", "neuron_type.tau_rc",
           "neuron_type.tau_ref", "neuron_type.min_voltage", "target.name", "target.named",
           "target.x", "target.y"]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(place=st.sampled_from(_PLACES), value=_JSON | st.just("<delete>"))
def test_any_corrupted_field_is_a_file_error_or_a_fit_that_saves_again(fit, tmp_path, place,
                                                                        value):
    d = fit.to_dict()
    *parents, key = place.split(".")
    box = d
    for p in parents:
        box = box[p]
    if isinstance(box, list):
        key = int(key)
    if value == "<delete>":
        if isinstance(box, list):
            del box[key]
        else:
            box.pop(key, None)
    else:
        box[key] = value
    path = tmp_path / "fuzz.json"
    path.write_text(json.dumps(d))
    try:
        loaded = popfit.load_fit(path)
    except FitFileError:
        return
    loaded.save(tmp_path / "a.json")  # what loads must save ...
    popfit.load_fit(tmp_path / "a.json").save(tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
