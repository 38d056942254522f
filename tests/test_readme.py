"""The README's first-screen example runs as written (data, fit, scikit-learn and Keras conversion)."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def first_python_block():
    text = README.read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


@pytest.mark.slow
def test_first_screen_example_runs(capsys):
    pytest.importorskip("keras")
    code = first_python_block()
    assert "popfit.fit_activation" in code and "popfit.convert(net" in code
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - the README's own code
    model, mlp = namespace["model"], namespace["mlp"]
    X_test, y_test = namespace["X_test"], namespace["y_test"]
    assert "[[popfit fit]] tanh with 4 LIF neurons" in capsys.readouterr().out  # print(report)
    # the Keras model converted as a classifier: labels, close to Keras's own accuracy
    labels = model.predict(X_test)
    keras_acc = (namespace["net"].predict(X_test, verbose=0).argmax(axis=1) == y_test).mean()
    assert set(labels) <= set(range(10))
    assert (labels == y_test).mean() >= keras_acc - 0.03
    assert mlp.score(X_test, y_test) > 0.9
