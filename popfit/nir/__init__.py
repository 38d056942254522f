"""Export popfit networks to NIR, the Neuromorphic Intermediate Representation.

NIR (``pip install popfit[nir]``, nir 1.0.x) is the exchange format read by
neuromorphic simulators and chips (snnTorch, Norse, Rockpool, Lava, Spyx,
SpiNNaker2, Speck, Xylo). `to_nir` writes a popfit model as a chain of NIR
nodes that describe the same neurons in continuous time::

    Input -> Affine -> LIF -> Affine -> CubaLIF -> ... -> Affine -> LI -> Output

adapted to the NIR platform it is for (`popfit.platforms`: ``"nir"``,
``"snntorch"`` or one registered with ``export="nir"``). The ``nir`` package
is imported on first use, so ``import popfit`` never needs it. See `to_nir`
for the mapping and docs/nir.md for which consumers run the graphs.

A CNN's convolutions are written as ``Conv1d``/``Conv2d`` nodes (with
``Flatten`` before dense layers) and a model's skip connections as extra
links into the receiving population.

Modules: ``_stages`` reads popfit objects into populations and the weights
between them (skip links too); ``_conv`` recovers a convolution from a
neuron-to-neuron matrix; ``_graph`` writes the nodes and edges; ``_export``
checks the options and the platform (`to_nir`); ``_compare``
compares graphs (`graphs_equal`); ``_limits`` checks a graph against a chip's
resources (`check_chip_limits`).
"""

from ._compare import graphs_equal
from ._export import DEFAULT_CONNECTION_SYNAPSE, to_nir
from ._limits import CHIPS, check_chip_limits, describe_limits

__all__ = ["CHIPS", "DEFAULT_CONNECTION_SYNAPSE", "check_chip_limits", "describe_limits",
           "graphs_equal", "to_nir"]
