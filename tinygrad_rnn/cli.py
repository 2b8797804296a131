"""The ``tinygrad-rnn`` command line: ``version``, ``list``, ``run``, ``graph`` and ``bench``.

Each subcommand is one ``_NAME_command(commands)`` function that adds its
subparser and sets ``handler`` to the function that runs it; add a new one to
``SUBCOMMANDS``. A bad command line, an unknown example, a missing, unreadable
or wrong kind of file, or an output that cannot be written ends with a
one-line message on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line with exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _fail(prog: str, message: str):
    """Print ``PROG: error: MESSAGE`` as one line on stderr and exit with code 2."""
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(2)


def _describe(exc: BaseException) -> str:
    """An OSError as ``strerror: 'file'`` (no ``[Errno N]``); anything else as its message."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        files = " -> ".join(repr(str(f)) for f in (exc.filename, exc.filename2) if f is not None)
        return f"{exc.strerror}: {files}"
    return str(exc)


# ------------------------------------------------------------------- version
def _version_command(commands):
    parser = commands.add_parser("version", help="print the version")
    parser.set_defaults(handler=_run_version)


def _run_version(args) -> int:
    from . import __version__

    print(f"tinygrad_rnn {__version__}")
    return 0


# ---------------------------------------------------------------------- list
def _list_command(commands):
    parser = commands.add_parser("list", help="list the examples, one line each")
    parser.set_defaults(handler=_run_list)


def _run_list(args) -> int:
    from .examples_support import available_examples

    examples = available_examples()
    width = max((len(name) for name in examples), default=0)
    for name, description in examples.items():
        print(f"{name:<{width}}  {description}")
    return 0


# ----------------------------------------------------------------------- run
def _run_command(commands):
    parser = commands.add_parser(
        "run",
        help="run an example: run NAME [--device cpu|cuda] [--quick] [--seed N] [--out DIR] [options]",
        description="Run one example; `tinygrad-rnn run NAME --help` shows its options.",
    )
    parser.add_argument("name", metavar="NAME", nargs="?", help="the example (see `tinygrad-rnn list`)")
    parser.add_argument("example_args", nargs=argparse.REMAINDER, metavar="OPTIONS", help="options passed to the example")
    parser.set_defaults(handler=_run_example, subparser=parser)


def _run_example(args) -> int:
    from .examples_support import UnknownExampleError, load_example

    if args.name is None:
        args.subparser.error("the following argument is required: NAME (see `tinygrad-rnn list`)")
    prog = f"tinygrad-rnn run {args.name}"
    try:
        module = load_example(args.name)
    except UnknownExampleError as exc:
        args.subparser.error(str(exc))
    except ModuleNotFoundError as exc:
        _missing_package(prog, exc)
    from .serialization import CheckpointError

    try:
        module.main(args.example_args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        if isinstance(exc.code, str):  # an example's `raise SystemExit("NAME: what is wrong")`
            message = exc.code[len(args.name) + 2:] if exc.code.startswith(f"{args.name}: ") else exc.code
            _fail(prog, message)
        raise
    except (OSError, CheckpointError) as exc:
        _fail(prog, _describe(exc))
    except ModuleNotFoundError as exc:
        _missing_package(prog, exc)
    except ImportError as exc:  # a data loader's own "needs package X" message
        _fail(prog, str(exc))
    return 0


#: import name -> PyPI name of the optional packages the examples use
_PIP_NAMES = {"sklearn": "scikit-learn", "matplotlib": "matplotlib"}


def _missing_package(prog, exc):
    """An optional package an example needs is not installed: one line saying which and how to get it."""
    top = (exc.name or "").partition(".")[0]
    if not top or top == "tinygrad_rnn":
        raise exc
    pip_name = _PIP_NAMES.get(top, top)
    _fail(prog, f"needs the optional package {pip_name!r}, which is not installed: "
                f"pip install \"tinygrad_rnn[examples]\" (or pip install {pip_name})")


# --------------------------------------------------------------------- bench
_BENCH_NAMES = ("S", "M", "L", "P", "D", "overhead", "gpu", "all")


def _bench_command(commands):
    parser = commands.add_parser(
        "bench",
        help="time training steps against NumPy/PyTorch baselines: bench [S|M|L|P|overhead|gpu|all] [--quick]",
        description="Run the benchmarks of a source checkout's benchmarks/ folder (single-threaded) and "
        "print their tables, PASS/MISS verdicts and a Markdown summary.",
    )
    parser.add_argument("names", nargs="*", default=["all"], metavar="NAME",
                        help=f"benchmarks to run: {', '.join(_BENCH_NAMES)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="1 warm-up and 3 timed rounds (a smoke test)")
    parser.set_defaults(handler=_run_bench, subparser=parser)


def _run_bench(args) -> int:
    """Run ``python -m benchmarks.run_all`` in the checkout with every thread pool pinned to one thread.

    A child process, because thread pools are sized when numpy / torch are
    first loaded, and this process has loaded numpy already.
    """
    import os
    import subprocess
    from pathlib import Path

    lowered = {n.lower(): n for n in _BENCH_NAMES}
    unknown = [n for n in args.names if n.lower() not in lowered]
    if unknown:
        args.subparser.error(f"unknown benchmark {unknown[0]!r}: expected one of {', '.join(_BENCH_NAMES)}")
    root = Path(__file__).resolve().parent.parent
    if not (root / "benchmarks" / "run_all.py").is_file():
        print(f"tinygrad-rnn bench: error: no benchmarks/ folder next to the package (looked in {root}); "
              "the benchmarks ship with the source checkout, not with an installed wheel", file=sys.stderr)
        return 2
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS"):
        env[var] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "benchmarks.run_all", *(lowered[n.lower()] for n in args.names)]
    if args.quick:
        command.append("--quick")
    try:
        return subprocess.call(command, cwd=root, env=env)
    except KeyboardInterrupt:
        print("tinygrad-rnn bench: interrupted", file=sys.stderr)
        return 130


# --------------------------------------------------------------------- graph
def _graph_command(commands):
    from .examples_support import positive_int
    from .lecture_graphs import CELLS, KINDS

    parser = commands.add_parser(
        "graph",
        help="render a lecture diagram from a real computation: graph KIND --steps N --mode unrolled|folded -o FILE.svg",
        description="Build a small real model of the lecture's KIND, run it, and render its autodiff graph.",
    )
    parser.add_argument("kind", metavar="KIND", choices=KINDS, help=f"one of: {', '.join(KINDS)}")
    parser.add_argument("--steps", type=int, default=4, help="sequence length (default 4)")
    parser.add_argument("--mode", choices=("unrolled", "folded"), default="unrolled")
    parser.add_argument("--grads", action="store_true", help="run backward() and shade by gradient norm")
    parser.add_argument("--cell", choices=CELLS, default="rnn", help="recurrent cell (default rnn)")
    parser.add_argument("--expand-fused", action="store_true", help="draw the gates inside fused cells")
    parser.add_argument("--max-nodes", type=positive_int, default=300, help="node budget before steps collapse")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="output file; its suffix (.svg, .png, .pdf, .dot) picks the format")
    parser.add_argument("--html", metavar="FILE",
                        help="also (or only) write the interactive explorer: one self-contained .html page "
                             "(pan, zoom, inspect, step through the backward pass; all tensors' gradients kept; "
                             "--grads, --expand-fused and --max-nodes apply to -o only)")
    parser.set_defaults(handler=_run_graph, subparser=parser)


def _run_graph(args) -> int:
    import shutil
    from pathlib import Path

    import graphviz

    from .files import write_atomically
    from .lecture_graphs import build_lecture_graph

    if args.steps < 1:
        args.subparser.error(f"--steps must be at least 1, got {args.steps}")
    if args.output is None and args.html is None:
        args.subparser.error("give -o FILE (.svg, .png, .pdf, .dot), --html FILE.html, or both")
    if args.html is not None:
        _check_output_file(args, args.html, "html", "--html")
    if args.output is None:
        return _write_html(args)
    output = Path(args.output)
    fmt = output.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png", "pdf", "dot"):
        args.subparser.error(f"-o {args.output}: expected a .svg, .png, .pdf or .dot file")
    if not output.parent.exists():
        args.subparser.error(f"-o {args.output}: folder {output.parent} does not exist")
    if not output.parent.is_dir():
        args.subparser.error(f"-o {args.output}: {output.parent} is not a folder")
    if output.is_dir():
        args.subparser.error(f"-o {args.output}: is a folder: expected a file name ending in .{fmt}")
    if fmt != "dot" and shutil.which("dot") is None:
        args.subparser.error("the graphviz 'dot' program is missing (Debian: apt-get install graphviz); "
                             "or write DOT text with -o FILE.dot")
    graph = build_lecture_graph(args.kind, steps=args.steps, cell=args.cell, mode=args.mode, grads=args.grads,
                                expand_fused=args.expand_fused, max_nodes=args.max_nodes)
    try:
        data = graph.source.encode() if fmt == "dot" else graph.pipe(format=fmt)
    except (graphviz.CalledProcessError, graphviz.ExecutableNotFound) as exc:
        args.subparser.error(f"the graphviz 'dot' program failed to render {fmt}: {' '.join(str(exc).split())}")
    try:  # like open(): symbolic links written through, read-only files refused; atomically
        write_atomically(output, lambda file: file.write(data), "-o")
    except OSError as exc:
        args.subparser.error(str(exc))
    print(f"wrote {output} ({args.kind}, {args.cell}, {args.steps} steps, {args.mode})")
    return 0 if args.html is None else _write_html(args)


def _check_output_file(args, name, fmt, flag):
    from pathlib import Path

    path = Path(name)
    if path.suffix.lstrip(".").lower() != fmt:
        args.subparser.error(f"{flag} {name}: expected a .{fmt} file")
    if not path.parent.exists():
        args.subparser.error(f"{flag} {name}: folder {path.parent} does not exist")
    if path.is_dir():
        args.subparser.error(f"{flag} {name}: is a folder: expected a file name ending in .{fmt}")


def _write_html(args) -> int:
    """``graph --html FILE``: the lecture model's explorer page (laid out by dot; the backward recorded)."""
    import shutil
    from pathlib import Path

    import graphviz

    from .files import write_atomically
    from .viz.explore_lecture import lecture_explorer

    if shutil.which("dot") is None:
        args.subparser.error("the graphviz 'dot' program is missing (Debian: apt-get install graphviz); "
                             "--html lays the page out with it")
    try:
        page = lecture_explorer(args.kind, steps=args.steps, cell=args.cell, mode=args.mode).html
    except (graphviz.CalledProcessError, graphviz.ExecutableNotFound) as exc:
        args.subparser.error(f"the graphviz 'dot' program failed: {' '.join(str(exc).split())}")
    try:
        write_atomically(Path(args.html), lambda file: file.write(page.encode("utf-8")), "--html")
    except OSError as exc:
        args.subparser.error(str(exc))
    print(f"wrote {args.html} ({args.kind}, {args.cell}, {args.steps} steps, explorer)")
    return 0


#: one function per subcommand; each adds its subparser to ``commands``
SUBCOMMANDS = [_version_command, _list_command, _run_command, _graph_command, _bench_command]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tinygrad-rnn", description="tinygrad_rnn: recurrent networks you can see inside.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for add_command in SUBCOMMANDS:
        add_command(commands)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from .serialization import CheckpointError

    try:
        return args.handler(args)
    except (OSError, CheckpointError) as exc:  # a file problem met while running: no traceback
        _fail(f"{parser.prog} {args.command}", _describe(exc))


if __name__ == "__main__":
    sys.exit(main())
