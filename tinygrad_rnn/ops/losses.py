"""Fused differentiable losses: softmax cross-entropy, negative log likelihood, BCE with logits, and the
elementwise BCE on probabilities, KL divergence and smooth L1 / Huber.

Class-index losses take PyTorch's layout: the input is ``(N, C)`` or
``(N, C, d1, ...)`` with the class axis at 1, and the target holds the class
of each of the other positions. Inside, the input is viewed as a ``(M, C)``
matrix of rows, one per target. Argument checking happens in
``tinygrad_rnn.nn.functional``; these work on raw backend arrays.

Each backward also runs on Tensors for a ``create_graph=True`` backward
(``autograd/graph_mode.py``): a value that forward derived from the inputs
(softmax probabilities, log terms) is saved next to those inputs and
recomputed from them with Tensor ops by the op's ``graph_saved``, so that the
second derivative sees how it depends on them.
"""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..autograd.graph_mode import is_tensor
from .layers import _iadd, _imul, _isub


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


def _hits(xp, safe, num_classes):
    """(M, C) bools: True at each row's target class. A create_graph backward uses it where the array
    backward writes to (or reads from) ``[rows, safe]``."""
    return xp.arange(num_classes).reshape((1, num_classes)) == safe.reshape((-1, 1))


def _at_targets(xp, safe, values, num_classes):
    """A create_graph backward's (M, C) Tensor holding ``values`` (one per row, or one for all) at each
    row's target class ``safe`` and 0 elsewhere."""
    return xp.where(_hits(xp, safe, num_classes), _column(values), 0)


def _pick_targets(xp, matrix, safe):
    """``matrix[i, safe[i]]`` for every row i, arrays or (create_graph) Tensors."""
    if is_tensor(matrix):
        return xp.where(_hits(xp, safe, matrix.shape[1]), matrix, 0).sum(axis=1)
    return matrix[xp.arange(matrix.shape[0]), safe]


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

    def _row_scale(self, g, row_weight):
        """The upstream gradient as one factor per row (dL/d per_row); 0-d when the same for every row."""
        if self.reduction == "none":
            return g.reshape(-1)
        if self.reduction == "sum":
            return g
        if isinstance(self.denominator, int):
            return g / g.dtype.type(self.denominator)
        # a create_graph backward sums the row weights again: they depend on the class weights
        denominator = row_weight.sum() if is_tensor(row_weight) else self.denominator
        # every row weight is 0 when the denominator is: the gradient is then 0, as in PyTorch
        return g / self.xp.where(denominator == 0, 1, denominator).astype(g.dtype)

    def _graph_row_weight(self, safe, valid, row_weight, weight):
        """The row weights of a create_graph backward: picked from the class weights again (a Tensor
        that may require grad), or the constant ignore mask when there are none."""
        if weight is None:
            return row_weight
        xp = self.xp
        picked = _pick_targets(xp, xp.broadcast_to(weight.reshape((1, -1)), (safe.shape[0], weight.shape[0])), safe)
        return picked if valid is None else xp.where(valid, picked, 0)

    def _weight_grad(self, scale, target_loss, smooth_loss, safe, valid, out, num_classes):
        """dL/dw for class weights w: per row, ``target_loss`` (the unweighted loss at the target class)
        counts for the target's weight and ``smooth_loss`` (per class, label smoothing only) for every
        class's; with 'mean', the denominator Σ w_t adds -s · out at each counted row's target."""
        xp = self.xp
        eps = getattr(self, "eps", 0.0)
        per_row = scale * target_loss
        if eps:
            per_row = per_row * (1 - eps)
        if self.reduction == "mean":
            per_row = per_row - scale * out
        if valid is not None:
            per_row = xp.where(valid, per_row, 0)
        if is_tensor(per_row):
            grad = _at_targets(xp, safe, per_row, num_classes).sum(axis=0)
        else:
            grad = xp.zeros(num_classes, dtype=per_row.dtype)
            self.backend.scatter_add(grad, safe, per_row)
        if eps:
            counted = scale if valid is None else xp.where(valid, scale, 0)
            spread = (smooth_loss * _column(counted)).sum(axis=0) if counted.ndim else smooth_loss.sum(axis=0) * counted
            grad = grad + spread * (eps / num_classes)
        return grad


class CrossEntropy(_ClassLoss):
    """Softmax and negative log likelihood in one numerically stable op.

    Per row with logits x, target t, class weights w (all ones by default) and
    label smoothing ε over C classes, using log p = x - max - log Σ exp(x - max):
    ℓ = (1 - ε) w_t (-log p_t) + (ε / C) Σ_c w_c (-log p_c); ignored rows give 0.
    Backward per row: s · [((1 - ε) w_t + ε W / C) p - (1 - ε) w_t e_t - (ε / C) w],
    with W = Σ_c w_c and s the upstream gradient (divided by Σ w_t for 'mean').
    Only the softmax p, the target rows and x itself are saved; a ``create_graph``
    backward recomputes p from x (:meth:`graph_saved`).
    """

    #: p and the row weights depend on x and the class weights: handed over (as constants) only for
    #: graph_saved to replace them by softmax(x) and the weights picked again

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
        out = self._reduce(per_row, row_weight, reduction)
        # the output is kept only for the class weights' gradient with 'mean'
        self.save_for_backward(probs, index, safe, valid, row_weight, weight, x, out if reduction == "mean" else None)
        return out

    #: the row weights: constant without class weights; graph_saved picks them again when there are some
    constant_saved = (4,)

    def graph_saved(self, saved):
        probs, index, safe, valid, row_weight, weight, x, out = saved
        row_weight = self._graph_row_weight(safe, valid, row_weight, weight)
        return _as_rows(x).softmax(1), index, safe, valid, row_weight, weight, x, out

    def _log_probs(self, x):
        rows = _as_rows(x)
        if is_tensor(rows):
            return rows.log_softmax(1)
        shifted = rows - rows.max(axis=1, keepdims=True)
        return shifted - self.xp.log(self.xp.exp(shifted).sum(axis=1, keepdims=True))

    def backward(self, g):
        probs, index, safe, valid, row_weight, weight, x, out = self.saved
        scale = self._row_scale(g, row_weight)
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
            grad = _isub(grad, _column(smooth_part) if weight is None else _column(smooth_part) * weight)
        if is_tensor(grad):
            grad = grad - _at_targets(self.xp, safe, target_part, num_classes)
        else:
            grad[index, safe] -= target_part
        grad_w = None
        if len(self.next) > 2 and self.next[2] is not None:  # class weights that require grad: rare
            log_probs = self._log_probs(x)
            target_loss = -_pick_targets(self.xp, log_probs, safe)
            grad_w = self._weight_grad(scale, target_loss, -log_probs, safe, valid, out, num_classes)
        return (_from_rows(grad, self.in_shape), None) + ((grad_w,) if len(self.next) > 2 else ())


class NLL(_ClassLoss):
    """Negative log likelihood of log-probabilities: ℓ = -w_t · x_t per row; ignored rows give 0.

    Backward puts -s · w_t at each row's target class and zero elsewhere.
    """

    #: the row weights: constant without class weights (the ignore mask); graph_saved picks them again
    #: from the class weights when there are some
    constant_saved = (1,)

    def graph_saved(self, saved):
        safe, row_weight, valid, weight, x, out = saved
        return safe, self._graph_row_weight(safe, valid, row_weight, weight), valid, weight, x, out

    def forward(self, x, target, *weight, ignore_index, reduction):
        weight = weight[0] if weight else None
        rows, safe, valid, row_weight = self._prepare(x, target, weight, ignore_index)
        index = self.xp.arange(rows.shape[0])
        per_row = -rows[index, safe] * row_weight
        out = self._reduce(per_row, row_weight, reduction)
        # x and the output are kept only for the class weights' gradient
        saved_x = x if weight is not None else None
        self.save_for_backward(safe, row_weight, valid, weight, saved_x, out if reduction == "mean" and weight is not None else None)
        return out

    def backward(self, g):
        safe, row_weight, valid, weight, x, out = self.saved
        scale = self._row_scale(g, row_weight)
        values = -(scale * row_weight)
        if is_tensor(values):
            grad = _at_targets(self.xp, safe, values, self.in_shape[1])
        else:
            grad = self.xp.zeros((safe.shape[0], self.in_shape[1]), dtype=g.dtype)
            grad[self.xp.arange(safe.shape[0]), safe] = values
        grad_w = None
        if len(self.next) > 2 and self.next[2] is not None:  # class weights that require grad: rare
            target_loss = -_pick_targets(self.xp, _as_rows(x), safe)
            grad_w = self._weight_grad(scale, target_loss, None, safe, valid, out, self.in_shape[1])
        return (_from_rows(grad, self.in_shape), None) + ((grad_w,) if len(self.next) > 2 else ())


class BCEWithLogits(Function):
    """Elementwise binary cross-entropy on logits, stable for any x:

    ℓ = (1 - t) x + (1 + (q - 1) t) · softplus(-x), softplus(-x) = log(1 + e^-|x|) + max(-x, 0),
    with q the ``pos_weight`` (1 when absent). Backward: dℓ/dx = (1 - t) - (1 + (q - 1) t) σ(-x),
    dℓ/dt = (q - 1) softplus(-x) - x, dℓ/dq = t · softplus(-x).
    """

    #: softplus(-x): handed over (as a constant) only for graph_saved to recompute it from x

    @staticmethod
    def _softplus_neg(xp, x):
        """softplus(-x) = log(1 + e^-|x|) + max(-x, 0), stable for any x."""
        return _iadd(xp.log1p(xp.exp(-xp.abs(x))), xp.maximum(-x, 0))

    def graph_saved(self, saved):
        x, target, _, *pos_weight = saved
        return (x, target, self._softplus_neg(self.xp, x), *pos_weight)

    def forward(self, x, target, *pos_weight):
        xp = self.xp
        softplus_neg = self._softplus_neg(xp, x)
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
        sigmoid_neg = _imul(_iadd(xp.tanh(x * -0.5), 1), 0.5)
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
    #: log x and log(1 - x): handed over (as constants) only for graph_saved to recompute them from x

    @staticmethod
    def _logs(xp, x):
        """log x and log(1 - x), -inf (without a warning) where x = 0 or 1."""
        rest = 1 - x
        log_x = xp.where(x > 0, xp.log(xp.where(x > 0, x, 1)), -xp.inf).astype(x.dtype, copy=False)
        log_rest = xp.where(rest > 0, xp.log(xp.where(rest > 0, rest, 1)), -xp.inf).astype(x.dtype, copy=False)
        return log_x, log_rest

    def graph_saved(self, saved):
        x, target, _, _ = saved
        return (x, target) + self._logs(self.xp, x)

    def forward(self, x, target):
        xp = self.xp
        log_x, log_rest = self._logs(xp, x)
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

    #: e^t or log t: handed over (as a constant) only for graph_saved to recompute it from t

    def graph_saved(self, saved):
        xp = self.xp
        if self.log_target:
            x, target, _ = saved
            return x, target, xp.exp(target)
        x, target, _, positive = saved
        return x, target, xp.log(xp.where(positive, target, 1)), positive

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

    #: d: handed over (as a constant) only for graph_saved to recompute it as x - t

    def graph_saved(self, saved):
        _, inside, x, target = saved
        return x - target, inside, x, target

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
        self.save_for_backward(d, inside, x, target)
        return out.astype(x.dtype, copy=False)

    def backward(self, g):
        xp = self.xp
        d, inside, _, _ = self.saved
        beta = self.beta
        if self.huber:
            slope = xp.where(inside, d, beta * xp.sign(d))
        elif beta == 0:
            slope = xp.sign(d)
        else:
            slope = xp.where(inside, d / beta, xp.sign(d))
        grad = (g * slope).astype(g.dtype, copy=False)
        return (grad if self.next[0] is not None else None), (-grad if self.next[1] is not None else None)
