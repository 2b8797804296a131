"""Speaker identification: the UCI "Japanese Vowels" utterances, and a reader of sktime's ``.ts`` files.

Typical use::

    train = load_japanese_vowels("train")       # 270 utterances, 30 per speaker
    test = load_japanese_vowels("test")         # 370 utterances
    train.sequences[0].shape                    # (T, 12) float32, T between 7 and 29
    train.labels[:3]                            # speakers as 0..8 (the file's "1".."9")

The data (CC BY 4.0; Kudo, Toyama and Shimbo 1999, UCI Machine Learning
Repository) ships with the package, gzip-compressed; ``tinygrad_rnn/data/files/README.md``
credits it. :func:`read_ts` reads any classification file in the same format:
``#`` comments and ``@`` header lines, then after ``@data`` one sequence per line,
its dimensions separated by ``:``, each a comma-separated series, the class label last.
"""

from __future__ import annotations

import gzip
import lzma
import os
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["LabelledSequences", "load_japanese_vowels", "read_ts", "parse_ts", "VOWELS_FEATURES",
           "VOWELS_SPEAKERS"]

VOWELS_FEATURES = 12  #: LPC cepstrum coefficients per frame
VOWELS_SPEAKERS = 9   #: classes
_SPLITS = ("train", "test")
_SUFFIXES = (".ts", ".ts.gz", ".ts.xz")


class LabelledSequences(NamedTuple):
    """Sequences of different lengths with a class each; unpacks as ``sequences, labels, classes``."""

    sequences: list        # one float32 array (T_i, D) per sequence
    labels: np.ndarray     # (n,) int64 class indices into ``classes``
    classes: tuple         # the file's label text of each class index, e.g. ("1", ..., "9")


def load_japanese_vowels(split: str = "train", path=None, classes=None) -> LabelledSequences:
    """The ``split`` ("train" or "test") of Japanese Vowels: 12 features per frame, 9 speakers.

    ``path`` (default: the copy shipped with the package) is a ``.ts`` file of
    your own in the same format (``.ts.gz`` and ``.ts.xz`` are read too), or a
    folder holding exactly one file whose name ends in ``_TRAIN.ts`` (or
    ``_test.ts.gz``, ... any case) for the split. Classes are ``classes`` when
    given (pass the training split's to its test split), else the file's
    ``@classLabel`` list in order ("1".."9" become 0..8).
    """
    op = "load_japanese_vowels"
    if split not in _SPLITS:
        raise ValueError(f"{op}: split must be 'train' or 'test', got {split!r}")
    if path is None:
        name = f"japanese_vowels_{split}.ts.gz"
        data = (resources.files("tinygrad_rnn.data") / "files" / name).read_bytes()
        return parse_ts(_decompress(data, name, op), source=f"the packaged {name}", classes=classes,
                        dimensions=VOWELS_FEATURES, op=op)
    return read_ts(_split_file(op, path, split), classes=classes, dimensions=VOWELS_FEATURES, op=op)


def read_ts(path, classes=None, dimensions: int | None = None, op: str = "read_ts") -> LabelledSequences:
    """Read a ``.ts`` classification file (``.ts.gz``, ``.ts.xz`` decompressed); see :func:`parse_ts`."""
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"{op}: no such file: {path}")
    return parse_ts(_decompress(path.read_bytes(), path.name, op, path), source=str(path), classes=classes,
                    dimensions=dimensions, op=op)


def parse_ts(text: str, source: str = "<text>", classes=None, dimensions: int | None = None,
             op: str = "parse_ts") -> LabelledSequences:
    """Parse the text of a ``.ts`` classification file into :class:`LabelledSequences`.

    Every line must have the same number of dimensions (``dimensions``, else
    the header's ``@dimensions``, else the first line's), all of one length,
    and a label. Class indices follow ``classes`` when given (e.g. the training
    file's, for its test file), else the header's ``@classLabel true ...`` list,
    else the sorted labels found. A malformed line is a ValueError naming
    ``source`` and the line number.
    """
    header, first_data = _header(text, source, op)
    if header.get("classlabel", ["true"])[0].lower() == "false":
        raise ValueError(f"{op}: {source} has no class labels (@classLabel false); expected one per line")
    declared = header.get("dimensions")
    if dimensions is None and declared:
        dimensions = _declared_dimensions(declared, source, op)
    elif declared and _declared_dimensions(declared, source, op) != dimensions:
        raise ValueError(f"{op}: {source} declares @dimensions {declared[0]}, expected {dimensions}")
    sequences, label_text, lines = [], [], []
    for number, line in enumerate(text.splitlines()[first_data:], start=first_data + 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{op}: {source} line {number}"
        series, label = _parse_line(line, where, dimensions)
        dimensions = series.shape[1]
        sequences.append(series)
        label_text.append(label)
        lines.append(number)
    if not sequences:
        raise ValueError(f"{op}: {source} holds no sequences after @data")
    if classes is None:
        classes = header.get("classlabel", [])[1:] or sorted(set(label_text), key=_label_order)
    classes = tuple(str(c) for c in classes)
    index = {c: i for i, c in enumerate(classes)}
    for label, number in zip(label_text, lines):
        if label not in index:
            raise ValueError(f"{op}: {source} line {number}: label {label!r} is not one of the classes "
                             f"{' '.join(classes)}")
    labels = np.array([index[label] for label in label_text], dtype=np.int64)
    return LabelledSequences(sequences, labels, classes)


# ------------------------------------------------------------------------------------------ helpers
def _header(text: str, source: str, op: str) -> tuple[dict, int]:
    """The ``@`` header as {lower-case key: its words} and the index of the line after ``@data``."""
    header = {}
    for number, line in enumerate(text.splitlines()):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise ValueError(f"{op}: {source} line {number + 1}: expected a '#' comment, an '@' header line "
                             f"or @data before the data, got {line[:40]!r}")
        key, *words = line[1:].split()
        if key.lower() == "data":
            return header, number + 1
        header[key.lower()] = words
    raise ValueError(f"{op}: {source} has no @data line: expected a .ts file (header lines, @data, then the data)")


def _declared_dimensions(words, source, op) -> int:
    if len(words) != 1 or not words[0].isdigit() or int(words[0]) < 1:
        raise ValueError(f"{op}: {source}: @dimensions must be a positive integer, got {' '.join(words)!r}")
    return int(words[0])


def _parse_line(line: str, where: str, dimensions: int | None) -> tuple[np.ndarray, str]:
    """One data line → (float32 array (T, D), label text)."""
    *fields, label = line.split(":")
    label = label.strip()
    if not fields or not label or "," in label:
        found = len(fields) + (1 if "," in label else 0)
        raise ValueError(f"{where}: missing label: expected {dimensions or 'the'} series and then the class "
                         f"label, separated by ':', found {found} series and no label")
    if dimensions is not None and len(fields) != dimensions:
        raise ValueError(f"{where}: expected {dimensions} dimensions separated by ':' before the label, "
                         f"got {len(fields)}")
    columns = []
    for d, field in enumerate(fields, start=1):
        values = field.split(",")
        try:
            column = np.array([float(v) for v in values], dtype=np.float64)
        except ValueError:
            column = None
        if column is None or not np.isfinite(column).all():
            bad = next(i for i, v in enumerate(values) if not _finite(v))
            raise ValueError(f"{where}: dimension {d}, value {bad + 1}: expected a finite number, "
                             f"got {values[bad].strip()!r:.40}")
        if columns and len(column) != len(columns[0]):
            raise ValueError(f"{where}: dimension {d} has {len(column)} values but dimension 1 has "
                             f"{len(columns[0])}: every dimension of a sequence must have the same length")
        columns.append(column)
    return np.ascontiguousarray(np.stack(columns, axis=1), dtype=np.float32), label


def _finite(text: str) -> bool:
    try:
        return bool(np.isfinite(float(text)))
    except ValueError:
        return False


def _label_order(label: str):
    """Numeric labels in numeric order ("2" before "10"), then the others alphabetically."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _decompress(data: bytes, name: str, op: str, path=None) -> str:
    """The UTF-8 text of a file's bytes, gunzipped or un-xz'd by its name."""
    where = path if path is not None else name
    try:
        if name.lower().endswith(".gz"):
            data = gzip.decompress(data)
        elif name.lower().endswith(".xz"):
            data = lzma.decompress(data)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise ValueError(f"{op}: cannot decompress {where}: {exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{op}: {where} is not UTF-8 text (byte {exc.start}): expected a .ts file") from None


def _split_file(op: str, path, split: str) -> Path:
    """``path`` itself, or the one file of the folder ``path`` whose name ends in ``_SPLIT.ts[.gz|.xz]``."""
    path = Path(os.fspath(path))
    if not path.is_dir():
        return path
    endings = tuple(f"_{split}{suffix}" for suffix in _SUFFIXES)
    found = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(endings))
    if len(found) != 1:
        listed = ", ".join(p.name for p in found) if found else "none"
        raise FileNotFoundError(f"{op}: expected one file named *_{split.upper()}.ts (or .ts.gz, .ts.xz) in "
                                f"{path}, found {listed}")
    return found[0]
