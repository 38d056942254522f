"""Transforms between populations: checked, read as matrices, and built as nengo transforms.

`transform_matrix` reads what `PopulationLayer.connect_to` (and `popfit.to_nir`)
accepts (arrays, scipy sparse, `nengo.transforms.Dense`/`Sparse`) as a finite
float matrix; `as_sparse` builds the block-structured nengo transform, Dense
for small matrices (`DENSE_MAX_ENTRIES`).
"""

import nengo
import numpy as np
import scipy.sparse

from .._validation import check_finite_array
from ..exceptions import PopfitTypeError


def largest_entry(matrix):
    values = matrix.data if scipy.sparse.issparse(matrix) else matrix
    return float(np.max(np.abs(values))) if values.size else 0.0


def transform_matrix(transform, name="transform"):
    """A `connect_to` transform as a finite float ndarray or scipy CSR matrix.

    Accepts an array, a scipy sparse matrix, `nengo.transforms.Dense` and
    `nengo.transforms.Sparse` (with nengo's meaning of their ``init``).
    ``name`` is the argument's name in error messages (`popfit.to_nir` checks
    its ``transforms[k]`` here too).
    """
    if isinstance(transform, nengo.transforms.Dense):
        init = transform.init
        if isinstance(init, nengo.dists.Distribution):
            raise PopfitTypeError(
                f"{name} nengo.Dense holds a Distribution ({init!r}), sampled only at "
                "build time; the transform is folded into the weights now: "
                "sample it yourself and pass nengo.Dense(shape, init=array) or the array"
            )
        init = check_finite_array(init, f"{name} (nengo.Dense init)")
        if init.ndim < 2:  # nengo: a scalar or a vector is a diagonal
            t = np.zeros(transform.shape)
            np.fill_diagonal(t, init)
        else:
            t = init
    elif isinstance(transform, nengo.transforms.Sparse):
        init = transform.init
        if isinstance(init, nengo.transforms.SparseMatrix):
            if isinstance(init.data, nengo.dists.Distribution):
                raise PopfitTypeError(
                    f"{name} nengo.Sparse holds a Distribution ({init.data!r}), sampled "
                    "only at build time; the transform is folded into the weights "
                    "now: pass numeric data or a scipy sparse matrix"
                )
            init = init.allocate()
        t = real_sparse(init, f"{name} (nengo.Sparse init)")
    elif isinstance(transform, nengo.transforms.Transform):
        raise PopfitTypeError(
            f"{name} must be an array, a scipy sparse matrix, nengo.Dense or "
            f"nengo.Sparse (got {type(transform).__name__}); only a linear map can be "
            "folded into the neuron-to-neuron weights"
        )
    elif scipy.sparse.issparse(transform):
        t = real_sparse(transform, name)
    else:
        t = check_finite_array(transform, name)
    return t


def real_sparse(matrix, name):
    """A scipy sparse matrix of finite real numbers as a float CSR matrix (stays sparse)."""
    matrix = scipy.sparse.csr_matrix(matrix)
    check_finite_array(matrix.data, f"{name} (sparse data)")
    return matrix.astype(float)


#: Largest decoding transform (rows x columns) from a layer's neurons to a Node
#: (its ``output``, or a Node in `connect_to`) carried as
#: `nengo.transforms.Dense`: at this size nengo's reference simulator runs a
#: dense product faster than its Sparse operator (benchmarks/bench_layer.py
#: measures where the two break even). Values are the same up to the order in which a unit's N
#: decoded terms are summed (a dense row adds only exact zeros; differences
#: of 1 ulp measured, tests/test_network.py). Inputs into neurons stay
#: Sparse, which nengo-loihi refuses loudly for a layer not built for a
#: platform without Sparse host transforms (``platform="loihi"``).
DENSE_MAX_ENTRIES = 32 * 128


def as_sparse(matrix):
    """A `nengo.transforms.Sparse` holding a scipy sparse matrix."""
    matrix = scipy.sparse.csr_matrix(matrix)
    matrix.eliminate_zeros()
    return nengo.transforms.Sparse(matrix.shape, init=matrix)
