"""Baselines in one home (`popfit.baseline`) and their argument checks.

References: the signed baseline layer's spike counts are compared with the rate
formula ``max_rate * tanh(x)`` (and ``max_rate * x / max|x|`` for linear), written
here; the accuracy table's numbers are recomputed with `fit_activation` and
`nengo_default_nrmse` directly.
"""

import io

import nengo
import numpy as np
import pytest

import popfit
import popfit.cli
import popfit.plotting
import popfit.spiking
from popfit import baseline
from popfit.baseline import (SignedBaselineLayer, compute_accuracy, format_accuracy,
                             nengo_default_nrmse, nengo_default_tuning, signed_baseline,
                             signed_baseline_neuron)
from popfit.cli import main
from popfit.exceptions import PopfitTypeError, PopfitValueError


@pytest.mark.parametrize("call", [
    lambda seed: nengo_default_nrmse("tanh", 2, seeds=[0, seed]),
    lambda seed: nengo_default_tuning(2, seed=seed),
])
def test_seeds_beyond_numpy_range_are_popfit_errors(call):
    with pytest.raises(PopfitValueError, match=r"(nengo_default_nrmse: seeds\[1\]|"
                                               r"nengo_default_tuning: seed) must be an "
                                               r"integer in \[0, 4294967295\] "
                                               r"\(got 4294967296\)"):
        call(2**32)
    call(2**32 - 1)  # the largest seed numpy takes works


def test_seeds_not_iterable_is_a_type_error():
    with pytest.raises(PopfitTypeError, match=r"nengo_default_nrmse: seeds must be an iterable"):
        nengo_default_nrmse("tanh", 2, seeds=5)


def test_one_home_old_names_still_work():
    assert popfit.spiking.signed_baseline is signed_baseline
    assert popfit.plotting.compute_accuracy is compute_accuracy
    assert baseline.__all__ and all(hasattr(baseline, n) for n in baseline.__all__)


def test_signed_baseline_neuron_spec():
    tanh = signed_baseline_neuron("tanh", 400.0)
    assert isinstance(tanh.neuron_type, nengo.Tanh) and tanh.neuron_type.tau_ref == 0.0025
    assert (tanh.gain, tanh.decoder) == (1.0, 0.0025)
    lin = signed_baseline_neuron("identity", 200.0, domain=(-4.0, 2.0))
    assert lin.gain == pytest.approx(50.0) and lin.decoder == pytest.approx(0.02)
    assert signed_baseline_neuron("relu", 400.0) is None
    assert signed_baseline_neuron(np.sin, 400.0, domain=(-1, 1)) is None
    fit = popfit.PopulationFit.from_parameters(
        target=popfit.TARGETS["sigmoid"], domain=(-6, 6), neuron_type=nengo.LIFRate(), gain=[1.0],
        bias=[0.0], encoders=[1.0], decoders=[0.0], max_rate=300.0, synapse=None)
    assert signed_baseline(fit) == signed_baseline_neuron("sigmoid", 300.0, (-6, 6))


@pytest.mark.parametrize("target, domain", [("tanh", (-3, 3)), ("linear", (-2, 2))])
def test_signed_baseline_layer_fires_the_signed_rate(target, domain):
    """Constant inputs for 1 s: signed spike counts equal max_rate * tanh(x) (linear:
    max_rate * x / max|x|), and the decoded mean is the unit's output, to one spike."""
    max_rate = 200.0
    x = np.array([-1.8, -0.4, 0.0, 0.7, 1.9])
    bias = np.array([0.0, 0.1, 0.0, -0.2, 0.0])
    with nengo.Network(seed=0) as model:
        stim = nengo.Node(x)
        layer = SignedBaselineLayer(target, 5, max_rate=max_rate, domain=domain,
                                    input_bias=bias)
        nengo.Connection(stim, layer.input, synapse=None)
        p_spikes = nengo.Probe(layer.ensemble.neurons)
        p_out = nengo.Probe(layer.output)
    with nengo.Simulator(model, progress_bar=False) as sim:
        sim.run(1.0)
    z = x + bias
    peak = max(abs(domain[0]), abs(domain[1]))
    f = np.tanh(z) if target == "tanh" else z  # the unit's output
    fraction = f if target == "tanh" else z / peak  # of max_rate, signed
    counts = sim.data[p_spikes].sum(axis=0) * sim.dt  # signed spike counts
    np.testing.assert_allclose(counts, max_rate * fraction, atol=1.0)
    one_spike = (1.0 if target == "tanh" else peak) / max_rate
    np.testing.assert_allclose(sim.data[p_out].mean(axis=0), f, atol=one_spike)
    assert sim.data[p_spikes].min() < 0  # the baseline's point: negative spikes


def test_signed_baseline_layer_errors():
    with pytest.raises(PopfitValueError, match=r"SignedBaselineLayer: target 'relu' has no "
                                               r"signed baseline"):
        SignedBaselineLayer("relu", 2)
    with pytest.raises(PopfitTypeError, match=r"SignedBaselineLayer: input_bias must be an "
                                              r"array of real numbers"):
        SignedBaselineLayer("tanh", 1, input_bias=["a"])
    with pytest.raises(PopfitValueError, match=r"n_units must be an integer >= 1 \(got 0\)"):
        SignedBaselineLayer("tanh", 0)


@pytest.fixture(scope="module")
def table():
    return compute_accuracy(("linear",), (1, 2), neuron_type="relu", synapse=0.01,
                            seeds=range(3))


def test_accuracy_table_numbers_and_text(table):
    r = table["linear"]
    fit = popfit.fit_activation("linear", 2, neuron_type="relu", synapse=0.01, seed=0)
    assert r["popfit"][1] == fit.nrmse and r["popfit_spiking"][1] == fit.spiking_nrmse
    np.testing.assert_array_equal(
        r["nengo"][1], nengo_default_nrmse("linear", 2, neuron_type="relu", seeds=range(3)))
    assert r["neuron_type"] == "RectifiedLinear" and len(r["fit_time"]) == 2
    text = format_accuracy(table)
    assert "median over 3 seeds" in text and "synapse 0.01" in text
    row = text.splitlines()[-1].split()
    assert row[:3] == ["linear", "RectifiedLinear", "2"]
    median = float(np.median(r["nengo"][1]))
    assert float(row[5]) == pytest.approx(median, abs=5e-6)
    assert float(row[6]) == pytest.approx(r["popfit"][1] / median, abs=5e-5)


def test_accuracy_table_errors():
    with pytest.raises(PopfitValueError, match=r"compute_accuracy: n_neurons\[1\] must be "
                                               r"an integer >= 1 \(got 0\)"):
        compute_accuracy(("tanh",), (2, 0))
    with pytest.raises(PopfitValueError, match=r"compute_accuracy: seeds\[0\]"):
        compute_accuracy(("tanh",), (2,), seeds=[-3])
    with pytest.raises(PopfitTypeError, match=r"format_accuracy: results must be a non-empty"):
        format_accuracy({})


def test_cli_table_prints_the_shared_table(table, monkeypatch):
    monkeypatch.setattr(popfit.cli, "compute_accuracy", lambda *a, **k: table)  # what the CLI calls
    out = io.StringIO()
    assert main(["table", "--targets", "linear", "--neurons", "1", "2", "--neuron", "relu",
                 "--synapse", "0.01", "--seeds", "3"], out=out) == 0
    assert out.getvalue().strip() == format_accuracy(table)
