"""The README's nengo-loihi example, run as written on nengo-loihi's emulator.

Runs only in the Loihi environment (numpy < 2, nengo-loihi 1.1.0), e.g.

    PYTHONPATH=$PWD /work/venvs/loihi/bin/python -m pytest -q tests/loihi

The python block under the README heading "Run on neuromorphic hardware:
nengo-loihi" is read from README.md and executed with the names it assumes
(``mlp``, ``X_train``, ``X_test``: a small digits MLP), so the test breaks
when the README drifts from the code.
"""

import pathlib
import re
import warnings

import numpy as np
import pytest

nengo_loihi = pytest.importorskip("nengo_loihi")

from sklearn.datasets import load_digits  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
HEADING = "## Run on neuromorphic hardware: nengo-loihi"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # nengo-loihi version notes


def readme_example():
    """The first python code block of the README's nengo-loihi section."""
    text = README.read_text(encoding="utf-8")
    assert HEADING in text, f"README.md has no heading {HEADING!r}"
    section = text.split(HEADING, 1)[1]
    section = re.split(r"^## ", section, maxsplit=1, flags=re.M)[0]
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.S | re.M)
    assert blocks, "the README's nengo-loihi section has no python code block"
    return blocks[0]


def test_readme_example_is_first_about_platform_loihi():
    """The option nengo-loihi needs is in bold before the example and first in convert."""
    code = readme_example()
    section = README.read_text(encoding="utf-8").split(HEADING, 1)[1]
    assert section.index('**Convert with `platform="loihi"`.**') < section.index("```python")
    convert_call = code[code.index("popfit.convert("):]
    assert convert_call.startswith('popfit.convert(mlp, platform="loihi",')


def test_readme_example_runs():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier((16,), activation="tanh", max_iter=300, random_state=0)
        mlp.fit(X[:600], y[:600])
    X_train, X_test = X[:600], X[600:610]
    namespace = {"mlp": mlp, "X_train": X_train, "X_test": X_test}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(readme_example(), str(README), "exec"), namespace)
    # what the example computed, against the ANN
    ann = mlp.predict(X_test)
    assert np.mean(namespace["y"] == ann) >= 0.8
    sim, out = namespace["sim"], namespace["out"]
    steps = int(round(0.1 / sim.dt))
    decoded = sim.data[out].reshape(len(X_test), steps, -1)[:, steps // 2:].mean(axis=1)
    assert np.mean(mlp.classes_[decoded.argmax(axis=1)] == ann) >= 0.8
