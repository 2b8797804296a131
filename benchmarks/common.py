"""What the benchmark scripts share: a result with its target and verdict, the run settings, the checks
of agreement between framework and baseline, and whether a CUDA GPU is usable.

Each ``bench_*.py`` returns a list of :class:`Result`; ``runner.py`` prints
their tables and a summary. Like ``harness.py``, this module imports neither
numpy nor torch at module level, so a script can still call ``pin_threads()`` first.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Settings:
    """How many warm-up and timed rounds ``compare`` runs; ``quick`` is for smoke tests."""

    warmup: int = 5
    repeats: int = 30
    quick: bool = False

    @classmethod
    def make(cls, quick: bool = False, warmup: int = 5, repeats: int = 30) -> "Settings":
        """Full settings, or 1 warm-up round and 3 timed rounds when ``quick``."""
        return cls(1, 3, True) if quick else cls(warmup, repeats, False)


@dataclass
class Result:
    """One measured figure of a benchmark and the target it is held to.

    ``value`` is what the target bounds: a time ratio (``unit="x"``,
    framework median / baseline median) or microseconds (``unit="us"``).
    ``table`` is the harness table behind it; ``notes`` are extra report
    lines (memory figures, settings).
    """

    benchmark: str
    measure: str
    value: float
    target: float
    unit: str
    table: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.value <= self.target

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "MISS"

    def figure(self) -> str:
        """The value and target as text, e.g. ``0.93x (target <= 1.25x)``."""
        if self.unit == "x":
            return f"{self.value:.2f}x (target <= {self.target:g}x)"
        if self.unit == "us":
            return f"{self.value:+.2f} us (target <= {self.target:g} us)"
        return f"{self.value:.3g} {self.unit} (target <= {self.target:g} {self.unit})"

    def report(self) -> str:
        """The table, the notes and the verdict line, ready to print."""
        parts = [f"== {self.benchmark}: {self.measure}"]
        if self.table:
            parts.append(self.table)
        parts.extend(self.notes)
        parts.append(f"-> {self.figure()}  {self.verdict}")
        return "\n".join(parts)


def summary_table(results: list[Result]) -> str:
    """A Markdown table with one row per result: benchmark, measure, value, target, verdict."""
    lines = ["| benchmark | measure | result | target | verdict |", "|---|---|---|---|---|"]
    for r in results:
        if r.unit == "x":
            value, target = f"{r.value:.2f}x", f"<= {r.target:g}x"
        else:
            value, target = f"{r.value:+.2f} {r.unit}", f"<= {r.target:g} {r.unit}"
        lines.append(f"| {r.benchmark} | {r.measure} | {value} | {target} | {r.verdict} |")
    return "\n".join(lines)


def median_ratio(results: dict, name: str, baseline: str) -> float:
    """``median(name) / median(baseline)`` from a ``harness.compare`` result."""
    return results[name]["median"] / results[baseline]["median"]


def cpu_time_note(impls: dict, rounds: int, baseline: str, name: str = "tinygrad_rnn") -> str:
    """Interleaved medians of each step's CPU time (``time.thread_time``) and their ratio, as a report line.

    Why: on a shared machine other processes stretch wall-clock times unevenly; the CPU time the
    calling thread spends is much less sensitive to them. Valid for single-threaded CPU steps only
    (every thread pool pinned to one thread, so all work runs on the calling thread). The verdicts
    still use the wall-clock medians from ``harness.compare``.
    """
    import statistics
    import time

    times = {key: [] for key in impls}
    for _ in range(rounds):
        for key, fn in impls.items():
            start = time.thread_time()
            fn()
            times[key].append(time.thread_time() - start)
    medians = {key: statistics.median(ts) for key, ts in times.items()}
    parts = ", ".join(f"{key} {m * 1e3:.3f} ms" for key, m in medians.items())
    return (f"CPU time per step (thread_time medians of {rounds} interleaved rounds): {parts}; "
            f"ratio {medians[name] / medians[baseline]:.2f}x")


def step_both(ref, fw, label: str, tolerance: float) -> float:
    """One training step of the baseline and of the framework; the relative loss difference,
    asserted to be at most ``tolerance`` (``label`` names the benchmark, step and dtype)."""
    expected, got = ref.step(), fw.step()
    rel = abs(got - expected) / max(abs(expected), 1e-12)
    assert rel <= tolerance, f"{label}: loss {got} != baseline {expected}"
    return rel


def weight_diff(label: str, ours: dict, reference: dict, dtype, tolerance: float) -> float:
    """The largest absolute difference between each of ``ours`` (name -> NumPy array) and the array of
    the same name in ``reference``, asserted to be at most ``tolerance``; every one of ours must be
    ``dtype`` (``label`` names the benchmark, step and dtype)."""
    import numpy as np

    worst = 0.0
    for name, array in ours.items():
        assert array.dtype == dtype, f"{label}: {name} is {array.dtype}, expected {dtype}"
        diff = float(np.abs(array - reference[name]).max())
        assert diff <= tolerance, f"{label}: {name} differs from the baseline by {diff}"
        worst = max(worst, diff)
    return worst


def cuda_available() -> bool:
    """True when tinygrad_rnn sees a CUDA GPU (CuPy) and torch is installed with CUDA support.
    Imports torch only after CuPy found a GPU, so it stays cheap on CPU-only machines."""
    from benchmarks.baselines import torch_available
    from tinygrad_rnn import cuda_is_available

    if not cuda_is_available() or not torch_available():
        return False
    import torch

    return bool(torch.cuda.is_available())
