"""`popfit.to_nir`: graph structure, round trip and refusals (needs only ``nir``).

The graphs are checked against an independent reading of NIR's equations: at
rate level (constant input, steady state) an Affine node computes ``W x + b``,
an LIF/CubaLIF node with ``v_leak = 0``, ``v_reset = 0`` and input current
``I`` fires ``1 / (tau * log(r I / (r I - v_threshold)))`` unit-area spikes per
second, an IF node ``r I / v_threshold``, and an LI node passes ``r I`` (its
DC gain). That must equal popfit's fitted rate-level model (`fit.predict`
layer by layer), which is computed without the graph.
"""

import dataclasses
import os
import warnings

import nengo
import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPRegressor

import popfit
from popfit.exceptions import PopfitTypeError, PopfitValueError
from popfit.network import PopulationLayer

nir = pytest.importorskip("nir")
from popfit.nir import graphs_equal, to_nir  # noqa: E402
from popfit.platforms import Platform, get_platform  # noqa: E402

# NIR fits have tau_ref = 0 < nengo's dt: exporting them to nengo warns, by design
pytestmark = pytest.mark.filterwarnings("ignore:.*tau_ref = .* < dt = :UserWarning")

# these tests need *a* good fit, not the best: the quick search is ~2.4x cheaper
QUICK = popfit.SearchOptions.quick()

NIR_LIF = nengo.LIF(tau_ref=0)
SNNTORCH = get_platform("snntorch")


NEURON_NODES = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI)


def neuron_values(node, v, spike_area):
    """A neuron node's steady-state output for constant input currents ``v``: the
    spiking nodes' rates times ``spike_area``, LI's leaky-integrator level."""
    if isinstance(node, (nir.LIF, nir.CubaLIF)):
        tau = node.tau if isinstance(node, nir.LIF) else node.tau_mem
        assert np.all(node.v_leak == 0) and np.all(node.v_reset == 0)
        u = node.r * getattr(node, "w_in", 1.0) * v
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = 1.0 / (tau * np.log(u / (u - node.v_threshold)))
        return np.where(u > node.v_threshold, rate, 0.0) * spike_area
    if isinstance(node, nir.IF):
        return np.maximum(node.r * v / node.v_threshold, 0.0) * spike_area
    return node.r * v + node.v_leak  # nir.LI


def graph_rates(graph, x, spike_area=1.0):
    """Steady-state output of a chain graph for constant inputs ``x`` (n, n_in).

    ``spike_area``: the weight of one spike as read by the next node (1 in NIR's
    semantics, dt for a consumer that counts a spike as 1 for one step)."""
    nxt = dict(graph.edges)
    assert len(nxt) == len(graph.edges), "a chain has one edge out of each node"
    name, v = "input", np.asarray(x, dtype=float)
    while name != "output":
        name = nxt[name]
        node = graph.nodes[name]
        if isinstance(node, nir.Affine):
            v = v @ node.weight.T + node.bias
        elif isinstance(node, NEURON_NODES):
            v = neuron_values(node, v, spike_area)
        elif not isinstance(node, nir.Output):
            raise AssertionError(f"unexpected node {name}: {type(node).__name__}")
    return v


def round_trip(graph, tmp_path):
    path = os.path.join(tmp_path, "g.nir")
    nir.write(path, graph)
    return nir.read(path)


@pytest.fixture(scope="module")
def digits():
    X, _ = load_digits(return_X_y=True)
    return X[:200] / 16.0


@pytest.fixture(scope="module")
def mlp(digits):
    """A 2-hidden-layer tanh regressor (two pixels from the image)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MLPRegressor(hidden_layer_sizes=(12, 8), activation="tanh", max_iter=200,
                            random_state=0).fit(digits, digits[:, 20:22])


@pytest.fixture(scope="module")
def regressor(mlp, digits):
    """``mlp``'s conversion."""
    return popfit.convert(mlp, n_neurons=3, neuron_type=NIR_LIF, calibration_data=digits,
                          search=QUICK, seed=0)


@pytest.fixture(scope="module")
def fit_lif():
    return popfit.fit_activation("tanh", 4, neuron_type=NIR_LIF, search=QUICK, seed=0)


@pytest.fixture(scope="module")
def fit_relu():
    return popfit.fit_activation("sigmoid", 3, neuron_type="relu", search=QUICK, seed=0)


def exportables(fit_lif, fit_relu, regressor):
    t = np.random.default_rng(0).normal(size=(3, 5))
    return {
        "neuron": (fit_lif.network(), {}),
        "layer": (PopulationLayer(fit_lif, 5, input_bias=np.linspace(-1, 1, 5)), {}),
        "chain": ([PopulationLayer(fit_lif, 5), PopulationLayer(fit_relu, 3)],
                  dict(transforms=[t], connection_synapse=0.01)),
        "relu chain": ([PopulationLayer(fit_relu, 3), PopulationLayer(fit_relu, 3)], {}),
        "converted": (regressor, {}),
        "converted, affine read-out": (regressor, dict(readout="affine")),
        "converted, snntorch": (regressor, dict(platform="snntorch")),
    }


@pytest.mark.parametrize("which", ["neuron", "layer", "chain", "relu chain", "converted",
                                   "converted, affine read-out", "converted, snntorch"])
def test_round_trip_and_rate_level(which, fit_lif, fit_relu, regressor, digits, tmp_path):
    """nir.read(nir.write(g)) is identical to g, and g's steady-state output is popfit's
    rate-level model."""
    obj, kwargs = exportables(fit_lif, fit_relu, regressor)[which]
    graph = to_nir(obj, **kwargs)
    back = round_trip(graph, tmp_path)
    assert graphs_equal(graph, back)
    # the comparison can fail: one changed weight is seen
    back.nodes["affine_0"].weight[0, 0] += 1e-12
    assert not graphs_equal(graph, back)

    if which == "converted" or which.startswith("converted,"):
        x = digits[:50]
        expected = regressor.rate_output(x)
    else:
        layers = obj if isinstance(obj, list) else [obj]
        n_in = 1 if which == "neuron" else layers[0].n_units
        x = np.random.default_rng(1).uniform(-2, 2, size=(40, n_in))
        a = x
        transforms = kwargs.get("transforms", [None] * (len(layers) - 1))
        for k, layer in enumerate(layers):
            if k > 0:
                a = a if transforms[k - 1] is None else a @ transforms[k - 1].T
            bias = getattr(layer, "input_bias", 0.0)
            a = layer.fit.predict(a + bias)
        expected = a
    area = SNNTORCH.nir_dt if kwargs.get("platform") else 1.0
    np.testing.assert_allclose(graph_rates(graph, x, area), expected, rtol=1e-7,
                               atol=1e-7 * np.abs(expected).max())


def test_nodes_map_nengo_parameters(fit_lif, fit_relu):
    """The node types and time constants follow the mapping table."""
    chain = [PopulationLayer(fit_lif, 2), PopulationLayer(fit_lif, 2),
             PopulationLayer(fit_relu, 2)]
    g = to_nir(chain, connection_synapse=0.007)
    assert [type(g.nodes[k]).__name__ for k in ("neurons_0", "neurons_1", "synapse_2",
                                                "neurons_2", "readout")] == \
        ["LIF", "CubaLIF", "LI", "IF", "LI"]
    assert np.all(g.nodes["neurons_0"].tau == 0.02) and np.all(g.nodes["neurons_0"].r == 1)
    cuba = g.nodes["neurons_1"]
    assert np.all(cuba.tau_syn == 0.007) and np.all(cuba.tau_mem == 0.02)
    assert np.all(cuba.w_in == 1) and np.all(cuba.v_threshold == 1)
    assert np.all(g.nodes["synapse_2"].tau == 0.007) and np.all(g.nodes["readout"].tau == 0.007)
    assert g.nodes["neurons_0"].metadata["tau_ref"] == 0.0
    assert g.nodes["neurons_2"].metadata["target"] == "sigmoid"
    # a ConvertedModel's read-out filter is its connection synapse
    assert g.nodes["affine_0"].weight.shape == (8, 2)


def test_converted_readout_synapse(regressor):
    synapse = regressor.connection_synapse
    g = to_nir(regressor)
    assert np.all(g.nodes["readout"].tau == synapse)
    assert np.all(g.nodes["neurons_1"].tau_syn == synapse)
    assert g.metadata["connection_synapse"] == synapse


def test_refractory_fit_is_refused_with_the_fix(regressor):
    fit = popfit.fit_activation("tanh", 3, neuron_type="LIF",
                                search=QUICK, seed=0)  # tau_ref = 2 ms
    with pytest.raises(PopfitValueError,
                       match=r"^to_nir: layer 0's fit uses LIF\(\), with refractory period "
                             r"tau_ref = 0\.002 s, which platform 'nir' does not run .*"
                             r"popfit\.get_platform\('nir'\)\.fit_neuron_type\(\) = "
                             r"LIF\(tau_ref=0\.0\).*drop_tau_ref=True"):
        to_nir(fit.network())
    g = to_nir(fit.network(), drop_tau_ref=True)
    assert g.nodes["neurons_0"].metadata["tau_ref"] == 0.002


@pytest.fixture
def slower_snntorch(monkeypatch):
    """A user's platform: snnTorch's conventions at a 0.2 ms step, registered by name (the
    registry is restored after the test)."""
    from popfit import platforms

    monkeypatch.setattr(platforms, "_PLATFORMS", dict(platforms._PLATFORMS))
    return platforms.register_platform(get_platform(
        "snntorch", name="snntorch-0.2ms", nir_dt=2e-4, step=2e-4,
        description="snnTorch's NIR import at dt 0.2 ms (no LI node)"))


def _with_neuron_type(fit, neuron_type):
    return popfit.PopulationFit.from_parameters(
        target=fit.target, domain=fit.domain, neuron_type=neuron_type, gain=fit.gain,
        bias=fit.bias, encoders=fit.encoders, decoders=fit.decoders, max_rate=fit.max_rate,
        synapse=fit.synapse)


def test_whole_step_fit_only_for_its_platform(fit_lif, slower_snntorch):
    """A fit with the half-step refractory period of a platform's step is exported for
    that platform only (the accepted tau_ref comes from the platform, not from a table)."""
    assert SNNTORCH.fit_neuron_type().tau_ref == SNNTORCH.nir_dt / 2
    assert get_platform("nir").fit_neuron_type().tau_ref == 0
    assert slower_snntorch.fit_neuron_type().tau_ref == 2e-4 / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = {p.name: _with_neuron_type(fit_lif, p.fit_neuron_type())
                for p in (SNNTORCH, slower_snntorch)}
    for name, fit in fits.items():
        for platform in ("nir", "snntorch", "snntorch-0.2ms"):
            if platform == name:
                to_nir(fit.network(), platform=platform)
            else:
                with pytest.raises(PopfitValueError,
                                   match=rf"tau_ref = {fit.neuron_type.tau_ref:g} s, which platform "
                                         rf"'{platform}' does not run"):
                    to_nir(fit.network(), platform=platform)
        # a fit without refractory period runs everywhere
        to_nir(fit_lif.network(), platform=name)


def test_registered_platform_sets_the_graph(regressor, digits, slower_snntorch):
    """A platform the user registers changes the graph exactly as its fields say, with no
    change to popfit.nir: neurons get r = tau / nir_dt (the Affine weights and biases
    into them divided by r), spike-carrying weights are multiplied by 1 / nir_dt, and
    the read-out is the platform's ("affine")."""
    dt = 2e-4
    ref = to_nir(regressor, readout="affine")  # NIR's own semantics: r = 1, unit-area spikes
    g = to_nir(regressor, platform="snntorch-0.2ms")
    assert graphs_equal(g, to_nir(regressor, platform=slower_snntorch))
    assert list(g.nodes) == list(ref.nodes) and "readout" not in g.nodes
    assert g.metadata["platform"] == "snntorch-0.2ms" and g.metadata["nir_dt"] == dt
    assert ref.metadata["platform"] == "nir" and ref.metadata["nir_dt"] == 0.0
    n_layers = len(regressor.network.layers)
    for k in range(n_layers):
        neurons = ref.nodes[f"neurons_{k}"]
        assert np.all(neurons.r == 1)
        tau = neurons.tau if k == 0 else neurons.tau_mem
        r = tau / dt
        np.testing.assert_allclose(g.nodes[f"neurons_{k}"].r, r, rtol=1e-15, atol=0)
        spike = 1.0 if k == 0 else 1.0 / dt  # the input is not spikes
        np.testing.assert_allclose(g.nodes[f"affine_{k}"].weight,
                                   ref.nodes[f"affine_{k}"].weight * spike / r[:, None],
                                   rtol=1e-12, atol=0)
        np.testing.assert_allclose(g.nodes[f"affine_{k}"].bias,
                                   ref.nodes[f"affine_{k}"].bias / r, rtol=1e-12, atol=0)
    np.testing.assert_allclose(g.nodes["affine_out"].weight,
                               ref.nodes["affine_out"].weight / dt, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(g.nodes["affine_out"].bias, ref.nodes["affine_out"].bias)
    # read with spikes of area dt, its steady state is the model's rate-level output
    x = digits[:50]
    expected = regressor.rate_output(x)
    np.testing.assert_allclose(graph_rates(g, x, dt), expected, rtol=1e-7,
                               atol=1e-7 * np.abs(expected).max())


@pytest.mark.parametrize("platform", ["loihi", "nengo", get_platform("loihi")])
def test_non_nir_platform_is_refused_by_name(platform, fit_lif):
    name = getattr(platform, "name", platform)
    with pytest.raises(PopfitValueError,
                       match=rf"^to_nir: platform must export a NIR graph: one of 'nir', "
                             rf"'snntorch', 'norse', 'rockpool', 'sinabs' or a "
                             rf"popfit\.platforms\.Platform with export='nir' "
                             rf"\(got .*'{name}'.*, which exports a nengo network; "
                             rf"'{name}' is .*\); export to it with popfit\.convert"):
        to_nir(fit_lif.network(), platform=platform)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(readout="spikes"), PopfitValueError, r"readout must be None or one of 'LI'"),
    (dict(platform="lava"), PopfitValueError,
     r"platform must be a popfit\.platforms\.Platform or one of .*'sinabs' \(got 'lava'\)"),
    (dict(platform=3), PopfitTypeError, r"platform must be a name or a popfit\.platforms"),
    (dict(platform="snntorch", readout="LI"), PopfitValueError,
     r"readout must be one of the read-outs platform 'snntorch' runs, 'affine' \(got 'LI'; "
     r"'snntorch' is snnTorch 1\.0's NIR import .*no LI node\)\); use readout='affine'"),
    (dict(connection_synapse=0), PopfitValueError,
     r"connection_synapse must be finite and > 0 \(got 0\.0\)"),
    (dict(connection_synapse=True), PopfitTypeError,
     r"connection_synapse must be a positive number"),
    (dict(transforms=[None]), PopfitValueError, r"transforms is only for a chain"),
    (dict(drop_tau_ref="yes"), PopfitTypeError, r"drop_tau_ref must be True or False"),
])
def test_invalid_options(kwargs, error, match, fit_lif):
    with pytest.raises(error, match="^to_nir: " + match):
        to_nir(fit_lif.network(), **kwargs)


def test_neuron_nodes_the_platform_does_not_run_are_refused(fit_relu):
    """RectifiedLinear fits are NIR's IF node, which snnTorch 1.0 imports as a leaky
    neuron; a platform without LI nodes cannot take the LI synapse before an IF layer."""
    with pytest.raises(PopfitValueError,
                       match=r"layer 0's fit uses RectifiedLinear\(\), which is NIR's IF node, "
                             r"and platform 'snntorch' runs only the neuron nodes 'LIF' as NIR "
                             r"defines them \('snntorch' is snnTorch 1\.0's NIR import"):
        to_nir(PopulationLayer(fit_relu, 2), platform="snntorch")
    no_li = get_platform("nir", name="nir-without-LI", readout="affine", readouts=("affine",))
    to_nir(PopulationLayer(fit_relu, 2), platform=no_li)  # one IF layer: no LI node
    with pytest.raises(PopfitValueError, match=r"layer 1's fit .* input synapse is written "
                                               r"as an LI node, which platform "
                                               r"'nir-without-LI'"):
        to_nir([PopulationLayer(fit_relu, 2), PopulationLayer(fit_relu, 2)], platform=no_li)
    assert isinstance(no_li, Platform)


def test_invalid_objects_and_transforms(fit_lif, fit_relu):
    with pytest.raises(PopfitTypeError, match=r"obj must be a popfit.ConvertedModel"):
        to_nir(fit_lif)
    with pytest.raises(PopfitTypeError, match=r"obj must be"):
        to_nir([])
    layers = [PopulationLayer(fit_lif, 3), PopulationLayer(fit_lif, 2)]
    with pytest.raises(PopfitValueError, match=r"transforms\[0\] is None \(identity\)"):
        to_nir(layers)
    with pytest.raises(PopfitValueError, match=r"transforms\[0\] must have shape \(2, 3\)"):
        to_nir(layers, transforms=[np.ones((3, 2))])
    with pytest.raises(PopfitValueError, match=r"list of 1 matrices"):
        to_nir(layers, transforms=[None, None])
    with pytest.raises(PopfitTypeError, match=r"transforms\[0\] must be an array of real "
                                              r"numbers \(got str\)"):
        to_nir(layers, transforms=["1.0"])
    with pytest.raises(PopfitTypeError, match=r"transforms must be a list of 1 matrices"):
        to_nir(layers, transforms=np.ones((2, 3)))


def test_transforms_take_what_connect_to_takes(fit_lif):
    """nengo.Dense (a scalar init is a diagonal, as in nengo), nengo.Sparse and scipy
    sparse transforms export as the equivalent array (they raised TypeError)."""
    layers = [PopulationLayer(fit_lif, 3), PopulationLayer(fit_lif, 3)]
    t = np.diag([0.5, 0.5, 0.5])
    want = to_nir(layers, transforms=[t]).nodes["affine_1"].weight
    indices = np.array([[0, 0], [1, 1], [2, 2]])
    for transform in [nengo.Dense((3, 3), init=0.5), scipy.sparse.csr_matrix(t),
                      nengo.transforms.Sparse((3, 3), indices=indices, init=[0.5] * 3)]:
        np.testing.assert_array_equal(
            to_nir(layers, transforms=[transform]).nodes["affine_1"].weight, want)


def _with_decoders(fit, decoders):
    return popfit.PopulationFit.from_parameters(
        target=fit.target, domain=fit.domain, neuron_type=fit.neuron_type, gain=fit.gain,
        bias=fit.bias, encoders=fit.encoders, decoders=decoders, max_rate=fit.max_rate,
        synapse=fit.synapse)


def test_non_finite_weights_are_refused(fit_lif):
    """A fit with a NaN decoder was written into the Affine weights (connect_to refuses
    it); so was a complex transform's real part (covered in tests/test_properties.py)."""
    nan = fit_lif.decoders.copy()
    nan[1] = np.nan
    # (from_parameters refuses NaN decoders; a fit made by hand may still hold them)
    bad = dataclasses.replace(fit_lif, decoders=nan)
    ok = PopulationLayer(fit_lif, 2)
    for obj, layer in [(bad.network(), 0), ([PopulationLayer(bad, 2), ok], 0),
                       ([ok, PopulationLayer(bad, 2)], 1)]:
        with pytest.raises(PopfitValueError,
                           match=rf"to_nir: layer {layer}'s fit decoders must be finite "
                                 r"\(got 1 of 4 non-finite, e\.g\. nan\).*export a fit "
                                 r"with finite"):
            to_nir(obj)
    # finite parameters whose product overflows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        big = _with_decoders(fit_lif, fit_lif.decoders * 1e15)
    with pytest.raises(PopfitValueError, match=r"the weight of Affine node 'affine_1' "
                                               r"overflows: \d+ of 64 entries are not finite"):
        to_nir([PopulationLayer(big, 2), ok], transforms=[np.diag([1e300, 1.0])])


@pytest.fixture(scope="module")
def quantized(mlp, digits):
    """``mlp`` converted with 2-bit weights (a coarse grid: float weights differ visibly)."""
    return popfit.convert(mlp, n_neurons=3, platform=popfit.get_platform("nir", weight_bits=2),
                          calibration_data=digits, search=QUICK, seed=0)


def test_weight_bits_model_exports_the_weights_it_runs(quantized, digits):
    """The exported weights are the quantized ones the network runs (they were the float
    weights): between populations, the nengo connection's transform times the post gain;
    for the whole graph, its rate-level output is the network's (`popfit.conversion.quantize.rate_forward`,
    which reads the connections)."""
    from popfit.conversion.quantize import rate_forward

    g = to_nir(quantized)
    net = quantized.network
    for k in range(1, len(net.layers)):
        pre, post = net.layers[k - 1].ensemble, net.layers[k].ensemble
        conn, = [c for c in net.all_connections
                 if isinstance(c.pre_obj, nengo.ensemble.Neurons) and c.pre_obj.ensemble is pre
                 and isinstance(c.post_obj, nengo.ensemble.Neurons)
                 and c.post_obj.ensemble is post]
        t = conn.transform
        w = t.init.toarray() if isinstance(t, nengo.transforms.Sparse) else np.asarray(t.init)
        np.testing.assert_allclose(g.nodes[f"affine_{k}"].weight, post.gain[:, None] * w,
                                   rtol=1e-12, atol=0)
    x = digits[:50]
    expected = rate_forward(quantized, x)
    np.testing.assert_allclose(graph_rates(g, x), expected, rtol=1e-9,
                               atol=1e-9 * np.abs(expected).max())
    # the adapted graphs carry the same weights
    np.testing.assert_allclose(graph_rates(to_nir(quantized, platform="snntorch"), x,
                                           SNNTORCH.nir_dt), expected, rtol=1e-9,
                               atol=1e-9 * np.abs(expected).max())
