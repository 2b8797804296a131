"""The time-series example and its data: the packaged New York weather, the Jena and generic CSV readers,
gap filling, windows, and short runs of the example (learning, the lecture's parameter counts, metrics.json,
repeatability, one-line errors)."""
import datetime
import json
import shutil

import numpy as np
import pytest
from conftest import example_cli_error

from tinygrad_rnn import examples_support as support
from tinygrad_rnn.data.timeseries import gather_windows, window_ends
from tinygrad_rnn.data.weather import (JENA_FEATURES, NYC_FEATURES, fill_gaps, load_nyc_weather,
                                       read_weather_csv)

pytest.importorskip("matplotlib")

JENA_HEADER = ('"Date Time","p (mbar)","T (degC)","Tpot (K)","Tdew (degC)","rh (%)","VPmax (mbar)",'
               '"VPact (mbar)","VPdef (mbar)","sh (g/kg)","H2OC (mmol/mol)","rho (g/m**3)","wv (m/s)",'
               '"max. wv (m/s)","wd (deg)"')


def run_example(*argv):
    return support.load_example("time-series").main([str(a) for a in argv])


def write_jena(path, days=12, seed=0):
    """A small file in the Jena climate format: 10-minute rows from 01.01.2009 00:10:00, a daily temperature
    cycle with weather noise, the other columns following it, and one -9999 wind speed (as the real file has)."""
    rng = np.random.default_rng(seed)
    n = days * 144
    t = np.arange(1, n + 1)
    temp = 5 + 4 * np.sin(2 * np.pi * t / 144) + np.cumsum(rng.normal(0, 0.05, n))
    lines = [JENA_HEADER]
    start = datetime.datetime(2009, 1, 1)
    for i in range(n):
        when = (start + datetime.timedelta(minutes=10 * int(t[i]))).strftime("%d.%m.%Y %H:%M:%S")
        p, T = 990 + rng.normal(0, 2), temp[i]
        wv = -9999.0 if i == 100 else abs(rng.normal(2, 1))
        fields = [p, T, T + 273.15, T - 3, 80 + rng.normal(0, 5), 8 + T / 3, 7 + T / 4, 1 + T / 10, 4 + T / 8,
                  7 + T / 5, 1300 - T * 4, wv, wv + 1, rng.uniform(0, 360)]
        lines.append(f"{when}," + ",".join(f"{v:.2f}" for v in fields))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_csv(path, header, rows):
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ data
def test_packaged_nyc_weather_is_hourly_celsius_and_complete():
    ewr = load_nyc_weather("EWR")
    assert ewr.values.shape == (8730, 9) and ewr.values.dtype == np.float32
    assert ewr.columns == NYC_FEATURES and ewr.target == 0 and ewr.step_minutes == 60
    assert str(ewr.start) == "2013-01-01T06:00:00"
    assert np.isfinite(ewr.values).all()
    # the file's first EWR row: 39.02 °F, dew point 26.06 °F, 1012 mbar, wind from 270° (west)
    np.testing.assert_allclose(ewr.values[0, [0, 1, 3, 7, 8]], [3.9, -3.3, 1012.0, -1.0, 0.0], atol=1e-4)
    temp = ewr.values[:, 0]
    assert -15 < temp.min() < -5 and 30 < temp.max() < 40 and 10 < temp.mean() < 17  # °C, not °F
    assert ewr.values[:, 6].max() < 50  # the record's 1,048 mph wind speed was dropped and filled
    np.testing.assert_array_less(ewr.values[:, 7] ** 2 + ewr.values[:, 8] ** 2, 1 + 1e-5)
    # 8,703 rows on a grid of 8,730 hours: 27 missing hours of 9 columns, plus 935 NA pressures
    assert ewr.filled >= 27 * 9 + 935
    stations = [load_nyc_weather(s) for s in ("JFK", "LGA")]
    assert all(s.values.shape == (8730, 9) for s in stations)
    assert not np.array_equal(stations[0].values[:, 0], temp)
    with pytest.raises(ValueError, match="load_nyc_weather: station must be one of EWR, JFK, LGA, got 'SEA'"):
        load_nyc_weather("SEA")


def test_fill_gaps_interpolates_short_runs_and_leaves_long_ones():
    nan = np.nan
    column = [nan, 1, nan, nan, 4, nan, nan, nan, 8, nan]
    values = np.array([column, [0.0] * 10]).T
    filled, count = fill_gaps(values, max_gap=2)
    np.testing.assert_array_equal(filled[:5, 0], [1, 1, 2, 3, 4])  # the leading NaN takes the nearest value
    assert np.isnan(filled[5:8, 0]).all()  # a run of 3 > max_gap stays
    assert filled[9, 0] == 8 and count == 4
    assert np.isnan(values[2, 0])  # the input is not modified
    with pytest.raises(ValueError, match=r"fill_gaps: values must be a 2-D \(time, features\) array, got shape \(3,\)"):
        fill_gaps(np.ones(3), 2)


def test_csv_reader_fills_na_and_missing_hours_and_keeps_long_gaps(tmp_path):
    times = [f"2020-01-01T{h:02d}:00:00Z" for h in (0, 1, 3, 4, 5)] + [f"2020-01-02T{h:02d}:00:00Z" for h in (10, 11)]
    rows = [f"{t},{temp},{wind}" for t, temp, wind in zip(times, [1, 2, 4, 5, 6, 9, 10], ["NA", 5, 7, "", 9, 3, 4])]
    path = write_csv(tmp_path / "obs.csv", "time,temp,wind", rows)
    series = read_weather_csv(path, target="temp", max_gap_hours=6)
    assert series.columns == ("temp", "wind") and series.target == 0 and series.step_minutes == 60
    assert series.values.shape == (36, 2)  # 00:00 on the 1st to 11:00 on the 2nd
    np.testing.assert_array_equal(series.values[:6, 0], [1, 2, 3, 4, 5, 6])  # the missing 02:00 interpolated
    np.testing.assert_array_equal(series.values[:6, 1], [5, 5, 6, 7, 8, 9])  # NA, missing row, empty field
    assert np.isnan(series.values[6:34]).all()  # 28 missing hours > 6: left as a gap
    np.testing.assert_array_equal(series.values[34:], [[9, 3], [10, 4]])
    assert series.filled == 1 + 3
    ends = window_ends(series.values, lookback=2, horizon=1)
    assert ends.tolist() == [1, 2, 3, 4]  # no window touches the long gap


def test_csv_reader_with_the_jena_header_uses_the_lectures_features(tmp_path):
    series = read_weather_csv(write_jena(tmp_path / "jena_climate_2009_2016.csv", days=2))
    assert series.columns == JENA_FEATURES and series.columns[series.target] == "T (degC)"
    assert series.step_minutes == 10 and str(series.start) == "2009-01-01T00:10:00"
    assert series.values.shape == (288, 7) and np.isfinite(series.values).all()
    wind = series.values[:, JENA_FEATURES.index("wv (m/s)")]
    assert wind.min() >= 0 and series.filled == 1  # the -9999 reading became a gap and was filled


def test_windows_read_every_nth_row_and_respect_splits():
    values = np.arange(40, dtype=np.float32).reshape(20, 2)
    ends = window_ends(values, lookback=3, horizon=2, every=2)
    assert ends.tolist() == list(range(4, 18))
    X = gather_windows(values, ends[:2], lookback=3, every=2)
    assert X.shape == (2, 3, 2) and X.dtype == np.float32
    np.testing.assert_array_equal(X[0, :, 0], [0, 4, 8])  # rows 0, 2, 4
    assert window_ends(values, 3, 2, 2, targets=(15, 20)).tolist() == [13, 14, 15, 16, 17]
    with pytest.raises(ValueError, match="window_ends: every must be a positive integer, got 0"):
        window_ends(values, 3, 2, every=0)


# ------------------------------------------------------------------------------------------- example
def test_quick_run_learns_and_writes_the_table(tmp_path):
    out = tmp_path / "run"
    metrics = run_example("--quick", "--out", out)
    rows = {(r["model"], r["horizon_h"]): r for r in metrics["table"]}
    assert len(rows) == 18  # naive, linear and 4 networks at 1, 6 and 12 h
    F, H = 9, 64
    expected = {"fc": 120 * F * H + H + H + 1, "rnn": F * H + H * H + 2 * H + H + 1,
                "gru": 3 * (F * H + H * H + 2 * H) + H + 1, "lstm": 4 * (F * H + H * H + 2 * H) + H + 1}
    for name, count in expected.items():
        assert rows[(name, 1)]["parameters"] == count
        for h in (1, 6, 12):
            assert rows[(name, h)]["seconds_per_epoch"] > 0 and rows[(name, h)]["epochs"] >= 1
        # the networks predict the change from the last reading, so at 1 h they start near their best already
        for h in (6, 12):
            key = f"{name}_{h}h"
            assert metrics["last_epoch_loss"][key] < 0.95 * metrics["first_epoch_loss"][key], key
    for h in (1, 6, 12):
        assert rows[("linear", h)]["test_mae"] < rows[("naive", h)]["test_mae"]
        row = rows[("gru", h)]
        assert row["test_mae_c"] == pytest.approx(row["test_mae"] * metrics["target_std"])
    naive = [rows[("naive", h)]["test_mae"] for h in (1, 6, 12)]
    assert naive == sorted(naive) and naive[0] > 0.03  # real weather: an hour's change is not negligible
    best_network = min(rows[(n, 12)]["test_mae"] for n in ("rnn", "gru", "lstm"))
    assert best_network < 0.95 * rows[("naive", 12)]["test_mae"]
    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert saved["table"] == metrics["table"] and saved["predict"] == "change"
    assert "GRU(64) + FC(1)" in (out / "table.txt").read_text(encoding="utf-8")
    for name in ("predictions.png", "losses.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "graph.dot").is_file()
    if shutil.which("dot"):
        assert (out / "graph.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")


def test_same_seed_same_result(tmp_path):
    argv = ["--quick", "--models", "rnn,fc", "--horizons", "6", "--epochs", 2, "--max-windows", 128,
            "--lookback", 24, "--predict", "level"]
    first = run_example(*argv, "--out", tmp_path / "a")
    second = run_example(*argv, "--out", tmp_path / "b")
    assert first["first_epoch_loss"] == second["first_epoch_loss"]
    assert first["test_mae"] == second["test_mae"] and first["predict"] == "level"
    third = run_example(*argv, "--seed", 1, "--out", tmp_path / "c")
    assert third["first_epoch_loss"] != first["first_epoch_loss"]


def test_jena_file_runs_the_lectures_setup(tmp_path):
    path = write_jena(tmp_path / "jena_climate_2009_2016.csv", days=12)
    metrics = run_example("--data", path, "--quick", "--models", "fc,rnn", "--horizons", 1, "--epochs", 1,
                          "--max-windows", 64, "--eval-windows", 200, "--out", tmp_path / "out")
    assert metrics["steps"] == 240 and metrics["every"] == 3  # 720 readings of 10 min, every 3rd
    assert metrics["features"] == list(JENA_FEATURES)
    params = {r["model"]: r["parameters"] for r in metrics["table"]}
    assert params["fc"] == 107_649  # the lecture's count: 240·7·64 + 64 + 64 + 1
    assert params["rnn"] == 4_737  # Keras' SimpleRNN has 4,673: one bias vector instead of PyTorch's two
    assert metrics["scored_windows"]["1h"]["test"] == 200 < metrics["windows"]["1h"]["test"]
    assert metrics["windows"]["1h"]["train"] > 64


def test_any_csv_with_a_target_column(tmp_path):
    rng = np.random.default_rng(0)
    hours = np.arange(400)
    load = 10 + 3 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 0.3, 400)
    rows = [f"{a:.3f},{b:.3f},{y:.3f}" for a, b, y in zip(rng.normal(size=400), np.cos(hours / 5), load)]
    path = write_csv(tmp_path / "plant.csv", "a,b,load", rows)
    metrics = run_example("--data", path, "--target", "load", "--quick", "--models", "rnn", "--horizons", "1,3",
                          "--lookback", 24, "--epochs", 2, "--out", tmp_path / "out")
    assert metrics["features"] == ["a", "b", "load"] and metrics["steps"] == 24
    assert {(r["model"], r["horizon_h"]) for r in metrics["table"]} == {
        (m, h) for m in ("naive", "linear", "rnn") for h in (1, 3)}


@pytest.mark.parametrize("header, rows, flags, message", [
    ("a,load", ["1,2"] * 500, ["--target", "power"], "has no column 'power'; its columns are: a, load"),
    ("city,load", ["Paris,2"] * 500, ["--target", "load"], "column 'city' is not numeric (row 2 has 'Paris')"),
    ("a,load", ["1,2"] * 500, [], "name the column to forecast (--target); its columns are: a, load"),
    ("a,load", [f"{i % 7},{i % 5}" for i in range(60)], ["--target", "load"],
     "the train split has no complete window of 120 h of input"),
    ("a,load", [f"{i % 7},{i % 5}" for i in range(500)], ["--target", "load", "--every", "7"],
     "--every 7 must divide the lookback of 120 rows"),
    ("a,load", [f"1,{i % 5}" for i in range(500)], ["--target", "load"],
     "the column 'a' is constant or empty in the training split"),
])
def test_bad_data_is_a_one_line_error(capsys, tmp_path, header, rows, flags, message):
    path = write_csv(tmp_path / "data.csv", header, rows)
    line = example_cli_error(capsys, "time-series", "--data", path, *flags, "--out", tmp_path / "out")
    assert message in line, line


def test_data_flags_without_data_are_refused(capsys, tmp_path):
    line = example_cli_error(capsys, "time-series", "--target", "temp", "--out", tmp_path)
    assert "--target needs --data FILE" in line
    line = example_cli_error(capsys, "time-series", "--models", "fc,transformer", "--out", tmp_path)
    assert "expected a comma-separated subset of fc,rnn,gru,lstm" in line
    line = example_cli_error(capsys, "time-series", "--max-gap-hours", "-1", "--out", tmp_path)
    assert "argument --max-gap-hours: expected a finite number >= 0, got -1.0" in line
    path = write_csv(tmp_path / "data.csv", "a,load", ["1,2"] * 10)
    line = example_cli_error(capsys, "time-series", "--data", path, "--stations", "EWR", "--out", tmp_path)
    assert "--stations chooses airports of the packaged data; it cannot be used with --data" in line
