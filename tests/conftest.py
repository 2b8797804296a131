"""Shared fixtures: every test that takes ``device`` runs on each available backend.

Backends: ``cpu`` (NumPy), ``hostless`` (NumPy arrays that refuse to mix with
host arrays, standing in for CuPy's rule on machines without a GPU), and
``cuda`` (CuPy), skipped with a reason when no GPU is present.
Set ``TINYGRAD_RNN_TEST_DEVICES=cuda`` (comma-separated) to choose.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

import tinygrad_rnn as tr  # noqa: E402
from hostless_backend import register  # noqa: E402

register()

ALL_DEVICES = ["cpu", "hostless", "cuda"]
SELECTED = [d for d in os.environ.get("TINYGRAD_RNN_TEST_DEVICES", ",".join(ALL_DEVICES)).split(",") if d]


def _cuda_skip_reason():
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "CUDA tests need CuPy and a GPU: CuPy is not installed"
    if not tr.cuda_is_available():
        return "CUDA tests need a GPU: CuPy is installed but no CUDA device is usable"
    return None


@pytest.fixture(params=SELECTED)
def device(request):
    """The device string of the backend this test body runs on."""
    if request.param == "cuda":
        reason = _cuda_skip_reason()
        if reason:
            pytest.skip(reason)
    return request.param


@pytest.fixture
def cuda_device():
    """'cuda' for tests that only make sense on a GPU; skipped (with the reason) without one."""
    reason = _cuda_skip_reason()
    if reason:
        pytest.skip(reason)
    return "cuda"


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    """Small matrices run fastest on one BLAS thread; several threads on a busy 2-core machine stall."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(autouse=True)
def _seed():
    tr.manual_seed(0)
    yield


def example_cli_error(capsys, example, *argv) -> str:
    """Run ``tinygrad-rnn run EXAMPLE ARGV`` in-process and check that it fails as a CLI must: exit code 2,
    one line on stderr naming the command, no traceback. Returns that line."""
    from tinygrad_rnn import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", example, *map(str, argv)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, f"exit code {exit_info.value.code!r}, stderr:\n{err}"
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"tinygrad-rnn run {example}: error:"), lines[0]
    return lines[0]


def to_device(array, device, requires_grad=False):
    """A tensor of a host array on ``device`` (float64 kept for gradient checks)."""
    return tr.Tensor(np.asarray(array), device=device, requires_grad=requires_grad)


def flat_arrays(result):
    """The NumPy arrays of a result: a tensor (ours or torch's) or nested tuples and lists of them."""
    found, stack = [], [result]
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
        elif item is not None:
            found.append(item.detach().numpy())
    return found
