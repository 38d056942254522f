"""Nengo export: `PopulationNeuron` and `PopulationLayer`, checked in real simulations.

References are computed here from the fitted parameters with the textbook rate
formulas (LIF: ``1 / (tau_ref - tau_rc * log(1 - 1/J))`` for ``J > 1``; ReLU:
``max(J, 0)``), not with popfit's or nengo's ``rates``.
"""

import dataclasses
import os
import warnings

import nengo
import numpy as np
import pytest

import popfit
from popfit.exceptions import PopfitTypeError, PopfitValueError
from popfit.network import PopulationLayer, PopulationNeuron
from popfit.result import PopulationFit

# these tests need *a* good fit, not the best: the quick search is ~2.4x cheaper
QUICK = popfit.SearchOptions.quick()

DT = 0.001


@pytest.fixture(scope="module")
def fit_lif():
    return popfit.fit_activation("tanh", 4, neuron_type="LIF", max_rate=400.0,
                                 synapse=0.01, search=QUICK, seed=0)


@pytest.fixture(scope="module")
def fit_relu():
    return popfit.fit_activation("sigmoid", 3, neuron_type="relu", max_rate=400.0,
                                 synapse=0.01, search=QUICK, seed=0)


def reference(fit, x):
    """Rate-level output of ``fit`` at inputs ``x`` (any shape), from first principles."""
    x = np.asarray(x, dtype=float)
    j = fit.gain * fit.encoders * x[..., None] + fit.bias
    nt = fit.neuron_type
    if isinstance(nt, nengo.LIFRate):
        with np.errstate(divide="ignore", invalid="ignore"):
            r = 1.0 / (nt.tau_ref - nt.tau_rc * np.log(1.0 - 1.0 / j))
        r = np.where(j > 1.0, r, 0.0)
    else:
        r = np.maximum(j, 0.0)
    return r @ fit.decoders


def nrmse(y, ref, scale):
    return np.sqrt(np.mean((y - ref) ** 2)) / scale


def target_range(fit):
    x = np.linspace(*fit.domain, 1001)
    return np.ptp(fit.target(x))


@pytest.mark.parametrize("which", ["fit_lif", "fit_relu"])
def test_neuron_rate_export_is_exact(which, request):
    """Rate mode reproduces the fitted curve over the whole domain (NRMSE < 1e-3)."""
    fit = request.getfixturevalue(which)
    lo, hi = fit.domain
    with nengo.Network(seed=1) as model:
        stim = nengo.Node(lambda t: lo + (hi - lo) * t / 1.0)
        pop = fit.network(label="unit", spiking=False)
        nengo.Connection(stim, pop.input, synapse=None)
        p_x = nengo.Probe(stim)
        p_y = nengo.Probe(pop.output)
    with nengo.Simulator(model, dt=DT, progress_bar=False) as sim:
        sim.run(1.0)
    x, y = sim.data[p_x][:, 0], sim.data[p_y][:, 0]
    assert x.min() < lo + 0.002 * (hi - lo) and x.max() > hi - 1e-9  # the whole domain was swept
    ref = reference(fit, x)
    assert nrmse(y, ref, target_range(fit)) < 1e-3
    assert nrmse(y, fit.predict(x), target_range(fit)) < 1e-3
    # and the fitted curve is a real approximation of the target, not a trivial match
    assert nrmse(y, fit.target(x), target_range(fit)) < 0.05
    assert isinstance(pop, PopulationNeuron) and pop.label == "unit" and not pop.spiking
    assert type(pop.ensemble.neuron_type) in (nengo.LIFRate, nengo.RectifiedLinear)


def test_neuron_spiking_drops_into_a_model(fit_lif):
    """Spiking unit between two ordinary objects: right values, no negative spikes."""
    fit = fit_lif
    lo, hi = fit.domain
    duration, tau = 4.0, 0.01
    with nengo.Network(seed=3) as model:
        stim = nengo.Node(lambda t: lo + (hi - lo) * t / duration)
        a = nengo.Node(size_in=1)
        b = nengo.Node(size_in=1)
        pop = PopulationNeuron(fit, seed=5)
        nengo.Connection(stim, a, synapse=None)
        nengo.Connection(a, pop.input)  # default synapse: input filtered by the user
        nengo.Connection(pop.output, b, synapse=tau)
        p_x = nengo.Probe(stim)
        p_b = nengo.Probe(b)
        p_spikes = nengo.Probe(pop.ensemble.neurons)
    with nengo.Simulator(model, dt=DT, progress_bar=False) as sim:
        sim.run(duration)
    assert isinstance(pop.ensemble.neuron_type, nengo.LIF) and pop.spiking
    spikes = sim.data[p_spikes]
    assert spikes.min() >= 0.0  # no negative spikes, ever
    assert set(np.unique(spikes)) <= {0.0, 1.0 / DT}
    counts = spikes.sum(axis=0) * DT
    assert np.all(counts > 50)  # every neuron really spikes
    x = sim.data[p_x][:, 0]
    ideal = np.tanh(x)
    y = sim.data[p_b][:, 0]
    keep = sim.trange() > 0.1  # both synapses settled from their zero start
    # two 5 ms / 10 ms lags on a sweep of 1.5 /s, plus spike noise at synapse 0.01
    err = nrmse(y[keep], ideal[keep], 2 * np.tanh(3.0))
    assert err < 0.06, err


def test_layer_rate_export_is_exact(fit_lif, rng):
    n_units = 7
    fit = fit_lif
    b = rng.uniform(-0.5, 0.5, n_units)
    phase = rng.uniform(0, 2 * np.pi, n_units)
    with nengo.Network(seed=1) as model:
        stim = nengo.Node(lambda t: 3.0 * np.sin(2 * np.pi * t + phase))
        layer = PopulationLayer(fit, n_units, spiking=False, input_bias=b)
        nengo.Connection(stim, layer.input, synapse=None)
        p_x = nengo.Probe(stim)
        p_y = nengo.Probe(layer.output)
    with nengo.Simulator(model, dt=DT, progress_bar=False) as sim:
        sim.run(1.0)
    x, y = sim.data[p_x], sim.data[p_y]
    ref = reference(fit, x + b)
    assert y.shape == (1000, n_units)
    assert nrmse(y, ref, target_range(fit)) < 1e-3
    assert np.ptp(ref, axis=0).min() > 1.0  # each unit swept most of its range
    # structure: one Ensemble of n_units * N neurons, block transforms with one
    # nonzero per neuron: Sparse in, Dense out (below DENSE_MAX_ENTRIES)
    assert layer.n_neurons == n_units * fit.n_neurons == layer.ensemble.n_neurons
    assert layer.input.size_out == n_units and layer.output.size_in == n_units
    c_in, c_out = layer.all_connections
    assert isinstance(c_in.transform, nengo.transforms.Sparse)
    assert c_in.transform.init.nnz == layer.n_neurons
    assert isinstance(c_out.transform, nengo.transforms.Dense)
    assert np.count_nonzero(c_out.transform.init) == layer.n_neurons
    d = layer.decoders_block().toarray()
    np.testing.assert_array_equal(d[2, 2 * fit.n_neurons:3 * fit.n_neurons], fit.decoders)
    assert np.count_nonzero(d[2]) == fit.n_neurons


def test_layer_connect_to_layer_node_and_ensemble_rate(fit_lif, fit_relu, rng):
    """Neuron-to-neuron and decoded connections carry the folded decoders exactly."""
    n1, n2 = 5, 3
    x0 = rng.uniform(-2.5, 2.5, n1)
    t_dense = rng.uniform(-0.8, 0.8, (n2, n1))
    b2 = rng.uniform(-0.3, 0.3, n2)
    t_node = rng.uniform(-1, 1, (2, n1))
    with nengo.Network(seed=1) as model:
        stim = nengo.Node(x0)
        l1 = PopulationLayer(fit_lif, n1, spiking=False)
        l2 = PopulationLayer(fit_relu, n2, spiking=False, input_bias=b2)
        l3 = PopulationLayer(fit_lif, n1, spiking=False)
        sink = nengo.Node(size_in=4)
        nengo.Connection(stim, l1.input, synapse=None)
        c12 = l1.connect_to(l2, transform=t_dense, synapse=None)
        c13 = l1.connect_to(l3, synapse=None)
        c1n = l1.connect_to(sink[1:3], transform=t_node, synapse=None)
        p2, p3 = nengo.Probe(l2.output), nengo.Probe(l3.output)
        p_sink = nengo.Probe(sink)
    with nengo.Simulator(model, dt=DT, progress_bar=False) as sim:
        sim.run(0.01)
    y1 = reference(fit_lif, x0)
    np.testing.assert_allclose(sim.data[p2][-1], reference(fit_relu, t_dense @ y1 + b2),
                               atol=1e-9)
    np.testing.assert_allclose(sim.data[p3][-1], reference(fit_lif, y1), atol=1e-9)
    np.testing.assert_allclose(sim.data[p_sink][-1], [0, *(t_node @ y1), 0], atol=1e-9)
    assert isinstance(c12.transform, nengo.transforms.Dense)
    assert c12.transform.shape == (l2.n_neurons, l1.n_neurons)
    assert isinstance(c13.transform, nengo.transforms.Sparse)
    assert c13.transform.init.nnz == n1 * fit_lif.n_neurons**2  # blocks, nothing else
    assert c13.pre_obj.ensemble is l1.ensemble and c13.post_obj.ensemble is l3.ensemble
    assert isinstance(c1n.transform, nengo.transforms.Dense)


def test_spiking_layers_chain_without_negative_spikes(fit_lif):
    """Two spiking layers wired neuron to neuron; no signed node in between."""
    n_units = 4
    x0 = np.array([-2.0, -0.5, 0.7, 2.5])
    tau = 0.01
    with nengo.Network(seed=2) as model:
        stim = nengo.Node(x0)
        l1 = PopulationLayer(fit_lif, n_units)
        l2 = PopulationLayer(fit_lif, n_units, input_bias=np.full(n_units, 0.3))
        nengo.Connection(stim, l1.input, synapse=None)
        l1.connect_to(l2, transform=2.0 * np.eye(n_units), synapse=0.005)
        out = nengo.Node(size_in=n_units)
        l2.connect_to(out, synapse=tau)
        p_out = nengo.Probe(out)
        p_s1 = nengo.Probe(l1.ensemble.neurons)
        p_s2 = nengo.Probe(l2.ensemble.neurons)
    with nengo.Simulator(model, dt=DT, progress_bar=False) as sim:
        sim.run(1.5)
    for p in (p_s1, p_s2):
        spikes = sim.data[p]
        assert spikes.min() >= 0.0
        assert spikes.sum() * DT > 1000  # plenty of spikes to check
    steady = sim.trange() > 0.3
    got = sim.data[p_out][steady].mean(axis=0)
    # the fitted curve composed with itself (rate level); spiking adds noise,
    # and the 5 ms synapse between the layers leaves ripple on layer 2's input
    want = reference(fit_lif, 2.0 * reference(fit_lif, x0) + 0.3)
    np.testing.assert_allclose(got, want, atol=0.06)
    # not trivially close: the inputs span the curve, the outputs differ widely
    assert np.ptp(want) > 1.5


def test_network_errors(fit_lif):
    with pytest.raises(PopfitValueError, match=r"n_units must be an integer >= 1 \(got 0\)"):
        PopulationLayer(fit_lif, 0)
    with pytest.raises(PopfitTypeError, match="n_units"):
        PopulationLayer(fit_lif, 2.5)
    with pytest.raises(PopfitValueError, match=r"input_bias .*\(3,\).*got shape \(2,\)"):
        PopulationLayer(fit_lif, 3, input_bias=[0.0, 1.0])
    with pytest.raises(PopfitValueError, match=r"shape \(n_units,\) = \(3,\) \(got shape "
                                               r"\(3,\) with non-finite values\)"):
        PopulationLayer(fit_lif, 3, input_bias=[0.0, np.inf, 1.0])
    with pytest.raises(PopfitTypeError, match="PopulationFit"):
        PopulationNeuron("tanh")
    # a fit of a signed rate type has no positive-only spiking twin
    # (from_parameters refuses a signed rate type; a fit made by hand may still hold one)
    odd = dataclasses.replace(fit_lif, neuron_type=nengo.Tanh())
    with pytest.raises(PopfitValueError, match=r"neuron_type Tanh.*spiking=True"):
        odd.network()
    with pytest.raises(PopfitValueError, match=r"neuron_type Tanh"):
        PopulationLayer(odd, 2, spiking=False)

    with nengo.Network():
        l1 = PopulationLayer(fit_lif, 3)
        l2 = PopulationLayer(fit_lif, 2)
        node = nengo.Node(size_in=4)
        with pytest.raises(PopfitValueError, match=r"size 3 .*\(got size 2\)"):
            l1.connect_to(l2)
        with pytest.raises(PopfitValueError, match=r"shape \(2, 3\).*got shape \(3, 3\)"):
            l1.connect_to(l2, transform=np.eye(3))
        with pytest.raises(PopfitValueError, match=r"shape \(4, 3\).*got shape \(3, 4\)"):
            l1.connect_to(node, transform=np.ones((3, 4)))
        for bad in (0, -0.01):
            with pytest.raises(PopfitValueError, match=rf"synapse must be .*> 0 \(got {bad}"):
                l1.connect_to(l1, synapse=bad)
        with pytest.raises(PopfitTypeError, match="post must be"):
            l1.connect_to("layer")


def test_max_rates_warnings_are_nengo_build_only_and_filterable(fit_lif):
    """nengo's informational max_rates warn for a threshold just beyond x = 1; the
    narrow filter silences exactly those, and the simulation is unaffected."""
    from popfit.network import ignore_max_rates_warnings

    fit = fit_lif
    # shift unit 0 so neuron 0 has gain + bias = 0.5 (fires only beyond x = 1)
    b0 = (0.5 - fit.gain[0] - fit.bias[0]) / (fit.gain[0] * fit.encoders[0])
    with nengo.Network(seed=1) as model:
        layer = PopulationLayer(fit, 2, spiking=False, input_bias=[b0, 0.0])
        stim = nengo.Node([2.0, 0.5])
        nengo.Connection(stim, layer.input, synapse=None)
        p_y = nengo.Probe(layer.output)
    assert layer.ensemble.gain[0] + layer.ensemble.bias[0] == pytest.approx(0.5)
    with warnings.catch_warnings(record=True) as raw:
        warnings.simplefilter("always")
        nengo.Simulator(model, dt=DT, progress_bar=False).close()
    assert {(w.category, str(w.message).split(";")[0]) for w in raw} == {
        (RuntimeWarning, "invalid value encountered in log1p"),
        (UserWarning, "Non-finite values detected in `max_rates`")}
    assert all(w.filename.endswith(os.path.join("nengo", "neurons.py")) for w in raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # anything not filtered would raise
        with ignore_max_rates_warnings():
            sim = nengo.Simulator(model, dt=DT, progress_bar=False)
    assert np.isnan(sim.data[layer.ensemble].max_rates[0])
    with sim:
        sim.run_steps(5)
    ref = reference(fit, np.array([2.0 + b0, 0.5]))
    np.testing.assert_allclose(sim.data[p_y][-1], ref, rtol=1e-6, atol=1e-9)
    with pytest.warns(UserWarning, match="unrelated"), ignore_max_rates_warnings():
        warnings.warn("unrelated")  # other warnings still get through


def test_small_layers_decode_densely_and_exactly_as_sparse(fit_lif, monkeypatch):
    """Below DENSE_MAX_ENTRIES the output connection is Dense (faster in nengo at that
    size, bench_layer.py), the input stays Sparse; outputs equal the Sparse layer's."""
    import popfit.network as network

    def run(n_units):
        with nengo.Network(seed=3) as model:
            stim = nengo.Node(lambda t: np.linspace(-3, 3, n_units) * np.cos(7 * t))
            layer = PopulationLayer(fit_lif, n_units)
            nengo.Connection(stim, layer.input, synapse=None)
            probe = nengo.Probe(layer.output, synapse=0.01)
        with nengo.Simulator(model, dt=DT, progress_bar=False) as sim:
            sim.run(0.3)
        c_in, c_out = layer.all_connections
        assert isinstance(c_in.transform, nengo.transforms.Sparse)
        return sim.data[probe], {type(c_out.transform)}

    n = fit_lif.n_neurons
    small = int(np.sqrt(network.DENSE_MAX_ENTRIES / n))  # the largest under the limit
    assert small * small * n <= network.DENSE_MAX_ENTRIES
    dense_out, kinds = run(small)
    assert kinds == {nengo.transforms.Dense}
    monkeypatch.setattr(network, "DENSE_MAX_ENTRIES", 0)
    sparse_out, kinds = run(small)
    assert kinds == {nengo.transforms.Sparse}
    assert np.ptp(sparse_out) > 1.0  # the units spiked and swept their range
    np.testing.assert_allclose(dense_out, sparse_out, rtol=0, atol=1e-12)
    monkeypatch.undo()
    big = int(np.sqrt(network.DENSE_MAX_ENTRIES / n)) + 1  # n_units * (n_units * N) above
    _, kinds = run(big)
    assert kinds == {nengo.transforms.Sparse}
