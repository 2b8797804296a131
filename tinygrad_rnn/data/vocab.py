"""Character vocabulary: the mapping between characters and integer ids."""

from __future__ import annotations

from typing import Iterable

import numpy as np


class CharVocab:
    """A fixed list of characters; the id of a character is its index.

    Build one from a corpus with :meth:`from_text`, turn strings into int64
    id arrays with :meth:`encode` and back with :meth:`decode`. The vocabulary
    round-trips through a plain JSON-able dict (:meth:`to_dict` /
    :meth:`from_dict`) so a checkpoint can carry it next to the weights.
    """

    def __init__(self, chars: Iterable[str]):
        chars = list(chars)
        if not chars:
            raise ValueError("CharVocab: chars must not be empty, got []")
        for ch in chars:
            if not isinstance(ch, str) or len(ch) != 1:
                raise ValueError(f"CharVocab: every entry of chars must be a single "
                                 f"character, got {ch!r}")
        if len(set(chars)) != len(chars):
            duplicates = sorted({ch for ch in chars if chars.count(ch) > 1})
            raise ValueError(f"CharVocab: chars must be unique, got duplicates {duplicates!r}")
        self.chars: list[str] = chars
        self._index = {ch: i for i, ch in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        """Vocabulary of the sorted unique characters of ``text``.

        Sorting makes the ids depend only on the character set, not on the
        order characters first appear in.
        """
        if not isinstance(text, str):
            raise ValueError(f"CharVocab.from_text: text must be a str, "
                             f"got {type(text).__name__}")
        if not text:
            raise ValueError("CharVocab.from_text: text must not be empty, got ''")
        return cls(sorted(set(text)))

    def encode(self, text: str) -> np.ndarray:
        """Ids of the characters of ``text`` as a 1-D int64 array."""
        if not isinstance(text, str):
            raise ValueError(f"CharVocab.encode: text must be a str, "
                             f"got {type(text).__name__}")
        index = self._index
        try:
            return np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))
        except KeyError as err:
            raise ValueError(f"CharVocab.encode: character {err.args[0]!r} is not in the "
                             f"vocabulary ({len(self)} chars)") from None

    def decode(self, ids: Iterable[int]) -> str:
        """The string whose characters have the given ids (ints or an int array)."""
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ValueError(f"CharVocab.decode: ids must be 1-D, got shape {ids.shape}")
        if ids.size == 0:
            return ""
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"CharVocab.decode: ids must be integers, got dtype {ids.dtype}")
        bad = (ids < 0) | (ids >= len(self.chars))
        if bad.any():
            raise ValueError(f"CharVocab.decode: ids must be in [0, {len(self.chars) - 1}], "
                             f"got {int(ids[bad][0])}")
        chars = self.chars
        return "".join(chars[i] for i in ids.tolist())

    def to_dict(self) -> dict:
        """Plain dict ``{"chars": [...]}`` that ``json.dump`` can write."""
        return {"chars": list(self.chars)}

    @classmethod
    def from_dict(cls, d: dict) -> "CharVocab":
        """Rebuild a vocabulary saved with :meth:`to_dict`."""
        if not isinstance(d, dict) or "chars" not in d:
            raise ValueError(f"CharVocab.from_dict: d must be a dict with a 'chars' list, "
                             f"got {d!r:.80}")
        return cls(d["chars"])

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, ch) -> bool:
        return ch in self._index

    def __eq__(self, other) -> bool:
        if not isinstance(other, CharVocab):
            return NotImplemented
        return self.chars == other.chars

    def __hash__(self) -> int:
        return hash(tuple(self.chars))

    def __repr__(self) -> str:
        return f"CharVocab({''.join(self.chars)!r})"
