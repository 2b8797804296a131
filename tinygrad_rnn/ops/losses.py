"""Fused differentiable losses: softmax cross-entropy, negative log likelihood, BCE with logits, and the
elementwise BCE on probabilities, KL divergence and smooth L1 / Huber.

Class-index losses take PyTorch's layout: the input is ``(N, C)`` or
``(N, C, d1, ...)`` with the class axis at 1, and the target holds the class
of each of the other positions. Inside, the input is viewed as a ``(M, C)``
matrix of rows, one per target. Argument checking happens in
``tinygrad_rnn.nn.functional``; these work on raw backend arrays.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function


def _as_rows(x):
    """(N, C, d1, ...) → (N·d1·..., C), the class axis last."""
    return (x if x.ndim == 2 else x.reshape(x.shape[0], x.shape[1], -1).swapaxes(1, 2)).reshape(-1, x.shape[1])


def _from_rows(rows, shape):
    """Inverse of :func:`_as_rows` for a gradient of the input's ``shape``."""
    if len(shape) == 2:
        return rows
    n, c = shape[0], shape[1]
    return rows.reshape(n, -1, c).swapaxes(1, 2).reshape(shape)


def _column(factors):
    """Per-row factors (M,) as a column (M, 1) that scales the rows of a (M, C) matrix; 0-d stays 0-d."""
    return factors[:, None] if factors.ndim else factors


class _ClassLoss(Function):
    """Shared bookkeeping: target rows, ignored positions, per-row weights and the reduction."""

    def _prepare(self, x, target, weight, ignore_index, all_counted=False):
        """(rows, safe labels, valid mask, per-row weights). With ``all_counted`` (the caller checked
        that no target equals ``ignore_index``) the mask and, without class weights, the per-row
        weights are None: every row counts with weight 1, and no work is spent on them."""
        xp = self.xp
        self.in_shape = x.shape
        self.target_shape = target.shape
        rows = _as_rows(x)
        labels = target.reshape(-1)
        if all_counted:
            return rows, labels, None, (weight[labels] if weight is not None else None)
        valid = labels != ignore_index
        safe = xp.where(valid, labels, 0)
        row_weight = weight[safe] * valid if weight is not None else valid.astype(x.dtype)
        return rows, safe, valid, row_weight

    def _reduce(self, per_row, row_weight, reduction):
        """'none' → per-position losses; 'sum' → their sum; 'mean' → Σ / Σ row weights (NaN if all ignored)."""
        self.reduction = reduction
        if reduction == "none":
            return per_row.reshape(self.target_shape)
        total = per_row.sum()
        if reduction == "sum":
            return total
        if row_weight is None:  # every one of the (at least one) rows counts once
            self.denominator = per_row.shape[0]
            return total / total.dtype.type(self.denominator)
        denominator = row_weight.sum()
        self.denominator = denominator
        return total / self.xp.where(denominator == 0, self.xp.nan, denominator).astype(total.dtype)

    def _row_scale(self, g):
        """The upstream gradient as one factor per row (dL/d per_row); 0-d when the same for every row."""
        if self.reduction == "none":
            return g.reshape(-1)
        if self.reduction == "sum":
            return g
        if isinstance(self.denominator, int):
            return g / g.dtype.type(self.denominator)
        # every row weight is 0 when the denominator is: the gradient is then 0, as in PyTorch
        return g / self.xp.where(self.denominator == 0, 1, self.denominator).astype(g.dtype)


class CrossEntropy(_ClassLoss):
    """Softmax and negative log likelihood in one numerically stable op.

    Per row with logits x, target t, class weights w (all ones by default) and
    label smoothing ε over C classes, using log p = x - max - log Σ exp(x - max):
    ℓ = (1 - ε) w_t (-log p_t) + (ε / C) Σ_c w_c (-log p_c); ignored rows give 0.
    Backward per row: s · [((1 - ε) w_t + ε W / C) p - (1 - ε) w_t e_t - (ε / C) w],
    with W = Σ_c w_c and s the upstream gradient (divided by Σ w_t for 'mean').
    Only the softmax p and the target rows are saved.
    """

    def forward(self, x, target, *weight, ignore_index, reduction, label_smoothing, all_counted=False):
        xp = self.xp
        weight = weight[0] if weight else None
        rows, safe, valid, row_weight = self._prepare(x, target, weight, ignore_index, all_counted)
        shifted = rows - rows.max(axis=1, keepdims=True)
        probs = xp.exp(shifted)
        sum_exp = probs.sum(axis=1)
        probs /= sum_exp[:, None]
        log_sum_exp = xp.log(sum_exp)
        index = xp.arange(rows.shape[0])
        per_row = log_sum_exp - shifted[index, safe]
        if row_weight is not None:
            per_row *= row_weight
        eps = label_smoothing
        if eps:
            if weight is None:
                smooth = rows.shape[1] * log_sum_exp - shifted.sum(axis=1)
            else:
                smooth = weight.sum() * log_sum_exp - shifted @ weight
            per_row *= 1 - eps
            per_row += (eps / rows.shape[1]) * (smooth if valid is None else smooth * valid)
        self.eps = eps
        self.save_for_backward(probs, index, safe, valid, row_weight, weight)
        return self._reduce(per_row, row_weight, reduction)

    def backward(self, g):
        probs, index, safe, valid, row_weight, weight = self.saved
        scale = self._row_scale(g)
        num_classes = probs.shape[1]
        eps = self.eps
        target_part = (1 - eps) * scale
        if row_weight is not None:
            target_part = target_part * row_weight
        if not eps:
            grad = probs * _column(target_part)
        else:
            smooth_part = (eps / num_classes) * (scale if valid is None else scale * valid)
            total_weight = num_classes if weight is None else weight.sum()
            grad = probs * _column(target_part + smooth_part * total_weight)
            grad -= _column(smooth_part) if weight is None else _column(smooth_part) * weight
        grad[index, safe] -= target_part
        return (_from_rows(grad, self.in_shape),) + (None,) * (len(self.next) - 1)


class NLL(_ClassLoss):
    """Negative log likelihood of log-probabilities: ℓ = -w_t · x_t per row; ignored rows give 0.

    Backward puts -s · w_t at each row's target class and zero elsewhere.
    """

    def forward(self, x, target, *weight, ignore_index, reduction):
        weight = weight[0] if weight else None
        rows, safe, valid, row_weight = self._prepare(x, target, weight, ignore_index)
        index = self.xp.arange(rows.shape[0])
        per_row = -rows[index, safe] * row_weight
        self.save_for_backward(safe, row_weight)
        return self._reduce(per_row, row_weight, reduction)

    def backward(self, g):
        safe, row_weight = self.saved
        grad = self.xp.zeros((safe.shape[0], self.in_shape[1]), dtype=g.dtype)
        grad[self.xp.arange(safe.shape[0]), safe] = -(self._row_scale(g) * row_weight)
        return (_from_rows(grad, self.in_shape),) + (None,) * (len(self.next) - 1)


class BCEWithLogits(Function):
    """Elementwise binary cross-entropy on logits, stable for any x:

    ℓ = (1 - t) x + (1 + (q - 1) t) · softplus(-x), softplus(-x) = log(1 + e^-|x|) + max(-x, 0),
    with q the ``pos_weight`` (1 when absent). Backward: dℓ/dx = (1 - t) - (1 + (q - 1) t) σ(-x),
    dℓ/dt = (q - 1) softplus(-x) - x, dℓ/dq = t · softplus(-x).
    """

    def forward(self, x, target, *pos_weight):
        xp = self.xp
        softplus_neg = xp.log1p(xp.exp(-xp.abs(x)))
        softplus_neg += xp.maximum(-x, 0)
        out = (1 - target) * x
        if pos_weight:
            out += (1 + (pos_weight[0] - 1) * target) * softplus_neg
        else:
            out += softplus_neg
        self.save_for_backward(x, target, softplus_neg, *pos_weight)
        return out

    def backward(self, g):
        x, target, softplus_neg, *pos_weight = self.saved
        xp = self.xp
        sigmoid_neg = xp.tanh(x * -0.5)
        sigmoid_neg += 1
        sigmoid_neg *= 0.5
        grad_x = grad_t = grad_q = None
        if not pos_weight:
            if self.next[0] is not None:
                grad_x = g * ((1 - target) - sigmoid_neg)
            if self.next[1] is not None:
                grad_t = g * -x
            return grad_x, grad_t
        q = pos_weight[0]
        if self.next[0] is not None:
            grad_x = g * ((1 - target) - (1 + (q - 1) * target) * sigmoid_neg)
        if self.next[1] is not None:
            grad_t = g * ((q - 1) * softplus_neg - x)
        if self.next[2] is not None:
            grad_q = g * (target * softplus_neg)
        return grad_x, grad_t, grad_q


class BinaryCrossEntropy(Function):
    """Elementwise binary cross-entropy of probabilities x against targets t, as PyTorch computes it:

    ℓ = -(t · max(log x, -100) + (1 - t) · max(log(1 - x), -100)), the logs clamped so that
    x = 0 or 1 gives a finite loss. Backward: dℓ/dx = (x - t) / max(x (1 - x), ε) with PyTorch's
    ε (1e-12 rounded to float32), and dℓ/dt = log(1 - x) - log x, unclamped (±inf at x = 0 or 1).
    """

    EPSILON = float(np.float32(1e-12))

    def forward(self, x, target):
        xp = self.xp
        rest = 1 - x
        log_x = xp.where(x > 0, xp.log(xp.where(x > 0, x, 1)), -xp.inf).astype(x.dtype, copy=False)
        log_rest = xp.where(rest > 0, xp.log(xp.where(rest > 0, rest, 1)), -xp.inf).astype(x.dtype, copy=False)
        self.save_for_backward(x, target, log_x, log_rest)
        return -(target * xp.maximum(log_x, -100) + (1 - target) * xp.maximum(log_rest, -100))

    def backward(self, g):
        x, target, log_x, log_rest = self.saved
        grad_x = grad_t = None
        if self.next[0] is not None:
            grad_x = g * (x - target) / self.xp.maximum(x * (1 - x), self.EPSILON)
        if self.next[1] is not None:
            grad_t = g * (log_rest - log_x)
        return grad_x, grad_t


class KLDiv(Function):
    """Elementwise Kullback-Leibler term of log-probabilities x against the target t, as PyTorch:

    ``log_target=False``: ℓ = t log t - t x (0 where t = 0, NaN where t < 0);
    ``log_target=True`` (t holds log-probabilities): ℓ = e^t (t - x).
    Backward: dℓ/dx = -t (or -e^t); dℓ/dt = log t + 1 - x (NaN at t = 0, where
    PyTorch's ``xlogy`` derivative is undefined too), or e^t (t - x + 1).
    """

    def forward(self, x, target, log_target):
        xp = self.xp
        self.log_target = log_target
        if log_target:
            scale = xp.exp(target)
            self.save_for_backward(x, target, scale)
            return scale * (target - x)
        positive = target > 0
        log_t = xp.log(xp.where(positive, target, 1))
        entropy_part = xp.where(positive, target * log_t, xp.where(target == 0, 0, xp.nan))
        self.save_for_backward(x, target, log_t, positive)
        return (entropy_part - target * x).astype(x.dtype, copy=False)

    def backward(self, g):
        xp = self.xp
        grad_x = grad_t = None
        if self.log_target:
            x, target, scale = self.saved
            if self.next[0] is not None:
                grad_x = -g * scale
            if self.next[1] is not None:
                grad_t = g * scale * (target - x + 1)
            return grad_x, grad_t
        x, target, log_t, positive = self.saved
        if self.next[0] is not None:
            grad_x = -g * target
        if self.next[1] is not None:
            grad_t = (g * xp.where(positive, log_t + 1 - x, xp.nan)).astype(g.dtype, copy=False)
        return grad_x, grad_t


class SmoothL1(Function):
    """Elementwise smooth L1 (``huber=False``) or Huber (``huber=True``) loss of d = x - t, threshold β:

    smooth L1: ½ d² / β where |d| < β, else |d| - ½ β (|d| when β = 0);
    Huber:     ½ d² where |d| < β, else β (|d| - ½ β)  (= β · smooth L1).
    Backward: d/β or sign(d) (Huber: d or β sign(d)); the target gets the negative.
    """

    def forward(self, x, target, beta, huber):
        xp = self.xp
        d = x - target
        size = xp.abs(d)
        if beta == 0:
            inside = xp.zeros(d.shape, dtype=bool)
            out = size
        else:
            inside = size < beta
            half_square = 0.5 * d * d
            if huber:
                out = xp.where(inside, half_square, beta * (size - 0.5 * beta))
            else:
                out = xp.where(inside, half_square / beta, size - 0.5 * beta)
        self.beta, self.huber = beta, huber
        self.save_for_backward(d, inside)
        return out.astype(x.dtype, copy=False)

    def backward(self, g):
        xp = self.xp
        d, inside = self.saved
        beta = self.beta
        if self.huber:
            slope = xp.where(inside, d, beta * xp.sign(d))
        elif beta == 0:
            slope = xp.sign(d)
        else:
            slope = xp.where(inside, d / beta, xp.sign(d))
        grad = (g * slope).astype(g.dtype, copy=False)
        return (grad if self.next[0] is not None else None), (-grad if self.next[1] is not None else None)
