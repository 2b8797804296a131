"""Parameter initialisers in the shape of ``torch.nn.init``.

Each function fills a tensor in place and returns it. Values are drawn on the
host from the CPU generator (so ``tinygrad_rnn.manual_seed`` makes a model's
initial weights the same on every device) and then copied to the tensor's
device. Fan-in/fan-out follow PyTorch: for a weight of shape
``(out, in, *kernel)``, fan_in = in * prod(kernel), fan_out = out * prod(kernel).
"""
from __future__ import annotations

import math

import numpy as np

from ..backends import get_backend
from ..tensor import Tensor


def _fill(tensor, host_values, op):
    """Copy host values into ``tensor``'s array in place (keeping its dtype and device)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op}: expected a Tensor or Parameter, got {type(tensor).__name__}")
    tensor.array[...] = tensor.backend.asarray(np.asarray(host_values).astype(tensor.dtype, copy=False))
    return tensor


def _host_uniform(shape, low, high):
    return low + (high - low) * get_backend("cpu").rand(shape, np.float64)


def _host_normal(shape, mean, std):
    return mean + std * get_backend("cpu").randn(shape, np.float64)


def calculate_gain(nonlinearity, param=None) -> float:
    """The gain PyTorch recommends for a nonlinearity (``"tanh"`` → 5/3, ``"relu"`` → √2, ...)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "sigmoid", "conv_transpose1d", "conv_transpose2d")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope must be a number, got {param!r}")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor, op):
    if tensor.ndim < 2:
        raise ValueError(f"{op}: fan in and fan out need a tensor with at least 2 dimensions, got shape {tensor.shape}")
    receptive = 1
    for n in tensor.shape[2:]:
        receptive *= n
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with samples from U(a, b)."""
    return _fill(tensor, _host_uniform(tensor.shape, a, b), "uniform_")


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with samples from N(mean, std²)."""
    return _fill(tensor, _host_normal(tensor.shape, mean, std), "normal_")


def constant_(tensor, val):
    """Fill with the constant ``val``."""
    return _fill(tensor, np.full(tensor.shape, val), "constant_")


def zeros_(tensor):
    """Fill with zeros."""
    return constant_(tensor, 0.0)


def ones_(tensor):
    """Fill with ones."""
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain=1.0):
    """Glorot: U(-a, a) with a = gain · √(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor, "xavier_uniform_")
    if tensor.numel() == 0:
        return tensor
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    """Glorot: N(0, std²) with std = gain · √(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor, "xavier_normal_")
    if tensor.numel() == 0:
        return tensor
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _kaiming_std(tensor, a, mode, nonlinearity, op):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{op}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor, op)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He: U(-b, b) with b = gain · √(3 / fan). PyTorch's ``Linear`` uses a=√5, i.e. b = 1/√fan_in."""
    if tensor.numel() == 0:
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He: N(0, std²) with std = gain / √fan."""
    if tensor.numel() == 0:
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_"))


def orthogonal_(tensor, gain=1.0):
    """Fill with a (semi-)orthogonal matrix (Saxe et al. 2013), as PyTorch does: the Q of the
    QR decomposition of a normal matrix, sign-corrected by diag(R) so it is uniformly distributed.
    Extra trailing dimensions are flattened into the columns. A common choice for recurrent weights."""
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported, got shape {tensor.shape}")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = _host_normal((rows, cols), 0.0, 1.0)
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, (gain * q).reshape(tensor.shape), "orthogonal_")


__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "xavier_uniform_", "xavier_normal_",
    "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
]
