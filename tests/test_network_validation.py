"""`PopulationLayer` / `connect_to` with bad and unusual arguments: every transform nengo users
pass works or is refused with a popfit error naming it.

References: the weights of a sparse or nengo transform are compared with those the
same map gives as a plain ndarray (whose weights test_network.py checks in
simulation against first-principles rates), and a rate simulation of a chained
pair of layers is compared with ``fit.predict`` applied twice.
"""

import nengo
import numpy as np
import pytest
import scipy.sparse

import popfit
from popfit.exceptions import PopfitTypeError, PopfitValueError
from popfit.network import PopulationLayer
from popfit.result import PopulationFit

# these tests need *a* good fit, not the best: the quick search is ~2.4x cheaper
QUICK = popfit.SearchOptions.quick()


@pytest.fixture(scope="module")
def fit():
    return popfit.fit_activation("tanh", 2, neuron_type="relu", synapse=None, search=QUICK, seed=0)


T = np.array([[0.5, 0.0, -1.0], [0.0, 2.0, 0.0]])  # (post n_units=2, pre n_units=3)


def _weights(conn):
    tr = conn.transform
    if isinstance(tr, nengo.transforms.Sparse):
        return tr.init.toarray()
    return np.asarray(tr.init)


@pytest.mark.parametrize("kind", ["csr", "coo_array", "nengo_sparse_scipy",
                                  "nengo_sparse_matrix"])
def test_sparse_transforms_stay_sparse_and_match_the_dense_map(fit, kind):
    """A scipy sparse matrix (or nengo.Sparse) is kept sparse: block-sparse weights."""
    rows, cols = np.nonzero(T)
    transform = {
        "csr": scipy.sparse.csr_matrix(T),
        "coo_array": scipy.sparse.coo_array(T),
        "nengo_sparse_scipy": nengo.transforms.Sparse(T.shape, init=scipy.sparse.csr_matrix(T)),
        "nengo_sparse_matrix": nengo.transforms.Sparse(
            T.shape, indices=np.stack([rows, cols], axis=1), init=T[rows, cols]),
    }[kind]
    with nengo.Network():
        a, b = PopulationLayer(fit, 3, spiking=False), PopulationLayer(fit, 2, spiking=False)
        sparse = a.connect_to(b, transform=transform, connection_synapse=None)
        dense = a.connect_to(b, transform=T, connection_synapse=None)
    assert isinstance(sparse.transform, nengo.transforms.Sparse)
    # one N x N block per nonzero of T, nothing else
    assert sparse.transform.init.nnz == np.count_nonzero(T) * fit.n_neurons**2
    np.testing.assert_allclose(_weights(sparse), _weights(dense), rtol=0, atol=0)


def test_sparse_transform_simulates_the_chained_units(fit):
    """Rate simulation: layer 2 computes fit.predict(T @ fit.predict(x))."""
    x = np.array([-1.5, 0.3, 2.0])
    with nengo.Network(seed=0) as model:
        stim = nengo.Node(x)
        a, b = PopulationLayer(fit, 3, spiking=False), PopulationLayer(fit, 2, spiking=False)
        nengo.Connection(stim, a.input, synapse=None)
        a.connect_to(b, transform=scipy.sparse.csr_matrix(T), connection_synapse=None)
        probe = nengo.Probe(b.output)
    with nengo.Simulator(model, progress_bar=False) as sim:
        sim.run_steps(3)
    want = fit.predict(T @ fit.predict(x))
    np.testing.assert_allclose(sim.data[probe][-1], want, rtol=1e-9, atol=1e-12)
    assert np.ptp(want) > 0.5  # the units differ: a wrong column would show


def test_nengo_dense_transforms_take_nengo_meaning(fit):
    with nengo.Network():
        a, b = PopulationLayer(fit, 3), PopulationLayer(fit, 2)
        c = PopulationLayer(fit, 3)
        full = a.connect_to(b, transform=nengo.Dense(T.shape, init=T))
        ref = a.connect_to(b, transform=T)
        scalar = a.connect_to(c, transform=nengo.Dense((3, 3), init=2.0))  # 2 * identity
        diag = a.connect_to(c, transform=nengo.Dense((3, 3), init=[1.0, -1.0, 3.0]))
        ref_scalar = a.connect_to(c, transform=2.0 * np.eye(3))
        ref_diag = a.connect_to(c, transform=np.diag([1.0, -1.0, 3.0]))
        np.testing.assert_array_equal(_weights(full), _weights(ref))
        np.testing.assert_array_equal(_weights(scalar), _weights(ref_scalar))
        np.testing.assert_array_equal(_weights(diag), _weights(ref_diag))
        with pytest.raises(PopfitTypeError, match=r"connect_to: transform nengo.Dense holds "
                                                  r"a Distribution"):
            a.connect_to(b, transform=nengo.Dense(T.shape, init=nengo.dists.Uniform(-1, 1)))
        with pytest.raises(PopfitTypeError, match=r"nengo.Sparse holds a Distribution"):
            a.connect_to(b, transform=nengo.transforms.Sparse(
                T.shape, indices=[[0, 0]], init=nengo.dists.Uniform(-1, 1)))
        with pytest.raises(PopfitTypeError, match=r"got Convolution"):
            a.connect_to(b, transform=nengo.Convolution(1, (3, 1), kernel_size=(1,), strides=(1,)))
        with pytest.raises(PopfitValueError, match=r"shape \(2, 3\).*got shape \(3, 3\)"):
            a.connect_to(b, transform=nengo.Dense((3, 3), init=1.0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("wrap", ["array", "csr", "nengo_dense"])
def test_non_finite_transforms_are_refused(fit, bad, wrap):
    t = T.copy()
    t[1, 1] = bad
    transform = {"array": t, "csr": scipy.sparse.csr_matrix(t),
                 "nengo_dense": nengo.Dense(t.shape, init=t)}[wrap]
    with nengo.Network():
        a, b = PopulationLayer(fit, 3), PopulationLayer(fit, 2)
        with pytest.raises(PopfitValueError,
                           match=r"PopulationLayer.connect_to: transform.* must be a finite "
                                 r"array.*non-finite values"):
            a.connect_to(b, transform=transform)


@pytest.mark.parametrize("transform, kind", [
    (T.astype(complex), "dtype complex128"),
    (scipy.sparse.csr_matrix(T.astype(complex)), "dtype complex128"),
    ([["a", "b", "c"], ["d", "e", "f"]], "dtype <U1"),
    ([[1.0, 2.0], [3.0]], "list"),
])
def test_non_real_transforms_are_type_errors(fit, transform, kind):
    with nengo.Network():
        a, b = PopulationLayer(fit, 3), PopulationLayer(fit, 2)
        with pytest.raises(PopfitTypeError, match=rf"transform.* must be an array of real "
                                                  rf"numbers .*{kind}"):
            a.connect_to(b, transform=transform)


def test_weights_that_overflow_are_refused(fit):
    loud = PopulationFit.from_parameters(
        target=fit.target, domain=fit.domain, neuron_type=fit.neuron_type, gain=fit.gain,
        bias=fit.bias, encoders=fit.encoders, decoders=[10.0, -10.0], max_rate=fit.max_rate,
        synapse=None)
    with nengo.Network():
        a, b = PopulationLayer(loud, 2), PopulationLayer(loud, 2)
        with pytest.raises(PopfitValueError, match=r"transform times the decoders overflows"):
            a.connect_to(b, transform=np.full((2, 2), 1e308))


@pytest.mark.parametrize("input_bias, error, match", [
    (["a"], PopfitTypeError, r"input_bias must be an array of real numbers \(got an array "
                             r"of dtype <U1\)"),
    ([1j], PopfitTypeError, r"input_bias must be an array of real numbers.*complex"),
    ([[0.0], [1.0, 2.0]], PopfitTypeError, r"input_bias must be an array of real numbers "
                                           r"\(got list\)"),
    ([np.nan], PopfitValueError, r"input_bias must be a finite array .*non-finite"),
])
def test_input_bias_of_non_numbers_is_a_popfit_error(fit, input_bias, error, match):
    with pytest.raises(error, match="PopulationLayer: " + match):
        PopulationLayer(fit, 1, input_bias=input_bias)
