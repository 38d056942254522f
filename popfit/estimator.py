"""`PopulationRegressor`: fit a population to samples, the scikit-learn way.

The regressor turns samples ``(x, y)`` of a scalar function into a curve
(linear interpolation of the sorted samples, duplicates averaged) on the
domain ``(min x, max x)`` and calls `popfit.fit_activation` on it. Model
selection (``GridSearchCV`` over ``n_neurons``), pipelines and cross-validation
then work as for any scikit-learn regressor; `PopulationRegressor.to_fit`
hands back the `popfit.PopulationFit` for saving and Nengo export.
"""

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import SEED_MAX, public
from .exceptions import PopfitError, PopfitTypeError, PopfitValueError
from .fit import fit_activation
from .targets import tabulated_target

__all__ = ["PopulationRegressor"]


def _validated(estimator, *args, **kwargs):
    """scikit-learn's `validate_data`, its errors (NaN, shapes, too few samples...)
    raised as `PopfitValueError` / `PopfitTypeError` (still ValueError /
    TypeError, with scikit-learn's message, which its compatibility checks match)."""
    try:
        return validate_data(estimator, *args, **kwargs)
    except PopfitError:
        raise
    except ValueError as err:
        raise PopfitValueError(str(err)) from err
    except TypeError as err:
        raise PopfitTypeError(str(err)) from err


def _check_no_text(value, name, what):
    """Refuse text in ``X`` or ``y``: scikit-learn converts numeric text in an
    object ``y`` silently, leaves a string ``y`` for the fit to fail on, and
    reports text in ``X`` without naming ``X``."""
    if value is None:
        return  # scikit-learn says that fit requires y
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        return  # ragged: scikit-learn's message
    if arr.dtype.kind in "USa":
        text = arr.ravel()[:1].tolist()
    elif arr.dtype.kind == "O":
        text = [v for v in arr.ravel() if isinstance(v, (str, bytes))][:1]
    else:
        return
    if text:
        raise PopfitValueError(
            f"{name} must hold real numbers, {what} (got an array of dtype {arr.dtype} "
            f"holding text, e.g. {text[0]!r}); convert it with np.asarray({name}, "
            "dtype=float)" + (", or fit class labels with a classifier" if name == "y" else ""))


def _interpolant(x, y):
    """Sorted unique ``x`` and the mean ``y`` at each, as arrays."""
    xu, inverse = np.unique(x, return_inverse=True)
    inverse = inverse.reshape(-1)
    yu = np.bincount(inverse, weights=y) / np.bincount(inverse)
    return xu, yu


class PopulationRegressor(RegressorMixin, BaseEstimator):
    """A population of positive-only neurons fitted to samples of a 1-D function.

    Parameters
    ----------
    n_neurons : int
        Number of neurons (>= 1).
    neuron_type : str or nengo.neurons.NeuronType
        As in `popfit.fit_activation` (``"LIF"``, ``"relu"``, ...).
    max_rate : float
        No neuron fires above this rate (Hz) on the domain.
    synapse : float or None
        Deployment synapse time constant (s) whose spike noise the fit
        accounts for; ``None`` fits rates only.
    random_state : int, numpy.random.RandomState or None
        Source of the integer ``seed`` passed to `popfit.fit_activation`.

    Attributes
    ----------
    fit_ : PopulationFit
        The fitted population.
    domain_ : (float, float)
        ``(min x, max x)`` of the training samples.
    n_features_in_ : int
        Always 1.
    seed_ : int
        Seed the fit used.

    Notes
    -----
    ``X`` must have exactly one feature (the unit's input); at least two
    distinct values of it are needed to define the domain. The training
    samples are linearly interpolated into a target curve, so noisy samples
    are fitted as a jagged curve, smoothed only by the population's few
    neurons (which is what makes ``n_neurons`` a regularization parameter).
    Predictions outside ``domain_`` extrapolate the neurons' rate curves.

    Examples
    --------
    >>> import numpy as np
    >>> from popfit import PopulationRegressor
    >>> x = np.linspace(-3, 3, 200)[:, None]
    >>> reg = PopulationRegressor(n_neurons=4, random_state=0).fit(x, np.tanh(x[:, 0]))
    >>> reg.score(x, np.tanh(x[:, 0])) > 0.99
    True
    """

    def __init__(self, n_neurons=4, *, neuron_type="LIF", max_rate=400.0, synapse=0.005,
                 random_state=None):
        self.n_neurons = n_neurons
        self.neuron_type = neuron_type
        self.max_rate = max_rate
        self.synapse = synapse
        self.random_state = random_state

    @public
    def fit(self, X, y):
        """Fit the population to samples.

        Parameters
        ----------
        X : array-like, shape (n_samples, 1)
            Inputs (one feature), at least two distinct values.
        y : array-like, shape (n_samples,)
            Target values at ``X``: finite real numbers (text is refused, even
            numeric text such as ``"1.5"``, as in ``X``).

        Returns
        -------
        self : PopulationRegressor
        """
        _check_no_text(X, "X", "the inputs")
        _check_no_text(y, "y", "the target values at X")
        X, y = _validated(self, X, y, y_numeric=True, ensure_min_samples=2, dtype=np.float64)
        if X.shape[1] != 1:
            raise PopfitValueError(
                f"X must have exactly 1 feature (the unit's input), got "
                f"{X.shape[1]} features (X.shape={X.shape}); a population approximates a "
                "function of one variable: fit one regressor per input"
            )
        x = X[:, 0]
        xu, yu = _interpolant(x, np.asarray(y, dtype=float))
        if len(xu) < 2:
            raise PopfitValueError(
                f"X must hold at least 2 distinct values to define the domain "
                f"(got {len(x)} samples, all at x={float(xu[0])!r})"
            )
        try:
            rng = check_random_state(self.random_state)
        except ValueError:
            raise PopfitValueError(
                f"random_state must be None, an integer in [0, {SEED_MAX}] or a "
                f"numpy.random.RandomState (got {self.random_state!r} of type "
                f"{type(self.random_state).__name__})") from None
        seed = int(rng.randint(np.iinfo(np.int32).max))
        target = tabulated_target(f"samples (n={len(x)})", xu, yu)
        self.fit_ = fit_activation(
            target, self.n_neurons, neuron_type=self.neuron_type,
            domain=(float(xu[0]), float(xu[-1])), max_rate=self.max_rate,
            synapse=self.synapse, seed=seed,
        )
        self.domain_ = self.fit_.domain
        self.seed_ = seed
        return self

    @public
    def predict(self, X):
        """Rate-level output of the fitted population.

        Parameters
        ----------
        X : array-like, shape (n_samples, 1)

        Returns
        -------
        ndarray, shape (n_samples,)
        """
        check_is_fitted(self)
        _check_no_text(X, "X", "the inputs")
        X = _validated(self, X, reset=False, dtype=np.float64)
        return self.fit_.predict(X[:, 0])

    @public
    def score(self, X, y, sample_weight=None):
        """R² of `predict` on ``X`` against ``y`` (scikit-learn's `RegressorMixin.score`).

        Text in ``X`` or ``y``, and scikit-learn's data errors (NaN, shapes), are
        raised as popfit errors; an unfitted regressor raises scikit-learn's
        `NotFittedError`.
        """
        check_is_fitted(self)
        _check_no_text(y, "y", "the target values at X")
        try:
            return super().score(X, y, sample_weight=sample_weight)
        except (PopfitError, NotFittedError):
            raise
        except ValueError as err:
            raise PopfitValueError(str(err)) from err

    def to_fit(self):
        """The fitted `popfit.PopulationFit` (for ``save``, ``network()``, ...)."""
        check_is_fitted(self)
        return self.fit_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # a handful of neurons fitted to one input is no general-purpose regressor
        tags.regressor_tags.poor_score = True
        return tags
