"""popfit: fitted positive-only spiking populations for signed activations.

Replace one signed unit (tanh, sigmoid, linear, any curve) with a small group
of ordinary nengo neurons whose gains, biases, encoder signs and decoders are
optimized, then export it as a Nengo network.
"""

from .exceptions import ConversionError, FitFileError, PopfitError, PopfitTypeError, PopfitValueError
from .fit import fit_activation
from .io import load_fit
from .result import PopulationFit
from .targets import TARGETS, Target

__version__ = "0.1.0"

__all__ = [
    "ConversionError", "FitFileError", "PopfitError", "PopfitTypeError", "PopfitValueError",
    "PopulationFit", "TARGETS", "Target", "fit_activation", "load_fit",
]
