"""Gradient norms for ``show_grads=True``, and the log scale they are shaded on.

Ops created inside ``tinygrad_rnn.retain_grads()`` keep their output
gradients (``fn.trace.out_grads``; None for an output nobody used) after
``backward()``; leaves have ``.grad``; tensors marked with ``retain_grad()``
have theirs too; a fused sequence op keeps ``fn.trace.step_grad_norms``, the
norm of dL/dh_t at each step, and a fused LSTM also ``step_cell_grad_norms``,
the norm of the whole dL/dc_t. Anything else was not kept, and the drawing
says so.
"""
from __future__ import annotations

import math

import numpy as np


def _norm(backend, array) -> float:
    host = backend.to_host(array)
    return float(np.sqrt(np.sum(np.square(host, dtype=np.float64))))


class GradNorms:
    """Norms of the gradients the tape kept, computed once each."""

    def __init__(self):
        self._cache = {}

    def output(self, fn, index):
        """‖dL/d(output ``index`` of ``fn``)‖, or None when it was not kept."""
        key = (id(fn), index)
        if key in self._cache:
            return self._cache[key]
        norm = None
        grads = fn.trace.out_grads
        if grads is not None and index < len(grads):
            norm = 0.0 if grads[index] is None else _norm(fn.backend, grads[index])
        elif fn.retained and index in fn.retained:
            tensor = fn.retained[index]()
            if tensor is not None and tensor.grad is not None:
                norm = _norm(tensor._backend, tensor.grad.array)
        self._cache[key] = norm
        return norm

    def outputs(self, fn):
        """The norm of all of ``fn``'s output gradients together (None when any was not kept)."""
        total = 0.0
        for i in range(fn.outputs):
            norm = self.output(fn, i)
            if norm is None:
                return None
            total += norm * norm
        return math.sqrt(total)

    @staticmethod
    def leaf(tensor):
        """‖tensor.grad‖, or None when the leaf has no gradient yet."""
        if tensor.grad is None:
            return None
        return _norm(tensor._backend, tensor.grad.array)

    @staticmethod
    def steps(fn):
        """A fused sequence op's per-step ‖dL/dh_t‖ (by time step), or None."""
        return _floats(fn.trace.step_grad_norms)

    @staticmethod
    def cell_steps(fn):
        """A fused LSTM sequence op's per-step ‖dL/dc_t‖ (by time step, the path through h_t included), or None."""
        return _floats(fn.trace.step_cell_grad_norms)


class LogScale:
    """Maps gradient norms to [0, 1] by log10, between the smallest and largest non-zero norm."""

    def __init__(self, norms):
        logs = [math.log10(n) for n in norms if n is not None and n > 0 and math.isfinite(n)]
        self.low = min(logs) if logs else 0.0
        self.high = max(logs) if logs else 0.0
        self.empty = not logs

    def __call__(self, norm) -> float:
        if norm is None or norm <= 0 or not math.isfinite(norm):
            return 0.0 if norm is None or norm <= 0 else 1.0
        if self.high == self.low:
            return 1.0
        return (math.log10(norm) - self.low) / (self.high - self.low)

    @property
    def range(self):
        return 10.0**self.low, 10.0**self.high


def _floats(norms):
    """Per-step norms as Python floats, or None when none were kept."""
    return [float(x) for x in norms] if norms else None
