"""``Module`` and ``Parameter``: the containers layers are built from, with PyTorch's API.

A module registers the parameters and sub-modules assigned to its
attributes, so ``named_parameters()`` gives PyTorch's dotted names
(``encoder.weight_ih_l0``) and ``state_dict()`` / ``load_state_dict()`` move
weights to and from PyTorch by name. ``__call__`` runs ``forward`` inside a
scope naming the module, which the graph renderer uses for its clusters.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import autograd
from ..tensor import Tensor, as_dtype


class Parameter(Tensor):
    """A leaf tensor that a module owns and an optimizer updates (``requires_grad=True``)."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            super().__init__(data.array, requires_grad=requires_grad, device=data.device)
        else:
            super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer: parameters, sub-modules, train/eval mode, devices, state dicts."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_parameter(self, name, param):
        """Register ``param`` (or None, for an absent optional parameter such as a bias)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}")
        object.__setattr__(self, name, param)
        self._parameters[name] = param

    def register_buffer(self, name, tensor):
        """Register a tensor that is saved in the state dict but not trained (e.g. a positional table)."""
        object.__setattr__(self, name, tensor)
        self._buffers[name] = tensor

    def add_module(self, name, module):
        """Register ``module`` (or None) as the sub-module ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(
                f"{type(self).__name__}.add_module: {name!r} must be a Module or None, got {type(module).__name__}"
            )
        setattr(self, name, module)

    # -------------------------------------------------------------------- calls
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        with autograd.scope(module=self):
            return self.forward(*args, **kwargs)

    # ---------------------------------------------------------------- traversal
    def children(self):
        return iter(self._modules.values())

    def named_children(self):
        return iter(self._modules.items())

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every descendant, depth first, no recursion."""
        stack = [(prefix, self)]
        seen = set()
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, parameter) pairs in registration order, as PyTorch names them."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self):
        for module_name, module in self.named_modules():
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buffer

    # ------------------------------------------------------------------- modes
    def train(self, mode=True):
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.array[...] = 0

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    # --------------------------------------------------------- devices, dtypes
    def to(self, device=None, dtype=None):
        """Move parameters and buffers to ``device`` and/or cast floating ones to ``dtype``, in place."""
        if isinstance(device, (np.dtype, type)) and dtype is None:
            device, dtype = None, device
        dtype = as_dtype(dtype) if dtype is not None else None
        for module in self.modules():
            for table in (module._parameters, module._buffers):
                for name, t in table.items():
                    if t is None:
                        continue
                    with autograd.no_grad():
                        data = t.detach()
                        if dtype is not None and data.dtype.kind == "f":
                            data = data.to(dtype=dtype)
                        if device is not None:
                            data = data.to(device)
                    t.set_(data)
                    if t.grad is not None:
                        t.grad = None
        return self

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device="cuda"):
        return self.to(device)

    # ------------------------------------------------------------- state dicts
    def state_dict(self):
        """Ordered name → tensor for every parameter and buffer (PyTorch's names)."""
        state = OrderedDict(self.named_parameters())
        state.update(self.named_buffers())
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy values in by name. Accepts Tensors, NumPy arrays or anything ``numpy.asarray`` takes
        (a CPU torch tensor, say). Errors name missing/unexpected keys and mismatched shapes."""
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(
                f"load_state_dict for {type(self).__name__}: expected a dict of name -> tensor "
                f"(e.g. from state_dict() or tinygrad_rnn.load), got {type(state_dict).__name__}"
            )
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict for {type(self).__name__}: missing keys {missing}, unexpected keys {unexpected}"
            )
        values, mismatches = {}, []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            array = value.numpy() if isinstance(value, Tensor) else _to_numpy(value, key)
            if tuple(array.shape) != target.shape:
                mismatches.append(f"{key}: expected shape {target.shape}, got {tuple(array.shape)}")
            values[key] = array
        if mismatches:
            raise ValueError(f"load_state_dict for {type(self).__name__}: size mismatch for " + "; ".join(mismatches))
        for key, array in values.items():
            target = own[key]
            target.set_(Tensor(array.astype(target.dtype, copy=False), device=target.device))
        return {"missing_keys": missing, "unexpected_keys": unexpected}

    # -------------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


def _to_numpy(value, key):
    if hasattr(value, "detach") and hasattr(value, "cpu") and not isinstance(value, Tensor):
        value = value.detach().cpu()
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise TypeError(f"load_state_dict: cannot convert {key!r} ({type(value).__name__}) to an array: {exc}") from None
    if array.dtype.kind not in "biufc":
        raise TypeError(f"load_state_dict: {key!r} is a {type(value).__name__}, not an array of numbers")
    return array


class _ModuleSequence(Module):
    """Indexing, ``len`` and iteration over the registered sub-modules, in order."""

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(_ModuleSequence):
    """Modules applied one after the other; named ``0``, ``1``, ... as in PyTorch."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class ModuleList(_ModuleSequence):
    """A list of modules whose parameters are registered (``0``, ``1``, ... names)."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self
