"""The backend interface: everything an op needs that differs between devices.

A backend owns one device. Ops reach the array library through ``backend.xp``
(``numpy`` or ``cupy``, which share an API) and call the few helpers below
for what the two libraries do differently. Nothing outside ``backends/``
asks which library it is talking to.
"""
from __future__ import annotations

import numpy as np

from .rnn_kernels_numpy import ReferencePointwise


class Backend:
    """One device: its array module, host transfers, scatter-add, random numbers and RNN gate kernels."""

    #: the array module (``numpy`` or ``cupy``)
    xp = np
    #: the device string users see, e.g. ``"cpu"`` or ``"cuda:0"``
    device = "cpu"

    def asarray(self, data, dtype=None):
        """Put host data (lists, scalars, NumPy arrays) on this device."""
        raise NotImplementedError

    def to_host(self, array) -> np.ndarray:
        """Return a NumPy copy of an array of this device (the only way back to the host)."""
        raise NotImplementedError

    def is_array(self, obj) -> bool:
        """True when ``obj`` is an array that lives on this backend's device."""
        raise NotImplementedError

    def scatter_add(self, target, index, values) -> None:
        """In place ``target[index] += values``, adding repeated indices up (unlike ``+=``)."""
        raise NotImplementedError

    def seed(self, seed: int) -> None:
        """Restart this device's random number generator from ``seed``."""
        raise NotImplementedError

    def randn(self, shape, dtype):
        """Standard normal samples of ``shape`` and ``dtype`` from this device's generator."""
        raise NotImplementedError

    def rand(self, shape, dtype):
        """Uniform samples in [0, 1) of ``shape`` and ``dtype`` from this device's generator."""
        raise NotImplementedError

    def randint(self, low, high, shape):
        """Integers drawn uniformly from [low, high), int64 of ``shape``, from this device's generator."""
        raise NotImplementedError

    def permutation(self, n):
        """A random permutation of ``0 .. n-1`` (int64) from this device's generator."""
        raise NotImplementedError

    def argsort(self, array, axis):
        """Indices that sort ``array`` along ``axis``, equal elements kept in their order (a stable sort);
        NaN sorts last. NumPy needs ``kind="stable"`` for that, CuPy's only sort already is."""
        return self.xp.argsort(array, axis=axis, kind="stable")

    _rnn_kernels = None

    def __copy__(self):
        return self  # one backend object per device: copies of tensors stay on the same device

    def __deepcopy__(self, memo):
        return self

    def __getstate__(self):
        """Pickle without the kernel cache (it holds the array module), so tensors pickle as before."""
        state = dict(self.__dict__)
        state.pop("_rnn_kernels", None)
        return state

    def rnn_kernels(self):
        """The pointwise gate updates the fused RNN ops (``ops/rnn.py``) run on this device: by default
        :class:`~tinygrad_rnn.backends.rnn_kernels_numpy.ReferencePointwise`, ufuncs of ``xp`` writing
        into given buffers; CuPy overrides it with single CUDA kernels."""
        if self._rnn_kernels is None:
            self._rnn_kernels = ReferencePointwise(self.xp)
        return self._rnn_kernels

    #: whether :meth:`begin_capture` can record this device's work as a replayable graph (``tr.cuda.graphed``)
    can_capture = False

    def begin_capture(self) -> None:
        """Start recording the work queued on this device into a graph; :meth:`end_capture` returns it as an
        object with ``replay()`` and ``executed`` (whether recording also ran the work). CUDA only."""
        raise NotImplementedError(f"device {self.device!r} cannot capture its work as a graph")

    def end_capture(self):
        raise NotImplementedError(f"device {self.device!r} cannot capture its work as a graph")

    def abort_capture(self) -> None:
        """Stop a capture that failed half-way, discarding what was recorded."""

    def synchronize(self) -> None:
        """Wait for queued device work to finish (a no-op on the CPU); for timing."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.device}>"
