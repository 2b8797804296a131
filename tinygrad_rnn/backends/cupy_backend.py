"""The CUDA backend: CuPy arrays on one GPU.

CuPy is imported only when a ``cuda`` device is first asked for, so the CPU
backend works on machines without it. CuPy refuses implicit conversion of its
arrays to NumPy; we keep that: the only way to the host is :meth:`to_host`.
"""
from __future__ import annotations

import numpy as np

from .base import Backend

INSTALL_HINT = 'pip install "tinygrad_rnn[cuda12]"  (or "tinygrad_rnn[cuda13]" for CUDA 13)'


def import_cupy():
    """Import CuPy or raise an error that says what is missing and how to install it."""
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(
            f"device 'cuda' needs CuPy, which is not installed ({exc}). Install it with: {INSTALL_HINT}"
        ) from None
    return cupy


def device_count() -> int:
    """How many CUDA GPUs CuPy sees (0 when CuPy or the driver is missing)."""
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount())
    except Exception:  # no CuPy, or no usable driver: no GPU for us
        return 0


class CupyBackend(Backend):
    """Arrays are ``cupy.ndarray`` objects on GPU ``index``."""

    def __init__(self, index: int = 0):
        cupy = import_cupy()
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # the CUDA driver itself is missing or broken
            raise RuntimeError(f"device 'cuda:{index}': no usable CUDA GPU ({exc})") from None
        if count == 0:
            raise RuntimeError(f"device 'cuda:{index}': CuPy is installed but no CUDA GPU is present")
        if not 0 <= index < count:
            raise RuntimeError(f"device 'cuda:{index}': only {count} CUDA GPU(s) present (cuda:0..cuda:{count - 1})")
        self.xp = cupy
        self.index = index
        self.device = f"cuda:{index}"
        self._cuda_device = cupy.cuda.Device(index)
        self._seed = 0
        self._rnn_kernels = None
        with self._cuda_device:
            self._rng = cupy.random.RandomState(0)

    def asarray(self, data, dtype=None):
        with self._cuda_device:
            return self.xp.asarray(data, dtype=dtype)

    def to_host(self, array) -> np.ndarray:
        return self.xp.asnumpy(array)

    def is_array(self, obj) -> bool:
        return isinstance(obj, self.xp.ndarray) and obj.device.id == self.index

    def scatter_add(self, target, index, values) -> None:
        import cupyx

        cupyx.scatter_add(target, index, values)

    def seed(self, seed: int) -> None:
        with self._cuda_device:
            self._rng = self.xp.random.RandomState(seed)

    def randn(self, shape, dtype):
        with self._cuda_device:
            return self._rng.standard_normal(shape, dtype=np.dtype(dtype))

    def rand(self, shape, dtype):
        with self._cuda_device:
            return self._rng.random_sample(shape, dtype=np.dtype(dtype))

    def randint(self, low, high, shape):
        with self._cuda_device:
            return self._rng.randint(low, high, size=shape, dtype=np.int64)

    def permutation(self, n):
        with self._cuda_device:
            return self._rng.permutation(n).astype(np.int64, copy=False)

    def argsort(self, array, axis):
        return self.xp.argsort(array, axis=axis)  # CuPy's sort is always stable and takes no ``kind="stable"``

    def rnn_kernels(self):
        """The fused RNN ops' gate updates as single CUDA kernels, compiled on first use."""
        if self._rnn_kernels is None:
            from .rnn_kernels_cupy import CupyPointwise

            self._rnn_kernels = CupyPointwise(self.xp)
        return self._rnn_kernels

    can_capture = True
    _capture = None

    def begin_capture(self) -> None:
        """Record this GPU's work into a CUDA graph: a non-blocking stream in capture mode, and a private
        memory pool for everything allocated meanwhile, so that memory the graph writes on every replay
        is never handed to other work."""
        cupy = self.xp
        self._cuda_device.synchronize()
        pool = cupy.cuda.MemoryPool()
        stream = cupy.cuda.Stream(non_blocking=True)
        contexts = [self._cuda_device, cupy.cuda.using_allocator(pool.malloc), stream]
        entered = []
        try:
            for context in contexts:
                context.__enter__()
                entered.append(context)
            stream.begin_capture()
        except BaseException:
            _exit_all(entered)
            raise
        self._capture = (pool, stream, entered)

    def end_capture(self):
        pool, stream, entered = self._capture
        self._capture = None
        try:
            graph = stream.end_capture()
        finally:
            _exit_all(entered)
        return _CudaGraph(graph, pool, self._cuda_device)

    def abort_capture(self) -> None:
        if self._capture is None:
            return
        _, stream, entered = self._capture
        self._capture = None
        try:
            stream.end_capture()  # the capture may already be invalidated: only the clean-up matters here
        except Exception:
            pass
        finally:
            _exit_all(entered)

    def synchronize(self) -> None:
        self._cuda_device.synchronize()


def _exit_all(contexts):
    for context in reversed(contexts):
        context.__exit__(None, None, None)


class _CudaGraph:
    """A captured CUDA graph with the memory pool its allocations came from (kept alive with it)."""

    executed = False  # capture records the kernels without running them

    def __init__(self, graph, pool, cuda_device):
        self.graph, self.pool, self.cuda_device = graph, pool, cuda_device

    def replay(self) -> None:
        """Launch every recorded kernel again, on the current stream."""
        with self.cuda_device:
            self.graph.launch()
