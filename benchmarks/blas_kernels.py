"""Which of OpenBLAS's CPU kernels NumPy uses for the benchmarks, chosen by measuring both candidates.

OpenBLAS (NumPy's BLAS from PyPI) picks its kernels from the CPU model when it
loads. On AMD Zen 4 it picks its SkylakeX (AVX-512) kernels, yet Zen 4 executes
AVX-512 at the width of AVX2, and OpenBLAS's Haswell (AVX2) single-precision
products run 7-10 % faster there (BENCHMARKS.md, "Choosing OpenBLAS's kernels").
The choice is made by ``OPENBLAS_CORETYPE`` when the library loads, so
:func:`choose_openblas_kernels` times the matrix products of benchmark M under
each candidate in a child process and sets the variable for this process,
before anything imports NumPy. A ``OPENBLAS_CORETYPE`` already set is kept;
``TINYGRAD_RNN_BENCH_BLAS=default`` keeps OpenBLAS's own choice. PyTorch
(MKL, oneDNN) is not affected either way.
"""
from __future__ import annotations

import os
import subprocess
import sys

#: OpenBLAS's own choice ("") and the AVX2 kernels every x86-64 CPU of the last decade runs
CANDIDATES = ("", "Haswell")
#: switch only for a clear gain (the probe itself is noisy by a percent or two)
MIN_GAIN = 0.03

_PROBE = r"""
import time, numpy as np
rng = np.random.default_rng(0)
f = np.float32
h, w = rng.standard_normal((32, 256), dtype=f), rng.standard_normal((256, 1024), dtype=f)
g, x = rng.standard_normal((2048, 1024), dtype=f), rng.standard_normal((2048, 256), dtype=f)
d, wt = rng.standard_normal((32, 1024), dtype=f), rng.standard_normal((1024, 256), dtype=f)
def best(fn, n):
    fn(); times = []
    for _ in range(n):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]
total = 128 * best(lambda: h @ w, 60) + 128 * best(lambda: d @ wt, 60) + 4 * best(lambda: g.T @ x, 5)
print(np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"])
print(total)
"""


def _run_probe(coretype: str) -> tuple[str, float | None]:
    """(NumPy's BLAS library, seconds of M's matrix products per step) in a child process with OpenBLAS's
    ``coretype`` kernels (this process must not load NumPy yet); ("", None) if the child fails."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.pop("OPENBLAS_CORETYPE", None)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    try:
        out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=120)
        name, seconds = out.stdout.split()
        return name, float(seconds)
    except (OSError, subprocess.SubprocessError, ValueError):
        return "", None


def probe(coretype: str) -> float | None:
    """Seconds of M's matrix products per step (one thread) with OpenBLAS's ``coretype`` kernels; None if
    the child process fails."""
    return _run_probe(coretype)[1]


def choose_openblas_kernels() -> str:
    """Set ``OPENBLAS_CORETYPE`` for this process to the faster candidate and say what was chosen, and why.
    Call before NumPy is imported; returns a one-line note for the report."""
    if "numpy" in sys.modules:
        return "OpenBLAS kernels: not chosen (NumPy was already loaded)"
    if os.environ.get("OPENBLAS_CORETYPE"):
        return f"OpenBLAS kernels: {os.environ['OPENBLAS_CORETYPE']} (OPENBLAS_CORETYPE set by the caller)"
    if os.environ.get("TINYGRAD_RNN_BENCH_BLAS", "").lower() == "default":
        return "OpenBLAS kernels: OpenBLAS's own choice (TINYGRAD_RNN_BENCH_BLAS=default)"
    blas, default = _run_probe("")
    if default is None:
        return "OpenBLAS kernels: OpenBLAS's own choice (the probe failed)"
    if "openblas" not in blas.lower():
        return "OpenBLAS kernels: not chosen (NumPy does not use OpenBLAS here)"
    seconds = {"": default, **{c: probe(c) for c in CANDIDATES if c}}
    best = min((c for c in CANDIDATES if seconds[c] is not None), key=lambda c: seconds[c])
    timings = ", ".join(f"{c or 'own choice'} {seconds[c] * 1e3:.1f} ms" for c in CANDIDATES if seconds[c])
    if best and seconds[best] < default * (1 - MIN_GAIN):
        os.environ["OPENBLAS_CORETYPE"] = best
        return (f"OpenBLAS kernels: {best}, faster than OpenBLAS's own choice on this CPU for M's matrix products "
                f"({timings} per step; TINYGRAD_RNN_BENCH_BLAS=default keeps its own choice)")
    return f"OpenBLAS kernels: OpenBLAS's own choice ({timings} per step)"


__all__ = ["choose_openblas_kernels", "probe", "CANDIDATES"]
