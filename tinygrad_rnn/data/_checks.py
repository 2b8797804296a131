"""Argument checks shared by the data utilities.

Every error names the calling function and the argument, says what was
expected and shows what was given, e.g.
``batchify: batch_size must be an int >= 1, got 0``.
"""

from __future__ import annotations

import numbers

import numpy as np


def check_int(func: str, name: str, value, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """Return ``value`` as a Python int after checking its type and range."""
    expected = "an int"
    if minimum is not None and maximum is not None:
        expected = f"an int in [{minimum}, {maximum}]"
    elif minimum is not None:
        expected = f"an int >= {minimum}"
    elif maximum is not None:
        expected = f"an int <= {maximum}"
    # bool is an Integral subclass, but passing True as a size is a bug.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{func}: {name} must be {expected}, "
                         f"got {value!r} ({type(value).__name__})")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{func}: {name} must be {expected}, got {value}")
    return value


def check_fraction(func: str, name: str, value) -> float:
    """Return ``value`` as a float after checking 0 < value < 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{func}: {name} must be a number strictly between 0 and 1, "
                         f"got {value!r} ({type(value).__name__})")
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{func}: {name} must be strictly between 0 and 1, got {value}")
    return value


def check_1d(func: str, name: str, data) -> np.ndarray:
    """Return ``data`` as a 1-D NumPy array (no copy when already one)."""
    array = np.asarray(data)
    if array.ndim != 1:
        raise ValueError(f"{func}: {name} must be a 1-D array, got shape {array.shape}")
    return array


def check_integer_dtype(func: str, name: str, array: np.ndarray) -> None:
    """Reject arrays that cannot hold token ids (floats, strings, objects)."""
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{func}: {name} must hold integer token ids, "
                         f"got dtype {array.dtype}")
