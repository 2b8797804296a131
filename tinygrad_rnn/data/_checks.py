"""Argument checks of the data utilities: 1-D arrays and token-id dtypes.

Integers and fractions are checked by the package's shared ``checks.py``.
"""

from __future__ import annotations

import numpy as np


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
