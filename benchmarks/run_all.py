"""Run the benchmarks and print their tables, verdicts and a Markdown summary.

Usage, from the repository root (``tinygrad-rnn bench`` runs the same)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m benchmarks.run_all [S|M|L|P|D|overhead|gpu|all ...] [--quick]

``all`` runs S, M, L, P, D and overhead, plus gpu when a CUDA GPU is available.
``--quick`` runs 1 warm-up and 3 timed rounds (a smoke test; the numbers
mean little). NumPy's OpenBLAS kernels are chosen by measurement first
(``blas_kernels.py``). Every benchmark first checks that the framework computes the
same losses and weights as its baseline, and stops with an error if not.
"""

from benchmarks.harness import pin_threads

pin_threads()

from benchmarks.blas_kernels import choose_openblas_kernels  # noqa: E402

BLAS_NOTE = choose_openblas_kernels()  # before anything loads NumPy

import argparse  # noqa: E402
import importlib  # noqa: E402
import sys  # noqa: E402

from benchmarks.common import cuda_available  # noqa: E402
from benchmarks.runner import run_and_report  # noqa: E402

#: benchmark name -> module that has ``run(settings) -> list[Result]``
BENCHMARKS = {
    "S": "benchmarks.bench_s",
    "M": "benchmarks.bench_m",
    "L": "benchmarks.bench_l",
    "P": "benchmarks.bench_p",
    "D": "benchmarks.bench_d",
    "overhead": "benchmarks.bench_overhead",
    "gpu": "benchmarks.gpu",
}
ALL = ("S", "M", "L", "P", "D", "overhead")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinygrad-rnn bench",
        description="Time tinygrad_rnn training steps against hand-written NumPy and PyTorch baselines.",
    )
    parser.add_argument("names", nargs="*", default=["all"], metavar="NAME",
                        help=f"benchmarks to run: {', '.join(BENCHMARKS)} or all (default: all)")
    parser.add_argument("--quick", action="store_true", help="1 warm-up and 3 timed rounds (smoke test)")
    return parser


def selected(names) -> list[str]:
    """Expand ``all`` and check the names (case-insensitive); raises ValueError for an unknown one."""
    lookup = {name.lower(): name for name in BENCHMARKS}
    chosen = []
    for raw in names:
        if raw.lower() == "all":
            picks = list(ALL) + (["gpu"] if cuda_available() else [])
        elif raw.lower() in lookup:
            picks = [lookup[raw.lower()]]
        else:
            raise ValueError(f"unknown benchmark {raw!r}: expected one of {', '.join(BENCHMARKS)} or all")
        chosen.extend(p for p in picks if p not in chosen)
    return chosen


def main(argv=None) -> int:
    """Run the chosen benchmarks; prints everything, returns 0 (2 for a bad command line)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        names = selected(args.names)
    except ValueError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    notes = [BLAS_NOTE]
    if "all" in (n.lower() for n in args.names) and "gpu" not in names:
        notes.append("gpu:       skipped (needs a CUDA GPU with CuPy and a CUDA build of torch)")
    return run_and_report(names, lambda name: importlib.import_module(BENCHMARKS[name]).run, quick=args.quick,
                          typed=args.names, notes=notes)


if __name__ == "__main__":
    sys.exit(main())
