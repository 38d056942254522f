"""Linear layers as sparse matrices on flattened channels-last tensors.

A Keras tensor of shape ``(*spatial, channels)`` (one sample) is handled as
its row-major flattening, a vector of ``prod(shape)`` values, the order
Keras's ``Flatten`` gives. Every linear layer between two populations
(convolution, pooling, padding, cropping, a Dense layer on a
multi-dimensional input, an elementwise affine map) is then a matrix ``M``
with ``y = x @ M``: a `scipy.sparse.csr_matrix` of shape
``(prod(in_shape), prod(out_shape))``, built from index arithmetic (never by
applying the layer to basis vectors), so composing layers is a sparse
product and a convolution stays as sparse as its kernel. ``Flatten`` and
``Reshape`` are the identity on this layout.

Every function returns ``(matrix, out_shape)``; ``in_shape`` excludes the
batch axis. Output sizes and "same" padding follow Keras (and TensorFlow):
``out = ceil(n / stride)`` with the padding split ``total // 2`` before and
the rest after; "same" average pooling divides by the number of inputs
inside the image, not the window size. The tests check every function
against Keras's own layers.
"""

import itertools

import numpy as np
import scipy.sparse

from ..exceptions import ConversionError


def _size(shape):
    return int(np.prod(shape, dtype=np.int64))


def _flat_index(index, shape):
    """Row-major flat index of integer coordinate arrays ``index`` (last axis: dims)."""
    flat = np.zeros(index.shape[:-1], dtype=np.int64)
    for d, n in enumerate(shape):
        flat = flat * n + index[..., d]
    return flat


def _window_geometry(spatial, window, strides, dilation, padding):
    """Output spatial shape and padding before, per dimension (Keras's rules)."""
    out, before = [], []
    for n, k, s, d in zip(spatial, window, strides, dilation):
        extent = d * (k - 1) + 1
        if padding == "valid":
            m = (n - extent) // s + 1
            pad = 0
        elif padding == "same":
            m = -(-n // s)
            pad = max((m - 1) * s + extent - n, 0) // 2
        else:
            raise ConversionError(
                f"padding {padding!r} is not supported; use 'valid' or 'same'")
        if m < 1:
            raise ConversionError(
                f"a window of {k} (dilation {d}) does not fit an input of size {n} with "
                f"padding {padding!r}")
        out.append(m)
        before.append(pad)
    return tuple(out), tuple(before)


def _windows(spatial, window, strides, dilation, padding):
    """For every (output position, window offset) inside the image: their flat indices.

    Returns ``out_spatial, out_pos, offset, in_pos`` (1-D arrays of equal length).
    """
    out_spatial, before = _window_geometry(spatial, window, strides, dilation, padding)
    out_idx = np.array(list(itertools.product(*map(range, out_spatial))), dtype=np.int64)
    off_idx = np.array(list(itertools.product(*map(range, window))), dtype=np.int64)
    out_idx = out_idx.reshape(len(out_idx), len(spatial))
    off_idx = off_idx.reshape(len(off_idx), len(spatial))
    pos = (out_idx[:, None, :] * np.asarray(strides) - np.asarray(before)
           + off_idx[None, :, :] * np.asarray(dilation))
    inside = np.all((pos >= 0) & (pos < np.asarray(spatial)), axis=-1)
    out_pos, offset = np.nonzero(inside)
    in_pos = _flat_index(pos[out_pos, offset], spatial)
    return out_spatial, out_pos, offset, in_pos


def convolution(in_shape, kernel, strides, padding, dilation):
    """An N-d convolution (Keras ``ConvND``, ``channels_last``, one group), no bias.

    ``kernel`` has Keras's layout ``(*window, channels_in, channels_out)``.
    """
    kernel = np.asarray(kernel, dtype=float)
    window, (c_in, c_out) = kernel.shape[:-2], kernel.shape[-2:]
    spatial = tuple(in_shape[:-1])
    if in_shape[-1] != c_in:
        raise ConversionError(
            f"the kernel takes {c_in} input channels but the input has {in_shape[-1]}")
    out_spatial, out_pos, offset, in_pos = _windows(spatial, window, strides, dilation,
                                                    padding)
    k = kernel.reshape(_size(window), c_in, c_out)
    rows = (in_pos[:, None, None] * c_in + np.arange(c_in)[None, :, None])
    cols = (out_pos[:, None, None] * c_out + np.arange(c_out)[None, None, :])
    rows, cols = np.broadcast_arrays(rows, cols)
    vals = k[offset]
    shape = (_size(in_shape), _size(out_spatial) * c_out)
    matrix = scipy.sparse.csr_matrix((vals.ravel(), (rows.ravel(), cols.ravel())),
                                     shape=shape)  # duplicates (none here) would be summed
    return matrix, out_spatial + (c_out,)


def average_pooling(in_shape, pool, strides, padding):
    """Keras ``AveragePoolingND`` (``channels_last``): the mean of each window's inputs."""
    spatial, c = tuple(in_shape[:-1]), in_shape[-1]
    out_spatial, out_pos, _, in_pos = _windows(spatial, pool, strides, (1,) * len(pool),
                                               padding)
    count = np.bincount(out_pos, minlength=_size(out_spatial)).astype(float)
    rows = (in_pos[:, None] * c + np.arange(c)).ravel()
    cols = (out_pos[:, None] * c + np.arange(c)).ravel()
    vals = np.repeat(1.0 / count[out_pos], c)
    shape = (_size(in_shape), _size(out_spatial) * c)
    return scipy.sparse.csr_matrix((vals, (rows, cols)), shape=shape), out_spatial + (c,)


def global_average(in_shape, keepdims=False):
    """Keras ``GlobalAveragePoolingND``: each channel's mean over all positions."""
    spatial, c = tuple(in_shape[:-1]), in_shape[-1]
    p = _size(spatial)
    rows = np.arange(p * c)
    cols = np.tile(np.arange(c), p)
    matrix = scipy.sparse.csr_matrix((np.full(p * c, 1.0 / p), (rows, cols)),
                                     shape=(p * c, c))
    return matrix, ((1,) * len(spatial) + (c,) if keepdims else (c,))


def _selection(in_shape, out_shape, in_index):
    """The 0/1 matrix taking ``x[in_index[j]]`` to output ``j`` (-1: a zero)."""
    cols = np.nonzero(in_index >= 0)[0]
    rows = in_index[cols]
    return scipy.sparse.csr_matrix((np.ones(len(cols)), (rows, cols)),
                                   shape=(_size(in_shape), _size(out_shape)))


def pad_or_crop(in_shape, before, after):
    """Zero padding (positive ``before``/``after`` per spatial axis) or cropping (negative)."""
    spatial, c = tuple(in_shape[:-1]), in_shape[-1]
    out_spatial = tuple(n + b + a for n, b, a in zip(spatial, before, after))
    if min(out_spatial, default=1) < 1:
        raise ConversionError(f"cropping {before}, {after} leaves nothing of {in_shape}")
    idx = np.array(list(itertools.product(*map(range, out_spatial))), dtype=np.int64)
    idx = idx.reshape(len(idx), len(spatial)) - np.asarray(before)
    inside = np.all((idx >= 0) & (idx < np.asarray(spatial)), axis=-1)
    src = np.where(inside, _flat_index(np.where(inside[:, None], idx, 0), spatial), -1)
    src = np.where(src[:, None] >= 0, src[:, None] * c + np.arange(c), -1).ravel()
    out_shape = out_spatial + (c,)
    return _selection(in_shape, out_shape, src), out_shape


def upsampling(in_shape, size):
    """Keras ``UpSamplingND`` (nearest): each position repeated ``size`` times per axis."""
    spatial, c = tuple(in_shape[:-1]), in_shape[-1]
    out_spatial = tuple(n * s for n, s in zip(spatial, size))
    idx = np.array(list(itertools.product(*map(range, out_spatial))), dtype=np.int64)
    idx = idx.reshape(len(idx), len(spatial)) // np.asarray(size)
    src = (_flat_index(idx, spatial)[:, None] * c + np.arange(c)).ravel()
    out_shape = out_spatial + (c,)
    return _selection(in_shape, out_shape, src), out_shape


def last_axis_dense(in_shape, weights):
    """Keras ``Dense`` on a multi-dimensional input: ``weights`` on the last axis."""
    positions = _size(in_shape[:-1])
    matrix = scipy.sparse.kron(scipy.sparse.identity(positions, format="csr"),
                               scipy.sparse.csr_matrix(np.asarray(weights, dtype=float)),
                               format="csr")
    return matrix, tuple(in_shape[:-1]) + (np.shape(weights)[1],)


def channel_diagonal(in_shape, scale):
    """``x * scale`` with one ``scale`` per channel (the last axis)."""
    return scipy.sparse.diags(np.tile(np.asarray(scale, dtype=float), _size(in_shape[:-1])),
                              format="csr")


def tile_channels(in_shape, values):
    """One value per channel, tiled over every position of ``in_shape``."""
    return np.tile(np.asarray(values, dtype=float), _size(in_shape[:-1]))


def concatenate(shapes, axis):
    """The matrices placing each of ``shapes`` into their concatenation along ``axis``.

    ``axis`` counts the sample's axes (0 .. ndim - 1, after removing the batch
    axis); every other axis must agree. Returns ``(matrices, out_shape)``.
    """
    ndim = len(shapes[0])
    for shape in shapes:
        if len(shape) != ndim or any(a != b for d, (a, b) in enumerate(zip(shape, shapes[0]))
                                     if d != axis):
            raise ConversionError(
                f"Concatenate along axis {axis} of tensors of shapes {shapes}: the other "
                "axes differ")
    total = sum(s[axis] for s in shapes)
    out_shape = tuple(total if d == axis else n for d, n in enumerate(shapes[0]))
    grid = np.arange(_size(out_shape)).reshape(out_shape)
    matrices, start = [], 0
    for shape in shapes:
        cut = [slice(None)] * ndim
        cut[axis] = slice(start, start + shape[axis])
        cols = grid[tuple(cut)].ravel()
        matrices.append(scipy.sparse.csr_matrix(
            (np.ones(len(cols)), (np.arange(len(cols)), cols)),
            shape=(_size(shape), _size(out_shape))))
        start += shape[axis]
    return matrices, out_shape
