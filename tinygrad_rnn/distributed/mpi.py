"""The one place that imports mpi4py, with the install hint when it is missing."""
from __future__ import annotations

INSTALL_HINT = 'pip install "tinygrad_rnn[distributed]"'


def require_mpi4py(where: str):
    """Import the ``mpi4py`` package (without starting MPI), or raise naming ``where`` and the fix."""
    try:
        import mpi4py
    except ImportError:
        # The message starts like Python's own, so tools that skip optional dependencies recognise it.
        raise ModuleNotFoundError(
            f"No module named 'mpi4py': {where} runs over MPI and needs mpi4py and an MPI library; "
            f"install them with {INSTALL_HINT}", name="mpi4py",
        ) from None
    return mpi4py


def load_mpi(where: str):
    """``mpi4py.MPI``; importing it starts MPI (one process alone is a world of size 1)."""
    require_mpi4py(where)
    from mpi4py import MPI
    return MPI


def mpi_is_cuda_aware(MPI) -> bool:
    """Whether this MPI library takes CUDA device buffers: ``TINYGRAD_RNN_MPI_CUDA_AWARE=0/1`` decides
    when set; else Open MPI's ``MPIX_Query_cuda_support`` where mpi4py exposes it; else the MPI-4.1
    ``mpi_memory_alloc_kinds`` info key (MPICH lists ``cuda`` there when built with GPU support)."""
    import os

    forced = os.environ.get("TINYGRAD_RNN_MPI_CUDA_AWARE")
    if forced is not None:
        return forced.strip().lower() in ("1", "true", "yes")
    query = getattr(MPI, "Query_cuda_support", None)
    if query is not None:
        try:
            return bool(query())
        except Exception:  # noqa: BLE001  (an MPI without the extension answers with an error)
            return False
    try:
        kinds = dict(MPI.COMM_WORLD.Get_info().items()).get("mpi_memory_alloc_kinds", "")
    except Exception:  # noqa: BLE001  (an MPI older than 4.1 has no such key)
        return False
    return "cuda" in kinds.lower()
