"""Ops behind in-place assignment: ``x[index] = v`` and ``x.copy_(src)`` as recorded, differentiable steps.

``Tensor.__setitem__`` and the in-place methods (``tensor_inplace.py``) compute
the new value with these ops and write it into the tensor's memory; the ops
themselves never modify their inputs.
"""
from __future__ import annotations

from ..autograd import Function
from ..autograd.graph_mode import is_tensor
from .shape import _is_basic


class SetItem(Function):
    """``x`` with ``x[index] = v`` (``v`` broadcast to the indexed shape), as a new array.

    Backward: x gets the gradient everywhere but at ``index`` (those values were
    overwritten); v gets the gradient at ``index``, summed down to its shape.
    """

    def forward(self, x, v, index):
        out = x.copy()
        try:
            out[index] = v
        except (IndexError, ValueError, TypeError) as exc:
            raise IndexError(
                f"__setitem__: cannot assign a value of shape {tuple(v.shape)} at {index!r} of a tensor of shape "
                f"{tuple(x.shape)} ({exc})"
            ) from None
        self.index = index
        self.value_shape = v.shape
        return out

    def backward(self, g):
        grad_x = None
        if self.next[0] is not None:
            if is_tensor(g):  # a create_graph backward: no writes into a recorded tensor
                grad_x = self.xp.where(self.overwritten(g.shape), 0.0, g)
            else:
                grad_x = g.copy()
                grad_x[self.index] = 0
        grad_v = None
        if self.next[1] is not None:
            picked = g[self.index]
            if not _is_basic(self.index) and not is_tensor(g):
                picked = picked.copy()
            grad_v = picked  # the tape sums it down to v's shape
            if grad_v.ndim < len(self.value_shape):
                grad_v = grad_v.reshape((1,) * (len(self.value_shape) - grad_v.ndim) + tuple(grad_v.shape))
        return grad_x, grad_v


    def overwritten(self, shape):
        """A constant bool mask: True where ``index`` wrote."""
        mask = self.xp.zeros(shape, dtype=bool)
        mask.array[self.index] = True
        return mask


class Fill(Function):
    """A tensor of ``x``'s shape holding ``src`` broadcast (``copy_``, ``fill_``, ``zero_``): x gets no
    gradient (its values are gone), ``src`` gets the gradient summed down to its shape."""

    def forward(self, x, src):
        out = self.xp.empty(x.shape, dtype=x.dtype)
        try:
            out[...] = src
        except ValueError:
            raise ValueError(
                f"copy_: cannot broadcast a source of shape {tuple(src.shape)} to the tensor's shape {tuple(x.shape)}"
            ) from None
        self.src_dtype = src.dtype
        return out

    def backward(self, g):
        return None, g.astype(self.src_dtype, copy=False)
