"""Benchmark harness: thread pinning, interleaved timing, peak memory, machine info.

Typical use in a ``benchmarks/bench_*.py`` script::

    from benchmarks.harness import pin_threads
    pin_threads()                      # before numpy / torch are imported!

    from benchmarks.harness import compare, format_table, machine_info
    from benchmarks.baselines import MinCharRNNNumpy

    ref = MinCharRNNNumpy(seed=0)
    impls = {"numpy": ref.step, "tinygrad_rnn": framework_model.step}
    print(machine_info())
    print(format_table(compare(impls), baseline="numpy"))

Thread pinning only fully works if the BLAS / OpenMP thread pools have not been
created yet, so the most reliable way is to also set the variables in the
shell::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m benchmarks.bench_s

This module must not import numpy or torch at module level (see pin_threads).
"""

from __future__ import annotations

import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from typing import Any, Callable

THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

# Keep the threadpoolctl limiter alive for the lifetime of the process.
_THREADPOOL_LIMITER = None


def pin_threads(num_threads: int = 1) -> dict[str, Any]:
    """Restrict BLAS / OpenMP / torch to ``num_threads`` threads.

    Why: single-threaded timings are reproducible and compare the *framework
    overhead* rather than how well each library parallelises.

    Sets the thread environment variables (effective only for libraries that
    are loaded afterwards, so call this before importing numpy / torch), then
    applies ``threadpoolctl.threadpool_limits`` to already-loaded BLAS/OpenMP
    libraries and ``torch.set_num_threads`` if torch is already imported.
    Safe to call several times (e.g. again after importing torch).
    Returns a dict describing what was applied.
    """
    global _THREADPOOL_LIMITER
    n = str(int(num_threads))
    for var in THREAD_ENV_VARS:
        os.environ[var] = n
    applied: dict[str, Any] = {"env": {v: n for v in THREAD_ENV_VARS}}
    applied["numpy_already_imported"] = "numpy" in sys.modules
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        applied["threadpoolctl"] = None
    else:
        _THREADPOOL_LIMITER = threadpool_limits(limits=int(num_threads))
        applied["threadpoolctl"] = int(num_threads)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):  # skip half-imported torch
        torch.set_num_threads(int(num_threads))
        applied["torch_threads"] = torch.get_num_threads()
    else:
        applied["torch_threads"] = None
    return applied


def compare(
    impls: dict[str, Callable[[], Any]],
    warmup: int = 3,
    repeats: int = 20,
) -> dict[str, dict[str, Any]]:
    """Time several training-step callables against each other in one process.

    Why: running all implementations in the same process, interleaved
    A B A B ..., exposes them to the same CPU frequency / cache / noise
    conditions, which makes their *ratio* far more stable than timings from
    separate runs.

    Each callable must perform one complete training step (forward, backward,
    update) and must not return before the work is finished (GPU callables
    must synchronise, e.g. via ``loss.item()`` or ``torch.cuda.synchronize()``).
    Every callable is first run ``warmup`` times (also interleaved), then
    ``repeats`` rounds are timed with ``time.perf_counter``.

    Returns ``{name: {"times": [seconds, ...], "median": s, "min": s,
    "mean": s, "stdev": s}}`` in the insertion order of ``impls``.
    """
    if not impls:
        raise ValueError("compare() needs at least one implementation")
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    for name, fn in impls.items():
        if not callable(fn):
            raise TypeError(f"impl {name!r} is not callable")
    names = list(impls)
    fns = [impls[n] for n in names]
    for _ in range(warmup):
        for fn in fns:
            fn()
    gc.collect()
    times: dict[str, list[float]] = {n: [] for n in names}
    perf_counter = time.perf_counter
    for _ in range(repeats):
        for name, fn in zip(names, fns):
            t0 = perf_counter()
            fn()
            t1 = perf_counter()
            times[name].append(t1 - t0)
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        ts = times[name]
        results[name] = {
            "times": ts,
            "median": statistics.median(ts),
            "min": min(ts),
            "mean": statistics.fmean(ts),
            "stdev": statistics.stdev(ts) if len(ts) > 1 else 0.0,
        }
    return results


def format_table(results: dict[str, dict[str, Any]], baseline: str | None = None) -> str:
    """Render ``compare`` results as a text table of medians (ms) and ratios.

    ``ratio`` is ``median(impl) / median(baseline)`` (so > 1 means slower than
    the baseline). ``baseline`` defaults to the first implementation.
    Returns the table as a string (print it yourself).
    """
    if not results:
        return "(no results)"
    if baseline is None:
        baseline = next(iter(results))
    if baseline not in results:
        raise KeyError(f"baseline {baseline!r} not in results {list(results)}")
    base = results[baseline]["median"]
    name_w = max(len("impl"), *(len(n) for n in results))
    header = f"{'impl':<{name_w}}  {'median ms':>10}  {'min ms':>10}  {'stdev ms':>9}  {'n':>4}  {'vs ' + baseline:>10}"
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        ratio = r["median"] / base if base > 0 else float("inf")
        lines.append(
            f"{name:<{name_w}}  {r['median'] * 1e3:>10.3f}  {r['min'] * 1e3:>10.3f}  "
            f"{r['stdev'] * 1e3:>9.3f}  {len(r['times']):>4}  {ratio:>9.2f}x"
        )
    return "\n".join(lines)


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes newly allocated while ``fn()`` runs, measured with tracemalloc.

    Why: benchmark L compares the memory a training step needs with the
    activations BPTT must keep (``BatchedRNNNumpy.activation_bytes()``).

    NumPy registers its array buffers with tracemalloc, so numpy-based code is
    measured fully. PyTorch's CPU allocator is *not* traced; do not use this
    for torch. tracemalloc slows Python down a lot, so never combine it with
    timing. The result is the peak traced size during ``fn`` minus the traced
    size just before it (memory that already existed does not count).
    """
    was_tracing = tracemalloc.is_tracing()
    gc.collect()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return max(0, peak - before)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _blas_info() -> str:
    parts = []
    try:
        from threadpoolctl import threadpool_info

        for lib in threadpool_info():
            parts.append(
                f"{lib.get('internal_api')} {lib.get('version')} "
                f"({lib.get('user_api')}, threads={lib.get('num_threads')}, "
                f"arch={lib.get('architecture', '?')})"
            )
    except Exception:  # threadpoolctl missing or failing: fall back below
        pass
    if not parts:
        try:
            import numpy as np

            cfg = np.show_config(mode="dicts")
            blas = cfg["Build Dependencies"]["blas"]
            parts.append(f"{blas.get('name')} {blas.get('version')}")
        except Exception:
            parts.append("unknown")
    return "; ".join(parts)


def machine_info() -> str:
    """Multi-line description of the machine and library versions.

    Why: benchmark numbers are meaningless without the CPU, core count, BLAS
    and thread settings they were taken with. Imports numpy (call after
    pin_threads). Reports torch's version without importing it.
    """
    import numpy as np

    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    lines = [
        f"date:      {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"cpu:       {_cpu_model()}",
        f"cores:     {os.cpu_count()} logical" + (f", {affinity} usable" if affinity else ""),
        f"platform:  {platform.platform()}",
        f"python:    {platform.python_version()} ({platform.python_implementation()})",
        f"numpy:     {np.__version__}",
        f"blas:      {_blas_info()}",
    ]
    torch = sys.modules.get("torch")
    if torch is not None:
        lines.append(f"torch:     {torch.__version__} (threads={torch.get_num_threads()})")
    else:
        try:
            from importlib.metadata import PackageNotFoundError, version

            lines.append(f"torch:     {version('torch')} (not imported)")
        except PackageNotFoundError:
            lines.append("torch:     not installed")
    env = " ".join(f"{v}={os.environ.get(v, '-')}" for v in THREAD_ENV_VARS[:3])
    lines.append(f"threads:   {env}")
    return "\n".join(lines)


def save_results(path: str, results: dict[str, dict[str, Any]], **meta: Any) -> None:
    """Write ``compare`` results (plus machine info and ``meta``) as JSON.

    Why: lets benchmark runs be archived and compared later / plotted.
    """
    payload = {"machine": machine_info(), "meta": meta, "results": results}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, default=str)
