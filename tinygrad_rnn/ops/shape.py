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
        return self.xp.transpose(g, self.inverse)


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
        return _scatter(self, g, self.index, self.in_shape)

    def graph_backward(self, g):
        return ScatterAdd.apply(g, index=self.index, shape=self.in_shape)


def _scatter(fn, g, index, shape):
    """Zeros of ``shape`` with ``g`` added at ``index`` (repeated indices add up)."""
    grad = fn.xp.zeros(shape, dtype=g.dtype)
    if _is_basic(index):
        grad[index] = g
    else:
        fn.backend.scatter_add(grad, index, g)
    return grad


class ScatterAdd(Function):
    """GetItem's backward as an op (zeros with ``g`` added at ``index``), so that a ``create_graph``
    backward records it; its own backward reads ``g[index]`` back."""

    def forward(self, g, index, shape):
        self.index = index
        return _scatter(self, g, index, shape)

    def backward(self, g):
        return g[self.index]


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


class Repeat(Function):
    """``x`` tiled ``sizes[d]`` times along each dim (``Tensor.repeat``; leading dims are added when
    ``sizes`` is longer); backward sums the copies of each element."""

    def forward(self, x, sizes):
        self.in_shape = x.shape
        self.padded = (1,) * (len(sizes) - x.ndim) + tuple(x.shape)
        self.sizes = sizes
        return self.xp.tile(x.reshape(self.padded), sizes)

    def backward(self, g):
        split = []
        for times, n in zip(self.sizes, self.padded):
            split += [times, n]
        copies = tuple(range(0, 2 * len(self.sizes), 2))
        return g.reshape(split).sum(axis=copies).reshape(self.in_shape)


class Flip(Function):
    """The order of elements reversed along ``axes`` (a copy, as in PyTorch); the gradient flips back."""

    def forward(self, x, axes):
        self.axes = axes
        return self.xp.flip(x, axis=axes).copy()

    def backward(self, g):
        return self.xp.flip(g, axis=self.axes)


class Unbind(Function):
    """The slices of ``x`` along ``axis``, one output each; backward stacks their gradients (zeros for
    slices nothing used)."""

    def forward(self, x, axis):
        self.axis = axis
        self.slice_shape = x.shape[:axis] + x.shape[axis + 1 :]
        lead = (slice(None),) * axis
        return tuple(x[lead + (i,)] for i in range(x.shape[axis]))

    def backward(self, *grads):
        dtype = next(g.dtype for g in grads if g is not None)
        zeros = None
        parts = []
        for g in grads:
            if g is None:
                if zeros is None:
                    zeros = self.xp.zeros(self.slice_shape, dtype=dtype)
                g = zeros
            parts.append(g)
        return self.xp.stack(parts, axis=self.axis)
