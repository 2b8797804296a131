"""``torch.nn.functional``'s losses beyond the fused class-index ones: binary_cross_entropy, kl_div,
smooth_l1_loss, huber_loss, and cross-entropy against class probabilities (``F.cross_entropy``
sends a float target of the input's shape here). Re-exported by ``nn.functional``.

Losses compare tensors of one shape and never broadcast input against target
(a mismatch is an error, not PyTorch's warning). Elementwise terms come from
one op of ``ops/losses.py``; the reduction is a plain ``mean``/``sum``.
"""
from __future__ import annotations

import math
import numbers
import warnings

from ..autograd import user_stacklevel
from ..ops import losses as loss_ops
from ..tensor import Tensor
from .functional_args import (
    _broadcastable, _check_reduction, _constant, _pointwise_arguments, _reduce, _require_floating, _same_device,
)

_KL_REDUCTIONS = ("none", "batchmean", "sum", "mean")


def _float_target(op, input, target):
    """The target as a floating tensor of the input's dtype (the cast is differentiable)."""
    if target.dtype.kind != "f":
        raise TypeError(f"{op}: target must be a floating point tensor, got dtype {target.dtype}")
    return target if target.dtype == input.dtype else target.to(dtype=input.dtype)


def _threshold(value, op, arg, allow_zero):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{op}: {arg} must be a finite real number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        expected = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{op}: {arg} must be {expected}, got {value}")
    return float(value)


def binary_cross_entropy(input, target, weight=None, *, reduction="mean") -> Tensor:
    """Binary cross-entropy of probabilities ``input`` (e.g. the output of sigmoid) against targets in
    [0, 1]: -w·[t·log x + (1 - t)·log(1 - x)], each log clamped at -100 as in PyTorch so x = 0 or 1
    stays finite. ``weight`` rescales each element and broadcasts to the input's shape. For logits,
    ``binary_cross_entropy_with_logits`` is the stabler choice."""
    op = "binary_cross_entropy"
    _pointwise_arguments(op, input, target, reduction)
    target = _float_target(op, input, target)
    values = input.array
    if values.size and not bool(((values >= 0) & (values <= 1)).all()):
        raise ValueError(
            f"{op}: every element of input must be a probability in [0, 1] (e.g. the output of sigmoid), "
            f"got values from {float(values.min())} to {float(values.max())}; for logits use "
            "binary_cross_entropy_with_logits"
        )
    loss = loss_ops.BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        weight = _constant(weight, input, op, "weight")
        _broadcastable(op, "weight", weight, input.shape)
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(input, target, *, reduction="mean", log_target=False) -> Tensor:
    """Kullback-Leibler divergence KL(target ‖ q) for log-probabilities ``input`` = log q, summed
    elementwise as t·(log t - input) (``target`` holds probabilities, or log-probabilities with
    ``log_target=True``). ``reduction='batchmean'`` divides the sum by the batch size (dim 0) and is
    the true KL divergence; 'mean' divides by the number of elements (and warns, as PyTorch)."""
    op = "kl_div"
    if reduction not in _KL_REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_KL_REDUCTIONS}, got {reduction!r}")
    _pointwise_arguments(op, input, target, "sum")
    target = _float_target(op, input, target)
    if reduction == "mean":
        warnings.warn(
            "kl_div: reduction='mean' divides the total loss by both the batch size and the support size; "
            "'batchmean' divides only by the batch size and gives the KL divergence of the math definition",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    loss = loss_ops.KLDiv.apply(input, target, log_target=bool(log_target))
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim else total
    return _reduce(loss, reduction)


def smooth_l1_loss(input, target, *, reduction="mean", beta=1.0) -> Tensor:
    """Smooth L1 loss of d = input - target: ½d²/β where |d| < β, |d| - ½β elsewhere (plain L1 when
    β = 0): quadratic near zero, so its gradient shrinks there, and linear (robust to outliers) beyond."""
    op = "smooth_l1_loss"
    _pointwise_arguments(op, input, target, reduction)
    beta = _threshold(beta, op, "beta", allow_zero=True)
    target = _float_target(op, input, target)
    return _reduce(loss_ops.SmoothL1.apply(input, target, beta=beta, huber=False), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None) -> Tensor:
    """Huber loss of d = input - target: ½d² where |d| < δ, δ(|d| - ½δ) elsewhere (δ times
    ``smooth_l1_loss`` with β = δ). ``weight``, of the input's shape, multiplies each element."""
    op = "huber_loss"
    _pointwise_arguments(op, input, target, reduction)
    delta = _threshold(delta, op, "delta", allow_zero=False)
    target = _float_target(op, input, target)
    loss = loss_ops.SmoothL1.apply(input, target, beta=delta, huber=True)
    if weight is not None:
        _require_floating(weight, op, "weight")
        _same_device(op, ("input", input), ("weight", weight))
        if weight.shape != input.shape:
            raise ValueError(f"{op}: weight must have the input's shape {input.shape}, got {weight.shape}")
        loss = loss * (weight if weight.dtype == input.dtype else weight.to(dtype=input.dtype))
    return _reduce(loss, reduction)


def _soft_cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing) -> Tensor:
    """Cross-entropy against class probabilities ``target`` of the input's shape, as PyTorch:
    -Σ_c w_c t_c log softmax(x)_c per position, t mixed with the uniform distribution by
    ``label_smoothing``; 'mean' divides by the number of positions (not by the weights)."""
    op = "cross_entropy"
    _require_floating(input, op, "input")
    _check_reduction(reduction, op)
    _same_device(op, ("input", input), ("target", target))
    if target.dtype.kind != "f":
        raise TypeError(
            f"{op}: a target of the input's shape {input.shape} holds class probabilities and must be a floating "
            f"point tensor, got dtype {target.dtype}; class indices have the input's shape without the class dim"
        )
    target = _float_target(op, input, target)
    if ignore_index >= 0:
        raise ValueError(
            f"{op}: ignore_index={ignore_index} is not supported with class-probability targets "
            "(a float target of the input's shape); it applies to class indices only"
        )
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have a class dimension, got a 0-d tensor")
    class_dim = 0 if input.ndim == 1 else 1
    num_classes = input.shape[class_dim]
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / num_classes
    terms = input.log_softmax(class_dim) * target
    weight = _constant(weight, input, op, "weight")
    if weight is not None:
        if weight.shape != (num_classes,):
            raise ValueError(f"{op}: expected weight of shape ({num_classes},) (one per class), got {weight.shape}")
        terms = terms * weight.reshape((num_classes,) + (1,) * (input.ndim - 1 - class_dim))
    if reduction == "none":
        return -terms.sum(class_dim)
    total = -terms.sum()
    if reduction == "sum":
        return total
    positions = input.numel() // num_classes if num_classes else 0
    return total * math.nan if positions == 0 else total / positions
