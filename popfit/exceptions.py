"""Exceptions raised by popfit.

Every error that popfit raises derives from `PopfitError`, so callers can
catch them all; argument errors are also `ValueError` or `TypeError`.

Errors carry their context, as nengo's ``ValidationError(attr=, obj=)`` does,
instead of every check taking the caller's name: the public function the user
called (``fit_activation``, ``PopulationRegressor.fit``, ...) is recorded in
``err.where`` by `popfit._validation.public` and printed before the message,
so a check deep inside names the function the user actually called.
"""


class PopfitError(Exception):
    """Base class for all popfit errors.

    Attributes
    ----------
    where : str or None
        The public popfit function or method the user called, when the error
        was raised inside one (set by `popfit._validation.public`).
    """

    where = None

    def __str__(self):
        msg = super().__str__()
        return msg if self.where is None else f"{self.where}: {msg}"


class PopfitValueError(PopfitError, ValueError):
    """An argument has the right type but an invalid value."""


class PopfitTypeError(PopfitError, TypeError):
    """An argument has an unsupported type."""


class FitFileError(PopfitError, ValueError):
    """A saved fit file is corrupted, truncated, foreign or of an unknown version."""


class ConversionError(PopfitError, ValueError):
    """A model cannot be converted (unsupported layer or activation)."""
