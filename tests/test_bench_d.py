"""Smoke test of benchmark D (data-parallel char-LSTM step over 1 and 2 MPI processes): it checks that 2
processes with batch B match 1 with batch 2B, and its quick run reports a result. No timing is asserted."""
import importlib.util
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import bench_d, run_all  # noqa: E402
from benchmarks.common import Settings  # noqa: E402

needs_mpi = pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None or bench_d.mpiexec() is None,
                               reason='needs mpi4py and mpiexec: pip install "tinygrad_rnn[distributed]"')


@needs_mpi
def test_two_processes_match_one_with_twice_the_batch():
    assert bench_d.check() < 1e-12


@needs_mpi
def test_quick_run_reports_time_per_sample_and_speed_up(capsys):
    (result,) = bench_d.run(Settings.make(quick=True))
    assert result.benchmark == "D" and result.unit == "x" and result.value > 0
    assert "speed-up" in result.notes[0] and "core" in result.notes[0]


def test_d_is_part_of_all():
    assert "D" in run_all.selected(["all"])
