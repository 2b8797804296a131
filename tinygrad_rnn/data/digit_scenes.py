"""Scenes of 2 to 4 handwritten digits, with captions in words and questions about them.

The digits are scikit-learn's 1,797 scanned 8x8 digits (pixels 0..16 scaled
to [0, 1]). They are first split into a training pool and a test pool
(stratified by digit, seeded), and only then composed into scenes, so a
training scene and a test scene never share a scanned digit.

A scene is a ``height`` x ``width`` canvas (default 12 x 40, zeros = blank)
holding ``k`` digits (``k`` uniform in ``min_digits..max_digits``), each a
label drawn uniformly from 0..9 and a scan of that label drawn from the
split's pool. The canvas is cut into ``max_digits`` slots of
``width // max_digits`` columns (10 by default); digit ``j`` (reading left to
right) goes in slot ``j``, at a random column offset inside its slot
(``0..slot - 8``) and a random height (``0..height - 8`` rows from the top),
so the digits never overlap and a scene of fewer digits leaves the slots on
the right blank.

* captions: the digits in words, ``"seven two nine"``; ``tokens`` holds
  ``<start> seven two nine <end>`` padded with ``<pad>`` (id 0) to
  ``max_digits + 2``, over :data:`CAPTION_WORDS`.
* questions (:func:`make_digit_questions`), one type drawn uniformly per
  question from :data:`QUESTION_TYPES`:

  - ``count``: "how many sevens?" -> "zero" .. "four" (the digit asked
    about is in the scene half the time);
  - ``exists``: "is there a seven?" -> "yes" / "no" (half and half);
  - ``first`` / ``last``: "what is the first digit?" -> "seven";
  - ``nth``: "what is the second digit?" (second .. the scene's last);
  - ``after``: "what is after the seven?" (a digit that occurs once in the
    scene and is not its last) -> the digit to its right; a scene without
    such a digit gets a ``first`` question instead;
  - ``total``: "how many digits?" -> "two" .. "four".

  Question words come from :data:`QUESTION_WORDS` (``<pad>`` = 0, the
  question mark dropped) and answers from :data:`ANSWER_WORDS`.

Everything is deterministic for a seed; the test scenes do not depend on how
many training scenes are asked for. Needs scikit-learn (the digits ship with
it, no network).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_fraction, check_int
from .words import WordVocab

__all__ = [
    "DIGIT_WORDS", "CAPTION_WORDS", "QUESTION_WORDS", "ANSWER_WORDS", "QUESTION_TYPES",
    "DigitScenes", "DigitQuestions", "split_digit_pool", "make_digit_scenes", "make_digit_questions",
]

_EXAMPLES_HINT = 'install it with: pip install "tinygrad_rnn[examples]"'
_DIGIT = 8  # side of a scanned digit, in pixels

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_PLURALS = ("zeros", "ones", "twos", "threes", "fours", "fives", "sixes", "sevens", "eights", "nines")
_ORDINALS = ("first", "second", "third", "fourth")
#: the caption vocabulary: ``<pad>`` (id 0), ``<start>``, ``<end>`` and the ten digit words
CAPTION_WORDS = ("<pad>", "<start>", "<end>") + DIGIT_WORDS
#: the question vocabulary (``<pad>`` is id 0)
QUESTION_WORDS = (("<pad>", "how", "many", "is", "there", "a", "an", "what", "the", "last", "digit", "digits",
                   "after") + _ORDINALS + DIGIT_WORDS + _PLURALS)
#: the answers a question can have: a digit's word (also the counts) or yes / no
ANSWER_WORDS = DIGIT_WORDS + ("yes", "no")
QUESTION_TYPES = ("count", "exists", "first", "last", "nth", "after", "total")


@dataclass(frozen=True, eq=False)
class DigitScenes:
    """Composed scenes; see the module docstring. Row ``i`` holds ``lengths[i]`` digits, and the
    per-digit arrays are padded with -1 after them."""

    images: np.ndarray     # (n, height, width) float32 in [0, 1]
    labels: np.ndarray     # (n, max_digits) int64 digits left to right, -1 after the last
    lengths: np.ndarray    # (n,) int64 number of digits
    sources: np.ndarray    # (n, max_digits) int64 rows of sklearn.datasets.load_digits(), -1 padding
    positions: np.ndarray  # (n, max_digits, 2) int64 (row, column) of each digit's top-left pixel, -1 padding
    captions: list         # n strings, e.g. "seven two nine"
    tokens: np.ndarray     # (n, max_digits + 2) int64 <start> words <end> <pad>...
    vocab: WordVocab       # over CAPTION_WORDS

    def __len__(self) -> int:
        return len(self.images)

    @property
    def start_id(self) -> int:
        """The id of ``<start>``, the decoder's first input."""
        return self.vocab.index("<start>")

    @property
    def end_id(self) -> int:
        """The id of ``<end>``, which ends every caption."""
        return self.vocab.index("<end>")

    @property
    def pad_id(self) -> int:
        """The id of ``<pad>`` (0), after the end of a caption."""
        return self.vocab.index("<pad>")

    @property
    def decoder_inputs(self) -> np.ndarray:
        """(n, max_digits + 1): the decoder's inputs under teacher forcing (``<start>`` and the words)."""
        return self.tokens[:, :-1]

    @property
    def targets(self) -> np.ndarray:
        """(n, max_digits + 1): what the decoder must write at each step (the words, ``<end>``, padding)."""
        return self.tokens[:, 1:]

    def subset(self, rows) -> "DigitScenes":
        """The scenes at ``rows`` (a slice, an index array or a bool mask), as a new DigitScenes."""
        index = np.arange(len(self))[rows]
        return DigitScenes(self.images[index], self.labels[index], self.lengths[index], self.sources[index],
                           self.positions[index], [self.captions[i] for i in index], self.tokens[index],
                           self.vocab)


@dataclass(frozen=True, eq=False)
class DigitQuestions:
    """Questions about the scenes of a :class:`DigitScenes`, one per row; see the module docstring."""

    scene: np.ndarray     # (n,) int64 row of the scene the question is about
    questions: list       # n strings, e.g. "how many sevens?"
    tokens: np.ndarray    # (n, max_length) int64 question words, <pad> (0) after the last
    lengths: np.ndarray   # (n,) int64 number of question words
    answers: list         # n strings, e.g. "two"
    answer_ids: np.ndarray  # (n,) int64 ids over ANSWER_WORDS
    types: np.ndarray     # (n,) int64 ids over QUESTION_TYPES
    vocab: WordVocab      # over QUESTION_WORDS
    answer_vocab: WordVocab  # over ANSWER_WORDS

    def __len__(self) -> int:
        return len(self.questions)

    def subset(self, rows) -> "DigitQuestions":
        """The questions at ``rows`` (their ``scene`` rows unchanged), as a new DigitQuestions."""
        index = np.arange(len(self))[rows]
        return DigitQuestions(self.scene[index], [self.questions[i] for i in index], self.tokens[index],
                              self.lengths[index], [self.answers[i] for i in index], self.answer_ids[index],
                              self.types[index], self.vocab, self.answer_vocab)


def _load_digits(func):
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise ImportError(f"{func}: needs the scikit-learn package; {_EXAMPLES_HINT}") from err
    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64)


def split_digit_pool(labels, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split the rows of ``labels`` (the scanned digits' labels) into (train rows, test rows), stratified:
    each digit keeps its share ``test_fraction`` in the test pool (at least one scan, and one left for
    training). Deterministic for ``seed``; both are sorted."""
    func = "split_digit_pool"
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"{func}: labels must be a 1-D array of integer labels, got shape {labels.shape} "
                         f"of {labels.dtype}")
    test_fraction = check_fraction(func, "test_fraction", test_fraction)
    seed = check_int(func, "seed", seed, minimum=0)
    rng = np.random.default_rng((seed, 0))
    train, test = [], []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        if len(rows) < 2:
            raise ValueError(f"{func}: digit {label} has {len(rows)} scan; each needs at least 2 (one per pool)")
        n_test = min(max(1, int(round(len(rows) * test_fraction))), len(rows) - 1)
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _compose(images, labels, pool, n, min_digits, max_digits, height, width, rng):
    """``n`` scenes from the scans at rows ``pool`` of ``images``/``labels``."""
    by_label = [pool[labels[pool] == d] for d in range(10)]
    canvas = np.zeros((n, height, width), dtype=np.float32)
    digit_labels = np.full((n, max_digits), -1, dtype=np.int64)
    sources = np.full((n, max_digits), -1, dtype=np.int64)
    positions = np.full((n, max_digits, 2), -1, dtype=np.int64)
    lengths = rng.integers(min_digits, max_digits + 1, size=n)
    slot = width // max_digits
    for i, k in enumerate(lengths.tolist()):
        drawn = rng.integers(0, 10, size=k)
        columns = rng.integers(0, slot - _DIGIT + 1, size=k)
        rows = rng.integers(0, height - _DIGIT + 1, size=k)
        for j, digit in enumerate(drawn.tolist()):
            source = by_label[digit][rng.integers(len(by_label[digit]))]
            top, left = int(rows[j]), slot * j + int(columns[j])
            canvas[i, top:top + _DIGIT, left:left + _DIGIT] = images[source]
            digit_labels[i, j], sources[i, j], positions[i, j] = digit, source, (top, left)
    return canvas, digit_labels, lengths.astype(np.int64), sources, positions


def _scenes(canvas, labels, lengths, sources, positions, max_digits):
    vocab = WordVocab(CAPTION_WORDS, unk_token=None)
    captions = [" ".join(DIGIT_WORDS[d] for d in row[:k]) for row, k in zip(labels.tolist(), lengths.tolist())]
    tokens = np.zeros((len(canvas), max_digits + 2), dtype=np.int64)
    for i, caption in enumerate(captions):
        words = ["<start>", *caption.split(), "<end>"]
        tokens[i, :len(words)] = vocab.encode(words)
    return DigitScenes(canvas, labels, lengths, sources, positions, captions, tokens, vocab)


def make_digit_scenes(n_train: int = 20000, n_test: int = 3000, min_digits: int = 2, max_digits: int = 4,
                      test_fraction: float = 0.2, seed: int = 0, height: int = 12,
                      width: int = 40) -> tuple[DigitScenes, DigitScenes]:
    """(train, test) scenes of ``min_digits``..``max_digits`` handwritten digits on a ``height`` x ``width``
    canvas, composed from disjoint pools of scanned digits (:func:`split_digit_pool` with
    ``test_fraction``). Deterministic for ``seed``; see the module docstring for the layout."""
    func = "make_digit_scenes"
    n_train = check_int(func, "n_train", n_train, minimum=1)
    n_test = check_int(func, "n_test", n_test, minimum=1)
    min_digits = check_int(func, "min_digits", min_digits, minimum=1)
    max_digits = check_int(func, "max_digits", max_digits, minimum=min_digits)
    test_fraction = check_fraction(func, "test_fraction", test_fraction)
    seed = check_int(func, "seed", seed, minimum=0)
    height = check_int(func, "height", height, minimum=_DIGIT)
    width = check_int(func, "width", width, minimum=_DIGIT)
    if width < _DIGIT * max_digits:
        raise ValueError(f"{func}: a canvas {width} pixels wide cannot hold max_digits={max_digits} digits "
                         f"side by side (a slot of at least {_DIGIT} columns each); expected width >= "
                         f"{_DIGIT * max_digits}")
    images, labels = _load_digits(func)
    train_pool, test_pool = split_digit_pool(labels, test_fraction, seed)
    out = []
    for stream, (pool, n) in enumerate(((train_pool, n_train), (test_pool, n_test)), start=1):
        rng = np.random.default_rng((seed, stream))
        out.append(_scenes(*_compose(images, labels, pool, n, min_digits, max_digits, height, width, rng),
                           max_digits))
    return out[0], out[1]


def _question(kind, digits, rng):
    """(question words, answer word, kind) about a scene holding ``digits`` (a list, left to right)."""
    k = len(digits)
    if kind == "after":
        unique = [j for j in range(k - 1) if digits.count(digits[j]) == 1]
        if not unique:
            kind = "first"
        else:
            j = unique[rng.integers(len(unique))]
            return ["what", "is", "after", "the", DIGIT_WORDS[digits[j]]], DIGIT_WORDS[digits[j + 1]], kind
    if kind in ("count", "exists"):
        present = rng.random() < 0.5
        absent = [d for d in range(10) if d not in digits]
        digit = digits[rng.integers(k)] if present or not absent else absent[rng.integers(len(absent))]
        if kind == "count":
            return ["how", "many", _PLURALS[digit]], DIGIT_WORDS[digits.count(digit)], kind
        article = "an" if DIGIT_WORDS[digit][0] == "e" else "a"
        return ["is", "there", article, DIGIT_WORDS[digit]], ("yes" if digit in digits else "no"), kind
    if kind == "total":
        return ["how", "many", "digits"], DIGIT_WORDS[k], kind
    position = {"first": 0, "last": k - 1}.get(kind)
    if position is None:  # nth: second .. the last digit
        position = int(rng.integers(1, k))
    ordinal = "last" if kind == "last" else _ORDINALS[position]
    return ["what", "is", "the", ordinal, "digit"], DIGIT_WORDS[digits[position]], kind


def make_digit_questions(scenes: DigitScenes, per_scene: int = 1, seed: int = 0) -> DigitQuestions:
    """``per_scene`` questions about every scene of ``scenes`` (scene-major order), each of a type drawn
    uniformly from :data:`QUESTION_TYPES`, with its answer. Deterministic for ``seed``."""
    func = "make_digit_questions"
    if not isinstance(scenes, DigitScenes):
        raise TypeError(f"{func}: scenes must be a DigitScenes (from make_digit_scenes), got {type(scenes).__name__}")
    per_scene = check_int(func, "per_scene", per_scene, minimum=1)
    seed = check_int(func, "seed", seed, minimum=0)
    if scenes.labels.shape[1] > len(_ORDINALS):
        raise ValueError(f"{func}: the questions name positions up to the {_ORDINALS[-1]}, got scenes of up to "
                         f"{scenes.labels.shape[1]} digits")
    rng = np.random.default_rng((seed, 3))
    vocab, answer_vocab = WordVocab(QUESTION_WORDS, unk_token=None), WordVocab(ANSWER_WORDS, unk_token=None)
    scene_rows, words, answers, kinds = [], [], [], []
    for i, (row, k) in enumerate(zip(scenes.labels.tolist(), scenes.lengths.tolist())):
        for _ in range(per_scene):
            question, answer, kind = _question(QUESTION_TYPES[rng.integers(len(QUESTION_TYPES))], row[:k], rng)
            scene_rows.append(i)
            words.append(question)
            answers.append(answer)
            kinds.append(QUESTION_TYPES.index(kind))
    lengths = np.array([len(w) for w in words], dtype=np.int64)
    tokens = np.zeros((len(words), int(lengths.max())), dtype=np.int64)
    for i, question in enumerate(words):
        tokens[i, :len(question)] = vocab.encode(question)
    return DigitQuestions(np.array(scene_rows, dtype=np.int64), [" ".join(w) + "?" for w in words], tokens, lengths,
                          answers, answer_vocab.encode(answers), np.array(kinds, dtype=np.int64), vocab,
                          answer_vocab)
