"""What the character-model examples (min-char-rnn, char-lstm) share: the corpus and sampling.

* :func:`add_corpus_flags` / :func:`load_corpus` -- ``--corpus {shakespeare,stdlib}`` (default
  shakespeare: the lectures' tinyshakespeare, shipped with the package) or ``--data PATH``.
* :func:`add_sampling_flags` / :func:`sample_next` -- ``--temperature`` and ``--top-k``: the next
  character is drawn from ``softmax(logits / temperature)`` restricted to the ``top_k`` most
  probable characters (renormalised); ``top_k=1`` is greedy decoding.

Both examples split the encoded corpus with ``tr.data.split_text(ids, val_fraction=0.1)`` (the last
10 %), so their held-out losses compare with each other and with an n-gram model's on that split.
"""
from __future__ import annotations

import numbers

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import examples_support as support
from tinygrad_rnn.checks import check_int
from tinygrad_rnn.data import load_text, load_tinyshakespeare, stdlib_corpus

__all__ = ["CORPORA", "STDLIB_CHARS", "add_corpus_flags", "load_corpus", "add_sampling_flags",
           "next_char_probs", "sample_next"]

#: the named corpora of ``--corpus``; the first is the default
CORPORA = ("shakespeare", "stdlib")
#: characters of Python standard-library source in ``--corpus stdlib``
STDLIB_CHARS = 1_000_000


def add_corpus_flags(parser) -> None:
    """Add ``--corpus NAME`` and ``--data PATH`` to an example's parser; giving both is a one-line error."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--corpus", choices=CORPORA, default=None,
                       help="the text to train on: shakespeare (default; tinyshakespeare, 1,115,394 characters, "
                            "shipped with the package) or stdlib (1,000,000 characters of Python standard-library "
                            "source); not with --data")
    group.add_argument("--data", type=support.text_file, default=None,
                       help="train on this UTF-8 text file instead of a named --corpus (not with --corpus)")


def load_corpus(args) -> tuple[str, str]:
    """``(text, name)`` chosen by ``--data`` or ``--corpus``: the whole corpus (``--quick`` shortens
    the training part, not the corpus, so the held-out split is the full run's)."""
    if args.data is not None:
        return load_text(args.data), str(args.data)
    if (args.corpus or CORPORA[0]) == "shakespeare":
        return load_tinyshakespeare(), "shakespeare"
    return stdlib_corpus(STDLIB_CHARS), "stdlib"


def add_sampling_flags(group, temperature: float) -> None:
    """Add ``--temperature`` (default ``temperature``) and ``--top-k`` to an argument group."""
    group.add_argument("--temperature", type=float, default=temperature,
                       help=f"divide the logits by this before sampling: <1 safer, >1 wilder (default {temperature:g})")
    group.add_argument("--top-k", type=support.positive_int, default=None, metavar="K",
                       help="sample only among the K most probable characters, renormalised (1: always the most "
                            "probable; default: all characters)")


def next_char_probs(logits, temperature: float = 1.0, top_k: int | None = None) -> np.ndarray:
    """The sampling distribution (float64, sums to 1) of one step's logits (a 1-D Tensor or array):
    ``softmax(logits / temperature)`` with every character outside the ``top_k`` largest logits set
    to 0 and the rest renormalised (``None``, or a K of at least the vocabulary size, keeps them all).
    Ties at the K-th place keep the lower ids, so exactly ``top_k`` characters remain."""
    if isinstance(logits, tr.Tensor):
        logits = logits.detach().numpy()
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 1 or z.size == 0:
        raise ValueError(f"next_char_probs: logits must be a non-empty 1-D vector, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("next_char_probs: logits must be finite, got NaN or infinity")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not temperature > 0:
        raise ValueError(f"next_char_probs: temperature must be a number > 0, got {temperature!r}")
    z = z / temperature
    if top_k is not None:
        top_k = check_int("next_char_probs", "top_k", top_k, minimum=1)
        if top_k < z.size:
            dropped = np.argsort(-z, kind="stable")[top_k:]
            z[dropped] = -np.inf
    p = np.exp(z - z.max())
    return p / p.sum()


def sample_next(logits, rng: np.random.Generator, temperature: float = 1.0, top_k: int | None = None) -> int:
    """Draw the next character's id from :func:`next_char_probs` with the NumPy Generator ``rng``."""
    p = next_char_probs(logits, temperature, top_k)
    return int(rng.choice(p.size, p=p))
