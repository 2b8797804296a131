"""Binary addition: an RNN reads two numbers bit by bit and emits the bits of their sum.

Bits are least-significant first, so at time step t the network sees bit t of
both operands and the carry it has to remember comes from step t-1. Operands
are drawn below ``2**(n_bits - 1)``, so their sum always fits in ``n_bits``
bits and no information is lost to overflow.
"""

from __future__ import annotations

import numpy as np

from ..checks import check_int

__all__ = ["int_to_bits", "bits_to_int", "make_binary_addition"]

# Keeps every value and every sum inside int64.
_MAX_BITS = 62


def int_to_bits(values, n_bits: int) -> np.ndarray:
    """Bits of non-negative ints, least-significant first: shape ``values.shape + (n_bits,)``.

    Returns an int64 array of 0s and 1s; ``int_to_bits(6, 4)`` is ``[0, 1, 1, 0]``.
    """
    n_bits = check_int("int_to_bits", "n_bits", n_bits, minimum=1, maximum=_MAX_BITS)
    values = np.asarray(values)
    if values.size and not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"int_to_bits: values must be integers, got dtype {values.dtype}")
    values = values.astype(np.int64)
    out_of_range = (values < 0) | (values >= 2 ** n_bits)
    if out_of_range.any():
        raise ValueError(f"int_to_bits: values must be in [0, 2**{n_bits}), "
                         f"got {int(values[out_of_range].flat[0])}")
    shifts = np.arange(n_bits, dtype=np.int64)
    return (values[..., None] >> shifts) & 1


def bits_to_int(bits) -> np.ndarray:
    """Inverse of :func:`int_to_bits`: ints from 0/1 bits (last axis, LSB first).

    Accepts int, bool or float arrays whose entries are exactly 0 or 1
    (threshold model probabilities first, e.g. ``bits_to_int(p > 0.5)``).
    Returns int64 with the last axis removed.
    """
    bits = np.asarray(bits)
    if bits.ndim == 0:
        raise ValueError("bits_to_int: bits must have at least 1 dimension, got a scalar")
    if bits.shape[-1] > _MAX_BITS:
        raise ValueError(f"bits_to_int: bits must have at most {_MAX_BITS} bits on the last "
                         f"axis, got {bits.shape[-1]}")
    not_binary = (bits != 0) & (bits != 1)
    if not_binary.any():
        first_bad = bits[not_binary].flat[0].item()
        raise ValueError(f"bits_to_int: bits must be 0 or 1, got {first_bad!r}")
    weights = np.int64(1) << np.arange(bits.shape[-1], dtype=np.int64)
    return bits.astype(np.int64) @ weights


def make_binary_addition(n: int, n_bits: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random binary additions ``a + b`` with ``a, b < 2**(n_bits - 1)``.

    Returns ``(x, y)``: ``x`` float32 (n, n_bits, 2) holds the bits of a and b
    (``x[i, t] == [bit t of a, bit t of b]``, LSB first) and ``y`` float32
    (n, n_bits) the bits of ``a + b``, which fits in ``n_bits`` bits. Float so
    they feed a sigmoid/binary cross-entropy model directly. The operands are
    ``bits_to_int(x[..., 0])`` and ``bits_to_int(x[..., 1])``.
    """
    func = "make_binary_addition"
    n = check_int(func, "n", n, minimum=1)
    n_bits = check_int(func, "n_bits", n_bits, minimum=2, maximum=_MAX_BITS)
    seed = check_int(func, "seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2 ** (n_bits - 1), size=n, dtype=np.int64)
    b = rng.integers(0, 2 ** (n_bits - 1), size=n, dtype=np.int64)
    x = np.stack([int_to_bits(a, n_bits), int_to_bits(b, n_bits)], axis=-1).astype(np.float32)
    y = int_to_bits(a + b, n_bits).astype(np.float32)
    return x, y
