"""``Module`` and ``Parameter``: the containers layers are built from, with PyTorch's API.

A module registers the parameters and sub-modules assigned to its
attributes, so ``named_parameters()`` gives PyTorch's dotted names
(``encoder.weight_ih_l0``) and ``state_dict()`` / ``load_state_dict()`` move
weights to and from PyTorch by name. ``__call__`` runs ``forward`` inside a
scope naming the module, which the graph renderer uses for its clusters, between
the forward pre-hooks and forward hooks registered on it (PyTorch's semantics).
``ModuleDict`` and ``ParameterList`` are in ``containers.py``.
"""
from __future__ import annotations

import copy
import itertools
import weakref
from collections import OrderedDict

import numpy as np

from .. import autograd
from ..tensor import Tensor, as_dtype


class Parameter(Tensor):
    """A leaf tensor that a module owns and an optimizer updates (``requires_grad=True``).

    ``name`` (not in PyTorch) labels it in ``draw_graph`` in place of its dotted
    ``named_parameters()`` name; ``Parameter(t)`` keeps the name of a leaf ``t``.
    """

    __slots__ = ()

    def __init__(self, data, requires_grad=True, *, name=None):
        if isinstance(data, Tensor):  # shares the tensor's memory, as torch.nn.Parameter(t) does
            if name is None and data.is_leaf:
                name = data.name
            super().__init__(np.zeros((), dtype=data.dtype), device=data.device, name=name)
            self.set_(data.detach())
            self.requires_grad_(requires_grad)
        else:
            super().__init__(data, requires_grad=requires_grad, name=name)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer: parameters, buffers, sub-modules, train/eval mode, devices, state
    dicts, forward hooks, ``apply`` and ``copy.deepcopy``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())  # buffer names left out of state_dict()
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())  # handle id -> (hook, with_kwargs)
        object.__setattr__(self, "_forward_hooks", OrderedDict())  # handle id -> (hook, with_kwargs, always_call)
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------- registration
    def __setattr__(self, name, value):
        """PyTorch's rules: a Parameter or Module is registered under ``name``; assigning to a name
        already registered keeps it registered (None is allowed: an absent bias, say), and assigning
        a value of the wrong kind to it is an error; anything else is a plain attribute."""
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if isinstance(value, Parameter):
            self._unregister(name, keep=self._parameters)
            self._parameters[name] = value
        elif name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign a {type(value).__name__} as parameter {name!r} "
                    "(a Parameter or None expected; wrap a tensor with nn.Parameter(...))"
                )
            self._parameters[name] = None
        elif isinstance(value, Module):
            self._unregister(name, keep=self._modules)
            self._modules[name] = value
        elif name in self._modules:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign a {type(value).__name__} as child module {name!r} "
                    "(a Module or None expected)"
                )
            self._modules[name] = None
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"{type(self).__name__}: cannot assign a {type(value).__name__} to buffer {name!r} "
                    "(a Tensor or None expected)"
                )
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._unregister(name)
        object.__delattr__(self, name)

    def _unregister(self, name, keep=None):
        """Forget ``name`` in every table but ``keep`` (a re-registered name keeps its place, as in PyTorch)."""
        for table in (self._parameters, self._buffers, self._modules):
            if table is not keep:
                table.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def _check_new_name(self, name, kind, table):
        """PyTorch's checks on the name of a new parameter, buffer or sub-module."""
        method = {"parameter": "register_parameter", "buffer": "register_buffer", "module": "add_module"}[kind]
        if not isinstance(name, str):
            raise TypeError(f"{method}: the {kind} name must be a string, got {type(name).__name__}")
        if not name:
            raise KeyError(f"{method}: the {kind} name cannot be the empty string")
        if "." in name:
            raise KeyError(f"{method}: the {kind} name cannot contain '.', got {name!r}")
        if name not in table and hasattr(self, name):
            raise KeyError(f"{method}: attribute {name!r} already exists on {type(self).__name__}")

    def register_parameter(self, name, param):
        """Register ``param`` (or None, for an absent optional parameter such as a bias)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}")
        self._check_new_name(name, "parameter", self._parameters)
        self._unregister(name, keep=self._parameters)
        object.__setattr__(self, name, param)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Register a tensor that moves with the module (``.to``) but is not trained: a running
        statistic, a positional table. ``persistent=False`` leaves it out of ``state_dict()``.
        ``tensor`` may be None (an absent buffer, skipped by ``buffers()``)."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        self._check_new_name(name, "buffer", self._buffers)
        self._unregister(name, keep=self._buffers)
        object.__setattr__(self, name, tensor)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        """Register ``module`` (or None) as the sub-module ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(
                f"{type(self).__name__}.add_module: {name!r} must be a Module or None, got {type(module).__name__}"
            )
        self._check_new_name(name, "module", self._modules)
        self._unregister(name, keep=self._modules)
        object.__setattr__(self, name, module)
        self._modules[name] = module

    register_module = add_module

    # -------------------------------------------------------------------- calls
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks or self._forward_hooks:
            return self._call_with_hooks(args, kwargs)
        with autograd.scope(module=self):
            return self.forward(*args, **kwargs)

    def _call_with_hooks(self, args, kwargs):
        """``forward`` between the hooks, as PyTorch runs them: each pre-hook may replace the inputs,
        each forward hook the output; ``always_call`` hooks also run when ``forward`` raises."""
        for hook, with_kwargs in list(self._forward_pre_hooks.values()):
            if with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(
                            f"{type(self).__name__}: a forward pre-hook registered with with_kwargs=True must "
                            f"return None or a tuple (new_args, new_kwargs), got {type(result).__name__}"
                        )
                    args, kwargs = result
                    args = args if isinstance(args, tuple) else (args,)
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        called = set()
        try:
            with autograd.scope(module=self):
                output = self.forward(*args, **kwargs)
            for key, (hook, with_kwargs, _) in list(self._forward_hooks.items()):
                called.add(key)
                result = hook(self, args, kwargs, output) if with_kwargs else hook(self, args, output)
                if result is not None:
                    output = result
        except Exception:
            for key, (hook, with_kwargs, always_call) in list(self._forward_hooks.items()):
                if always_call and key not in called:
                    try:
                        hook(self, args, kwargs, None) if with_kwargs else hook(self, args, None)
                    except Exception:  # the first error is the one to report
                        pass
            raise
        return output

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """Call ``hook(module, args)`` before every ``forward``; a tuple (or a single value) it returns
        replaces the positional inputs. With ``with_kwargs=True`` it is ``hook(module, args, kwargs)``
        and may return ``(args, kwargs)``. Returns a handle: ``handle.remove()`` unregisters it."""
        return self._add_hook("register_forward_pre_hook", self._forward_pre_hooks, hook, prepend,
                              (hook, bool(with_kwargs)))

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """Call ``hook(module, args, output)`` after every ``forward`` (``hook(module, args, kwargs,
        output)`` with ``with_kwargs=True``); a value it returns replaces the output. ``always_call``
        also calls it (with output None) when ``forward`` raises. Returns a handle with ``remove()``."""
        return self._add_hook("register_forward_hook", self._forward_hooks, hook, prepend,
                              (hook, bool(with_kwargs), bool(always_call)))

    def _add_hook(self, method, table, hook, prepend, entry):
        if not callable(hook):
            raise TypeError(f"{method}: hook must be callable, got {type(hook).__name__}")
        handle = RemovableHandle(table)
        table[handle.id] = entry
        if prepend:
            table.move_to_end(handle.id, last=False)
        return handle

    # ------------------------------------------------------ apply, get_submodule
    def apply(self, fn):
        """Call ``fn`` on every sub-module (children first, depth first) and then on this module, e.g.
        to initialise weights: ``model.apply(init_weights)``. Returns this module."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def get_submodule(self, target):
        """The sub-module at the dotted path ``target`` (``"encoder.layers.0"``); ``""`` is this module."""
        if not isinstance(target, str):
            raise TypeError(f"get_submodule: target must be a dotted string such as 'encoder.0', got {target!r}")
        module = self
        if target == "":
            return module
        walked = []
        for item in target.split("."):
            if not hasattr(module, item):
                where = f" (at {'.'.join(walked)!r})" if walked else ""
                raise AttributeError(
                    f"get_submodule({target!r}): {type(module).__name__}{where} has no attribute {item!r}"
                )
            module = getattr(module, item)
            walked.append(item)
            if not isinstance(module, Module):
                raise AttributeError(
                    f"get_submodule({target!r}): {'.'.join(walked)!r} is a {type(module).__name__}, not a Module"
                )
        return module

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

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, buffer) pairs, persistent or not, as PyTorch names them (None buffers skipped)."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, buffer in module._buffers.items():
                if buffer is None or (remove_duplicate and id(buffer) in seen):
                    continue
                seen.add(id(buffer))
                yield (f"{module_name}.{name}" if module_name else name), buffer

    def buffers(self, recurse=True):
        """Every buffer of this module (and, with ``recurse``, of its sub-modules)."""
        return (b for _, b in self.named_buffers(recurse=recurse))

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
        """Ordered name → tensor for every parameter and persistent buffer, in PyTorch's order and with its
        names: a module's own parameters, then its buffers, then each child's. A tensor shared by two
        modules (tied weights, ``head.weight = embedding.weight``) is listed under both names, as in PyTorch."""
        state = OrderedDict()
        stack = [("", self)]
        while stack:
            prefix, module = stack.pop()
            for name, param in module._parameters.items():
                if param is not None:
                    state[prefix + name] = param
            skipped = getattr(module, "_non_persistent_buffers", ())
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in skipped:
                    state[prefix + name] = buffer
            children = [(f"{prefix}{name}.", child) for name, child in module._modules.items() if child is not None]
            stack.extend(reversed(children))
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
        with autograd.no_grad():
            for key, array in values.items():
                own[key].copy_(array)  # into the tensor's own memory: nothing stays shared with the source
        return {"missing_keys": missing, "unexpected_keys": unexpected}

    # -------------------------------------------------------------------- copies
    def __deepcopy__(self, memo):
        """``copy.deepcopy(module)``: new parameters and buffers with the same values (on the same
        device), sub-modules copied too, tied tensors staying tied. The device backends are shared,
        not copied."""
        for module in self.modules():
            tables = (module._parameters.values(), module._buffers.values(), module.__dict__.values())
            for value in itertools.chain(*tables):
                if isinstance(value, Tensor):
                    memo.setdefault(id(value.backend), value.backend)
                    if value.grad is not None:
                        memo.setdefault(id(value.grad.backend), value.grad.backend)
        new = object.__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            object.__setattr__(new, key, copy.deepcopy(value, memo))
        return new

    # -------------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class RemovableHandle:
    """What ``register_forward_hook`` and ``register_forward_pre_hook`` return: ``remove()`` takes the
    hook out (removing twice is harmless); also a context manager that removes it on exit."""

    _ids = itertools.count()

    def __init__(self, table):
        self.id = next(RemovableHandle._ids)
        self._table = weakref.ref(table)

    def remove(self):
        table = self._table()
        if table is not None:
            table.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


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
