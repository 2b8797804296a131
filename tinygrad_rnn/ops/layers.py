"""Fused differentiable ops behind the basic layers: linear, embedding, dropout, layer norm.

Each is one :class:`~tinygrad_rnn.autograd.Function` (one node in the graph)
with a hand-written backward. Argument checking happens in
``tinygrad_rnn.nn.functional``; these work on raw backend arrays. The ``Fn``
suffix tells them from the modules of the same name (``nn.Linear`` calls ``LinearFn``).
"""
from __future__ import annotations

import math

import numpy as np

from .. import capture
from ..autograd import Function
from ..autograd.graph_mode import is_tensor
from .shape import ScatterAdd


def _isub(a, b):
    """``a - b``, written into ``a`` when both are arrays (``a`` a temporary of the backward); a new
    Tensor in a ``create_graph`` backward, where writing in place would overwrite a recorded value."""
    if is_tensor(a) or is_tensor(b):
        return a - b
    a -= b
    return a


def _imul(a, b):
    """``a * b``, written into ``a`` when both are arrays (see :func:`_isub`)."""
    if is_tensor(a) or is_tensor(b):
        return a * b
    a *= b
    return a


def _iadd(a, b):
    """``a + b``, written into ``a`` when both are arrays (see :func:`_isub`)."""
    if is_tensor(a) or is_tensor(b):
        return a + b
    a += b
    return a


class LinearFn(Function):
    """y = x Wᵀ + b over the last axis of x.

    Backward: dx = g W, dW = Σ gᵀ x and db = Σ g, the sums running over every
    leading (batch, time) axis.
    """

    def forward(self, x, weight, bias=None):
        # leading axes flattened: one 2-D matmul instead of NumPy's stack of per-batch products
        out = (x.reshape(-1, x.shape[-1]) @ weight.T).reshape(x.shape[:-1] + (weight.shape[0],))
        if bias is not None:
            out += bias
        self.save_for_backward(x, weight)
        return out

    def backward(self, g):
        x, weight = self.saved
        rows = g.reshape(-1, g.shape[-1])
        grad_x = (rows @ weight).reshape(x.shape) if self.next[0] is not None else None
        grad_w = grad_b = None
        if self.next[1] is not None:
            grad_w = rows.T @ x.reshape(-1, x.shape[-1])
        if len(self.next) == 3 and self.next[2] is not None:
            grad_b = rows.sum(axis=0)
        return (grad_x, grad_w) if len(self.next) == 2 else (grad_x, grad_w, grad_b)


class EmbeddingFn(Function):
    """out[...] = weight[indices[...]]: a row lookup.

    Backward is one scatter-add of the output gradient into a zero gradient of
    the weight's shape (repeated indices add up); the ``padding_idx`` row is
    zeroed so it never receives a gradient. With ``scale_grad_by_freq`` each
    row of that gradient is divided by how many times its index occurs in
    ``indices`` (PyTorch's option: frequent words of a batch do not get
    outsized steps). A ``create_graph`` backward records the scatter as a
    :class:`~tinygrad_rnn.ops.shape.ScatterAdd` op (its own backward reads the
    rows back) and the scaling as a product with a constant, so the weight's
    gradient is differentiable in ``g``.
    """

    def forward(self, indices, weight, padding_idx=None, scale_grad_by_freq=False):
        self.weight_shape = weight.shape
        self.padding_idx = padding_idx
        self.scale_grad_by_freq = scale_grad_by_freq
        self.save_for_backward(indices)
        return self.xp.take(weight, indices, axis=0)

    def _inverse_counts(self, indices, dtype):
        """(num_embeddings, 1): 1 / (occurrences of each row's index in ``indices``), 1 for rows not looked up.
        Counted by a scatter-add on the device (no host read, so it can run in a captured CUDA graph)."""
        xp = self.xp
        counts = xp.zeros((self.weight_shape[0],), dtype=dtype)
        flat = indices.reshape(-1)
        self.backend.scatter_add(counts, flat, xp.ones(flat.shape, dtype=dtype))
        return (1 / xp.maximum(counts, 1))[:, None]

    def backward(self, g):
        (indices,) = self.saved
        grad = self.xp.zeros(self.weight_shape, dtype=g.dtype)
        self.backend.scatter_add(grad, indices, g)
        if self.scale_grad_by_freq:
            grad *= self._inverse_counts(indices, g.dtype)
        if self.padding_idx is not None:
            grad[self.padding_idx] = 0
        return None, grad

    def graph_backward(self, g):
        (indices,) = self.saved
        grad = ScatterAdd.apply(g, index=(indices,), shape=self.weight_shape)
        if self.scale_grad_by_freq:
            grad = grad * g._make(self._inverse_counts(indices, g.dtype), self.backend)  # a constant of g's device
        if self.padding_idx is not None:
            padding = np.zeros((self.weight_shape[0], 1), dtype=bool)  # host mask: a (V, 1) constant
            padding[self.padding_idx] = True
            grad = grad.masked_fill(padding, 0.0)
        return None, grad


class DropoutFn(Function):
    """Inverted dropout: y = x ⊙ m / (1 - p) with m ~ Bernoulli(1 - p) drawn from the device's generator.

    Only the boolean keep-mask is saved; backward is g ⊙ m / (1 - p).
    """

    def forward(self, x, p):
        capture.refuse("dropout draws new random numbers", "a replay would reuse the captured ones: capture "
                       "the step of a model without dropout (p=0) or in eval mode")
        draw_dtype = x.dtype if x.dtype.itemsize == 8 else "float32"
        keep = self.backend.rand(x.shape, draw_dtype) >= p
        self.scale = 1.0 / (1.0 - p) if p < 1 else 0.0
        self.save_for_backward(keep)
        out = x * keep
        out *= self.scale
        return out

    def backward(self, g):
        (keep,) = self.saved
        return _imul(g * keep, self.scale)


class LayerNormFn(Function):
    """y = (x - μ) / √(σ² + ε) ⊙ γ + β, with μ and the biased σ² over the trailing ``axes``.

    Backward, with x̂ the normalised input and ĝ = g ⊙ γ:
    dx = (ĝ - mean(ĝ) - x̂ ⊙ mean(ĝ ⊙ x̂)) / √(σ² + ε), dγ = Σ g ⊙ x̂, dβ = Σ g.

    x̂ and 1/√(σ² + ε) are saved with x itself: a ``create_graph`` backward
    recomputes the first two from x with Tensor ops (:meth:`graph_saved`), so
    that they depend on x in the recorded graph.
    """

    #: x̂ and 1/√(σ² + ε) depend on x: they are handed over (as constants) only for
    #: :meth:`graph_saved` to replace them by their values recomputed from x

    def forward(self, x, *affine, axes, eps, has_weight, has_bias):
        xp = self.xp
        centred = x - x.mean(axis=axes, keepdims=True)
        var = (centred * centred).mean(axis=axes, keepdims=True)
        rstd = 1 / xp.sqrt(var + eps)
        xhat = centred
        xhat *= rstd
        weight = affine[0] if has_weight else None
        bias = affine[-1] if has_bias else None
        self.axes, self.eps = axes, eps
        self.has_weight, self.has_bias = has_weight, has_bias
        self.save_for_backward(xhat, rstd, weight, x)
        out = xhat * weight if has_weight else xhat.copy()
        if has_bias:
            out += bias
        return out

    def graph_saved(self, saved):
        _, _, weight, x = saved
        centred = x - x.mean(axis=self.axes, keepdims=True)
        rstd = 1 / ((centred * centred).mean(axis=self.axes, keepdims=True) + self.eps).sqrt()
        return centred * rstd, rstd, weight, x

    def backward(self, g):
        xhat, rstd, weight, _ = self.saved
        ghat = g * weight if self.has_weight else g
        inner = ghat - ghat.mean(axis=self.axes, keepdims=True)
        inner = _isub(inner, xhat * (ghat * xhat).mean(axis=self.axes, keepdims=True))
        inner = _imul(inner, rstd)
        grads = [inner]
        if self.has_weight:
            grads.append(g * xhat if self.next[1] is not None else None)
        if self.has_bias:
            grads.append(g)
        return tuple(grads)


def embedding_renorm_(backend, weight, indices, max_norm, norm_type):
    """Rescale, in place, the looked-up rows whose ``norm_type``-norm exceeds ``max_norm`` to
    norm ``max_norm`` (scale max_norm / (norm + 1e-7), as PyTorch does). Arrays of ``backend``; not differentiated."""
    xp = backend.xp
    rows = xp.unique(indices.reshape(-1))
    selected = weight[rows]
    magnitude = xp.abs(selected)
    if math.isinf(norm_type):
        norms = magnitude.max(axis=1)
    else:
        norms = (magnitude**norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(weight.dtype)
    weight[rows] = selected * scale[:, None]
