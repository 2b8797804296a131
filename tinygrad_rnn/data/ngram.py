"""Count-based language models: character and word n-grams, the baseline of the recurrent models.

::

    lm = NGramLM(3, level="char", k=0.01, interpolation="em").fit(train_text)
    lm.nats_per_char(val_text)              # held-out cross-entropy in nats per character
    lm.score("ROMEO:")                      # Score(log_prob=..., nats_per_char=..., chars=6)
    lm.generate(200, rng=0, prime="ROMEO:")

**Tokens.** ``level="char"``: every character. ``level="word"``: :func:`word_tokens`, pieces that
concatenate back to the text exactly (a word or one punctuation mark, each with the single space
before it, and every other whitespace character on its own), so a word model accounts for every
character too. Tokens seen fewer than ``min_count`` times in the training text become ``<unk>``.

**Estimates.** ``c(h, w)`` counts the token ``w`` after the context ``h`` (the ``m - 1`` tokens
before it) in the training text, ``c(h) = sum_w c(h, w)``, ``V`` is the vocabulary size. The
order-``m`` add-k estimate is ``P_m(w | h) = (c(h, w) + k) / (c(h) + k V)`` (``k = 0``: maximum
likelihood); a context never seen in training (``c(h) = 0``) gets the uniform ``1 / V``, the value
add-k gives it for any ``k > 0``. ``interpolation=None`` uses ``P_n`` alone; otherwise
``P = sum_m lambda_m P_m``, with the weights given (one per order 1..n, summing to 1) or, for
``interpolation="em"``, fitted by expectation-maximisation: the counts are taken from the first
``1 - heldout_fraction`` of the training tokens, the weights maximise the likelihood of the rest,
then the counts are taken again from all of it. Every context's distribution sums to 1.

**Streams.** A text is scored as a stream, as the character RNNs read it: no end-of-text symbol
is predicted, and its first ``i < n - 1`` tokens, which have only ``i`` tokens before them, are
predicted by the order-``i + 1`` estimate (interpolated: with the weights of orders ``1..i+1``,
renormalised). :meth:`NGramLM.nats_per_char` divides the total log-probability (nats) by the number
of characters, for both levels, so word and character models are on one scale.

**Unknown words.** A word model predicts a token outside its vocabulary as ``<unk>`` followed by
its spelling: ``log P(w | h) = log P(<unk> | h) + log S(w)``, where ``S`` is an add-one character
bigram model with start and end symbols, fitted on the spellings of the training tokens that
became ``<unk>``, over the characters of the training text and of ``fit(..., chars=)``. ``S``
also gives some probability to spellings of known tokens, and the token model to token sequences
:func:`word_tokens` never makes (``" "`` then ``"be"`` for ``" be"``); neither is ever scored, so a
word model's probabilities of all texts sum to a little less than 1: its cross-entropy is an upper
bound, never flattered. A character outside the characters the model knows is an error.
"""
from __future__ import annotations

import math
import numbers
import re
from collections import Counter
from typing import NamedTuple

import numpy as np

from ..checks import check_fraction, check_int

__all__ = ["NGramLM", "Score", "word_tokens", "UNK"]

#: a word (apostrophes inside kept) or one punctuation mark, either with the one space before it;
#: else one whitespace character
_TOKEN = re.compile(r" ?\w+(?:'\w+)*| ?[^\w\s]|\s")
#: the word models' token for everything outside their vocabulary (never a token of a text)
UNK = "<unk>"
_EM_ITERATIONS, _EM_TOLERANCE = 1000, 1e-8


def word_tokens(text: str) -> list[str]:
    """The word-level tokens of ``text``; ``"".join(word_tokens(text)) == text``.

    ``"To be, or not"`` -> ``["To", " be", ",", " or", " not"]``: a word (``\\w+`` runs, with
    inner apostrophes) or one punctuation mark, each with the single space before it, else one
    whitespace character (a newline, or a second space). Unlike :func:`tokenize` (word2vec's words:
    lower-cased, punctuation and white space dropped), nothing is lost, so a model of these tokens
    models the whole text.
    """
    if not isinstance(text, str):
        raise ValueError(f"word_tokens: text must be a str, got {type(text).__name__}")
    return _TOKEN.findall(text)


class Score(NamedTuple):
    """What :meth:`NGramLM.score` returns: the total log-probability (nats, <= 0), the
    cross-entropy per character (``-log_prob / chars``) and the number of characters."""
    log_prob: float
    nats_per_char: float
    chars: int


class _Table:
    """The m-gram counts of one order: sorted int64 codes (``sum_j id_j V^(m-1-j)``) with their
    counts, and the counts of their contexts (code // V) as contexts."""

    def __init__(self, codes: np.ndarray, vocab_size: int, order: int):
        self.codes, self.counts = np.unique(codes, return_counts=True)
        if order == 1:
            self.ctx_codes = np.zeros(1, np.int64)
            self.ctx_counts = np.array([len(codes)], np.int64)
            self.dense = np.bincount(codes, minlength=vocab_size)
        else:
            self.ctx_codes, first = np.unique(self.codes // vocab_size, return_index=True)
            self.ctx_counts = np.add.reduceat(self.counts, first) if len(first) else np.zeros(0, np.int64)

    @staticmethod
    def lookup(keys, table_keys, table_counts) -> np.ndarray:
        if len(table_keys) == 0:
            return np.zeros(len(keys), np.int64)
        pos = np.minimum(np.searchsorted(table_keys, keys), len(table_keys) - 1)
        return np.where(table_keys[pos] == keys, table_counts[pos], 0)

    def following(self, context_code: int, vocab_size: int) -> np.ndarray:
        """c(h, w) for every w, as a dense array, for the context with code ``context_code``."""
        lo, hi = np.searchsorted(self.codes, [context_code * vocab_size, (context_code + 1) * vocab_size])
        dense = np.zeros(vocab_size, np.int64)
        dense[self.codes[lo:hi] % vocab_size] = self.counts[lo:hi]
        return dense


def _codes(ids: np.ndarray, m: int, vocab_size: int) -> np.ndarray:
    """The code of every m-gram of ``ids`` (the one ending at position i is entry i - m + 1)."""
    n = len(ids) - m + 1
    if n <= 0:
        return np.zeros(0, np.int64)
    code = np.zeros(n, np.int64)
    for j in range(m):
        code = code * vocab_size + ids[j:j + n]
    return code


class _Speller:
    """Add-one character bigram model of spellings, with start and end symbols (word models' <unk>)."""

    def __init__(self, chars: list[str], words):
        self.chars = chars
        self.index = {ch: i for i, ch in enumerate(chars)}
        c = len(chars)  # rows: the chars, then start; columns: the chars, then end
        # the words one after the other, each preceded by c: every c is the end of one word and the start of the next
        ids = np.array([i for word in words for i in (c, *(self.index[ch] for ch in word))] + [c], np.int64)
        pairs = ids[:-1] * (c + 1) + ids[1:]
        counts = 1.0 + np.bincount(pairs, minlength=(c + 1) ** 2).reshape(c + 1, c + 1)
        self.log_p = np.log(counts / counts.sum(axis=1, keepdims=True))
        self.cum = np.cumsum(counts / counts.sum(axis=1, keepdims=True), axis=1)

    def log_prob(self, word: str) -> float:
        c = len(self.chars)
        ids = [c] + [self.index[ch] for ch in word] + [c]
        return float(self.log_p[ids[:-1], ids[1:]].sum())

    def sample(self, rng, limit: int) -> str:
        out, prev, c = [], len(self.chars), len(self.chars)
        while len(out) < limit:
            prev = min(int(np.searchsorted(self.cum[prev], rng.random() * self.cum[prev, -1], side="right")), c)
            if prev == c:
                break
            out.append(self.chars[prev])
        return "".join(out)


class NGramLM:
    """A character or word n-gram language model with add-k smoothing and interpolation of orders.

    ``order`` n >= 1 (2: bigram, 3: trigram); ``level`` ``"char"`` or ``"word"``; ``k`` >= 0 the
    add-k pseudo-count (0: maximum likelihood); ``interpolation`` None (the order-n estimate
    alone), ``"em"`` (weights fitted on the last ``heldout_fraction`` of the training text) or n
    weights for orders 1..n summing to 1; ``min_count``: word models' vocabulary is the tokens
    seen at least this often. See the module docstring for the estimates. After :meth:`fit`,
    ``vocab`` lists the tokens (word models: ``<unk>`` first) and ``weights`` the interpolation
    weights (None without interpolation).
    """

    def __init__(self, order: int = 3, level: str = "char", k: float = 1.0, interpolation=None,
                 min_count: int = 2, heldout_fraction: float = 0.1):
        self.order = check_int("NGramLM", "order", order, minimum=1)
        if level not in ("char", "word"):
            raise ValueError(f"NGramLM: level must be 'char' or 'word', got {level!r}")
        self.level = level
        if isinstance(k, bool) or not isinstance(k, numbers.Real) or not math.isfinite(k) or k < 0:
            raise ValueError(f"NGramLM: k must be a finite number >= 0, got {k!r}")
        self.k = float(k)
        self.interpolation = interpolation
        self.weights = self._check_weights(interpolation)
        self.min_count = check_int("NGramLM", "min_count", min_count, minimum=1)
        self.heldout_fraction = check_fraction("NGramLM", "heldout_fraction", heldout_fraction)
        self.vocab: list[str] | None = None
        self.chars: list[str] | None = None

    def _check_weights(self, interpolation):
        if interpolation is None or (isinstance(interpolation, str) and interpolation == "em"):
            return None
        if isinstance(interpolation, str):
            raise ValueError(f"NGramLM: interpolation must be None, 'em' or {self.order} weights, got {interpolation!r}")
        try:
            weights = np.array(interpolation, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"NGramLM: interpolation must be None, 'em' or {self.order} weights, "
                             f"got {interpolation!r}") from None
        if weights.shape != (self.order,):
            raise ValueError(f"NGramLM: interpolation needs one weight per order 1..{self.order} ({self.order} "
                             f"numbers), got {interpolation!r}")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(f"NGramLM: interpolation weights must be finite and >= 0, got {interpolation!r}")
        if abs(weights.sum() - 1.0) > 1e-6:
            raise ValueError(f"NGramLM: interpolation weights must sum to 1, got {interpolation!r} "
                             f"(sum {weights.sum():.6g})")
        return weights

    def __repr__(self) -> str:
        return (f"NGramLM(order={self.order}, level={self.level!r}, k={self.k:g}, "
                f"interpolation={self.interpolation!r})")

    @property
    def vocab_size(self) -> int:
        """V, the number of tokens the model predicts (word models: ``<unk>`` included)."""
        return len(self._fitted("vocab_size").vocab)

    # ------------------------------------------------------------------------------------ fitting
    def fit(self, text: str, chars=None) -> "NGramLM":
        """Count the n-grams of ``text`` (and fit the interpolation weights with ``"em"``); returns self.

        ``chars`` (a str or characters) adds characters the text may lack to those the model
        knows, e.g. the character vocabulary of the whole corpus, as the character RNNs have.
        """
        text = self._check_text("fit", text)
        known = set(text)
        if chars is not None:
            if isinstance(chars, str):
                chars = list(chars)
            bad = [ch for ch in chars if not isinstance(ch, str) or len(ch) != 1]
            if bad:
                raise ValueError(f"NGramLM.fit: chars must be single characters, got {bad[0]!r}")
            known |= set(chars)
        if self.level == "char":
            vocab, tokens = sorted(known), text
        else:
            tokens = word_tokens(text)
            counts = Counter(tokens)
            vocab = [UNK] + sorted(t for t, c in counts.items() if c >= self.min_count)
        if len(vocab) ** self.order >= 2 ** 63:
            raise ValueError(f"NGramLM.fit: a {self.level} {self.order}-gram over {len(vocab):,} tokens is too "
                             f"many to count with int64 codes; use a lower order or a higher min_count")
        self.vocab, self.chars = None, sorted(known)  # unfitted until the counts are in
        self._index = {t: i for i, t in enumerate(vocab)}
        self._points = np.array([ord(ch) for ch in self.chars], dtype=np.uint32)
        if self.level == "word":
            self._speller = _Speller(self.chars, [t for t in tokens if counts[t] < self.min_count])
        ids = self._ids(tokens)
        if isinstance(self.interpolation, str):  # "em"
            self.weights = self._fit_weights(ids, len(vocab))
        self._tables = self._count(ids, len(vocab))
        self.vocab = vocab
        return self

    def _count(self, ids: np.ndarray, vocab_size: int) -> list[_Table]:
        return [_Table(_codes(ids, m, vocab_size), vocab_size, m) for m in range(1, self.order + 1)]

    def _fit_weights(self, ids: np.ndarray, vocab_size: int) -> np.ndarray:
        """EM for the weights: counts from the first part of ``ids``, likelihood of the rest."""
        n = self.order
        cut = int(round(len(ids) * (1 - self.heldout_fraction)))
        if cut < max(n - 1, 1) or cut >= len(ids):
            raise ValueError(f"NGramLM.fit: interpolation='em' needs a training text of more {self.level}s "
                             f"(got {len(ids)} tokens) to hold out {self.heldout_fraction:g} of them")
        self._tables = self._count(ids[:cut], vocab_size)
        probs = self._component_probs(ids[cut - (n - 1):], vocab_size)[n - 1:]  # every held-out token with full context
        probs = probs[probs.sum(axis=1) > 0]  # a token no order can predict does not depend on the weights
        weights = np.full(n, 1.0 / n)
        if len(probs) == 0:
            return weights
        for _ in range(_EM_ITERATIONS):
            joint = probs * weights
            updated = (joint / joint.sum(axis=1, keepdims=True)).mean(axis=0)
            done = np.max(np.abs(updated - weights)) < _EM_TOLERANCE
            weights = updated
            if done:
                break
        return weights

    # ----------------------------------------------------------------------------------- scoring
    def _addk(self, c, ch, vocab_size: int):
        with np.errstate(divide="ignore", invalid="ignore"):
            p = (c + self.k) / (ch + self.k * vocab_size)
        return np.where(ch > 0, p, 1.0 / vocab_size)

    def _component_probs(self, ids: np.ndarray, vocab_size: int) -> np.ndarray:
        """P_m(ids[i] | the m - 1 tokens before it) as an (N, n) array; NaN where i < m - 1."""
        probs = np.full((len(ids), self.order), np.nan)
        for m, table in enumerate(self._tables, start=1):
            if len(ids) < m:
                break
            codes = _codes(ids, m, vocab_size)
            c = table.lookup(codes, table.codes, table.counts)
            ch = table.lookup(codes // vocab_size if m > 1 else np.zeros_like(codes), table.ctx_codes,
                              table.ctx_counts)
            probs[m - 1:, m - 1] = self._addk(c, ch, vocab_size)
        return probs

    def _mix_weights(self, available: int) -> np.ndarray:
        """The weights of orders 1..n for a token with ``available - 1`` tokens of context."""
        weights = np.zeros(self.order)
        top = min(available, self.order)
        if self.weights is not None and self.weights[:top].sum() > 0:
            weights[:top] = self.weights[:top] / self.weights[:top].sum()
        else:  # no interpolation, or no weight on the orders this short context allows: its highest order
            weights[top - 1] = 1.0
        return weights

    def _mix(self, probs: np.ndarray) -> np.ndarray:
        """Each row of component probabilities (NaN: order unavailable) mixed into one probability."""
        weights = np.tile(self._mix_weights(self.order), (len(probs), 1))
        for i in range(min(len(probs), self.order - 1)):
            weights[i] = self._mix_weights(i + 1)
        return np.nansum(probs * weights, axis=1)

    def _tokens(self, what: str, text) -> list[str]:
        """``text`` (a str, or word tokens) as tokens, every character known to the model."""
        if isinstance(text, str):
            tokens = list(text) if self.level == "char" else word_tokens(text)
        elif isinstance(text, (list, tuple)) and all(isinstance(t, str) and t for t in text):
            tokens = list(text)
            if self.level == "char" and any(len(t) != 1 for t in tokens):
                raise ValueError(f"NGramLM.{what}: a character model's tokens are single characters, got {text!r:.80}")
        else:
            raise ValueError(f"NGramLM.{what}: expected a str, got {type(text).__name__}")
        unknown = sorted((set(text) if isinstance(text, str) else {ch for t in tokens for ch in t}) - set(self.chars))
        if unknown:
            raise ValueError(f"NGramLM.{what}: the text has characters the model does not know: "
                             f"{''.join(unknown)[:40]!r} (fit(text, chars=...) can add them)")
        return tokens

    def _context_ids(self, what: str, context) -> np.ndarray:
        """The ids of the last n - 1 tokens of ``context``."""
        tokens = self._tokens(what, context)
        return self._ids(tokens[len(tokens) - min(len(tokens), self.order - 1):])

    def _ids(self, tokens) -> np.ndarray:
        """Token ids (a word outside the vocabulary: <unk>'s, 0); ``tokens`` a list, or a str of characters."""
        if self.level == "char" and isinstance(tokens, str):  # fast path: code points, looked up in the sorted vocab
            points = np.frombuffer(tokens.encode("utf-32-le"), dtype=np.uint32)
            return np.searchsorted(self._points, points).astype(np.int64)
        return np.array([self._index.get(t, 0) for t in tokens], dtype=np.int64)

    def _log_prob_total(self, what: str, text: str) -> float:
        tokens = self._tokens(what, text)
        ids = self._ids(text if self.level == "char" else tokens)
        with np.errstate(divide="ignore"):
            total = float(np.log(self._mix(self._component_probs(ids, len(self.vocab)))).sum())
        if self.level == "word":
            total += sum(self._speller.log_prob(t) for t in tokens if t not in self._index)
        return total

    def nats_per_char(self, text: str) -> float:
        """Cross-entropy of ``text`` in nats per character: its total log-probability (a stream, see
        the module docstring) over its number of characters, for char and word models alike."""
        self._fitted("nats_per_char")
        text = self._check_text("nats_per_char", text)
        return -self._log_prob_total("nats_per_char", text) / len(text)

    def score(self, sentence: str) -> Score:
        """The total log-probability of ``sentence`` (read as the start of a text) and its nats per character."""
        self._fitted("score")
        sentence = self._check_text("score", sentence)
        total = self._log_prob_total("score", sentence)
        return Score(total, -total / len(sentence), len(sentence))

    def next_probs(self, context="") -> np.ndarray:
        """The distribution of the next token after ``context`` (a str, or word tokens): a (V,) array
        over ``vocab`` that sums to 1; only the last n - 1 tokens of the context matter."""
        self._fitted("next_probs")
        ids = self._context_ids("next_probs", context)
        vocab_size = len(self.vocab)
        probs = np.zeros((self.order, vocab_size))
        for m, table in enumerate(self._tables[:len(ids) + 1], start=1):
            if m == 1:
                c = table.dense
            else:
                h = int(_codes(ids[len(ids) - m + 1:], m - 1, vocab_size)[0])
                c = table.following(h, vocab_size)
            probs[m - 1] = self._addk(c, np.full(vocab_size, c.sum()), vocab_size)
        return self._mix_weights(len(ids) + 1) @ probs

    def log_prob(self, next: str, context="") -> float:
        """log P(``next`` | ``context``) in nats: ``next`` one character (char models) or one word token
        (word models; outside the vocabulary: log P(<unk> | context) + its spelling's log-probability)."""
        self._fitted("log_prob")
        if not isinstance(next, str) or (len(next) != 1 if self.level == "char" else word_tokens(next) != [next]):
            raise ValueError(f"NGramLM.log_prob: next must be one {'character' if self.level == 'char' else 'token'}"
                             f"{'' if self.level == 'char' else ' as word_tokens cuts them'}, got {next!r}")
        token = self._tokens("log_prob", [next] if self.level == "word" else next)[0]
        with np.errstate(divide="ignore"):
            value = float(np.log(self.next_probs(context)[self._index.get(token, 0)]))
        if self.level == "word" and token not in self._index:
            value += self._speller.log_prob(token)
        return value

    # -------------------------------------------------------------------------------- generation
    def generate(self, n: int, rng=None, prime: str = "") -> str:
        """``prime`` followed by ``n`` sampled characters; ``rng`` an int seed or a NumPy Generator (the
        same seed gives the same text). Word models spell a sampled ``<unk>`` with their speller."""
        self._fitted("generate")
        n = check_int("NGramLM.generate", "n", n, minimum=0)
        if not isinstance(prime, str):
            raise ValueError(f"NGramLM.generate: prime must be a str, got {type(prime).__name__}")
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        context = self._tokens("generate", prime)
        context = context[len(context) - min(len(context), self.order - 1):]
        out, length = [], 0
        while length < n:
            cum = np.cumsum(self.next_probs(context))
            token = self.vocab[min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), len(cum) - 1)]
            if self.level == "word" and token == UNK:
                token = self._speller.sample(rng, n - length) or UNK
                if token == UNK:
                    continue  # an empty spelling: draw again
            out.append(token)
            length += len(token)
            if self.order > 1:
                context = (context + [token])[-(self.order - 1):]
        return prime + "".join(out)[:n]

    # ------------------------------------------------------------------------------------ checks
    def _fitted(self, what: str) -> "NGramLM":
        if self.vocab is None:
            raise RuntimeError(f"NGramLM.{what}: the model is not fitted yet; call fit(text) first")
        return self

    @staticmethod
    def _check_text(what: str, text) -> str:
        if not isinstance(text, str):
            raise ValueError(f"NGramLM.{what}: text must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError(f"NGramLM.{what}: text must not be empty")
        return text
