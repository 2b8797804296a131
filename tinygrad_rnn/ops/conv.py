"""Convolution and pooling over (N, C, H, W) arrays: conv2d, max/avg pooling, adaptive average pooling.

Every op reads its input through *windows*: ``unfold`` copies, for each kernel
offset (i, j), the strided slice of the padded input that offset sees, into an
array of shape (N, C, kH, kW, OH, OW) (im2col; a loop over the kH·kW offsets,
never over output pixels). ``fold`` is its adjoint (col2im): it adds each
offset's slice back into a padded zero image and crops the padding, so
overlapping windows add up without a scatter. Both only slice and add, so they
run unchanged on NumPy and CuPy.

``Conv2dFn`` is im2col plus one (batched over the groups) matrix product;
its backward is one product per gradient plus a fold. The pools reduce the
windows; their backward folds the output gradient spread over each window.

Each backward is written once: on a ``create_graph`` backward the same code
gets Tensors, and ``unfold``/``fold`` then record the :class:`Unfold` /
:class:`Fold` ops (each the other's backward), so every op here can be
differentiated again. Argument checking happens in ``nn.functional_conv``.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..autograd import Function
from ..autograd.graph_mode import is_tensor

#: where the windows of an op lie: kernel, stride and dilation are (h, w) pairs, ``pads`` is
#: ((top, bottom), (left, right)) and ``out`` the output's (OH, OW)
Window = namedtuple("Window", "kernel stride dilation pads out")


def _offset_slices(win, i, j):
    """The (rows, cols) slices of the padded input that kernel offset (i, j) reads, one element per output pixel."""
    (sh, sw), (dh, dw), (oh, ow) = win.stride, win.dilation, win.out
    return slice(i * dh, i * dh + sh * (oh - 1) + 1, sh), slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)


def _padded_shape(shape, win):
    (pt, pb), (pl, pr) = win.pads
    return shape[:-2] + (shape[-2] + pt + pb, shape[-1] + pl + pr)


def unfold_array(xp, x, win, value=0.0):
    """(N, C, H, W) → (N, C, kH, kW, OH, OW): the input each kernel offset sees at each output pixel,
    with ``value`` in the padding (im2col, on arrays)."""
    (pt, _), (pl, _) = win.pads
    n, c, h, w = x.shape
    padded = x
    if _padded_shape(x.shape, win) != x.shape:
        padded = xp.full(_padded_shape(x.shape, win), value, dtype=x.dtype)
        padded[:, :, pt : pt + h, pl : pl + w] = x
    kh, kw = win.kernel
    cols = xp.empty((n, c, kh, kw) + tuple(win.out), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _offset_slices(win, i, j)
            cols[:, :, i, j] = padded[:, :, rows, columns]
    return cols


def fold_array(xp, cols, in_shape, win):
    """The adjoint of :func:`unfold_array` (col2im): (N, C, kH, kW, OH, OW) → ``in_shape`` (N, C, H, W),
    each window element added back to the input position it came from; padding positions are dropped."""
    (pt, _), (pl, _) = win.pads
    h, w = in_shape[-2:]
    padded = xp.zeros(_padded_shape(tuple(in_shape), win), dtype=cols.dtype)
    kh, kw = win.kernel
    for i in range(kh):
        for j in range(kw):
            rows, columns = _offset_slices(win, i, j)
            padded[:, :, rows, columns] += cols[:, :, i, j]  # one slice holds no position twice
    if padded.shape == tuple(in_shape):
        return padded
    return xp.ascontiguousarray(padded[:, :, pt : pt + h, pl : pl + w])


def unfold(fn, x, win):
    """im2col of an array, or of a Tensor in a ``create_graph`` backward (recorded as :class:`Unfold`)."""
    if is_tensor(x):
        return Unfold.apply(x, win=win)
    return unfold_array(fn.xp, x, win)


def fold(fn, cols, in_shape, win):
    """col2im of an array, or of a Tensor in a ``create_graph`` backward (recorded as :class:`Fold`)."""
    if is_tensor(cols):
        return Fold.apply(cols, in_shape=tuple(in_shape), win=win)
    return fold_array(fn.xp, cols, in_shape, win)


class Unfold(Function):
    """im2col as an op (zero padding), for ``create_graph`` backwards; its backward is :class:`Fold`."""

    def forward(self, x, win):
        self.win, self.in_shape = win, x.shape
        return unfold_array(self.xp, x, win)

    def backward(self, g):
        return fold(self, g, self.in_shape, self.win)


class Fold(Function):
    """col2im as an op, for ``create_graph`` backwards; its backward is :class:`Unfold`."""

    def forward(self, cols, in_shape, win):
        self.win = win
        return fold_array(self.xp, cols, in_shape, win)

    def backward(self, g):
        return unfold(self, g, self.win)


class Conv2dFn(Function):
    """Cross-correlation y[n, o] = Σ_c Σ_ij w[o, c, i, j] · x_pad[n, c, s·p + d·i, s·q + d·j] + b[o], in groups.

    Forward: the windows (N, G, K, OH·OW), K = C/G · kH · kW, times the weight
    (G, O/G, K) in one batched matrix product. Backward: dW = Σ_n g colsᵀ (the
    windows recomputed from the saved input, so only x is kept), dx = fold(Wᵀ g),
    db = Σ g over batch and pixels.
    """

    def forward(self, x, weight, bias=None, win=None, groups=1):
        self.win, self.groups = win, groups
        n, c = x.shape[:2]
        out_channels = weight.shape[0]
        pixels = win.out[0] * win.out[1]
        k = weight[0].size  # C/G · kH · kW
        cols = unfold_array(self.xp, x, win).reshape(n, groups, k, pixels)
        out = (weight.reshape(groups, out_channels // groups, k) @ cols).reshape((n, out_channels) + tuple(win.out))
        if bias is not None:
            out += bias.reshape(out_channels, 1, 1)
        self.save_for_backward(x, weight)
        return out

    def backward(self, g):
        x, weight = self.saved
        groups, win = self.groups, self.win
        n, out_channels = g.shape[:2]
        pixels = win.out[0] * win.out[1]
        g_groups = g.reshape((n, groups, out_channels // groups, pixels))
        w = weight.reshape((groups, out_channels // groups, -1))
        grad_x = grad_w = None
        if self.next[0] is not None:
            cols = w.swapaxes(-1, -2) @ g_groups  # (N, G, K, OH·OW)
            grad_x = fold(self, cols.reshape((n, x.shape[1]) + tuple(win.kernel) + tuple(win.out)), x.shape, win)
        if self.next[1] is not None:
            cols = unfold(self, x, win).reshape((n, groups, w.shape[-1], pixels))
            grad_w = (g_groups @ cols.swapaxes(-1, -2)).sum(axis=0).reshape(weight.shape)
        if len(self.next) == 2:
            return grad_x, grad_w
        grad_b = g.sum(axis=(0, 2, 3)) if self.next[2] is not None else None
        return grad_x, grad_w, grad_b


class MaxPool2dFn(Function):
    """The maximum of each window (padding is -inf). The first maximum in the window's row-major order
    wins ties and receives the whole gradient, as in PyTorch; a NaN counts as the maximum.

    With ``return_indices`` a second (int64) output gives each winner's index into the input's
    H·W plane. Only the boolean one-hot of the winners is kept: backward folds the gradient
    placed at the winners.
    """

    def forward(self, x, win, return_indices=False):
        xp = self.xp
        n, c, h, w = x.shape
        kh, kw = win.kernel
        windows = unfold_array(xp, x, win, value=-np.inf).reshape((n, c, kh * kw) + tuple(win.out))
        out = windows.max(axis=2)
        # the first maximum of each window, by a running "taken" mask (an argmax over a middle axis is
        # several times slower); a NaN makes the maximum NaN and is its own winner
        winner = (windows == out[:, :, None]) | xp.isnan(windows)
        taken = winner[:, :, 0].copy()
        for k in range(1, kh * kw):
            winner[:, :, k] &= ~taken
            taken |= winner[:, :, k]
        self.win, self.in_shape = win, x.shape
        self.save_for_backward(winner)
        if not return_indices:
            return out
        first = (winner * xp.arange(kh * kw).reshape(kh * kw, 1, 1)).sum(axis=2)
        (sh, sw), (dh, dw), ((pt, _), (pl, _)) = win.stride, win.dilation, win.pads
        rows = xp.arange(win.out[0]).reshape(-1, 1) * sh - pt + (first // kw) * dh
        cols = xp.arange(win.out[1]) * sw - pl + (first % kw) * dw
        return out, rows * w + cols

    def backward(self, g, g_indices=None):
        (winner,) = self.saved
        if g is None:  # only the indices were used: they carry no gradient
            return None
        n, c = g.shape[:2]
        spread = self.xp.where(winner, self.xp.expand_dims(g, 2), 0.0)
        return fold(self, spread.reshape((n, c) + tuple(self.win.kernel) + tuple(self.win.out)), self.in_shape, self.win)


def _constant(fn, value):
    """``value`` (a number or a device array that does not depend on the inputs) as an operand of
    ``fn``'s backward: unchanged on arrays, a constant Tensor in a ``create_graph`` backward (whose
    ``xp.broadcast_to`` wraps arrays)."""
    if isinstance(value, (int, float)):
        return value
    return fn.xp.broadcast_to(value, value.shape)


class AvgPool2dFn(Function):
    """The mean of each window: its sum divided by ``divisor`` (a number, or an (OH, OW) array when
    the count of each window differs: ``count_include_pad=False`` or windows past the edge in
    ``ceil_mode``). Backward spreads g / divisor evenly over each window and folds it."""

    def forward(self, x, win, divisor):
        self.win, self.in_shape, self.divisor = win, x.shape, divisor
        sums = unfold_array(self.xp, x, win).sum(axis=(2, 3))
        sums /= divisor
        return sums

    def backward(self, g):
        n, c = g.shape[:2]
        kh, kw = self.win.kernel
        share = (g / _constant(self, self.divisor)).reshape((n, c, 1, 1) + tuple(self.win.out))
        spread = self.xp.broadcast_to(share, (n, c, kh, kw) + tuple(self.win.out))
        return fold(self, spread, self.in_shape, self.win)


class AdaptiveAvgPool2dFn(Function):
    """Averages over windows that tile the input (PyTorch's rule: output i covers
    [floor(i·In/Out), ceil((i+1)·In/Out))). A window's mean is separable, so the op is
    y = A_H x A_Wᵀ with the averaging matrices A (Out, In); backward: A_Hᵀ g A_W."""

    def forward(self, x, rows, cols):
        self.rows, self.cols = rows, cols  # constant device matrices, made by nn.functional_conv
        return rows @ x @ cols.T

    def backward(self, g):
        return self.xp.matmul(self.xp.matmul(self.rows.T, g), self.cols)


def adaptive_matrix(in_size, out_size, dtype) -> np.ndarray:
    """Host (out_size, in_size) averaging matrix: row i holds 1/len over [floor(i·In/Out), ceil((i+1)·In/Out))."""
    matrix = np.zeros((out_size, in_size), dtype=dtype)
    for i in range(out_size):
        start, end = (i * in_size) // out_size, -((-(i + 1) * in_size) // out_size)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix
