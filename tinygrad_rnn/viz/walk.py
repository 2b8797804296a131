"""Collect the recorded graph behind some tensors, without recursion.

An RNN unrolled over thousands of steps is a graph tens of thousands of ops
deep, so the walk uses an explicit stack (a recursive walk would hit
Python's recursion limit at about a thousand ops).
"""
from __future__ import annotations

from ..tensor import Tensor


def flatten_roots(root) -> list:
    """The tensors in ``root``: a tensor, or (nested) lists/tuples of tensors such as ``(output, (h, c))``."""
    roots, stack = [], [root]
    while stack:
        item = stack.pop()
        if isinstance(item, Tensor):
            if all(item is not r for r in roots):
                roots.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif item is not None:
            raise TypeError(
                f"draw_graph: expected a Tensor or a list/tuple of tensors, got {type(item).__name__}"
            )
    if not roots:
        raise ValueError("draw_graph: no tensor to draw (got an empty list)")
    return roots


def collect_functions(roots) -> list:
    """Every recorded function the ``roots`` depend on, oldest first (by creation number)."""
    seen = set()
    found = []
    stack = [r._creator for r in roots if r._creator is not None]
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        found.append(fn)
        for link in fn.next:
            if type(link) is tuple:
                stack.append(link[0])
    found.sort(key=lambda fn: fn.seq)
    return found
