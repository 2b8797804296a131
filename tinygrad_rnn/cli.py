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


#: one function per subcommand; each adds its subparser to ``commands``
SUBCOMMANDS = [_version_command, _list_command, _run_command]


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
