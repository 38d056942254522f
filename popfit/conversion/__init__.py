"""Whole-model conversion: trained scikit-learn MLPs and Keras models to spiking Nengo networks.

`convert` (exported at the top level as `popfit.convert`) reads the weights of
a trained model, fits one population of positive-only neurons per distinct
(activation, domain), and wires the layers as `popfit.PopulationLayer`
networks connected neuron to neuron. The result,
a `ConvertedModel`, predicts by running `nengo.Simulator`.

Supported sources
-----------------
- scikit-learn `MLPClassifier` and `MLPRegressor` (`popfit.conversion.sklearn`).
- Keras 3 Sequential or functional chains of ``Dense`` and ``Activation``
  layers (`popfit.conversion.keras`; needs ``pip install popfit[keras]``).
"""

from .model import ConvertedModel, ModelSpec, DenseSpec, convert

__all__ = ["ConvertedModel", "DenseSpec", "ModelSpec", "convert"]

