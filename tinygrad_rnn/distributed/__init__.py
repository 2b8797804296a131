"""Data-parallel training over MPI, in the shape of ``torch.distributed``.

Start one process per replica with ``mpiexec -n 2 python train.py`` (or ``srun``); each calls
:func:`init`, wraps its model in ``tinygrad_rnn.nn.parallel.DistributedDataParallel`` and reads its
own share of the data (``tinygrad_rnn.utils.data.DistributedSampler``). The collectives work in place
on tensors of any device and time out instead of hanging. Needs ``mpi4py`` and an MPI library:
``pip install "tinygrad_rnn[distributed]"``. See ``docs/distributed.md``.
"""
from .mpi import require_mpi4py

require_mpi4py("tinygrad_rnn.distributed")

from .process_group import (  # noqa: E402
    DEFAULT_TIMEOUT_S, DistributedError, destroy_process_group, get_rank, get_world_size, init, init_process_group,
    is_initialized, is_main_process,
)
from .collectives import ReduceOp, Work, all_gather_object, all_reduce, barrier, broadcast  # noqa: E402

__all__ = [
    "DEFAULT_TIMEOUT_S", "DistributedError", "ReduceOp", "Work", "all_gather_object", "all_reduce", "barrier",
    "broadcast", "destroy_process_group", "get_rank", "get_world_size", "init", "init_process_group",
    "is_initialized", "is_main_process",
]
