"""Graphs carried over from an earlier batch: the once-only warning, and where a warning should point."""
from __future__ import annotations

import os
import sys
import warnings

from .function import STATE

_warned_released = [False]


def _reaches_released_graph(creator, limit=64):
    """True when a function that a ``backward()`` already walked (released, or kept by
    ``retain_graph=True``) lies within ``limit`` functions behind ``creator``.

    A layer's ``h_n`` is often made by a small op (a stack or a copy) that the
    loss never used, so its own creator is not released while the graph behind it is.
    """
    stack, seen = [creator], set()
    while stack and len(seen) < limit:
        fn = stack.pop()
        if fn.released or fn.walked:
            return True
        seen.add(fn)
        stack.extend(link[0] for link in fn.next if type(link) is tuple and link[0] not in seen)
    return False


def graph_depth_warning(state_tensor, what="the initial state"):
    """Warn once when a tensor still carries a graph that ``backward()`` already consumed.

    That is what happens when a hidden state is carried from batch to batch
    without ``detach_state``: the graph grows every batch and keeps its arrays alive.
    """
    if _warned_released[0] or not STATE.grad_enabled or getattr(state_tensor, "_creator", None) is None:
        return  # under no_grad() (sampling, evaluation) nothing new is recorded onto the old graph
    if _reaches_released_graph(state_tensor._creator):
        _warned_released[0] = True
        warnings.warn(
            f"{what} carries the graph of an earlier batch that backward() already used; the graph keeps "
            "growing and holds its memory (retain_graph=True does not fix this). Cut it between batches with "
            "tinygrad_rnn.nn.utils.detach_state(state).",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )


def user_stacklevel():
    """The ``stacklevel`` of the first caller outside tinygrad_rnn, so a warning shows the user's line."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frame, level = sys._getframe(2), 2  # level 1 is the function calling warnings.warn
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level
