import io
import json
import subprocess
import sys

import pytest

from popfit.cli import main


def test_fit_prints_report_and_writes_files(tmp_path):
    out = io.StringIO()
    png, js = tmp_path / "f.png", tmp_path / "f.json"
    code = main(["fit", "tanh", "--neurons", "3", "--synapse", "none", "--plot", str(png),
                 "--save", str(js)], out=out)
    assert code == 0
    text = out.getvalue()
    assert "tanh with 3 LIF neurons" in text and "rate NRMSE" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(js.read_text())["gain"].__len__() == 3


def test_fit_relu_with_domain():
    out = io.StringIO()
    assert main(["fit", "linear", "--neurons", "2", "--neuron", "relu", "--domain", "-2", "2",
                 "--synapse", "none"], out=out) == 0
    assert "on [-2, 2]" in out.getvalue()


@pytest.mark.parametrize("argv,match", [
    (["fit", "tanhh"], "unknown target 'tanhh'"),
    (["fit", "tanh", "--neurons", "0"], "n_neurons must be an integer in [1, 32] (got 0)"),
    (["fit", "tanh", "--neurons", "x"], "invalid int value: 'x'"),
    (["fit", "tanh", "--domain", "1", "-1"], "lo < hi"),
    (["fit", "tanh", "--max-rate", "900"], "max_rate must be < 500 Hz"),
    (["fit", "tanh", "--synapse", "fast"], "--synapse must be a time constant"),
    (["fit", "tanh", "--neuron", "izh"], "invalid choice: 'izh'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_arguments_one_line_no_traceback(argv, match, capsys):
    assert main(argv, out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert match in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_console_script_exit_code():
    proc = subprocess.run([sys.executable, "-m", "popfit.cli", "fit", "tanh", "--neurons", "-3"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("popfit: error: fit_activation: n_neurons")


def test_plot_title_gives_both_errors_and_the_synapse(tmp_path):
    from PIL import Image

    import popfit
    from popfit.plotting import plot_fit

    out = io.StringIO()
    png, js = tmp_path / "f.png", tmp_path / "f.json"
    assert main(["fit", "tanh", "--neurons", "2", "--synapse", "0.01", "--plot", str(png),
                 "--save", str(js)], out=out) == 0
    fit = popfit.load_fit(js)
    rate, spiking = f"rate NRMSE {fit.nrmse:.3g}", f"spiking NRMSE {fit.spiking_nrmse:.3g}"
    assert f"{fit.spiking_nrmse:.5f} (expected, at synapse 0.01 s)" in out.getvalue()
    title = Image.open(png).text["Title"]  # what the CLI wrote, read back from the PNG
    assert title == f"popfit fit: tanh: {rate}, expected {spiking} (synapse 0.01 s)"
    fig = plot_fit(fit)  # the function the CLI draws with
    assert fig.axes[0].get_title() == f"tanh: {rate}\nexpected {spiking} (synapse 0.01 s)"


@pytest.mark.parametrize("option", ["--save", "--plot"])
def test_output_path_ending_in_a_separator_is_refused_before_fitting(tmp_path, option,
                                                                     capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "tanh", "--neurons", "1", option, "newdir/"], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert f"{option} needs a file name, not a path ending in a separator" in err
    assist = "newdir/fit.json" if option == "--save" else "newdir/fit.png"
    assert f"e.g. '{assist}'" in err
    assert list(tmp_path.iterdir()) == []
