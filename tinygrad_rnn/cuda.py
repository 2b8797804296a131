"""``tr.cuda``: the GPU questions PyTorch code asks (``torch.cuda.is_available()``), answered, and
``tr.cuda.graphed``, a training step captured as a CUDA graph (``cuda_graphs.py``)."""
from __future__ import annotations

from .backends import cuda_device_count, cuda_is_available
from .cuda_graphs import CaptureError, GraphedStep, graphed


def is_available() -> bool:
    """True when CuPy imports and sees a GPU, so ``device="cuda"`` works."""
    return cuda_is_available()


def device_count() -> int:
    """How many GPUs ``device="cuda:N"`` can name."""
    return cuda_device_count()


__all__ = ["is_available", "device_count", "graphed", "GraphedStep", "CaptureError"]
