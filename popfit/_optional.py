"""Optional dependencies, imported only when a feature needs them.

`import_optional` is the one place popfit imports an optional package; its
ImportError names what needed the package and the pip extra that provides it.
"""

import importlib

from ._validation import current_caller

#: The pip command that provides each optional package.
INSTALL = {
    "nengo_loihi": "pip install 'popfit[loihi]' (nengo-loihi 1.1 needs numpy < 2: use a "
                   "separate environment, see docs/loihi.md)",
    "nir": "pip install 'popfit[nir]'",
    "keras": "pip install 'popfit[keras]'",
    "jax": "pip install 'popfit[train]'",
    "optax": "pip install 'popfit[train]'",
    "matplotlib": "pip install matplotlib",
    "joblib": "pip install joblib",
}


def import_optional(name, purpose=None):
    """Import and return the optional module ``name`` (a dotted name is fine).

    Parameters
    ----------
    name : str
        Module to import, e.g. ``"nengo_loihi"`` or ``"matplotlib.pyplot"``.
    purpose : str, optional
        What needs it, for the message; default: the public popfit call under way.
    """
    try:
        return importlib.import_module(name)
    except ImportError as err:
        top = name.split(".")[0]
        how = INSTALL.get(top, f"pip install {top}")
        raise ImportError(
            f"{purpose or current_caller()} needs {top}, which is not installed ({err}); "
            f"install it with: {how}") from None
