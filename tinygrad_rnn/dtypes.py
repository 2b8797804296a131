"""Dtypes: the names users write (``tr.float32``, ``"long"``), the default float dtype and PyTorch's promotion rules.

Tensors hold NumPy dtypes. This module turns what a user writes into one,
keeps the default dtype of Python floats and float factories
(:func:`set_default_dtype`, float32 unless changed, as in PyTorch), and says
which dtype a result takes when two operands differ, as PyTorch does.
"""
from __future__ import annotations

import numpy as np

float16, float32, float64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
int32, int64, bool_ = np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_)
_NAMES = {"float": float32, "double": float64, "half": float16, "long": int64, "int": int32, "bool": bool_}
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
_DEFAULT = [float32]  # the one process-wide setting, changed only by set_default_dtype


def as_dtype(dtype) -> np.dtype:
    """Turn ``float32``, ``"float32"``, ``np.float32`` or ``"long"`` into a NumPy dtype."""
    if isinstance(dtype, str) and dtype in _NAMES:
        return _NAMES[dtype]
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}: expected e.g. tinygrad_rnn.float32, 'float64' or 'int64'") from None


def get_default_dtype() -> np.dtype:
    """The dtype of Python floats in ``Tensor(...)`` and of float factories (``zeros``, ``randn``...): float32
    unless :func:`set_default_dtype` changed it."""
    return _DEFAULT[0]


def set_default_dtype(d) -> None:
    """Make ``d`` (float16, float32 or float64) the default float dtype, as ``torch.set_default_dtype`` does."""
    dtype = as_dtype(d)
    if dtype not in (float16, float32, float64):
        raise TypeError(
            f"set_default_dtype: only floating point dtypes (float16, float32, float64) can be the default, got {dtype}"
        )
    _DEFAULT[0] = dtype


def default_dtype_of(data):
    """PyTorch's rule for Python data: floats take the default dtype (returned), ints and bools keep NumPy's (None)."""
    try:
        array = np.asarray(data)
    except ValueError as exc:
        raise TypeError(f"Tensor: cannot make a tensor from ragged or non-numeric data ({exc})") from None
    return _DEFAULT[0] if array.dtype.kind == "f" else None


def promote(a: np.dtype, b: np.dtype) -> np.dtype:
    """PyTorch's promotion between two tensors: float beats int beats bool, wider beats narrower."""
    if a == b:
        return a
    if _KIND_RANK[a.kind] != _KIND_RANK[b.kind]:
        return a if _KIND_RANK[a.kind] > _KIND_RANK[b.kind] else b
    return np.promote_types(a, b)


def scalar_dtype(value, like: np.dtype) -> np.dtype:
    """The dtype a Python scalar takes next to a tensor of dtype ``like`` (PyTorch's rule)."""
    if like.kind in "fc":
        return like
    if isinstance(value, float):
        return _DEFAULT[0]
    if isinstance(value, bool):
        return like
    return like if like.kind in "iu" else int64


__all__ = [
    "float16", "float32", "float64", "int32", "int64", "bool_", "as_dtype", "promote", "scalar_dtype",
    "get_default_dtype", "set_default_dtype",
]
