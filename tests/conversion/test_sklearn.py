"""popfit.convert (popfit.conversion) on scikit-learn Pipelines ending in an MLP."""

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    MaxAbsScaler,
    MinMaxScaler,
    PolynomialFeatures,
    StandardScaler,
)

import popfit
from popfit.conversion import read_model
from popfit.exceptions import ConversionError, PopfitTypeError, PopfitValueError

QUICK = popfit.SearchOptions.quick()
# short training runs: convergence does not matter here
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]  # raw pixel values 0..16: the pipeline scales them


def _mlp(**kw):
    return MLPClassifier(hidden_layer_sizes=(16,), activation="tanh", max_iter=300,
                         random_state=0, **kw)


def _rate_reference(pipeline, fits, X):
    """The pipeline's own transform (scikit-learn), then the MLP with its hidden
    tanh replaced by the fit's decoded curve, in numpy."""
    mlp = pipeline[-1]
    a = pipeline[:-1].transform(X)
    for w, b, fit in zip(mlp.coefs_[:-1], mlp.intercepts_[:-1], fits):
        a = fit.predict(a @ w + b)
    return softmax(a @ mlp.coefs_[-1] + mlp.intercepts_[-1], axis=1)


@pytest.mark.parametrize("steps", [
    [StandardScaler()],
    [MinMaxScaler()],
    [MaxAbsScaler(), PCA(20, whiten=True, random_state=0)],
    [StandardScaler(), PCA(30, random_state=0)],
    [StandardScaler(with_mean=False), "passthrough"],
], ids=["standard", "minmax", "maxabs-pca-whiten", "standard-pca", "passthrough"])
def test_pipeline_of_affine_steps_folds_into_the_first_layer(digits, steps):
    X, y = digits
    pipe = make_pipeline(*steps, _mlp()).fit(X, y)
    spec = read_model(pipe)
    assert spec.source == "Pipeline" and len(spec.layers) == 2
    # the folded spec is the pipeline itself (float64: to rounding)
    mlp = pipe[-1]
    pre = pipe[:-1].transform(X) @ mlp.coefs_[0] + mlp.intercepts_[0]
    np.testing.assert_allclose(spec.forward(X)[0][0], pre, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(spec.forward(X)[1], pipe.predict_proba(X), rtol=1e-9,
                               atol=1e-12)
    conv = popfit.convert(pipe, calibration_data=X, n_neurons=2, search=QUICK, seed=0,
                          refit=False)
    assert conv.n_features_in_ == pipe.n_features_in_ == 64
    np.testing.assert_array_equal(conv.classes_, pipe[-1].classes_)
    Xr = np.random.default_rng(0).uniform(0, 16, size=(40, 64))
    np.testing.assert_allclose(conv.rate_output(Xr), _rate_reference(pipe, conv.fits, Xr),
                               rtol=1e-6, atol=1e-12)


def test_pipeline_predicts_like_the_pipeline(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), _mlp()).fit(X, y)
    conv = popfit.convert(pipe, calibration_data=X, n_neurons=4, search=QUICK, seed=0)
    Xs = X[::20]  # 30 digits
    labels = conv.predict(Xs, presentation_time=0.1, progress_bar=False)
    assert np.mean(labels == pipe.predict(Xs)) >= 0.9
    reg = make_pipeline(MinMaxScaler(), MLPRegressor(hidden_layer_sizes=(8,), activation="relu",
                                                     max_iter=200, random_state=0))
    reg.fit(X, y / 9.0)
    spec = read_model(reg)
    assert spec.ravel_output
    np.testing.assert_allclose(spec.forward(X)[1][:, 0], reg.predict(X), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("step, message", [
    (("poly", PolynomialFeatures()),
     (r"Pipeline step 'poly' \(PolynomialFeatures\) is not affine at inference as far as "
      r"popfit knows: it folds only StandardScaler, MinMaxScaler, MaxAbsScaler, PCA steps.*"
      r"convert the MLP alone \(pipeline\[-1\]\)")),
    (("clip", MinMaxScaler(clip=True)),
     r"Pipeline step 'clip' \(MinMaxScaler\) is not affine: clip=True"),
])
def test_non_affine_steps_refused_by_name(digits, step, message):
    X, y = digits
    pipe = Pipeline([step, ("mlp", _mlp(early_stopping=False))])
    pipe.set_params(mlp__max_iter=5).fit(X[:100, :8], y[:100])
    with pytest.raises(ConversionError, match=message):
        popfit.convert(pipe)


def test_pipeline_misuse(digits):
    X, y = digits
    with pytest.raises(PopfitTypeError, match=r"a Pipeline must end in an MLPClassifier or "
                                              r"MLPRegressor.*'pca' is a PCA"):
        popfit.convert(make_pipeline(StandardScaler(), PCA(3)).fit(X))
    unfitted = make_pipeline(StandardScaler(), _mlp())
    with pytest.raises(PopfitValueError, match=r"MLPClassifier instance is not fitted yet"):
        popfit.convert(unfitted)
    pipe = make_pipeline(StandardScaler(), _mlp()).fit(X, y)
    pipe.steps[0] = ("standardscaler", StandardScaler())  # replaced by an unfitted one
    with pytest.raises(PopfitValueError, match=r"Pipeline step 'standardscaler' "
                                               r"\(StandardScaler\) is not fitted yet"):
        popfit.convert(pipe)
