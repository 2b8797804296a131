"""Benchmark "overhead": what one small op costs in tinygrad_rnn on top of the NumPy call it wraps.

For each op (a 16x16 float32 add, mul, matmul and tanh) three loops of
``OPS_PER_CALL`` ops are timed alternately: raw NumPy on the arrays,
tinygrad_rnn under ``no_grad()`` (no tape), and tinygrad_rnn recording the
tape (inputs with ``requires_grad=True``). The loop overhead is the same in
all three, so the difference of the medians divided by ``OPS_PER_CALL`` is
the framework's cost per op. Target: <= 5 us above NumPy with recording.

Run from the repository root::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m benchmarks.bench_overhead
"""

from benchmarks.harness import pin_threads

pin_threads()

import numpy as np  # noqa: E402

from benchmarks.common import Result, Settings  # noqa: E402
from benchmarks.harness import compare, format_table  # noqa: E402
from benchmarks.runner import run_script  # noqa: E402
from tinygrad_rnn import Tensor, no_grad  # noqa: E402

TARGET_US = 5.0
OPS_PER_CALL = 200
SIZE = 16

OPS = {
    "add": (lambda a, b: a + b, np.add),
    "mul": (lambda a, b: a * b, np.multiply),
    "matmul": (lambda a, b: a @ b, np.matmul),
    "tanh": (lambda a, b: a.tanh(), lambda a, b: np.tanh(a)),
}


def loops(op: str, n: int = OPS_PER_CALL, seed: int = 0) -> dict:
    """The three callables for ``op``, each running it ``n`` times: ``numpy``, ``no_grad``, ``recording``."""
    framework_op, numpy_op = OPS[op]
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((SIZE, SIZE)).astype(np.float32)
    b = rng.standard_normal((SIZE, SIZE)).astype(np.float32)
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)

    def numpy_loop():
        for _ in range(n):
            numpy_op(a, b)

    def no_grad_loop():
        with no_grad():
            for _ in range(n):
                framework_op(ta, tb)

    def recording_loop():
        for _ in range(n):
            framework_op(ta, tb)

    return {"numpy": numpy_loop, "no_grad": no_grad_loop, "recording": recording_loop}


def check(seed: int = 0) -> None:
    """Each op gives NumPy's result (both modes), and records a graph only when it should."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((SIZE, SIZE)).astype(np.float32)
    b = rng.standard_normal((SIZE, SIZE)).astype(np.float32)
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    for op, (framework_op, numpy_op) in OPS.items():
        expected = numpy_op(a, b)
        recorded = framework_op(ta, tb)
        with no_grad():
            plain = framework_op(ta, tb)
        for mode, out in (("recording", recorded), ("no_grad", plain)):
            assert out.dtype == np.float32, f"overhead {op} ({mode}): dtype {out.dtype}"
            assert np.allclose(out.numpy(), expected, rtol=1e-6, atol=1e-6), f"overhead {op} ({mode}): wrong values"
        assert recorded.grad_fn is not None, f"overhead {op}: no graph recorded"
        assert plain.grad_fn is None, f"overhead {op}: a graph was recorded under no_grad()"


def run(settings: Settings | None = None) -> list[Result]:
    """One Result per op: microseconds per op above NumPy with the tape recording."""
    settings = settings or Settings.make(repeats=30, warmup=3)
    check()
    results = []
    for op in OPS:
        timings = compare(loops(op), warmup=settings.warmup, repeats=settings.repeats)
        base = timings["numpy"]["median"]
        per_op = {k: (v["median"] - base) / OPS_PER_CALL * 1e6 for k, v in timings.items()}
        numpy_us = base / OPS_PER_CALL * 1e6
        notes = [
            f"per op: numpy {numpy_us:.2f} us; above numpy: no_grad {per_op['no_grad']:+.2f} us, "
            f"recording {per_op['recording']:+.2f} us (medians of {OPS_PER_CALL}-op loops)",
        ]
        results.append(Result(f"overhead {op}", f"{SIZE}x{SIZE} {op}, us per op above NumPy (recording)",
                              per_op["recording"], TARGET_US, "us",
                              format_table(timings, baseline="numpy"), notes))
    return results


def main(argv=None) -> int:
    """``python -m benchmarks.bench_overhead [--quick]``: run this benchmark alone and print its report."""
    return run_script("overhead", run, argv, module="benchmarks.bench_overhead")


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
