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
