"""Handwritten digits as sequences: an RNN reads an 8x8 image one row per time step."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import check_fraction, check_int

__all__ = ["DigitsSplit", "load_digits_sequences"]

_EXAMPLES_HINT = 'install it with: pip install "tinygrad_rnn[examples]"'


class DigitsSplit(NamedTuple):
    """Train and test arrays; unpacks as ``x_train, y_train, x_test, y_test``."""

    x_train: np.ndarray  # (n_train, 8, 8) float32 in [0, 1]
    y_train: np.ndarray  # (n_train,) int64 in 0..9
    x_test: np.ndarray   # (n_test, 8, 8) float32 in [0, 1]
    y_test: np.ndarray   # (n_test,) int64 in 0..9


def load_digits_sequences(test_fraction: float = 0.2, seed: int = 0) -> DigitsSplit:
    """scikit-learn's 1,797 8x8 digit images as (batch, time=8 rows, features=8) sequences.

    Pixels (0..16 in the source) are scaled to [0, 1] as float32; labels are
    int64. The split is stratified (each digit keeps its share in train and
    test) and deterministic for a given ``seed``; both parts are shuffled.
    The data ships with scikit-learn, so no network is needed.
    """
    test_fraction = check_fraction("load_digits_sequences", "test_fraction", test_fraction)
    seed = check_int("load_digits_sequences", "seed", seed, minimum=0)
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError(f"load_digits_sequences: needs the scikit-learn package; "
                          f"{_EXAMPLES_HINT}") from err
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)

    rng = np.random.default_rng(seed)
    train_rows, test_rows = [], []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        n_test = min(max(1, int(round(len(rows) * test_fraction))), len(rows) - 1)
        test_rows.append(rows[:n_test])
        train_rows.append(rows[n_test:])
    train = rng.permutation(np.concatenate(train_rows))
    test = rng.permutation(np.concatenate(test_rows))
    return DigitsSplit(images[train], labels[train], images[test], labels[test])
