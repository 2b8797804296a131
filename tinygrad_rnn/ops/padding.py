"""Padding ops behind ``F.pad``: a constant border, and the reflect / replicate / circular borders.

Pads are per axis ``(before, after)`` pairs; a negative pad crops. Argument
checking (PyTorch's rules and messages) happens in ``nn.functional_activations``.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from .shape import ScatterAdd


def _crop_and_place(in_size, before, after):
    """(source slice, destination slice) of the input part that survives a (before, after) pad."""
    start, stop = max(-before, 0), in_size - max(-after, 0)
    length = max(stop - start, 0)
    dest = max(before, 0)
    return slice(start, start + length), slice(dest, dest + length)


class ConstantPad(Function):
    """Pads every axis by ``pads[axis] = (before, after)`` with ``value``; backward keeps the
    gradient of the positions that came from the input."""

    def forward(self, x, pads, value):
        shape = tuple(n + before + after for n, (before, after) in zip(x.shape, pads))
        out = self.xp.full(shape, value, dtype=x.dtype)
        pieces = [_crop_and_place(n, before, after) for n, (before, after) in zip(x.shape, pads)]
        self.source = tuple(s for s, _ in pieces)
        self.dest = tuple(d for _, d in pieces)
        self.in_shape = x.shape
        out[self.dest] = x[self.source]
        return out

    def backward(self, g):
        grad = self.xp.zeros(self.in_shape, dtype=g.dtype)
        grad[self.source] = g[self.dest]
        return grad


def border_index(size, before, after, mode) -> np.ndarray:
    """Host int64 indices into an axis of ``size`` that build the padded axis for ``mode``.

    As PyTorch: 'reflect' and 'replicate' mirror or repeat the edges of the whole
    axis (a negative pad only crops the result), 'circular' wraps around what is
    left of the axis after cropping."""
    if mode == "circular":
        start = max(-before, 0)
        kept = size - start - max(-after, 0)
        return np.arange(-max(before, 0), kept + max(after, 0), dtype=np.int64) % kept + start
    source = np.arange(-before, size + after, dtype=np.int64)
    if mode == "replicate":
        return np.clip(source, 0, size - 1)
    period = 2 * (size - 1)  # "reflect": mirrored about the edge elements, which are not repeated
    if period == 0:
        return np.zeros_like(source)
    folded = np.abs(source) % period
    return np.where(folded >= size, period - folded, folded)


class IndexPad(Function):
    """Builds each padded axis by gathering the input at ``border_index`` positions (reflect,
    replicate, circular); backward adds the gradient of every copy back to its source."""

    def forward(self, x, pads, mode):
        self.steps = []
        for axis, (before, after) in enumerate(pads):
            if before == 0 and after == 0:
                continue
            index = self.backend.asarray(border_index(x.shape[axis], before, after, mode))
            self.steps.append((axis, x.shape, index))
            x = self.xp.take(x, index, axis=axis)
        return x if self.steps else x.copy()  # a new array even when nothing is padded

    def backward(self, g):
        for axis, shape, index in reversed(self.steps):
            grad = self.xp.zeros(shape, dtype=g.dtype)
            self.backend.scatter_add(grad, (slice(None),) * axis + (index,), g)
            g = grad
        return g

    def graph_backward(self, g):
        for axis, shape, index in reversed(self.steps):
            g = ScatterAdd.apply(g, index=(slice(None),) * axis + (index,), shape=shape)
        return g
