"""Argument checks shared across the package: integers, fractions and ``dim`` arguments.

Every error names the calling op and the argument, says what was expected and
shows what was given, e.g. ``GRU: num_layers must be a positive integer, got 0``.
"""
from __future__ import annotations

import numbers

import numpy as np

#: the integer types accepted without the slower ``numbers.Integral`` check
_INTS = (int, np.integer)


def _int_expectation(minimum, maximum) -> str:
    if maximum is None:
        if minimum == 1:
            return "a positive integer"
        if minimum == 0:
            return "a non-negative integer"
        return "an integer" if minimum is None else f"an integer >= {minimum}"
    if minimum is None:
        return f"an integer <= {maximum}"
    return f"an integer in [{minimum}, {maximum}]"


def check_int(op: str, name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as a Python int, or a ValueError naming ``op`` and ``name`` (a bool or a float is refused)."""
    expected = _int_expectation(minimum, maximum)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{op}: {name} must be {expected}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{op}: {name} must be {expected}, got {value}")
    return value


def check_fraction(op: str, name: str, value) -> float:
    """``value`` as a float strictly between 0 and 1 (a split of data), or a ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{op}: {name} must be a number strictly between 0 and 1, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{op}: {name} must be strictly between 0 and 1, got {value}")
    return value


def check_probability(op: str, name: str, value) -> float:
    """``value`` as a float in [0, 1] (a dropout rate), or a ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{op}: {name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def check_int_dim(dim, op) -> int:
    """``dim`` as a Python int; a bool, float or tuple is an error naming ``op``."""
    if isinstance(dim, bool) or not isinstance(dim, _INTS):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    return int(dim)


def normalize_dims(dim, ndim, op):
    """PyTorch ``dim`` (int, tuple or None) → a sorted tuple of non-negative axes, or None."""
    if dim is None:
        return None
    if isinstance(dim, _INTS):
        dims = (dim,)
    elif isinstance(dim, (tuple, list)):
        dims = tuple(dim)
    else:
        raise TypeError(f"{op}: dim must be an int, a tuple of ints or None, got {dim!r}")
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, _INTS):
            raise TypeError(f"{op}: dim must be an int, a tuple of ints or None, got {dim!r}")
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} dimension(s)")
        out.append(int(d) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dim {dim!r} repeats a dimension")
    return tuple(sorted(out)) if ndim else None


def normalize_dim(dim, ndim, op) -> int:
    """One PyTorch ``dim`` (negative counts from the end) → a non-negative axis."""
    dim = check_int_dim(dim, op)
    return normalize_dims(dim, ndim, op)[0] if ndim else 0
