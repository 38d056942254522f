import pickle
import re

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.utils.estimator_checks import parametrize_with_checks

import popfit
from popfit.estimator import PopulationRegressor
from popfit.exceptions import PopfitValueError

# scikit-learn's checks feed X with 2 to 10 features to most of them; a
# population approximates a function of ONE input, so fit rejects those X
# with a ValueError. There is no estimator tag for "exactly one feature". The
# same properties are checked on one-feature data by the tests below.
_ONE_FEATURE = ("fit requires X with exactly 1 feature (the unit's input); the check "
                "fits X with several features. Checked on 1-feature data in this file")
_MULTI_FEATURE_CHECKS = [
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_estimators_dtypes", "check_dtype_object", "check_pipeline_consistency",
    "check_estimators_nan_inf", "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_regressors_train", "check_regressor_data_not_an_array",
    "check_regressors_no_decision_function", "check_supervised_y_2d", "check_regressors_int",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_fit2d_predict1d",
]
EXPECTED_FAILED_CHECKS = {name: _ONE_FEATURE for name in _MULTI_FEATURE_CHECKS}
EXPECTED_FAILED_CHECKS["check_positive_only_tag_during_fit"] = (
    "fits the 4-feature iris data (negative values are fine, the feature count is not)")


@parametrize_with_checks([PopulationRegressor(n_neurons=2)],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, 300)
    return x[:, None], np.tanh(x) + rng.normal(0, 0.05, x.size)


@pytest.fixture(scope="module")
def fitted(samples):
    X, y = samples
    return PopulationRegressor(3, random_state=0).fit(X, y)


def test_fit_matches_the_sampled_function(fitted, samples):
    X, y = samples
    assert fitted.n_features_in_ == 1
    assert fitted.domain_ == (X.min(), X.max())
    assert fitted.fit_.n_neurons == 3
    x = np.linspace(-2.9, 2.9, 500)
    y_pred = fitted.predict(x[:, None])
    assert y_pred.shape == (500,)
    # the fit approximates tanh (the noise averages out), not the noisy samples
    assert np.sqrt(np.mean((y_pred - np.tanh(x)) ** 2)) < 0.05
    assert fitted.score(X, y) > 0.98


@pytest.mark.slow
def test_one_feature_versions_of_the_sklearn_checks(fitted, samples):
    X, y = samples
    reg = clone(fitted)
    assert reg.fit(X, y) is reg  # fit returns self
    np.testing.assert_array_equal(reg.predict(X), fitted.predict(X))  # idempotent, seeded
    assert reg.get_params() == fitted.get_params()  # parameters not overwritten
    order = np.random.default_rng(1).permutation(len(y))
    reordered = clone(fitted).fit(X[order], y[order])
    np.testing.assert_array_equal(reordered.predict(X), fitted.predict(X))
    np.testing.assert_allclose(fitted.predict(X[:10]), fitted.predict(X)[:10])  # subsets
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    as_int = clone(fitted).fit(np.round(X * 10).astype(int), y)  # integer input
    assert as_int.domain_ == (-30.0, 30.0)
    with pytest.raises(ValueError, match="X has 2 features, but PopulationRegressor is "
                                         "expecting 1 features"):
        fitted.predict(np.hstack([X, X]))
    with pytest.raises(ValueError, match="Expected 2D array"):
        fitted.predict(X[:, 0])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clone(fitted).fit(np.where(X > 2, np.nan, X), y)


def test_duplicates_are_averaged():
    X = np.array([[0.0], [0.0], [1.0], [1.0], [2.0]])
    y = np.array([1.0, 3.0, 0.0, 2.0, 5.0])
    reg = PopulationRegressor(2, neuron_type="relu", synapse=None, random_state=0).fit(X, y)
    target = reg.fit_.target
    np.testing.assert_allclose(target(np.array([0.0, 0.5, 1.0, 2.0])), [2.0, 1.5, 1.0, 5.0])


def test_fit_passes_parameters_and_a_seed():
    X = np.linspace(0, 2, 50)[:, None]
    reg = PopulationRegressor(2, neuron_type="relu", max_rate=200.0, synapse=0.01,
                              random_state=5).fit(X, np.sin(X[:, 0]))
    fit = reg.to_fit()
    assert type(fit.neuron_type).__name__ == "RectifiedLinear"
    assert (fit.max_rate, fit.synapse, fit.domain) == (200.0, 0.01, (0.0, 2.0))
    assert fit.seed == reg.seed_
    assert np.all(fit.max_rates <= 200.0 + 1e-6)


def test_errors():
    with pytest.raises(NotFittedError, match="This PopulationRegressor instance is not fitted"):
        PopulationRegressor().predict([[0.0]])
    with pytest.raises(NotFittedError):
        PopulationRegressor().to_fit()
    with pytest.raises(PopfitValueError, match=r"PopulationRegressor.fit: X must have exactly "
                                               r"1 feature .*got 2 features"):
        PopulationRegressor().fit(np.ones((5, 2)), np.ones(5))
    with pytest.raises(PopfitValueError, match=r"at least 2 distinct values .*x=1.0"):
        PopulationRegressor().fit(np.ones((5, 1)), np.arange(5.0))
    with pytest.raises(ValueError, match="1 sample"):
        PopulationRegressor().fit([[1.0]], [1.0])
    with pytest.raises(PopfitValueError, match="PopulationRegressor.fit: n_neurons must be an integer "
                                               r"in \[1, 32\] \(got 0\)"):
        PopulationRegressor(0).fit([[0.0], [1.0]], [0.0, 1.0])


@pytest.mark.slow
def test_grid_search_selects_n_neurons(samples):
    X, y = samples
    search = GridSearchCV(PopulationRegressor(random_state=0), {"n_neurons": [1, 2, 4]},
                          cv=KFold(3, shuffle=True, random_state=0))
    search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] < scores[1] < scores[2]  # one neuron cannot follow tanh
    assert search.best_params_ == {"n_neurons": 4}
    assert search.best_estimator_.to_fit().n_neurons == 4


def test_to_fit_round_trips(fitted, tmp_path):
    fit = fitted.to_fit()
    assert isinstance(fit, popfit.PopulationFit)
    path = tmp_path / "regressor.json"
    fit.save(path)
    loaded = popfit.load_fit(path)
    x = np.linspace(*fitted.domain_, 101)
    np.testing.assert_allclose(loaded.predict(x), fitted.predict(x[:, None]), rtol=1e-12)
    np.testing.assert_allclose(loaded.target(x), fit.target(x), atol=1e-6)
    assert loaded.nrmse == pytest.approx(fit.nrmse, rel=1e-6)


_X = np.linspace(-1.0, 1.0, 20)[:, None]


@pytest.mark.parametrize("X, y, error, match", [
    (_X, ["a"] * 20, PopfitValueError,
     r"y must hold real numbers, the target values at X \(got an array of dtype <U1 holding "
     r"text, e.g. 'a'\); convert it with np.asarray\(y, dtype=float\)"),
    (_X, [f"{v:.2f}" for v in _X[:, 0]], PopfitValueError,  # numeric text, as in X
     r"y must hold real numbers.*dtype <U5 holding text, e.g. '-1.00'"),
    (_X, np.array(["a"] * 20, dtype=object), PopfitValueError,
     r"y must hold real numbers.*dtype object holding text, e.g. 'a'"),
    (_X, np.full(20, np.nan), PopfitValueError, r"Input y contains NaN"),
    (_X, np.ones((20, 2)), PopfitValueError, r"y should be a 1d array, got an array of shape "
                                             r"\(20, 2\)"),
    (_X, np.ones(5), PopfitValueError, r"Found input variables with inconsistent numbers of "
                                       r"samples: \[20, 5\]"),
    ([["a"]] * 20, np.ones(20), PopfitValueError,
     r"X must hold real numbers, the inputs \(got an array of dtype <U1 holding text"),
    (np.full((20, 1), np.inf), np.ones(20), PopfitValueError, r"Input X contains infinity"),
    (np.empty((0, 1)), [], PopfitValueError, r"Found array with 0 sample\(s\)"),
    (_X + 1j, np.ones(20), PopfitValueError, r"Complex data not supported"),
])
def test_fit_data_errors_are_popfit_errors(X, y, error, match):
    """Text in y raised numpy's "could not convert string to float" (numeric text was
    silently converted); scikit-learn's own checks keep their messages, which its
    compatibility suite matches, as popfit errors naming the method."""
    with pytest.raises(error, match="^PopulationRegressor.fit: " + match):
        PopulationRegressor(2, random_state=0).fit(X, y)


@pytest.mark.parametrize("random_state", [1.5, "a", -1, 2**32])
def test_random_state_errors_are_popfit_errors(random_state):
    with pytest.raises(PopfitValueError, match=rf"^PopulationRegressor.fit: random_state must be "
                                               rf"None, an integer in \[0, 4294967295\] or a "
                                               rf"numpy.random.RandomState \(got "
                                               rf"{re.escape(repr(random_state))} of type"):
        PopulationRegressor(2, random_state=random_state).fit(_X, _X[:, 0])


@pytest.mark.parametrize("X, match", [
    ([["a"]], r"X must hold real numbers, the inputs .*e.g. 'a'"),
    (np.ones((3, 2)), r"X has 2 features, but PopulationRegressor is expecting 1 features"),
    ([[np.nan]], r"Input X contains NaN"),
    (np.ones(3), r"Expected 2D array, got 1D array instead"),
])
def test_predict_data_errors_are_popfit_errors(fitted, X, match):
    with pytest.raises(PopfitValueError, match="^PopulationRegressor.predict: " + match):
        fitted.predict(X)
    with pytest.raises(NotFittedError):  # scikit-learn's own error, before the data
        PopulationRegressor().predict(X)


@pytest.mark.parametrize("y, match", [
    (["a"] * 20, r"y must hold real numbers, the target values at X .*e.g. 'a'"),
    (np.full(20, np.nan), r"Input contains NaN"),
    (np.ones(5), r"Found input variables with inconsistent numbers of samples: \[5, 20\]"),
])
def test_score_data_errors_are_popfit_errors(fitted, y, match):
    with pytest.raises(PopfitValueError, match="^PopulationRegressor.score: " + match):
        fitted.score(_X, y)
    with pytest.raises(NotFittedError):  # scikit-learn's own error, before the data
        PopulationRegressor().score(_X, y)
