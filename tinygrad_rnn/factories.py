"""Tensor factories (zeros, ones, randn, linspace, from_numpy, ...) and ``manual_seed``, with PyTorch's signatures.

Float factories make the default dtype (float32 unless ``set_default_dtype``
changed it); random ones draw from the device's generator, seeded by
``manual_seed``.
"""
from __future__ import annotations

import numbers

import numpy as np

from .backends import get_backend, seed_all
from .checks import check_int
from .dtypes import as_dtype, float16, float32, float64, get_default_dtype, int64
from .tensor import Tensor

#: the largest float16 below 1: a float32 uniform sample rounds up to 1.0 in float16 unless capped
_BELOW_ONE_FP16 = np.nextafter(np.float16(1), np.float16(0))


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


def _float_dtype(dtype):
    """``dtype`` as a NumPy dtype, or the default float dtype when None."""
    return get_default_dtype() if dtype is None else as_dtype(dtype)


def _draw(backend, kind, shape, dtype, op):
    """Samples from ``backend.randn`` or ``backend.rand`` in ``dtype``; float16 is drawn in float32 and cast
    (NumPy and CuPy draw only float32 and float64), rand's samples kept below 1."""
    dtype = _float_dtype(dtype)
    if dtype not in (float16, float32, float64):
        raise TypeError(f"{op}: cannot draw samples of dtype {dtype}; expected float16, float32 or float64")
    if dtype != float16:
        return getattr(backend, kind)(shape, dtype)
    out = getattr(backend, kind)(shape, float32).astype(float16)
    return backend.xp.minimum(out, _BELOW_ONE_FP16) if kind == "rand" else out


def zeros(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    backend = get_backend(device)
    return _finish(backend.xp.zeros(_shape(size, "zeros"), dtype=_float_dtype(dtype)), backend, requires_grad)


def ones(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    backend = get_backend(device)
    return _finish(backend.xp.ones(_shape(size, "ones"), dtype=_float_dtype(dtype)), backend, requires_grad)


def full(size, fill_value, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (the default float dtype for floats, int64 for ints)."""
    if dtype is None:
        dtype = np.bool_ if isinstance(fill_value, bool) else (int64 if isinstance(fill_value, int) else get_default_dtype())
    backend = get_backend(device)
    array = backend.xp.full(_shape((size,) if isinstance(size, int) else (tuple(size),), "full"), fill_value, dtype=as_dtype(dtype))
    return _finish(array, backend, requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad=False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """``[start, end)`` in steps of ``step``: int64 for integer arguments, else the default float dtype."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: start={start} and end={end} are inconsistent with the sign of step={step}")
    if dtype is None:
        dtype = int64 if all(isinstance(v, (int, np.integer)) for v in (start, end, step)) else get_default_dtype()
    backend = get_backend(device)
    return _finish(backend.xp.arange(start, end, step).astype(as_dtype(dtype)), backend, requires_grad)


def eye(n, m=None, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """The (n, m) identity matrix (m defaults to n)."""
    n, m = _shape((n, n if m is None else m), "eye")
    backend = get_backend(device)
    return _finish(backend.xp.eye(n, m, dtype=_float_dtype(dtype)), backend, requires_grad)


def randn(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """Standard normal samples from the device's generator (seeded by ``manual_seed``)."""
    backend = get_backend(device)
    return _finish(_draw(backend, "randn", _shape(size, "randn"), dtype, "randn"), backend, requires_grad)


def rand(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1) from the device's generator (seeded by ``manual_seed``)."""
    backend = get_backend(device)
    return _finish(_draw(backend, "rand", _shape(size, "rand"), dtype, "rand"), backend, requires_grad)


def empty(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """A tensor of ``size`` whose values are whatever the memory held (fast; fill it before reading)."""
    backend = get_backend(device)
    return _finish(backend.xp.empty(_shape(size, "empty"), dtype=_float_dtype(dtype)), backend, requires_grad)


def empty_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    """:func:`empty` of ``input``'s shape, and of its dtype and device unless given."""
    _check_like(input, "empty_like")
    return empty(input.shape, dtype=dtype or input.dtype, device=device or input.device, requires_grad=requires_grad)


def full_like(input: Tensor, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """:func:`full` of ``input``'s shape, and of its dtype and device unless given."""
    _check_like(input, "full_like")
    return full(input.shape, fill_value, dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad)


def randn_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    """:func:`randn` of ``input``'s shape, and of its dtype and device unless given."""
    _check_like(input, "randn_like")
    backend = get_backend(device or input.device)
    return _finish(_draw(backend, "randn", input.shape, dtype or input.dtype, "randn_like"), backend, requires_grad)


def rand_like(input: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    """:func:`rand` of ``input``'s shape, and of its dtype and device unless given."""
    _check_like(input, "rand_like")
    backend = get_backend(device or input.device)
    return _finish(_draw(backend, "rand", input.shape, dtype or input.dtype, "rand_like"), backend, requires_grad)


def _check_like(input, op):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")


def randint(*args, size=None, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """Integers drawn uniformly from [low, high): ``randint(high, size)`` or ``randint(low, high, size)``
    (``size`` a tuple, positional or keyword), int64 unless ``dtype`` says otherwise."""
    if size is None and args:
        *args, size = args
    if size is None or len(args) not in (1, 2):
        raise TypeError("randint: expected randint(high, size) or randint(low, high, size), e.g. randint(0, 10, (3,))")
    low, high = (0, args[0]) if len(args) == 1 else args
    low = check_int("randint", "low", low)
    high = check_int("randint", "high", high)
    if low >= high:
        raise ValueError(f"randint: low ({low}) must be less than high ({high})")
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"randint: size must be a tuple of ints such as (3,) or (2, 4), got {size!r}")
    backend = get_backend(device)
    array = backend.randint(low, high, _shape((tuple(size),), "randint"))
    if dtype is not None and as_dtype(dtype) != int64:
        array = array.astype(as_dtype(dtype))
    return _finish(array, backend, requires_grad)


def randperm(n, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """A random permutation of ``0 .. n-1`` (int64 unless ``dtype`` says otherwise)."""
    n = check_int("randperm", "n", n, minimum=0)
    backend = get_backend(device)
    array = backend.permutation(n)
    if dtype is not None and as_dtype(dtype) != int64:
        array = array.astype(as_dtype(dtype))
    return _finish(array, backend, requires_grad)


def linspace(start, end, steps, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included (the default float dtype)."""
    steps = check_int("linspace", "steps", steps, minimum=0)
    bounds = []
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, Tensor):
            if value.numel() != 1:
                raise ValueError(f"linspace: {name} must be a number or a one-element tensor, got shape {value.shape}")
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"linspace: {name} must be a number, got {value!r}")
        bounds.append(float(value))
    backend = get_backend(device)
    array = backend.xp.linspace(bounds[0], bounds[1], steps, dtype=float64).astype(_float_dtype(dtype))
    return _finish(array, backend, requires_grad)


def from_numpy(ndarray) -> Tensor:
    """A CPU tensor that shares memory with the NumPy array ``ndarray``: changing one changes the other."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(ndarray).__name__}")
    if ndarray.dtype.kind not in "biuf":
        raise TypeError(
            f"from_numpy: unsupported dtype {ndarray.dtype}; expected bool, integer or floating point data"
        )
    return Tensor._make(ndarray.view(np.ndarray) if type(ndarray) is not np.ndarray else ndarray, get_backend("cpu"))


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a tensor, without a copy when it already is one of that dtype and device (the tensor
    itself), or a NumPy array of that dtype bound for the CPU (memory shared, as :func:`from_numpy`)."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype)
    if isinstance(data, np.ndarray) and (device is None or get_backend(device).device == "cpu"):
        if dtype is None or as_dtype(dtype) == data.dtype:
            return from_numpy(data)
    return Tensor(data, dtype=dtype, device=device)


def tensor(data, dtype=None, device="cpu", requires_grad=False, *, name=None) -> Tensor:
    """Same as ``Tensor(data, ...)``, in PyTorch's spelling; ``name`` labels it in ``draw_graph``."""
    return Tensor(data, requires_grad=requires_grad, device=device, dtype=dtype, name=name)


def manual_seed(seed: int) -> None:
    """Seed the random generators of every backend (CPU, and CUDA when used) for reproducible runs."""
    seed_all(check_int("manual_seed", "seed", seed, minimum=0))
