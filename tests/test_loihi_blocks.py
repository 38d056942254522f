"""popfit.loihi_blocks: nengo-loihi's block split, computed by hand here.

tests/loihi compares every block with nengo-loihi's own split and its
verdict with ``nengo_loihi.Simulator``.
"""

import nengo
import numpy as np

from popfit.loihi import chip_mapping
from popfit.loihi_blocks import MAX_IN_AXONS, Blocks, synapse_bits


def test_synapse_bits_are_nengo_loihis_words():
    """8-bit weights in groups of 64, each 8 n + 10 bits rounded up to 64-bit words."""
    np.testing.assert_array_equal(synapse_bits([0, 1, 54, 64, 65, 2400]),
                                  [0, 64, 448, 576, 640, 37 * 576 + 320])


def test_chip_mapping_predicts_output_axons_after_a_split_by_synapse_memory():
    """1,024 neurons -> 640 neurons, Dense: 1,024 input axons of 640 weights, 5,760
    bits each, are 6 cores of synapse memory, so nengo-loihi splits the second
    ensemble into 6 blocks and every first-layer neuron needs 6 output axons:
    6,144 > 4,096. tests/loihi checks such verdicts against nengo-loihi's build."""
    rng = np.random.RandomState(0)
    with nengo.Network() as net:
        a = nengo.Ensemble(1024, 1, label="wide")
        b = nengo.Ensemble(640, 1, label="next")
        nengo.Connection(a.neurons, b.neurons, transform=rng.uniform(-1, 1, (640, 1024)))
    m = chip_mapping(net)
    assert m["builds"] is False and [r["blocks"] for r in m["ensembles"]] == [1, 6]
    assert m["ensembles"][0]["largest"]["output axons"] == 6144
    assert m["ensembles"][1]["largest"]["input axons"] == 1024
    (problem,) = m["problems"]
    assert "wide: 1 of its 1 block(s) exceed a core's output axons" in problem
    assert "needs 6,144 (max 4,096, 2,048 over)" in problem and "'next' into 6 blocks" in problem
    assert [r["label"] for r in m["ensembles"]] == ["wide", "next"]


def test_plan_splits_until_blocks_fit_and_stops_where_splitting_cannot_help():
    rng = np.random.RandomState(0)
    with nengo.Network() as net:
        a = nengo.Ensemble(1024, 1, label="wide")
        b = nengo.Ensemble(640, 1, label="next")
        nengo.Connection(a.neurons, b.neurons, transform=rng.uniform(-1, 1, (640, 1024)))
    sizes, blocks = Blocks(net).plan()
    assert sizes == {a: 682}  # 6,144 / 4,096 = 1.5 times smaller: int(1,024 / 1.5)
    assert [blk["output axons"] for blk in blocks[a]] == [682 * 6, 342 * 6]
    # 2,100 host values on/off encoded into a Dense input: 4,200 input axons reach
    # every block however it is split, so the plan keeps nengo-loihi's split
    with nengo.Network() as net:
        stim = nengo.Node(np.zeros(2100))
        c = nengo.Ensemble(64, 1, label="fed")
        nengo.Connection(stim, c.neurons, transform=np.ones((64, 2100)))
    sizes, blocks = Blocks(net).plan()
    assert len(blocks[c]) <= 3 and all(blk["input axons"] == 4200 > MAX_IN_AXONS
                                       for blk in blocks[c])
    (problem,) = chip_mapping(net)["problems"]
    assert "fed:" in problem and "input axons" in problem and "4,200 (max 4,096, 104 over)" \
        in problem
