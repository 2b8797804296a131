"""Checkpoints without pickle: ``save(obj, path)`` and ``load(path)``.

A checkpoint is a NumPy ``.npz`` archive. Every array (from a Tensor or a
NumPy array) is one entry; the structure around them (dicts, lists, tuples,
strings, numbers, booleans, None) is a JSON document stored as a uint8 array
entry. Loading uses ``numpy.load(..., allow_pickle=False)`` and ``json``, so
reading a checkpoint never runs code from the file. Writes go to a temporary
file in the target directory (a symbolic link's target) that is renamed over
the target only once complete, so an interrupted save leaves the previous
checkpoint intact.

JSON nodes: lists are JSON arrays; every JSON object is a tagged node —
``{"$dict": [[key, value], ...]}`` (keys may be any scalar or tuple),
``{"$tuple": [...]}``, ``{"$tensor": entry, ...}``, ``{"$array": entry}``,
``{"$scalar": entry}`` (a NumPy scalar) — so user data can never be mistaken
for a tag.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .files import write_atomically

FORMAT = "tinygrad_rnn.checkpoint"
VERSION = 1
_STRUCTURE = "__structure__"


class CheckpointError(ValueError):
    """A file that is missing pieces, corrupted, or not a tinygrad_rnn checkpoint."""


# ------------------------------------------------------------------------- saving
class _Encoder:
    """Turns an object into a JSON-able tree, collecting its arrays as named entries."""

    def __init__(self):
        self.arrays = {}

    def add(self, array, where):
        if array.dtype.kind not in "biufc":
            raise TypeError(f"save: {where} is an array of dtype {array.dtype}; only numeric and bool arrays can be saved")
        name = f"a{len(self.arrays)}"
        self.arrays[name] = array
        return name

    def encode(self, obj, where="obj"):
        from .nn.module import Parameter
        from .tensor import Tensor

        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, (int, float)) and not isinstance(obj, (np.integer, np.floating)):
            return int(obj) if isinstance(obj, int) else float(obj)
        if isinstance(obj, Tensor):
            node = {"$tensor": self.add(obj.numpy(), where), "device": obj.device, "requires_grad": obj.requires_grad}
            if isinstance(obj, Parameter):
                node["parameter"] = True
            return node
        if isinstance(obj, np.ndarray):
            return {"$array": self.add(obj, where)}
        if isinstance(obj, np.generic):
            return {"$scalar": self.add(np.asarray(obj), where)}
        if isinstance(obj, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"$tuple": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, dict):
            items = []
            for key, value in obj.items():
                if not _is_key(key):
                    raise TypeError(
                        f"save: {where} has a key {key!r} of type {type(key).__name__}; "
                        "keys must be str, int, float, bool, None or tuples of them"
                    )
                items.append([self.encode(key, where), self.encode(value, f"{where}[{key!r}]")])
            return {"$dict": items}
        raise TypeError(
            f"save: {where} is a {type(obj).__name__}; checkpoints hold only Tensors, NumPy arrays, dicts, lists, "
            "tuples, str, int, float, bool and None (no pickle)"
        )


def _is_key(key):
    if key is None or isinstance(key, (str, bool, int, float)) and not isinstance(key, (np.integer, np.floating)):
        return True
    return isinstance(key, tuple) and all(_is_key(k) for k in key)


def _is_safetensors(path, format, op):
    """Whether ``format`` (or, when it is None, the ``.safetensors`` suffix of ``path``) asks for safetensors."""
    if format is None:
        return os.fspath(path).endswith(".safetensors")
    if format not in ("safetensors", "npz"):
        raise ValueError(f"{op}: format must be None, 'npz' or 'safetensors', got {format!r}")
    return format == "safetensors"


def save(obj, path, format=None) -> None:
    """Write ``obj`` (nested dicts/lists/tuples of Tensors, NumPy arrays and plain JSON values, e.g. a
    ``state_dict()``) to ``path`` atomically, as an ``.npz`` archive without pickle.

    Like ``open(path, "wb")``: a new file gets mode ``0o666`` less the umask, an existing one keeps its
    mode, a symbolic link is written through (the link stays), and a read-only file is refused.

    A path ending in ``.safetensors`` (or ``format="safetensors"``) writes a flat ``{name: Tensor}``
    mapping in the safetensors format instead (``serialization_safetensors``).
    """
    if _is_safetensors(path, format, "save"):
        from . import serialization_safetensors

        return serialization_safetensors.save(obj, path)
    encoder = _Encoder()
    root = encoder.encode(obj)
    document = json.dumps({"format": FORMAT, "version": VERSION, "root": root})
    entries = dict(encoder.arrays)
    entries[_STRUCTURE] = np.frombuffer(document.encode("utf-8"), dtype=np.uint8)
    write_atomically(path, lambda file: np.savez(file, **entries), "save")


# ------------------------------------------------------------------------ loading
class _Decoder:
    def __init__(self, arrays, path, device):
        self.arrays = arrays
        self.path = path
        self.device = device

    def array(self, name):
        if not isinstance(name, str) or name not in self.arrays:
            raise CheckpointError(f"load: {self.path} is corrupted: its structure names a missing array entry {name!r}")
        return self.arrays[name]

    def decode(self, node):
        from .nn.module import Parameter
        from .tensor import Tensor

        if node is None or isinstance(node, (bool, str, int, float)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict):
            raise CheckpointError(f"load: {self.path} is corrupted: unexpected node {node!r:.80}")
        if "$dict" in node:
            out = {}
            for item in node["$dict"]:
                key = self.decode(item[0])
                if isinstance(key, list):
                    raise CheckpointError(f"load: {self.path} is corrupted: a dict key is a list")
                out[key] = self.decode(item[1])
            return out
        if "$tuple" in node:
            return tuple(self.decode(v) for v in node["$tuple"])
        if "$array" in node:
            return self.array(node["$array"])
        if "$scalar" in node:
            return self.array(node["$scalar"])[()]
        if "$tensor" in node:
            data = self.array(node["$tensor"])
            device = node.get("device", "cpu") if self.device is None else self.device
            if node.get("parameter"):
                return Parameter(Tensor(data, device=device), requires_grad=bool(node.get("requires_grad", True)))
            return Tensor(data, device=device, requires_grad=bool(node.get("requires_grad", False)))
        raise CheckpointError(f"load: {self.path} is corrupted: unknown node tags {sorted(node)}")


def _read_entries(path):
    """All arrays of the archive, read eagerly; format problems become CheckpointError naming ``path``."""
    with open(path, "rb") as file:
        magic = file.read(4)
    if magic != b"PK\x03\x04":
        what = "an empty file" if not magic else "not an .npz archive"
        raise CheckpointError(f"load: {path} is not a tinygrad_rnn checkpoint ({what})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            entries = {name: archive[name] for name in archive.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise CheckpointError(
                f"load: {path} contains pickled data, which is refused (loading it could run code); "
                "tinygrad_rnn checkpoints never contain pickle"
            ) from None
        raise CheckpointError(f"load: {path} is not a readable tinygrad_rnn checkpoint ({exc})") from None
    except Exception as exc:  # zipfile, zlib and the .npy reader each have their own error types for a damaged file
        raise CheckpointError(f"load: {path} is truncated or corrupted ({type(exc).__name__}: {exc})") from None
    for name, value in entries.items():
        if not isinstance(value, np.ndarray):
            raise CheckpointError(f"load: {path} is not a tinygrad_rnn checkpoint (entry {name!r} is not a NumPy array)")
    return entries


def load(path, map_location="cpu", format=None):
    """Read a checkpoint written by :func:`save`. Tensors come back on ``map_location`` (``"cpu"`` by
    default; ``None`` puts each on the device it was saved from) with their saved dtypes. A path ending
    in ``.safetensors`` (or ``format="safetensors"``) is read as safetensors into ``{name: Tensor}``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no checkpoint at {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"load: {path} is a directory, not a checkpoint file")
    if _is_safetensors(path, format, "load"):
        from . import serialization_safetensors

        try:
            return serialization_safetensors.load(path, map_location)
        except serialization_safetensors.SafetensorsFileError as exc:
            raise CheckpointError(str(exc)) from None
    arrays = _read_entries(path)
    if _STRUCTURE not in arrays:
        raise CheckpointError(f"load: {path} is not a tinygrad_rnn checkpoint (no {_STRUCTURE} entry)")
    try:
        document = json.loads(arrays.pop(_STRUCTURE).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"load: {path} is corrupted: its structure is not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"load: {path} is not a tinygrad_rnn checkpoint (unknown format)")
    version = document.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"load: {path} has checkpoint format version {version!r}; this tinygrad_rnn reads versions up to {VERSION}"
        )
    try:
        return _Decoder(arrays, path, map_location).decode(document.get("root"))
    except (KeyError, IndexError, TypeError) as exc:
        raise CheckpointError(f"load: {path} is corrupted: malformed structure ({exc})") from None


__all__ = ["save", "load", "CheckpointError"]
