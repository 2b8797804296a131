"""Ops that move whole rows by an index of distinct positions: what packing and padding sequences do.

``nn.utils.rnn`` packs a padded batch (``pack_padded_sequence``) by taking
the real rows of the flattened ``(T*B, *)`` tensor, and pads a packed one
(``pad_packed_sequence``) by putting its rows into a tensor filled with the
padding value. Each is ONE indexing pass forward and one backward. The
positions are distinct, so the backward is a plain indexed assignment or
read, never an accumulating scatter (``np.add.at`` is many times slower).
"""
from __future__ import annotations

from ..autograd import Function


def _at(axis, index):
    return (slice(None),) * axis + (index,)


class TakeRows(Function):
    """``out = x.take(index, axis)`` with distinct ``index`` entries (a 1-D integer array on x's device);
    backward puts the gradient back at those positions, zeros elsewhere."""

    def forward(self, x, index, axis=0):
        self.index, self.axis, self.size = index, axis, x.shape[axis]
        return self.xp.take(x, index, axis=axis)

    def backward(self, g):
        shape = list(g.shape)
        shape[self.axis] = self.size
        grad = self.xp.zeros(tuple(shape), dtype=g.dtype)
        grad[_at(self.axis, self.index)] = g
        return grad

    def graph_backward(self, g):
        """The backward as an op, for a ``create_graph`` backward."""
        return PutRows.apply(g, index=self.index, size=self.size, axis=self.axis)


class PutRows(Function):
    """``x`` put at distinct positions ``index`` (a 1-D integer array on x's device) along ``axis`` of a
    new array of ``size`` there, filled with ``fill`` elsewhere; backward reads the gradient at those
    positions (the filled ones get none)."""

    def forward(self, x, index, size, axis=0, fill=0.0):
        shape = list(x.shape)
        shape[axis] = size
        out = self.xp.full(tuple(shape), fill, dtype=x.dtype)
        out[_at(axis, index)] = x
        self.index, self.axis = index, axis
        return out

    def backward(self, g):
        return self.xp.take(g, self.index, axis=self.axis)

    def graph_backward(self, g):
        """The backward as an op, for a ``create_graph`` backward."""
        return TakeRows.apply(g, index=self.index, axis=self.axis)


__all__ = ["TakeRows", "PutRows"]
