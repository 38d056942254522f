"""The command line: no input prints a traceback, and messages say what happened."""

import errno
import re
import io
import os

import pytest

import popfit.cli
import popfit.files
import popfit.io
from popfit.cli import main

QUICK = ["--neurons", "1", "--synapse", "none"]


def _one_line_error(capsys, argv, status=2):
    out = io.StringIO()
    assert main(argv, out=out) == status
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err, out.getvalue()


# The first three rely on fit_activation refusing these inputs with a popfit error
# (its n_neurons, max_rate and domain bounds); the CLI turns any popfit error into status 2.
@pytest.mark.parametrize("argv,match", [
    (["--neurons", "100000"], "n_neurons"),
    (["--max-rate", "1e-9"], "max_rate"),
    (["--domain", "1e15", "1.000000000000001e15"], "domain"),
    (["--plot", "out.xyz"], "--plot 'out.xyz': matplotlib cannot write '.xyz' files; use "
                            "one of .*png"),
])
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    err, _ = _one_line_error(capsys, ["fit", "tanh", *argv])
    assert re.search(match, err), err
    assert os.listdir(tmp_path) == []


def test_unexpected_error_is_one_line_exit_1(capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr("popfit.cli.fit_activation", broken)
    monkeypatch.delenv("POPFIT_DEBUG", raising=False)
    err, _ = _one_line_error(capsys, ["fit", "tanh"], status=1)
    assert err.startswith("popfit: internal error: ZeroDivisionError: float division by zero")
    assert "please report" in err
    monkeypatch.setenv("POPFIT_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["fit", "tanh"], out=io.StringIO())


def test_plot_to_a_directory_is_refused_before_fitting(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("popfit.cli.fit_activation", None)  # must not be reached
    err, _ = _one_line_error(capsys, ["fit", "tanh", "--plot", str(tmp_path)])
    assert f"--plot needs a file name, not the directory {str(tmp_path)!r}" in err
    assert os.listdir(tmp_path) == [] and not os.path.exists(f"{tmp_path}.png")


def test_plot_says_the_file_it_wrote(tmp_path):
    out = io.StringIO()
    assert main(["fit", "tanh", *QUICK, "--plot", str(tmp_path / "fig")], out=out) == 0
    assert f"wrote plot to {tmp_path / 'fig.png'}" in out.getvalue()
    assert os.listdir(tmp_path) == ["fig.png"]
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["fit", "tanh", *QUICK, "--plot", str(tmp_path / "fig.svg")], out=out) == 0
    assert f"wrote plot to {tmp_path / 'fig.svg'}" in out.getvalue()
    assert b"<svg" in (tmp_path / "fig.svg").read_bytes()[:500]


@pytest.mark.parametrize("option", ["--save", "--plot"])
def test_empty_output_path_is_refused(capsys, monkeypatch, option):
    monkeypatch.setattr("popfit.cli.fit_activation", None)  # must not be reached
    err, out = _one_line_error(capsys, ["fit", "tanh", option, ""])
    assert f"{option} needs a file name (got '')" in err and out == ""


@pytest.mark.parametrize("domain,shown", [
    (["-1e3", "1e3"], "on [-1000, 1000]"),
    (["-2.5e-1", "-1E-2"], "on [-0.25, -0.01]"),
    (["-3", "3"], "on [-3, 3]"),
])
def test_negative_domain_with_exponent_parses(domain, shown):
    out = io.StringIO()
    assert main(["fit", "tanh", *QUICK, "--domain", *domain], out=out) == 0
    assert shown in out.getvalue()


def test_negative_max_rate_is_a_value_error_not_a_missing_argument(capsys):
    err, _ = _one_line_error(capsys, ["fit", "tanh", "--max-rate", "-1e3"])
    assert "max_rate must be finite and > 0 (got -1000.0)" in err


def test_save_to_a_missing_folder_is_refused_before_fitting(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("popfit.cli.fit_activation", None)  # must not be reached
    path = tmp_path / "missing" / "fit.json"
    err, _ = _one_line_error(capsys, ["fit", "tanh", "--save", str(path)])
    assert f"--save {str(path)!r}: the directory {str(path.parent)!r} does not exist" in err


def test_save_errors_name_the_users_path(capsys, tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", src, dst)

    monkeypatch.setattr(popfit.files.os, "replace", refuse)
    path = tmp_path / "fit.json"
    err, _ = _one_line_error(capsys, ["fit", "tanh", *QUICK, "--save", str(path)])
    assert err.strip() == f"popfit: error: [Errno 13] Permission denied: {str(path)!r}"
    assert os.listdir(tmp_path) == []
