"""Whole-model conversion: trained scikit-learn MLPs and Keras models to spiking Nengo networks.

`convert` reads the weights of a trained model, fits one population of
positive-only neurons per distinct (activation, domain), and wires the layers
as `popfit.PopulationLayer` networks connected neuron to neuron. The result,
a `ConvertedModel`, predicts by running `nengo.Simulator`.

Supported sources
-----------------
- scikit-learn `MLPClassifier` and `MLPRegressor` (`popfit.convert.sklearn`).
- Keras 3 Sequential or functional chains of ``Dense`` and ``Activation``
  layers (`popfit.convert.keras`; needs ``pip install popfit[keras]``).
"""

from .model import ConvertedModel, ModelSpec, DenseSpec, convert

__all__ = ["ConvertedModel", "DenseSpec", "ModelSpec", "convert"]


# ``popfit.convert`` names both this package and the function. Once the package
# is imported, Python binds ``popfit.convert`` to the package module, which would
# hide the function that ``popfit/__init__.py`` exports lazily under that name.
# Making the module callable keeps ``popfit.convert(model, ...)`` working
# whichever of the two the attribute holds.
import sys as _sys
import types as _types


class _CallableModule(_types.ModuleType):
    def __call__(self, model, **kwargs):
        return convert(model, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
