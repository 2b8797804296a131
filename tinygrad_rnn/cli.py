"""The ``tinygrad-rnn`` command line: ``version``, ``list``, ``run`` (and, as they land, ``graph``, ``bench``).

Each subcommand is one ``_NAME_command(commands)`` function that adds its
subparser and sets ``handler`` to the function that runs it; add a new one to
``SUBCOMMANDS``. A bad command line, an unknown example or a missing file
ends with a one-line message and exit code 2.
"""
from __future__ import annotations

import argparse
import sys


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line with exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


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
    parser.add_argument("name", metavar="NAME", help="the example (see `tinygrad-rnn list`)")
    parser.add_argument("example_args", nargs=argparse.REMAINDER, metavar="OPTIONS", help="options passed to the example")
    parser.set_defaults(handler=_run_example, subparser=parser)


def _run_example(args) -> int:
    from .examples_support import UnknownExampleError, load_example

    try:
        module = load_example(args.name)
    except UnknownExampleError as exc:
        args.subparser.error(str(exc))
    try:
        module.main(args.example_args)
    except KeyboardInterrupt:
        print(f"tinygrad-rnn run {args.name}: interrupted", file=sys.stderr)
        return 130
    return 0


# --------------------------------------------------------------------- bench
_BENCH_NAMES = ("S", "M", "L", "overhead", "gpu", "all")


def _bench_command(commands):
    parser = commands.add_parser(
        "bench",
        help="time training steps against NumPy/PyTorch baselines: bench [S|M|L|overhead|gpu|all] [--quick]",
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


#: one function per subcommand; each adds its subparser to ``commands``
SUBCOMMANDS = [_version_command, _list_command, _run_command, _bench_command]


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
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
