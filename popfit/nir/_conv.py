"""Convolutions recovered from neuron-to-neuron matrices, for NIR's ``Conv1d``/``Conv2d``.

A converted convolutional layer's weights (`popfit.conversion.operators`: the
convolution with the pooling, padding and normalization between two
populations folded in, the previous population's decoders and this one's
gains and encoder signs multiplied in) are a sparse matrix from the
channels-last flattened neurons of one layer, shape ``(*spatial_in, C_in)``,
to those of the next, ``(*spatial_out, C_out)`` (population coding makes a
layer of units of shape ``(*spatial, C)`` with N neurons each a tensor of
``(*spatial, C * N)`` neurons: neuron ``u * N + n`` of unit ``u``).

`find_convolution` decides whether such a matrix is a convolution (one
kernel, one stride and a symmetric zero padding per axis, as PyTorch's and
NIR's ``Conv1d``/``Conv2d`` define them; a pooling followed by a convolution
is one, with a larger, strided kernel), and returns it channels-first, or
None. It recovers the geometry from the matrix and rebuilds the matrix from
the kernel to check it: translation equivariance is verified, never assumed
(``"same"`` average pooling divides by fewer inputs at the border, for
instance, and is no convolution). Nothing here knows NIR.
"""

import itertools
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import scipy.sparse

#: Largest difference, relative to the largest |weight|, between the matrix and
#: the convolution rebuilt from its kernel: the sparse products that fold the
#: layers sum in a different order at different positions (1 ulp).
RTOL = 1e-9


@dataclass(frozen=True)
class Convolution:
    """A convolution in NIR's (PyTorch's) channels-first layout.

    Attributes
    ----------
    weight : ndarray, shape (C_out, C_in, *kernel)
    bias : ndarray, shape (C_out,)
    stride, padding : tuple of int
        One per spatial axis; the padding is zeros on both sides.
    in_shape, out_shape : tuple of int
        ``(C, *spatial)`` of the input and output tensors.
    """

    weight: np.ndarray
    bias: np.ndarray
    stride: Tuple[int, ...]
    padding: Tuple[int, ...]
    in_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]


def channels_first(shape):
    """``(*spatial, C)`` -> ``(C, *spatial)``."""
    return (shape[-1],) + tuple(shape[:-1])


def channels_first_order(shape):
    """Indices ``p`` with ``x_cl[p]`` = ``x_cf``: the channels-last flattening of a
    tensor of ``shape`` (``(*spatial, C)``) read in channels-first order."""
    grid = np.arange(int(np.prod(shape))).reshape(shape)
    return np.moveaxis(grid, -1, 0).ravel()


def _candidate_strides(i, o, n_out):
    """Strides worth trying on one axis: the slopes of the first and last input
    index reached from consecutive output positions (a convolution's interior
    ones equal its stride), and 1."""
    cands = {1}
    if n_out > 1:
        for reduce in (np.minimum, np.maximum):
            edge = np.full(n_out, -1 if reduce is np.maximum else np.iinfo(np.int64).max)
            reduce.at(edge, o, i)
            steps = np.diff(edge)
            cands.update(int(s) for s in np.unique(steps) if s > 0)
    return sorted(cands)


def _geometry(n_in, n_out, lo, hi, stride):
    """``(padding, kernel, first)``: a symmetric padding and kernel size covering
    offsets ``lo .. hi`` for which PyTorch's output size is ``n_out``; ``first`` is
    the offset of the kernel's first tap (``-padding``). None if there is none."""
    lo = min(lo, 0)  # the kernel starts at or before the window's first input
    q = n_in - lo - hi - 1  # n + 2p - k without extra zero taps
    # extra taps: e_before - e_after = delta with floor((q + delta) / s) = n_out - 1
    low, high = (n_out - 1) * stride - q, (n_out - 1) * stride - q + stride - 1
    delta = 0 if low <= 0 <= high else (low if low > 0 else high)
    before, after = max(delta, 0), max(-delta, 0)
    padding, kernel = -lo + before, hi - lo + 1 + before + after
    if (n_in + 2 * padding - kernel) // stride + 1 != n_out or n_in + 2 * padding < kernel:
        return None
    return padding, kernel, -padding


def _rebuild(weight, stride, padding, in_shape, out_shape):
    """The channels-last neuron matrix ``(prod(out_shape), prod(in_shape))`` of a kernel."""
    c_out, c_in = weight.shape[:2]
    kernel = weight.shape[2:]
    spatial_in, spatial_out = in_shape[:-1], out_shape[:-1]
    out_idx = np.indices(spatial_out).reshape(len(spatial_out), -1).T
    tap_idx = np.indices(kernel).reshape(len(kernel), -1).T
    pos = (out_idx[:, None, :] * np.asarray(stride) - np.asarray(padding)
           + tap_idx[None, :, :])
    inside = np.all((pos >= 0) & (pos < np.asarray(spatial_in)), axis=-1)
    out_pos, tap = np.nonzero(inside)
    in_pos = np.ravel_multi_index(tuple(pos[out_pos, tap].T), spatial_in)
    k = weight.reshape(c_out, c_in, -1)
    rows = out_pos[:, None, None] * c_out + np.arange(c_out)[None, :, None]
    cols = in_pos[:, None, None] * c_in + np.arange(c_in)[None, None, :]
    rows, cols = np.broadcast_arrays(rows, cols)
    vals = np.moveaxis(k[:, :, tap], 2, 0)  # (entries, c_out, c_in)
    shape = (int(np.prod(out_shape)), int(np.prod(in_shape)))
    return scipy.sparse.csr_matrix((vals.ravel(), (rows.ravel(), cols.ravel())), shape=shape)


def find_convolution(matrix, bias, in_shape, out_shape, rtol=RTOL):
    """``matrix`` as a `Convolution`, or None if it is not one.

    Parameters
    ----------
    matrix : ndarray or scipy.sparse matrix, shape (prod(out_shape), prod(in_shape))
        Maps the channels-last flattened input tensor to the output tensor.
    bias : ndarray, shape (prod(out_shape),)
        Must be the same at every position (one value per output channel).
    in_shape, out_shape : tuple of int
        ``(*spatial, C)``, one or two spatial axes on both.
    """
    d = len(in_shape) - 1
    if d not in (1, 2) or len(out_shape) != d + 1:
        return None
    spatial_in, c_in = tuple(in_shape[:-1]), int(in_shape[-1])
    spatial_out, c_out = tuple(out_shape[:-1]), int(out_shape[-1])
    bias = np.asarray(bias, dtype=float).reshape(-1, c_out)
    if not np.allclose(bias, bias[:1], rtol=0, atol=rtol * max(np.abs(bias).max(), 1e-300)):
        return None
    m = scipy.sparse.coo_matrix(matrix)
    m.sum_duplicates()
    keep = m.data != 0
    rows, cols, vals = m.row[keep].astype(np.int64), m.col[keep].astype(np.int64), m.data[keep]
    if not len(vals):
        return None
    out_pos, oc = np.divmod(rows, c_out)
    in_pos, ic = np.divmod(cols, c_in)
    o = np.unravel_index(out_pos, spatial_out)
    i = np.unravel_index(in_pos, spatial_in)
    options = []  # per axis: (kernel size, stride, padding, taps), smallest kernel first
    for a in range(d):
        found = []
        for s in _candidate_strides(i[a], o[a], spatial_out[a]):
            off = i[a] - o[a] * s
            geometry = _geometry(spatial_in[a], spatial_out[a], int(off.min()),
                                 int(off.max()), s)
            if geometry is not None:
                found.append((geometry[1], s, geometry[0], off - geometry[2]))
        if not found:
            return None
        options.append(sorted(found, key=lambda g: g[:2]))
    tol = rtol * np.abs(vals).max()
    dense = scipy.sparse.csr_matrix(matrix)
    for choice in itertools.product(*options):  # a few: the candidate strides
        kernel, stride, padding, taps = (tuple(g[j] for g in choice) for j in range(4))
        weight = np.zeros((c_out, c_in) + kernel)
        index = (oc, ic) + taps
        weight[index] = vals
        if np.abs(weight[index] - vals).max() > tol:  # one kernel entry, two values
            continue
        diff = _rebuild(weight, stride, padding, tuple(in_shape), tuple(out_shape)) - dense
        if diff.nnz and np.abs(diff.data).max() > tol:  # not the same at every position
            continue
        return Convolution(weight=weight, bias=bias[0].copy(), stride=stride,
                           padding=padding, in_shape=channels_first(in_shape),
                           out_shape=channels_first(out_shape))
    return None
