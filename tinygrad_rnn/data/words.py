"""Word-level data: a tokenizer, a word vocabulary, word2vec's training examples, and speeches with their speakers.

Typical use (skip-gram with negative sampling, as word2vec trains)::

    tokens = tokenize(load_tinyshakespeare())                  # ['first', 'citizen', 'before', ...]
    vocab = WordVocab.from_tokens(tokens, min_count=5)          # '<unk>' is id 0
    ids = vocab.encode(tokens)
    ids = ids[ids != vocab.unk_index]                           # word2vec drops the rare words
    ids = subsample(ids, subsample_keep_probability(vocab.counts), rng)
    centers, contexts = skipgram_pairs(ids, window=5, rng=rng)  # (N,), (N,)
    noise = negative_sampling_distribution(vocab.counts)        # unigram^0.75
    negatives = sample_negatives(noise, (len(centers), 5), rng)

and for a play's text, :func:`parse_speeches` gives its speeches (a line
``NAME:`` followed by the speech's lines up to the next blank line) with
their speakers.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, NamedTuple

import numpy as np

from ..checks import check_int
from ._checks import check_1d, check_integer_dtype

__all__ = ["tokenize", "WordVocab", "negative_sampling_distribution", "sample_negatives",
           "subsample_keep_probability", "subsample", "skipgram_pairs", "cbow_windows", "Speech",
           "parse_speeches"]

# Runs of letters, with inner apostrophes kept ("know't", "o'er"); a leading one ("'tis") is dropped.
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


def tokenize(text: str, lower: bool = True) -> list[str]:
    """The words of ``text``: runs of letters (any alphabet), keeping inner apostrophes ("know't"),
    lower-cased unless ``lower=False``. Digits, punctuation and white space separate words and are dropped."""
    if not isinstance(text, str):
        raise TypeError(f"tokenize: text must be a str, got {type(text).__name__}")
    return _WORD.findall(text.lower() if lower else text)


class WordVocab:
    """A fixed list of words, the id of a word being its index, with each word's count in the training text.

    Build one from tokens with :meth:`from_tokens` (words at least ``min_count``
    times, most frequent first); :meth:`encode` maps the words it does not know to
    the unknown token ``unk_token`` (id 0; ``None`` for a vocabulary without one,
    where an unknown word is an error). ``counts`` is an int64 array aligned with
    ``words`` (the unknown token counts the tokens it replaced), the input of
    :func:`negative_sampling_distribution` and :func:`subsample_keep_probability`.
    """

    def __init__(self, words: Iterable[str], counts=None, unk_token: str | None = "<unk>"):
        words = list(words)
        for word in words:
            if not isinstance(word, str) or not word or any(ch.isspace() for ch in word):
                raise ValueError(f"WordVocab: every word must be a non-empty str without white space, got {word!r}")
        if unk_token is not None and unk_token not in words:
            words = [unk_token] + words
            counts = None if counts is None else [0] + list(counts)
        elif unk_token is not None and words[0] != unk_token:
            raise ValueError(f"WordVocab: unk_token {unk_token!r} must be the first word (id 0), "
                             f"found at index {words.index(unk_token)}")
        if len(set(words)) != len(words):
            duplicates = sorted(w for w, n in Counter(words).items() if n > 1)
            raise ValueError(f"WordVocab: words must be unique, got duplicates {duplicates[:5]!r}")
        if not words:
            raise ValueError("WordVocab: words must not be empty, got []")
        counts = np.zeros(len(words), dtype=np.int64) if counts is None else np.asarray(counts)
        if counts.shape != (len(words),) or counts.dtype.kind not in "iu" or (counts < 0).any():
            raise ValueError(f"WordVocab: counts must be {len(words)} non-negative integers (one per word), "
                             f"got shape {counts.shape} of {counts.dtype}")
        self.words: list[str] = words
        self.counts: np.ndarray = counts.astype(np.int64)
        self.unk_token = unk_token
        self._index = {w: i for i, w in enumerate(words)}

    @classmethod
    def from_tokens(cls, tokens: Iterable[str], min_count: int = 1, max_size: int | None = None,
                    unk_token: str | None = "<unk>") -> "WordVocab":
        """The words occurring at least ``min_count`` times in ``tokens`` (at most ``max_size`` of them, the
        most frequent), sorted by decreasing count and then alphabetically, after the unknown token."""
        min_count = check_int("WordVocab.from_tokens", "min_count", min_count, minimum=1)
        if max_size is not None:
            max_size = check_int("WordVocab.from_tokens", "max_size", max_size, minimum=1)
        if isinstance(tokens, str):
            raise TypeError("WordVocab.from_tokens: tokens must be a list of words, got a str (tokenize it first)")
        counter = Counter(tokens)
        if unk_token is not None:
            counter.pop(unk_token, None)
        kept = sorted((w for w, n in counter.items() if n >= min_count), key=lambda w: (-counter[w], w))
        kept = kept[:max_size]
        if not kept:
            most = max(counter.values(), default=0)
            raise ValueError(f"WordVocab.from_tokens: no word occurs min_count={min_count} times "
                             f"({len(counter)} distinct words, the most frequent {most} times)")
        counts = [counter[w] for w in kept]
        if unk_token is None:
            return cls(kept, counts, unk_token=None)
        replaced = sum(counter.values()) - sum(counts)
        return cls([unk_token] + kept, [replaced] + counts, unk_token=unk_token)

    @property
    def unk_index(self) -> int | None:
        """The id of the unknown token (0), or None without one."""
        return None if self.unk_token is None else 0

    def index(self, word: str) -> int:
        """The id of ``word``; a ValueError if it is not in the vocabulary."""
        try:
            return self._index[word]
        except KeyError:
            raise ValueError(f"WordVocab: {word!r} is not in the vocabulary ({len(self)} words)") from None

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """The ids of ``tokens`` as a 1-D int64 array; unknown words get ``unk_index``."""
        if isinstance(tokens, str):
            raise TypeError("WordVocab.encode: tokens must be a list of words, got a str (tokenize it first)")
        index = self._index
        if self.unk_token is None:
            tokens = list(tokens)
            missing = next((t for t in tokens if t not in index), None)
            if missing is not None:
                raise ValueError(f"WordVocab.encode: {missing!r} is not in the vocabulary and it has no unk_token")
            return np.fromiter((index[t] for t in tokens), dtype=np.int64)
        return np.fromiter((index.get(t, 0) for t in tokens), dtype=np.int64)

    def decode(self, ids) -> list[str]:
        """The words with the given ids."""
        ids = check_1d("WordVocab.decode", "ids", ids)
        if ids.size == 0:
            return []
        check_integer_dtype("WordVocab.decode", "ids", ids)
        bad = (ids < 0) | (ids >= len(self.words))
        if bad.any():
            raise ValueError(f"WordVocab.decode: ids must be in [0, {len(self.words) - 1}], got {int(ids[bad][0])}")
        return [self.words[i] for i in ids.tolist()]

    def to_dict(self) -> dict:
        """Plain dict (words, counts, unk_token) that ``json.dump`` can write."""
        return {"words": list(self.words), "counts": self.counts.tolist(), "unk_token": self.unk_token}

    @classmethod
    def from_dict(cls, d: dict) -> "WordVocab":
        """Rebuild a vocabulary saved with :meth:`to_dict`."""
        if not isinstance(d, dict) or "words" not in d:
            raise ValueError(f"WordVocab.from_dict: d must be a dict with a 'words' list, got {d!r:.80}")
        return cls(d["words"], d.get("counts"), d.get("unk_token"))

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word) -> bool:
        return word in self._index

    def __eq__(self, other) -> bool:
        if not isinstance(other, WordVocab):
            return NotImplemented
        same_words = (self.words, self.unk_token) == (other.words, other.unk_token)
        return same_words and np.array_equal(self.counts, other.counts)

    __hash__ = None

    def __repr__(self) -> str:
        head = ", ".join(self.words[:5])
        return f"WordVocab({len(self)} words: {head}{', ...' if len(self) > 5 else ''})"


# ------------------------------------------------------------------------------------------ word2vec
def _counts(op, counts) -> np.ndarray:
    counts = check_1d(op, "counts", counts)
    if counts.size == 0 or counts.dtype.kind not in "iuf" or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError(f"{op}: counts must be non-negative numbers, not all zero, one per word; got {counts!r:.80}")
    return counts.astype(np.float64)


def negative_sampling_distribution(counts, power: float = 0.75) -> np.ndarray:
    """word2vec's noise distribution: P(w) ∝ count(w)^power (0.75 flattens the unigram distribution, so
    rare words are drawn more often than their frequency); float64 probabilities summing to 1.
    Words with a zero count (e.g. the unknown token) are never drawn."""
    counts = _counts("negative_sampling_distribution", counts)
    weights = counts ** float(power)
    weights[counts == 0] = 0.0
    return weights / weights.sum()


def sample_negatives(probabilities, shape, rng: np.random.Generator) -> np.ndarray:
    """int64 word ids of ``shape`` drawn independently from ``probabilities`` (from
    :func:`negative_sampling_distribution`) with the NumPy Generator ``rng``."""
    probabilities = check_1d("sample_negatives", "probabilities", probabilities)
    if probabilities.size == 0 or (probabilities < 0).any() or not np.isclose(probabilities.sum(), 1.0):
        raise ValueError("sample_negatives: probabilities must be non-negative and sum to 1")
    cumulative = np.cumsum(probabilities)
    cumulative[-1] = 1.0
    draws = np.searchsorted(cumulative, rng.random(shape), side="right")
    return np.minimum(draws, probabilities.size - 1).astype(np.int64)


def subsample_keep_probability(counts, threshold: float = 1e-3) -> np.ndarray:
    """word2vec's frequent-word subsampling: each occurrence of a word of frequency f = count / total is
    kept with probability (√(f/t) + 1)·t/f (the formula of word2vec's C code, capped at 1), so words far
    more frequent than ``threshold`` t ("the", "and") are mostly dropped and rare ones always kept."""
    counts = _counts("subsample_keep_probability", counts)
    if not 0 < threshold < 1:
        raise ValueError(f"subsample_keep_probability: threshold must be in (0, 1), got {threshold!r}")
    frequency = counts / counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = (np.sqrt(frequency / threshold) + 1) * threshold / frequency
    return np.where(frequency > 0, np.minimum(keep, 1.0), 1.0)


def subsample(ids, keep_probability, rng: np.random.Generator) -> np.ndarray:
    """The ids of the stream ``ids`` that survive subsampling: each kept with ``keep_probability[id]``."""
    ids = check_1d("subsample", "ids", ids)
    check_integer_dtype("subsample", "ids", ids)
    keep_probability = np.asarray(keep_probability, dtype=np.float64)
    return ids[rng.random(ids.shape) < keep_probability[ids]]


def _windows(op, ids, window, rng):
    """ids as an int64 array and each position's window size: ``window`` or, with ``rng``, word2vec's
    reduced window drawn uniformly from 1..window (near words are paired more often than far ones)."""
    ids = check_1d(op, "ids", ids)
    check_integer_dtype(op, "ids", ids)
    window = check_int(op, "window", window, minimum=1)
    sizes = np.full(len(ids), window, dtype=np.int64) if rng is None else rng.integers(1, window + 1, len(ids))
    return ids.astype(np.int64, copy=False), window, sizes


def skipgram_pairs(ids, window: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Skip-gram's (center, context) pairs of the id stream ``ids``: each position paired with every position
    at most its window away on either side (``window``, or with ``rng`` a size drawn from 1..window per center,
    as word2vec does). Returns two int64 arrays; the pairs come by offset (-window..-1, 1..window) and then by
    position."""
    ids, window, sizes = _windows("skipgram_pairs", ids, window, rng)
    centers, contexts = [], []
    positions = np.arange(len(ids))
    for offset in [*range(-window, 0), *range(1, window + 1)]:
        other = positions + offset
        valid = (other >= 0) & (other < len(ids)) & (sizes >= abs(offset))
        centers.append(ids[valid])
        contexts.append(ids[other[valid]])
    return np.concatenate(centers), np.concatenate(contexts)


def cbow_windows(ids, window: int, rng: np.random.Generator | None = None):
    """CBOW's examples of the id stream ``ids``: for each position, the ids around it and the id itself.

    Returns ``(contexts, mask, centers)``: int64 (N, 2·window) context ids in the order of offsets
    -window..-1, 1..window, a bool mask of the same shape (False where the window, or with ``rng`` the
    reduced window drawn from 1..window, runs past its size or the stream's ends; those ids are 0) and the
    int64 (N,) centers. Every position has at least one context word when ``len(ids) >= 2``.
    """
    ids, window, sizes = _windows("cbow_windows", ids, window, rng)
    if len(ids) < 2:
        raise ValueError(f"cbow_windows: ids must have at least 2 words to give a context, got {len(ids)}")
    positions = np.arange(len(ids))[:, None]
    offsets = np.array([*range(-window, 0), *range(1, window + 1)])
    other = positions + offsets
    mask = (other >= 0) & (other < len(ids)) & (sizes[:, None] >= np.abs(offsets))
    contexts = np.where(mask, ids[np.clip(other, 0, len(ids) - 1)], 0)
    return contexts, mask, ids.copy()


# ------------------------------------------------------------------------------------------ speeches
class Speech(NamedTuple):
    """One speech of a play: who speaks, the text (its lines joined by newlines) and the 1-based line
    number of its ``NAME:`` header in the text."""

    speaker: str
    text: str
    line: int


def parse_speeches(text: str) -> list[Speech]:
    """The speeches of a play in the tiny-shakespeare layout: a speech is a header line ``NAME:`` (a line
    ending with its only colon) followed by the lines up to the next blank line.

    Blocks between blank lines that do not start with such a header (titles, stage directions) are
    skipped, as are speeches with no text after the header. The speaker is the header without the colon,
    its case kept ("First Citizen", "KING RICHARD III").
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_speeches: text must be a str, got {type(text).__name__}")
    speeches: list[Speech] = []
    block: list[tuple[int, str]] = []
    for number, line in enumerate([*text.splitlines(), ""], start=1):
        if line.strip():
            block.append((number, line))
            continue
        if block:
            header_line, header = block[0]
            header = header.strip()
            body = "\n".join(line for _, line in block[1:]).strip()
            if header.endswith(":") and header.count(":") == 1 and re.search(r"[^\W\d_]", header) and body:
                speeches.append(Speech(header[:-1].strip(), body, header_line))
            block = []
    return speeches
