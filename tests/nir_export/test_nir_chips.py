"""Chip toolchains that check a network without the chip: Rockpool's Xylo design rules
and mapper, sinabs's DYNAP-CNN backend, on popfit's digits export.

What these tests pin down (docs/nir.md, "Chips"): Rockpool 3.1's own design-rule
check refuses popfit's export for Xylo (its output is decoded, not spikes of
output neurons; 64 input channels where Xylo has 16), and
`popfit.nir.check_chip_limits` reports the same limits with the amounts and
what fits. Xylo's simulator and configuration check (``XyloSim``,
``config_from_specification``) and sinabs's ``DynapcnnNetwork`` need samna,
which PyPI holds only as a stub that installs itself from SynSense's own index.
"""

import importlib
import inspect
import os
import subprocess
import sys
import types
import warnings

import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

import popfit
from popfit.nir import CHIPS, check_chip_limits

pytest.importorskip("torch")
pytest.importorskip("nir")
pytestmark = pytest.mark.filterwarnings("ignore:.*tau_ref = .* < dt = :UserWarning")


def samna_missing():
    return importlib.util.find_spec("samna") is None


def xylo_package(name):
    """Rockpool's ``rockpool.devices.xylo.<name>`` (mapper, design rules).

    Rockpool 3.1's ``rockpool.devices.xylo/__init__`` imports the XyloAudio 3 package,
    whose ``afe_samna_pdm`` imports samna unguarded; without samna the package is
    loaded with an empty parent instead, so its own guarded imports run."""
    pytest.importorskip("rockpool")
    if samna_missing() and "rockpool.devices.xylo" not in sys.modules:
        import rockpool.devices

        parent = types.ModuleType("rockpool.devices.xylo")
        parent.__path__ = [os.path.join(os.path.dirname(rockpool.devices.__file__), "xylo")]
        sys.modules["rockpool.devices.xylo"] = parent
    return importlib.import_module(f"rockpool.devices.xylo.{name}")


@pytest.mark.skipif(not samna_missing(), reason="samna is installed here")
def test_rockpools_xylo_package_needs_samna():
    pytest.importorskip("rockpool")
    run = subprocess.run([sys.executable, "-c", "import rockpool.devices.xylo"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "ModuleNotFoundError: No module named 'samna'" in run.stderr


@pytest.mark.parametrize("chip, package", [("xylo-audio2", "syns61201"),
                                           ("xylo-imu", "syns63300")])
def test_popfit_chip_limits_are_rockpools(chip, package):
    """The neuron counts popfit checks are the defaults of Rockpool's own mappers."""
    mapper = xylo_package(package).mapper
    defaults = inspect.signature(mapper).parameters
    assert CHIPS[chip]["max_neurons"] == defaults["max_hidden_neurons"].default
    assert CHIPS[chip]["max_outputs"] == defaults["max_output_neurons"].default


@pytest.fixture(scope="module")
def digits_export():
    X, y = load_digits(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier((32,), activation="tanh", max_iter=1000,
                            random_state=0).fit(X_train, y_train)
    model = popfit.convert(mlp, n_neurons=4, platform="rockpool", max_rate=400.0,
                           calibration_data=X_train, seed=0)
    return mlp, X_train, popfit.to_nir(model)


def drc(package, graph):
    """Rockpool's design rules for ``package`` on the Rockpool import of ``graph``:
    ``{rule: [error or warning texts]}`` for the rules that object."""
    from rockpool.nn.modules.torch.nir import from_nir

    mapper = importlib.import_module(f"{xylo_package(package).__name__}.xylo_mapper")
    rockpool_graph = from_nir(graph).as_graph()
    found = {}
    for rule in mapper.xylo_drc:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                rule(rockpool_graph)
            except mapper.DRCError as e:
                caught.append(types.SimpleNamespace(message=e))
        messages = [str(w.message) for w in caught if "DRC" in type(w.message).__name__
                    or isinstance(w.message, mapper.DRCError)]
        if messages:
            found[rule.__name__] = messages
    return mapper, rockpool_graph, found


def test_xylo_design_rules_refuse_popfits_decoded_output(digits_export):
    """Rockpool's Xylo (SYNS61201) rules on popfit's digits export, and its mapper."""
    _, _, graph = digits_export
    mapper, rockpool_graph, found = drc("syns61201", graph)
    assert "directly from neurons" in found["output_nodes_have_neurons_as_source"][0]
    assert "The network requires 64 input channels" in found["le_16_input_channels"][0]
    assert "The network requires 10 output channels" in found["le_8_output_channels"][0]
    assert "At least two layers of neurons" in found["at_least_two_neuron_layers_needed"][0]
    assert "Bias parameters of LinearWeights" in found["weight_nodes_have_no_biases"][0]
    with pytest.raises(mapper.DRCError, match="output_nodes_have_neurons_as_source"):
        mapper.mapper(rockpool_graph)
    # popfit's own check names the same limits, with the amounts and what fits
    problems = {p["limit"]: p for p in check_chip_limits(graph, "xylo-audio2")}
    assert problems["input channels"]["excess"] == 64 - 16
    assert problems["output channels"]["excess"] == 10 - 8
    assert problems["decoded (non-spiking) outputs"]["needed"] == 10
    assert not any(name.startswith("neurons") for name in problems)  # 128 <= 1000


def test_xylo_imu_rules_and_popfits_neuron_budget(digits_export):
    """Xylo IMU (SYNS63300): 16 outputs hold the 10 digits; 496 hidden neurons hold 32
    units of 15 neurons, not 16, which check_chip_limits says."""
    mlp, X_train, graph = digits_export
    _, _, found = drc("syns63300", graph)
    assert "le_16_output_channels" not in found
    assert "The network requires 64 input channels" in found["le_16_input_channels"][0]
    model = popfit.convert(mlp, n_neurons=16, platform="rockpool", max_rate=400.0,
                           calibration_data=X_train, seed=0)
    big = popfit.to_nir(model)
    problems = {p["limit"]: p for p in check_chip_limits(big, "xylo-imu")}
    neurons = problems["neurons on xylo-imu"]
    assert (neurons["needed"], neurons["excess"]) == (512, 16)
    assert "n_neurons=15 per unit" in neurons["fix"]
    with pytest.raises(popfit.PopfitValueError,
                       match=r"^check_chip_limits: graph does not fit xylo-imu: input "
                             r"channels: 64 > 16 \(by 48\).*neurons on xylo-imu: 512 > 496 "
                             r"\(by 16\), convert with n_neurons=15 per unit"):
        check_chip_limits(big, "xylo-imu", raise_error=True)


@pytest.mark.skipif(not samna_missing(), reason="samna is installed here")
def test_dynapcnn_backend_needs_samna():
    """sinabs's DYNAP-CNN backend (DynapcnnNetwork, the chip's memory checks and
    configuration) imports samna at module level."""
    pytest.importorskip("sinabs")
    with pytest.raises(ModuleNotFoundError, match="samna"):
        importlib.import_module("sinabs.backend.dynapcnn")
