"""Interpretable cells of a character model (char-lstm's ``cells.html``): features of each character,
the recurrent state after reading it, and the unit that correlates best with each feature.

Features, one number per character of a text, each what the model *can* know once it has read
that character:

* ``inside quotes`` (:func:`inside_quotes`): 1 from an opening quote up to, not including, its
  closing quote, else 0. Prose (``python=False``): only ``"`` counts (``'`` is an apostrophe
  there: "'tis", "o'er") and every ``"`` toggles. Python source (``python=True``): ``"`` and ``'``,
  triple quotes open a string closed only by the same triple, a backslash escapes the next
  character in a string, a one-line string ends at the end of its line, and a ``#`` comment
  outside strings runs to the end of the line with its quotes ignored.
* ``position in line`` (:func:`line_position`): the column of the character, 0 for the first of
  a line (a newline is the last character of its line).
* ``indentation`` (:func:`indentation`): the leading spaces of the character's line read so far
  (a tab counts as one space).

:func:`recurrent_states` runs an embedding and a recurrent layer over ids one step at a time and
keeps the last layer's LSTM cell state ``c_t`` (or ``h_t`` for a GRU/RNN, which have no ``c``);
:func:`best_units` picks, per feature, the unit with the largest absolute Pearson correlation.
"""
from __future__ import annotations

import numpy as np

import tinygrad_rnn as tr

__all__ = ["FEATURES", "inside_quotes", "line_position", "indentation", "features", "correlations",
           "best_units", "recurrent_states"]

#: the features, in the order cells.html shows them
FEATURES = ("inside quotes", "position in line", "indentation")


def inside_quotes(text: str, python: bool = False) -> np.ndarray:
    """1 for every character inside a quoted string (the opening quote included, the closing one
    not), else 0; ``python=True`` reads Python's string and comment syntax (see the module doc)."""
    out = np.zeros(len(text), dtype=np.int64)
    i, n = 0, len(text)
    delimiter = None  # the open string's closing quote(s)
    while i < n:
        ch = text[i]
        if delimiter is None:
            if python and ch == "#":
                while i < n and text[i] != "\n":
                    i += 1
                continue
            if ch == '"' or (python and ch == "'"):
                delimiter = ch * 3 if python and text.startswith(ch * 3, i) else ch
                out[i:i + len(delimiter)] = 1
                i += len(delimiter)
                continue
            i += 1
            continue
        if python and ch == "\\":
            out[i:i + 2] = 1
            i += 2
            continue
        if text.startswith(delimiter, i):
            delimiter, i = None, i + len(delimiter)
            continue
        if python and ch == "\n" and len(delimiter) == 1:  # an unterminated one-line string ends here
            delimiter, i = None, i + 1
            continue
        out[i] = 1
        i += 1
    return out


def line_position(text: str) -> np.ndarray:
    """The column of each character: 0 for the first character of a line."""
    out = np.zeros(len(text), dtype=np.int64)
    column = 0
    for i, ch in enumerate(text):
        out[i] = column
        column = 0 if ch == "\n" else column + 1
    return out


def indentation(text: str) -> np.ndarray:
    """The leading spaces (or tabs) of each character's line that come at or before it."""
    out = np.zeros(len(text), dtype=np.int64)
    indent, leading = 0, True
    for i, ch in enumerate(text):
        if ch == "\n":
            out[i] = indent
            indent, leading = 0, True
            continue
        if leading and ch in " \t":
            indent += 1
        else:
            leading = False
        out[i] = indent
    return out


def features(text: str, python: bool = False) -> dict[str, np.ndarray]:
    """``{name: values}`` for each of :data:`FEATURES` on ``text``."""
    return {"inside quotes": inside_quotes(text, python), "position in line": line_position(text),
            "indentation": indentation(text)}


def correlations(states, feature) -> np.ndarray:
    """Pearson correlation of each unit (column of ``states``, shape (chars, units)) with ``feature``
    (chars,); a unit or a feature that never changes correlates 0."""
    x = np.asarray(states, dtype=np.float64)
    y = np.asarray(feature, dtype=np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"correlations: expected states (chars, units) and a feature (chars,), "
                         f"got {x.shape} and {y.shape}")
    x = x - x.mean(axis=0)
    y = y - y.mean()
    denominator = np.sqrt((x * x).sum(axis=0) * (y @ y))
    safe = denominator > 1e-12 * max(1.0, float(np.abs(x).max(initial=0.0)) * float(np.abs(y).max(initial=0.0)))
    return np.where(safe, (x.T @ y) / np.where(safe, denominator, 1.0), 0.0)


def best_units(states, named_features: dict) -> list[dict]:
    """For each feature, ``{"feature", "unit", "correlation"}`` of the unit with the largest
    |correlation| (the first on ties); ``unit`` and ``correlation`` are None for a feature that
    is constant over the text (no quotes in it, say), where a correlation means nothing."""
    chosen = []
    for name, values in named_features.items():
        values = np.asarray(values)
        if values.size == 0 or np.all(values == values[0]):
            chosen.append({"feature": name, "unit": None, "correlation": None})
            continue
        r = correlations(states, values)
        unit = int(np.argmax(np.abs(r)))
        chosen.append({"feature": name, "unit": unit, "correlation": float(r[unit])})
    return chosen


@tr.no_grad()
def recurrent_states(embed, rnn, ids, device="cpu") -> np.ndarray:
    """(len(ids), hidden) float64: the last layer's state after each id, read one id at a time with the
    state carried from an all-zero start: the LSTM's cell state ``c_t``, a GRU's or RNN's ``h_t``."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    was_training = embed.training, rnn.training
    embed.eval()
    rnn.eval()
    state, rows = None, []
    for token in ids:
        _, state = rnn(embed(tr.tensor([[int(token)]], device=device)), state)
        last = state[1] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
        rows.append(last[-1, 0].numpy().astype(np.float64))
    embed.train(was_training[0])
    rnn.train(was_training[1])
    return np.stack(rows) if rows else np.zeros((0, rnn.hidden_size))
