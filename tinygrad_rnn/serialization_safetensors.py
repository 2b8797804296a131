"""State dicts in the safetensors format: ``save(state_dict, "w.safetensors")`` and ``load("w.safetensors")``.

A safetensors file is an 8-byte little-endian header length, a JSON header
(each tensor's dtype, shape and byte range) and the raw bytes of the tensors.
It holds a flat mapping of names to tensors and nothing else, reads without
running code, and loads in PyTorch (``safetensors.torch.load_file``), JAX and
others. The ``safetensors`` package does the encoding; writes go through
:func:`~tinygrad_rnn.files.write_atomically`, so a file is never half-written.

``tr.save`` and ``tr.load`` dispatch here on the ``.safetensors`` suffix (or
``format="safetensors"``); a problem with the file raises
:class:`SafetensorsFileError`, which ``tr.load`` turns into its ``CheckpointError``.
"""
from __future__ import annotations

import json
import os
import struct

import numpy as np

from .files import write_atomically

INSTALL_HINT = 'pip install "tinygrad_rnn[safetensors]" (or pip install safetensors)'
_MAX_HEADER = 100_000_000  # the safetensors library's own limit on the JSON header


class SafetensorsFileError(ValueError):
    """A file that is truncated, corrupted, or not a safetensors file (the message names the path)."""


def _library(op):
    """``safetensors.numpy``, or an ImportError that says how to install it."""
    try:
        import safetensors.numpy as library
    except ImportError:
        raise ImportError(f"{op}: the safetensors format needs the safetensors package: {INSTALL_HINT}") from None
    return library


def _arrays(obj, path):
    """The NumPy arrays of a flat ``{name: Tensor}`` mapping; anything else is refused with a clear error."""
    from .tensor import Tensor

    hint = (
        f"save: {path}: the safetensors format holds only a flat mapping of names to tensors "
        "(a state_dict()); use the default format (e.g. a .npz path) for checkpoints with other values"
    )
    if not isinstance(obj, dict):
        raise TypeError(f"{hint}; got a {type(obj).__name__}")
    arrays = {}
    for name, value in obj.items():
        if not isinstance(name, str):
            raise TypeError(f"{hint}; got a key {name!r} of type {type(name).__name__}")
        if isinstance(value, Tensor):
            array = value.numpy()
        elif isinstance(value, np.ndarray):
            array = value
        else:
            raise TypeError(f"{hint}; got {name!r}: a {type(value).__name__}")
        if array.dtype.kind not in "biuf":
            raise TypeError(f"save: {path}: {name!r} has dtype {array.dtype}, which safetensors cannot hold")
        arrays[name] = array if array.flags.c_contiguous else array.copy(order="C")
    return arrays


def save(obj, path) -> None:
    """Write the flat ``{name: Tensor}`` mapping ``obj`` (a ``state_dict()``) to ``path`` as safetensors, atomically."""
    library = _library("save")
    arrays = _arrays(obj, os.fspath(path))
    data = library.save(arrays)
    write_atomically(path, lambda file: file.write(data), "save")


def _check_header(data, path):
    """Refuse what is plainly not a safetensors file, before the library reads it."""
    if len(data) < 8:
        what = "an empty file" if not data else f"only {len(data)} bytes"
        raise SafetensorsFileError(f"load: {path} is not a safetensors file ({what})")
    (size,) = struct.unpack("<Q", data[:8])
    if size > _MAX_HEADER or 8 + size > len(data):
        raise SafetensorsFileError(
            f"load: {path} is truncated or not a safetensors file (its header claims {size} bytes, "
            f"the file has {len(data) - 8} after the length)"
        )
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SafetensorsFileError(f"load: {path} is corrupted: its header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise SafetensorsFileError(f"load: {path} is corrupted: its header is not a JSON object")


def load(path, map_location="cpu"):
    """Read a safetensors file into ``{name: Tensor}`` with the saved dtypes, on ``map_location``
    (``"cpu"`` by default; ``None`` means the CPU, as the file records no device)."""
    from .tensor import Tensor

    library = _library("load")
    with open(path, "rb") as file:
        data = file.read()
    _check_header(data, path)
    try:
        arrays = library.load(data)
    except Exception as exc:  # the library raises its own SafetensorError (and others) for a damaged file
        raise SafetensorsFileError(f"load: {path} is truncated or corrupted ({type(exc).__name__}: {exc})") from None
    device = "cpu" if map_location is None else map_location
    return {name: Tensor(array, device=device) for name, array in arrays.items()}


__all__ = ["save", "load", "SafetensorsFileError", "INSTALL_HINT"]
