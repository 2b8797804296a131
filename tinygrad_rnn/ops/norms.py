"""Vector norms and the ops built on them: the p-norm along dims, and cosine similarity.

Both follow PyTorch's backward where the plain formula breaks down: the
gradient of a norm that is 0 is 0 (not NaN), and cosine similarity clamps
each norm to ``eps`` for the value only, as ``torch.cosine_similarity`` does.

Their backwards also run on Tensors (``create_graph=True``): the norm is saved
as the output array itself, and cosine similarity's derived values are
recomputed from the inputs by ``graph_saved``.
"""
from __future__ import annotations

import math

from ..autograd import Function
from .reduce import _keepdims_shape


class VectorNorm(Function):
    """(Σ |x|^p)^(1/p) over ``axis`` (a tuple of axes, or None for all); p = inf is max |x|,
    -inf min |x|, 0 the count of non-zeros. Backward as ``torch.linalg.vector_norm``: x/‖x‖ for
    p = 2, sign(x) for p = 1, the gradient shared among the extreme elements for p = ±inf, and
    0 wherever the norm is 0."""

    def forward(self, x, p, axis, keepdim):
        xp = self.xp
        self.p, self.axis = p, axis
        magnitude = xp.abs(x)
        if math.isinf(p):
            if x.size == 0:
                raise ValueError(f"vector_norm: the {p} norm of an empty tensor of shape {tuple(x.shape)} is undefined")
            norm = magnitude.max(axis=axis, keepdims=True) if p > 0 else magnitude.min(axis=axis, keepdims=True)
        elif p == 0:
            norm = (x != 0).sum(axis=axis, keepdims=True).astype(x.dtype)
        elif p == 1:
            norm = magnitude.sum(axis=axis, keepdims=True)
        elif p == 2:
            norm = xp.sqrt((x * x).sum(axis=axis, keepdims=True))
        else:
            norm = (magnitude**p).sum(axis=axis, keepdims=True) ** (1.0 / p)
        if not keepdim:
            norm = norm.reshape(tuple(n for i, n in enumerate(x.shape) if axis is not None and i not in axis))
        # the output array itself, so that a create_graph backward finds it is this op's output
        self.save_for_backward(x, norm)
        return norm

    def backward(self, g):
        xp = self.xp
        x, norm = self.saved
        p = self.p
        shape = _keepdims_shape(x.shape, self.axis)
        g = g.reshape(shape)
        norm = norm.reshape(shape)
        if p == 0:
            return xp.zeros(x.shape, dtype=g.dtype)
        if p == 1:
            return xp.sign(x) * g
        if math.isinf(p):
            magnitude = xp.abs(x)
            extreme = (magnitude == norm) | xp.isnan(magnitude)
            count = extreme.sum(axis=self.axis, keepdims=True).astype(g.dtype)
            return xp.sign(x) * (g / count) * extreme
        zero_norm = norm == 0
        safe_norm = xp.where(zero_norm, 1, norm).astype(norm.dtype, copy=False)
        if p == 2:
            return xp.where(zero_norm, 0, x / safe_norm) * g
        magnitude = xp.abs(x)
        if p < 1:
            zero = x == 0
            scaled = xp.where(zero, 0, xp.sign(x) * xp.where(zero, 1, magnitude) ** (p - 1))
            return scaled * g * norm ** (1 - p)
        scaled = xp.sign(x) * magnitude ** (p - 1) if p < 2 else x * magnitude ** (p - 2)
        return scaled * xp.where(zero_norm, 0, g / safe_norm ** (p - 1))


class CosineSimilarityFn(Function):
    """Σ (x1 / max(‖x1‖, eps)) (x2 / max(‖x2‖, eps)) over ``axis``, the inputs broadcast first.

    As in PyTorch, the clamp to ``eps`` changes the values only: the backward
    differentiates each norm as if unclamped. With a = x1/n1', b = x2/n2' and
    out the result, d out/d x1 = (b - out · x1/‖x1‖) / n1' (x1/‖x1‖ = 0 where ‖x1‖ = 0).

    The inputs are saved as they came (not broadcast), so that a ``create_graph``
    backward finds them; it recomputes the norms, a, b and out from them with
    Tensor ops (:meth:`graph_saved`).
    """

    #: ‖x1‖, ‖x2‖, n1', n2', a, b and out depend on the inputs: handed over (as constants) only for
    #: graph_saved to replace them by their values recomputed from x1 and x2

    def forward(self, x1, x2, axis, eps):
        xp = self.xp
        inputs = x1, x2
        try:
            x1, x2 = xp.broadcast_arrays(x1, x2)
        except ValueError:
            raise ValueError(
                f"cosine_similarity: x1 of shape {tuple(x1.shape)} and x2 of shape {tuple(x2.shape)} do not broadcast"
            ) from None
        n1 = xp.sqrt((x1 * x1).sum(axis=axis, keepdims=True))
        n2 = xp.sqrt((x2 * x2).sum(axis=axis, keepdims=True))
        c1, c2 = xp.maximum(n1, eps), xp.maximum(n2, eps)
        a, b = x1 / c1, x2 / c2
        out = (a * b).sum(axis=axis, keepdims=True)
        self.axis, self.eps, self.shape = axis, eps, x1.shape
        self.save_for_backward(*inputs, n1, n2, c1, c2, a, b, out)
        return out.reshape(tuple(n for i, n in enumerate(out.shape) if i != axis))

    def graph_saved(self, saved):
        xp = self.xp
        x1, x2 = saved[:2]
        axis = (self.axis,)

        def parts(x):
            x = x if tuple(x.shape) == self.shape else xp.broadcast_to(x, self.shape)
            n = VectorNorm.apply(x, p=2.0, axis=axis, keepdim=True)
            c = n + (xp.maximum(n, self.eps) - n).detach()  # the clamp changes the value only
            return n, c, x / c

        n1, c1, a = parts(x1)
        n2, c2, b = parts(x2)
        return x1, x2, n1, n2, c1, c2, a, b, (a * b).sum(axis=self.axis, keepdims=True)

    def backward(self, g):
        xp = self.xp
        x1, x2, n1, n2, c1, c2, a, b, out = self.saved
        g = xp.expand_dims(g, self.axis)

        def unit(x, n):
            return xp.where(n == 0, 0, x / xp.where(n == 0, 1, n).astype(n.dtype, copy=False))

        grad1 = g * (b - out * unit(x1, n1)) / c1 if self.next[0] is not None else None
        grad2 = g * (a - out * unit(x2, n2)) / c2 if self.next[1] is not None else None
        return grad1, grad2
