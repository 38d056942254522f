"""Nengo export: `PopulationNeuron` and `PopulationLayer`, checked in real simulations.

References are computed here from the fitted parameters with the textbook rate
formulas (LIF: ``1 / (tau_ref - tau_rc * log(1 - 1/J))`` for ``J > 1``; ReLU:
``max(J, 0)``), not with popfit's or nengo's ``rates``.
"""

import dataclasses
import os
import re
import warnings

import nengo
import numpy as np
import pytest
import scipy.sparse

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
    assert layer.total_neurons == n_units * fit.n_neurons == layer.ensemble.n_neurons
    assert layer.input.size_out == n_units and layer.output.size_in == n_units
    c_in, c_out = layer.all_connections
    assert isinstance(c_in.transform, nengo.transforms.Sparse)
    assert c_in.transform.init.nnz == layer.total_neurons
    assert isinstance(c_out.transform, nengo.transforms.Dense)
    assert np.count_nonzero(c_out.transform.init) == layer.total_neurons
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
        c12 = l1.connect_to(l2, transform=t_dense, connection_synapse=None)
        c13 = l1.connect_to(l3, connection_synapse=None)
        c1n = l1.connect_to(sink[1:3], transform=t_node, connection_synapse=None)
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
    assert c12.transform.shape == (l2.total_neurons, l1.total_neurons)
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
        l1.connect_to(l2, transform=2.0 * np.eye(n_units), connection_synapse=0.005)
        out = nengo.Node(size_in=n_units)
        l2.connect_to(out, connection_synapse=tau)
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
                l1.connect_to(l1, connection_synapse=bad)
        with pytest.raises(PopfitTypeError, match="post must be"):
            l1.connect_to("layer")


def test_max_rates_warnings_are_nengo_build_only_and_filterable(fit_lif):
    """nengo's informational max_rates warn for a threshold just beyond x = 1; the
    narrow filter silences exactly those, and the simulation is unaffected."""
    from popfit.neurons import ignore_max_rates_warnings

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
    monkeypatch.setattr(network.layer, "DENSE_MAX_ENTRIES", 0)  # where the layer reads it
    sparse_out, kinds = run(small)
    assert kinds == {nengo.transforms.Sparse}
    assert np.ptp(sparse_out) > 1.0  # the units spiked and swept their range
    np.testing.assert_allclose(dense_out, sparse_out, rtol=0, atol=1e-12)
    monkeypatch.undo()
    big = int(np.sqrt(network.DENSE_MAX_ENTRIES / n)) + 1  # n_units * (n_units * N) above
    _, kinds = run(big)
    assert kinds == {nengo.transforms.Sparse}


# --- argument checks: a popfit error naming the argument, never a different network -----

@pytest.mark.parametrize("spiking", ["False", "no", "", 0, 1, 1.0, None])
@pytest.mark.parametrize("build", ["PopulationNeuron", "PopulationLayer", "PopulationFit.network"])
def test_spiking_must_be_a_boolean(fit_lif, build, spiking):
    """A non-empty string is truthy: spiking="False" used to build a spiking network."""
    make = {"PopulationNeuron": lambda s: PopulationNeuron(fit_lif, spiking=s),
            "PopulationLayer": lambda s: PopulationLayer(fit_lif, 2, spiking=s),
            "PopulationFit.network": lambda s: fit_lif.network(spiking=s)}[build]
    with pytest.raises(PopfitTypeError, match=rf"^{build}: spiking must be True or False "
                                              rf"\(got {re.escape(repr(spiking))} of type"):
        make(spiking)
    # numpy's booleans are booleans
    assert type(make(np.bool_(False)).ensemble.neuron_type) is nengo.LIFRate
    assert type(make(np.bool_(True)).ensemble.neuron_type) is nengo.LIF


def _parameters(fit, **changes):
    params = dict(target=fit.target, domain=fit.domain, neuron_type=fit.neuron_type,
                  gain=fit.gain, bias=fit.bias, encoders=fit.encoders, decoders=fit.decoders,
                  max_rate=fit.max_rate, synapse=fit.synapse)
    params.update(changes)
    return params


def test_from_parameters_rebuilds_a_fit_at_its_bounds(fit_lif):
    """The fit's own parameters pass (its neurons reach max_rate at the domain edges)
    and give the same fit; names are resolved as in fit_activation."""
    assert np.max(fit_lif.max_rates) == pytest.approx(fit_lif.max_rate, rel=1e-12)
    again = PopulationFit.from_parameters(**_parameters(
        fit_lif, target="tanh", neuron_type="LIF", gain=list(fit_lif.gain)))
    assert again.target.name == fit_lif.target.name and type(again.neuron_type) is nengo.LIF
    np.testing.assert_array_equal(again.max_rates, fit_lif.max_rates)
    assert (again.nrmse, again.spiking_nrmse) == (fit_lif.nrmse, fit_lif.spiking_nrmse)
    np.testing.assert_array_equal(again.predict([-1.0, 0.5]), fit_lif.predict([-1.0, 0.5]))


_G = [1.0, 1.0, 1.0, 1.0]  # shapes of the 4-neuron fit_lif


@pytest.mark.parametrize("changes, error, match", [
    (dict(gain=[np.nan] + _G[1:]), PopfitValueError,
     r"gain must be a finite array \(got shape \(4,\) with non-finite values\)"),
    (dict(gain=[0.0] + _G[1:]), PopfitValueError,
     r"gain must be > 0 for every neuron \(got gain\[0\] = 0.0\)"),
    (dict(gain=[1.0, 1.0, -2.0, 1.0]), PopfitValueError, r"gain must be > 0 .*gain\[2\] = -2.0"),
    (dict(gain="abcd"), PopfitTypeError, r"gain must be an array of real numbers \(got str\)"),
    (dict(gain=[], bias=[], encoders=[], decoders=[]), PopfitValueError,
     r"gain must be a 1-d array of 1 to 256 values, one per neuron \(got shape \(0,\)\)"),
    (dict(gain=np.ones(257), bias=np.zeros(257), encoders=np.ones(257),
          decoders=np.zeros(257)), PopfitValueError,
     r"gain must be .* 1 to 256 values.*\(257,\)\)"),
    (dict(encoders=[0.5, 1.0, -1.0, -1.0]), PopfitValueError,
     r"encoders must be exactly \+1 or -1 \(got encoders\[0\] = 0.5\)"),
    (dict(encoders=[1.0, -1.0, 1.0]), PopfitValueError,
     r"encoders must be a finite array of shape \(len\(gain\),\) = \(4,\) \(got shape \(3,\)\)"),
    (dict(bias=[0.0, 1.0]), PopfitValueError, r"bias must be .*= \(4,\) \(got shape \(2,\)\)"),
    (dict(bias=[_G]), PopfitValueError, r"bias must be .*= \(4,\) \(got shape \(1, 4\)\)"),
    (dict(bias=[np.nan] + _G[1:]), PopfitValueError, r"bias must be a finite array .*non-finite"),
    (dict(decoders=np.zeros(5)), PopfitValueError, r"decoders must be .*\(got shape \(5,\)\)"),
    (dict(decoders=[np.inf] + _G[1:]), PopfitValueError, r"decoders must be a finite array"),
    (dict(decoders=[1j] + _G[1:]), PopfitTypeError, r"decoders must be an array of real numbers"),
    (dict(domain=(3.0, -3.0)), PopfitValueError, r"domain must have lo < hi"),
    (dict(domain="ab"), PopfitValueError, r"domain must be a pair \(lo, hi\)"),
    (dict(target=3), PopfitTypeError, r"target must be a name .* or a callable"),
    (dict(neuron_type=nengo.Tanh()), PopfitTypeError, r"unsupported neuron_type Tanh\(\)"),
    (dict(neuron_type=None), PopfitTypeError, r"unsupported neuron_type None"),
    (dict(max_rate=np.nan), PopfitValueError, r"max_rate must be finite and > 0 \(got nan\)"),
    (dict(max_rate=600.0), PopfitValueError, r"max_rate must be < 500 Hz.*\(got 600\)"),
    (dict(max_rate=200.0), PopfitValueError,
     r"no neuron may fire above max_rate = 200 Hz on the domain \[-3.0, 3.0\] \(got [1-4] "
     r"of 4: neuron \d fires 400 Hz at x = -?3, by LIF.rates of its gain"),
    (dict(synapse=0.0), PopfitValueError, r"synapse must be finite and > 0 \(got 0.0\)"),
    (dict(synapse="0.01"), PopfitTypeError, r"synapse must be a positive number"),
    (dict(seed=1.5), PopfitTypeError, r"seed must be an integer in \[0, 4294967295\] \(got 1.5"),
    (dict(seed=-1), PopfitValueError, r"seed must be an integer in \[0, 4294967295\] \(got -1\)"),
    (dict(success="no"), PopfitTypeError, r"success must be True or False \(got 'no'"),
    (dict(message=3), PopfitTypeError, r"message must be a string \(got 3 of type int\)"),
    (dict(nfev=-1), PopfitValueError, r"nfev must be an integer >= 0 \(got -1\)"),
    (dict(nfev="a"), PopfitTypeError, r"nfev must be an integer >= 0 \(got 'a'"),
    (dict(fit_time=np.nan), PopfitValueError, r"fit_time must be a finite number >= 0 .*nan"),
    (dict(fit_time="1"), PopfitTypeError, r"fit_time must be a finite number >= 0 .*'1'"),
    (dict(diagnostics="x"), PopfitTypeError,
     r"diagnostics must be a popfit.SearchDiagnostics or None \(got str\)"),
])
def test_from_parameters_enforces_the_fit_bounds(fit_lif, changes, error, match):
    """NaN or zero gains, an encoder of 0.5 or a neuron above max_rate used to make a fit
    (and a network) silently; mismatched lengths raised numpy's errors."""
    with pytest.raises(error, match="^PopulationFit.from_parameters: " + match):
        PopulationFit.from_parameters(**_parameters(fit_lif, **changes))


def test_layer_size_is_bounded_by_max_layer_neurons(fit_lif, monkeypatch):
    """n_units = 10**10 exhausted memory (MemoryError, or the process killed) while
    tiling the gains; the bound is on the layer's neurons, n_units * fit.n_neurons."""
    import popfit.network as network

    assert network.MAX_LAYER_NEURONS == 10**7
    with pytest.raises(PopfitValueError, match=r"^PopulationLayer: n_units \* fit.n_neurons "
                                               r"must be at most MAX_LAYER_NEURONS = "
                                               r"10,000,000 neurons \(got 10,000,000,000 "
                                               r"units x 4 neurons = 40,000,000,000\)"):
        PopulationLayer(fit_lif, 10**10)
    monkeypatch.setattr(network.layer, "MAX_LAYER_NEURONS", 8)
    assert PopulationLayer(fit_lif, 2).total_neurons == 8  # exactly at the bound
    with pytest.raises(PopfitValueError, match=r"at most MAX_LAYER_NEURONS = 8 neurons "
                                               r"\(got 3 units x 4 neurons = 12\)"):
        PopulationLayer(fit_lif, 3)


def test_input_bias_that_overflows_the_bias_currents_is_refused(fit_lif):
    """bias + gain * encoder * input_bias overflowed to inf neurons silently."""
    with pytest.raises(PopfitValueError, match=r"^PopulationLayer: input_bias folded into the "
                                               r"bias currents .* overflows: \|input_bias\| must "
                                               r"be below about .*\(got 1e\+308\)"):
        PopulationLayer(fit_lif, 2, input_bias=[0.0, 1e308])
    layer = PopulationLayer(fit_lif, 2, input_bias=[0.0, 1e300])  # large but finite: kept
    assert np.all(np.isfinite(layer.ensemble.bias))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(label=3), PopfitTypeError, r"label must be a string or None \(got 3 of type int\)"),
    (dict(seed=1.5), PopfitTypeError, r"seed must be an integer in \[0, 4294967295\] \(got 1.5"),
    (dict(seed="1"), PopfitTypeError, r"seed must be an integer .*\(got '1' of type str\)"),
    (dict(seed=-1), PopfitValueError, r"seed must be an integer in \[0, 4294967295\] \(got -1\)"),
    (dict(seed=2**32), PopfitValueError, r"seed must be an integer .*\(got 4294967296\)"),
    (dict(add_to_container="no"), PopfitTypeError, r"add_to_container must be True or False"),
    (dict(foo=1), PopfitTypeError, r"unexpected keyword arguments \['foo'\]; besides its own "
                                   r"arguments the network takes nengo.Network's label, seed "
                                   r"and add_to_container"),
])
@pytest.mark.parametrize("cls", [PopulationNeuron, PopulationLayer])
def test_network_arguments_are_checked(fit_lif, cls, kwargs, error, match):
    """nengo refused a float seed or an int label with its own error, took seed=-1 (which
    fails only when the simulator is built) and add_to_container="no" (a truthy string)."""
    args = (fit_lif,) if cls is PopulationNeuron else (fit_lif, 2)
    with pytest.raises(error, match=rf"^{cls.__name__}: {match}"):
        cls(*args, **kwargs)
    assert cls(*args, seed=np.int64(3), label="ok").seed == 3


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(weights="abc"), PopfitTypeError, r"weights must be an array of real numbers "
                                           r"\(got str\)"),
    (dict(weights=[[1.0], [1.0, 2.0]]), PopfitTypeError, r"weights must be an array of real "
                                                         r"numbers \(got list\)"),
    (dict(weights=np.ones((2, 8)) * 1j), PopfitTypeError, r"weights must be an array of real "
                                                          r"numbers .*complex128"),
    (dict(weights=np.full((2, 8), np.nan)), PopfitValueError,
     r"weights must be a finite array of shape \(2, 8\) \(post size, this layer's "
     r"total_neurons\) \(got shape \(2, 8\) with non-finite values\)"),
    (dict(weights=np.ones((8, 2))), PopfitValueError, r"weights .*\(2, 8\) .*\(got shape "
                                                      r"\(8, 2\)\)"),
    (dict(weights=np.ones((2, 8)), transform=np.eye(2)), PopfitValueError,
     r"pass either transform .* or weights"),
    (dict(transform="abc"), PopfitTypeError, r"transform must be an array of real numbers "
                                             r"\(got str\)"),
    (dict(transform=[["a", "b"], ["c", "d"]]), PopfitTypeError, r"transform must be an "
                                                                r"array of real numbers"),
    (dict(connection_synapse="abc"), PopfitTypeError,
     r"connection_synapse must be a positive number"),
    (dict(connection_synapse=nengo.Lowpass(0.01)), PopfitTypeError,
     r"connection_synapse must be a positive number .*Lowpass"),
])
def test_connect_to_arguments_are_checked(fit_lif, kwargs, error, match):
    """String or ragged weights raised numpy's errors; complex weights lost their
    imaginary part silently."""
    with nengo.Network():
        a, b = PopulationLayer(fit_lif, 2), PopulationLayer(fit_lif, 2)
        with pytest.raises(error, match="^PopulationLayer.connect_to: " + match):
            a.connect_to(b, **kwargs)


def test_connect_to_takes_sparse_weights(fit_lif, rng):
    w = rng.normal(size=(2, 8))
    w[w < 0] = 0.0
    with nengo.Network():
        a, b = PopulationLayer(fit_lif, 2), PopulationLayer(fit_lif, 2)
        dense = a.connect_to(b, weights=w)
        sparse = a.connect_to(b, weights=scipy.sparse.csr_matrix(w))
    # the same weights, kept sparse: a Sparse transform (a re-solved convolution)
    assert isinstance(dense.transform, nengo.transforms.Dense)
    assert isinstance(sparse.transform, nengo.transforms.Sparse)
    init = sparse.transform.init
    init = scipy.sparse.csr_matrix((init.data, init.indices.T), shape=init.shape) \
        if not scipy.sparse.issparse(init) else init
    np.testing.assert_array_equal(init.toarray(), dense.transform.init)
