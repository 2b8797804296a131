"""The ``Optimizer`` base class: parameter groups, per-parameter state and state dicts, as in PyTorch.

A subclass gives its defaults to ``__init__`` and implements
``_init_state(p, state, group)`` (allocate its buffers the first time ``p``
has a gradient) and ``_update(p, grad, state, group)`` (change ``p.array`` in
place from the raw gradient array). Updates work on raw NumPy/CuPy arrays
through ``p.backend.xp``, so they record nothing on the tape.
"""
from __future__ import annotations

import copy
import inspect

import numpy as np

from .. import capture
from ..autograd import enable_grad, no_grad
from ..tensor import Tensor


class Optimizer:
    """Base class of the optimizers.

    ``params`` is an iterable of Parameters, or of dicts ``{"params": [...], **options}``
    whose options override the defaults for that group (e.g. a smaller ``lr``).
    ``state[p]`` holds each parameter's buffers (Tensors on ``p``'s device).
    """

    def __init__(self, params, defaults):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(
                f"{name}: params must be an iterable of Tensors or of dicts, got a single Tensor; wrap it in a list"
            )
        if callable(getattr(params, "parameters", None)) and not isinstance(params, (list, tuple)):
            raise TypeError(
                f"{name}: params must be an iterable of Tensors, got a {type(params).__name__}; pass model.parameters()"
            )
        try:
            groups = list(params)
        except TypeError:
            raise TypeError(
                f"{name}: params must be an iterable of Tensors or of dicts, got {type(params).__name__}"
            ) from None
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a group of parameters with its own options (missing options take the defaults)."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(
                f"{name}: a parameter group must be a dict with a 'params' entry, got {type(param_group).__name__}"
            )
        if "params" not in param_group:
            raise ValueError(f"{name}: a parameter group needs a 'params' entry, got keys {sorted(param_group)}")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameter {i} of a group is a {type(p).__name__}, expected a Tensor")
            if not p.is_leaf:
                raise ValueError(f"{name}: cannot optimize a non-leaf tensor (parameter {i} of a group)")
            if p.dtype.kind != "f":
                raise TypeError(
                    f"{name}: parameter {i} of a group has dtype {p.dtype}; only floating point tensors can be optimized"
                )
            if id(p) in seen:
                raise ValueError(f"{name}: a parameter appears more than once in the parameter groups")
            seen.add(id(p))
        group = dict(param_group)
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Forget the gradients: set ``.grad`` to None (default) or fill it with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.array[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient; ``closure`` (optional) recomputes and returns the loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        capture.note_optimizer(self)
        with no_grad():
            self._step_all()
        self._opt_called = True  # a learning-rate scheduler checks that it is stepped after the optimizer
        return loss

    def _step_all(self):
        # Overflow to inf (e.g. a float16 gradient squared) is not an error here, as in PyTorch:
        # silence NumPy's floating-point warnings (np.errstate does not affect CuPy arrays).
        with np.errstate(all="ignore"):
            self._update_all()

    def _update_all(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.device != p.device or p.grad.shape != p.shape:
                    raise RuntimeError(
                        f"{type(self).__name__}.step: a gradient of shape {p.grad.shape} on {p.grad.device} does not "
                        f"match its parameter of shape {p.shape} on {p.device}"
                    )
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {}
                    self._init_state(p, state, group)
                self._update(p, p.grad.array, state, group)
                if p._version is not None:  # an in-place change, as PyTorch counts it: a graph that saved p
                    p._version[0] += 1      # before this step now refuses to backpropagate through it

    def _init_state(self, p, state, group):
        raise NotImplementedError

    def _update(self, p, grad, state, group):
        raise NotImplementedError

    def _state_keys(self, group):
        """``(required, optional)``: the sets of state names a parameter of ``group`` must and may have
        (checked by :meth:`load_state_dict`); None when a subclass does not say."""
        return None

    @staticmethod
    def _buffer(p, fill=0.0):
        """A state buffer shaped like ``p``, on its device and of its dtype."""
        return p.new_full(p.shape, fill)

    # ------------------------------------------------------------- state dicts
    def state_dict(self) -> dict:
        """``{"state": {index: {name: value}}, "param_groups": [{options..., "params": [index, ...]}]}``.

        Parameters are numbered in group order, as in PyTorch. Buffers are the
        live state Tensors (save the dict with ``tinygrad_rnn.save``).
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index[id(p)] = len(index)
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a dict from :meth:`state_dict` (or ``tinygrad_rnn.load``): buffers are copied onto each
        parameter's device and dtype; group options replace the current ones. A dict from another kind of
        optimizer (other options or other state), or for other parameter groups, is refused."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups' entries")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not all(
            isinstance(g, dict) and isinstance(g.get("params"), (list, tuple)) for g in saved_groups
        ):
            raise ValueError(f"{name}.load_state_dict: 'param_groups' must be a list of dicts with a 'params' list")
        if not isinstance(saved_state, dict) or not all(isinstance(e, dict) for e in saved_state.values()):
            raise ValueError(f"{name}.load_state_dict: 'state' must map parameter indices to dicts of state")
        for g, saved in enumerate(saved_groups):
            self._check_options(g, saved)
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the state dict has {len(saved_groups)} parameter group(s), "
                f"this optimizer has {len(self.param_groups)}"
            )
        by_index = {}
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: parameter group {g} has {len(saved['params'])} parameter(s) in the "
                    f"state dict but {len(group['params'])} in this optimizer"
                )
            options = {**group, **{k: v for k, v in saved.items() if k != "params"}}
            for i, p in zip(saved["params"], group["params"]):
                by_index[int(i)] = (p, options)
        new_state = {}
        for key, entries in saved_state.items():
            index = int(key)
            if index not in by_index:
                raise ValueError(f"{name}.load_state_dict: state for parameter {index}, which no group lists")
            p, options = by_index[index]
            keys = self._state_keys(options)
            if keys is not None:
                required, allowed = keys
                if not required <= set(entries) <= required | allowed:
                    raise ValueError(
                        f"{name}.load_state_dict: the state of parameter {index} has entries {sorted(entries)}, but "
                        f"{name} with these options keeps {sorted(required | allowed)}; the state dict comes from "
                        "another kind of optimizer or from other options"
                    )
            new_state[p] = {k: _state_value(v, p, k, index, name) for k, v in entries.items()}
        for group, saved in zip(self.param_groups, saved_groups):
            group.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
        self.state = new_state

    def _check_options(self, g, saved):
        """Refuse a saved parameter group that lacks options of this optimizer, naming the optimizer
        kind(s) whose options it has."""
        name = type(self).__name__
        missing = sorted(k for k in self.defaults if k not in saved)
        if not missing:
            return
        options = sorted(k for k in saved if k != "params")
        kinds = [kind.__name__ for kind in _optimizer_kinds() if set() < _option_names(kind) <= set(options)]
        origin = f"from {' or '.join(kinds)}, not {name}" if kinds else "from another kind of optimizer"
        raise ValueError(
            f"{name}.load_state_dict: the state dict comes {origin}: its parameter group {g} has options "
            f"{options}, but {name} needs {sorted(self.defaults)} (missing {missing}); load it into the same kind "
            f"of optimizer, or start {name} afresh"
        )

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {group[k]}" for k in sorted(group) if k != "params")
        return "\n".join(lines) + "\n)"


def _optimizer_kinds() -> list:
    """Every subclass of Optimizer defined so far (built-in and user-defined), parents first."""
    kinds, todo = [], list(Optimizer.__subclasses__())
    while todo:
        kind = todo.pop(0)
        if kind not in kinds:
            kinds.append(kind)
            todo.extend(kind.__subclasses__())
    return kinds


def _option_names(kind) -> set:
    """The option names an optimizer class takes (its constructor's keywords but ``params``); an
    empty set when the constructor takes ``**kwargs`` (nothing to compare)."""
    try:
        parameters = inspect.signature(kind.__init__).parameters.values()
    except (TypeError, ValueError):
        return set()
    if any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in parameters):
        return set()
    return {p.name for p in parameters} - {"self", "params"}


def _host_array(value):
    """A NumPy array for Tensors, NumPy arrays and torch tensors; None for plain values."""
    if isinstance(value, Tensor):
        return value.numpy()
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value)
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return np.asarray(value.detach().cpu())
    return None


def _state_value(value, p, key, index, optimizer):
    array = _host_array(value)
    if array is None:
        return copy.deepcopy(value)
    if key == "step":
        return int(array.item())
    if array.shape != p.shape:
        raise ValueError(
            f"{optimizer}.load_state_dict: state {key!r} of parameter {index} has shape {array.shape}, "
            f"but the parameter has shape {p.shape}"
        )
    if array.dtype.kind == "f":
        array = array.astype(p.dtype)
    return Tensor(array.copy(), device=p.device)


def check_hyperparameter(optimizer, name, value, low=0.0, high=None):
    """Raise a ValueError naming ``optimizer`` unless ``low <= value`` (and ``value < high`` when given)."""
    number = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    if not number or value < low or (high is not None and value >= high):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"{optimizer}: invalid {name} {value!r} (expected a number {bound})")


__all__ = ["Optimizer"]
