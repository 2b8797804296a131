"""The CPU backend: NumPy arrays, NumPy's PCG64 generator."""
from __future__ import annotations

import numpy as np

from .base import Backend


class NumpyBackend(Backend):
    """Arrays are plain ``numpy.ndarray`` objects in host memory."""

    xp = np
    device = "cpu"

    def __init__(self):
        self._rng = np.random.default_rng(0)

    def asarray(self, data, dtype=None):
        return np.asarray(data, dtype=dtype)

    def to_host(self, array) -> np.ndarray:
        return np.array(array, copy=True)

    def is_array(self, obj) -> bool:
        return type(obj) is np.ndarray or isinstance(obj, np.generic)

    def scatter_add(self, target, index, values) -> None:
        np.add.at(target, index, values)

    def seed(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def randn(self, shape, dtype):
        return self._rng.standard_normal(shape, dtype=np.dtype(dtype))

    def rand(self, shape, dtype):
        return self._rng.random(shape, dtype=np.dtype(dtype))

    def randint(self, low, high, shape):
        return self._rng.integers(low, high, size=shape, dtype=np.int64)

    def permutation(self, n):
        return self._rng.permutation(n).astype(np.int64, copy=False)
