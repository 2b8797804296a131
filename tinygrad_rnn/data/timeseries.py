"""Forecasting windows: chronological splits, sliding windows, normalisation, the naive baseline.

Typical use on one series::

    train, test = split_series(temps, train_fraction=0.7)
    norm = Normalizer.fit(train)
    X, y = make_windows(norm.transform(train), lookback=120, horizon=1)
    ...
    mae_degrees = mae_normalised * norm.scale
    baseline = naive_forecast_mae(test, lookback=120, horizon=1)

On a multivariate series (T, F) with gaps, such as a
:class:`~tinygrad_rnn.data.weather.WeatherSeries`, windows are named by the row
of their last input (:func:`window_ends`) and cut only when a batch needs them
(:func:`gather_windows`), so a year of 10-minute readings never has to be
copied 240 times over.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..checks import check_fraction, check_int
from ._checks import check_1d

__all__ = ["split_series", "make_windows", "window_ends", "gather_windows", "Normalizer", "naive_forecast_mae"]

def split_series(series, train_fraction: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """Chronological (train, test) split: the first ``train_fraction`` is train.

    Never shuffle a forecasting series before splitting, or the model is
    tested on hours sandwiched between training hours.
    """
    series = check_1d("split_series", "series", series)
    train_fraction = check_fraction("split_series", "train_fraction", train_fraction)
    if len(series) < 2:
        raise ValueError(f"split_series: series must have at least 2 values, got {len(series)}")
    n_train = min(max(1, int(round(len(series) * train_fraction))), len(series) - 1)
    return series[:n_train], series[n_train:]


def _check_window(func: str, series, lookback, horizon) -> tuple[np.ndarray, int, int, int]:
    """Shared validation of make_windows and naive_forecast_mae; returns n_windows too."""
    series = check_1d(func, "series", series)
    lookback = check_int(func, "lookback", lookback, minimum=1)
    horizon = check_int(func, "horizon", horizon, minimum=1)
    n_windows = len(series) - lookback - horizon + 1
    if n_windows < 1:
        raise ValueError(f"{func}: series must have at least lookback + horizon = "
                         f"{lookback + horizon} values, got {len(series)}")
    return series, lookback, horizon, n_windows


def make_windows(series, lookback: int = 120, horizon: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Every sliding window of a series as supervised (X, y) pairs, float32.

    ``X`` has shape (n, lookback, 1) (batch, time, features) with
    ``X[i, :, 0] == series[i:i + lookback]``; ``y`` has shape (n,) with
    ``y[i] == series[i + lookback - 1 + horizon]``, the value ``horizon``
    steps after the last input. ``n = len(series) - lookback - horizon + 1``.
    """
    series, lookback, horizon, n_windows = _check_window("make_windows", series,
                                                         lookback, horizon)
    series = series.astype(np.float32, copy=False)
    windows = np.lib.stride_tricks.sliding_window_view(series, lookback)[:n_windows]
    X = np.ascontiguousarray(windows)[:, :, None]
    y = series[lookback - 1 + horizon:].copy()
    return X, y


def naive_forecast_mae(series, lookback: int = 120, horizon: int = 1) -> float:
    """MAE of the "same as now" forecast over the windows of :func:`make_windows`.

    Predicts ``y[i]`` with the last input ``series[i + lookback - 1]``: the
    baseline a recurrent model has to beat. Same units as ``series``.
    """
    series, lookback, horizon, n_windows = _check_window("naive_forecast_mae", series,
                                                         lookback, horizon)
    series = series.astype(np.float64, copy=False)
    last_inputs = series[lookback - 1:lookback - 1 + n_windows]
    targets = series[lookback - 1 + horizon:]
    return float(np.mean(np.abs(targets - last_inputs)))


def window_ends(values, lookback: int, horizon: int, every: int = 1, targets=None) -> np.ndarray:
    """The last input row ``e`` of every complete window of ``values`` (T, F), int64, ascending.

    A window reads the ``lookback`` rows ``e - every·(lookback-1), ..., e - every, e``
    and its target is row ``e + horizon``. It is complete when every row it
    spans, from its first input to its last, and its target row hold no NaN.
    ``targets=(lo, hi)`` keeps the windows whose target row is in ``[lo, hi)``
    (a split; their inputs may reach back before ``lo``, which is the past).
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"window_ends: values must be a 2-D (time, features) array, got shape {values.shape}")
    lookback = check_int("window_ends", "lookback", lookback, minimum=1)
    horizon = check_int("window_ends", "horizon", horizon, minimum=1)
    every = check_int("window_ends", "every", every, minimum=1)
    lo, hi = (0, len(values)) if targets is None else targets
    span = every * (lookback - 1)
    bad = np.concatenate([[0], np.cumsum(~np.isfinite(values).all(axis=1))])  # bad[i]: NaN rows before row i
    ends = np.arange(max(span, lo - horizon), min(len(values), hi) - horizon, dtype=np.int64)
    complete = (bad[ends + 1] == bad[ends - span]) & (bad[ends + horizon + 1] == bad[ends + horizon])
    return ends[complete]


def gather_windows(values, ends, lookback: int, every: int = 1) -> np.ndarray:
    """The inputs of the windows ending at rows ``ends``: float32 (len(ends), lookback, F), oldest first."""
    offsets = np.arange(-(lookback - 1), 1, dtype=np.int64) * every
    return np.asarray(values, dtype=np.float32)[np.asarray(ends)[:, None] + offsets]


class Normalizer:
    """Standardise with a mean and std fitted on training data only.

    ``transform`` maps to zero mean / unit std, ``inverse_transform`` maps
    back. ``scale`` (the std) converts an error measured on normalised data,
    such as an MAE, back to the original units: ``mae_degrees = mae * scale``.
    """

    def __init__(self, mean: float, std: float):
        for name, value in (("mean", mean), ("std", std)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                    or not np.isfinite(value):
                raise ValueError(f"Normalizer: {name} must be a finite number, got {value!r}")
        if std <= 0:
            raise ValueError(f"Normalizer: std must be > 0, got {std}")
        self.mean = float(mean)
        self.std = float(std)

    @classmethod
    def fit(cls, data) -> "Normalizer":
        """Normalizer with the mean and std of ``data`` (use the training split)."""
        data = np.asarray(data, dtype=np.float64)
        if data.size < 1:
            raise ValueError("Normalizer.fit: data must not be empty, got size 0")
        std = float(data.std())
        if std == 0.0:
            raise ValueError("Normalizer.fit: data must not be constant, got std 0")
        return cls(float(data.mean()), std)

    @property
    def scale(self) -> float:
        """Factor from normalised units back to the original ones (the std)."""
        return self.std

    def transform(self, data) -> np.ndarray:
        """``(data - mean) / std`` as float32."""
        return ((np.asarray(data, dtype=np.float64) - self.mean) / self.std).astype(np.float32)

    def inverse_transform(self, data) -> np.ndarray:
        """``data * std + mean`` as float32, undoing :meth:`transform`."""
        return (np.asarray(data, dtype=np.float64) * self.std + self.mean).astype(np.float32)

    def to_dict(self) -> dict:
        """Plain dict ``{"mean": ..., "std": ...}`` for a checkpoint."""
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        """Rebuild a Normalizer saved with :meth:`to_dict`."""
        if not isinstance(d, dict) or not {"mean", "std"} <= d.keys():
            raise ValueError(f"Normalizer.from_dict: d must be a dict with 'mean' and 'std', "
                             f"got {d!r:.80}")
        return cls(d["mean"], d["std"])

    def __repr__(self) -> str:
        return f"Normalizer(mean={self.mean:.6g}, std={self.std:.6g})"
