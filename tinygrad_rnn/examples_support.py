"""What every lecture example shares: flags, seeding, progress bars, outputs, and the registry.

An example is one file ``examples/NAME.py`` (NAME may contain hyphens). Its
module docstring's first line is the one-line description that
``tinygrad-rnn list`` prints, so adding an example is adding one file. The
file looks like this::

    '''Short description shown by `tinygrad-rnn list`.

    Longer explanation...
    '''
    from tinygrad_rnn import examples_support as support

    def build_parser():
        parser = support.example_parser(__file__, __doc__)
        parser.add_argument("--steps", type=int, default=None, help="training steps")
        return parser

    def main(argv=None) -> dict:
        run = support.start(build_parser(), argv)   # parses, seeds, makes run.out
        for step in (bar := run.progress(range(100), desc="train")):
            ...
            losses.append(run.check_loss(loss))     # a float; a NaN or inf loss ends the run
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        run.graph(loss, "graph", model=model)        # graph.svg (or graph.dot without `dot`)
        fig, ax = support.figure()                   # matplotlib Figure, no pyplot state
        ...
        run.save_figure(fig, "loss.png")
        return run.finish({"final_loss": loss, "losses": losses})  # prints, writes metrics.json

    if __name__ == "__main__":
        main()

Common flags (added by :func:`example_parser`): ``--device cpu|cuda``,
``--quick`` (under a minute on a 2-core CPU), ``--seed N`` (seeds
``tinygrad_rnn.manual_seed`` and ``run.rng``, a NumPy Generator for data) and
``--out DIR`` (default: a folder named after the example in the current
directory). A bad flag or a missing file (use ``type=support.existing_file``)
ends the run with a one-line message and exit code 2. Every ``type=float``
flag must be finite, and the float flags named in :data:`FLOAT_FLAG_RANGES`
(``--lr``, ``--clip``, ``--val-fraction``, ...) must lie in their range.
``run.check_loss(loss)`` ends training at the first NaN or infinite loss (one
line, exit code 1); ``run.load_checkpoint(path, required)`` reads a checkpoint,
refusing another example's; ``run.error(message)`` ends the run with one line
and exit code 2.

The examples live in the repository's ``examples/`` directory, which is
installed as the package ``tinygrad_rnn.examples``; :func:`examples_dir` finds
it either way, and :func:`load_example` loads a file by path (hyphenated names
are not importable).
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn.files import write_atomically

__all__ = [
    "ExampleParser",
    "ExampleRun",
    "UnknownExampleError",
    "example_parser",
    "existing_file",
    "text_file",
    "checkpoint_file",
    "positive_int",
    "finite_float",
    "FLOAT_FLAG_RANGES",
    "start",
    "figure",
    "examples_dir",
    "available_examples",
    "load_example",
    "example_name",
]


# --------------------------------------------------------------------------- flags
_POSITIVE = ("a number > 0", lambda v: v > 0)
_FRACTION = ("a number in (0, 1)", lambda v: 0 < v < 1)
_NON_NEGATIVE = ("a finite number >= 0", lambda v: v >= 0)
#: number flags checked wherever an example declares them: dest -> (what is expected, test)
FLOAT_FLAG_RANGES = {
    "lr": _POSITIVE, "lr_decay": _POSITIVE, "clip": _POSITIVE, "max_norm": _POSITIVE, "temperature": _POSITIVE,
    "time_limit": _POSITIVE, "epochs": _POSITIVE, "val_fraction": _FRACTION, "test_fraction": _FRACTION,
    "dropout": ("a number in [0, 1)", lambda v: 0 <= v < 1),
    "noise": _NON_NEGATIVE, "max_gap_hours": _NON_NEGATIVE,
}


class ExampleParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line with exit code 2 (no usage dump).

    ``type=float`` flags refuse NaN and infinities, and the flags of
    :data:`FLOAT_FLAG_RANGES` are checked against their ranges.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register("type", float, finite_float)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        for dest, (expected, test) in FLOAT_FLAG_RANGES.items():
            value = getattr(namespace, dest, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not test(value):
                self.error(f"argument --{dest.replace('_', '-')}: expected {expected}, got {value!r}")
        return namespace, extras


def example_name(file) -> str:
    """The example's name: its file name without ``.py`` (e.g. ``bptt-by-hand``)."""
    return Path(file).stem


def example_parser(file, doc: str | None = None) -> ExampleParser:
    """A parser with the common flags for the example in ``file`` (pass ``__file__``, ``__doc__``)."""
    name = example_name(file)
    summary = _first_line(doc) if doc else None
    parser = ExampleParser(
        prog=f"tinygrad-rnn run {name}",
        description=summary,
        epilog=f"Also runnable as: python examples/{name}.py [options]",
    )
    parser.set_defaults(_example_name=name)
    common = parser.add_argument_group("common options")
    common.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    common.add_argument("--quick", action="store_true", help="a short run (under a minute on 2 CPU cores)")
    common.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    common.add_argument("--out", default=None, help=f"output directory (default ./{name})")
    return parser


def existing_file(value: str) -> str:
    """argparse ``type=`` for a readable regular file: a missing, unreadable or special one
    (a folder, ``/dev/null``) is a one-line error."""
    if not os.path.exists(value):
        raise argparse.ArgumentTypeError(f"no such file: {value!r}")
    if os.path.isdir(value):
        raise argparse.ArgumentTypeError(f"{value!r} is a folder: expected a file")
    if not os.path.isfile(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a regular file (a device or pipe): expected a file")
    try:
        with open(value, "rb"):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {value!r}: {exc.strerror or exc}") from None
    return value


def text_file(value: str) -> str:
    """argparse ``type=`` for a training text: it must exist, be non-empty and decode as UTF-8."""
    existing_file(value)
    with open(value, "rb") as handle:
        data = handle.read()
    if not data:
        raise argparse.ArgumentTypeError(f"{value!r} is empty: expected a text file to train on")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not UTF-8 text (byte {exc.start}): expected a text file to train on"
        ) from None
    if len(text) < 2:
        raise argparse.ArgumentTypeError(
            f"{value!r} has {len(text)} character: expected a text of at least 2 characters to train on"
        )
    return value


def checkpoint_file(value: str) -> str:
    """argparse ``type=`` for a checkpoint written by ``tinygrad_rnn.save``: checked by loading it."""
    existing_file(value)
    try:
        tr.load(value)
    except (tr.CheckpointError, OSError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _int_at_least(value: str, minimum: int, what: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise argparse.ArgumentTypeError(f"expected a {what} integer, got {value!r}")
    return number


def positive_int(value: str) -> int:
    """argparse ``type=`` for an int >= 1."""
    return _int_at_least(value, 1, "positive")


def finite_float(value: str) -> float:
    """argparse ``type=`` for a finite number (what ``type=float`` means in an example's parser)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {value!r}")
    return number


def _non_negative_int(value: str) -> int:
    return _int_at_least(value, 0, "non-negative")


@tr.no_grad()
def char_model_loss(model, ids, device, columns=32, chunk=200) -> float:
    """Mean per-character cross-entropy (nats) of the encoded text ``ids``.

    The text is read as ``columns`` parallel streams in chunks of ``chunk``
    characters with the state carried from chunk to chunk, in eval mode (no
    dropout). ``model(inputs (T, B), state) -> (logits (T, B, V), state)``
    must have a ``vocab_size`` attribute: min-char-rnn's and char-lstm's do.
    """
    from tinygrad_rnn.data import batchify, tbptt_batches
    from tinygrad_rnn.nn import functional as F

    was_training = model.training
    model.eval()
    columns = max(1, min(columns, len(ids) // 2))
    total, count, state = 0.0, 0, None
    for inputs, targets in tbptt_batches(batchify(ids, columns), chunk):
        logits, state = model(tr.tensor(inputs, device=device), state)
        targets_t = tr.tensor(targets.reshape(-1), device=device)
        total += F.cross_entropy(logits.reshape(-1, model.vocab_size), targets_t, reduction="sum").item()
        count += targets.size
    model.train(was_training)
    return total / count


# ----------------------------------------------------------------------------- run
class ExampleRun:
    """One run of an example: its parsed ``args``, ``device``, ``out`` folder and ``rng``.

    ``progress`` makes the tqdm bar, ``graph`` renders a model graph,
    ``save_figure`` writes a PNG, ``path`` names any other output (a
    checkpoint), and ``finish`` prints the summary and writes ``metrics.json``.
    Every file written through the run is listed in ``metrics["outputs"]``.
    """

    def __init__(self, name: str, args: argparse.Namespace, parser: argparse.ArgumentParser | None = None):
        self.name = name
        self.args = args
        self.parser = parser if parser is not None else ExampleParser(prog=f"tinygrad-rnn run {name}")
        self.device: str = args.device
        self.quick: bool = args.quick
        self.seed: int = args.seed
        self.out = Path(args.out if args.out is not None else name)
        self.rng = np.random.default_rng(self.seed)
        self.outputs: list[str] = []
        #: False on the ranks other than 0 of a ``--distributed`` run: they write no file and show no bar
        self.writes = True
        self._bars = []
        self._losses_checked = 0
        self._started = time.perf_counter()

    def error(self, message: str):
        """End the run: ``PROG: error: message`` on stderr, exit code 2 (as for a bad flag)."""
        self._close_bars()
        self.parser.error(message)

    def check_loss(self, loss, step=None) -> float:
        """``loss`` (a Tensor or number) as a float; a NaN or infinite loss ends the run with one line
        naming ``step`` (default: how many losses were checked) and exit code 1."""
        self._losses_checked += 1
        step = self._losses_checked if step is None else step
        value = float(loss.item() if isinstance(loss, tr.Tensor) else loss)
        if not math.isfinite(value):
            self._close_bars()
            self.parser.exit(1, f"{self.parser.prog}: error: the training loss is {value} at step {step}, "
                                "so training stopped (it diverged; a smaller --lr usually helps)\n")
        return value

    def load_checkpoint(self, path, required=()) -> dict:
        """``tr.load(path)`` for this example: a missing, unreadable or damaged file, or one without an
        entry of ``required`` (another example's checkpoint), ends the run with one line (exit code 2)."""
        try:
            checkpoint = tr.load(path)
        except FileNotFoundError:
            self.error(f"no checkpoint at {path}: train one first with `tinygrad-rnn run {self.name}`")
        except (OSError, tr.CheckpointError) as exc:
            self.error(f"cannot read the checkpoint {path}: {exc}")
        missing = [key for key in required if not isinstance(checkpoint, dict) or key not in checkpoint]
        if missing:
            found = ", ".join(map(str, checkpoint)) if isinstance(checkpoint, dict) else type(checkpoint).__name__
            self.error(f"{path} is not a {self.name} checkpoint: it has no {missing[0]!r} entry (it has: {found}); "
                       f"expected a file written by `tinygrad-rnn run {self.name}`")
        return checkpoint

    def _close_bars(self):
        for bar in self._bars:
            bar.close()

    def path(self, filename: str) -> Path:
        """``out/filename``, recorded as an output of the run (for checkpoints and extra files)."""
        target = self.out / filename
        if filename not in self.outputs:
            self.outputs.append(filename)
        return target

    def write_text(self, filename: str, text: str) -> Path:
        """Write ``out/filename`` atomically (never half written), as ``open()`` would; record it."""
        return self._write(filename, lambda file: file.write(text.encode("utf-8")))

    def _write(self, filename, write) -> Path:
        target = self.path(filename)
        if self.writes:
            write_atomically(target, write, "--out")
        return target

    def progress(self, iterable, desc: str = "train", **kwargs):
        """A tqdm bar over ``iterable`` (or ``range(n)`` for an int); show the loss with ``bar.set_postfix``."""
        if isinstance(iterable, int):
            iterable = range(iterable)
        options = dict(desc=f"{self.name} {desc}", unit="step", dynamic_ncols=True, mininterval=0.2, leave=True,
                       disable=not self.writes)
        options.update(kwargs)
        bar = _progress_bar_class()(iterable, **options)
        self._bars.append(bar)
        return bar

    def graph(self, root, filename: str = "graph", **draw_options) -> Path:
        """Render the graph that produced ``root`` with ``tinygrad_rnn.viz.draw_graph(root, **draw_options)``.

        Writes ``filename.dot`` (the DOT source), ``filename.svg`` and ``filename.html`` (the
        ``tr.viz.explore`` page); without the ``dot`` program only the ``.dot`` is written, with a note
        saying how to get pictures. Returns the SVG path, or the DOT path.
        """
        import graphviz

        from tinygrad_rnn.viz import draw_graph
        from tinygrad_rnn.viz.explore import example_page

        dot = draw_graph(root, **draw_options)
        dot_path = self.write_text(f"{filename}.dot", dot.source)
        try:
            svg = dot.pipe(format="svg")
        except graphviz.ExecutableNotFound:
            print(
                f"{self.name}: Graphviz's `dot` program was not found, so only the graph source "
                f"{dot_path} was written; install Graphviz (e.g. apt install graphviz) and run "
                f"`dot -Tsvg {dot_path} -o {filename}.svg`",
                file=sys.stderr,
            )
            return dot_path
        path = self._write(f"{filename}.svg", lambda file: file.write(svg))
        page = example_page(root, draw_options)  # the interactive explorer, beside the picture
        self._write(f"{filename}.html", lambda file: file.write(page))
        return path

    def save_figure(self, fig, filename: str, dpi: int = 110) -> Path:
        """Save a matplotlib figure (from :func:`figure`) as ``out/filename`` (PNG)."""
        return self._write(filename, lambda file: fig.savefig(file, format="png", dpi=dpi, bbox_inches="tight"))

    @property
    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self._started

    def finish(self, metrics: dict) -> dict:
        """Add run facts to ``metrics``, print a summary, write ``out/metrics.json``; return ``metrics``.

        Added keys: ``example``, ``device``, ``seed``, ``quick``, ``time_s`` and
        ``outputs`` (the files written in ``out``). Lists (e.g. ``losses``) are
        summarised in the printout and kept whole in the JSON, where NaN and
        infinities are written as null.
        """
        metrics = dict(metrics)
        metrics.update(
            example=self.name,
            device=self.device,
            seed=self.seed,
            quick=self.quick,
            time_s=round(self.elapsed, 3),
        )
        json_name = "metrics.json"
        self.path(json_name)
        metrics["outputs"] = list(self.outputs)
        self.write_text(json_name, json.dumps(_jsonable(metrics), indent=2, allow_nan=False) + "\n")
        print(_summary(metrics, self.out))
        return metrics


def _progress_bar_class():
    """tqdm whose ``set_postfix`` waits for the next throttled redraw instead of redrawing at once
    (so a loss shown every step does not flood a log file)."""
    from tqdm import tqdm

    class ProgressBar(tqdm):
        def set_postfix(self, ordered_dict=None, refresh=False, **kwargs):
            super().set_postfix(ordered_dict, refresh=refresh, **kwargs)

    return ProgressBar


def start(parser: argparse.ArgumentParser, argv=None) -> ExampleRun:
    """Parse ``argv``, check the device, seed everything, create the output folder."""
    args = parser.parse_args(argv)
    name = getattr(args, "_example_name", None) or parser.prog.split()[-1]
    _check_device(parser, args.device)
    _check_plotting(parser)
    tr.manual_seed(args.seed)
    run = ExampleRun(name, args, parser)
    _check_out_folder(parser, run.out)
    return run


def _check_plotting(parser):
    """Every example draws its plots with matplotlib: say so before training, not after it."""
    try:
        import matplotlib.figure  # noqa: F401
    except ModuleNotFoundError:
        parser.error('the examples draw their plots with matplotlib, which is not installed: '
                     'pip install "tinygrad_rnn[examples]" (or pip install matplotlib)')


def _check_out_folder(parser, out: Path):
    """Create ``out``; a file in the way or a folder that cannot be written to is a one-line error."""
    if out.exists() and not out.is_dir():
        parser.error(f"--out: {str(out)!r} is not a folder: expected a folder for the outputs")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"--out: cannot create the folder {str(out)!r}: {exc.strerror or exc}")
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        parser.error(f"--out: cannot write in the folder {str(out)!r}: {exc.strerror or exc}")


def _check_device(parser, device):
    try:
        kind, _ = tr.backends.parse_device(device)
    except (ValueError, TypeError):
        parser.error(f"--device: expected cpu or cuda[:N], got {device!r}")
    if kind == "cuda" and not tr.cuda_is_available():
        parser.error(
            f"--device {device}: no usable GPU (CuPy missing or no CUDA device); "
            'install CuPy with pip install "tinygrad_rnn[cuda12]" or use --device cpu'
        )
    if kind not in ("cpu", "cuda"):
        parser.error(f"--device: expected cpu or cuda[:N], got {device!r}")


def figure(nrows: int = 1, ncols: int = 1, figsize=(6.4, 4.0), **subplot_options):
    """A matplotlib ``(Figure, axes)`` pair drawn with Agg, without pyplot's global state.

    ``nrows=None`` gives ``(Figure, None)`` for layouts built by hand (subfigures, grids).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    if nrows is None:
        return fig, None
    return fig, fig.subplots(nrows, ncols, **subplot_options)


# ------------------------------------------------------------------------ summary
def _jsonable(value):
    """NumPy scalars/arrays and tensors → plain Python; non-finite floats → None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, tr.Tensor):
        value = value.numpy()
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def _format_value(value) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        if items and all(isinstance(v, (int, float, np.number)) for v in items):
            return f"[{len(items)} values: {_format_value(items[0])} ... {_format_value(items[-1])}]"
        text = ", ".join(_format_value(v) for v in items[:6])
        return f"[{text}{', ...' if len(items) > 6 else ''}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


def _summary(metrics: dict, out: Path) -> str:
    lines = [f"== {metrics['example']}: summary =="]
    width = max(len(k) for k in metrics)
    for key, value in metrics.items():
        if key == "outputs":
            continue
        lines.append(f"  {key:<{width}}  {_format_value(value)}")
    lines.append(f"  {'outputs':<{width}}  {', '.join(str(out / f) for f in metrics['outputs'])}")
    return "\n".join(lines)


# ----------------------------------------------------------------------- registry
class UnknownExampleError(LookupError):
    """Raised by :func:`load_example` for a name with no ``examples/NAME.py``."""


def examples_dir() -> Path:
    """The folder holding the example files: the installed ``tinygrad_rnn.examples`` package,
    or ``examples/`` next to the ``tinygrad_rnn`` source folder in a checkout."""
    try:
        spec = importlib.util.find_spec("tinygrad_rnn.examples")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if Path(location).is_dir():
                return Path(location)
    checkout = Path(__file__).resolve().parent.parent / "examples"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        "cannot find the examples: neither the package tinygrad_rnn.examples nor a checkout's examples/ "
        "folder exists; reinstall with pip install ."
    )


def _example_files() -> dict[str, Path]:
    folder = examples_dir()
    return {
        path.stem: path
        for path in sorted(folder.glob("*.py"))
        if not path.name.startswith("_")
    }


def _first_line(doc: str) -> str:
    for line in doc.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def available_examples() -> dict[str, str]:
    """Example name → the first line of its module docstring, read without importing the file."""
    registry = {}
    for name, path in _example_files().items():
        try:
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        except SyntaxError:
            doc = None
        registry[name] = _first_line(doc) if doc else "(no description)"
    return registry


def load_example(name: str):
    """Load ``examples/NAME.py`` by path and return the module (its ``main(argv)`` runs it)."""
    files = _example_files()
    path = files.get(name)
    if path is None:
        known = ", ".join(files) or "none"
        raise UnknownExampleError(f"unknown example {name!r}; available: {known}")
    module_name = "tinygrad_rnn_example_" + name.replace("-", "_")
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    if not callable(getattr(module, "main", None)):
        raise UnknownExampleError(f"example {name!r} ({path}) defines no main(argv) function")
    return module
