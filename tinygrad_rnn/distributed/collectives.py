"""The collectives, in place as in ``torch.distributed``: ``all_reduce``, ``broadcast``, ``barrier``
and ``all_gather_object``.

Each one starts a non-blocking MPI call (``Iallreduce``, ``Ibcast``, ...) and polls it until it is done
or the group's timeout passes; then it raises :class:`DistributedError` naming the operation and the
ranks, instead of waiting forever for a rank that skipped the call, crashed or hangs.
"""
from __future__ import annotations

import enum
import pickle
import time

import numpy as np

from ..tensor import Tensor
from .process_group import DistributedError, current
from .transport import Buffer


class ReduceOp(enum.Enum):
    """How ``all_reduce`` combines the ranks' values."""
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MAX = "max"
    MIN = "min"


_MPI_OPS = {ReduceOp.SUM: "SUM", ReduceOp.AVG: "SUM", ReduceOp.PRODUCT: "PROD", ReduceOp.MAX: "MAX",
            ReduceOp.MIN: "MIN"}


class Work:
    """A started collective; ``wait()`` finishes it (PyTorch's ``async_op=True`` handle)."""

    def __init__(self, name, request, group, on_done=None):
        self.name, self._request, self._group, self._on_done = name, request, group, on_done
        self._call = group.calls
        self._done = False

    def is_completed(self) -> bool:
        return self._done

    def wait(self, timeout=None):
        """Poll until the collective is done; raise :class:`DistributedError` after ``timeout`` seconds
        (default: the one given to ``init``)."""
        if self._done:
            return None
        group = self._group
        limit = group.timeout if timeout is None else float(timeout)
        deadline = time.monotonic() + limit
        pause = 0.0
        while not self._request.Test():
            if time.monotonic() > deadline:
                raise DistributedError(
                    f"{self.name}: timed out after {limit:g} s on rank {group.rank} of ranks {_ranks(group.size)} "
                    f"(collective number {self._call} of this rank): another rank skipped this "
                    "call, crashed or is stuck; every rank must make the same collectives in the same order. "
                    "Give init(timeout=...) more seconds if a step legitimately takes longer"
                )
            time.sleep(pause)
            pause = min(max(2 * pause, 1e-5), 1e-3)
        self._done = True
        if self._on_done is not None:
            self._on_done()
        return None


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Combine ``tensor`` across all ranks with ``op`` (SUM, AVG, PRODUCT, MAX, MIN) and leave the
    result in ``tensor`` on every rank, in place. With ``async_op=True`` returns a :class:`Work`
    whose ``wait()`` finishes it."""
    pg = _start("all_reduce", tensor, group)
    if not isinstance(op, ReduceOp):
        raise TypeError(f"all_reduce: op must be a ReduceOp (SUM, AVG, PRODUCT, MAX, MIN), got {op!r}")
    if op is ReduceOp.AVG and tensor.dtype.kind not in "fc":
        raise TypeError(f"all_reduce: ReduceOp.AVG needs a floating point tensor, got {tensor.dtype}")
    if pg.nccl is not None and tensor.device != "cpu":
        request = pg.nccl.all_reduce(tensor, op.value)

        def averaged():
            if op is ReduceOp.AVG:
                tensor.array /= pg.size

        return _finish(Work("all_reduce", request, pg, averaged), async_op)
    buffer = Buffer(tensor, pg)
    request = pg.comm.Iallreduce(pg.MPI.IN_PLACE, buffer.array, op=getattr(pg.MPI, _MPI_OPS[op]))

    def done():
        if op is ReduceOp.AVG:
            buffer.array /= pg.size
        buffer.finish()

    return _finish(Work("all_reduce", request, pg, done), async_op)


def broadcast(tensor, src=0, group=None, async_op=False):
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every other rank, in place."""
    pg = _start("broadcast", tensor, group)
    if isinstance(src, bool) or not isinstance(src, (int, np.integer)) or not 0 <= src < pg.size:
        raise ValueError(f"broadcast: src must be a rank in 0..{pg.size - 1}, got {src!r}")
    if pg.nccl is not None and tensor.device != "cpu":
        return _finish(Work("broadcast", pg.nccl.broadcast(tensor, int(src)), pg), async_op)
    buffer = Buffer(tensor, pg)
    request = pg.comm.Ibcast(buffer.array, root=int(src))
    return _finish(Work("broadcast", request, pg, buffer.finish), async_op)


def barrier(group=None, async_op=False):
    """Wait until every rank has reached this call."""
    pg = _start("barrier", None, group)
    return _finish(Work("barrier", pg.comm.Ibarrier(), pg), async_op)


def all_gather_object(object_list, obj, group=None):
    """Fill ``object_list`` (one slot per rank) with every rank's picklable ``obj``, as PyTorch."""
    pg = _start("all_gather_object", None, group)
    if not isinstance(object_list, list) or len(object_list) != pg.size:
        got = f"a list of {len(object_list)}" if isinstance(object_list, list) else type(object_list).__name__
        raise ValueError(f"all_gather_object: object_list must be a list of {pg.size} slots (world size), got {got}")
    data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8)
    sizes = np.zeros(pg.size, dtype=np.int64)
    Work("all_gather_object", pg.comm.Iallgather(np.array([data.size], dtype=np.int64), sizes), pg).wait()
    gathered = np.empty(int(sizes.sum()), dtype=np.uint8)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    request = pg.comm.Iallgatherv(data, [gathered, sizes, offsets, pg.MPI.BYTE])
    pg.calls += 1
    Work("all_gather_object", request, pg).wait()
    for rank, (start, size) in enumerate(zip(offsets, sizes)):
        object_list[rank] = pickle.loads(gathered[start:start + size].tobytes())


def _start(name, tensor, group):
    if group is not None:
        raise ValueError(f"{name}: only the default group (group=None) exists, got {group!r}")
    if tensor is not None and not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(tensor).__name__}")
    pg = current(name)
    pg.calls += 1
    return pg


def _finish(work, async_op):
    if async_op:
        return work
    work.wait()
    return None


def _ranks(size) -> str:
    return "0" if size == 1 else f"0..{size - 1}"
