"""Benchmark D: the char-LSTM training step data-parallel over 1 and 2 MPI processes.

Benchmark M's model (embedding 64, 2 x LSTM 256, vocabulary 65, sequences of
64) trains with ``DistributedDataParallel`` and Adam, 32 sequences per
process, so 2 processes see twice the samples per step. Each configuration
runs as its own ``mpiexec -n K`` job (``bench_d_worker.py``), alternating
1, 2, 1, 2, ...; each job times its steps between barriers and reports the
median. The figure is the time per sample at 2 processes against 1 process
(target <= 1.0x: data parallelism must not cost per sample); the speed-up
(samples per second, 2 processes against 1) and the cores available are
reported with it. Before timing, two float64 steps of a small model at 2
processes with batch B must give the weights of 1 process with batch 2B.
Needs mpi4py and an ``mpiexec`` (``pip install "tinygrad_rnn[distributed]"``);
skipped without them.

Run from the repository root::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m benchmarks.bench_d
"""

from benchmarks.harness import pin_threads

pin_threads()

import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.common import Result, Settings  # noqa: E402
from benchmarks.runner import run_script  # noqa: E402

TARGET = 1.0
BATCH = 32
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mpiexec():
    """The ``mpiexec`` next to this Python (the mpich wheel's), or the one on PATH, or None."""
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return local if os.path.exists(local) else shutil.which("mpiexec")


def launch(ranks, *args, timeout=600):
    """``mpiexec -n RANKS python -m benchmarks.bench_d_worker ARGS``: its stdout (raises on failure)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p))
    done = subprocess.run([mpiexec(), "-n", str(ranks), sys.executable, "-m", "benchmarks.bench_d_worker", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"D: mpiexec -n {ranks} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def check() -> float:
    """Largest weight difference between 2 processes with batch 2 and 1 process with batch 4 (float64)."""
    with tempfile.TemporaryDirectory() as folder:
        one, two = os.path.join(folder, "one.npz"), os.path.join(folder, "two.npz")
        launch(1, "check", 4, one)
        launch(2, "check", 2, two)
        a, b = np.load(one), np.load(two)
        return max(float(np.abs(a[k] - b[k]).max()) for k in a.files)


def run(settings: Settings | None = None) -> list[Result]:
    """Check, then time 1 and 2 processes alternately; one Result (time per sample, 2 vs 1)."""
    if importlib.util.find_spec("mpi4py") is None or mpiexec() is None:
        print('D: skipped, needs mpi4py and mpiexec (pip install "tinygrad_rnn[distributed]")')
        return []
    settings = settings or Settings.make(repeats=3, warmup=2)
    rounds = 1 if settings.quick else settings.repeats
    steps, warmup = (3, 1) if settings.quick else (10, 2)
    difference = check()
    if difference > 1e-9:
        raise RuntimeError(f"D: 2 processes with batch B and 1 with batch 2B differ by {difference:.3g} in float64")
    medians = {1: [], 2: []}
    for _ in range(rounds):
        for ranks in (1, 2):
            result = json.loads(launch(ranks, "time", steps, warmup, BATCH).strip().splitlines()[-1])
            medians[ranks].append(result["median_s"])
    per_sample = {k: float(np.median(v)) / (BATCH * k) for k, v in medians.items()}
    ratio = per_sample[2] / per_sample[1]
    rows = [f"{'processes':<10} {'step ms (median)':>17} {'samples/step':>13} {'ms/sample':>10}"]
    for k in (1, 2):
        rows.append(f"{k:<10} {1e3 * np.median(medians[k]):>17.1f} {BATCH * k:>13} {1e3 * per_sample[k]:>10.3f}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    notes = [f"speed-up (samples per second, 2 processes vs 1): {1 / ratio:.2f}x on {cores} available core(s), "
             f"one thread per process; {rounds} alternating round(s) of {steps} timed steps",
             f"same weights (float64, 2 steps, 2 processes x batch 2 vs 1 x batch 4): max difference {difference:.1e}"]
    return [Result("D", f"char-LSTM step (H=256, B={BATCH} per process), time per sample at 2 vs 1 process(es)",
                   ratio, TARGET, "x", "\n".join(rows), notes)]


if __name__ == "__main__":
    sys.exit(run_script("D", run, module="benchmarks.bench_d"))
