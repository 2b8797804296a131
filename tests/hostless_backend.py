"""A test-only backend whose arrays, like CuPy's, refuse to mix with host NumPy arrays.

Its arrays are NumPy arrays of a subclass that raises as soon as an op combines
them with a plain ``numpy.ndarray`` (an array an op made with ``np.`` instead of
``backend.xp``, or a host array the user passed in). Running the suite on it
catches host/device mixing on a machine without a GPU. Its fused RNN ops run
CuPy's CUDA gate kernels, compiled for the CPU (see ``rnn_kernels``).
"""
from __future__ import annotations

import numpy as np

import capture_emulator
from capture_emulator import Recorder, record, refuse
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
        call, args = getattr(ufunc, method), tuple(_unwrap(x) for x in inputs)
        result = _wrap(call(*args, **kwargs))
        record(lambda: call(*args, **kwargs), None if out is not None else result)
        return result

    def __array_function__(self, func, types, args, kwargs):
        if any(t is np.ndarray for t in types):
            raise HostMixingError(f"{func.__name__}: a host numpy array was mixed with a device array")
        args, kwargs = _unwrap_all(args), _unwrap_all(kwargs)
        result = _wrap(func(*args, **kwargs))
        record(lambda: func(*args, **kwargs), result)
        return result

    def __getitem__(self, key):
        return capture_emulator.getitem(self, key, np.ndarray.__getitem__)


capture_emulator.install(HostlessArray)
_NO_DATA = ("empty", "empty_like")  # allocation only: nothing for a replay to recompute


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
            args, kwargs = _unwrap_all(args), _unwrap_all(kwargs)
            result = _wrap(attr(*args, **kwargs))
            if name not in _NO_DATA:
                record(lambda: attr(*args, **kwargs), result)
            return result

        call.__name__ = name
        return call


class HostlessBackend(NumpyBackend):
    xp = _HostlessModule()
    device = "hostless"
    _kernels = None

    can_capture = True

    def asarray(self, data, dtype=None):
        if type(data) is np.ndarray and data.ndim > 0 and getattr(self, "_strict_asarray", False):
            raise HostMixingError("asarray")
        if isinstance(data, HostlessArray):
            source = data
            result = np.array(_unwrap(data), dtype=dtype, copy=True).view(HostlessArray)
            record(lambda: np.array(_unwrap(source), dtype=dtype, copy=True), result)
            return result
        refuse(f"copying host data ({type(data).__name__}) to the device (asarray)")
        return np.array(_unwrap(data), dtype=dtype, copy=True).view(HostlessArray)  # host to device copies, as CuPy

    def to_host(self, array):
        refuse("copying a device array to the host (to_host)")
        return np.array(_unwrap(array), copy=True)

    def is_array(self, obj):
        return isinstance(obj, HostlessArray)

    def scatter_add(self, target, index, values):
        target, index, values = _unwrap(target), _unwrap_all(index), _unwrap(values)
        np.add.at(target, index, values)
        record(lambda: np.add.at(target, index, values), None)

    # -- capture (tr.cuda.graphed), emulated by recording the array calls: see capture_emulator
    def begin_capture(self):
        Recorder.active = Recorder()

    def end_capture(self):
        graph, Recorder.active = Recorder.active, None
        return graph

    def abort_capture(self):
        Recorder.active = None

    def rnn_kernels(self):
        """CuPy's gate kernels, compiled for the CPU (``cuda_kernel_emulator``), so every fused RNN op the
        suite runs on this backend goes through the CUDA kernel code; without a C++ compiler, None
        (the NumPy reference)."""
        if compiler() is None:
            return super().rnn_kernels()
        if HostlessBackend._kernels is None:
            kernels = CupyPointwise(emulated_cupy(self.xp))
            kernels.kernels = {name: capture_emulator.recorded_kernel(k) for name, k in kernels.kernels.items()}
            HostlessBackend._kernels = kernels
        return HostlessBackend._kernels

    def randn(self, shape, dtype):
        refuse("drawing random numbers (cuRAND)")
        return super().randn(shape, dtype).view(HostlessArray)

    def rand(self, shape, dtype):
        refuse("drawing random numbers (cuRAND)")
        return super().rand(shape, dtype).view(HostlessArray)

    def randint(self, low, high, shape):
        refuse("drawing random numbers (cuRAND)")
        return super().randint(low, high, shape).view(HostlessArray)

    def permutation(self, n):
        refuse("drawing random numbers (cuRAND)")
        return super().permutation(n).view(HostlessArray)


def register():
    register_backend("hostless", lambda index: HostlessBackend())
