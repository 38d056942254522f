"""Exceptions raised by popfit.

Every error that popfit raises derives from `PopfitError`, so callers can
catch them all; argument errors are also `ValueError` or `TypeError`.
"""


class PopfitError(Exception):
    """Base class for all popfit errors."""


class PopfitValueError(PopfitError, ValueError):
    """An argument has the right type but an invalid value."""


class PopfitTypeError(PopfitError, TypeError):
    """An argument has an unsupported type."""


class FitFileError(PopfitError, ValueError):
    """A saved fit file is corrupted, truncated, foreign or of an unknown version."""


class ConversionError(PopfitError, ValueError):
    """A model cannot be converted (unsupported layer or activation)."""
