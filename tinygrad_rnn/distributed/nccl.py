"""NCCL for the collectives of GPU tensors (``init(backend="nccl")``), through ``cupy.cuda.nccl``.

MPI still starts the processes, names the ranks and carries the CPU tensors
and the NCCL unique id (rank 0 makes it, every rank receives it over MPI);
the all-reduces and broadcasts of CuPy tensors run as NCCL calls on the
current CUDA stream, which the collective then polls against the group's
timeout like an MPI request. One communicator per device, made on first use.
"""
from __future__ import annotations

_OPS = {"sum": "NCCL_SUM", "avg": "NCCL_SUM", "product": "NCCL_PROD", "max": "NCCL_MAX", "min": "NCCL_MIN"}
_DTYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64",
           "int32": "NCCL_INT32", "int64": "NCCL_INT64", "uint8": "NCCL_UINT8"}


def load_nccl(where: str):
    """``cupy.cuda.nccl``, or an error naming ``where`` and what to install."""
    try:
        from cupy.cuda import nccl
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"No module named 'cupy.cuda.nccl': {where} with backend='nccl' needs CuPy built with NCCL "
            f'(pip install "tinygrad_rnn[cuda12]" and the nvidia-nccl wheel of your CUDA version) ({exc})',
            name="cupy",
        ) from None
    return nccl


class NcclTransport:
    """The NCCL side of a process group: ``all_reduce`` and ``broadcast`` of device arrays in place."""

    def __init__(self, group, nccl, stream_of):
        self.group, self.nccl, self.stream_of = group, nccl, stream_of
        self.communicators = {}

    def communicator(self, device: str):
        """The communicator of ``device`` (a collective over MPI the first time: every rank must call)."""
        comm = self.communicators.get(device)
        if comm is None:
            uid = self.nccl.get_unique_id() if self.group.rank == 0 else None
            uid = self.group.comm.bcast(uid, root=0)
            comm = self.communicators[device] = self.nccl.NcclCommunicator(self.group.size, uid, self.group.rank)
        return comm

    def _codes(self, array, op=None):
        name = array.dtype.name
        if name not in _DTYPES:
            raise TypeError(f"all_reduce: NCCL has no {name} type; expected one of {', '.join(_DTYPES)}")
        dtype = getattr(self.nccl, _DTYPES[name])
        return dtype if op is None else (dtype, getattr(self.nccl, _OPS[op]))

    def all_reduce(self, tensor, op: str):
        """Start the all-reduce of ``tensor`` (in place; AVG divides after); returns a request to poll."""
        array = tensor.array
        dtype, code = self._codes(array, op)
        stream = self.stream_of(tensor)
        self.communicator(tensor.device).allReduce(array.data.ptr, array.data.ptr, array.size, dtype, code, stream.ptr)
        return StreamRequest(stream)

    def broadcast(self, tensor, src: int):
        array = tensor.array
        stream = self.stream_of(tensor)
        self.communicator(tensor.device).broadcast(array.data.ptr, array.data.ptr, array.size, self._codes(array),
                                                   src, stream.ptr)
        return StreamRequest(stream)


class StreamRequest:
    """What the collectives poll: ``Test()`` is True once the stream has run the NCCL call."""

    def __init__(self, stream):
        self.stream = stream

    def Test(self) -> bool:  # noqa: N802  (mpi4py's name: the collectives poll MPI and NCCL alike)
        return bool(self.stream.done)


def cupy_stream(tensor):
    """The current CUDA stream of ``tensor``'s device (what the NCCL call is queued on)."""
    import cupy

    with cupy.cuda.Device(tensor.array.device.id):
        return cupy.cuda.get_current_stream()
