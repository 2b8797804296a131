"""Weather forecasting: FC, SimpleRNN, GRU and LSTM predict the temperature 1, 6 and 12 hours ahead.

The lecture's experiment (after Keras' Jena weather example) on real hourly
weather that ships with the package. Each model reads the past 120 hours of
all features, normalised with the training split's mean and std per feature,
and forecasts the normalised temperature ``horizon`` hours after the last one::

    FC:        Flatten(120·F) → Linear(64) → ReLU → Linear(1)
    SimpleRNN: RNN(F, 64, tanh)  → last state → Linear(1)
    GRU:       GRU(F, 64)        → last state → Linear(1)
    LSTM:      LSTM(F, 64)       → last state → Linear(1)

By default (``--predict change``) a model's output is added to the last
temperature read, so it learns the change and an untrained model is the
naive forecast; ``--predict level`` is the lecture's plain target. Two
baselines: "same as now" (the last temperature read) and a linear model
(ridge least squares on the flattened window, its ridge strength picked on
the validation split). Errors are mean absolute errors, normalised (divided
by the training temperatures' std, 10.53 °C, as the lecture's table) and in
°C, on the training and the test windows; ``table.txt`` has them all.

Data (default): the 2013 hourly ASOS observations of New York's airports
EWR, JFK and LGA (``tinygrad_rnn.data.weather.load_nyc_weather``; CC0), 9
features: temperature, dew point, humidity, pressure, visibility,
precipitation, wind speed, and the wind direction as sine and cosine. NA
values and missing hours are filled by linear interpolation over gaps of up
to 12 hours (``--max-gap-hours``; the longest in this record is 11 hours of
pressure); a window touching a longer gap would be skipped. Each station is
split in time: the last 20 % of its hours (19 October to 30 December) test,
the last 15 % of the rest (5 September to 19 October) pick each model's best
epoch, the rest (from 1 January) trains; a window belongs to the split of its
target hour, and never spans two stations.

``--data jena_climate_2009_2016.csv`` runs the lecture's own setup: the Jena
file's 10-minute readings of the 7 features the lecture uses (pressure,
temperature, saturation vapour pressure, vapour pressure deficit, specific
humidity, air density, wind speed), the past 720 readings = 120 h read every
3rd (240 steps), the last 28.5 % for testing (the lecture's first 300,693
samples train; here the last 15 % of those validate). FC then has the
lecture's 107,649 parameters (240·7·64 + 64 + 64 + 1); our SimpleRNN has
4,737, not Keras' 4,673, since it keeps PyTorch's two bias vectors. Any
other CSV with a header works with ``--target COLUMN`` (``--features``,
``--time-column``).

Training: Adam 2e-3 on the mean squared error, batches of 256, gradients
clipped to norm 1. An epoch draws ``--max-windows`` (6,144) of the ~17,400
training windows at random, and training stops when the validation MAE has
not improved for ``--patience`` (4) epochs, keeping the best epoch's weights.

What we measured (seeds 0-2, EXAMPLES.md has the tables): the recurrent
networks beat "same as now" at every horizon in every seed (FC loses to it
at 1 h), and every model's test error grows with the horizon; but the linear
model is about as good as the networks (test MAE 0.0525 / 0.170 / 0.234 at
1 / 6 / 12 h; GRU 0.0524 / 0.172 / 0.224, seed means). The lecture's
ordering GRU < SimpleRNN < FC holds on the seed means at 1 h and 12 h, not
at 6 h, and in 4 of the 9 seed-horizon runs: from seed to seed the networks
move by about as much as they differ. FC overfits most (12 h: train 0.153,
test 0.250).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn import examples_support as support
from tinygrad_rnn import nn, optim
from tinygrad_rnn.data.timeseries import Normalizer, gather_windows, window_ends
from tinygrad_rnn.data.weather import JENA_FEATURES, NYC_STATIONS, load_nyc_weather, read_weather_csv
from tinygrad_rnn.nn.utils import clip_grad_norm_

MODELS = ("fc", "rnn", "gru", "lstm")
LABELS = {"naive": "same as now", "linear": "linear (ridge)", "fc": "FC(64) + FC(1)",
          "rnn": "SimpleRNN(64) + FC(1)", "gru": "GRU(64) + FC(1)", "lstm": "LSTM(64) + FC(1)"}
RIDGES = (0.1, 1.0, 10.0, 100.0, 1000.0)
LINEAR_WINDOWS = 50_000


def _list_of(kind, allowed=None):
    def parse(text):
        items = [v.strip() for v in text.split(",") if v.strip()]
        if kind is int:
            try:
                items = [int(v) for v in items]
            except ValueError:
                items = []
            if not items or min(items) < 1:
                raise argparse.ArgumentTypeError(f"expected comma-separated positive hours such as 1,6,12, "
                                                 f"got {text!r}")
        elif not items or (allowed and any(v not in allowed for v in items)):
            expected = f"a comma-separated subset of {','.join(allowed)}" if allowed else "comma-separated names"
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return items
    return parse


def build_parser():
    parser = support.example_parser(__file__, __doc__)
    data = parser.add_argument_group("data")
    data.add_argument("--data", type=support.existing_file, default=None, metavar="CSV",
                      help="a CSV file with a header (default: the packaged New York airports' 2013 weather); "
                           "the Jena climate file is recognised by its header")
    data.add_argument("--stations", type=_list_of(str, NYC_STATIONS), default=None,
                      help="airports of the packaged data (default EWR,JFK,LGA)")
    data.add_argument("--target", default=None, help="the --data column to forecast (Jena: T (degC))")
    data.add_argument("--features", type=_list_of(str), default=None,
                      help="comma-separated --data input columns (default: all but the time column)")
    data.add_argument("--time-column", default=None,
                      help="the --data time column (default: the first named like date or time; none: hourly rows)")
    data.add_argument("--max-gap-hours", type=float, default=12.0,
                      help="fill NA values and missing rows over gaps up to this long (default 12)")
    data.add_argument("--val-fraction", type=float, default=0.15,
                      help="validation: this last part of what precedes the test split (default 0.15)")
    data.add_argument("--test-fraction", type=float, default=None,
                      help="test: this last part of each series (default 0.2; Jena 0.285, as the lecture)")
    setup = parser.add_argument_group("experiment")
    setup.add_argument("--models", type=_list_of(str, MODELS), default=list(MODELS),
                       help="models to train (default fc,rnn,gru,lstm)")
    setup.add_argument("--horizons", type=_list_of(int), default=[1, 6, 12], help="hours ahead (default 1,6,12)")
    setup.add_argument("--lookback", type=support.positive_int, default=120, help="hours of input (default 120)")
    setup.add_argument("--every", type=support.positive_int, default=None,
                       help="read every N-th row of the lookback (default 1; Jena 3: 240 steps of 30 min)")
    setup.add_argument("--hidden", type=support.positive_int, default=64, help="units of every model (default 64)")
    setup.add_argument("--epochs", type=support.positive_int, default=None, help="most epochs (default 25, --quick 4)")
    setup.add_argument("--patience", type=support.positive_int, default=4,
                       help="stop after this many epochs without a better validation MAE (default 4)")
    setup.add_argument("--max-windows", type=support.positive_int, default=None,
                       help="training windows drawn per epoch (default 6144, --quick 768)")
    setup.add_argument("--batch-size", type=support.positive_int, default=256, help="batch size (default 256)")
    setup.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (default 2e-3)")
    setup.add_argument("--clip", type=float, default=1.0, help="maximum global gradient norm (default 1)")
    setup.add_argument("--predict", choices=["level", "change"], default="change",
                       help="the models predict the temperature (default, as the lecture) or its change from "
                            "the last reading (a model that outputs 0 is then the naive forecast)")
    setup.add_argument("--eval-windows", type=support.positive_int, default=None,
                       help="score each split on at most this many evenly spaced windows (default 20000, --quick 1000)")
    return parser


class Forecaster(nn.Module):
    """One of the lecture's models: an FC net over the flattened window, or a recurrent layer whose last
    state feeds a Linear(hidden, 1). Input (batch, steps, features) → one normalised temperature each."""

    def __init__(self, kind, steps, features, hidden=64):
        super().__init__()
        self.kind = kind
        if kind == "fc":
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(steps * features, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        else:
            self.rnn = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind](features, hidden, batch_first=True)
            self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        if self.kind == "fc":
            return self.net(x).squeeze(-1)
        _, state = self.rnn(x)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
        return self.head(h_n[-1]).squeeze(-1)


class Experiment:
    """The normalised series (all stations end to end, NaN rows between them) and its window geometry."""

    def __init__(self, values, target, steps, every, rows_per_hour, splits, change=False):
        self.values, self.target, self.steps, self.every = values, target, steps, every
        self.rows_per_hour, self.change = rows_per_hour, change
        self.splits = splits  # split name → list of (lo, hi) target rows, one per station

    def ends(self, split, horizon_rows):
        """The last input row of every complete window whose target lies in ``split``."""
        return np.concatenate([window_ends(self.values, self.steps, horizon_rows, self.every, targets=bounds)
                               for bounds in self.splits[split]])

    def inputs(self, ends):
        """The model inputs of the windows ending at ``ends``: (n, steps, features) float32."""
        return gather_windows(self.values, ends, self.steps, self.every)

    def targets(self, ends, horizon_rows):
        """The normalised temperature ``horizon_rows`` after each window's last row."""
        return self.values[ends + horizon_rows, self.target]

    def last(self, ends):
        """The last temperature read: the naive forecast, and what ``--predict change`` adds to a model's output."""
        return self.values[ends, self.target]

    def offset(self, ends):
        """What a model's output is added to: the last temperature (``--predict change``) or 0."""
        return self.last(ends) if self.change else np.zeros(len(ends), np.float32)


def load_series(run):
    """The WeatherSeries to forecast (a one-line error for a bad --data file or a flag it cannot use)."""
    args = run.args
    if args.data is None:
        for flag in ("target", "features", "time_column"):
            if getattr(args, flag) is not None:
                run.error(f"--{flag.replace('_', '-')} needs --data FILE (the packaged data is fixed)")
        stations = dict.fromkeys(args.stations or NYC_STATIONS)
        return [load_nyc_weather(station, args.max_gap_hours) for station in stations]
    if args.stations is not None:
        run.error("--stations chooses airports of the packaged data; it cannot be used with --data")
    try:
        return [read_weather_csv(args.data, args.target, args.features, args.time_column, args.max_gap_hours)]
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        run.error(str(exc))


def prepare(run, series):
    """Split each series in time, normalise with the training rows, and put the stations end to end."""
    args = run.args
    jena = series[0].columns == JENA_FEATURES
    every = args.every or (3 if jena else 1)
    test_fraction = args.test_fraction or (0.285 if jena else 0.2)
    rows_per_hour = 60 / series[0].step_minutes
    if abs(rows_per_hour - round(rows_per_hour)) > 1e-9:
        run.error(f"--data: rows are {series[0].step_minutes:g} minutes apart; expected a whole number per hour")
    rows_per_hour = int(round(rows_per_hour))
    if args.lookback * rows_per_hour % every:
        run.error(f"--every {every} must divide the lookback of {args.lookback * rows_per_hour} rows")
    steps = args.lookback * rows_per_hour // every
    bounds = []
    for s in series:
        test_at = int(round(len(s.values) * (1 - test_fraction)))
        val_at = int(round(test_at * (1 - args.val_fraction)))
        bounds.append((val_at, test_at, len(s.values)))
    train_rows = np.concatenate([s.values[:b[0]] for s, b in zip(series, bounds)])
    columns = series[0].columns
    norms = []
    for i, name in enumerate(columns):
        column = train_rows[:, i][np.isfinite(train_rows[:, i])]
        if column.size < 2 or column.std() == 0:
            run.error(f"the column {name!r} is constant or empty in the training split; leave it out with --features")
        norms.append(Normalizer.fit(column))
    gap = (steps - 1) * every + max(args.horizons) * rows_per_hour + 1
    blocks, splits, offset = [], {"train": [], "val": [], "test": []}, 0
    for s, (val_at, test_at, end) in zip(series, bounds):
        normed = np.stack([norm.transform(s.values[:, i]) for i, norm in enumerate(norms)], axis=1)
        blocks += [normed, np.full((gap, len(columns)), np.nan, np.float32)]
        for name, lo, hi in (("train", 0, val_at), ("val", val_at, test_at), ("test", test_at, end)):
            splits[name].append((offset + lo, offset + hi))
        offset += end + gap
    experiment = Experiment(np.concatenate(blocks), series[0].target, steps, every, rows_per_hour, splits,
                            change=args.predict == "change")
    return experiment, norms[series[0].target]


def cut_windows(run, experiment, series, eval_windows):
    """Per horizon, the window ends of every split ("train": all, to train on; "scored": the training windows
    the train MAE is measured on; "val", "test": at most ``eval_windows`` each, evenly spaced; "week": the
    first station's first test week, for the plot), and how many windows each split has in all."""
    args = run.args
    ends_by_h, counts = {}, {}
    for h in args.horizons:
        rows = h * experiment.rows_per_hour
        ends = {split: experiment.ends(split, rows) for split in ("train", "val", "test")}
        empty = [split for split, e in ends.items() if len(e) == 0]
        if empty:
            run.error(f"the {empty[0]} split has no complete window of {args.lookback} h of input and a target "
                      f"{h} h later ({len(series[0].values)} rows of {series[0].step_minutes:g} min per series); "
                      "use a longer series or a shorter --lookback")
        counts[f"{h}h"] = {split: len(e) for split, e in ends.items()}
        test = ends["test"]
        ends["week"] = test[test < experiment.splits["test"][0][1]][:24 * 7 * experiment.rows_per_hour]
        for split in ("val", "test", "scored"):
            chosen = ends["train" if split == "scored" else split]
            if len(chosen) > eval_windows:
                chosen = chosen[np.linspace(0, len(chosen) - 1, eval_windows).round().astype(np.int64)]
            ends[split] = chosen
        ends_by_h[h] = ends
    return ends_by_h, counts


@tr.no_grad()
def predict(model, experiment, ends, device, batch_size=1024) -> np.ndarray:
    model.eval()
    out = [model(tr.tensor(experiment.inputs(ends[i:i + batch_size]), device=device)).numpy()
           for i in range(0, len(ends), batch_size)]
    model.train()
    return np.concatenate(out) + experiment.offset(ends)


def fit_linear(experiment, ends, h, chunk=2048):
    """Ridge regression of the target on the flattened window plus a bias, fitted on the training windows
    (at most LINEAR_WINDOWS of them, evenly spaced), its ridge strength picked among RIDGES on the validation
    windows. Returns a function: window ends → predictions."""
    n_features = experiment.steps * experiment.values.shape[1] + 1
    gram, moment = np.zeros((n_features, n_features)), np.zeros(n_features)

    def design(e):
        return np.hstack([experiment.inputs(e).reshape(len(e), -1), np.ones((len(e), 1), np.float32)])

    train = ends["train"]
    if len(train) > LINEAR_WINDOWS:
        train = train[np.linspace(0, len(train) - 1, LINEAR_WINDOWS).round().astype(np.int64)]
    for i in range(0, len(train), chunk):
        X = design(train[i:i + chunk]).astype(np.float64)
        gram += X.T @ X
        moment += X.T @ experiment.targets(train[i:i + chunk], h)
    def apply(weights, e):
        return np.concatenate([design(e[i:i + chunk]) @ weights for i in range(0, len(e), chunk)])

    y_val = experiment.targets(ends["val"], h)
    solutions = [np.linalg.solve(gram + ridge * np.eye(n_features), moment) for ridge in RIDGES]
    best = min(solutions, key=lambda weights: np.mean(np.abs(apply(weights, ends["val"]) - y_val)))
    return lambda e: apply(best, e)


def train_model(run, kind, experiment, ends, h, epochs, windows_per_epoch, bar):
    """Train one model on one horizon, keeping the weights of the epoch with the best validation MAE."""
    args = run.args
    model = Forecaster(kind, experiment.steps, experiment.values.shape[1], args.hidden).to(run.device)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    y_val = experiment.targets(ends["val"], h)
    history = {"loss": [], "val_mae": [], "seconds": []}
    best, best_state, waited = np.inf, None, 0
    for _ in range(epochs):
        started = time.perf_counter()
        chosen = run.rng.permutation(len(ends["train"]))[:windows_per_epoch]
        losses = []
        for lo in range(0, len(chosen), args.batch_size):
            batch = ends["train"][chosen[lo:lo + args.batch_size]]
            pred = model(tr.tensor(experiment.inputs(batch), device=run.device))
            target = experiment.targets(batch, h) - experiment.offset(batch)
            loss = F.mse_loss(pred, tr.tensor(target, device=run.device))
            optimizer.zero_grad()
            loss.backward()
            clip_grad_norm_(model.parameters(), args.clip)
            optimizer.step()
            losses.append(run.check_loss(loss))
            bar.update(1)
            bar.set_postfix(model=kind, h=f"{h // experiment.rows_per_hour}h", loss=f"{np.mean(losses[-20:]):.4f}")
        history["seconds"].append(time.perf_counter() - started)
        history["loss"].append(float(np.mean(losses)))
        history["val_mae"].append(float(np.mean(np.abs(predict(model, experiment, ends["val"], run.device) - y_val))))
        if history["val_mae"][-1] < best:
            best, waited = history["val_mae"][-1], 0
            best_state = {k: v.numpy() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if waited >= args.patience:
                break
    model.load_state_dict(best_state)
    return model, history


def format_table(rows, horizons) -> str:
    """The lecture's two tables in one: per model, its size and speed, then train / test normalised MAE
    (and the test MAE in °C) at each horizon."""
    head = f"{'model':<22}{'params':>8}{'s/epoch':>9}" + "".join(format(f"{h} h: train / test (°C)", ">30")
                                                               for h in horizons)
    lines = [head, "-" * len(head)]
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = {r["horizon_h"]: r for r in rows if r["model"] == name}
        first = mine[horizons[0]]
        seconds = "-" if first["seconds_per_epoch"] is None else f"{first['seconds_per_epoch']:.2f}"
        cells = "".join(format(f"{r['train_mae']:.4f} / {r['test_mae']:.4f} ({r['test_mae_c']:.3f})", ">30")
                        for r in (mine[h] for h in horizons))
        lines.append(f"{LABELS[name]:<22}{first['parameters']:>8}{seconds:>9}{cells}")
    return "\n".join(lines)


def plot(run, experiment, norm, ends_by_h, forecasts, histories):
    """One test week of forecasts against the measured temperature, and the training curves."""
    args = run.args
    fig, axes = support.figure(len(args.horizons), 1, figsize=(10, 2.6 * len(args.horizons)), squeeze=False)
    for ax, h in zip(axes[:, 0], args.horizons):
        week = ends_by_h[h]["week"]
        hours = (week + h * experiment.rows_per_hour - experiment.splits["test"][0][0]) / experiment.rows_per_hour
        truth = experiment.targets(week, h * experiment.rows_per_hour)
        ax.plot(hours, norm.inverse_transform(truth), color="black", linewidth=2, label="measured")
        for name, pred in forecasts[h].items():
            style = ":" if name == "naive" else "-"
            ax.plot(hours, norm.inverse_transform(pred), style, linewidth=1, label=LABELS[name])
        ax.set_title(f"{h} h ahead: the first test week")
        ax.set_ylabel("temperature (°C)")
    axes[-1, 0].set_xlabel("hours into the test split (the target's time)")
    axes[0, 0].legend(ncols=3, fontsize=7)
    run.save_figure(fig, "predictions.png")

    fig, (ax_loss, ax_val) = support.figure(1, 2, figsize=(11, 4))
    styles = dict(zip(args.horizons, ["-", "--", ":", "-."] * len(args.horizons)))
    for (name, h), history in histories.items():
        epochs = range(1, len(history["loss"]) + 1)
        look = dict(color=f"C{MODELS.index(name)}", linestyle=styles[h], label=f"{name} {h} h")
        ax_loss.plot(epochs, history["loss"], **look)
        ax_val.plot(epochs, history["val_mae"], **look)
    ax_loss.set_ylabel("training MSE (normalised)")
    ax_val.set_ylabel("validation MAE (normalised)")
    for ax in (ax_loss, ax_val):
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
    ax_val.legend(fontsize=7, ncols=len(args.horizons))
    run.save_figure(fig, "losses.png")


def main(argv=None) -> dict:
    run = support.start(build_parser(), argv)
    args = run.args
    epochs = args.epochs or (4 if run.quick else 25)
    windows_per_epoch = args.max_windows or (768 if run.quick else 6144)
    eval_windows = args.eval_windows or (1000 if run.quick else 20_000)
    series = load_series(run)
    experiment, norm = prepare(run, series)
    ends_by_h, counts = cut_windows(run, experiment, series, eval_windows)
    columns = series[0].columns
    print(f"data: {', '.join(s.source for s in series)}: {len(series[0].values)} rows of "
          f"{series[0].step_minutes:g} min each, {len(columns)} features ({', '.join(columns)}), "
          f"{sum(s.filled for s in series)} values filled in; target {columns[series[0].target]!r} "
          f"({norm}); {experiment.steps} steps of {experiment.every} row(s) per window")
    first = counts[f"{args.horizons[0]}h"]
    print(f"windows ({args.horizons[0]} h): train {first['train']}, validation {first['val']}, test {first['test']}; "
          f"{min(windows_per_epoch, first['train'])} training windows per epoch; at most {eval_windows} scored "
          "per split")

    batches = sum(-(-min(windows_per_epoch, len(ends_by_h[h]["train"])) // args.batch_size) for h in args.horizons)
    bar = run.progress(range(batches * epochs * len(args.models)), desc="train")
    rows, forecasts, histories, models = [], {}, {}, {}
    for h in args.horizons:
        ends, rows_ahead = ends_by_h[h], h * experiment.rows_per_hour
        y = {split: experiment.targets(ends[split], rows_ahead) for split in ("scored", "test")}
        linear = fit_linear(experiment, ends, rows_ahead)
        n_inputs = experiment.steps * experiment.values.shape[1] + 1
        predictors = [("naive", experiment.last, 0, None, None),
                      ("linear", linear, n_inputs, None, None)]
        for kind in args.models:
            model, history = train_model(run, kind, experiment, ends, rows_ahead, epochs, windows_per_epoch, bar)
            histories[(kind, h)], models[(kind, h)] = history, model
            predictors.append((kind, lambda e, m=model: predict(m, experiment, e, run.device),
                               sum(p.numel() for p in model.parameters()), float(np.mean(history["seconds"])),
                               len(history["loss"])))
        forecasts[h] = {}
        for name, forecast, parameters, seconds, epochs_run in predictors:
            pred = {split: forecast(ends[split]) for split in ("scored", "test", "week")}
            forecasts[h][name] = pred["week"]
            mae = {split: float(np.mean(np.abs(pred[split] - y[split]))) for split in ("scored", "test")}
            rows.append({"model": name, "horizon_h": h, "parameters": parameters, "seconds_per_epoch": seconds,
                         "epochs": epochs_run, "train_mae": mae["scored"], "test_mae": mae["test"],
                         "train_mae_c": mae["scored"] * norm.scale, "test_mae_c": mae["test"] * norm.scale})
            bar.write(f"{h:>3} h  {LABELS[name]:<22} test MAE {mae['test']:.4f} ({rows[-1]['test_mae_c']:.3f} °C)")
    bar.close()

    h = args.horizons[0]
    drawn = "gru" if "gru" in args.models else args.models[0]
    model = models[(drawn, h)]
    probe_ends = ends_by_h[h]["train"][:2]
    probe = model(tr.tensor(experiment.inputs(probe_ends), device=run.device))
    target = tr.tensor(experiment.targets(probe_ends, h * experiment.rows_per_hour), device=run.device)
    run.graph(F.mse_loss(probe, target), "graph", mode="unrolled" if drawn == "fc" else "folded", model=model)
    table = format_table(rows, args.horizons)
    print(table)
    run.write_text("table.txt", table + "\n")
    plot(run, experiment, norm, ends_by_h, forecasts, histories)
    key = lambda r: f"{r['model']}_{r['horizon_h']}h"  # noqa: E731
    return run.finish({
        "table": rows,
        "test_mae": {key(r): r["test_mae"] for r in rows},
        "test_mae_c": {key(r): r["test_mae_c"] for r in rows},
        "train_mae": {key(r): r["train_mae"] for r in rows},
        "first_epoch_loss": {f"{k}_{h}h": v["loss"][0] for (k, h), v in histories.items()},
        "last_epoch_loss": {f"{k}_{h}h": v["loss"][-1] for (k, h), v in histories.items()},
        "best_val_mae": {f"{k}_{h}h": min(v["val_mae"]) for (k, h), v in histories.items()},
        "target_std": norm.scale,
        "features": list(columns),
        "windows": counts,
        "scored_windows": {f"{h}h": {"train": len(e["scored"]), "val": len(e["val"]), "test": len(e["test"])}
                           for h, e in ends_by_h.items()},
        "predict": args.predict,
        "windows_per_epoch": windows_per_epoch,
        "steps": experiment.steps,
        "every": experiment.every,
    })


if __name__ == "__main__":
    main()
