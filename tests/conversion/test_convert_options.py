"""Conversion options: weight re-solve (refit), per-layer n_neurons, batched prediction, simulator=."""

import warnings

import nengo
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

import popfit
from popfit.exceptions import PopfitTypeError, PopfitValueError

# these tests need *a* good fit, not the best: the quick search is ~2.4x cheaper
QUICK = popfit.SearchOptions.quick()

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def train(hidden, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(400, 2))
    y = 0.8 * np.sin(3 * X[:, 0]) * np.cos(2 * X[:, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPRegressor(hidden_layer_sizes=hidden, activation="tanh", max_iter=600, learning_rate_init=0.02,
                           random_state=seed).fit(X, y)
    return mlp, X


@pytest.fixture(scope="module")
def regressor():
    return train((8,))


@pytest.fixture(scope="module")
def models(regressor):
    mlp, X = regressor
    return {refit: popfit.convert(mlp, n_neurons=3, calibration_data=X,
                                  search=QUICK, seed=1, refit=refit)
            for refit in (False, True)}


def rate_level(model, X):
    """The converted model at rate level, computed independently: nengo's own LIFRate
    curves of every neuron, and the network's weights read from its connections."""
    mlp_layer = model.spec.layers[0]
    z = X @ mlp_layer.weights + mlp_layer.bias
    fit = model.fits[0]
    lif = nengo.LIFRate(tau_rc=fit.neuron_type.tau_rc, tau_ref=fit.neuron_type.tau_ref)
    n = fit.n_neurons
    j = np.repeat(z, n, axis=1) * np.tile(fit.encoders, z.shape[1])
    a = lif.rates(j, np.tile(fit.gain, z.shape[1]), np.tile(fit.bias, z.shape[1]))
    net = model.network
    conn = [c for c in net.all_connections
            if getattr(c.pre_obj, "ensemble", None) is net.layers[0].ensemble
            and c.post_obj is net.output][0]
    w = conn.transform.init
    w = w.toarray() if hasattr(w, "toarray") else np.asarray(w)
    bias = [node.output for node in net.all_nodes if node.label == "output bias"]
    return a @ w.T + (bias[0] if bias else 0.0)


def test_refit_lowers_held_out_rate_error(regressor, models):
    mlp, _ = regressor
    X_new = np.random.default_rng(7).uniform(-1, 1, size=(500, 2))  # not in the calibration
    y_ann = mlp.predict(X_new)
    err = {r: np.sqrt(np.mean((rate_level(m, X_new)[:, 0] - y_ann) ** 2))
           for r, m in models.items()}
    assert err[True] < 0.8 * err[False], err
    # the model's own rate_output agrees with the independent computation
    for m in models.values():
        np.testing.assert_allclose(m.rate_output(X_new), rate_level(m, X_new), atol=1e-9)
    rep = models[True].refit_report
    assert rep.kept == (True,)
    assert rep.output_rms_after < rep.output_rms_before
    assert rep.n_fit + rep.n_holdout == 400 and rep.n_holdout == 80
    assert models[False].refit_report is None and models[False].weights is None
    assert "[[refit]]" in models[True].report() and "[[refit]]" not in models[False].report()


def test_refit_network_spikes_match_rates(models):
    X = np.random.default_rng(3).uniform(-0.8, 0.8, size=(12, 2))
    m = models[True]
    spk = m.predict(X, 0.2, progress_bar=False)
    seq = m.predict(X, 0.2, progress_bar=False, sequential=True)
    rate = m.rate_output(X)[:, 0]
    scale = np.ptp(rate)
    assert np.sqrt(np.mean((spk - rate) ** 2)) < 0.1 * scale
    assert np.sqrt(np.mean((seq - rate) ** 2)) < 0.1 * scale


def test_batched_identical_for_any_batch_size_and_jobs(models):
    m = models[True]
    X = np.random.default_rng(4).uniform(-1, 1, size=(7, 2))
    ref = m.decoded_output(X, 0.05, progress_bar=False, batch_size=1)
    for kwargs in (dict(), dict(batch_size=3), dict(batch_size=7),
                   dict(simulator=nengo.Simulator), dict(n_jobs=2, batch_size=4)):
        np.testing.assert_array_equal(m.decoded_output(X, 0.05, progress_bar=False, **kwargs),
                                      ref, err_msg=str(kwargs))
    # a sample's prediction does not depend on its neighbours
    np.testing.assert_array_equal(m.decoded_output(X[2:3], 0.05, progress_bar=False), ref[2:3])


def test_simulator_explicit_and_checked(models):
    m = models[False]
    X = np.random.default_rng(5).uniform(-1, 1, size=(3, 2))
    calls = []

    def simulator(net, **kwargs):
        calls.append(kwargs)
        return nengo.Simulator(net, **kwargs)

    a = m.predict(X, 0.05, progress_bar=False, simulator=simulator)
    b = m.predict(X, 0.05, progress_bar=False, simulator=nengo.Simulator,
                  sequential=True)
    assert calls and calls[0]["dt"] == 0.001 and calls[0]["seed"] == 1
    np.testing.assert_array_equal(a, m.predict(X, 0.05, progress_bar=False))
    np.testing.assert_array_equal(b, m.predict(X, 0.05, progress_bar=False, sequential=True))
    with pytest.raises(PopfitTypeError, match="simulator must be"):
        m.predict(X, 0.05, simulator="nengo")
    with pytest.raises(PopfitValueError, match="sequential=True"):
        m.predict(X, 0.05, sequential=True, batch_size=2)
    with pytest.raises(PopfitValueError, match="batch_size"):
        m.predict(X, 0.05, batch_size=0)


def test_per_layer_n_neurons_and_auto():
    mlp, X = train((6, 5), seed=2)
    m = popfit.convert(mlp, n_neurons=[2, 3], calibration_data=X, search=QUICK, seed=0)
    assert m.n_neurons == (2, 3)
    assert [f.n_neurons for f in m.fits] == [2, 3]
    assert m.total_neurons == 6 * 2 + 5 * 3 == m.summary()["total_neurons"]
    assert [layer.ensemble.n_neurons for layer in m.network.layers] == [12, 15]
    assert [w.shape for w in m.weights] == [(5, 12), (1, 15)]
    s = m.summary()
    assert s["expected_spikes_per_second"] == pytest.approx(
        sum(h["mean_rate_hz"] * h["total_neurons"] for h in s["hidden_layers"]))
    y = m.predict(X[:4], 0.1, progress_bar=False)
    assert y.shape == (4,) and np.all(np.isfinite(y))
    with pytest.raises(PopfitValueError, match="2 hidden layer"):
        popfit.convert(mlp, n_neurons=[2, 3, 4], calibration_data=X)
    with pytest.raises(PopfitValueError, match="calibration_data"):
        popfit.convert(mlp, refit=True)

    tol = 0.03
    auto = popfit.convert(mlp, n_neurons="auto", tolerance=tol, calibration_data=X,
                          search=QUICK, seed=0,
                          refit=False)
    chosen = [f.n_neurons for f in auto.fits]
    assert auto.n_neurons == tuple(chosen)
    assert all(f.spiking_nrmse <= tol for f in auto.fits)
    assert all(n > 1 for n in chosen)
    # the same fits with one neuron fewer (same calibration and seed) miss the tolerance
    fewer = popfit.convert(mlp, n_neurons=[n - 1 for n in chosen], calibration_data=X,
                           search=QUICK, seed=0, refit=False)
    assert all(f.spiking_nrmse > tol for f in fewer.fits)


def test_connect_to_weights():
    fit = popfit.fit_activation("tanh", 2, search=QUICK, seed=0)
    with nengo.Network():
        a = popfit.PopulationLayer(fit, 3)
        out = nengo.Node(size_in=2)
        w = np.arange(12.0).reshape(2, 6)
        conn = a.connect_to(out, weights=w, connection_synapse=None)
        np.testing.assert_array_equal(conn.transform.init, w)
        with pytest.raises(PopfitValueError, match="not both"):
            a.connect_to(out, transform=np.ones((2, 3)), weights=w)
        with pytest.raises(PopfitValueError, match=r"shape \(2, 6\)"):
            a.connect_to(out, weights=np.ones((2, 3)))


def test_refit_default_needs_enough_calibration(regressor):
    mlp, X = regressor
    few = popfit.convert(mlp, n_neurons=2, calibration_data=X[:15], search=QUICK, seed=0)
    assert few.refit_report is None and few.weights is None  # 12 + 3 samples: not enough
    with pytest.raises(PopfitValueError, match="at least 10 calibration samples"):
        popfit.convert(mlp, n_neurons=2, calibration_data=X[:15], search=QUICK, seed=0, refit=True)


def test_refit_is_kept_only_for_a_significant_held_out_gain():
    """significantly_lower: a mean paired gain beyond SIGNIFICANCE standard errors."""
    from popfit.conversion.refit import SIGNIFICANCE, significantly_lower

    rng = np.random.default_rng(0)
    old = rng.uniform(1.0, 2.0, 400)
    noise = rng.normal(0.0, 0.1, 400)
    se = noise.std(ddof=1) / np.sqrt(400)
    spread = noise - noise.mean()  # per-sample gains old - new = gain + spread

    def new(gain):
        return old - gain - spread

    # mean gains of 3 and 2.1 standard errors are kept, 1.9, 1, 0 and -3 are not
    assert SIGNIFICANCE == 2.0
    assert significantly_lower(new(3 * se), old) is True
    assert significantly_lower(new(2.1 * se), old)
    for gain in (1.9, 1.0, 0.0, -3.0):
        assert significantly_lower(new(gain * se), old) is False, gain
    assert not significantly_lower(old, old)  # equal: no spread, no gain


@pytest.mark.parametrize("hidden, n_calibration, any_kept", [
    ((8,), 400, True), ((12, 6), 400, True), ((10, 8, 6), 400, True),
    ((40,), 80, False),  # 120 neurons solved on 60 samples: no significant gain
    ((30, 20), 80, False)])
def test_refit_outputs_are_significantly_better_on_held_out_data_or_standard(
        hidden, n_calibration, any_kept):
    """Whatever the depth, the re-solved weights are kept only if the model's held-out
    output errors (recomputed here from the same split) are significantly lower than
    with the standard weights everywhere; otherwise every layer keeps the standard ones."""
    from popfit.conversion.refit import (forward, links_of, refit_weights,
                                         significantly_lower, split_calibration,
                                         standard_links)

    mlp, X = train(hidden, seed=2)
    X = X[:n_calibration]
    base = popfit.convert(mlp, n_neurons=3, calibration_data=X, search=QUICK, seed=1,
                          refit=False)
    ws, bs, skips, rep = refit_weights(base.spec, base.fits, X, holdout=0.25, synapse=0.02,
                                       seed=1)
    assert skips == {}  # a chain
    _, X_hold = split_calibration(X, 0.25, 1)
    y_hold = mlp.predict(X_hold)
    std = standard_links(base.spec, base.fits)
    std_b = [nxt.bias for nxt in base.spec.layers[1:]]

    def errors(links, b):
        return (forward(base.spec, base.fits, links, b, X_hold)[1][:, 0] - y_hold) ** 2

    assert len(rep.kept) == len(hidden) and any(rep.kept) == any_kept
    if any(rep.kept):
        assert significantly_lower(errors(links_of(ws), bs), errors(std, std_b))
    else:
        for l, w in enumerate(ws):
            np.testing.assert_array_equal(w, std[l, l + 1])


# ---------------------------------------------------------------- calibration data
def _generator():
    yield [0.0, 0.0]


@pytest.mark.parametrize("data, received", [
    (3.0, r"got the scalar 3.0"),
    (np.float64(3.0), r"got the scalar 3.0"),
    ("abc", r"got the str 'abc'"),
    ({}, r"got an object of type dict"),
    (_generator(), r"got an object of type generator\); make it an array first, e\.g\. "
                   r"np\.array\(list\(calibration_data\)\)"),
    ([[0.0, 1.0], [2.0]], r"numpy cannot make into an array.*rows of a nested list must all "
                          r"have 2 numbers"),
    (np.array([["1", "2"]]), r"got dtype <U1"),
    (np.array([[1.0, "x"]], dtype=object), r"object array holding the str 'x'"),
    (np.array([[1.0, None]], dtype=object), r"object array holding an object of type NoneType"),
    (np.zeros((0, 2)), r"\(got shape \(0, 2\)\)"),
    ([[0.0, np.nan]], r"1 of 2, the first at row 0, column 1: nan"),
    (np.ma.masked_array([[1.0, 2.0]], mask=[[True, False]]), r"masked array with 1 masked "
                                                             r"values.*\.filled"),
])
def test_calibration_data_of_the_wrong_kind_is_named(regressor, data, received):
    mlp, _ = regressor
    with pytest.raises((PopfitTypeError, PopfitValueError),
                       match=r"^convert: calibration_data .*(shape \(n_samples, 2\).*" + received
                             + "|" + received + r".*shape \(n_samples, 2\))"):
        popfit.convert(mlp, calibration_data=data)


def test_sparse_calibration_data_densified_if_small(regressor):
    import scipy.sparse

    mlp, X = regressor
    small = popfit.convert(mlp, calibration_data=scipy.sparse.csr_matrix(X[:50]), n_neurons=1,
                           search=QUICK, seed=0, refit=False)
    dense = popfit.convert(mlp, calibration_data=X[:50], n_neurons=1, search=QUICK, seed=0,
                           refit=False)
    assert small.layers[0].domain == dense.layers[0].domain
    big = scipy.sparse.coo_matrix((2**23 + 1, 2))  # 2**24 + 2 values when dense
    with pytest.raises(PopfitValueError, match=r"calibration_data is a scipy.sparse matrix of "
                                               r"shape \(8388609, 2\).*\.toarray\(\)"):
        popfit.convert(mlp, calibration_data=big)


def test_n_neurons_as_numpy_integers(regressor):
    mlp, X = regressor
    for n in (np.array(1), np.int64(1)):
        conv = popfit.convert(mlp, n_neurons=n, search=QUICK, seed=0)
        assert conv.fits[0].n_neurons == 1
    with pytest.raises(PopfitTypeError, match=r"n_neurons must be an integer >= 1 \(got 1.5"):
        popfit.convert(mlp, n_neurons=np.array(1.5))
    with pytest.raises(PopfitTypeError, match=r"n_neurons\[0\] must be an integer"):
        popfit.convert(mlp, n_neurons=np.array([1.5]))


def test_hand_edited_weights_of_the_wrong_shape_are_refused(regressor):
    import copy

    mlp, _ = regressor
    edited = copy.deepcopy(mlp)
    edited.coefs_[1] = np.zeros((5, 1))  # the hidden layer has 8 units
    with pytest.raises(popfit.ConversionError,
                       match=r"coefs_\[1\] has shape \(5, 1\), but its 5 input rows must match "
                             r"the 8 outputs of the previous layer \(coefs_\[0\] has shape "
                             r"\(2, 8\)\)"):
        popfit.convert(edited)
    edited = copy.deepcopy(mlp)
    edited.coefs_[0] = np.zeros((3, 8))
    with pytest.raises(popfit.ConversionError, match=r"coefs_\[0\] has shape \(3, 8\).*"
                                                     r"n_features_in_ = 2"):
        popfit.convert(edited)
    edited = copy.deepcopy(mlp)
    edited.intercepts_[0] = np.zeros(7)
    with pytest.raises(popfit.ConversionError, match=r"intercepts_\[0\] has shape \(7,\), but "
                                                     r"coefs_\[0\] has shape \(2, 8\)"):
        popfit.convert(edited)


def test_calibration_preactivations_too_large_for_any_domain(regressor):
    mlp, X = regressor
    with pytest.raises(popfit.ConversionError,
                       match=r"calibration pre-activations of MLPRegressor layer 0 "
                             r"\('coefs_\[0\]'\) are too large.*scale calibration_data"):
        popfit.convert(mlp, calibration_data=X * 1e200)
