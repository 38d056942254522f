"""A Keras model's graph as linear expressions of populations.

Reading a Keras model, every tensor is held as a `Tensor`: a linear
expression ``sum_s a_s @ terms[s] + bias`` of the outputs ``a_s`` of the
populations made so far (source -1: the model input), with its shape. A
linear layer (Dense, convolution, pooling, padding, reshaping,
BatchNormalization, merges) maps expressions to expressions, exactly
(sparse products, `popfit.conversion.operators`); applying an activation
makes the expression the input of a new population (`Graph.population`),
whose output is the next expression. So no signed node ever sits between
populations: everything linear is folded into the weights from neurons to
neurons.

A Dense or convolution layer without an activation (``linear``) is a
population fitted to the identity when its output goes into another
Dense or convolution layer (as a hidden ``Dense(linear)`` layer is in a
chain); a merge, a normalization or an activation layer after it folds into it
instead. Activations on the model's output (softmax, sigmoid, ...) are applied
in numpy after simulation (`Graph.finish`).
"""

from dataclasses import dataclass, field, replace
from typing import Dict, Optional, Tuple

import numpy as np
import scipy.sparse

from ..exceptions import ConversionError
from .spec import HIDDEN_ACTIVATIONS, LayerSpec


@dataclass(frozen=True, eq=False)
class Tensor:
    """A Keras tensor (one sample, flattened channels-last) as a linear expression.

    Attributes
    ----------
    terms : dict
        Source (population index, -1 the model input) -> sparse matrix
        ``(n_source, size)``.
    bias : ndarray, shape (size,)
    shape : tuple of int
    weighted : str or None
        The label of a Dense or convolution layer applied since the last
        population (None if none was).
    labels : tuple of str
        The Keras layers folded into this expression since the last population.
    output_activation : tuple or None
        ``(activation, label)`` once the output activation was applied: only
        identity layers may follow.
    """

    terms: Dict[int, object]
    bias: np.ndarray
    shape: Tuple[int, ...]
    weighted: Optional[str] = None
    labels: Tuple[str, ...] = ()
    output_activation: Optional[Tuple[str, str]] = None

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class Graph:
    """The populations made so far (`LayerSpec` fields, in topological order)."""

    populations: list = field(default_factory=list)

    @staticmethod
    def input(shape):
        """The model input as a `Tensor`."""
        n = int(np.prod(shape, dtype=np.int64))
        return Tensor({-1: scipy.sparse.identity(n, format="csr")}, np.zeros(n), tuple(shape))

    @staticmethod
    def _check_open(t, label):
        if t.output_activation is not None:
            act, by = t.output_activation
            raise ConversionError(
                f"Keras layer {label!r} comes after the output activation {act!r} of "
                f"{by!r}; only identity layers (Dropout, ...) can follow it: move the "
                "activation to the end of the model")

    def linear(self, t, matrix, offset, shape, label, weight_layer=False):
        """``t @ matrix + offset``, of shape ``shape``: a new `Tensor`.

        ``weight_layer``: this is a Dense or convolution layer (a ``linear``
        one before it becomes a population first, as in a chain).
        """
        self._check_open(t, label)
        if weight_layer and t.weighted is not None:
            t = self._materialize(t, "linear", None, None)
        matrix = scipy.sparse.csr_matrix(matrix)
        terms = {s: scipy.sparse.csr_matrix(m @ matrix) for s, m in t.terms.items()}
        bias = np.asarray(matrix.T @ t.bias).ravel() + np.asarray(offset, dtype=float)
        return Tensor(terms, bias, tuple(shape),
                      weighted=label if weight_layer else t.weighted,
                      labels=t.labels + (label,))

    def merge(self, tensors, matrices, shape, label):
        """``sum_k tensors[k] @ matrices[k]``: Add, Subtract, Average, Concatenate."""
        for t in tensors:
            self._check_open(t, label)
        terms, bias = {}, 0.0
        for t, m in zip(tensors, matrices):
            m = scipy.sparse.csr_matrix(m)
            for s, tm in t.terms.items():
                part = scipy.sparse.csr_matrix(tm @ m)
                terms[s] = part if s not in terms else terms[s] + part
            bias = bias + np.asarray(m.T @ t.bias).ravel()
        weighted = next((t.weighted for t in tensors if t.weighted is not None), None)
        labels = tuple(dict.fromkeys(sum((t.labels for t in tensors), ()) + (label,)))
        return Tensor(terms, bias, tuple(shape), weighted=weighted, labels=labels)

    def population(self, t, activation, curve, label, output=False):
        """Apply ``activation`` to ``t``: a new population (or, with ``output``, the
        model's output activation)."""
        self._check_open(t, label)
        if activation == "linear" and curve is None:
            return t  # the identity: nothing to convert
        if output:
            return replace(t, output_activation=(activation, label),
                            labels=t.labels + ((label,) if label not in t.labels else ()))
        if curve is None and activation not in HIDDEN_ACTIVATIONS:
            raise ConversionError(
                f"Keras layer {label!r} has activation {activation!r}, which is only supported on "
                f"the output layer; hidden activations supported are "
                f"{', '.join(HIDDEN_ACTIVATIONS)} and elementwise functions")
        if (self.populations and t.weighted is None
                and set(t.terms) == {len(self.populations) - 1}
                and _is_identity(t.terms[len(self.populations) - 1]) and not np.any(t.bias)):
            prev = self.populations[-1]
            raise ConversionError(
                f"Keras layer {label!r} applies {activation!r} after {prev['label']!r} "
                f"already applied {prev['activation']!r}; only one nonlinearity per Dense "
                "or convolution layer is supported")
        return self._materialize(t, activation, curve, label)

    def _materialize(self, t, activation, curve, label):
        """Append the population ``activation(t)``; its output as a `Tensor`."""
        labels = t.labels + ((label,) if label and label not in t.labels else ())
        self.populations.append(dict(terms=t.terms, bias=t.bias, shape=t.shape,
                                     activation=activation, curve=curve,
                                     label="+".join(labels)))
        k = len(self.populations) - 1
        return Tensor({k: scipy.sparse.identity(t.size, format="csr")}, np.zeros(t.size),
                      t.shape)

    def finish(self, t, source):
        """The `LayerSpec` layers: the populations, then the output ``t``."""
        if not self.populations:
            raise ConversionError(
                f"Keras model {source!r} has no hidden layer whose units become neurons "
                "(a Dense or convolution layer with an activation, before the output "
                "layer); nothing to convert")
        act, _ = t.output_activation or ("linear", None)
        outputs = self.populations + [dict(terms=t.terms, bias=t.bias, shape=t.shape,
                                           activation=act, curve=None,
                                           label="+".join(t.labels) or "output")]
        layers = []
        for i, p in enumerate(outputs):
            terms = dict(p["terms"])
            prev = terms.pop(i - 1, None)
            if prev is None:
                n_prev = (outputs[i - 1]["bias"].size if i > 0
                          else next(iter(self.populations[0]["terms"].values())).shape[0])
                prev = scipy.sparse.csr_matrix((n_prev, p["bias"].size))
            layers.append(LayerSpec(
                weights=_compact(prev), bias=np.asarray(p["bias"], dtype=float),
                activation=p["activation"], label=p["label"], curve=p["curve"],
                shape=tuple(p["shape"]),
                skips=tuple((s, _compact(m)) for s, m in sorted(terms.items()))))
        return tuple(layers)


def _is_identity(m):
    return m.shape[0] == m.shape[1] and m.nnz == m.shape[0] and (
        (m != scipy.sparse.identity(m.shape[0])).nnz == 0)


#: Largest share of nonzeros for which a layer's weights stay a sparse matrix;
#: denser ones (a Dense layer on flat inputs) become ndarrays.
SPARSE_DENSITY = 0.25


def _compact(matrix):
    """A dense ndarray for a dense-ish matrix, a sorted CSR matrix for a sparse one."""
    matrix = scipy.sparse.csr_matrix(matrix)
    matrix.eliminate_zeros()
    size = matrix.shape[0] * matrix.shape[1]
    if size == 0 or matrix.nnz > SPARSE_DENSITY * size:
        return matrix.toarray()
    matrix.sort_indices()
    return matrix
