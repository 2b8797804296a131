"""Tensor factories (zeros, ones, randn, ...) and ``manual_seed``, with PyTorch's signatures."""
from __future__ import annotations

import numpy as np

from .backends import get_backend, seed_all
from .checks import check_int
from .dtypes import as_dtype, float32, int64
from .tensor import Tensor


def _shape(size, op):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for n in size:
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"{op}: sizes must be non-negative integers, got {size!r}")
    return tuple(int(n) for n in size)


def _finish(array, backend, requires_grad):
    t = Tensor._make(array, backend)
    return t.requires_grad_() if requires_grad else t


def zeros(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    backend = get_backend(device)
    return _finish(backend.xp.zeros(_shape(size, "zeros"), dtype=as_dtype(dtype or float32)), backend, requires_grad)


def ones(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    backend = get_backend(device)
    return _finish(backend.xp.ones(_shape(size, "ones"), dtype=as_dtype(dtype or float32)), backend, requires_grad)


def full(size, fill_value, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (float32 for floats, int64 for ints)."""
    if dtype is None:
        dtype = np.bool_ if isinstance(fill_value, bool) else (int64 if isinstance(fill_value, int) else float32)
    backend = get_backend(device)
    array = backend.xp.full(_shape((size,) if isinstance(size, int) else (tuple(size),), "full"), fill_value, dtype=as_dtype(dtype))
    return _finish(array, backend, requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """``[start, end)`` in steps of ``step``: int64 for integer arguments, else float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: start={start} and end={end} are inconsistent with the sign of step={step}")
    if dtype is None:
        dtype = int64 if all(isinstance(v, (int, np.integer)) for v in (start, end, step)) else float32
    backend = get_backend(device)
    return _finish(backend.xp.arange(start, end, step).astype(as_dtype(dtype)), backend, requires_grad)


def eye(n, m=None, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """The (n, m) identity matrix (m defaults to n)."""
    n, m = _shape((n, n if m is None else m), "eye")
    backend = get_backend(device)
    return _finish(backend.xp.eye(n, m, dtype=as_dtype(dtype or float32)), backend, requires_grad)


def randn(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """Standard normal samples from the device's generator (seeded by ``manual_seed``)."""
    backend = get_backend(device)
    return _finish(backend.randn(_shape(size, "randn"), as_dtype(dtype or float32)), backend, requires_grad)


def rand(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1) from the device's generator (seeded by ``manual_seed``)."""
    backend = get_backend(device)
    return _finish(backend.rand(_shape(size, "rand"), as_dtype(dtype or float32)), backend, requires_grad)


def tensor(data, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """Same as ``Tensor(data, ...)``, in PyTorch's spelling."""
    return Tensor(data, requires_grad=requires_grad, device=device, dtype=dtype)


def manual_seed(seed: int) -> None:
    """Seed the random generators of every backend (CPU, and CUDA when used) for reproducible runs."""
    seed_all(check_int("manual_seed", "seed", seed, minimum=0))
