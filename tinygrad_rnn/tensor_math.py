"""Tensor's math methods beyond the core arithmetic: mixed into :class:`~tinygrad_rnn.tensor.Tensor`.

:class:`MathMethods` is here only to keep ``tensor.py`` short: max/min with
indices, the reductions (sum, mean, var, argmax), sorting, more elementwise functions, norms, cumulative sums and
``__format__``, matrix products and triangles, and a few copying and
indexing methods (repeat, flip, gather, unbind, new_tensor). Each
differentiable method is one op from ``ops/``.
"""
from __future__ import annotations

import math

import numpy as np

from . import return_types
from .backends import get_backend
from .checks import check_int, normalize_dim, normalize_dims
from .dtypes import as_dtype, bool_, float16, float32, float64, get_default_dtype, int32, int64
from . import capture
from .ops import elementwise as ew
from .ops import indexing, linalg, norms, pointwise, reduce
from .ops import shape as shape_ops
from .tensor_shape import _is_tensor, _shape_args


def _floating(t):
    """Integer and bool tensors become the default float dtype before float-only math (as in PyTorch)."""
    return t if t.dtype.kind in "fc" else t.to(dtype=get_default_dtype())


def _numpy_names(dim, keepdim, axis, keepdims):
    """PyTorch also takes NumPy's ``axis`` and ``keepdims`` for ``dim`` and ``keepdim``."""
    if axis is not None:
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return dim, keepdim


class MathMethods:
    """Math methods of :class:`~tinygrad_rnn.tensor.Tensor` (PyTorch's names and semantics)."""

    __slots__ = ()

    # ------------------------------------------------------------- formatting
    def __format__(self, format_spec):
        """``f"{loss:.3f}"``: a 0-d tensor formats as its number, as in PyTorch (``f"{t}"`` gives that number
        too); other tensors take only the empty spec, which gives ``str(t)``."""
        if self.ndim == 0:
            return self.item().__format__(format_spec)
        if format_spec:
            raise TypeError(
                f"unsupported format string {format_spec!r} passed to Tensor.__format__: only a 0-d tensor formats "
                f"as a number, this one has shape {self.shape}; format t.item() (one element) or index it first"
            )
        return str(self)

    # ---------------------------------------------------------------- reductions
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Sum over ``dim`` (an int, a tuple, or None for all); NumPy's ``axis``/``keepdims`` are
        accepted too, as in PyTorch."""
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
        axis = normalize_dims(dim, self.ndim, "sum")
        x = self if self.dtype != bool_ else self.long()
        return reduce.Sum.apply(x, axis=axis, keepdim=keepdim)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        dim, keepdim = _numpy_names(dim, keepdim, axis, keepdims)
        axis = normalize_dims(dim, self.ndim, "mean")
        return reduce.Mean.apply(_floating(self), axis=axis, keepdim=keepdim)

    def amax(self, dim=None, keepdim=False):
        return reduce.Max.apply(self, axis=normalize_dims(dim, self.ndim, "amax"), keepdim=keepdim)

    def amin(self, dim=None, keepdim=False):
        return reduce.Min.apply(self, axis=normalize_dims(dim, self.ndim, "amin"), keepdim=keepdim)

    def var(self, dim=None, keepdim=False, correction=1, unbiased=None):
        """Variance; ``correction=1`` (unbiased, the default) or 0 (``unbiased=False``)."""
        if unbiased is not None:
            correction = int(bool(unbiased))
        axis = normalize_dims(dim, self.ndim, "var")
        return reduce.Var.apply(_floating(self), axis=axis, keepdim=keepdim, correction=correction)

    def std(self, dim=None, keepdim=False, correction=1):
        return self.var(dim, keepdim, correction).sqrt()

    def argmax(self, dim=None, keepdim=False):
        return self._arg("argmax", dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return self._arg("argmin", dim, keepdim)

    def _arg(self, name, dim, keepdim):
        if self.array.size == 0:
            raise ValueError(f"{name}: cannot reduce an empty tensor of shape {self.shape}")
        if dim is None:
            out = getattr(self.array, name)()
            if keepdim:
                out = out.reshape((1,) * self.ndim)
        else:
            axis = normalize_dim(dim, self.ndim, name)
            out = getattr(self.array, name)(axis=axis, keepdims=keepdim) if self.ndim else getattr(self.array, name)()
        return self._make(out.astype(int64, copy=False), self._backend)

    # ------------------------------------------------------- max, min, sorting
    def max(self, dim=None, keepdim=False):
        """The maximum of all elements; with ``dim``, a named tuple ``(values, indices)`` of the maxima along
        ``dim`` and where they are (the first one at ties), as ``torch.max``. The gradient of the values goes
        to those indices. With another tensor, the elementwise maximum (``maximum``), as ``torch.max``."""
        return self._extreme(dim, keepdim, reduce.Max, "max", return_types.max)

    def min(self, dim=None, keepdim=False):
        """The minimum of all elements; with ``dim``, a named tuple ``(values, indices)`` as for :meth:`max`;
        with another tensor, the elementwise minimum."""
        return self._extreme(dim, keepdim, reduce.Min, "min", return_types.min)

    def _extreme(self, dim, keepdim, op, name, result):
        if _is_tensor(dim):
            if keepdim:
                raise TypeError(f"{name}: keepdim has no meaning for the elementwise {name} of two tensors")
            return self.maximum(dim) if name == "max" else self.minimum(dim)
        if dim is None:
            return op.apply(self, axis=None, keepdim=keepdim)
        axis = normalize_dim(dim, self.ndim, name)
        if self.ndim and self.shape[axis] == 0:
            raise ValueError(f"{name}: cannot reduce an empty tensor of shape {self.shape} along dim {dim} (of size 0)")
        if self.ndim == 0:
            return result(ew.Clone.apply(self), self._make(self._backend.xp.zeros((), dtype=int64), self._backend))
        pick = self.array.argmax if name == "max" else self.array.argmin
        indices = pick(axis=axis, keepdims=True).astype(int64, copy=False)
        values = self._take(axis, indices)
        if not keepdim:
            values, indices = values.squeeze(axis), indices.squeeze(axis)
        return result(values, self._make(indices, self._backend))

    def _take(self, axis, indices):
        """The elements at ``indices`` (a valid int64 array) along ``axis``; differentiable in ``self``."""
        return indexing.Gather.apply(self, self._make(indices, self._backend), axis=axis)

    def _sort_indices(self, axis, descending):
        """Indices that sort along ``axis`` (stably: ties keep their order; NaN counts as the largest)."""
        backend = self._backend
        if not descending:
            return backend.argsort(self.array, axis).astype(int64, copy=False)
        # Sorting the reversed tensor and reversing the result keeps ties in order when descending.
        xp = backend.xp
        flipped = backend.argsort(xp.flip(self.array, axis=axis), axis)
        return (self.shape[axis] - 1 - xp.flip(flipped, axis=axis)).astype(int64, copy=False)

    def sort(self, dim=-1, descending=False, stable=False):
        """A named tuple ``(values, indices)``: the elements sorted along ``dim`` and where each came from.
        The sort is always stable (ties keep their order), which ``stable=False`` allows; differentiable in
        the values."""
        if self.ndim == 0:
            return return_types.sort(*self.max(normalize_dim(dim, 0, "sort")))
        axis = normalize_dim(dim, self.ndim, "sort")
        indices = self._sort_indices(axis, descending)
        return return_types.sort(self._take(axis, indices), self._make(indices, self._backend))

    def argsort(self, dim=-1, descending=False, stable=False):
        """The indices that sort along ``dim`` (int64; ties keep their order)."""
        axis = normalize_dim(dim, self.ndim, "argsort")
        if self.ndim == 0:
            return self._make(self._backend.xp.zeros((), dtype=int64), self._backend)
        return self._make(self._sort_indices(axis, descending), self._backend)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """A named tuple ``(values, indices)`` of the ``k`` largest (``largest=False``: smallest) elements along
        ``dim``, the most extreme first; always sorted (``sorted=False`` allows any order). Differentiable in
        the values."""
        axis = normalize_dim(dim, self.ndim, "topk")
        length = self.shape[axis] if self.ndim else 1
        k = check_int("topk", "k", k, minimum=0)
        if k > length:
            raise ValueError(f"topk: k ({k}) is out of range for dim {dim} of size {length} (tensor of shape {self.shape})")
        if self.ndim == 0:
            flat = self.reshape(1).topk(k, 0, largest, sorted)
            return return_types.topk(*(t.reshape(()) for t in flat)) if k else flat
        lead = (slice(None),) * axis
        indices = self._sort_indices(axis, largest)[lead + (slice(0, k),)]
        return return_types.topk(self._take(axis, indices), self._make(indices, self._backend))

    # ------------------------------------------------------- elementwise
    def pow(self, exponent):
        """``self ** exponent`` (a number or a tensor)."""
        return self**exponent

    def sin(self):
        """The sine of each element (radians); integers become the default float dtype first."""
        return pointwise.Sin.apply(_floating(self))

    def cos(self):
        """The cosine of each element (radians); integers become the default float dtype first."""
        return pointwise.Cos.apply(_floating(self))

    def log1p(self):
        """log(1 + x), accurate for tiny x."""
        return pointwise.Log1p.apply(_floating(self))

    def sign(self):
        """-1, 0 or 1 per element (same dtype; bools stay bools); its gradient is 0."""
        if self.dtype == bool_:
            return ew.Clone.apply(self)
        return pointwise.Sign.apply(self)

    def isnan(self):
        """A bool tensor: True where the element is NaN."""
        return self._make(self._backend.xp.isnan(self.array), self._backend)

    def isfinite(self):
        """A bool tensor: True where the element is neither NaN nor ±inf."""
        return self._make(self._backend.xp.isfinite(self.array), self._backend)

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        """NaN replaced by ``nan``, +inf by ``posinf`` and -inf by ``neginf`` (by default the largest and
        smallest finite numbers of the dtype); the gradient passes only where the element was finite."""
        for name, value in (("nan", nan), ("posinf", posinf), ("neginf", neginf)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, np.number))):
                raise TypeError(f"nan_to_num: {name} must be a number or None, got {value!r}")
        if self.dtype.kind not in "fc":
            return ew.Clone.apply(self)
        return pointwise.NanToNum.apply(self, nan=nan, posinf=posinf, neginf=neginf)

    # ------------------------------------------------------- reductions and scans
    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        """The vector p-norm over ``dim`` (all elements by default), as ``torch.Tensor.norm``: ``p`` is
        ``'fro'`` or 2 (Euclidean), 1, ``inf``, ``-inf``, 0 (count of non-zeros) or any other number.
        ``'fro'`` takes at most 2 dims; ``'nuc'`` (nuclear norm) is not supported. ``dtype`` casts first."""
        if dtype is not None:
            target = as_dtype(dtype)
            if target.kind != "f":
                raise TypeError(f"norm: dtype must be a floating point dtype, got {target}")
            x = self.to(dtype=target)
        else:
            x = self
        if x.dtype.kind != "f":
            raise TypeError(f"norm: expected a floating point tensor, got {x.dtype} (convert it with .float())")
        if isinstance(p, str):
            if p != "fro":
                raise ValueError(f"norm: p={p!r} is not supported; expected 'fro' or a number (2, 1, inf, ...)")
            if isinstance(dim, (tuple, list)) and len(dim) > 2:
                raise ValueError(f"norm: p='fro' takes at most 2 dims, got dim={dim!r}")
            p = 2
        elif p is None:
            p = 2
        elif isinstance(p, bool) or not isinstance(p, (int, float, np.number)) or math.isnan(p):
            raise TypeError(f"norm: p must be 'fro' or a number, got {p!r}")
        axis = normalize_dims(dim, x.ndim, "norm")
        count = math.prod(x.shape[a] for a in axis) if axis is not None else x.numel()
        if math.isinf(p) and count == 0:
            raise ValueError(f"norm: p={p} of an empty set of elements is undefined (dim={dim!r}, shape {x.shape})")
        return norms.VectorNorm.apply(x, p=float(p), axis=axis, keepdim=bool(keepdim))

    def logsumexp(self, dim, keepdim=False):
        """log Σ exp(x) over ``dim`` (an int or a tuple), without overflow for large x."""
        axis = normalize_dims(dim, self.ndim, "logsumexp")
        return reduce.LogSumExp.apply(_floating(self), axis=axis, keepdim=keepdim)

    def cumsum(self, dim, dtype=None):
        """Running sums along ``dim`` (integers and bools give int64, as in PyTorch)."""
        axis = normalize_dim(dim, self.ndim, "cumsum")
        x = self if dtype is None else self.to(dtype=as_dtype(dtype))
        if x.ndim == 0:
            return reduce.CumSum.apply(x.reshape(1), axis=0).reshape(())
        return reduce.CumSum.apply(x, axis=axis)

    # ------------------------------------------------------- matrices
    def t(self):
        """The transpose of a matrix; a 0-d or 1-d tensor comes back as it is (as ``torch.Tensor.t``)."""
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor with <= 2 dimensions, got shape {self.shape}; use transpose or mT")
        return self if self.ndim < 2 else self.transpose(0, 1)

    @property
    def mT(self):
        """The last two dims swapped: the transpose of each matrix in a batch."""
        if self.ndim < 2:
            raise ValueError(f"mT: needs a matrix or a batch of matrices (2 or more dims), got shape {self.shape}")
        return self.transpose(-2, -1)

    def mm(self, mat2):
        """The product of two matrices, (n, m) @ (m, p) -> (n, p); no broadcasting (see ``matmul``)."""
        self._check_product(mat2, "mm", 2)
        if self.shape[1] != mat2.shape[0]:
            raise ValueError(
                f"mm: cannot multiply {self.shape[0]}x{self.shape[1]} by {mat2.shape[0]}x{mat2.shape[1]}: "
                "the columns of the first must equal the rows of the second"
            )
        return linalg.MatMul.apply(self, mat2)

    def bmm(self, mat2):
        """Batched matrix product, (b, n, m) @ (b, m, p) -> (b, n, p); no broadcasting (see ``matmul``)."""
        self._check_product(mat2, "bmm", 3)
        if self.shape[0] != mat2.shape[0] or self.shape[2] != mat2.shape[1]:
            raise ValueError(
                f"bmm: cannot multiply batches {self.shape} and {mat2.shape}: expected the second to have shape "
                f"({self.shape[0]}, {self.shape[2]}, p) (the same batch size, and rows equal to the first's columns)"
            )
        return linalg.MatMul.apply(self, mat2)

    def _check_product(self, other, op, ndim):
        kind = "matrices" if ndim == 2 else "3-d tensors (batches of matrices)"
        if not _is_tensor(other):
            raise TypeError(f"{op}: expected a Tensor as the second operand, got {type(other).__name__}")
        if self.ndim != ndim or other.ndim != ndim:
            raise ValueError(f"{op}: expected two {kind}, got shapes {self.shape} and {other.shape}")
        if self.dtype != other.dtype:
            raise TypeError(f"{op}: expected both operands to have the same dtype, got {self.dtype} and {other.dtype}")
        if self.dtype.kind not in "fc":
            raise TypeError(f"{op}: expected floating point tensors, got {self.dtype}")

    def tril(self, diagonal=0):
        """The lower triangle of each matrix (the last two dims): zeros above diagonal ``diagonal``."""
        return self._triangle(indexing.Tril, diagonal, "tril")

    def triu(self, diagonal=0):
        """The upper triangle of each matrix (the last two dims): zeros below diagonal ``diagonal``."""
        return self._triangle(indexing.Triu, diagonal, "triu")

    def _triangle(self, op, diagonal, name):
        if self.ndim < 2:
            raise ValueError(f"{name}: input must have at least 2 dimensions, got shape {self.shape}")
        return op.apply(self, diagonal=check_int(name, "diagonal", diagonal))

    # ------------------------------------------------------- copying and indexing
    def repeat(self, *sizes):
        """The tensor tiled ``sizes[d]`` times along each dim; ``sizes`` may be longer than ``ndim`` (new
        leading dims), never shorter."""
        sizes = _shape_args(sizes, "repeat")
        if len(sizes) < self.ndim:
            raise ValueError(
                f"repeat: got {len(sizes)} size(s) {sizes} for a tensor with {self.ndim} dimensions; "
                "give at least one per dimension"
            )
        if any(n < 0 for n in sizes):
            raise ValueError(f"repeat: sizes must be non-negative, got {sizes}")
        return shape_ops.Repeat.apply(self, sizes=sizes)

    def unbind(self, dim=0):
        """The slices along ``dim``, as a tuple of tensors with that dim removed."""
        if self.ndim == 0:
            raise ValueError("unbind: a 0-d tensor has no dimension to unbind")
        axis = normalize_dim(dim, self.ndim, "unbind")
        if self.shape[axis] == 0:
            return ()
        return shape_ops.Unbind.apply(self, axis=axis)

    def flip(self, *dims):
        """The elements in reverse order along each of ``dims`` (``x.flip(0)``, ``x.flip(0, 1)`` or
        ``x.flip([0, 1])``); a copy."""
        if not dims:
            raise TypeError("flip: missing dims, e.g. x.flip(0) or x.flip([0, 1])")
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        axes = normalize_dims(dims, self.ndim, "flip")
        return shape_ops.Flip.apply(self, axes=axes) if axes else ew.Clone.apply(self)

    def gather(self, dim, index):
        """``out[i][j] = self[i][index[i][j]]`` for ``dim=1`` (likewise for other dims), as ``torch.gather``:
        ``index`` is an int64 tensor with as many dims as ``self``, no longer than it in the other dims."""
        axis = normalize_dim(dim, self.ndim, "gather")
        if not _is_tensor(index):
            raise TypeError(f"gather: index must be an int64 tensor, got {type(index).__name__}")
        if index.dtype.kind not in "iu":
            raise TypeError(f"gather: index must be an int64 tensor, got {index.dtype}")
        if index.backend is not self._backend:
            raise RuntimeError(f"gather: index is on {index.device} but the tensor is on {self.device}")
        if index.ndim != self.ndim:
            raise ValueError(
                f"gather: index must have as many dimensions as the input ({self.ndim}), got {index.ndim} "
                f"(index shape {index.shape}, input shape {self.shape})"
            )
        for d, (n, limit) in enumerate(zip(index.shape, self.shape)):
            if d != axis and n > limit:
                raise ValueError(
                    f"gather: index has size {n} in dim {d} but the input only {limit} "
                    f"(index shape {index.shape}, input shape {self.shape}, dim={dim})"
                )
        if self.ndim == 0:
            return self.reshape(1).gather(0, index.reshape(1)).reshape(())
        size = self.shape[axis]
        bad = capture.out_of_range(index.array, size,
                                   f"gather: an index is out of bounds for dim {dim} with size {size}")
        if bad is not None:
            raise IndexError(
                f"gather: index {bad} is out of bounds for dim {dim} with size {size} (expected 0 <= index < {size})"
            )
        return indexing.Gather.apply(self, index.to(dtype=int64), axis=axis)

    def view_as(self, other):
        """This tensor with ``other``'s shape (same number of elements)."""
        if not _is_tensor(other):
            raise TypeError(f"view_as: expected a Tensor, got {type(other).__name__}")
        return self.view(other.shape)

    # ------------------------------------------------------- dtype shortcuts and memory layout
    def float(self):
        """A float32 copy (``self`` if it already is one), differentiable."""
        return self.to(dtype=float32)

    def double(self):
        return self.to(dtype=float64)

    def half(self):
        return self.to(dtype=float16)

    def long(self):
        return self.to(dtype=int64)

    def int(self):
        return self.to(dtype=int32)

    def bool(self):
        return self.to(dtype=bool_)

    def type_as(self, other):
        """This tensor in ``other``'s dtype."""
        return self.to(dtype=other.dtype)

    def is_contiguous(self) -> bool:
        """Whether the values lie in memory in row-major order without gaps (as a fresh tensor's do)."""
        return bool(self.array.flags.c_contiguous)

    def contiguous(self):
        """``self`` if contiguous, else a contiguous copy that stays in the graph (``.view`` never needs
        it here, but PyTorch code calls it before ``.view``)."""
        return self if self.is_contiguous() else ew.Clone.apply(self)

    def new_full(self, size, fill_value, dtype=None) -> "Tensor":
        """``fill_value`` everywhere in a tensor of ``size`` on this tensor's device, of its dtype unless given."""
        return self._new_full(tuple(size), fill_value, dtype, "new_full")

    def new_zeros(self, *size, dtype=None) -> "Tensor":
        """Zeros of ``size`` on this tensor's device, of its dtype unless ``dtype`` is given."""
        return self._new_full(size, 0, dtype, "new_zeros")

    def new_ones(self, *size, dtype=None) -> "Tensor":
        """Ones of ``size`` on this tensor's device, of its dtype unless ``dtype`` is given."""
        return self._new_full(size, 1, dtype, "new_ones")

    def _new_full(self, size, value, dtype, op):
        size = _shape_args(size, op)
        if any(n < 0 for n in size):
            raise ValueError(f"{op}: sizes must be non-negative integers, got {size}")
        dtype = self.dtype if dtype is None else as_dtype(dtype)
        return self._make(self._backend.xp.full(size, value, dtype=dtype), self._backend)

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        """A new tensor holding a copy of ``data``, on this tensor's device and of its dtype unless given;
        not part of any graph (as ``torch.Tensor.new_tensor``)."""
        backend = self._backend if device is None else get_backend(device)
        dtype = self.dtype if dtype is None else as_dtype(dtype)
        if _is_tensor(data):
            source = data._backend
            array = data.array if source is backend else backend.asarray(source.to_host(data.array))
            array = array.astype(dtype, copy=True)
        else:
            try:
                host = np.array(data)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"new_tensor: cannot make a tensor from {type(data).__name__}: {exc}") from None
            if host.dtype.kind not in "biuf":
                raise TypeError(f"new_tensor: cannot make a tensor from non-numeric data {data!r:.80}")
            array = backend.asarray(host.astype(dtype, copy=False))
        out = self._make(array, backend)
        return out.requires_grad_() if requires_grad else out
