"""Tensor's in-place methods (``add_``, ``zero_``, ``x[i] = v``, ``x -= y``): mixed into
:class:`~tinygrad_rnn.tensor.Tensor`.
"""
from __future__ import annotations


class InplaceMethods:
    """In-place methods of :class:`~tinygrad_rnn.tensor.Tensor` (PyTorch's rules)."""

    __slots__ = ()
