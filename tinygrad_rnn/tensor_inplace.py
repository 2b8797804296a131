"""Tensor's in-place methods (``add_``, ``zero_``, ``copy_``, ``x[i] = v``, ``x -= y``): mixed into
:class:`~tinygrad_rnn.tensor.Tensor`.

PyTorch's rules:

* A leaf tensor that requires grad (a Parameter) cannot be changed in place
  while gradients are recorded: update weights inside ``no_grad()``, or
  through ``.data``. That is what makes ``p -= lr * p.grad`` safe.
* Anything else is changed in its own memory (so views and other names of
  the tensor see the change). When the tape records (the tensor or the other
  operand requires grad), the change is a recorded op and the tensor takes it
  as its new history: in-place changes of non-leaves are differentiable.
* Each in-place write raises the tensor's version; an op that saved the
  tensor's values for its backward refuses to run on the overwritten ones.
"""
from __future__ import annotations

import numpy as np

from .autograd import STATE, no_grad
from .ops import assign
from .tensor_shape import _is_tensor, _normalize_index


class InplaceMethods:
    """In-place methods of :class:`~tinygrad_rnn.tensor.Tensor` (PyTorch's rules; see the module docstring)."""

    __slots__ = ()

    # ----------------------------------------------------------------- arithmetic
    def add_(self, other, *, alpha=1) -> "InplaceMethods":
        """``self += alpha * other``, in place."""
        return self._update("add_", other, lambda s, o: s + (o if alpha == 1 else o * alpha), copy_self=False)

    def sub_(self, other, *, alpha=1) -> "InplaceMethods":
        """``self -= alpha * other``, in place."""
        return self._update("sub_", other, lambda s, o: s - (o if alpha == 1 else o * alpha), copy_self=False)

    def mul_(self, other) -> "InplaceMethods":
        """``self *= other``, in place."""
        return self._update("mul_", other, lambda s, o: s * o, copy_self=True)

    def div_(self, other) -> "InplaceMethods":
        """``self /= other``, in place (a floating point tensor: true division, as in PyTorch)."""
        return self._update("div_", other, lambda s, o: s / o, copy_self=True)

    def clamp_(self, min=None, max=None) -> "InplaceMethods":
        """Clip to [min, max] in place."""
        return self._update("clamp_", None, lambda s, _: s.clamp(min, max), copy_self=True)

    clip_ = clamp_

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    # ----------------------------------------------------------------- filling
    def zero_(self) -> "InplaceMethods":
        """Set every element to 0, in place (``p.grad.zero_()``)."""
        return self.fill_(0)

    def fill_(self, value) -> "InplaceMethods":
        """Set every element to ``value`` (a number or a one-element tensor), in place."""
        if _is_tensor(value) and value.numel() != 1:
            raise RuntimeError(f"fill_: value must be a number or a one-element tensor, got shape {value.shape}")
        source = value.reshape(()) if _is_tensor(value) else self.new_full((), value)
        return self.copy_(source, op="fill_")

    def copy_(self, src, *, op="copy_") -> "InplaceMethods":
        """Copy ``src``'s values (broadcast to this shape, cast to this dtype, moved to this device) in place."""
        self._check_leaf(op)
        if not _is_tensor(src):
            src = self._constant(src, op)
        if src.device != self.device:
            src = src.to(self.device)
        if _records(self, src):
            return self._adopt_result(op, assign.Fill.apply(self, src))
        return self._write(op, src)

    def uniform_(self, a=0.0, b=1.0) -> "InplaceMethods":
        """Fill with samples of U(a, b) from this device's generator, in place."""
        return self.copy_(self._draw("rand") * (b - a) + a, op="uniform_")

    def normal_(self, mean=0.0, std=1.0) -> "InplaceMethods":
        """Fill with samples of N(mean, std²) from this device's generator, in place."""
        return self.copy_(self._draw("randn") * std + mean, op="normal_")

    def _draw(self, kind):
        dtype = self.dtype if self.dtype.kind == "f" and self.dtype.itemsize >= 4 else "float32"
        return self._make(getattr(self._backend, kind)(self.shape, dtype), self._backend)

    # ----------------------------------------------------------------- indexing
    def __setitem__(self, index, value):
        """``x[index] = value`` with every index form that reading accepts; differentiable when recorded."""
        self._check_leaf("__setitem__")
        index = _normalize_index(index, self)
        if not _is_tensor(value):
            value = self._constant(value, "__setitem__")
        if value.device != self.device:
            raise RuntimeError(f"__setitem__: the value is on {value.device} but the tensor is on {self.device}")
        if value.dtype != self.dtype:
            value = value.to(dtype=self.dtype)
        if _records(self, value):
            self._adopt_result("__setitem__", assign.SetItem.apply(self, value, index=index))
            return
        try:
            self.array[index] = value.array
        except (IndexError, ValueError, TypeError) as exc:
            raise IndexError(
                f"__setitem__: cannot assign a value of shape {value.shape} at {index!r} of a tensor of shape "
                f"{self.shape} ({exc})"
            ) from None
        _bump(self)

    # ----------------------------------------------------------------- machinery
    def _constant(self, value, op):
        """A number, list or NumPy array as a constant tensor on this tensor's device."""
        if isinstance(value, (bool, int, float)):
            return self.new_full((), value)
        try:
            array = self._backend.asarray(np.asarray(value))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{op}: cannot use a value of type {type(value).__name__} ({exc})") from None
        if array.dtype.kind not in "biuf":
            raise TypeError(f"{op}: expected a number, a tensor or numeric array data, got {value!r:.60}")
        return self._make(array, self._backend)

    def _check_leaf(self, op):
        """Refuse, before anything is written, to change a leaf that requires grad (or a slice of one)."""
        if not STATE.grad_enabled:
            return
        tensor, what = self, "a leaf tensor that requires grad (such as a Parameter)"
        while tensor is not None:
            if tensor.requires_grad and tensor._creator is None:
                raise RuntimeError(
                    f"{op}: {what} cannot be changed in place while gradients are recorded. Update it inside "
                    "`with tinygrad_rnn.no_grad():` (as optimizers do), or through its .data"
                )
            tensor = tensor._view_of[0] if tensor._view_of is not None else None
            what = "a slice of a leaf tensor that requires grad (such as a Parameter)"

    def _update(self, op, other, compute, copy_self):
        """``self = compute(self, other)`` in place: recorded (and differentiable) when the tape records."""
        self._check_leaf(op)
        if _records(self, other):
            # the op may save its first input for backward: give it a copy, since self's memory is overwritten
            source = self.clone() if copy_self else self
            return self._adopt_result(op, compute(source, other))
        with no_grad():
            result = compute(self, other)
        _check_fits(op, self, result)
        return self._write(op, result)

    def _adopt_result(self, op, result):
        """Write a recorded result into this tensor's memory and make its op this tensor's history. A slice
        (``h[0].add_(w)``) also records the change in the tensor it was sliced from, as ``h[0] = ...``."""
        _check_fits(op, self, result)
        self._write(op, result)
        self._creator, self._index, self.requires_grad = result._creator, result._index, result.requires_grad
        if self._view_of is not None:
            base, write_back = self._view_of
            write_back(self)
        return self

    def _write(self, op, source):
        """Write ``source``'s values (broadcast, cast) into this tensor's own memory; raise its version."""
        try:
            self.array[...] = source.array
        except ValueError as exc:
            raise RuntimeError(
                f"{op}: cannot write a value of shape {source.shape} into this tensor of shape {self.shape} in "
                f"place ({exc}); an expanded tensor shares memory between elements: .clone() it first"
            ) from None
        _bump(self)
        return self


def _records(tensor, other) -> bool:
    return STATE.grad_enabled and (tensor.requires_grad or (_is_tensor(other) and other.requires_grad))


def _bump(tensor):
    """Raise the version of ``tensor`` and of the tensors it is a slice of (they share its memory)."""
    while tensor is not None:
        if tensor._version is not None:
            tensor._version[0] += 1
        tensor = tensor._view_of[0] if tensor._view_of is not None else None


def _check_fits(op, tensor, result):
    """An in-place result must keep the tensor's shape and be castable to its dtype (PyTorch's rule)."""
    if result.shape != tensor.shape:
        raise RuntimeError(
            f"{op}: the result has shape {result.shape}, which does not fit in place into the tensor's shape "
            f"{tensor.shape} (in-place ops broadcast the other operand, never the tensor itself)"
        )
    if result.dtype != tensor.dtype and (
        (result.dtype.kind in "fc" and tensor.dtype.kind not in "fc") or (tensor.dtype.kind == "b" and result.dtype.kind != "b")
    ):
        raise TypeError(f"{op}: the result has dtype {result.dtype}, which cannot be cast to the tensor's dtype {tensor.dtype}")

