"""Argument checks shared by ``nn.functional`` and its companion modules (``functional_activations``,
``functional_losses``): every error names the call and the argument, says what was expected and
shows what was given.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor

_REDUCTIONS = ("none", "mean", "sum")


def _tensor(value, op, arg):
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {arg} must be a Tensor, got {type(value).__name__}")
    return value


def _require_floating(value, op, arg):
    _tensor(value, op, arg)
    if value.dtype.kind != "f":
        raise TypeError(f"{op}: {arg} must be a floating point tensor, got dtype {value.dtype}")
    return value


def _same_device(op, first, *others):
    for name, t in others:
        if t is not None and t.device != first[1].device:
            raise RuntimeError(
                f"{op}: {first[0]} is on {first[1].device} but {name} is on {t.device}; move them with .to(device)"
            )


def _check_reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _constant(value, like, op, arg):
    """An optional per-class/per-element tensor used as a constant: detached, in ``like``'s dtype."""
    if value is None:
        return None
    _require_floating(value, op, arg)
    _same_device(op, ("input", like), (arg, value))
    value = value.detach()
    return value if value.dtype == like.dtype else value.to(dtype=like.dtype)


def _pointwise_arguments(op, input, target, reduction):
    _require_floating(input, op, "input")
    _tensor(target, op, "target")
    _check_reduction(reduction, op)
    _same_device(op, ("input", input), ("target", target))
    if input.shape != target.shape:
        raise ValueError(
            f"{op}: input of shape {input.shape} and target of shape {target.shape} differ; "
            "reshape one of them explicitly (losses do not broadcast)"
        )


def _broadcastable(op, name, value, shape):
    try:
        ok = np.broadcast_shapes(value.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{op}: {name} of shape {value.shape} does not broadcast to the input's shape {shape}")
