"""Whole-model conversion: trained scikit-learn MLPs and Keras models to spiking Nengo networks.

`convert` (exported at the top level as `popfit.convert`) reads the weights of
a trained model, fits one population of positive-only neurons per distinct
(activation, domain), and wires the layers as `popfit.PopulationLayer`
networks connected neuron to neuron. The result, a `ConvertedModel`,
predicts by running `nengo.Simulator` through `present`.

Modules
-------
- `spec`: the source-independent description (`ModelSpec`, `LayerSpec`:
  layers of units, their weights and skip connections) and the activation
  names of each source library; `operators`: linear layers (convolution,
  pooling, padding...) as sparse matrices.
- `readers`: the registry of model readers (`register_reader`, `read_model`).
- `sklearn`, `keras`: the readers of scikit-learn ``MLPClassifier`` /
  ``MLPRegressor`` (alone or in a Pipeline of affine steps) and of Keras 3
  Sequential or functional graphs (needs ``pip install popfit[keras]``);
  `keras_graph` walks the graph as linear expressions of populations,
  `keras_layers` holds one converter per Keras layer kind,
  `keras_activations` the activation functions.
- `convert`: calibrate, fit and build (`convert`, `build_network`).
- `model`: `ConvertedModel` and `present` (run a network on samples).
"""

from . import keras, sklearn  # noqa: F401  (import registers their readers)
from .convert import build_network, convert
from .model import ConvertedModel, LayerInfo
from .present import present
from .readers import read_model, register_reader
from .spec import LayerSpec, ModelSpec

__all__ = ["ConvertedModel", "LayerSpec", "LayerInfo", "ModelSpec", "build_network", "convert",
           "present", "read_model", "register_reader"]
