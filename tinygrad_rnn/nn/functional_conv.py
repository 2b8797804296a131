"""Convolution and pooling in the shape of ``torch.nn.functional``: conv2d, max_pool2d, avg_pool2d,
adaptive_avg_pool2d (re-exported by ``nn.functional``).

Inputs are (N, C, H, W), or (C, H, W) for one unbatched sample, as in PyTorch.
Each function checks its arguments (errors name the op, what it got and what
it expected), works out where the windows lie (padding, output size, PyTorch's
``ceil_mode`` rule) and calls one fused op of ``ops/conv.py``.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..ops import conv as conv_ops
from ..ops.conv import Window
from ..tensor import Tensor
from .functional_args import _require_floating, _same_device


def pair(value, op, arg, minimum):
    """An int or a pair of ints (PyTorch's ``_pair``) → a tuple (h, w) of ints >= ``minimum``."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items):
        raise ValueError(f"{op}: {arg} must be an int or a pair of ints, got {value!r}")
    items = tuple(int(v) for v in items)
    if any(v < minimum for v in items):
        expected = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{op}: {arg} must be {expected}, got {value!r}")
    return items


def _batched(input, op, what="(N, C, H, W) or unbatched (C, H, W)"):
    """(input as 4-D, whether a batch dim was added) for an op over images."""
    _require_floating(input, op, "input")
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D or 4-D input {what}, got shape {input.shape}")
    if input.ndim == 3:
        return input.unsqueeze(0), True
    return input, False


def _unbatch(out, added):
    return out.squeeze(0) if added else out


def _too_small(op, size, pads, reach):
    padded = tuple(n + a + b for n, (a, b) in zip(size, pads))
    return ValueError(
        f"{op}: the kernel's reach {reach} (dilation·(kernel-1)+1) is larger than the padded input {padded} "
        f"(input {tuple(size)}); use a smaller kernel or dilation, more padding, or a larger input"
    )


# ----------------------------------------------------------------------------- convolution
def same_padding(kernel, dilation):
    """PyTorch's ``padding='same'``: per axis (before, after), the odd unit of the total going after."""
    totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    return tuple((t // 2, t - t // 2) for t in totals)


def conv_padding(padding, kernel, stride, dilation, op):
    """``padding`` (int, pair, 'valid' or 'same') → ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (got stride={stride})")
            return same_padding(kernel, dilation)
        raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a pair of ints, got {padding!r}")
    ph, pw = pair(padding, op, "padding", 0)
    return ((ph, ph), (pw, pw))


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """2-D cross-correlation (PyTorch's convolution): ``weight`` is (out_channels, in_channels/groups, kH, kW),
    ``bias`` (out_channels,). ``padding`` is an int, a pair, 'valid' (none) or 'same' (output as large
    as the input; stride 1 only). One im2col and one matrix product (``ops/conv.py``)."""
    op = "conv2d"
    x, added = _batched(input, op)
    _require_floating(weight, op, "weight")
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D (out_channels, in_channels/groups, kH, kW), got shape {weight.shape}")
    _same_device(op, ("input", input), ("weight", weight), ("bias", bias))
    if input.dtype != weight.dtype:
        raise TypeError(f"{op}: input is {input.dtype} but weight is {weight.dtype}; cast one with .to(dtype)")
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive integer, got {groups!r}")
    out_channels, group_channels = weight.shape[:2]
    if out_channels % groups:
        raise ValueError(f"{op}: out_channels ({out_channels}, weight.shape[0]) must be divisible by groups={groups}")
    if x.shape[1] != group_channels * groups:
        raise ValueError(
            f"{op}: expected input with {group_channels * groups} channels (weight {weight.shape} with groups={groups}), "
            f"got input of shape {input.shape}"
        )
    if bias is not None:
        _require_floating(bias, op, "bias")
        if bias.shape != (out_channels,):
            raise ValueError(f"{op}: expected bias of shape ({out_channels},) (out_channels), got {bias.shape}")
        if bias.dtype != weight.dtype:
            raise TypeError(f"{op}: bias is {bias.dtype} but weight is {weight.dtype}")
    kernel = tuple(weight.shape[2:])
    if 0 in kernel or 0 in x.shape[1:] or out_channels == 0:
        raise ValueError(
            f"{op}: expected non-zero channels, height, width and kernel sizes, got input of shape {input.shape} "
            f"and weight of shape {weight.shape}"
        )
    stride = pair(stride, op, "stride", 1)
    dilation = pair(dilation, op, "dilation", 1)
    pads = conv_padding(padding, kernel, stride, dilation, op)
    win = _window(op, x.shape[2:], kernel, stride, dilation, pads)
    args = (x, weight) if bias is None else (x, weight, bias)
    return _unbatch(conv_ops.Conv2dFn.apply(*args, win=win, groups=int(groups)), added)


def _window(op, size, kernel, stride, dilation, pads, ceil_mode=False):
    """The :class:`~tinygrad_rnn.ops.conv.Window` of an op; with ``ceil_mode`` the last window may run
    past the bottom/right edge (extra padding after) but must start inside the input or its left padding."""
    out, final_pads = [], []
    for n, k, s, d, (before, after) in zip(size, kernel, stride, dilation, pads):
        span = n + before + after - d * (k - 1) - 1
        if span < 0:
            raise _too_small(op, size, pads, tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation)))
        count = (span + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (count - 1) * s >= n + before:
            count -= 1
        out.append(count)
        final_pads.append((before, max(after, (count - 1) * s + d * (k - 1) + 1 - n - before)))
    return Window(tuple(kernel), tuple(stride), tuple(dilation), tuple(final_pads), tuple(out))


# ----------------------------------------------------------------------------- pooling
def _pool_window(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    kernel = pair(kernel_size, op, "kernel_size", 1)
    stride = kernel if stride is None else pair(stride, op, "stride", 1)
    pad = pair(padding, op, "padding", 0)
    dilation = pair(dilation, op, "dilation", 1)
    if not isinstance(ceil_mode, bool):
        raise TypeError(f"{op}: ceil_mode must be a bool, got {ceil_mode!r}")
    if any(p > k // 2 for p, k in zip(pad, kernel)):
        raise ValueError(f"{op}: padding should be at most half of kernel size, got padding={pad} and kernel_size={kernel}")
    if 0 in x.shape[1:]:
        raise ValueError(f"{op}: expected an input with non-zero channels, height and width, got shape {x.shape}")
    return _window(op, x.shape[2:], kernel, stride, dilation, ((pad[0], pad[0]), (pad[1], pad[1])), ceil_mode)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """The maximum over each window (``stride`` defaults to ``kernel_size``; padding counts as -inf). With
    ``return_indices`` also the int64 position of each maximum in its input plane (h·W + w), as PyTorch.
    Ties: the first maximum in the window (row-major) gets the gradient."""
    op = "max_pool2d"
    x, added = _batched(input, op)
    win = _pool_window(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    if not isinstance(return_indices, bool):
        raise TypeError(f"{op}: return_indices must be a bool, got {return_indices!r}")
    if return_indices:
        out, indices = conv_ops.MaxPool2dFn.apply(x, win=win, return_indices=True)
        return _unbatch(out, added), _unbatch(indices, added)
    return _unbatch(conv_ops.MaxPool2dFn.apply(x, win=win), added)


_DIVISORS = {}


def _avg_divisor(x, win, count_include_pad, divisor_override):
    """What each window's sum is divided by: a number, or a device (OH, OW) array of per-window counts
    (PyTorch's rule: a window is clipped to the padded input, and to the input itself when padding is
    not counted)."""
    if divisor_override is not None:
        return float(divisor_override)
    counts = []
    for n, k, s, (before, _), out in zip(x.shape[2:], win.kernel, win.stride, win.pads, win.out):
        start = np.arange(out) * s - before
        end = np.minimum(start + k, n + before)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        counts.append(end - start)
    divisor = np.outer(counts[0], counts[1]).astype(x.dtype)
    if (divisor == divisor.flat[0]).all():
        return float(divisor.flat[0])
    key = (x.device, x.dtype.str, divisor.shape, divisor.tobytes())
    if key not in _DIVISORS:  # made once: a captured (CUDA graph) step copies nothing from the host
        _DIVISORS[key] = x.backend.asarray(divisor)
    return _DIVISORS[key]


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None) -> Tensor:
    """The mean over each window (``stride`` defaults to ``kernel_size``). ``count_include_pad``: whether the
    zero padding counts in the mean; ``divisor_override``: divide every window's sum by this instead."""
    op = "avg_pool2d"
    x, added = _batched(input, op)
    win = _pool_window(op, x, kernel_size, stride, padding, 1, ceil_mode)
    if not isinstance(count_include_pad, bool):
        raise TypeError(f"{op}: count_include_pad must be a bool, got {count_include_pad!r}")
    if divisor_override is not None and (
        isinstance(divisor_override, bool) or not isinstance(divisor_override, numbers.Integral) or divisor_override == 0
    ):
        raise ValueError(f"{op}: divisor_override must be a non-zero integer or None, got {divisor_override!r}")
    divisor = _avg_divisor(x, win, count_include_pad, divisor_override)
    return _unbatch(conv_ops.AvgPool2dFn.apply(x, win=win, divisor=divisor), added)


_MATRICES = {}


def adaptive_output_size(output_size, size, op):
    """``output_size`` (an int, or a pair whose None entries keep the input's size) → (OH, OW)."""
    items = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(items) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair (None keeps the input's size), got {output_size!r}")
    result = []
    for item, n in zip(items, size):
        if item is None:
            result.append(n)
        elif isinstance(item, bool) or not isinstance(item, numbers.Integral) or item < 1:
            raise ValueError(f"{op}: output_size must hold positive ints or None, got {output_size!r}")
        else:
            result.append(int(item))
    return tuple(result)


def adaptive_avg_pool2d(input, output_size) -> Tensor:
    """Average pooling to a fixed (OH, OW), whatever the input's H, W: output i averages input
    [floor(i·In/Out), ceil((i+1)·In/Out)) along each axis, as PyTorch."""
    op = "adaptive_avg_pool2d"
    x, added = _batched(input, op)
    if 0 in x.shape[1:]:
        raise ValueError(f"{op}: expected an input with non-zero channels, height and width, got shape {input.shape}")
    out = adaptive_output_size(output_size, x.shape[2:], op)
    matrices = []
    for n, m in zip(x.shape[2:], out):
        key = (x.device, x.dtype.str, n, m)
        if key not in _MATRICES:  # made once per size: a captured step copies nothing from the host
            _MATRICES[key] = x.backend.asarray(conv_ops.adaptive_matrix(n, m, x.dtype))
        matrices.append(_MATRICES[key])
    return _unbatch(conv_ops.AdaptiveAvgPool2dFn.apply(x, rows=matrices[0], cols=matrices[1]), added)


__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]
