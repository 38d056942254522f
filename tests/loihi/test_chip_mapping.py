"""popfit.loihi.chip_mapping predicts nengo-loihi's own build: its blocks, what each
uses of a core, and whether it refuses the network; set_block_shapes makes it build.

Runs only in the Loihi environment (numpy < 2, nengo-loihi 1.1.0). The
reference is nengo-loihi itself: its ``Simulator`` (build or BuildError) and
the utilization of the blocks it splits.
"""

import warnings

import numpy as np
import pytest

nengo_loihi = pytest.importorskip("nengo_loihi")

import nengo  # noqa: E402

import popfit  # noqa: E402
from popfit.conversion.batch import BatchPlan  # noqa: E402
from popfit.loihi import chip_mapping, set_block_shapes  # noqa: E402
from popfit.loihi_blocks import Blocks  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # nengo-loihi version notes


def usage(blocks):
    """(compartments, input axons, output axons, synapse bits) of nengo-loihi blocks, sorted."""
    return sorted(tuple(u[0] for u in b.utilization().values()) for b in blocks)


def popfit_blocks(network):
    model = Blocks(network)
    blocks = model.evaluate()
    return sorted((b["compartments"], b["input axons"], b["output axons"], b["synapse bits"])
                  for ens in model.ensembles for b in blocks[ens])


def build(network):
    """nengo-loihi's verdict: (True, `usage` of its blocks) or (False, its BuildError)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sim = nengo_loihi.Simulator(network, target="sim", progress_bar=False)
    except nengo.exceptions.BuildError as err:
        return False, str(err)
    with sim:
        return True, usage(sim.model.blocks)


def test_refused_network_is_predicted_and_set_block_shapes_makes_it_build():
    """600 neurons reaching every block of an ensemble split (by its block shape)
    into 8: each needs 8 output axons, 4,800 in all, which nengo-loihi refuses."""
    rng = np.random.RandomState(0)
    with nengo.Network(seed=0) as net:
        nengo_loihi.add_params(net)
        stim = nengo.Node(np.zeros(2))
        a = nengo.Ensemble(600, 1, label="wide")
        b = nengo.Ensemble(64, 1, label="next")
        net.config[b].block_shape = nengo_loihi.BlockShape((8,), (64,))
        nengo.Connection(stim, a.neurons, transform=rng.uniform(-1, 1, (600, 2)))
        nengo.Connection(a.neurons, b.neurons, transform=rng.uniform(-1e-3, 1e-3, (64, 600)))
        nengo.Probe(b.neurons)
    m = chip_mapping(net)
    builds, error = build(net)
    assert m["builds"] is builds is False
    assert "Output axons (4800) exceeded max (4096)" in error
    (problem,) = m["problems"]
    assert problem.startswith("wide: 1 of its 1 block(s) exceed a core's output axons")
    assert "needs 4,800 (max 4,096, 704 over)" in problem
    assert "'next' into 8 blocks" in problem and "set_block_shapes" in problem
    m = set_block_shapes(net)  # keeps the block shape given to "next"
    assert m["builds"] is True and m["problems"] == []
    assert [r["blocks"] for r in m["ensembles"]] == [2, 8]
    assert net.config[a].block_shape.shape == (512,)  # 600 / (4,800 / 4,096)
    builds, blocks = build(net)
    assert builds is True and blocks == popfit_blocks(net) and len(blocks) == m["blocks"]


def test_popfit_layers_split_exactly_as_nengo_loihi_splits_them():
    """Dense host input (rows of zeros stored once in a split block) and a Sparse
    chip-to-chip connection, both split by synapse memory."""
    fit = popfit.fit_activation("tanh", 4, neuron_type="LIF", seed=0,
                                search=popfit.SearchOptions.quick())
    rng = np.random.RandomState(0)
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(np.zeros(150))
        l1 = popfit.PopulationLayer(fit, 150, platform="loihi", label="l1")
        l2 = popfit.PopulationLayer(fit, 100, platform="loihi", label="l2")
        nengo.Connection(stim, l1.input, synapse=None)
        w = rng.uniform(-1, 1, (100, 150)) * (rng.uniform(size=(100, 150)) < 0.5)
        import scipy.sparse

        l1.connect_to(l2, transform=scipy.sparse.csr_matrix(w))
        nengo.Probe(l2.ensemble.neurons)
    m = chip_mapping(net)
    assert [r["blocks"] for r in m["ensembles"]] == [2, 2] and m["builds"] is True
    assert build(net) == (True, popfit_blocks(net))


def test_batched_prediction_gets_block_shapes():
    """A converted MLP whose batched network nengo-loihi would refuse (the second
    layer split by synapse memory into 6 blocks, 1,024 x 6 output axons per
    first-layer block): for nengo-loihi's simulator, the batched network gets block
    shapes under which it builds (chip_mapping's verdicts are checked against
    nengo-loihi above); for nengo's own simulator it is left alone."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier((256, 160), activation="tanh", max_iter=20, random_state=0)
        mlp.fit(X[:200], y[:200])
    model = popfit.convert(mlp, platform="loihi", calibration_data=X[:200], seed=0,
                           neuron_type="LIF", refit=False, search=popfit.SearchOptions.quick())
    assert chip_mapping(model.network)["builds"] is True
    emulator = model.platform.make_simulator()
    for simulator, builds in ((nengo.Simulator, False), (emulator, True)):
        plan = BatchPlan(model, 20, 0.001, 0, simulator)
        net, _ = plan.build(plan.input_drive(X[:1]), 1)
        m = chip_mapping(net)
        assert m["builds"] is builds
        assert [r["blocks"] for r in m["ensembles"]] == [2 if builds else 1, 6]
        assert builds or "exceed a core's output axons" in m["problems"][0]
