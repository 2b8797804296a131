"""Word vectors in the plain-text format of GloVe and word2vec: read them, write them.

One word per line, followed by its D numbers, separated by white space::

    3 4                        <- word2vec's optional header: how many words, how many numbers each
    king 0.12 -0.5 0.33 0.9
    queen 0.1 -0.4 0.31 0.7
    the -0.02 0.2 0.0 0.05

GloVe's files have no header. Both read into a vocabulary list and a float32
(V, D) matrix, ready for ``nn.Embedding.from_pretrained(tensor(matrix))``.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from ..files import write_atomically

__all__ = ["load_word_vectors", "save_word_vectors"]


def _lines(path: Path):
    """(line number, text) of the file, read as UTF-8 (gzip-compressed when its name ends with .gz)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as file:
            yield from enumerate(file, start=1)
    except UnicodeDecodeError as exc:
        raise ValueError(f"load_word_vectors: {path} is not UTF-8 text ({exc.reason} at byte {exc.start} of a "
                         "block): expected one word and its numbers per line") from None
    except (gzip.BadGzipFile, EOFError) as exc:
        raise ValueError(f"load_word_vectors: {path} is not a complete gzip file ({exc}): expected a text file of "
                         "word vectors, gzip-compressed when its name ends with .gz") from None
    except OSError as exc:
        error = type(exc)(f"load_word_vectors: cannot read {path}: {exc.strerror or exc}")
        error.errno = exc.errno
        raise error from None


def _header(fields) -> tuple[int, int] | None:
    """(V, D) when the line's fields are word2vec's header: two non-negative integers."""
    if len(fields) == 2 and all(f.isdigit() for f in fields):
        return int(fields[0]), int(fields[1])
    return None


def _numbers(path, number, fields) -> np.ndarray:
    try:
        values = np.array(fields, dtype=np.float64)
    except ValueError:
        bad = next(f for f in fields if not _is_number(f))
        raise ValueError(f"load_word_vectors: {path} line {number}: {bad!r} is not a number (expected a word "
                         f"followed by {len(fields)} numbers)") from None
    if not np.isfinite(values).all():
        bad = fields[int(np.flatnonzero(~np.isfinite(values))[0])]
        raise ValueError(f"load_word_vectors: {path} line {number}: {bad!r} is not a finite number")
    return values


def _is_number(text) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_word_vectors(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Read word vectors in the GloVe / word2vec text format: ``(words, vectors)`` with ``vectors`` a float32
    (V, D) array whose row i is the vector of ``words[i]``.

    Each line holds a word and its D numbers, white-space separated; word2vec's optional first line
    ``V D`` is recognised (two integers followed by lines of D numbers) and checked against the file.
    Blank lines are skipped; ``.gz`` files are decompressed. A ragged line, a value that is not a
    finite number, a repeated word or an empty file is a ValueError naming the file and the line.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load_word_vectors: no such file: {path}")
    if not path.is_file():
        raise ValueError(f"load_word_vectors: {path} is not a regular file: expected a text file of word vectors")
    words: list[str] = []
    rows: list[np.ndarray] = []
    seen: dict[str, int] = {}
    header = None
    dim = first = None
    for number, line in _lines(path):
        fields = line.split()
        if not fields:
            continue
        if first is None and header is None and _header(fields) is not None:
            header, header_line = _header(fields), number
            continue
        if len(fields) < 2:
            raise ValueError(f"load_word_vectors: {path} line {number}: expected a word followed by its numbers, "
                             f"got only {fields[0]!r}")
        if dim is None:
            dim, first = len(fields) - 1, number
            if header is not None and header[1] != dim:
                raise ValueError(f"load_word_vectors: {path} line {number}: the header (line {header_line}) says "
                                 f"{header[1]} numbers per word, got {dim}")
        elif len(fields) - 1 != dim:
            raise ValueError(f"load_word_vectors: {path} line {number}: expected a word and {dim} numbers (as on "
                             f"line {first}), got {len(fields) - 1} numbers: ragged line")
        word = fields[0]
        if word in seen:
            raise ValueError(f"load_word_vectors: {path} line {number}: the word {word!r} is repeated "
                             f"(first on line {seen[word]})")
        seen[word] = number
        rows.append(_numbers(path, number, fields[1:]))
        words.append(word)
    if not words:
        what = f"only a header (line {header_line})" if header is not None else "no lines"
        raise ValueError(f"load_word_vectors: {path} has {what}: expected one word and its numbers per line")
    if header is not None and header[0] != len(words):
        raise ValueError(f"load_word_vectors: {path}: the header (line {header_line}) says {header[0]} words, "
                         f"the file has {len(words)}")
    return words, np.array(rows, dtype=np.float32)


def save_word_vectors(path: str | os.PathLike, words, vectors, header: bool = True) -> Path:
    """Write ``vectors`` (V, D), row i the vector of ``words[i]``, in the text format that
    :func:`load_word_vectors` (and gensim's ``load_word2vec_format``, GloVe tools with ``header=False``) read.

    With ``header`` the file starts with word2vec's ``V D`` line. Each number is written as the shortest
    decimal that reads back as the same float32 (what :func:`load_word_vectors` returns), so a save and a
    load give the float32 matrix back exactly. The file is replaced atomically; returns its path.
    """
    words = list(words)
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.dtype.kind not in "fiu":
        raise ValueError(f"save_word_vectors: vectors must be a 2-D (words, dims) array of numbers, got shape "
                         f"{vectors.shape} of {vectors.dtype}")
    if len(words) != vectors.shape[0] or vectors.shape[1] == 0:
        raise ValueError(f"save_word_vectors: expected one word per row of vectors ({vectors.shape[0]} rows of "
                         f"{vectors.shape[1]} numbers, at least one), got {len(words)} words")
    if not np.isfinite(vectors).all():
        raise ValueError("save_word_vectors: vectors must be finite, got NaN or infinity")
    for word in words:
        if not isinstance(word, str) or not word or any(ch.isspace() for ch in word):
            raise ValueError(f"save_word_vectors: every word must be a non-empty str without white space, got {word!r}")
    if len(set(words)) != len(words):
        raise ValueError("save_word_vectors: words must be unique")
    lines = [f"{len(words)} {vectors.shape[1]}\n"] if header else []
    # str() of a float32 is its shortest form that reads back as the same float32
    lines += [word + " " + " ".join(map(str, row)) + "\n" for word, row in zip(words, vectors.astype(np.float32))]
    text = "".join(lines).encode("utf-8")
    write_atomically(path, lambda file: file.write(text), "save_word_vectors")
    return Path(path)
