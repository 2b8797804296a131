"""``--distributed`` for the examples: data-parallel training over the MPI processes of ``mpiexec``.

An example that trains on batches takes ``--distributed`` (:func:`add_flag`)
and asks :func:`start` for a :class:`DataParallel`. Started as
``mpiexec -n N tinygrad-rnn run NAME --distributed``, every rank draws the
same global batch of N·B examples (the same seed, the same order), trains on
its own share of it through :class:`~tinygrad_rnn.nn.parallel.DistributedDataParallel`
(gradients averaged after ``backward()``), and so ends with the weights one
process would reach with batch N·B. ``--batch-size`` is then the batch of each
process. Only rank 0 prints, shows progress and writes files. Without
``--distributed`` nothing changes: the same calls are the single-process path.
"""
from __future__ import annotations

import os
import sys

import numpy as np


def add_flag(parser):
    """Add ``--distributed`` to an example's parser."""
    parser.add_argument(
        "--distributed", action="store_true",
        help="data-parallel over the processes of `mpiexec -n N` (needs tinygrad_rnn[distributed]): each trains on "
             "its share of every batch of N x --batch-size, gradients averaged; rank 0 prints and writes",
    )


class DataParallel:
    """The data-parallel side of one run: ``rank``, ``world``, and what the training loop calls."""

    def __init__(self, run, enabled: bool):
        self.enabled = enabled
        self.rank, self.world = 0, 1
        if not enabled:
            return
        try:
            import tinygrad_rnn.distributed as dist
        except ImportError as exc:
            run.error(f"--distributed needs mpi4py and an MPI: pip install \"tinygrad_rnn[distributed]\" ({exc})")
        dist.init()
        self._dist = dist
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        if self.rank != 0:
            run.writes = False
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (rank 0 prints for everyone)
        print(f"{run.name}: data-parallel over {self.world} process(es)")

    @property
    def main(self) -> bool:
        """True on the process that prints and writes (rank 0, or the only one)."""
        return self.rank == 0

    def wrap(self, model):
        """``model`` in DistributedDataParallel (rank 0's weights everywhere), or as it is."""
        if not self.enabled:
            return model
        from tinygrad_rnn.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)

    def global_batch(self, batch_size: int) -> int:
        """How many examples one step of all the processes together sees."""
        return batch_size * self.world

    def shard(self, rows):
        """This process's contiguous share of a global batch (array or sequence of row indices)."""
        if not self.enabled:
            return rows
        return np.array_split(np.asarray(rows), self.world)[self.rank]

    def mean(self, loss_sum, count: int):
        """A loss summed over this process's share, as its part of the mean over all ``count`` examples:
        averaged across processes by DDP, the gradients are those of the global mean even when the shares
        differ in size."""
        return loss_sum * (self.world / count)

    def finish(self):
        """Wait for every process, then leave MPI cleanly."""
        if self.enabled:
            self._dist.barrier()
            self._dist.destroy_process_group()


def start(run) -> DataParallel:
    """The :class:`DataParallel` of ``run`` (enabled by its ``--distributed`` flag)."""
    return DataParallel(run, bool(getattr(run.args, "distributed", False)))
