"""Training utilities: gradient clipping, cutting a carried hidden state, flattening parameters;
and, in the submodule ``rnn``, packed and padded variable-length sequences (``nn.utils.rnn``).

Clipping works in place on the gradients' own device, with no host round trip
(the returned norm is a device tensor, as in PyTorch).
"""
from __future__ import annotations

import math

import numpy as np

from ...autograd import no_grad
from ...functions import cat
from ...tensor import Tensor


def _parameter_list(parameters, op):
    if isinstance(parameters, Tensor):
        return [parameters]
    try:
        params = list(parameters)
    except TypeError:
        raise TypeError(
            f"{op}: parameters must be a Tensor or an iterable of Tensors, got {type(parameters).__name__}"
        ) from None
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: element {i} of parameters is a {type(p).__name__}, expected a Tensor")
    return params


def _number(value, op, arg) -> float:
    """``value`` as a float (a string such as ``"inf"`` too, as PyTorch's ``norm_type``); a clear error else."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    elif not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    raise TypeError(f"{op}: {arg} must be a number, got {value!r}")


def _grad_norm_power(g, norm_type):
    """Σ|g|^p for a finite p, or max|g| for p = inf (one partial norm, on g's device)."""
    if math.isinf(norm_type):
        return g.abs().amax() if g.numel() else g.new_zeros(())
    if norm_type == 2:
        return (g * g).sum()
    return (g.abs() ** norm_type).sum()


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False) -> Tensor:
    """Scale the gradients in place so that their joint ``norm_type``-norm is at most ``max_norm``.

    The norm is taken over all gradients together, as if concatenated into one
    vector. Every gradient is multiplied by min(1, max_norm / (norm + 1e-6)).
    Returns the total norm before clipping, as a tensor on the gradients' device.
    Parameters whose ``grad`` is None are skipped.
    """
    params = _parameter_list(parameters, "clip_grad_norm_")
    max_norm = _number(max_norm, "clip_grad_norm_", "max_norm")
    if max_norm < 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be non-negative, got {max_norm}")
    norm_type = _number(norm_type, "clip_grad_norm_", "norm_type")
    if norm_type <= 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be positive, got {norm_type}")
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return Tensor(0.0)
    dtype, device = grads[0].dtype, grads[0].device
    with no_grad():
        total = None
        for g in grads:
            if g.device != device:
                raise RuntimeError(
                    f"clip_grad_norm_: gradients are on {device} and {g.device}; clip each device separately"
                )
            part = _grad_norm_power(g, norm_type).to(dtype=dtype)
            if total is None:
                total = part
            elif math.isinf(norm_type):
                total = total.maximum(part)
            else:
                total = total + part
        if not math.isinf(norm_type):
            total = total ** (1.0 / norm_type)
        if error_if_nonfinite and not math.isfinite(float(total)):
            raise RuntimeError(
                f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is non-finite "
                f"({float(total)}); pass error_if_nonfinite=False to clip anyway"
            )
        coefficient = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.array *= coefficient.array.astype(g.dtype)
    return total


def clip_grad_value_(parameters, clip_value) -> None:
    """Clip every gradient element in place to [-clip_value, clip_value]."""
    params = _parameter_list(parameters, "clip_grad_value_")
    clip_value = _number(clip_value, "clip_grad_value_", "clip_value")
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be non-negative, got {clip_value}")
    for p in params:
        if p.grad is not None:
            p.grad.array.clip(-clip_value, clip_value, out=p.grad.array)  # the method: less overhead than xp.clip


def detach_state(state):
    """Cut a recurrent state from the graph that produced it, for truncated backpropagation through time.

    ``state`` is a Tensor, None, or a tuple/list (nested, e.g. an LSTM's
    ``(h, c)`` per layer) of them; the result has the same structure, with each
    tensor detached (same data, no history). Call it on the hidden state
    carried from one batch to the next, so that ``backward()`` stops at the
    batch boundary instead of walking (and keeping alive) every earlier batch.
    """
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        detached = [detach_state(s) for s in state]
        if isinstance(state, tuple) and hasattr(state, "_fields"):
            return type(state)(*detached)
        return type(state)(detached)
    raise TypeError(f"detach_state: expected a Tensor, None, or a tuple/list of them, got {type(state).__name__}")


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor (differentiable)."""
    params = _parameter_list(parameters, "parameters_to_vector")
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec, parameters) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into the parameters' data, in place."""
    params = _parameter_list(parameters, "vector_to_parameters")
    if not isinstance(vec, Tensor) or vec.ndim != 1:
        raise TypeError(f"vector_to_parameters: vec must be a 1-D Tensor, got {getattr(vec, 'shape', type(vec).__name__)}")
    needed = sum(p.numel() for p in params)
    if vec.numel() != needed:
        raise ValueError(f"vector_to_parameters: vec has {vec.numel()} elements, the parameters need {needed}")
    start = 0
    for p in params:
        if vec.device != p.device:
            raise RuntimeError(f"vector_to_parameters: vec is on {vec.device} but a parameter is on {p.device}")
        size = p.numel()
        p.array[...] = vec.array[start : start + size].reshape(p.shape).astype(p.dtype, copy=False)
        start += size


__all__ = ["beam_search", "clip_grad_norm_", "clip_grad_value_", "detach_state", "parameters_to_vector",
           "vector_to_parameters"]

from . import rnn  # noqa: E402  (tinygrad_rnn.nn.utils.rnn: packed and padded sequences, as in PyTorch)
from .beam_search import beam_search  # noqa: E402  (decoding a step-by-step model; see beam_search.py)
