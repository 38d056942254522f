"""The trainable weights of a converted model's layers: dense, sparse, and skip inputs.

A layer of `popfit.conversion.spec.LayerSpec` receives ``a_prev @ weights``
plus ``a_source @ matrix`` for each of its ``skips`` (all of
``layer.inputs(index)``), then its bias. `finetune` trains, per layer, a pair
``(W, b)`` (`initial_params`), where ``W`` is

* an array: a dense weight matrix from the previous layer (every entry trained);
* a `SparseValues`: the nonzeros of a scipy.sparse weight matrix (a convolution,
  with the pooling, padding, cropping and normalization folded into it), its
  sparsity pattern fixed;
* an `Inputs`: one of the above per input of a layer with skip connections
  (residual or merge connections), its sources fixed.

Each nonzero of a sparse matrix is trained on its own. A folded matrix has in
general no single shared kernel (an average pooling or a batch normalization
composed with a convolution, windows cut at the image's borders by "same"
padding), so training the nonzeros independently is the general approach; it
gives up a convolution's weight sharing (positions may learn different
kernels: more parameters, but the same neurons and synapses), and the layer
stays one sparse nengo transform with the same pattern. The product is a
gather of the inputs at the nonzeros' rows and a `jax.ops.segment_sum` over
their columns, so memory grows with ``n_samples * nnz``, never with the dense
size.

`SparseValues` and `Inputs` are jax pytrees whose patterns and sources are
static, so ``jax.grad``, ``jax.jit`` and optax see only the trained values.
`spec_with` puts trained parameters back into a `ModelSpec`.
"""

import dataclasses

import numpy as np
import scipy.sparse

from .._optional import import_optional

jax = import_optional("jax", "popfit.finetune")
jnp = jax.numpy


class Pattern:
    """The fixed sparsity pattern of a weight matrix: nonzeros sorted by column.

    Compared by identity (a static part of jax pytrees: two patterns are the
    same only if they are the same object).
    """

    def __init__(self, rows, cols, shape):
        self.rows, self.cols, self.shape = rows, cols, tuple(int(n) for n in shape)

    def __repr__(self):
        return f"Pattern(shape={self.shape}, nnz={len(self.rows)})"


@jax.tree_util.register_pytree_node_class
class SparseValues:
    """The trained nonzeros ``values`` of a sparse weight matrix with `Pattern` ``pattern``."""

    def __init__(self, values, pattern):
        self.values, self.pattern = values, pattern

    def tree_flatten(self):
        return (self.values,), self.pattern

    @classmethod
    def tree_unflatten(cls, pattern, children):
        return cls(children[0], pattern)

    def dot(self, a):
        """``a @ matrix`` for ``a`` of shape ``(n_samples, n_in)``: ``(n_samples, n_out)``."""
        p = self.pattern
        terms = (a[:, p.rows] * self.values).T  # (nnz, n_samples)
        return jax.ops.segment_sum(terms, p.cols, num_segments=p.shape[1],
                                   indices_are_sorted=True).T

    @classmethod
    def from_matrix(cls, matrix):
        """The nonzeros (and pattern) of a scipy.sparse ``matrix``, as float64 jax values."""
        coo = scipy.sparse.csr_matrix(matrix, dtype=float).tocoo()
        order = np.lexsort((coo.row, coo.col))
        rows, cols = coo.row[order].astype(np.int64), coo.col[order].astype(np.int64)
        return cls(jnp.asarray(coo.data[order], dtype=float), Pattern(rows, cols, coo.shape))

    def to_matrix(self):
        """The sparse matrix (`scipy.sparse.csr_matrix`, sorted indices) with these values."""
        p = self.pattern
        m = scipy.sparse.csr_matrix((np.asarray(self.values, dtype=float), (p.rows, p.cols)),
                                    shape=p.shape)
        m.sort_indices()
        return m


@jax.tree_util.register_pytree_node_class
class Inputs:
    """A layer's weights from several sources: ``weights[k]`` from ``sources[k]``
    (-1: the model input), each an array or a `SparseValues`."""

    def __init__(self, sources, weights):
        self.sources, self.weights = tuple(sources), tuple(weights)

    def tree_flatten(self):
        return self.weights, self.sources

    @classmethod
    def tree_unflatten(cls, sources, children):
        return cls(sources, children)


def dot(a, w):
    """``a @ w`` for ``w`` an array or a `SparseValues`."""
    return w.dot(a) if isinstance(w, SparseValues) else a @ w


def layer_input(W, outputs, index):
    """``sum_k outputs[source_k] @ W_k``: layer ``index``'s weighted inputs (no bias).

    ``outputs[s]`` is layer ``s``'s output (``outputs[-1]``: the model input).
    """
    pairs = zip(W.sources, W.weights) if isinstance(W, Inputs) else ((index - 1, W),)
    total = None
    for source, w in pairs:
        part = dot(outputs[source], w)
        total = part if total is None else total + part
    return total


def _param(matrix):
    if scipy.sparse.issparse(matrix):
        return SparseValues.from_matrix(matrix)
    return jnp.asarray(matrix, dtype=float)


def initial_params(spec):
    """``[(W, b)]`` per layer of ``spec`` (hidden layers, then the output), as jax arrays.

    ``W`` is an array for a dense layer without skips (the plain matrix), a
    `SparseValues` for a sparse one, an `Inputs` for a layer with skips.
    Call it where jax computes in float64 (`popfit.training.curves.x64`).
    """
    params = []
    for i, layer in enumerate(spec.layers):
        inputs = layer.inputs(i)
        if len(inputs) == 1:
            W = _param(layer.weights)
        else:
            W = Inputs([s for s, _ in inputs], [_param(m) for _, m in inputs])
        params.append((W, jnp.asarray(layer.bias, dtype=float)))
    return params


def to_numpy(params):
    """``params`` with every trained value a numpy array (patterns and sources kept)."""
    return jax.tree_util.tree_map(np.asarray, params)


def _matrix(w):
    return w.to_matrix() if isinstance(w, SparseValues) else np.array(w, dtype=float)


def spec_with(spec, params):
    """A copy of ``spec`` whose layers hold the weights and biases ``params``.

    Sparse layers stay scipy.sparse matrices with their patterns; skips keep
    their sources.
    """
    layers = []
    for layer, (W, b) in zip(spec.layers, params):
        if isinstance(W, Inputs):
            main, skips = _matrix(W.weights[0]), tuple(
                (s, _matrix(w)) for s, w in zip(W.sources[1:], W.weights[1:]))
        else:
            main, skips = _matrix(W), ()
        layers.append(dataclasses.replace(layer, weights=main, bias=np.array(b, dtype=float),
                                          skips=skips))
    return dataclasses.replace(spec, layers=tuple(layers))
