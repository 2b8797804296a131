"""``ModuleDict`` and ``ParameterList``: containers that register what they hold, as in ``torch.nn``.

``Sequential`` and ``ModuleList`` are in ``module.py``. Entries get PyTorch's
names (``blocks.encoder.weight``, ``params.0``), so ``named_parameters()`` and
``state_dict()`` match a PyTorch model built the same way.
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping

from ..tensor import Tensor
from .module import Module, Parameter


class ModuleDict(Module):
    """An ordered dict of sub-modules, registered under their keys (``model.blocks["enc"]``).

    ``ModuleDict(modules=None)`` takes a mapping or an iterable of (key, module)
    pairs. It has the dict methods ``keys``, ``values``, ``items``, ``update``,
    ``pop`` and ``clear``, and no ``forward``: call the modules it holds.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        if key not in self._modules:
            raise KeyError(f"ModuleDict: no module named {key!r} (keys: {list(self._modules)})")
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        if key not in self._modules:
            raise KeyError(f"ModuleDict: no module named {key!r} (keys: {list(self._modules)})")
        delattr(self, key)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def clear(self):
        """Remove every module."""
        for key in list(self._modules):
            del self[key]

    def pop(self, key):
        """Remove the module ``key`` and return it."""
        module = self[key]
        del self[key]
        return module

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def update(self, modules):
        """Add or replace modules from a mapping or from an iterable of (key, module) pairs."""
        if isinstance(modules, Mapping):
            pairs = list(modules.items())
        elif isinstance(modules, Iterable) and not isinstance(modules, (str, Module)):
            pairs = []
            for i, pair in enumerate(modules):
                if not isinstance(pair, Iterable) or isinstance(pair, str):
                    raise TypeError(
                        f"ModuleDict.update: element #{i} must be a (key, module) pair, got {type(pair).__name__}"
                    )
                pair = tuple(pair)
                if len(pair) != 2:
                    raise ValueError(
                        f"ModuleDict.update: element #{i} has length {len(pair)}; 2 (key, module) is required"
                    )
                pairs.append(pair)
        else:
            raise TypeError(
                "ModuleDict.update: expected a mapping or an iterable of (key, module) pairs, "
                f"got {type(modules).__name__}"
            )
        for key, module in pairs:
            self[key] = module


class ParameterList(Module):
    """A list of parameters registered under ``0``, ``1``, ... (``params.0`` in ``named_parameters()``).

    ``ParameterList(values=None)``: each value is a Parameter, or a Tensor that
    becomes one (requiring grad). Supports indexing (negative indices, slices
    giving a new ParameterList), assignment, ``len``, iteration, ``append``,
    ``extend`` and ``+=``.
    """

    def __init__(self, values=None):
        super().__init__()
        self._size = 0
        if values is not None:
            self.extend(values)

    def _position(self, idx):
        if isinstance(idx, bool) or not isinstance(idx, numbers.Integral):
            raise TypeError(f"ParameterList: indices must be integers or slices, got {type(idx).__name__}")
        idx = int(idx)
        if not -len(self) <= idx < len(self):
            raise IndexError(f"ParameterList: index {idx} is out of range for a list of {len(self)} parameters")
        return idx % len(self)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ParameterList([self[i] for i in range(len(self))[idx]])
        return getattr(self, str(self._position(idx)))

    def __setitem__(self, idx, param):
        self._store(self._position(idx), param)

    def _store(self, idx, param):
        if not isinstance(param, Tensor):
            raise TypeError(f"ParameterList: element {idx} must be a Parameter or a Tensor, got {type(param).__name__}")
        if not isinstance(param, Parameter):
            param = Parameter(param)
        setattr(self, str(idx), param)

    def __len__(self):
        return self._size

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __iadd__(self, parameters):
        return self.extend(parameters)

    def append(self, value):
        """Add ``value`` at the end; returns this list."""
        index = len(self)
        self._store(index, value)
        self._size = index + 1
        return self

    def extend(self, values):
        """Append every value of the iterable ``values``; returns this list."""
        if not isinstance(values, Iterable) or isinstance(values, Tensor):
            raise TypeError(f"ParameterList.extend: expected an iterable of parameters, got {type(values).__name__}")
        for value in values:
            self.append(value)
        return self

    def forward(self, *args, **kwargs):
        raise RuntimeError("ParameterList should not be called; index it and use the parameters")

    def extra_repr(self):
        lines = [
            f"({i}): Parameter containing: [{p.dtype} of size {'x'.join(map(str, p.shape)) or '()'}"
            f"{'' if p.device == 'cpu' else f' ({p.device})'}]"
            for i, p in enumerate(self)
        ]
        return "\n  " + "\n  ".join(lines) + "\n" if lines else ""
