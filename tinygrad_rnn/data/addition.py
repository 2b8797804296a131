"""Sequence-to-sequence addition: learn to map "535+61" to "596" character by character.

Format, for ``max_digits = D``:

* question: ``f"{a}+{b}"`` left-aligned and padded with spaces to width
  ``2*D + 1``, e.g. ``"535+61 "`` for D = 3. With ``reverse_input=True`` the
  encoder input ``x`` holds the padded question reversed (``" 16+535"``), which
  puts the low digits, whose sum comes first, close to the decoder; the
  ``questions`` strings stay readable (not reversed).
* answer: ``str(a + b)`` left-aligned and padded with spaces to width
  ``D + 1``, e.g. ``"596 "``.
* vocabulary: the characters ``" +0123456789_"``; ``"_"`` (``START_TOKEN``) is
  the decoder's start token and a space is the padding (id 0).
* ``x`` (n, 2*D+1): encoded (possibly reversed) questions, the encoder input.
* ``y`` (n, D+1): encoded answers, the decoder targets.
* ``decoder_inputs`` (n, D+1): ``START_TOKEN`` followed by the answer shifted
  right by one, the decoder input for teacher forcing (``y`` shifted).

Operands are drawn by first picking a digit count uniformly in 1..D and then a
number with that many digits, so short and long numbers are equally common.
Every example has a different *unordered* pair {a, b}: no pair repeats and
``b+a`` never appears next to ``a+b``, so any split of the rows (see
:func:`split_addition_data`) has no sum shared between train and test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..checks import check_fraction, check_int
from .vocab import CharVocab

__all__ = ["START_TOKEN", "ADDITION_CHARS", "AdditionData", "make_addition_data",
           "split_addition_data"]

START_TOKEN = "_"
ADDITION_CHARS = "0123456789+ " + START_TOKEN

# Keeps a + b inside int64.
_MAX_DIGITS_LIMIT = 18


# eq=False: comparing NumPy array fields with == has no single truth value.
@dataclass(frozen=True, eq=False)
class AdditionData:
    """An addition data set; see the module docstring for the exact format."""

    questions: list[str]        # n padded questions, e.g. "535+61 "
    answers: list[str]          # n padded answers, e.g. "596 "
    vocab: CharVocab            # over ADDITION_CHARS
    x: np.ndarray               # (n, 2*max_digits+1) int64 encoder input
    y: np.ndarray               # (n, max_digits+1) int64 decoder target
    decoder_inputs: np.ndarray  # (n, max_digits+1) int64, START_TOKEN + y[:, :-1]
    a: np.ndarray               # (n,) int64 first operands
    b: np.ndarray               # (n,) int64 second operands
    max_digits: int
    reverse_input: bool

    def __len__(self) -> int:
        return len(self.questions)

    @property
    def start_id(self) -> int:
        """Id of START_TOKEN in ``vocab``."""
        return int(self.vocab.encode(START_TOKEN)[0])

    def subset(self, rows) -> "AdditionData":
        """The examples at ``rows`` (a slice or index array), as a new AdditionData."""
        index = np.arange(len(self))[rows]
        return AdditionData(
            questions=[self.questions[i] for i in index],
            answers=[self.answers[i] for i in index],
            vocab=self.vocab, x=self.x[index], y=self.y[index],
            decoder_inputs=self.decoder_inputs[index], a=self.a[index], b=self.b[index],
            max_digits=self.max_digits, reverse_input=self.reverse_input)


def _draw_operands(rng: np.random.Generator, count: int, max_digits: int) -> np.ndarray:
    """``count`` non-negative ints, digit count uniform in 1..max_digits."""
    digits = rng.integers(1, max_digits + 1, size=count)
    low = np.where(digits == 1, 0, 10 ** (digits - 1))
    high = 10 ** digits  # exclusive
    return rng.integers(low, high)


def make_addition_data(n: int, max_digits: int = 3, seed: int = 0,
                       reverse_input: bool = False) -> AdditionData:
    """``n`` addition problems with distinct unordered operand pairs, deterministic by seed.

    See the module docstring for the string and array format.
    """
    func = "make_addition_data"
    n = check_int(func, "n", n, minimum=1)
    max_digits = check_int(func, "max_digits", max_digits, minimum=1, maximum=_MAX_DIGITS_LIMIT)
    seed = check_int(func, "seed", seed, minimum=0)
    if not isinstance(reverse_input, bool):
        raise ValueError(f"{func}: reverse_input must be a bool, got {reverse_input!r}")
    n_values = 10 ** max_digits
    n_unordered_pairs = n_values * (n_values + 1) // 2
    # Rejection sampling gets slow near exhaustion; half the pairs is plenty.
    if n > n_unordered_pairs // 2:
        raise ValueError(f"{func}: n must be <= {n_unordered_pairs // 2} (half the distinct "
                         f"pairs for max_digits={max_digits}), got {n}")

    rng = np.random.default_rng(seed)
    seen: set[tuple[int, int]] = set()
    pairs: list[tuple[int, int]] = []
    for _ in range(1000):
        wanted = n - len(pairs)
        if wanted == 0:
            break
        draw = 2 * wanted + 16
        for a, b in zip(_draw_operands(rng, draw, max_digits).tolist(),
                        _draw_operands(rng, draw, max_digits).tolist()):
            key = (a, b) if a <= b else (b, a)
            if key not in seen:
                seen.add(key)
                pairs.append((a, b))
                if len(pairs) == n:
                    break
    if len(pairs) < n:
        raise ValueError(f"{func}: could not draw n={n} distinct pairs with "
                         f"max_digits={max_digits}; use a smaller n or more digits")

    in_len, out_len = 2 * max_digits + 1, max_digits + 1
    questions = [f"{a}+{b}".ljust(in_len) for a, b in pairs]
    answers = [str(a + b).ljust(out_len) for a, b in pairs]
    vocab = CharVocab.from_text(ADDITION_CHARS)
    encoder_text = [q[::-1] for q in questions] if reverse_input else questions
    x = vocab.encode("".join(encoder_text)).reshape(n, in_len)
    y = vocab.encode("".join(answers)).reshape(n, out_len)
    decoder_inputs = np.empty_like(y)
    decoder_inputs[:, 0] = vocab.encode(START_TOKEN)[0]
    decoder_inputs[:, 1:] = y[:, :-1]
    operands = np.array(pairs, dtype=np.int64).reshape(n, 2)
    return AdditionData(questions=questions, answers=answers, vocab=vocab, x=x, y=y,
                        decoder_inputs=decoder_inputs, a=operands[:, 0].copy(),
                        b=operands[:, 1].copy(), max_digits=max_digits,
                        reverse_input=reverse_input)


def split_addition_data(data: AdditionData,
                        test_fraction: float = 0.1) -> tuple[AdditionData, AdditionData]:
    """Split into (train, test) with no operand pair shared between them.

    The rows of :func:`make_addition_data` already have distinct unordered
    pairs in random order, so the last ``test_fraction`` of them is a held-out
    set of sums the model never saw during training.
    """
    if not isinstance(data, AdditionData):
        raise ValueError(f"split_addition_data: data must be an AdditionData, "
                         f"got {type(data).__name__}")
    test_fraction = check_fraction("split_addition_data", "test_fraction", test_fraction)
    if len(data) < 2:
        raise ValueError(f"split_addition_data: data must have at least 2 examples, "
                         f"got {len(data)}")
    n_test = min(max(1, int(round(len(data) * test_fraction))), len(data) - 1)
    n_train = len(data) - n_test
    return data.subset(slice(0, n_train)), data.subset(slice(n_train, None))
