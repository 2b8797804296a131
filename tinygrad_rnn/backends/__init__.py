"""Backends: one object per device, looked up by the device string.

``get_backend("cpu")`` is NumPy; ``get_backend("cuda")`` / ``"cuda:N"`` is CuPy.
Tests register extra backends (e.g. one whose arrays refuse host conversion)
with :func:`register_backend`.
"""
from __future__ import annotations

import numpy as np

from .base import Backend
from .numpy_backend import NumpyBackend

_FACTORIES = {}
_INSTANCES: dict[str, Backend] = {}
_SEED = [0]


def register_backend(kind: str, factory) -> None:
    """Make ``kind`` and ``kind:N`` device strings create backends with ``factory(N)``."""
    _FACTORIES[kind] = factory


def _make_cuda(index: int) -> Backend:
    from .cupy_backend import CupyBackend

    return CupyBackend(index)


register_backend("cpu", lambda index: NumpyBackend())
register_backend("cuda", _make_cuda)


def parse_device(device) -> tuple[str, int]:
    """Split ``"cuda:1"`` into ``("cuda", 1)``; ``"cpu"`` is ``("cpu", 0)``."""
    if isinstance(device, Backend):
        device = device.device
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', got {device!r}")
    kind, _, index = device.partition(":")
    if kind not in _FACTORIES:
        raise ValueError(f"unknown device {device!r}: expected one of {sorted(_FACTORIES)} (optionally ':N')")
    if index and not index.isdigit():
        raise ValueError(f"bad device index in {device!r}: expected e.g. 'cuda:0'")
    return kind, int(index or 0)


def get_backend(device="cpu") -> Backend:
    """Return the (cached) backend object for a device string."""
    if isinstance(device, Backend):
        return device
    cached = _INSTANCES.get(device)
    if cached is not None:
        return cached
    kind, index = parse_device(device)
    canonical = "cpu" if kind == "cpu" else f"{kind}:{index}"
    backend = _INSTANCES.get(canonical)
    if backend is None:
        backend = _FACTORIES[kind](index)
        backend.seed(_SEED[0])
        _INSTANCES[canonical] = backend
    _INSTANCES[device] = backend
    return backend


def seed_all(seed: int) -> None:
    """Seed every backend created so far, and those created later, with ``seed``."""
    _SEED[0] = seed
    for backend in {id(b): b for b in _INSTANCES.values()}.values():
        backend.seed(seed)


def backend_of_array(data) -> Backend:
    """The backend of the device an array already lives on: the CPU for host data (NumPy arrays,
    lists, scalars), the GPU it sits on for a CUDA array (anything with ``__cuda_array_interface__``)."""
    if isinstance(data, np.ndarray) or not hasattr(data, "__cuda_array_interface__"):
        return get_backend("cpu")
    return get_backend(f"cuda:{data.device.id}")


def cuda_device_count() -> int:
    """How many CUDA GPUs there are for ``device="cuda:N"`` (0 without CuPy or a GPU)."""
    from .cupy_backend import device_count

    return device_count()


def device(type, index=None) -> str:
    """A device string, as ``torch.device`` spells it: ``device("cuda")``, ``device("cuda", 1)``,
    ``device("cuda:1")``. Tensors and modules take the string wherever PyTorch takes a device."""
    spec = type if index is None else f"{type}:{index}"
    parse_device(spec)  # a clear error for a bad one
    return spec


def cuda_is_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    try:
        get_backend("cuda")
    except RuntimeError:
        return False
    return True


__all__ = ["Backend", "NumpyBackend", "register_backend", "get_backend", "parse_device", "seed_all", "cuda_is_available", "cuda_device_count", "device", "backend_of_array"]
