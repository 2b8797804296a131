"""How a tensor's memory reaches MPI: host arrays directly, device (CuPy) arrays either directly when
the MPI library is CUDA-aware or staged through a host copy when it is not."""
from __future__ import annotations

import logging

from .mpi import mpi_is_cuda_aware

logger = logging.getLogger("tinygrad_rnn.distributed")

HOST, DEVICE, STAGED = "host", "device", "staged"
_logged = set()


def choose(device: str, cuda_aware: bool) -> str:
    """The path for a tensor on ``device``: ``"host"`` for CPU tensors, ``"device"`` (MPI reads the
    device buffer) when the MPI library is CUDA-aware, ``"staged"`` (copied to host and back) if not."""
    if device == "cpu":
        return HOST
    kind = DEVICE if cuda_aware else STAGED
    if (device, kind) not in _logged:
        _logged.add((device, kind))
        how = "CUDA-aware MPI (device buffers)" if kind == DEVICE else "host memory (MPI is not CUDA-aware)"
        logger.info("tinygrad_rnn.distributed: collectives on %s tensors go through %s", device, how)
    return kind


class Buffer:
    """The contiguous array MPI works on for ``tensor``; ``finish()`` writes the result back into it."""

    def __init__(self, tensor, group):
        backend, array = tensor.backend, tensor.array
        if tensor.device != "cpu" and group.cuda_aware is None:
            group.cuda_aware = mpi_is_cuda_aware(group.MPI)
        self.kind = choose(tensor.device, group.cuda_aware)
        self.tensor = tensor
        if self.kind == STAGED:
            self.array = backend.to_host(array)
        elif array.flags.c_contiguous:
            self.array = array
        else:
            self.array = backend.xp.ascontiguousarray(array)
        if self.kind == DEVICE:
            backend.synchronize()  # the kernels that wrote it must be done before MPI reads it

    def finish(self):
        """Copy the result into the tensor's own memory when MPI worked on a copy."""
        target = self.tensor.array
        if self.kind == STAGED:
            target[...] = self.tensor.backend.asarray(self.array)
        elif self.array is not target:
            target[...] = self.array
