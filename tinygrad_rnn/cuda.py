"""``tr.cuda``: the GPU questions PyTorch code asks (``torch.cuda.is_available()``), answered."""
from __future__ import annotations

from .backends import cuda_device_count, cuda_is_available


def is_available() -> bool:
    """True when CuPy imports and sees a GPU, so ``device="cuda"`` works."""
    return cuda_is_available()


def device_count() -> int:
    """How many GPUs ``device="cuda:N"`` can name."""
    return cuda_device_count()


__all__ = ["is_available", "device_count"]
