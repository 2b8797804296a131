"""The process group: ``init()`` over ``MPI.COMM_WORLD``, the rank and world size, the timeout of the
collectives, and the exception hook that makes one failing rank end every rank."""
from __future__ import annotations

import datetime
import sys
import time

from .mpi import load_mpi

DEFAULT_TIMEOUT_S = 300.0


class DistributedError(RuntimeError):
    """A collective failed: it timed out (a rank skipped it, crashed or hangs), or the ranks disagree."""


class _Group:
    """What ``init()`` sets up: the communicator, this rank, the world size, the collectives' timeout."""

    def __init__(self, MPI, timeout):
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.timeout = timeout
        self.cuda_aware = None  # asked on the first device tensor (see transport.py)
        self.nccl = None  # an NcclTransport with backend="nccl": GPU tensors' collectives go through NCCL
        self.calls = 0  # collectives started on this rank, to name one in an error


_GROUP = None
_PREVIOUS_HOOK = None


def init(timeout=DEFAULT_TIMEOUT_S, backend="mpi"):
    """Join the process group of every process ``mpiexec`` (or ``srun``) started; idempotent.

    Run alone (``python train.py``) this is a world of size 1, where every collective is a no-op.
    ``timeout`` (seconds, or a ``datetime.timedelta``) bounds each collective: one that has not
    finished by then raises :class:`DistributedError`. In a world of more than one process, an
    uncaught exception on any rank prints ``rank N failed: ...`` and aborts every rank (exit code 1),
    so a crash never leaves the other ranks waiting in a collective. ``backend="nccl"`` sends the
    collectives of GPU (CuPy) tensors through NCCL (``cupy.cuda.nccl``); MPI still carries the rest."""
    global _GROUP, _PREVIOUS_HOOK
    timeout = _seconds(timeout)
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"init: backend must be 'mpi' or 'nccl', got {backend!r}")
    MPI = load_mpi("tinygrad_rnn.distributed.init")
    if _GROUP is not None:
        _GROUP.timeout = timeout
        return
    _GROUP = _Group(MPI, timeout)
    if backend == "nccl":
        from .nccl import NcclTransport, cupy_stream, load_nccl

        _GROUP.nccl = NcclTransport(_GROUP, load_nccl("init"), cupy_stream)
    if _GROUP.size > 1 and _PREVIOUS_HOOK is None:
        _PREVIOUS_HOOK = sys.excepthook
        sys.excepthook = _abort_all_ranks


def init_process_group(backend="mpi", timeout=None, **_ignored):
    """PyTorch's spelling of :func:`init` (backends ``"mpi"`` and ``"nccl"``)."""
    if backend not in (None, "mpi", "nccl"):
        raise ValueError(f"init_process_group: the backends are 'mpi' and 'nccl', got {backend!r}")
    init(DEFAULT_TIMEOUT_S if timeout is None else timeout, backend or "mpi")


def is_initialized() -> bool:
    return _GROUP is not None


def get_rank() -> int:
    """This process's rank, 0 .. world size - 1."""
    return current("get_rank").rank


def get_world_size() -> int:
    return current("get_world_size").size


def is_main_process() -> bool:
    """True on rank 0 (and in a single process that never called ``init()``): the one that writes
    checkpoints and logs."""
    return _GROUP is None or _GROUP.rank == 0


def destroy_process_group() -> None:
    """Leave the process group and restore the exception hook (MPI itself ends at interpreter exit)."""
    global _GROUP, _PREVIOUS_HOOK
    _GROUP = None
    if _PREVIOUS_HOOK is not None:
        sys.excepthook = _PREVIOUS_HOOK
        _PREVIOUS_HOOK = None


def current(where: str) -> _Group:
    """The group, or an error telling to call ``init()`` first."""
    if _GROUP is None:
        raise RuntimeError(f"{where}: the process group is not initialized; call tinygrad_rnn.distributed.init() "
                           "first (once per process, before any collective)")
    return _GROUP


def _seconds(timeout) -> float:
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"init: timeout must be a positive number of seconds or a timedelta, got {timeout!r}")
    return float(timeout)


def _abort_all_ranks(exc_type, exc, tb):
    """``sys.excepthook`` while a multi-process group is up: the usual traceback, then one line naming
    this rank, then ``MPI_Abort``, which ends every rank of the job with a non-zero exit code."""
    group = _GROUP
    if _PREVIOUS_HOOK is not None:
        _PREVIOUS_HOOK(exc_type, exc, tb)
    if group is None:
        return
    sys.stderr.write(f"rank {group.rank} failed: {exc_type.__name__}: {exc}\n")
    sys.stderr.flush()
    sys.stdout.flush()
    time.sleep(0.5)  # let mpiexec forward what this rank wrote: MPI_Abort kills every rank at once
    group.comm.Abort(1)
