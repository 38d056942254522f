"""popfit: fitted positive-only spiking populations for signed activations.

Replace one signed unit (tanh, sigmoid, linear, any curve) with a small group
of ordinary nengo neurons whose gains, biases, encoder signs and decoders are
optimized, then export it as a Nengo network.
"""

import importlib

from .exceptions import (
    ConversionError,
    FitFileError,
    PopfitError,
    PopfitTypeError,
    PopfitValueError,
)
from .fit import SearchDiagnostics, SearchOptions, fit_activation
from .io import load_fit
from .result import PopulationFit
from .targets import TARGETS, Target

__version__ = "0.1.0"

# Imported on first use, so `import popfit` stays light (matplotlib, Keras and
# the simulator-heavy modules load only when needed).
_LAZY = {
    "PopulationNeuron": "network",
    "PopulationLayer": "network",
    "evaluate_spiking": "spiking",
    "SpikingReport": "spiking",
    "convert": "conversion",
    "ConvertedModel": "conversion",
    "PopulationRegressor": "estimator",
    "plot_fit": "plotting",
    "plot_spiking": "plotting",
    "plot_accuracy": "plotting",
    "nengo_default_nrmse": "baseline",
    "to_nir": "nir",
    "SpikeNoiseL2": "solvers",
    "Platform": "platforms",
    "get_platform": "platforms",
    "finetune": "training",
}

# Documented submodules, reachable as attributes (``popfit.nir.to_nir``)
# without importing them first; each is imported on first access.
_SUBMODULES = (
    "baseline", "conversion", "estimator", "exceptions", "fit", "io", "loihi", "metrics",
    "network", "neurons", "nir", "platforms", "plotting", "result", "solvers", "spiking",
    "targets", "wholestep",
)

__all__ = [
    "ConversionError", "FitFileError", "PopfitError", "PopfitTypeError", "PopfitValueError",
    "PopulationFit", "SearchDiagnostics", "SearchOptions", "TARGETS", "Target",
    "fit_activation", "load_fit", *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'popfit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
