"""A backend whose "arrays" are Tensors: what a ``create_graph=True`` backward computes with.

The ops' backward methods call ``self.xp.exp(y)``, ``self.xp.where(m, g, 0)``,
``g.sum(axis=..., keepdims=True)`` and the like. On a first-order backward
``self.xp`` is NumPy or CuPy; on a ``create_graph`` backward it is the
:class:`TensorNumpy` namespace below, whose functions have NumPy's names and
arguments and are made of Tensor ops, so the backward is recorded and can be
differentiated again (``autograd/graph_mode.py`` explains the rest).

A NumPy function that is not here raises instead of quietly turning a
Tensor into a constant array: a silent constant would make the second
derivative wrong.
"""
from __future__ import annotations

from . import functions
from .autograd import graph_mode
from .tensor import Tensor


class TensorNumpy:
    """NumPy's function names over Tensors of one backend: arrays and numbers become constants."""

    def __init__(self, backend):
        self._backend = backend
        self._xp = backend.xp

    def __getattr__(self, name):
        value = getattr(self._xp, name)
        if callable(value) and not isinstance(value, type):
            raise AttributeError(f"create_graph backward: xp.{name} has no Tensor version in tinygrad_rnn.graph_backend")
        return value  # constants and dtypes: xp.nan, xp.float64

    def tensor(self, x):
        """``x`` as a Tensor: a Tensor as it is, an array or a number as a constant on this backend."""
        if isinstance(x, Tensor):
            return x
        return Tensor._make(self._backend.asarray(x) if not self._backend.is_array(x) else x, self._backend)

    # constants
    def zeros(self, shape, dtype=float):
        return Tensor._make(self._xp.zeros(shape, dtype=dtype), self._backend)

    empty = zeros

    def ones(self, shape, dtype=float):
        return Tensor._make(self._xp.ones(shape, dtype=dtype), self._backend)

    def zeros_like(self, x, dtype=None):
        return self.zeros(tuple(x.shape), dtype=dtype or x.dtype)

    def ones_like(self, x, dtype=None):
        return self.ones(tuple(x.shape), dtype=dtype or x.dtype)

    def full(self, shape, value, dtype=None):
        return Tensor._make(self._xp.full(shape, value, dtype=dtype), self._backend)

    def arange(self, *args, **kwargs):
        return Tensor._make(self._xp.arange(*args, **kwargs), self._backend)

    def isnan(self, x):
        return Tensor._make(self._xp.isnan(self.tensor(x).array), self._backend)

    def isinf(self, x):
        return Tensor._make(self._xp.isinf(self.tensor(x).array), self._backend)

    def isfinite(self, x):
        return Tensor._make(self._xp.isfinite(self.tensor(x).array), self._backend)

    # differentiable
    def exp(self, x):
        return self.tensor(x).exp()

    def log(self, x):
        return self.tensor(x).log()

    def log1p(self, x):
        return self.tensor(x).log1p()

    def sqrt(self, x):
        return self.tensor(x).sqrt()

    def sin(self, x):
        return self.tensor(x).sin()

    def cos(self, x):
        return self.tensor(x).cos()

    def tanh(self, x):
        return self.tensor(x).tanh()

    def abs(self, x):
        return self.tensor(x).abs()

    def sign(self, x):
        return self.tensor(x).sign()

    def where(self, condition, a, b):
        return functions.where(self.tensor(condition), self._operand(a, b), self._operand(b, a))

    def maximum(self, a, b):
        return functions.maximum(self._operand(a, b), self._operand(b, a))

    def minimum(self, a, b):
        return functions.minimum(self._operand(a, b), self._operand(b, a))

    def _operand(self, x, other):
        """``x`` as a Tensor, or left a number when ``other`` is a Tensor (the op promotes it)."""
        if isinstance(x, (int, float)) and isinstance(other, Tensor):
            return x
        return self.tensor(x)

    def matmul(self, a, b):
        return self.tensor(a) @ self.tensor(b)

    def einsum(self, equation, *operands, optimize=None):
        return functions.einsum(equation, *[self.tensor(x) for x in operands])

    def sum(self, x, axis=None, keepdims=False):
        return self.tensor(x).sum(axis=axis, keepdims=keepdims)

    def mean(self, x, axis=None, keepdims=False):
        return self.tensor(x).mean(axis=axis, keepdims=keepdims)

    def cumsum(self, x, axis):
        return self.tensor(x).cumsum(axis)

    def astype(self, x, dtype):
        return self.tensor(x).to(dtype=dtype)

    # shapes
    def reshape(self, x, shape):
        return self.tensor(x).reshape(shape)

    def broadcast_to(self, x, shape):
        return self.tensor(x).expand(*shape)

    def expand_dims(self, x, axis):
        return self.tensor(x).unsqueeze(axis)

    def transpose(self, x, axes=None):
        x = self.tensor(x)
        return x.permute(*(axes if axes is not None else reversed(range(x.ndim))))

    def swapaxes(self, x, a, b):
        return self.tensor(x).transpose(a, b)

    def flip(self, x, axis):
        return self.tensor(x).flip(axis)

    def stack(self, xs, axis=0):
        return functions.stack([self.tensor(x) for x in xs], dim=axis)

    def concatenate(self, xs, axis=0):
        return functions.cat([self.tensor(x) for x in xs], dim=axis)


class GraphBackend:
    """A backend wrapper for ``create_graph`` backwards: ``xp`` is :class:`TensorNumpy`; the rest is
    the wrapped backend's (device, dtypes, gate kernels for ops that build their own graph)."""

    def __init__(self, backend):
        self.base = backend
        self.xp = TensorNumpy(backend)

    def __getattr__(self, name):
        return getattr(self.base, name)

    def is_array(self, obj) -> bool:
        return isinstance(obj, Tensor)

    def scatter_add(self, target, index, values):
        raise NotImplementedError("create_graph backward: scatter_add works on arrays; the op needs a graph_backward")


_CACHE = {}


def graph_backend(backend) -> GraphBackend:
    """The :class:`GraphBackend` of ``backend`` (one per backend, made on first use)."""
    wrapped = _CACHE.get(id(backend))
    if wrapped is None or wrapped.base is not backend:
        wrapped = _CACHE[id(backend)] = GraphBackend(backend)
    return wrapped


graph_mode.register(graph_backend=graph_backend)
