"""Free functions over tensors, as in ``torch``: cat, stack, split, chunk, where, and friends."""
from __future__ import annotations

import numpy as np

from .ops import elementwise as ew
from .ops import shape as shape_ops
from .checks import check_int_dim, normalize_dim
from .dtypes import promote
from .tensor import Tensor, _as_tensor_like, _operands


def _tensor_list(tensors, op):
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: element {i} is a {type(t).__name__}, expected a Tensor")
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = promote(dtype, t.dtype)
    return [t if t.dtype == dtype else t.to(dtype=dtype) for t in tensors]


def cat(tensors, dim=0) -> Tensor:
    """Concatenate along an existing dimension ``dim``."""
    tensors = _tensor_list(tensors, "cat")
    ndim = tensors[0].ndim
    axis = normalize_dim(dim, ndim, "cat")
    for i, t in enumerate(tensors):
        if t.ndim != ndim or any(a != b for k, (a, b) in enumerate(zip(t.shape, tensors[0].shape)) if k != axis):
            raise ValueError(
                f"cat: tensor {i} has shape {t.shape}, expected {tensors[0].shape} except in dim {axis} "
                f"(shapes: {[x.shape for x in tensors]})"
            )
    return shape_ops.Cat.apply(*tensors, axis=axis)


def stack(tensors, dim=0) -> Tensor:
    """Stack equal-shaped tensors along a new dimension ``dim``."""
    tensors = _tensor_list(tensors, "stack")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape}, expected {tensors[0].shape} like tensor 0")
    ndim = tensors[0].ndim + 1
    dim = check_int_dim(dim, "stack")
    if not -ndim <= dim < ndim:
        raise IndexError(f"stack: dim {dim} is out of range for {ndim} dimensions (expected {-ndim} <= dim < {ndim})")
    return shape_ops.Stack.apply(*tensors, axis=dim % ndim)


def split(tensor, split_size_or_sections, dim=0) -> tuple:
    """Pieces of ``split_size`` along ``dim`` (the last may be shorter), or of the listed sizes."""
    return tensor.split(split_size_or_sections, dim)


def chunk(tensor, chunks, dim=0) -> tuple:
    """Split into ``chunks`` pieces of equal size (the last may be smaller), as PyTorch does."""
    return tensor.chunk(chunks, dim)


def where(condition, input, other) -> Tensor:
    """Elementwise ``input`` where ``condition`` is True, else ``other``."""
    like = input if isinstance(input, Tensor) else other
    if not isinstance(like, Tensor):
        raise TypeError("where: at least one of input and other must be a Tensor")
    if not isinstance(condition, Tensor):
        condition = Tensor(np.asarray(condition), device=like.device)
    if condition.dtype != np.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got {condition.dtype}")
    a, b = _operands(input, other, "where")
    return ew.Where.apply(condition, a, b)


def maximum(input, other) -> Tensor:
    """Elementwise maximum of two tensors (ties share the gradient)."""
    return ew.Maximum.apply(*_operands(input, other, "maximum"))


def minimum(input, other) -> Tensor:
    """Elementwise minimum of two tensors (ties share the gradient)."""
    return ew.Minimum.apply(*_operands(input, other, "minimum"))


def matmul(input, other) -> Tensor:
    return input.matmul(other) if isinstance(input, Tensor) else _as_tensor_like(input, other, "matmul").matmul(other)


def _method(name):
    def function(input, *args, **kwargs):
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: expected a Tensor, got {type(input).__name__}")
        return getattr(input, name)(*args, **kwargs)

    function.__name__ = name
    function.__doc__ = f"Functional form of ``Tensor.{name}``."
    return function


exp, log, sqrt, tanh, sigmoid, relu, abs = (_method(n) for n in ("exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs"))
clamp, sum, mean, var, softmax, log_softmax = (_method(n) for n in ("clamp", "sum", "mean", "var", "softmax", "log_softmax"))
argmax, argmin, reshape, flatten, transpose, permute = (
    _method(n) for n in ("argmax", "argmin", "reshape", "flatten", "transpose", "permute")
)
unsqueeze, squeeze, max, min = (_method(n) for n in ("unsqueeze", "squeeze", "max", "min"))
