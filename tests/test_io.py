import json
import os
import stat

import numpy as np
import pytest

import popfit
from popfit.exceptions import FitFileError

# these tests need *a* good fit, not the best: the quick search is ~2.4x cheaper
QUICK = popfit.SearchOptions.quick()


@pytest.fixture(scope="module")
def fit():
    return popfit.fit_activation("sigmoid", 3, neuron_type="relu", synapse=0.01,
                                 search=QUICK, seed=3)


def test_round_trip_is_exact(fit, tmp_path):
    path = tmp_path / "fit.json"
    fit.save(path)
    back = popfit.load_fit(path)
    for name in ("gain", "bias", "encoders", "decoders", "max_rates", "intercepts"):
        np.testing.assert_array_equal(getattr(back, name), getattr(fit, name))
    assert back.target.name == "sigmoid" and back.domain == fit.domain
    assert type(back.neuron_type) is type(fit.neuron_type)
    assert back.nrmse == fit.nrmse and back.spiking_nrmse == fit.spiking_nrmse
    x = np.linspace(-6, 6, 77)
    np.testing.assert_array_equal(back.predict(x), fit.predict(x))
    # plain JSON with a format version, no pickled payloads
    d = json.loads(path.read_text())
    assert d["format"] == "popfit.PopulationFit" and d["format_version"] == 1


def test_callable_target_round_trip(tmp_path):
    fit = popfit.fit_activation(np.sin, 3, domain=(-np.pi, np.pi), synapse=None,
                                                   search=QUICK, seed=0)
    fit.save(tmp_path / "sin.json")
    back = popfit.load_fit(tmp_path / "sin.json")
    assert back.target.name == "callable sin"
    assert back.nrmse == pytest.approx(fit.nrmse, rel=1e-3)  # target is tabulated on load
    np.testing.assert_allclose(back.target(np.linspace(-3, 3, 11)),
                               np.sin(np.linspace(-3, 3, 11)), atol=1e-5)


def test_lif_round_trip_keeps_time_constants(tmp_path):
    import nengo

    fit = popfit.fit_activation("tanh", 2, neuron_type=nengo.LIF(tau_rc=0.03, tau_ref=0.001),
                                max_rate=300.0, synapse=None)
    fit.save(tmp_path / "lif.json")
    back = popfit.load_fit(tmp_path / "lif.json")
    assert back.neuron_type.tau_rc == 0.03 and back.neuron_type.tau_ref == 0.001


def test_save_is_atomic_and_overwrites(fit, tmp_path):
    path = tmp_path / "fit.json"
    path.write_text("old")
    fit.save(path)
    assert popfit.load_fit(path).n_neurons == 3
    assert sorted(os.listdir(tmp_path)) == ["fit.json"]  # no temporary files left behind


def test_failed_save_leaves_old_file(fit, tmp_path, monkeypatch):
    path = tmp_path / "fit.json"
    fit.save(path)
    before = path.read_text()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        fit.save(path)
    assert path.read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["fit.json"]


def _write(tmp_path, text, mode="w"):
    path = tmp_path / "bad.json"
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_truncated_file(fit, tmp_path):
    text = json.dumps(fit.to_dict())
    with pytest.raises(FitFileError, match="not valid JSON.*truncated"):
        popfit.load_fit(_write(tmp_path, text[: len(text) // 2]))


def test_binary_garbage(tmp_path):
    with pytest.raises(FitFileError, match="not UTF-8|not valid JSON"):
        popfit.load_fit(_write(tmp_path, b"\x80\x04\x95pickle", mode="wb"))


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.update(format="something.else"), "not a popfit fit"),
    (lambda d: d.update(format_version=99), "unsupported format_version 99"),
    (lambda d: d.update(gain=d["gain"][:-1]), "'bias' must be a list of 2 numbers"),
    (lambda d: d.update(encoders=[1, 0.5, -1]), "encoders' must hold only"),
    (lambda d: d.update(gain=[1, -2, 3]), "'gain' must be positive"),
    (lambda d: d.update(decoders=["a", 1, 2]), "'decoders' must be a list of 3 finite numbers"),
    (lambda d: d.update(domain=[2, 1]), "'domain' must have lo < hi"),
    (lambda d: d.update(neuron_type={"type": "os.system"}), "unknown neuron type"),
    (lambda d: d.update(target={"name": "nope", "named": True}), "unknown target 'nope'"),
    (lambda d: d.update(max_rate=-1), "field 'max_rate' .*> 0.*-1"),
    (lambda d: d.update(synapse=0), "'synapse' must be null or a finite number > 0"),
])
def test_corrupted_fields(fit, tmp_path, mutate, match):
    d = fit.to_dict()
    mutate(d)
    with pytest.raises(FitFileError, match=match):
        popfit.load_fit(_write(tmp_path, json.dumps(d)))


def test_foreign_json(tmp_path):
    with pytest.raises(FitFileError, match="not a popfit fit"):
        popfit.load_fit(_write(tmp_path, "[1, 2, 3]"))
    with pytest.raises(FitFileError, match="load_fit: .*bad.json"):
        popfit.load_fit(_write(tmp_path, '{"hello": "world"}'))


# --- a file must keep its own promises: no neuron above max_rate --------------------

@pytest.fixture(scope="module")
def lif_fit():
    return popfit.fit_activation("tanh", 4, max_rate=400.0, synapse=0.005, search=QUICK, seed=0)


def _scale(key, factor):
    return lambda d: d.update({key: [v * factor for v in d[key]]})


def _set_first(key, value):
    return lambda d: d[key].__setitem__(0, value)


@pytest.mark.parametrize("mutate", [
    _scale("gain", 1.5),                                   # 429 Hz against 400
    lambda d: d.update(max_rate=100.0),                    # neurons still fire at 400 Hz
    _set_first("bias", 1e6),
    _set_first("bias", 1e308),
    lambda d: d.update(domain=[2 * d["domain"][0], 2 * d["domain"][1]]),
], ids=["gain x1.5", "max_rate 100", "bias 1e6", "bias 1e308", "domain x2"])
def test_neurons_above_the_files_max_rate_are_refused(lif_fit, tmp_path, mutate):
    d = lif_fit.to_dict()
    mutate(d)
    nt = lif_fit.neuron_type
    lo, hi = d["domain"]
    x = np.linspace(lo, hi, 2001)  # nengo's own rates, the reference
    rates = nt.rates(x[:, None] * np.array(d["encoders"]), np.array(d["gain"]),
                     np.array(d["bias"]))
    assert rates.max() > 1.05 * d["max_rate"]  # the mutation breaks the file's promise
    with pytest.raises(FitFileError, match=r"bad.json: .*neurons? fire above the file's "
                                           r"max_rate .* Hz: neuron \d fires at"):
        popfit.load_fit(_write(tmp_path, json.dumps(d)))


@pytest.mark.parametrize("case", [
    ("tanh", 3, "lif", None, 10.0),                      # slow LIF
    ("linear", 2, "relu", (-1e6, -1e6 + 0.5), 50.0),     # J = gain * x + bias cancels
    ("sigmoid", 3, "lif", (3e7, 3e7 + 1.0), 499.0),      # LIF at 1/tau_ref's edge
])
def test_every_fit_at_max_rate_still_saves(tmp_path, case):
    target, n, neuron, domain, max_rate = case
    fit = popfit.fit_activation(target, n, neuron_type=neuron, domain=domain,
                                max_rate=max_rate, synapse=0.005, search=QUICK, seed=0)
    fit.save(tmp_path / "f.json")
    back = popfit.load_fit(tmp_path / "f.json")
    np.testing.assert_array_equal(back.max_rates, fit.max_rates)


def test_edited_decoders_load_with_their_own_error(lif_fit, tmp_path):
    d = lif_fit.to_dict()
    d["decoders"] = [2 * v for v in d["decoders"]]
    back = popfit.load_fit(_write(tmp_path, json.dumps(d)))
    x = np.linspace(*lif_fit.domain, 1001)
    out = lif_fit.rates(x) @ np.array(d["decoders"])
    rmse = np.sqrt(np.mean((out - np.tanh(x)) ** 2))
    assert lif_fit.domain == (-3.0, 3.0)
    assert back.nrmse == pytest.approx(rmse / (2 * np.tanh(3.0)), rel=1e-6)  # recomputed
    assert back.nrmse > 10 * lif_fit.nrmse


@pytest.mark.parametrize("old,new,key,where", [
    ('"decoders": [', '"decoders": [100000.0, 100000.0, 100000.0, 100000.0],\n "decoders": [',
     "decoders", "the top-level object"),
    ('"type": "LIF"', '"type": "LIF", "type": "LIFRate"', "type", "the object with keys"),
])
def test_duplicate_keys_are_refused(lif_fit, tmp_path, old, new, key, where):
    text = json.dumps(lif_fit.to_dict(), indent=1)
    assert old in text
    with pytest.raises(FitFileError, match=f"bad.json: key '{key}' appears twice in {where}"):
        popfit.load_fit(_write(tmp_path, text.replace(old, new, 1)))


# --- paths: a save never creates a surprise, a load never blocks ----------------------

def test_save_to_a_directory_path_is_refused(fit, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(IsADirectoryError, match=r"names a directory.*'newdir/fit.json'"):
        fit.save("newdir/")
    with pytest.raises(IsADirectoryError, match=r"is a directory.*fit.json"):
        fit.save(tmp_path)
    assert os.listdir(tmp_path) == []


def test_nul_byte_in_a_path(fit, tmp_path):
    with pytest.raises(popfit.PopfitValueError, match=r"PopulationFit.save: path must be a "
                                                        r"file name without NUL bytes"):
        fit.save(str(tmp_path / "a\0b.json"))
    with pytest.raises(popfit.PopfitValueError, match=r"load_fit: path .* without NUL bytes"):
        popfit.load_fit(str(tmp_path / "a\0b.json"))


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux's /proc")
def test_read_error_names_the_path():
    with pytest.raises(FitFileError, match=r"load_fit: /proc/self/mem: cannot read the file: "
                                           r".*errno 5"):
        popfit.load_fit("/proc/self/mem")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(fit, tmp_path):
    import threading

    fifo = tmp_path / "fit.json"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            popfit.load_fit(fifo)
        except Exception as err:  # noqa: BLE001 - recorded for the assertion below
            outcome.append(err)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # blocked opening the FIFO: give it a writer so the thread ends
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(10)
        pytest.fail("load_fit blocked on a FIFO with no writer")
    assert isinstance(outcome[0], FitFileError)
    assert "fit.json: is a FIFO (named pipe), not a regular file" in str(outcome[0])
    with pytest.raises(popfit.PopfitValueError, match="is a FIFO .* not a regular file; a "
                                                        "save would replace it"):
        fit.save(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    with pytest.raises(popfit.PopfitValueError, match="'/dev/null' is a character device"):
        fit.save("/dev/null")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="needs root to give files to another user")
@pytest.mark.parametrize("owned", ["target", "link"])
def test_symlink_of_another_user_is_not_followed(fit, tmp_path, owned):
    other = 54321
    real = tmp_path / "system.json"
    real.write_text("precious")
    link = tmp_path / "fit.json"
    link.symlink_to(real)
    if owned == "target":
        os.chown(real, other, other)
    else:
        os.lchown(link, other, other)
    with pytest.raises(popfit.PopfitValueError,
                       match=f"symbolic link to .*system.json.*belongs to another user "
                             f"\\(uid {other}, you are uid 0\\).*remove the link"):
        fit.save(link)
    assert real.read_text() == "precious" and link.is_symlink()
