"""Tensor's math methods beyond the core arithmetic: mixed into :class:`~tinygrad_rnn.tensor.Tensor`.

:class:`MathMethods` is here only to keep ``tensor.py`` short. Each
differentiable method is one op from ``ops/``.
"""
from __future__ import annotations


class MathMethods:
    """Math methods of :class:`~tinygrad_rnn.tensor.Tensor` (PyTorch's names and semantics)."""

    __slots__ = ()
