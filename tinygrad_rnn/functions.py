"""Free functions over tensors, as in ``torch``: cat, stack, where, einsum, multinomial, allclose, and friends."""
from __future__ import annotations

import numpy as np

from .ops import elementwise as ew
from .ops import shape as shape_ops
from .ops.einsum import Einsum, parse_einsum
from .checks import check_int, check_int_dim, normalize_dim
from .dtypes import float64, get_default_dtype, int64, promote, set_default_dtype  # noqa: F401  (re-exported)
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
sin, cos, sign, log1p, isnan, isfinite, nan_to_num = (
    _method(n) for n in ("sin", "cos", "sign", "log1p", "isnan", "isfinite", "nan_to_num")
)
norm, logsumexp, cumsum, sort, argsort, topk = (_method(n) for n in ("norm", "logsumexp", "cumsum", "sort", "argsort", "topk"))
t, mm, bmm, tril, triu, flip, gather, unbind = (
    _method(n) for n in ("t", "mm", "bmm", "tril", "triu", "flip", "gather", "unbind")
)


def pow(input, exponent) -> Tensor:
    """``input ** exponent``, elementwise; either may be a number (not both)."""
    if isinstance(input, Tensor):
        return input**exponent
    if isinstance(exponent, Tensor):
        return exponent.__rpow__(input)
    raise TypeError(f"pow: expected a Tensor as input or exponent, got {type(input).__name__} and {type(exponent).__name__}")


def is_tensor(obj) -> bool:
    """True when ``obj`` is a Tensor (a Parameter included)."""
    return isinstance(obj, Tensor)


def einsum(equation, *operands) -> Tensor:
    """Einstein summation, as ``torch.einsum``: ``einsum("bij,bjk->bik", a, b)`` is a batched matmul,
    ``einsum("ii", a)`` a trace. The output may be explicit (after ``->``) or implicit (the letters used once,
    in alphabetical order); ``...`` stands for the broadcast leading dims. Operands may also come as one
    list. Differentiable in every operand."""
    if not isinstance(equation, str):
        raise TypeError(f"einsum: the equation must be a string such as 'ij,jk->ik', got {type(equation).__name__}")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum: expected at least one operand after the equation")
    for i, x in enumerate(operands):
        if not isinstance(x, Tensor):
            raise TypeError(f"einsum: operand {i} is a {type(x).__name__}, expected a Tensor")
        if x.dtype != operands[0].dtype:
            raise TypeError(f"einsum: expected operands of one dtype, got {operands[0].dtype} (operand 0) and {x.dtype} (operand {i})")
    terms, output, sizes = parse_einsum(equation, [x.shape for x in operands])
    return Einsum.apply(*operands, terms=terms, output=output, sizes=sizes)


def multinomial(input, num_samples, replacement=False) -> Tensor:
    """``num_samples`` category indices (int64) drawn with probability proportional to the non-negative
    weights of ``input``'s last dim, independently per row of a 2-D ``input``; without ``replacement``
    each category is drawn at most once per row. Draws from the device's generator."""
    if not isinstance(input, Tensor):
        raise TypeError(f"multinomial: input must be a Tensor of weights, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"multinomial: expected floating point weights, got {input.dtype}")
    if input.ndim not in (1, 2) or input.shape[-1] == 0:
        raise ValueError(f"multinomial: input must be 1-d or 2-d with at least one category, got shape {input.shape}")
    count = check_int("multinomial", "num_samples", num_samples, minimum=1)
    backend = input.backend
    xp = backend.xp
    weights = input.array.astype(float64).reshape(-1, input.shape[-1])
    categories = weights.shape[1]
    if bool((~xp.isfinite(weights)).any()) or bool((weights < 0).any()):
        raise ValueError("multinomial: weights must be finite and non-negative (got inf, NaN or a negative)")
    usable = int((weights > 0).sum(axis=1).min())
    if usable == 0:
        raise ValueError("multinomial: every distribution needs a positive total weight, got a row of zeros")
    if not replacement:
        if count > categories:
            raise ValueError(
                f"multinomial: cannot draw {count} samples without replacement from {categories} categories"
            )
        if count > usable:
            raise ValueError(
                f"multinomial: cannot draw {count} samples without replacement from a row with only {usable} "
                "categories of non-zero weight"
            )
        # Exponential race: category i finishes at E_i / w_i (E_i ~ Exp(1)); the first `count` to finish are a
        # draw without replacement, in draw order. Zero weights never finish.
        positive = weights > 0
        arrival = -xp.log1p(-backend.rand(weights.shape, float64)) / xp.where(positive, weights, 1.0)
        arrival = xp.where(positive, arrival, xp.inf)
        out = backend.argsort(arrival, 1)[:, :count]
    else:
        cdf = xp.cumsum(weights, axis=1)
        cdf /= cdf[:, -1:]  # exactly 1 from the last positive weight on, so a zero weight at the end is never hit
        draws = backend.rand((weights.shape[0], count), float64)
        out = xp.stack([xp.searchsorted(cdf[r], draws[r], side="right") for r in range(weights.shape[0])])
        out = xp.minimum(out, categories - 1)
    out = out.astype(int64, copy=False)
    return Tensor._make(out.reshape(count) if input.ndim == 1 else out, backend)


def _two_tensors(input, other, op):
    for name, value in (("input", input), ("other", other)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(value).__name__}")
    if input.backend is not other.backend:
        raise RuntimeError(f"{op}: expected both tensors on the same device, got {input.device} and {other.device}")


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    """True when ``|input - other| <= atol + rtol * |other|`` everywhere (shapes broadcast; same dtype)."""
    _two_tensors(input, other, "allclose")
    if input.dtype != other.dtype:
        raise TypeError(f"allclose: expected both tensors to have the same dtype, got {input.dtype} and {other.dtype}")
    try:
        close = input.backend.xp.allclose(input.array, other.array, rtol=rtol, atol=atol, equal_nan=equal_nan)
    except ValueError:
        raise ValueError(f"allclose: cannot broadcast shapes {input.shape} and {other.shape}") from None
    return bool(close)


def equal(input, other) -> bool:
    """True when both tensors have the same shape and the same values (NaN equals nothing)."""
    _two_tensors(input, other, "equal")
    if input.shape != other.shape:
        return False
    a, b = _operands(input, other, "equal")
    return bool((a.array == b.array).all())
