"""The optional toolchains' suites, each run in its own environment.

nengo-loihi needs numpy < 2 and the NIR consumers (snnTorch, Norse, Rockpool,
sinabs) need torch, so
their tests live in ``tests/loihi`` and ``tests/nir_export`` and run in separate
virtual environments that ``.ci/run`` creates (``.ci/make_loihi_venv``,
``.ci/make_nir_venv``) and names in ``POPFIT_LOIHI_PYTHON`` and
``POPFIT_NIR_PYTHON``. This file runs those suites from the main test
command, so one ``python -m pytest`` covers everything; without the
variables (a plain developer install) they are skipped with the command that
creates the environment.
"""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

SUITES = [
    ("POPFIT_LOIHI_PYTHON", "tests/loihi", ".ci/make_loihi_venv"),
    ("POPFIT_NIR_PYTHON", "tests/nir_export", ".ci/make_nir_venv"),
]


@pytest.mark.parametrize("variable, folder, maker", SUITES, ids=["loihi", "nir"])
def test_toolchain_suite(variable, folder, maker):
    python = os.environ.get(variable)
    if not python and os.environ.get("CI"):
        pytest.fail(f"{variable} is not set under CI: .ci/run must build the environment "
                    f"with {maker} and name its Python")
    if not python:
        pytest.skip(f"{variable} is not set; create the environment with "
                    f"`bash {maker} DIR` and set {variable}=DIR/bin/python")
    assert (ROOT / folder).is_dir(), f"{folder} is missing"
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    result = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", folder],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    sys.stdout.write(result.stdout[-4000:])
    assert result.returncode == 0, (
        f"{folder} failed in {python} (exit {result.returncode}):\n"
        f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}")
    assert " passed" in result.stdout.strip().splitlines()[-1]
