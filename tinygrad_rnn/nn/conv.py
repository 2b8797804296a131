"""Convolution and pooling layers in the shape of ``torch.nn``: Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d.

Inputs are (N, C, H, W) or unbatched (C, H, W). Arguments are checked when the
layer is built (errors name the layer), and again by the functional form each
``forward`` calls (``nn.functional_conv``). Parameter names, shapes, the
default initialisation and ``repr`` are PyTorch's, so a ``state_dict`` moves
between the two by name.
"""
from __future__ import annotations

import math

from ..checks import check_int
from . import functional_conv as FC
from . import init
from .functional_activations import pad
from .layers import _new_parameter
from .module import Module

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class Conv2d(Module):
    """2-D convolution (cross-correlation) of (N, C_in, H, W) into (N, C_out, OH, OW).

    ``weight``: (out_channels, in_channels/groups, kH, kW), ``bias``: (out_channels,), both drawn
    from U(-1/√fan_in, 1/√fan_in) with fan_in = in_channels/groups · kH · kW, as PyTorch.
    ``padding``: int, pair, 'valid' or 'same' (stride 1); ``padding_mode``: 'zeros', or 'reflect',
    'replicate', 'circular' (the input is padded by ``F.pad`` first, as PyTorch does).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        self.in_channels = check_int("Conv2d", "in_channels", in_channels, minimum=1)
        self.out_channels = check_int("Conv2d", "out_channels", out_channels, minimum=1)
        self.groups = check_int("Conv2d", "groups", groups, minimum=1)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"Conv2d: in_channels ({self.in_channels}) and out_channels ({self.out_channels}) must both be "
                f"divisible by groups ({self.groups})"
            )
        self.kernel_size = FC.pair(kernel_size, "Conv2d", "kernel_size", 1)
        self.stride = FC.pair(stride, "Conv2d", "stride", 1)
        self.dilation = FC.pair(dilation, "Conv2d", "dilation", 1)
        pads = FC.conv_padding(padding, self.kernel_size, self.stride, self.dilation, "Conv2d")
        self.padding = padding if isinstance(padding, str) else (pads[0][0], pads[1][0])
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"Conv2d: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        # F.pad's (left, right, top, bottom) for the non-zero padding modes
        self._reversed_padding_repeated_twice = pads[1] + pads[0]
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = _new_parameter(shape, dtype, "Conv2d")
        if bias:
            self.bias = _new_parameter((self.out_channels,), dtype, "Conv2d")
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        """PyTorch's default: kaiming_uniform_(a=√5) for the weight (bound 1/√fan_in), U(±1/√fan_in) for the bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        if self.padding_mode == "zeros":
            return FC.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if input.ndim not in (3, 4):  # checked before F.pad, whose message would not name the layer
            raise ValueError(f"Conv2d: expected a 3-D or 4-D input (N, C, H, W) or (C, H, W), got shape {input.shape}")
        padded = pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
        return FC.conv2d(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class MaxPool2d(Module):
    """Max pooling over kernel_size windows (``stride`` defaults to ``kernel_size``); with ``return_indices``
    the forward also returns each maximum's flat position in its input plane (int64)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        _check_pool("MaxPool2d", kernel_size, stride, padding, dilation, ceil_mode)
        if not isinstance(return_indices, bool):
            raise TypeError(f"MaxPool2d: return_indices must be a bool, got {return_indices!r}")
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        return FC.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation, ceil_mode=self.ceil_mode,
                             return_indices=self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Average pooling over kernel_size windows (``stride`` defaults to ``kernel_size``); see ``F.avg_pool2d``
    for ``count_include_pad`` and ``divisor_override``."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        _check_pool("AvgPool2d", kernel_size, stride, padding, 1, ceil_mode)
        if not isinstance(count_include_pad, bool):
            raise TypeError(f"AvgPool2d: count_include_pad must be a bool, got {count_include_pad!r}")
        if divisor_override is not None:
            check_int("AvgPool2d", "divisor_override", divisor_override)
            if divisor_override == 0:
                raise ValueError("AvgPool2d: divisor_override must be a non-zero integer or None, got 0")
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        return FC.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                             self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed ``output_size`` (int, or pair with None keeping the input's size), whatever
    the input's height and width (e.g. ``AdaptiveAvgPool2d(1)``: global average pooling)."""

    def __init__(self, output_size):
        super().__init__()
        FC.adaptive_output_size(output_size, (1, 1), "AdaptiveAvgPool2d")
        self.output_size = output_size

    def forward(self, input):
        return FC.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


def _check_pool(layer, kernel_size, stride, padding, dilation, ceil_mode):
    """The pooling arguments' checks of ``nn.functional_conv``, at construction, naming ``layer``."""
    kernel = FC.pair(kernel_size, layer, "kernel_size", 1)
    if stride is not None:
        FC.pair(stride, layer, "stride", 1)
    pads = FC.pair(padding, layer, "padding", 0)
    FC.pair(dilation, layer, "dilation", 1)
    if any(p > k // 2 for p, k in zip(pads, kernel)):
        raise ValueError(
            f"{layer}: padding should be at most half of kernel size, got padding={padding} and kernel_size={kernel_size}"
        )
    if not isinstance(ceil_mode, bool):
        raise TypeError(f"{layer}: ceil_mode must be a bool, got {ceil_mode!r}")


__all__ = ["Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "PADDING_MODES"]
