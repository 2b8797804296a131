"""The ``Tensor``: an array on a device, plus what autograd needs to know about it.

A tensor holds ``array`` (a NumPy or CuPy array), the backend of its device,
``requires_grad``, ``grad``, and, when an op made it while the tape was
recording, its creator function. Methods follow PyTorch's names and argument
conventions; each differentiable method is one :class:`Function` from
``tinygrad_rnn.ops``.
"""
from __future__ import annotations

import weakref

import numpy as np

from . import autograd, capture
from .backends import backend_of_array, get_backend
from .checks import check_int_dim, normalize_dim, normalize_dims
from .dtypes import (
    as_dtype, bool_, default_dtype_of, float16, float32, float64, get_default_dtype, int32, int64, promote, scalar_dtype,
)
from .ops import elementwise as ew
from .ops import linalg, reduce
from .tensor_inplace import InplaceMethods
from .tensor_math import MathMethods, _floating
from .tensor_shape import ShapeMethods


class Tensor(ShapeMethods, MathMethods, InplaceMethods):
    """An n-dimensional array on a device that can record how it was computed.

    ``Tensor(data, requires_grad=False, device=None, dtype=None, *, name=None)``: Python
    floats and lists of floats take the default dtype (float32 unless
    ``set_default_dtype`` changed it), Python ints int64; NumPy arrays keep
    their dtype. The values
    are copied (``from_numpy`` shares memory instead). ``device`` is ``"cpu"``
    (the default) or ``"cuda[:N]"``. ``name`` (not in PyTorch) labels the tensor
    in ``draw_graph``: ``Tensor(w, requires_grad=True, name="W_hh")``.

    ``t.array`` is the raw NumPy/CuPy array, what ops compute on; ``t.data`` is
    PyTorch's: the same values as a tensor cut from the graph.
    """

    __slots__ = (
        "array", "_backend", "requires_grad", "grad", "_creator", "_index", "_name", "_version", "_hooks", "_view_of",
        "__weakref__",
    )
    __array_priority__ = 1000  # so ndarray OP Tensor calls Tensor's reflected operator

    def __init__(self, data, requires_grad=False, device=None, dtype=None, *, name=None):
        if isinstance(data, Tensor):
            data = data.array if device is None or get_backend(device) is data._backend else data._backend.to_host(data.array)
            source = None
        else:
            source = data
        backend = get_backend(device) if device is not None else backend_of_array(data)
        dtype = as_dtype(dtype) if dtype is not None else None
        if backend.is_array(data):  # copied, as torch.tensor does: an in-place change never reaches the source
            array = data.copy() if dtype is None or data.dtype == dtype else data.astype(dtype)
        else:
            if dtype is None and not isinstance(source, np.ndarray):
                dtype = default_dtype_of(data)
            try:
                array = backend.asarray(data, dtype=dtype)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__}: {exc}") from None
            if array.dtype.kind not in "biufc":
                raise TypeError(f"Tensor: cannot make a tensor from ragged or non-numeric data {data!r:.80}")
        if requires_grad and array.dtype.kind not in "fc":
            raise TypeError(f"Tensor: only floating point tensors can require gradients, got dtype {array.dtype}")
        self.array = array
        self._backend = backend
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._creator = None
        self._index = 0
        self._name = None
        self._version = None
        self._hooks = None
        self._view_of = None
        if name is not None:
            self.name = name

    @staticmethod
    def _make(data, backend, requires_grad=False, creator=None, index=0):
        """Wrap an array of ``backend`` in a plain Tensor without checks (the ops' fast path).

        A static method, so the tape builds outputs with the tensor in hand
        (``inputs[0]._make``) without importing this module; a Parameter's
        ``_make`` builds a plain Tensor too."""
        t = object.__new__(Tensor)
        t.array = data
        t._backend = backend
        t.requires_grad = requires_grad
        t.grad = None
        t._creator = creator
        t._index = index
        t._name = None
        t._version = None
        t._hooks = None
        t._view_of = None
        return t

    # ----------------------------------------------------------------- attributes
    # ``array`` (a slot) is the raw NumPy/CuPy array: what ops compute on, and the one way to it.

    @property
    def data(self) -> "Tensor":
        """This tensor's values as a new tensor that shares memory and is cut from the graph (as in
        PyTorch): ``p.data -= lr * p.grad`` changes ``p`` without recording anything. Assigning a
        tensor (``p.data = other``) makes ``p`` hold ``other``'s values (see :meth:`set_`). The raw
        backend array is ``.array``."""
        return Tensor._make(self.array, self._backend)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(
                f"Tensor.data: can only be assigned a Tensor, got {type(value).__name__}; "
                "wrap the values with tinygrad_rnn.tensor(...), or set the raw array with .array"
            )
        self.set_(value)
    @property
    def shape(self) -> tuple:
        return tuple(self.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def device(self) -> str:
        return self._backend.device

    @property
    def backend(self):
        """The :class:`~tinygrad_rnn.backends.Backend` of this tensor's device (read-only)."""
        return self._backend

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def is_leaf(self) -> bool:
        """True for tensors no recorded op created (parameters, inputs, detached tensors)."""
        return self._creator is None

    @property
    def grad_fn(self):
        """The function that created this tensor (None for leaves)."""
        return self._creator

    @property
    def name(self):
        """An optional name, shown by the graph renderer (e.g. ``"W_hh"``, ``"h"`` or ``"loss"``).

        It belongs to this tensor object: results of ops do not inherit it, except
        that ``detach()`` and a ``to()`` copy of a leaf keep the leaf's name (the
        same tensor to the reader). Not PyTorch's ``names`` (named dimensions).
        """
        if self._name is None and self._creator is not None and self._creator.trace.names:
            return self._creator.trace.names.get(self._index)
        return self._name

    @name.setter
    def name(self, value):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"Tensor.name: expected a str or None, got {type(value).__name__}")
        self._name = value
        if self._creator is not None:
            trace = self._creator.trace
            if trace.names is None:
                trace.names = {}
            trace.names[self._index] = value

    def size(self, dim=None):
        """The shape, or the length of dimension ``dim``."""
        return self.shape if dim is None else self.shape[normalize_dim(dim, self.ndim, "size")]

    def numel(self) -> int:
        return int(self.array.size)

    def dim(self) -> int:
        return self.array.ndim

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.array.shape[0]

    @property
    def T(self) -> "Tensor":
        """The tensor with its dimensions reversed."""
        return self.permute(*reversed(range(self.ndim)))

    # --------------------------------------------------------- host conversion
    def numpy(self) -> np.ndarray:
        """A NumPy copy on the host (detached from the graph)."""
        capture.refuse("Tensor.numpy() copies a value to the host")
        return self._backend.to_host(self.array)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.array.size != 1:
            raise ValueError(f"item: only one-element tensors can be converted, got shape {self.shape}")
        capture.refuse("Tensor.item() (or float(t), int(t), bool(t), an if on a tensor) reads a value on the host")
        return self.array.item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.array.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() or .all()")
        return bool(self.item())

    __hash__ = object.__hash__

    def __array__(self, dtype=None, copy=None):
        if self._backend.device != "cpu":
            raise TypeError(
                f"cannot convert a tensor on {self.device} to a NumPy array implicitly; call .cpu() or .numpy() first"
            )
        return self.array if dtype is None else self.array.astype(dtype)

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", precision=4, threshold=200, prefix="tensor(")
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.dtype not in (float32, int64, bool_):
            extras.append(f"dtype={self.dtype}")
        if self._creator is not None:
            extras.append(f"grad_fn=<{self._creator.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self._creator is None and self._name is not None:
            extras.append(f"name={self._name!r}")
        return f"tensor({body}{''.join(', ' + e for e in extras)})"

    # ------------------------------------------------------ devices and dtypes
    def to(self, device=None, dtype=None) -> "Tensor":
        """A copy on ``device`` and/or of ``dtype`` (differentiable); ``self`` if nothing changes."""
        if isinstance(device, (np.dtype, type)) and dtype is None:
            device, dtype = None, device
        out = self
        if dtype is not None and as_dtype(dtype) != self.dtype:
            out = ew.Cast.apply(out, dtype=as_dtype(dtype))
        if device is not None:
            target = get_backend(device)
            if target is not self._backend:
                out = ew.ToDevice.apply(out, target=target)
        if out is not self and out._creator is None and self._creator is None:
            out._name = self._name
        return out

    def astype(self, dtype, copy=True) -> "Tensor":
        """NumPy's spelling of ``.to(dtype=...)`` (differentiable), so that code written for arrays, such
        as every op's backward, also runs on tensors (which ``create_graph=True`` does)."""
        return self.to(dtype=dtype)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device=None) -> "Tensor":
        return self.to("cuda" if device is None else (f"cuda:{device}" if isinstance(device, int) else device))

    def set_(self, source) -> "Tensor":
        """Make this tensor hold ``source``'s data, device included (shared memory, as in PyTorch);
        how ``Module.to`` and ``load_state_dict`` change a Parameter in place, keeping the object."""
        if not isinstance(source, Tensor):
            raise TypeError(f"set_: source must be a Tensor, got {type(source).__name__}")
        if self.requires_grad and source.dtype.kind not in "fc":
            raise TypeError(f"set_: a tensor that requires grad cannot hold {source.dtype} data")
        self.array = source.array
        self._backend = source._backend
        return self

    # ------------------------------------------------------------------ autograd
    def detach(self) -> "Tensor":
        """The same data, cut from the graph (shares memory and the in-place version counter, as in PyTorch)."""
        out = Tensor._make(self.array, self._backend)
        if self._version is None:
            self._version = [0]
        out._version = self._version
        if self._creator is None:
            out._name = self._name
        return out

    def clone(self) -> "Tensor":
        """A copy of the data that stays in the graph."""
        return ew.Clone.apply(self)

    def requires_grad_(self, requires_grad=True) -> "Tensor":
        if self._creator is not None and not requires_grad:
            raise RuntimeError("requires_grad_: cannot turn off gradients of a non-leaf tensor; use detach()")
        if requires_grad and self.dtype.kind not in "fc":
            raise TypeError(f"requires_grad_: only floating point tensors can require gradients, got {self.dtype}")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` after ``backward()`` (as in PyTorch)."""
        if self._creator is None:
            return
        if self._creator.retained is None:
            self._creator.retained = {}
        self._creator.retained[self._index] = weakref.ref(self)

    def register_hook(self, hook):
        """Call ``hook(grad)`` with this tensor's gradient during ``backward()``; a tensor it returns
        replaces the gradient (as in PyTorch). Returns a handle whose ``remove()`` unregisters it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does not require grad")
        if not callable(hook):
            raise TypeError(f"register_hook: hook must be callable, got {type(hook).__name__}")
        backend, shape, dtype = self._backend, self.shape, self.dtype

        def on_array(grad):
            graph = isinstance(grad, Tensor)  # a create_graph backward passes Tensors
            replaced = hook(grad if graph else Tensor._make(grad, backend))
            if replaced is None:
                return None
            if not isinstance(replaced, Tensor) or replaced.shape != shape or replaced.dtype != dtype:
                got = f"{replaced.shape} {replaced.dtype}" if isinstance(replaced, Tensor) else type(replaced).__name__
                raise RuntimeError(f"register_hook: a hook must return None or a tensor of shape {shape} "
                                   f"and dtype {dtype}, got {got}")
            return replaced if graph else replaced.array

        if self._creator is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            fn = self._creator
            if fn.hooks is None:
                fn.hooks = {}
            hooks = fn.hooks.setdefault(self._index, [])
        hooks.append(on_array)
        return _HookHandle(hooks, on_array)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` on this leaf once per ``backward()``, after its whole gradient has been
        added to ``.grad`` (as in PyTorch; ``DistributedDataParallel`` averages gradients this way).
        Returns a handle whose ``remove()`` unregisters it."""
        if self._creator is not None or not self.requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: only a leaf tensor that requires grad "
                               "accumulates a gradient; use register_hook on a non-leaf tensor")
        if not callable(hook):
            raise TypeError(f"register_post_accumulate_grad_hook: hook must be callable, got {type(hook).__name__}")

        def after_accumulate(leaf):
            hook(leaf)

        after_accumulate.post_accumulate = True  # the engine calls it after accumulating, with the leaf
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(after_accumulate)
        return _HookHandle(self._hooks, after_accumulate)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None) -> None:
        """Accumulate the gradient of this tensor into the ``.grad`` of every leaf it depends on.

        As in PyTorch: ``create_graph=True`` records the backward pass, so the
        ``.grad`` it leaves can be differentiated again (``retain_graph``
        defaults to ``create_graph``); ``inputs`` limits which tensors get a ``.grad``."""
        autograd.backward(self, gradient=gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)

    # ---------------------------------------------------------------- arithmetic
    def __add__(self, other):
        return ew.Add.apply(*_operands(self, other, "add"))

    def __radd__(self, other):
        return ew.Add.apply(*_operands(other, self, "add"))

    def __sub__(self, other):
        return ew.Sub.apply(*_operands(self, other, "sub"))

    def __rsub__(self, other):
        return ew.Sub.apply(*_operands(other, self, "sub"))

    def __mul__(self, other):
        return ew.Mul.apply(*_operands(self, other, "mul"))

    def __rmul__(self, other):
        return ew.Mul.apply(*_operands(other, self, "mul"))

    def __truediv__(self, other):
        a, b = _operands(self, other, "div", true_division=True)
        return ew.Div.apply(a, b)

    def __rtruediv__(self, other):
        a, b = _operands(other, self, "div", true_division=True)
        return ew.Div.apply(a, b)

    def __pow__(self, exponent):
        if isinstance(exponent, (int, float)) and not isinstance(exponent, bool):
            base = self if self.dtype.kind in "fc" or isinstance(exponent, int) else self.float()
            return ew.PowScalar.apply(base, exponent=exponent)
        return ew.Pow.apply(*_operands(self, exponent, "pow"))

    def __rpow__(self, base):
        return ew.Pow.apply(*_operands(base, self, "pow"))

    def __neg__(self):
        return ew.Neg.apply(self)

    def __matmul__(self, other):
        return self.matmul(other)

    def __rmatmul__(self, other):
        return _as_tensor_like(other, self, "matmul").matmul(self)

    def matmul(self, other) -> "Tensor":
        """Matrix product with NumPy/PyTorch semantics (1-D, 2-D, batched)."""
        a, b = _operands(self, other, "matmul")
        if a.dtype.kind not in "fc":
            raise TypeError(f"matmul: expected floating point tensors, got {self.dtype} and {b.dtype}")
        return linalg.MatMul.apply(a, b)

    # ---------------------------------------------------------------- comparisons
    def __eq__(self, other):
        return _compare(self, other, "__eq__")

    def __ne__(self, other):
        return _compare(self, other, "__ne__")

    def __lt__(self, other):
        return _compare(self, other, "__lt__")

    def __le__(self, other):
        return _compare(self, other, "__le__")

    def __gt__(self, other):
        return _compare(self, other, "__gt__")

    def __ge__(self, other):
        return _compare(self, other, "__ge__")

    def eq(self, other):
        return self == other

    def __invert__(self):
        if self.dtype != bool_:
            raise TypeError(f"~: expected a bool tensor, got {self.dtype}")
        return Tensor._make(~self.array, self._backend)

    def __and__(self, other):
        return _logical(self, other, "__and__")

    def __or__(self, other):
        return _logical(self, other, "__or__")

    def any(self) -> "Tensor":
        return Tensor._make(self.array.any(), self._backend)

    def all(self) -> "Tensor":
        return Tensor._make(self.array.all(), self._backend)

    # ------------------------------------------------------------ unary functions
    def exp(self):
        return ew.Exp.apply(_floating(self))

    def log(self):
        return ew.Log.apply(_floating(self))

    def sqrt(self):
        return ew.Sqrt.apply(_floating(self))

    def abs(self):
        return ew.Abs.apply(self)

    def tanh(self):
        return ew.Tanh.apply(_floating(self))

    def sigmoid(self):
        return ew.Sigmoid.apply(_floating(self))

    def relu(self):
        return ew.Relu.apply(self)

    def clamp(self, min=None, max=None):
        """Clip values to [min, max]; either bound may be None."""
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        return ew.Clamp.apply(self, low=min, high=max)

    clip = clamp

    def maximum(self, other):
        return ew.Maximum.apply(*_operands(self, other, "maximum"))

    def minimum(self, other):
        return ew.Minimum.apply(*_operands(self, other, "minimum"))

    def softmax(self, dim):
        return reduce.Softmax.apply(_floating(self), axis=normalize_dim(dim, self.ndim, "softmax"))

    def log_softmax(self, dim):
        return reduce.LogSoftmax.apply(_floating(self), axis=normalize_dim(dim, self.ndim, "log_softmax"))

    def masked_fill(self, mask, value):
        """Put ``value`` where the boolean ``mask`` is True (differentiable in ``self``)."""
        if not isinstance(mask, Tensor):
            mask = Tensor(np.asarray(mask), device=self.device)
        if mask.dtype != bool_:
            raise TypeError(f"where: condition must be a bool tensor, got {mask.dtype}")
        value, x = _operands(value, self, "masked_fill")
        return ew.Where.apply(mask, value, x)

def _as_tensor_like(value, like: Tensor, op) -> Tensor:
    """A Python scalar or host array as a constant tensor on ``like``'s device."""
    if isinstance(value, Tensor):
        return value
    backend = like._backend
    if isinstance(value, (bool, int, float, np.number, np.bool_)):
        value = value.item() if isinstance(value, (np.number, np.bool_)) else value
        # A NumPy scalar, not a device array: every backend's math takes it without a host-to-device copy.
        return Tensor._make(scalar_dtype(value, like.dtype).type(value), backend)
    if isinstance(value, (list, tuple, np.ndarray)):
        if backend.device != "cpu" and isinstance(value, np.ndarray):
            raise RuntimeError(
                f"{op}: got a NumPy array next to a tensor on {backend.device}; wrap it with Tensor(..., device=...) first"
            )
        return Tensor(value, device=backend.device)
    raise TypeError(f"{op}: unsupported operand of type {type(value).__name__} (expected a Tensor or a number)")


def _operands(a, b, op, true_division=False):
    """Make both operands tensors of one dtype (PyTorch's promotion) on the first tensor's device."""
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.array.dtype == b.array.dtype:
        if true_division and a.array.dtype.kind not in "fc":
            return a.to(dtype=get_default_dtype()), b.to(dtype=get_default_dtype())
        return a, b
    if not isinstance(a, Tensor):
        a = _as_tensor_like(a, b, op)
    elif not isinstance(b, Tensor):
        b = _as_tensor_like(b, a, op)
    dtype = promote(a.dtype, b.dtype)
    if true_division and dtype.kind not in "fc":
        dtype = get_default_dtype()
    if a.dtype != dtype:
        a = a.to(dtype=dtype)
    if b.dtype != dtype:
        b = b.to(dtype=dtype)
    return a, b


def _compare(a, b, method):
    a, b = _operands(a, b, method.strip("_"))
    if a._backend is not b._backend:
        raise RuntimeError(f"{method.strip('_')}: expected both tensors on the same device, got {a.device} and {b.device}")
    try:
        out = getattr(a.array, method)(b.array)
    except ValueError:
        raise ValueError(f"{method.strip('_')}: cannot broadcast shapes {a.shape} and {b.shape}") from None
    return Tensor._make(out, a._backend)


def _logical(a, b, method):
    b = _as_tensor_like(b, a, method.strip("_"))
    if a.dtype != bool_ or b.dtype != bool_:
        raise TypeError(f"{method.strip('_')}: expected bool tensors, got {a.dtype} and {b.dtype}")
    return Tensor._make(getattr(a.array, method)(b.array), a._backend)


autograd.graph_mode.register(tensor_type=Tensor)


class _HookHandle:
    """What ``register_hook`` returns: ``remove()`` takes the hook out again."""

    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)
