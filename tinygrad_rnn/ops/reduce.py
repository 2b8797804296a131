"""Reductions (sum, mean, max, min, var) and the softmax family.

``axis`` is always a tuple of non-negative ints or ``None`` here; the Tensor
methods normalise PyTorch's ``dim`` argument before calling these.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function


def _keepdims_shape(shape, axis):
    if axis is None:
        return (1,) * len(shape)
    return tuple(1 if i in axis else n for i, n in enumerate(shape))


def _count(shape, axis):
    if axis is None:
        axis = range(len(shape))
    count = 1
    for i in axis:
        count *= shape[i]
    return count


class Sum(Function):
    def forward(self, x, axis=None, keepdim=False):
        self.in_shape = x.shape
        self.axis = axis
        return x.sum(axis=axis, keepdims=keepdim)

    def backward(self, g):
        g = g.reshape(_keepdims_shape(self.in_shape, self.axis))
        return self.xp.broadcast_to(g, self.in_shape)


class Mean(Function):
    def forward(self, x, axis=None, keepdim=False):
        self.in_shape = x.shape
        self.axis = axis
        if x.size == 0:  # NaN, as PyTorch, without NumPy's warning (raised inside NumPy, so not filtered)
            with np.errstate(invalid="ignore", divide="ignore"):
                return x.mean(axis=axis, keepdims=keepdim)
        return x.mean(axis=axis, keepdims=keepdim)

    def backward(self, g):
        g = g.reshape(_keepdims_shape(self.in_shape, self.axis)) / _count(self.in_shape, self.axis)
        return self.xp.broadcast_to(g, self.in_shape)


class Max(Function):
    """Max over ``axis``; tied maxima share the gradient equally."""

    reducer = "max"

    def forward(self, x, axis=None, keepdim=False):
        if x.size == 0:
            raise ValueError(f"{self.reducer}: cannot reduce an empty tensor of shape {tuple(x.shape)}")
        self.axis = axis
        out = getattr(x, self.reducer)(axis=axis, keepdims=True)
        mask = x == out
        self.save_for_backward(mask)
        return out if keepdim else out.reshape(tuple(n for i, n in enumerate(out.shape) if axis is not None and i not in axis))

    def backward(self, g):
        (mask,) = self.saved
        g = g.reshape(_keepdims_shape(mask.shape, self.axis))
        count = mask.sum(axis=self.axis, keepdims=True).astype(g.dtype)
        return mask * (g / count)


class Min(Max):
    reducer = "min"


class Var(Function):
    """Variance with Bessel's ``correction`` (1 = unbiased, PyTorch's default)."""

    def forward(self, x, axis=None, keepdim=False, correction=1):
        n = _count(x.shape, axis)
        if n - correction <= 0:
            raise ValueError(f"var: needs more than {correction} element(s) along the reduced dims, got {n}")
        centred = x - x.mean(axis=axis, keepdims=True)
        self.axis = axis
        self.denominator = n - correction
        self.save_for_backward(x)
        return (centred * centred).sum(axis=axis, keepdims=keepdim) / self.denominator

    def backward(self, g):
        (x,) = self.saved
        centred = x - x.mean(axis=self.axis, keepdims=True)
        g = g.reshape(_keepdims_shape(centred.shape, self.axis))
        return centred * (g * (2 / self.denominator))


class Softmax(Function):
    """exp(x - max) / Σ exp(x - max) along ``axis``; backward y ⊙ (g - Σ g ⊙ y)."""

    def forward(self, x, axis):
        self.axis = axis
        if x.size == 0:  # an empty result (PyTorch's), where max() would find no element
            self.save_for_backward(x)
            return x.copy()
        shifted = x - x.max(axis=axis, keepdims=True)
        out = self.xp.exp(shifted)
        out /= out.sum(axis=axis, keepdims=True)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        (y,) = self.saved
        return y * (g - (g * y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """x - max - log Σ exp(x - max) along ``axis``; backward g - softmax ⊙ Σ g."""

    def forward(self, x, axis):
        self.axis = axis
        if x.size == 0:  # an empty result (PyTorch's), where max() would find no element
            self.save_for_backward(x)
            return x.copy()
        shifted = x - x.max(axis=axis, keepdims=True)
        out = shifted - self.xp.log(self.xp.exp(shifted).sum(axis=axis, keepdims=True))
        self.save_for_backward(out)
        return out

    def backward(self, g):
        (y,) = self.saved
        return g - self.xp.exp(y) * g.sum(axis=self.axis, keepdims=True)


def _squeezed(out, axis, keepdim):
    """A keepdims result with the reduced ``axis`` (a tuple or None) dropped unless ``keepdim``."""
    if keepdim:
        return out
    return out.reshape(tuple(n for i, n in enumerate(out.shape) if axis is not None and i not in axis))


class LogSumExp(Function):
    """log Σ exp(x) over ``axis``, computed as m + log Σ exp(x - m) with m the (finite) max, so large
    inputs do not overflow; backward g ⊙ exp(x - out), the softmax."""

    def forward(self, x, axis, keepdim=False):
        xp = self.xp
        self.axis = axis
        if _count(x.shape, axis) == 0:  # an empty sum: log 0 = -inf (PyTorch's answer), where max finds nothing
            out = xp.full(_keepdims_shape(x.shape, axis), -xp.inf, dtype=x.dtype)
        else:
            top = x.max(axis=axis, keepdims=True)
            top = xp.where(xp.isfinite(top), top, xp.zeros((), dtype=x.dtype))  # all -inf (or an inf) stays exact
            out = xp.log(xp.exp(x - top).sum(axis=axis, keepdims=True)) + top
        self.save_for_backward(x, out)
        return _squeezed(out, axis, keepdim)

    def backward(self, g):
        x, out = self.saved
        return g.reshape(out.shape) * self.xp.exp(x - out)

    def graph_saved(self, saved):
        """``out`` with its dims kept is no output of this op: recomputed from ``x`` (recorded)."""
        x, out = saved
        return x, out if out is not None else LogSumExp.apply(x, axis=self.axis, keepdim=True)


class CumSum(Function):
    """Running sums along ``axis`` (integers and bools sum in int64, as in PyTorch); the gradient of
    element i is the sum of the output gradients from i on: a reversed cumulative sum."""

    def forward(self, x, axis):
        self.axis = axis
        dtype = x.dtype if x.dtype.kind in "fc" else "int64"
        return self.xp.cumsum(x, axis=axis, dtype=dtype)

    def backward(self, g):
        xp = self.xp
        return xp.flip(xp.cumsum(xp.flip(g, axis=self.axis), axis=self.axis), axis=self.axis)
