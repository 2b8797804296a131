"""Ops that move elements without arithmetic: reshape, permute, expand, indexing, cat, stack."""
from __future__ import annotations

from ..autograd import Function


class Reshape(Function):
    def forward(self, x, shape):
        self.in_shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} ({x.size} elements) into {tuple(shape)}"
            ) from None

    def backward(self, g):
        return g.reshape(self.in_shape)


class Permute(Function):
    def forward(self, x, dims):
        self.inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))
        return x.transpose(dims)

    def backward(self, g):
        return g.transpose(self.inverse)


class Expand(Function):
    """Broadcast to a larger shape (a view); the tape sums the gradient back down."""

    def forward(self, x, shape):
        try:
            return self.xp.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"expand: cannot expand shape {tuple(x.shape)} to {tuple(shape)}") from None

    def backward(self, g):
        return g


def _is_basic(index):
    """True when ``index`` uses only ints, slices, None and Ellipsis (no element repeats)."""
    items = index if type(index) is tuple else (index,)
    return all(item is None or item is Ellipsis or type(item) in (int, slice) for item in items)


class GetItem(Function):
    """``x[index]``; backward scatters the gradient into zeros, adding repeated indices."""

    def forward(self, x, index):
        try:
            out = x[index]
        except (IndexError, ValueError, TypeError) as exc:
            raise IndexError(f"__getitem__: {exc} (tensor of shape {tuple(x.shape)})") from None
        self.index = index
        self.in_shape = x.shape
        return out

    def backward(self, g):
        grad = self.xp.zeros(self.in_shape, dtype=g.dtype)
        if _is_basic(self.index):
            grad[self.index] = g
        else:
            self.backend.scatter_add(grad, self.index, g)
        return grad


class Cat(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        self.bounds = []
        start = 0
        for a in arrays:
            self.bounds.append((start, start + a.shape[axis]))
            start += a.shape[axis]
        return self.xp.concatenate(arrays, axis=axis)

    def backward(self, g):
        lead = (slice(None),) * self.axis
        return tuple(g[lead + (slice(lo, hi),)] for lo, hi in self.bounds)


class Stack(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        return self.xp.stack(arrays, axis=axis)

    def backward(self, g):
        lead = (slice(None),) * self.axis
        return tuple(g[lead + (i,)] for i in range(g.shape[self.axis]))
