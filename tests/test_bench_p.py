"""Smoke test of benchmark P (a packed LSTM step): its steps compute the same thing, and it runs.

No timing is asserted.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import bench_p, run_all  # noqa: E402
from benchmarks.baselines import torch_available  # noqa: E402
from benchmarks.common import Settings  # noqa: E402
from tinygrad_rnn import cli  # noqa: E402

SMALL = dict(input_size=3, hidden_size=5, batch_size=4, min_length=1, max_length=7)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_packed_padded_and_torch_steps_agree(dtype):
    diffs = bench_p.check(steps=3, dtype=dtype, with_torch=torch_available(), **SMALL)
    assert diffs["loss_rel"] <= (1e-9 if dtype == np.float64 else 1e-5)


def test_the_batch_has_the_benchmarked_shape():
    inputs, targets, lengths, weights = bench_p.make_batch(**bench_p.SIZES)
    assert inputs.shape == (64, 128, 32) and targets.shape == (64, 128, 128) and inputs.dtype == np.float32
    assert lengths.min() >= 16 and lengths.max() == 128
    assert not inputs[1, lengths[1]:].any()  # zero after each length
    assert weights["weight_hh_l0"].shape == (512, 128)


def test_quick_run_reports_against_padded_and_torch(capsys):
    results = bench_p.run(Settings.make(quick=True))
    assert [r.target for r in results] == ([0.75, 1.0] if torch_available() else [0.75])
    assert all(r.benchmark == "P" and r.value > 0 for r in results)
    assert "tinygrad_rnn padded" in results[0].table and "real steps" in results[0].notes[0]


def test_p_is_registered():
    assert run_all.selected(["p"]) == ["P"] and "P" in run_all.ALL
    assert "P" in cli._BENCH_NAMES
