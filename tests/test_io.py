import json
import os

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
