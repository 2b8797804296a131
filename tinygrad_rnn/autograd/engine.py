"""The backward walk: ``backward()`` into the leaves' ``.grad``, and ``grad()``, which returns gradients.

The walk runs the recorded functions from the newest to the oldest with a
heap keyed on their creation number, so a graph of any depth (an RNN
unrolled over 10,000 steps) is walked without recursion. It sums the
gradients of each output before calling its creator's backward, checks each
returned gradient's shape and dtype against the input, and releases what
each function saved once used unless ``retain_graph`` is set.

With ``create_graph=True`` the same backward methods run on Tensors instead
of arrays (``graph_mode.py`` hands them a NumPy-like namespace over Tensors),
so the backward pass records its own graph and a gradient can be
differentiated again, to any order.
"""
from __future__ import annotations

import heapq

from . import graph_mode
from ..recording import RECORDING
from .function import STATE, check_finite


class GraphReleasedError(RuntimeError):
    """Raised by a second ``backward()`` through a graph whose saved arrays were freed."""


def backward(root, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Backpropagate from ``root``: accumulate d(root)/d(leaf) into every leaf's ``.grad``.

    ``gradient`` (a Tensor, an array of ``root``'s device, or host data)
    seeds the walk; it may be omitted for a one-element ``root``.
    ``retain_graph`` (default: ``create_graph``) keeps the saved arrays for
    another backward; ``create_graph`` records the backward pass itself, so
    the ``.grad`` it leaves can be differentiated again; ``inputs`` limits
    the accumulation to these tensors (leaves or not), as in PyTorch.
    ``Tensor.backward`` is the usual way in.
    """
    if not root.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no creator; "
            "set requires_grad=True on a leaf it depends on (and do not run it under no_grad())"
        )
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        targets = _as_tensor_list(inputs, "backward", "inputs")
        found = _grad_walk([root], [gradient], targets, retain_graph, create_graph, "backward")
        for tensor, g in zip(targets, found):
            if g is not None:
                _accumulate_leaf(tensor, g, None, create_graph)
        return
    seed = _seed(root, gradient, create_graph, "backward")
    if root._creator is None:
        _accumulate_leaf(root, seed, None, create_graph)
        return
    _walk([(root, seed)], retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """The gradients of ``outputs`` with respect to ``inputs``, returned as a tuple (PyTorch's
    ``torch.autograd.grad``); no ``.grad`` is touched.

    ``outputs`` and ``inputs`` are tensors or sequences of them; ``grad_outputs``
    weights each output (required for outputs of more than one element).
    With ``create_graph=True`` the returned gradients carry a graph and can be
    differentiated again. An input the outputs do not depend on raises unless
    ``allow_unused=True`` (then its gradient is ``None``).
    """
    outputs = _as_tensor_list(outputs, "grad", "outputs")
    targets = _as_tensor_list(inputs, "grad", "inputs")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    else:
        grad_outputs = list(grad_outputs) if isinstance(grad_outputs, (list, tuple)) else [grad_outputs]
        if len(grad_outputs) != len(outputs):
            raise ValueError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs; give one each")
    for k, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(f"grad: output {k} does not require grad and has no creator; nothing to differentiate")
    for k, t in enumerate(targets):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {k} does not require grad; set requires_grad=True on it")
    if retain_graph is None:
        retain_graph = create_graph
    found = _grad_walk(outputs, grad_outputs, targets, retain_graph, create_graph, "grad")
    for k, g in enumerate(found):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {k} (shape {targets[k].shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
    return tuple(None if g is None else _as_tensor(targets[k], g) for k, g in enumerate(found))


# --------------------------------------------------------------------------- the walk
def _walk(seeds, retain_graph, create_graph, capture=None):
    """Run the backward of every function behind the ``(tensor, gradient)`` seeds (non-leaf tensors).

    Without ``capture`` each leaf's gradient is accumulated into its ``.grad``.
    With ``capture`` (a :class:`_Capture`), the gradients that reach its
    targets are collected instead, no ``.grad`` is touched, and only the
    functions that lead to a target run.
    """
    pending, heap = {}, []
    for tensor, g in seeds:
        fn = tensor._creator
        slots = pending.get(fn)
        if slots is None:
            slots = pending[fn] = [None] * fn.outputs
            heapq.heappush(heap, (-fn.seq, fn))
        slots[tensor._index] = g if slots[tensor._index] is None else slots[tensor._index] + g
    anomaly = STATE.anomaly
    record = RECORDING.record
    hooked = {}
    relevant = capture.relevant if capture is not None else None
    while heap:
        fn = heapq.heappop(heap)[1]
        grads_out = pending.pop(fn)
        if fn.released:
            raise GraphReleasedError(
                f"backward: trying to backward through {fn.name} a second time: its saved arrays were freed "
                "after the first backward(). Pass retain_graph=True to the first call, or, if a hidden state "
                "from an earlier batch is being carried over, cut its history with "
                "tinygrad_rnn.nn.utils.detach_state(state)"
            )
        if fn.hooks:
            _run_hooks(fn, grads_out)
        if fn.trace.keep_grads:
            fn.trace.out_grads = [g.array if create_graph and g is not None else g for g in grads_out]
        if fn.retained:
            _fill_retained(fn, grads_out, create_graph)
        if capture is not None:
            capture.take_outputs(fn, grads_out)
            if fn not in capture.needed:
                continue
        if fn.watched:
            _check_versions(fn)
        grads_in = graph_mode.run_backward(fn, grads_out) if create_graph else fn.backward(*grads_out)
        if type(grads_in) is not tuple:
            grads_in = (grads_in,)
        if len(grads_in) != len(fn.next):
            raise RuntimeError(
                f"{fn.name}.backward: returned {len(grads_in)} gradient(s) for {len(fn.next)} input(s); "
                "return one per input of forward (None where an input needs none)"
            )
        if record is not None:
            record.add(fn, grads_out, grads_in, sum_to_shape)
        if not retain_graph:
            fn.release()
        else:
            fn.walked = True
        for parent, g, (shape, dtype) in zip(fn.next, grads_in, fn.in_meta):
            if parent is None or g is None:
                continue
            if g.shape != shape:
                g = _sum_to_input_shape(fn, g, shape)
            if g.dtype != dtype:
                raise RuntimeError(f"{fn.name}.backward: gradient of dtype {g.dtype} for an input of dtype {dtype}")
            if anomaly:
                check_finite(fn.backend, g.array if create_graph else g, f"{fn.name} (backward)")
            if type(parent) is tuple:
                creator, index = parent
                if relevant is not None and creator not in relevant:
                    continue
                slots = pending.get(creator)
                if slots is None:
                    slots = pending[creator] = [None] * creator.outputs
                    slots[index] = g
                    heapq.heappush(heap, (-creator.seq, creator))
                elif slots[index] is None:
                    slots[index] = g
                else:
                    slots[index] = slots[index] + g
            elif capture is not None:
                capture.take_leaf(parent, g)
            else:
                _accumulate_leaf(parent, g, hooked, create_graph)
    for leaf, g in hooked.values():
        _accumulate_leaf(leaf, g, None, create_graph)


class _Capture:
    """The targets of ``grad()``: leaves by identity, non-leaf tensors by (creator, output index);
    ``needed`` holds the functions whose backward leads to a target, ``relevant`` those and the
    creators of the non-leaf targets (their output gradient is read, their backward may not run)."""

    def __init__(self, targets, roots):
        self.leaves = {}
        self.outputs = {}
        self.found = [None] * len(targets)
        for k, t in enumerate(targets):
            if t._creator is None:
                self.leaves.setdefault(id(t), []).append(k)
            else:
                self.outputs.setdefault((t._creator, t._index), []).append(k)
        self.needed = _functions_leading_to(roots, self.leaves, self.outputs)
        self.relevant = self.needed | {fn for fn, _ in self.outputs}

    def take_outputs(self, fn, grads_out):
        if fn in self.relevant and self.outputs:
            for index, g in enumerate(grads_out):
                for k in self.outputs.get((fn, index), ()):
                    self.found[k] = g

    def take_leaf(self, leaf, g):
        for k in self.leaves.get(id(leaf), ()):
            self.found[k] = g if self.found[k] is None else self.found[k] + g


def _functions_leading_to(roots, leaves, outputs):
    """The functions (behind ``roots``) through whose backward a gradient reaches a target: one of
    ``leaves`` (ids) or ``outputs`` ((creator, index) pairs). Iterative, so any depth works."""
    reaches = {}
    for root in roots:
        stack = [root]
        while stack:
            fn = stack[-1]
            if fn in reaches:
                stack.pop()
                continue
            waiting = [link[0] for link in fn.next if type(link) is tuple and link[0] not in reaches]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            reaches[fn] = any(
                (reaches[link[0]] or link in outputs) if type(link) is tuple else (link is not None and id(link) in leaves)
                for link in fn.next
            )
    return {fn for fn, flag in reaches.items() if flag}


def _grad_walk(outputs, grad_outputs, targets, retain_graph, create_graph, where):
    """The gradient of the weighted ``outputs`` at each target (None where none arrives)."""
    seeds = []
    found_direct = [None] * len(targets)
    for out, g in zip(outputs, grad_outputs):
        seed = _seed(out, g, create_graph, where)
        if out._creator is None:  # a leaf output: its gradient is the seed itself
            for k, t in enumerate(targets):
                if t is out:
                    found_direct[k] = seed if found_direct[k] is None else found_direct[k] + seed
            continue
        seeds.append((out, seed))
    capture = _Capture(targets, [out._creator for out, _ in seeds])
    if seeds:
        _walk(seeds, retain_graph, create_graph, capture)
    found = capture.found
    for k, g in enumerate(found_direct):
        if g is not None:
            found[k] = g if found[k] is None else found[k] + g
    return found


def _seed(root, gradient, create_graph, where):
    """The gradient the walk starts from: ones for a one-element ``root``, else ``gradient`` checked
    against ``root``'s shape (an array; a Tensor when ``create_graph``, which keeps its graph)."""
    backend = root._backend
    if gradient is None:
        if root.array.size != 1:
            raise RuntimeError(
                f"{where}: a scalar output or an explicit gradient is required, got an output of shape "
                f"{tuple(root.shape)}; call .sum() or .mean() first, or pass gradient="
            )
        seed = backend.xp.ones(root.array.shape, dtype=root.array.dtype)
        return root._make(seed, backend) if create_graph else seed
    if graph_mode.is_tensor(gradient):
        if gradient._backend is not backend:
            raise RuntimeError(f"{where}: gradient is on {gradient.device} but the output is on {root.device}")
        seed = gradient
    else:
        array = gradient if backend.is_array(gradient) else backend.asarray(gradient, dtype=root.array.dtype)
        seed = root._make(array, backend)
    if tuple(seed.shape) != tuple(root.array.shape):
        raise ValueError(
            f"{where}: gradient of shape {tuple(seed.shape)} does not match the output's shape {tuple(root.shape)}"
        )
    return seed if create_graph else seed.array


def _as_tensor_list(value, where, what):
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    for k, item in enumerate(items):
        if not graph_mode.is_tensor(item):
            raise TypeError(f"{where}: {what} must be tensors, got {type(item).__name__} at position {k}")
    if not items:
        raise ValueError(f"{where}: {what} is empty")
    return items


def _as_tensor(like, g):
    return g if graph_mode.is_tensor(g) else like._make(g, like._backend)


# --------------------------------------------------------------------------- gradients into place
def sum_to_shape(grad, shape):
    """Sum a broadcast gradient back down to ``shape`` (the one place that undoes broadcasting);
    works on arrays and on Tensors alike."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        return grad.reshape(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, size in enumerate(shape) if size == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if extra:
        grad = grad.reshape(tuple(grad.shape[extra:]))
    return grad


def _sum_to_input_shape(fn, grad, shape):
    """``sum_to_shape``, or an error naming the op when the gradient cannot be the input's."""
    try:
        summed = sum_to_shape(grad, shape)
    except (ValueError, RuntimeError):
        summed = None
    if summed is None or summed.shape != shape:
        raise RuntimeError(
            f"{fn.name}.backward: gradient of shape {tuple(grad.shape)} for an input of shape {tuple(shape)}"
        )
    return summed


def _check_versions(fn):
    for cell, version in fn.watched:
        if cell[0] != version:
            raise RuntimeError(
                f"{fn.name}.backward: a tensor that {fn.name} saved for its backward was modified in place after "
                f"it was saved (its version went from {version} to {cell[0]}), so its gradient would be wrong. "
                "Modify a copy (.clone()) instead, or do the in-place change after backward()"
            )


def _run_hooks(fn, grads_out):
    """Call the ``register_hook`` hooks of each output with its gradient (an array, or a Tensor when
    ``create_graph``; ``Tensor.register_hook`` wraps the user's function); a returned value replaces it."""
    for index, hooks in fn.hooks.items():
        g = grads_out[index]
        if g is None:
            continue
        for hook in hooks:
            replaced = hook(g)
            if replaced is not None:
                g = replaced
        grads_out[index] = g


def _fill_retained(fn, grads_out, create_graph):
    """Give the tensors that called ``retain_grad()`` their gradient (zeros for an unused output)."""
    for i, ref in fn.retained.items():
        tensor = ref()
        if tensor is not None:
            g = grads_out[i]
            if g is None:
                g = tensor.array * 0
            tensor.grad = g if graph_mode.is_tensor(g) else tensor._make(g, tensor._backend)


def _accumulate_leaf(leaf, grad, hooked, create_graph):
    """Add ``grad`` into ``leaf.grad``. A leaf with hooks gets them called once, on its whole gradient
    of this backward (as PyTorch): its parts are summed in ``hooked`` until the walk ends; its
    post-accumulate hooks run after that, with the leaf. With
    ``create_graph`` the ``.grad`` keeps the graph of how it was computed."""
    if leaf._hooks and hooked is not None:
        key = id(leaf)
        hooked[key] = (leaf, grad) if key not in hooked else (leaf, hooked[key][1] + grad)
        return
    if leaf._hooks:
        for hook in leaf._hooks:
            if not getattr(hook, "post_accumulate", False):
                replaced = hook(grad)
                if replaced is not None:
                    grad = replaced
    if create_graph:
        grad = _as_tensor(leaf, grad)
        leaf.grad = grad.clone() if leaf.grad is None else leaf.grad + grad
    elif leaf.grad is None:
        leaf.grad = leaf._make(leaf._backend.xp.array(grad, copy=True), leaf._backend)
    else:
        leaf.grad = leaf._make(leaf.grad.array + grad, leaf._backend)
    if leaf._hooks:  # register_post_accumulate_grad_hook's hooks, called with the leaf
        for hook in list(leaf._hooks):
            if getattr(hook, "post_accumulate", False):
                hook(leaf)
