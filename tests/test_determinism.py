"""The same seed gives bitwise-identical results: every example's --quick mode, run twice on the CPU.

The examples are discovered from the ``examples/`` folder (every file with a
``main(argv)``), so a new example is covered without editing this file. Each
runs twice with the same seed: once through the CLI in a fresh process (with
another ``PYTHONHASHSEED``, so nothing may depend on the order of a set or
dict of strings), once in this process after all the tests before it (so
nothing may depend on leftover global state). The two metrics dicts (loss
trajectories and every other figure) must be equal bit for bit, apart from
timings.

To stay fast, known examples get flags that shorten their training (fewer
steps, epochs or examples); their training loop, seeding and data pipeline
are the quick mode's own. An example not listed in SHORTER runs its full
quick mode.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

from tinygrad_rnn import autograd
from tinygrad_rnn import examples_support as support

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = "3"
#: flags that shorten a known example's quick run (the rest of its quick configuration is kept)
SHORTER = {
    "hello": ["--steps", "20"],
    "bptt-by-hand": ["--fit-steps", "20", "--long-steps", "10"],
    "binary-addition": ["--steps", "20", "--batch-size", "16"],
    "vanishing-gradients": ["--train-steps", "10", "--seq-len", "12"],
    "sequential-digits": ["--epochs", "1", "--hidden", "16", "--batch-size", "256"],
    "min-char-rnn": ["--iters", "30", "--hidden", "16", "--sample-every", "15", "--sample-length", "20",
                     "--eval-every", "15"],
    "char-lstm": ["--epochs", "0.05", "--sample-length", "20"],
    "seq2seq-addition": ["--epochs", "1", "--examples", "256", "--hidden", "16"],
    "word-embeddings": ["--max-words", "30000"],
    "who-speaks": ["--epochs", "2"],
    "vit-digits": ["--epochs", "2"],
    "image-captioning": ["--epochs", "1", "--train-scenes", "800"],
    "vqa": ["--epochs", "1", "--train-scenes", "800"],
    "time-series": ["--epochs", "2", "--horizons", "6", "--max-windows", "64", "--hidden", "8", "--lookback", "48"],
}
#: keys that measure time, not computation (at any depth, e.g. a results table's ``seconds_per_epoch``)
TIMINGS = {"time_s"}


def _examples_with_main():
    names = []
    for name in support.available_examples():
        source = (support.examples_dir() / f"{name}.py").read_text(encoding="utf-8")
        if "\ndef main(" in source:
            names.append(name)
    return names


EXAMPLES = _examples_with_main()


def _argv(name, out):
    return ["--quick", "--seed", SEED, "--out", str(out), *SHORTER.get(name, [])]


def _is_timing(key):
    return key in TIMINGS or "seconds" in str(key)


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if not _is_timing(k)}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _canonical(metrics):
    """The metrics as JSON would store them (tuples become lists, keys strings), without timings."""
    return _without_timings(json.loads(json.dumps(metrics, default=str)))


def _cli_run(name, out):
    """Run the example through the CLI in a fresh process; return its metrics.json."""
    env = dict(os.environ, PYTHONHASHSEED="12345", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-m", "tinygrad_rnn.cli", "run", name, *_argv(name, out)],
                            capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert result.returncode == 0, f"{name} failed:\n{result.stderr[-3000:]}"
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def fresh_process_runs(tmp_path_factory):
    """Every example's CLI run, started at once in a background thread (one process at a time), so
    they use the second core while this process runs its own copies."""
    base = tmp_path_factory.mktemp("determinism-cli")
    with ThreadPoolExecutor(max_workers=1) as pool:
        futures = {name: pool.submit(_cli_run, name, base / name) for name in EXAMPLES}
        yield futures
        for future in futures.values():
            future.cancel()



def _loss_values(metrics):
    """Every number recorded under a key that names a loss or a learning curve."""
    values = []

    def collect(value):
        if isinstance(value, bool):
            return
        if isinstance(value, (int, float)):
            values.append(float(value))
        elif isinstance(value, list):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    for key, value in metrics.items():
        if "loss" in key or "curve" in key:
            collect(value)
    return values


def _first_difference(a, b, path="metrics"):
    """Where two canonical metrics differ (NaN equals NaN), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}[{key!r}] is missing from one run"
            found = _first_difference(a[key], b[key], f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path} has {len(a)} vs {len(b)} entries"
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return None
    return None if (type(a) is type(b) and a == b) else f"{path}: {a!r} vs {b!r}"


def test_every_example_is_covered():
    assert len(EXAMPLES) >= 9 and "hello" in EXAMPLES
    unknown = sorted(set(EXAMPLES) - set(SHORTER))
    print(f"examples without shortening flags (full quick mode): {unknown}")


@pytest.mark.parametrize("name", EXAMPLES)
def test_same_seed_same_losses_bitwise(name, tmp_path, fresh_process_runs, monkeypatch):
    monkeypatch.setattr(autograd.carried, "_warned_released", [False])  # the carried-graph warning is once per process
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = support.load_example(name).main(_argv(name, tmp_path / "in-process"))
    carried = [str(w.message) for w in caught if "carries the graph" in str(w.message)]
    assert not carried, f"{name} carries a hidden state's graph across batches: {carried[0]}"
    here = _canonical(metrics)
    there = _canonical(fresh_process_runs[name].result())
    losses = _loss_values(here)
    assert len(set(losses)) >= 2 and all(math.isfinite(v) for v in losses), f"{name}: no loss trajectory: {losses}"
    difference = _first_difference(here, there)
    assert difference is None, f"{name}, seed {SEED}: {difference}"
