"""Tensor's shape and indexing methods: reshape, permute, transpose, (un)squeeze, expand, split, ``[]``.

:class:`ShapeMethods` is mixed into :class:`~tinygrad_rnn.tensor.Tensor`; it
is here only to keep ``tensor.py`` short. Each differentiable method is one
op from ``ops/shape.py``.
"""
from __future__ import annotations

import numpy as np

from .checks import check_int, check_int_dim, normalize_dim, normalize_dims
from .dtypes import int64
from .ops import shape as shape_ops


class ShapeMethods:
    """The shape and indexing half of :class:`~tinygrad_rnn.tensor.Tensor`."""

    __slots__ = ()

    def reshape(self, *shape):
        shape = _shape_args(shape, "reshape")
        if shape == self.shape:
            return self
        out = shape_ops.Reshape.apply(self, shape=shape)
        return _as_view(out, self, lambda view: self.copy_(view.reshape(self.shape)))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        start = normalize_dim(start_dim, self.ndim, "flatten")
        end = normalize_dim(end_dim, self.ndim, "flatten")
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        shape = self.shape
        merged = 1
        for n in shape[start : end + 1]:
            merged *= n
        return self.reshape(shape[:start] + (merged,) + shape[end + 1 :])

    def permute(self, *dims):
        dims = _shape_args(dims, "permute")
        if sorted(d % max(self.ndim, 1) for d in dims) != list(range(self.ndim)) or len(dims) != self.ndim:
            raise ValueError(f"permute: dims {dims} are not a permutation of the {self.ndim} dimensions of {self.shape}")
        dims = tuple(d % self.ndim for d in dims)
        return self._permuted(dims)

    def transpose(self, dim0, dim1):
        a = normalize_dim(dim0, self.ndim, "transpose")
        b = normalize_dim(dim1, self.ndim, "transpose")
        dims = list(range(self.ndim))
        dims[a], dims[b] = dims[b], dims[a]
        return self._permuted(tuple(dims))

    swapaxes = swapdims = transpose  # PyTorch's (and NumPy's) other names

    def _permuted(self, dims):
        inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))
        out = shape_ops.Permute.apply(self, dims=dims)
        return _as_view(out, self, lambda view: self.copy_(view.permute(*inverse)))

    def unsqueeze(self, dim):
        dim = check_int_dim(dim, "unsqueeze")
        if not -self.ndim - 1 <= dim <= self.ndim:
            raise IndexError(
                f"unsqueeze: dim {dim} is out of range for a tensor with {self.ndim} dimension(s) "
                f"(expected {-self.ndim - 1} <= dim <= {self.ndim})"
            )
        dim = dim % (self.ndim + 1)
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim=None):
        if dim is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        axes = normalize_dims(dim, self.ndim, "squeeze") or ()
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1)))

    def expand(self, *shape):
        shape = _shape_args(shape, "expand")
        if len(shape) < self.ndim:
            raise ValueError(f"expand: the target shape {shape} has fewer dimensions than {self.shape}")
        lead = len(shape) - self.ndim
        shape = tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
        return shape_ops.Expand.apply(self, shape=shape)

    def expand_as(self, other):
        return self.expand(other.shape)

    def split(self, split_size_or_sections, dim=0) -> tuple:
        """Pieces of ``split_size`` along ``dim`` (the last may be shorter), or of the listed sizes."""
        axis = normalize_dim(dim, self.ndim, "split")
        length = self.shape[axis]
        if isinstance(split_size_or_sections, (int, np.integer)) and not isinstance(split_size_or_sections, bool):
            size = check_int("split", "split_size", split_size_or_sections, minimum=1)
            sizes = [size] * (length // size) + ([length % size] if length % size else [])
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != length:
                raise ValueError(f"split: sections {sizes} add up to {sum(sizes)}, but dim {axis} has length {length}")
        lead = (slice(None),) * axis
        pieces, start = [], 0
        for size in sizes:
            pieces.append(self[lead + (slice(start, start + size),)])
            start += size
        return tuple(pieces)

    def chunk(self, chunks, dim=0) -> tuple:
        """Split into ``chunks`` pieces of equal size (the last may be smaller), as PyTorch does."""
        check_int("chunk", "chunks", chunks, minimum=1)
        length = self.shape[normalize_dim(dim, self.ndim, "chunk")]
        return self.split(max(1, -(-length // chunks)), dim)

    def __getitem__(self, index):
        index = _normalize_index(index, self)
        out = shape_ops.GetItem.apply(self, index=index)
        if not shape_ops._is_basic(index):
            return out  # advanced indexing copies
        return _as_view(out, self, lambda view: self.__setitem__(index, view))

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))


def _is_tensor(value) -> bool:
    """True for a Tensor (every Tensor is a ShapeMethods; the mixin modules cannot import Tensor)."""
    return isinstance(value, ShapeMethods)


def _as_view(out, base, write_back):
    """Mark ``out`` as a view of ``base`` when it shares its memory: an in-place change of ``out`` while the
    tape records then calls ``write_back(out)``, which records the change in ``base`` too (as PyTorch does)."""
    if out.array.base is not None and base._backend.xp.may_share_memory(out.array, base.array):
        out._view_of = (base, write_back)
    return out


def _shape_args(args, op):
    """Accept ``f(2, 3)`` and ``f((2, 3))`` alike."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    for n in args:
        if not isinstance(n, (int, np.integer)):
            raise TypeError(f"{op}: expected integer sizes, got {args!r}")
    return tuple(int(n) for n in args)


def _normalize_index(index, tensor):
    """Turn tensors and lists inside an index into arrays on ``tensor``'s device; check them."""
    items = index if isinstance(index, tuple) else (index,)
    converted = []
    for item in items:
        if _is_tensor(item):
            if item._backend is not tensor._backend:
                raise RuntimeError(f"__getitem__: index tensor is on {item.device} but the tensor is on {tensor.device}")
            if item.dtype.kind not in "iub":
                raise IndexError(f"__getitem__: index tensors must be integer or bool, got {item.dtype}")
            item = item.array
        elif isinstance(item, range):
            item = tensor._backend.asarray(np.arange(item.start, item.stop, item.step, dtype=int64))
        elif isinstance(item, (list, np.ndarray)):
            array = np.asarray(item)
            if array.dtype.kind not in "iub" and array.size:
                raise IndexError(f"__getitem__: index arrays must be integer or bool, got {array.dtype}")
            item = tensor._backend.asarray(array if array.size else array.astype(int64))
        elif isinstance(item, np.integer):
            item = int(item)
        elif not (item is None or item is Ellipsis or isinstance(item, (int, slice))) or isinstance(item, bool):
            raise IndexError(f"__getitem__: unsupported index {item!r} of type {type(item).__name__}")
        converted.append(item)
    return tuple(converted) if isinstance(index, tuple) else converted[0]
