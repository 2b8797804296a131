"""``torch.nn.functional``'s activations and vector helpers beyond the basic ones: gelu, silu,
leaky_relu, normalize, cosine_similarity and pad. Re-exported by ``nn.functional`` (use them as ``F.gelu``).

Each checks its arguments, then calls one op from ``ops/activations.py``,
``ops/norms.py`` or ``ops/padding.py``.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..checks import normalize_dim
from ..dtypes import promote
from ..ops import activations as activation_ops
from ..ops import norms as norm_ops
from ..ops import padding as padding_ops
from ..tensor import Tensor
from .functional_args import _require_floating, _same_device

_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _number(value, op, arg):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {arg} must be a real number, got {value!r} ({type(value).__name__})")
    return float(value)


def gelu(input, approximate="none") -> Tensor:
    """Gaussian Error Linear Unit x·Φ(x), Φ the standard normal CDF (the activation of BERT and GPT);
    ``approximate='tanh'`` uses 0.5·x·(1 + tanh(√(2/π)(x + 0.044715 x³))) instead, as PyTorch."""
    _require_floating(input, "gelu", "input")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return activation_ops.GELUFn.apply(input, approximate=approximate)


def silu(input, inplace=False) -> Tensor:
    """Sigmoid Linear Unit x·σ(x) (swish), a smooth ReLU. ``inplace=True`` writes the result into
    ``input`` and returns it (PyTorch's rules for in-place changes: not on a leaf that requires grad)."""
    out = activation_ops.SiLUFn.apply(_require_floating(input, "silu", "input"), keep_input=not inplace)
    return input.copy_(out, op="silu") if inplace else out


def leaky_relu(input, negative_slope=0.01, inplace=False) -> Tensor:
    """x for x > 0, ``negative_slope``·x otherwise: a ReLU that keeps a small gradient for negative
    inputs. ``inplace=True`` writes the result into ``input`` and returns it."""
    _require_floating(input, "leaky_relu", "input")
    slope = _number(negative_slope, "leaky_relu", "negative_slope")
    out = activation_ops.LeakyReLUFn.apply(input, negative_slope=slope)
    return input.copy_(out, op="leaky_relu") if inplace else out


def _vector_norm(input, ord, dim, keepdim, op) -> Tensor:
    """The ``ord``-norm of ``input`` over ``dim`` (all elements when None), as ``torch.linalg.vector_norm``:
    (Σ|x|^ord)^(1/ord); inf is max|x|, -inf min|x|, 0 the number of non-zeros. A zero norm has gradient 0."""
    p = _number(ord, op, "p")
    if math.isnan(p):
        raise ValueError(f"{op}: p must be a number or ±inf, got nan")
    if dim is None or input.ndim == 0:
        axis = None
    else:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        axis = tuple(sorted({normalize_dim(d, input.ndim, op) for d in dims}))
    return norm_ops.VectorNorm.apply(input, p=p, axis=axis, keepdim=bool(keepdim))


def normalize(input, p=2.0, dim=1, eps=1e-12) -> Tensor:
    """``input`` divided by its ``p``-norm along ``dim``, the norm clamped below at ``eps``:
    x / max(‖x‖_p, eps), so each slice along ``dim`` becomes a unit vector (zero vectors stay zero)."""
    _require_floating(input, "normalize", "input")
    eps = _number(eps, "normalize", "eps")
    norm = _vector_norm(input, p, dim, True, "normalize")
    return input / norm.clamp(min=eps)


def cosine_similarity(x1, x2, dim=1, eps=1e-8) -> Tensor:
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim``:
    Σ x1·x2 / (max(‖x1‖, eps)·max(‖x2‖, eps)), the two broadcast to a common shape first; the
    result drops ``dim``."""
    op = "cosine_similarity"
    _require_floating(x1, op, "x1")
    _require_floating(x2, op, "x2")
    _same_device(op, ("x1", x1), ("x2", x2))
    eps = _number(eps, op, "eps")
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ValueError(f"{op}: x1 of shape {x1.shape} and x2 of shape {x2.shape} do not broadcast") from None
    if not shape:
        raise ValueError(f"{op}: expected inputs with at least one dimension, got shapes {x1.shape} and {x2.shape}")
    axis = normalize_dim(dim, len(shape), op)
    dtype = promote(x1.dtype, x2.dtype)
    x1, x2 = x1.to(dtype=dtype), x2.to(dtype=dtype)
    return norm_ops.CosineSimilarityFn.apply(x1, x2, axis=axis, eps=eps)


def _pad_pairs(input, pad, mode):
    """PyTorch's pad tuple (last dim first: left, right, then top, bottom, ...) checked and turned into
    one (before, after) pair per dimension of ``input``."""
    if not isinstance(pad, (tuple, list)) or any(
        isinstance(n, bool) or not isinstance(n, (int, np.integer)) for n in pad
    ):
        raise TypeError(f"pad: pad must be a tuple of ints (left, right, top, bottom, ...), got {pad!r}")
    pad = tuple(int(n) for n in pad)
    if len(pad) % 2:
        raise ValueError(
            f"pad: the padding length must be divisible by 2 (a before/after pair per dimension), got {pad}"
        )
    if len(pad) // 2 > input.ndim:
        raise ValueError(
            f"pad: padding {pad} covers {len(pad) // 2} dimensions but the input has {input.ndim} (shape {input.shape})"
        )
    pairs = [(0, 0)] * input.ndim
    for k in range(len(pad) // 2):
        axis = input.ndim - 1 - k
        before, after = pad[2 * k], pad[2 * k + 1]
        size = input.shape[axis]
        where = f"dimension {axis} of the input of shape {input.shape}"
        if size + before + after < 0 or (mode != "constant" and size + min(before, 0) + min(after, 0) <= 0):
            raise ValueError(f"pad: padding ({before}, {after}) leaves no elements of {where}")
        if mode == "reflect" and (before >= size or after >= size):
            raise ValueError(
                f"pad: reflect padding ({before}, {after}) must be less than the size {size} of {where}"
            )
        kept = size + min(before, 0) + min(after, 0)
        if mode == "circular" and (before > kept or after > kept):
            raise ValueError(
                f"pad: circular padding ({before}, {after}) wraps around {where} more than once "
                f"({kept} elements after cropping)"
            )
        pairs[axis] = (before, after)
    return tuple(pairs)


def pad(input, pad, mode="constant", value=None) -> Tensor:
    """Pad (or, with negative values, crop) the last dimensions of ``input``. ``pad`` lists
    (before, after) pairs from the last dimension backwards, as PyTorch: ``(left, right)`` pads the
    last dim, ``(left, right, top, bottom)`` the last two. ``mode``: 'constant' (``value``, default 0),
    'reflect' (mirror without repeating the edge), 'replicate' (repeat the edge) or 'circular' (wrap)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"pad: input must be a Tensor, got {type(input).__name__}")
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {_PAD_MODES}, got {mode!r}")
    if value is not None:
        value = _number(value, "pad", "value")
        if mode != "constant" and value != 0:
            raise ValueError(
                f"pad: mode {mode!r} takes no value (got value={value}); only 'constant' pads with a value"
            )
    pairs = _pad_pairs(input, pad, mode)
    if mode == "constant":
        fill = 0.0 if value is None else value
        if input.dtype.kind in "iub" and not math.isfinite(fill):
            raise ValueError(f"pad: cannot pad an integer tensor with {fill}")
        return padding_ops.ConstantPad.apply(input, pads=pairs, value=fill)
    return padding_ops.IndexPad.apply(input, pads=pairs, mode=mode)
