"""The named tuples some methods return, as ``torch.return_types``: ``x.max(dim)`` gives a ``max`` with
``.values`` and ``.indices`` that also unpacks as ``values, indices = x.max(dim)``."""
from __future__ import annotations

from collections import namedtuple


def _values_indices(name):
    base = namedtuple(name, ("values", "indices"))

    def __repr__(self):
        return f"tinygrad_rnn.return_types.{name}(\nvalues={self.values!r},\nindices={self.indices!r})"

    return type(name, (base,), {"__slots__": (), "__repr__": __repr__, "__module__": __name__})


max = _values_indices("max")
min = _values_indices("min")
sort = _values_indices("sort")
topk = _values_indices("topk")

__all__ = ["max", "min", "sort", "topk"]
