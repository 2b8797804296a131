"""Ops that pick elements by position: ``gather`` along a dim, and the triangles ``tril``/``triu``.

The Tensor methods check the arguments (index dtype, shapes, bounds); these
ops assume them valid.
"""
from __future__ import annotations

from ..autograd import Function
from .shape import ScatterAdd, _scatter


class Gather(Function):
    """``out[i][j] = x[i][index[i][j]]`` along ``axis`` (``torch.gather``); backward adds the gradient
    back at the gathered positions (repeated indices add up). ``index`` gets no gradient."""

    def forward(self, x, index, axis):
        # Where index is shorter than x in another dim, only the leading part of x is read (as PyTorch does).
        source = x[tuple(slice(None) if d == axis else slice(0, n) for d, n in enumerate(index.shape))]
        self.axis = axis
        self.in_shape = x.shape
        self.save_for_backward(index)
        return self.xp.take_along_axis(source, index, axis=axis)

    def positions(self):
        """The full index of every gathered element: ``index`` along ``axis``, a range along the others."""
        (index,) = self.saved
        xp = self.backend.xp
        return tuple(
            index if d == self.axis else xp.arange(n).reshape([n if k == d else 1 for k in range(index.ndim)])
            for d, n in enumerate(index.shape)
        )

    def backward(self, g):
        return _scatter(self, g, self.positions(), self.in_shape), None

    def graph_backward(self, g):
        return ScatterAdd.apply(g, index=self.positions(), shape=self.in_shape), None


class Tril(Function):
    """The lower triangle of the last two dims (on and below diagonal ``diagonal``), zeros above it."""

    upper = False

    def forward(self, x, diagonal=0):
        xp = self.xp
        rows, cols = x.shape[-2:]
        if self.upper:
            keep = ~xp.tri(rows, cols, k=diagonal - 1, dtype=bool)
        else:
            keep = xp.tri(rows, cols, k=diagonal, dtype=bool)
        self.save_for_backward(keep)
        return xp.where(keep, x, xp.zeros((), dtype=x.dtype))

    def backward(self, g):
        return self.xp.where(self.saved[0], g, self.xp.zeros((), dtype=g.dtype))


class Triu(Tril):
    """The upper triangle of the last two dims (on and above diagonal ``diagonal``), zeros below it."""

    upper = True
