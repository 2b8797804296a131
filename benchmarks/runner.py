"""Run benchmarks and print the report: a header (command, machine, load), each benchmark's tables and
verdicts, and a Markdown summary of all of them.

``run_all.py`` runs a selection of benchmarks through :func:`run_and_report`;
each ``bench_*.py`` and ``gpu.py`` runs itself through :func:`run_script`
when started as a script. This module imports no benchmark module (each one
hands over its ``run`` function), nor numpy or torch at module level.
"""

from __future__ import annotations

import argparse
import os
from typing import Callable, Iterable

from benchmarks.common import Settings, summary_table
from benchmarks.harness import machine_info


def run_and_report(names: Iterable[str], load: Callable[[str], Callable], quick: bool = False,
                   typed: Iterable[str] | None = None, notes: Iterable[str] = ()) -> int:
    """Print the header and ``notes``, then for each name call ``load(name)`` (a benchmark's
    ``run(settings) -> list[Result]``), run it and print its results; end with the summary table.
    ``quick`` runs 1 warm-up and 3 timed rounds; otherwise each benchmark uses its own settings.
    ``typed`` is the command line's names as given (e.g. ``all``), for the header; default ``names``.
    Returns 0."""
    names = list(names)
    settings = Settings.make(quick=quick)
    words = " ".join([*(names if typed is None else typed)] + (["--quick"] if quick else []))
    print(f"command:   tinygrad-rnn bench {words}  (= python -m benchmarks.run_all {words}, one thread per pool)")
    print(machine_info())
    print("load avg:  {:.2f} {:.2f} {:.2f} (1, 5, 15 min; other processes share these cores)".format(*os.getloadavg()))
    for note in notes:
        print(note)
    results = []
    for name in names:
        run = load(name)
        print(f"\n### {name}", flush=True)
        found = run(settings if quick else None)
        for result in found:
            print(result.report(), flush=True)
        results.extend(found)
    print("\n" + summary_table(results))
    return 0


def run_script(name: str, run: Callable, argv=None, module: str = "") -> int:
    """The ``main`` of one benchmark's script: ``python -m <module> [--quick]`` runs ``run`` alone
    and prints the same report as ``python -m benchmarks.run_all <name> [--quick]``."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}" if module else None,
        description=f"Run benchmark {name} and print its tables, verdicts and summary "
        f"(python -m benchmarks.run_all runs several).",
    )
    parser.add_argument("--quick", action="store_true", help="1 warm-up and 3 timed rounds (smoke test)")
    args = parser.parse_args(argv)
    return run_and_report([name], lambda _: run, quick=args.quick)
