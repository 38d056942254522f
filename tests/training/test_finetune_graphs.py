"""finetune on Keras graphs: convolutions (sparse weights) and skip connections.

A small CNN (Conv2D, BatchNormalization, AveragePooling2D, Conv2D, Dense) and a
residual model (Add) on 8x8 digits, trained briefly, converted at 1 LIF per
unit and fine-tuned for two epochs: the sparse layers are trained nonzero by
nonzero with their patterns fixed, the skips keep their sources, and the
fine-tuned model computes, at rate level, the numpy reference forward pass of
its weights (`ModelSpec.forward` with the fits' curves) and the jax forward it
was trained through, and runs every public path.
"""

import json
import pickle

import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import load_digits

import popfit
from popfit.conversion.quantize import quantization_cost

jax = pytest.importorskip("jax")
pytest.importorskip("optax")
keras = pytest.importorskip("keras")
from popfit.training import curves, weights  # noqa: E402

QUICK = popfit.SearchOptions.quick()
pytestmark = [pytest.mark.filterwarnings("ignore:presentation_time .* is below:UserWarning"),
              pytest.mark.filterwarnings("ignore:.Node.size_out. is being overwritten:UserWarning")]


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return X[:192] / 16.0, y[:192], X[1500:1560] / 16.0, y[1500:1560]


@pytest.fixture(scope="module")
def sources():
    """The Keras CNN and residual model (their initial weights: fine-tuning trains them)."""
    L = keras.layers
    keras.utils.set_random_seed(0)
    cnn = keras.Sequential([
        keras.Input((8, 8, 1)), L.Conv2D(3, 3, padding="same", activation="tanh"),
        L.BatchNormalization(), L.AveragePooling2D(2), L.Conv2D(4, 3, activation="tanh"),
        L.Flatten(), L.Dense(10, activation="softmax")])
    inp = keras.Input((64,))
    a = L.Dense(12, activation="tanh")(inp)
    b = L.Dense(12, activation="tanh")(a)
    residual = keras.Model(inp, L.Dense(10, activation="softmax")(L.Add()([a, b])))
    return {"cnn": cnn, "residual": residual}


@pytest.fixture(scope="module")
def graphs(data, sources):
    """The CNN and the residual model converted at 1 LIF per unit (no refit), and the
    CNN with rectified-linear neurons."""
    X = data[0]
    cnn, residual = sources["cnn"], sources["residual"]
    kw = dict(n_neurons=1, calibration_data=X, refit=False, search=QUICK, seed=0)
    return {"cnn": popfit.convert(cnn, **kw), "residual": popfit.convert(residual, **kw),
            "cnn_relu": popfit.convert(cnn, neuron_type="relu", **kw)}


#: No held-out share and 192 samples: 6 whole batches, one compiled training step. The
#: CNN re-fits every layer's domain after training (tolerance 0; without a held-out share
#: the re-fit is kept).
OPTIONS = {"cnn": dict(domain_tolerance=0.0), "residual": dict(domain_tolerance=None)}


def finetune(model, data, **options):
    X, y, _, _ = data
    return popfit.finetune(model, X, y, epochs=2, learning_rate=1e-2, validation_fraction=0.0,
                           early_stopping=False, seed=0, **options)


@pytest.fixture(scope="module")
def tuned(graphs, data):
    return {name: finetune(graphs[name], data, **options) for name, options in OPTIONS.items()}


def jax_output(model, X):
    """The jax forward `finetune` trains, of the model's own weights, after the output
    nonlinearity."""
    layers = [curves.layer_constants(fit) for fit in model.fits]
    with curves.x64():
        z = np.asarray(curves.forward_compiled(weights.initial_params(model.spec), layers,
                                               X)[0])
    return model._outputs(z)


def reference_output(model, X):
    """numpy's reference forward pass: the spec's layers with the fits' decoded curves."""
    return model.spec.forward(X, [fit.predict for fit in model.fits])[1]


def test_graph_models_have_sparse_layers_and_skips(graphs):
    assert graphs["cnn"].spec.layers[0].sparse and graphs["cnn"].spec.is_chain
    assert not graphs["residual"].spec.is_chain


@pytest.mark.parametrize("name", ["cnn", "residual"])
def test_jax_forward_is_the_reference_forward(graphs, tuned, data, name):
    X = data[2]
    for m in (graphs[name], tuned[name]):
        ref = reference_output(m, X)
        np.testing.assert_allclose(jax_output(m, X), ref, rtol=0, atol=1e-9)
        np.testing.assert_allclose(m.rate_output(X), ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["cnn", "residual"])
def test_finetune_trains_every_input_and_keeps_the_structure(graphs, tuned, data, name):
    X, y, _, _ = data
    m, t = graphs[name], tuned[name]
    assert np.mean(t.rate_output(X).argmax(1) == y) > np.mean(m.rate_output(X).argmax(1) == y)
    for i, (a, b) in enumerate(zip(m.spec.layers, t.spec.layers)):
        inputs_a, inputs_b = a.inputs(i), b.inputs(i)
        assert [s for s, _ in inputs_a] == [s for s, _ in inputs_b]
        for (_, wa), (_, wb) in zip(inputs_a, inputs_b):
            assert scipy.sparse.issparse(wa) == scipy.sparse.issparse(wb)
            if scipy.sparse.issparse(wa):  # the same pattern, other values
                np.testing.assert_array_equal(wa.indptr, wb.indptr)
                np.testing.assert_array_equal(wa.indices, wb.indices)
                wa, wb = wa.data, wb.data
            assert wa.shape == wb.shape and not np.array_equal(wa, wb)
    assert m.spec.layers[0].weights is not t.spec.layers[0].weights  # model unchanged


def test_domains_of_sparse_layers_refitted(graphs, tuned):
    m, t = graphs["cnn"], tuned["cnn"]
    rows = t.finetune_report["domains"]
    assert len(rows) == 2 and all(row["refitted"] and row["refit_kept"] for row in rows)
    for fit, old, row, info in zip(t.fits, m.fits, rows, t.layers):
        assert fit is not old and tuple(fit.domain) == tuple(row["domain_after"]) == info.domain
        assert row["outside_after"] == pytest.approx(info.fraction_outside)


def test_sparse_product_and_gradient_match_finite_differences(graphs, data):
    # rectified-linear neurons: the forward's gradient is exact (LIF's onset is smoothed)
    X = data[0]
    m = graphs["cnn_relu"]
    layers = [curves.layer_constants(fit) for fit in m.fits]
    Xs = X[:12]
    with curves.x64():
        params = weights.initial_params(m.spec)
        sparse = params[0][0]
        assert isinstance(sparse, weights.SparseValues)
        np.testing.assert_allclose(np.asarray(sparse.dot(jax.numpy.asarray(Xs))),
                                   Xs @ m.spec.layers[0].weights.toarray(), rtol=0, atol=1e-12)

        def loss(values):
            p = [(weights.SparseValues(values, sparse.pattern), params[0][1])] + params[1:]
            z = curves.forward(p, layers, Xs)[0]
            return jax.numpy.sum(jax.nn.log_softmax(z)[:, 3])

        v = np.asarray(sparse.values)
        grad = np.asarray(jax.jit(jax.grad(loss))(jax.numpy.asarray(v)))
        f = jax.jit(loss)
        h = 1e-6
        for k in np.argsort(-np.abs(grad))[:3].tolist() + [len(v) // 2]:
            up, dn = v.copy(), v.copy()
            up[k] += h
            dn[k] -= h
            fd = (float(f(jax.numpy.asarray(up))) - float(f(jax.numpy.asarray(dn)))) / (2 * h)
            np.testing.assert_allclose(grad[k], fd, rtol=1e-5, atol=1e-9)
    assert np.abs(grad).max() > 1e-3


def test_same_seed_same_weights(graphs, tuned, data):
    again = finetune(graphs["cnn"], data, **OPTIONS["cnn"])
    for a, b in zip(tuned["cnn"].spec.layers, again.spec.layers):
        wa, wb = (w.toarray() if scipy.sparse.issparse(w) else w for w in (a.weights, b.weights))
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(a.bias, b.bias)


def test_finetuned_cnn_runs_every_public_path(tuned, data):
    model, X, y = tuned["cnn"], data[2][:3], data[3][:3]
    kw = dict(presentation_time=0.03, progress_bar=False)
    decoded = model.decoded_output(X, **kw)
    assert decoded.shape == (3, 10) and np.all(np.isfinite(decoded))
    out = model._outputs(decoded)
    np.testing.assert_array_equal(model.predict(X, **kw), model.classes_[out.argmax(1)])
    np.testing.assert_array_equal(model.predict_proba(X.reshape(3, 8, 8, 1), **kw), out)
    assert model.score(X, y, **kw) == np.mean(model.classes_[out.argmax(1)] == y)
    seq = model.decoded_output(X, sequential=True, **kw)
    assert seq.shape == (3, 10) and np.all(np.isfinite(seq))
    copy = pickle.loads(pickle.dumps(model))
    assert copy.finetune_report == model.finetune_report
    np.testing.assert_array_equal(copy.decoded_output(X, **kw), decoded)
    np.testing.assert_array_equal(copy.rate_output(X), model.rate_output(X))
    json.dumps(model.summary())
    assert "[[finetune]]" in model.report()
    nir = pytest.importorskip("nir")
    assert isinstance(popfit.to_nir(model, drop_tau_ref=True), nir.NIRGraph)


@pytest.mark.parametrize("name, host", [("cnn", ("Sparse", "Dense")), ("cnn", ("Dense",)),
                                        ("residual", ("Dense",))],
                         ids=["cnn, nengo", "cnn, Dense host transforms (Loihi's)",
                              "residual, Dense host transforms"])
def test_rounded_graphs_train_quantization_aware(sources, data, trained_forward, name, host):
    """Convolutions (sparse links) and skips with weight_bits: every input of a layer
    rounded with its one step, so the rebuilt, rounded model computes what was trained."""
    X, y, X_test, _ = data
    platform = popfit.get_platform("nengo", weight_bits=5, host_transforms=host)
    m = popfit.convert(sources[name], n_neurons=1, calibration_data=X, refit=False,
                       search=QUICK, seed=0, platform=platform)
    np.testing.assert_allclose(trained_forward(m, X_test), m.rate_output(X_test), rtol=0,
                               atol=1e-6)
    new = finetune(m, data, domain_tolerance=None)
    assert new.weight_bits == 5 and new.quantization is not None
    out = new.rate_output(X_test)
    np.testing.assert_allclose(out, trained_forward(new, X_test), rtol=0, atol=1e-6)
    # ... which is not the float forward of the same weights (the rounding matters)
    assert np.max(np.abs(out - jax_output(new, X_test))) > 1e-3
    assert np.mean(new.rate_output(X).argmax(1) == y) > np.mean(m.rate_output(X).argmax(1) == y)
    # the public paths of the rounded model: batched spiking run, pickling, NIR export
    kw = dict(presentation_time=0.03, progress_bar=False)
    decoded = new.decoded_output(X_test[:3], **kw)
    assert decoded.shape == (3, 10) and np.all(np.isfinite(decoded))
    assert new.score(X_test[:3], data[3][:3], **kw) == np.mean(
        new.classes_[decoded.argmax(1)] == data[3][:3])
    copy = pickle.loads(pickle.dumps(new))
    np.testing.assert_array_equal(copy.rate_output(X_test), out)
    assert quantization_cost(copy, X_test) == quantization_cost(new, X_test)
    nir = pytest.importorskip("nir")
    assert isinstance(popfit.to_nir(new, drop_tau_ref=True), nir.NIRGraph)
