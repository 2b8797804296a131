"""A test-only backend whose arrays, like CuPy's, refuse to mix with host NumPy arrays.

Its arrays are NumPy arrays of a subclass that raises as soon as an op combines
them with a plain ``numpy.ndarray`` (an array an op made with ``np.`` instead of
``backend.xp``, or a host array the user passed in). Running the suite on it
catches host/device mixing on a machine without a GPU. Its fused RNN ops run
CuPy's CUDA gate kernels, compiled for the CPU (see ``rnn_kernels``).
"""
from __future__ import annotations

import numpy as np

from cuda_kernel_emulator import compiler, emulated_cupy
from tinygrad_rnn.backends import register_backend
from tinygrad_rnn.backends.rnn_kernels_cupy import CupyPointwise
from tinygrad_rnn.backends.numpy_backend import NumpyBackend


class HostMixingError(TypeError):
    pass


class HostlessArray(np.ndarray):
    """A 'device' array: any op that mixes it with a plain host ndarray raises."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _refuse_host(inputs + (out or ()), ufunc.__name__)
        if out is not None:
            kwargs["out"] = tuple(_unwrap(o) for o in out)
        return _wrap(getattr(ufunc, method)(*(_unwrap(x) for x in inputs), **kwargs))

    def __array_function__(self, func, types, args, kwargs):
        if any(t is np.ndarray for t in types):
            raise HostMixingError(f"{func.__name__}: a host numpy array was mixed with a device array")
        return _wrap(func(*_unwrap_all(args), **_unwrap_all(kwargs)))


def _refuse_host(arrays, what):
    for x in arrays:
        if type(x) is np.ndarray and x.ndim > 0:
            raise HostMixingError(f"{what}: a host numpy array of shape {x.shape} was mixed with a device array")


def _unwrap(x):
    return x.view(np.ndarray) if isinstance(x, HostlessArray) else x


def _unwrap_all(obj):
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap_all(x) for x in obj)
    if isinstance(obj, dict):
        return {k: _unwrap_all(v) for k, v in obj.items()}
    return _unwrap(obj)


def _wrap(result):
    if type(result) is np.ndarray:
        return result.view(HostlessArray)
    if isinstance(result, np.generic):  # NumPy returns scalars from 0-d math; CuPy returns 0-d arrays
        return np.asarray(result).view(HostlessArray)
    if isinstance(result, tuple):
        return tuple(_wrap(r) for r in result)
    if isinstance(result, list):
        return [_wrap(r) for r in result]
    return result


class _HostlessModule:
    """``numpy`` whose functions return device arrays (like ``cupy`` as an array module)."""

    def __getattr__(self, name):
        attr = getattr(np, name)
        if isinstance(attr, type) or not callable(attr):
            return attr if name != "ndarray" else HostlessArray
        if name in ("asnumpy",):
            return attr

        def call(*args, **kwargs):
            return _wrap(attr(*_unwrap_all(args), **_unwrap_all(kwargs)))

        call.__name__ = name
        return call


class HostlessBackend(NumpyBackend):
    xp = _HostlessModule()
    device = "hostless"
    _kernels = None

    def asarray(self, data, dtype=None):
        if type(data) is np.ndarray and data.ndim > 0 and getattr(self, "_strict_asarray", False):
            raise HostMixingError("asarray")
        return np.array(_unwrap(data), dtype=dtype, copy=True).view(HostlessArray)  # host to device copies, as CuPy

    def to_host(self, array):
        return np.array(_unwrap(array), copy=True)

    def is_array(self, obj):
        return isinstance(obj, HostlessArray)

    def scatter_add(self, target, index, values):
        np.add.at(_unwrap(target), _unwrap_all(index), _unwrap(values))

    def rnn_kernels(self):
        """CuPy's gate kernels, compiled for the CPU (``cuda_kernel_emulator``), so every fused RNN op the
        suite runs on this backend goes through the CUDA kernel code; without a C++ compiler, None
        (the NumPy reference)."""
        if compiler() is None:
            return super().rnn_kernels()
        if HostlessBackend._kernels is None:
            HostlessBackend._kernels = CupyPointwise(emulated_cupy(self.xp))
        return HostlessBackend._kernels

    def randn(self, shape, dtype):
        return super().randn(shape, dtype).view(HostlessArray)

    def rand(self, shape, dtype):
        return super().rand(shape, dtype).view(HostlessArray)

    def randint(self, low, high, shape):
        return super().randint(low, high, shape).view(HostlessArray)

    def permutation(self, n):
        return super().permutation(n).view(HostlessArray)


def register():
    register_backend("hostless", lambda index: HostlessBackend())
