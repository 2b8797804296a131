"""Character language-model data: corpora, train/val split and TBPTT batches.

Typical use::

    text = load_tinyshakespeare()                     # the char-rnn corpus, shipped with the package
    vocab = CharVocab.from_text(text)
    train, val = split_text(vocab.encode(text), val_fraction=0.1)
    batched = batchify(train, batch_size=32)          # (n_steps, 32)
    for inputs, targets in tbptt_batches(batched, seq_len=64):
        ...  # carry the hidden state from one chunk to the next
"""

from __future__ import annotations

import gzip
import os
import sysconfig
from importlib import resources
from pathlib import Path
from typing import Iterator

import numpy as np

from ..checks import check_fraction, check_int
from ._checks import check_1d, check_integer_dtype
from .vocab import CharVocab

__all__ = ["CharVocab", "load_text", "load_tinyshakespeare", "stdlib_corpus", "split_text", "batchify",
           "tbptt_batches"]

# Directories left out of the stdlib corpus: test suites (lots of odd, generated
# or deliberately broken code), IDLE, and third-party packages.
_SKIPPED_STDLIB_DIRS = frozenset({"test", "tests", "idlelib", "site-packages", "__pycache__"})


def load_text(path: str | os.PathLike) -> str:
    """Read a whole UTF-8 text file, e.g. a corpus for a character model."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_text: no such file: {path}")
    text = path.read_text(encoding="utf-8")
    if not text:
        raise ValueError(f"load_text: file is empty: {path}")
    return text


def load_tinyshakespeare() -> str:
    """The char-rnn corpus: 1,115,394 characters (65 distinct) of Shakespeare's plays, public domain,
    shipped gzip-compressed with the package (``data/files/README.md`` gives its source). The lectures'
    corpus, and the default of the character and word examples."""
    data = (resources.files("tinygrad_rnn.data") / "files" / "tinyshakespeare.txt.gz").read_bytes()
    return gzip.decompress(data).decode("utf-8")


def _stdlib_source_files(stdlib_dir: Path) -> Iterator[Path]:
    """The stdlib's .py files in a fixed order: sorted, directory by directory."""
    for root, dirnames, filenames in os.walk(stdlib_dir):
        # Pruning and sorting in place controls where os.walk descends next.
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_STDLIB_DIRS)
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield Path(root, name)


def stdlib_corpus(max_chars: int = 1_000_000) -> str:
    """Source text of the Python standard library, up to ``max_chars`` characters.

    A corpus that exists on every machine with Python, the analogue of the
    lecture's character model trained on Linux source code. Files are read in
    sorted order (skipping test/tests/idlelib/site-packages directories and
    files that are not valid UTF-8) and concatenated, so the result is the
    same on every call for a given Python install.
    """
    max_chars = check_int("stdlib_corpus", "max_chars", max_chars, minimum=1)
    stdlib_dir = Path(sysconfig.get_paths()["stdlib"])
    if not stdlib_dir.is_dir():
        raise FileNotFoundError(f"stdlib_corpus: standard library directory not found: "
                                f"{stdlib_dir}")
    pieces: list[str] = []
    total = 0
    for path in _stdlib_source_files(stdlib_dir):
        try:
            source = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        pieces.append(source)
        total += len(source)
        if total >= max_chars:
            break
    corpus = "".join(pieces)[:max_chars]
    if not corpus:
        raise FileNotFoundError(f"stdlib_corpus: no readable .py files under {stdlib_dir}")
    return corpus


def split_text(data, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Split an encoded stream into contiguous (train, val) parts.

    The validation part is the last ``val_fraction`` of the stream (at least
    one element), so no text leaks between the two as it would with a
    random split of overlapping windows.
    """
    data = check_1d("split_text", "data", data)
    val_fraction = check_fraction("split_text", "val_fraction", val_fraction)
    if len(data) < 2:
        raise ValueError(f"split_text: data must have at least 2 elements, got {len(data)}")
    n_val = min(max(1, int(round(len(data) * val_fraction))), len(data) - 1)
    n_train = len(data) - n_val
    return data[:n_train], data[n_train:]


def batchify(data, batch_size: int) -> np.ndarray:
    """Cut a 1-D stream into ``batch_size`` contiguous columns, time-major.

    Returns an array of shape (n_steps, batch_size) with
    ``n_steps = len(data) // batch_size``; column j is
    ``data[j * n_steps:(j + 1) * n_steps]`` and the remainder is dropped.
    Each column is one long sequence, so a hidden state can be carried from
    one TBPTT chunk to the next (the PyTorch word_language_model layout).
    """
    data = check_1d("batchify", "data", data)
    batch_size = check_int("batchify", "batch_size", batch_size, minimum=1)
    n_steps = len(data) // batch_size
    if n_steps == 0:
        raise ValueError(f"batchify: data must have at least batch_size={batch_size} "
                         f"elements, got {len(data)}")
    columns = data[: n_steps * batch_size].reshape(batch_size, n_steps)
    return np.ascontiguousarray(columns.T)


def tbptt_batches(batched, seq_len: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Iterate over (inputs, targets) chunks of a batchified stream for truncated BPTT.

    ``batched`` is (n_steps, batch) as returned by :func:`batchify`. Each chunk
    covers up to ``seq_len`` consecutive time steps; inputs and targets are
    int64 arrays of shape (seq_len_i, batch) with ``targets[t] == inputs[t+1]``
    inside a chunk and the last target of one chunk equal to the first input
    of the next. The last chunk may be shorter than ``seq_len``. Chunks
    follow each other in time, so the model's state can be carried across
    (detached from the graph between chunks).
    """
    batched = np.asarray(batched)
    if batched.ndim != 2:
        raise ValueError(f"tbptt_batches: batched must be a 2-D (n_steps, batch) array, "
                         f"got shape {batched.shape}")
    check_integer_dtype("tbptt_batches", "batched", batched)
    seq_len = check_int("tbptt_batches", "seq_len", seq_len, minimum=1)
    if batched.shape[0] < 2:
        raise ValueError(f"tbptt_batches: batched must have at least 2 time steps to form "
                         f"input/target pairs, got {batched.shape[0]}")
    # Validation happens above, eagerly; the generator below runs lazily.
    return _tbptt_chunks(batched.astype(np.int64, copy=False), seq_len)


def _tbptt_chunks(batched: np.ndarray, seq_len: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    n_pairs = batched.shape[0] - 1  # the final step only serves as a target
    for start in range(0, n_pairs, seq_len):
        length = min(seq_len, n_pairs - start)
        yield batched[start:start + length], batched[start + 1:start + 1 + length]
