"""The `popfit` package itself: what ``import popfit`` loads and what it exposes."""

import json
import subprocess
import sys

import pytest

#: Documented submodules, reachable as ``popfit.<name>`` right after ``import popfit``.
SUBMODULES = ["nir", "loihi", "conversion", "targets", "metrics", "neurons", "network",
              "spiking", "baseline", "plotting", "io", "estimator"]
#: Optional or heavy packages that ``import popfit`` must not load.
HEAVY = ["nengo_loihi", "keras", "matplotlib", "nir", "torch", "sklearn", "tensorflow", "jax"]

#: Run in a fresh interpreter: what ``import popfit`` loads, then each submodule
#: reached as an attribute (no ``import popfit.<name>`` first).
PROBE = f"""
import json, sys
import popfit
loaded = sorted(sys.modules)
names = {{}}
for name in {SUBMODULES!r}:
    names[name] = getattr(popfit, name).__name__
nt = popfit.get_platform("snntorch").fit_neuron_type()  # documented for NIR fits
print(json.dumps({{"loaded": loaded, "names": names, "fit_neuron_type": repr(nt),
                  "nir_after": "nir" in sys.modules, "dir": dir(popfit)}}))
"""


@pytest.fixture(scope="module")
def probe():
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_documented_submodules_are_attributes_without_importing_them(probe):
    assert probe["names"] == {name: f"popfit.{name}" for name in SUBMODULES}
    assert set(SUBMODULES) <= set(probe["dir"])
    assert probe["fit_neuron_type"] == "LIF(tau_ref=5e-05)"
    assert not probe["nir_after"]  # popfit.nir imports the nir package only in to_nir


def test_import_popfit_stays_light(probe):
    loaded = set(probe["loaded"])
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}
    lazy = {"nir", "loihi", "conversion", "network", "spiking", "baseline", "plotting",
            "estimator"}
    assert not {f"popfit.{name}" for name in lazy} & loaded


def test_unknown_attribute_is_an_attribute_error():
    import popfit

    with pytest.raises(AttributeError, match=r"module 'popfit' has no attribute 'nope'"):
        popfit.nope  # noqa: B018
