"""The tape: differentiable functions and the backward walk.

Every differentiable op is a subclass of :class:`Function` with a ``forward``
and a ``backward`` on raw backend arrays. ``Function.apply`` runs ``forward``
and, when a gradient is needed, records the function as the creator of its
outputs. :func:`backward` walks the recorded functions from the newest to the
oldest with a heap keyed on their creation number, so a graph of any depth
(an RNN unrolled over 10,000 steps) is walked without recursion.

What a function keeps for its backward is exactly what it passes to
:meth:`Function.save_for_backward`; it is released after ``backward()``
unless ``retain_graph=True``. A function does not hold its input tensors,
only the functions that created them (or the leaf tensors themselves), so an
intermediate array lives only as long as some backward step needs it. What
the graph renderer wants is in one slot, ``fn.trace`` (``recording.py``).

The grad modes (``no_grad``, ``enable_grad``, ``detect_anomaly``,
``retain_grads``) come last.
"""
from __future__ import annotations

import heapq
import itertools
import os
import sys
import warnings
from contextlib import contextmanager

from . import recording
from .recording import scope  # noqa: F401  (``autograd.scope``: where users open a scope)


class _State:
    """Process-wide switches read by every op (a plain object: attribute reads are cheap)."""

    grad_enabled = True
    anomaly = False
    keep_grads = False


STATE = _State()
_sequence = itertools.count()


class Function:
    """One node of the tape.

    Subclasses implement ``forward(*arrays, **params) -> array or tuple`` and
    ``backward(*grad_outputs) -> grad or tuple of grads`` (one per input,
    ``None`` where an input needs none). A ``grad_output`` is ``None`` when
    nothing used that output (an op with several outputs skips that work).
    ``backward`` may return a gradient of the broadcast shape: the walk sums
    it down to the input's shape in one place. Backward functions never
    modify their ``grad_outputs`` in place.

    What backward needs, set by :meth:`apply` when the tape is recorded:

    ``backend``  the device the op ran on.
    ``next``     per input: ``None`` (needs no gradient), the leaf tensor, or
                 ``(creator, output_index)`` of a non-leaf input.
    ``in_meta``  per input: ``(shape, dtype)``, to check the gradients.
    ``outputs``  how many outputs the op has.
    ``seq``      creation number; the walk runs from the largest down.
    ``saved``    what ``save_for_backward`` kept.

    And one slot for the graph renderer: ``trace`` (:class:`~tinygrad_rnn.recording.Trace`).
    """

    #: names of the outputs, shown by the graph renderer (e.g. ``("h", "c")``)
    output_names = None
    #: how the renderer draws the op: ``"op"``, ``"cell"`` (a fused cell step) or ``"sequence"``
    draw_as = "op"
    #: the device of the outputs when it differs from the inputs' (only ``ToDevice`` sets it)
    out_backend = None

    saved = ()
    released = False
    #: set when a ``backward(retain_graph=True)`` walked this function (``released`` says the same otherwise)
    walked = False
    #: {output index: weak reference to a tensor whose ``retain_grad()`` asked for its gradient}
    retained = None
    #: {output index: [hooks]} registered with ``Tensor.register_hook`` on this function's outputs
    hooks = None
    #: (version cell, version when saved) of each tensor whose array ``saved`` holds (see ``Tensor.add_``)
    watched = None
    trace = None

    @property
    def name(self) -> str:
        """The op's name as shown in errors and graphs: the class name without an ``Fn`` suffix
        (``LinearFn`` is drawn as ``Linear``; the suffix only tells it from the ``nn.Linear`` module)."""
        name = type(self).__name__
        return name[:-2] if name.endswith("Fn") else name

    @property
    def xp(self):
        """The array module of the op's device (``numpy`` or ``cupy``)."""
        return self.backend.xp

    def save_for_backward(self, *arrays):
        """Keep ``arrays`` for ``backward``; they are freed when the graph is released."""
        self.saved = arrays

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on tensors, record it on the tape if needed, and return tensor output(s)."""
        first = inputs[0]
        backend = first._backend
        arrays = []
        record = False
        for tensor in inputs:
            if tensor._backend is not backend:
                raise RuntimeError(
                    f"{cls.__name__}: expected all tensors on the same device, got "
                    f"{', '.join(t.device for t in inputs)}; move them explicitly with .to(device)"
                )
            arrays.append(tensor.array)
            if tensor.requires_grad:
                record = True
        fn = object.__new__(cls)
        fn.backend = backend
        out = fn.forward(*arrays, **params)
        make = first._make  # builds a plain Tensor whatever the tensor in hand is
        out_backend = fn.out_backend or backend
        if type(out) is not tuple:
            if STATE.anomaly:
                _check_finite(out_backend, out, f"{fn.name} (forward)")
            if not (record and STATE.grad_enabled):
                return make(out, out_backend)
            fn._record(inputs, (out,))
            result = make(out, out_backend, True, fn, 0) if out.dtype.kind in "fc" else make(out, out_backend)
            if fn.saved:
                fn._watch_saved(inputs, (result,))
            return result
        if STATE.anomaly:
            for array in out:
                _check_finite(out_backend, array, f"{fn.name} (forward)")
        if not (record and STATE.grad_enabled):
            return tuple(make(a, out_backend) for a in out)
        fn._record(inputs, out)
        results = tuple(
            make(a, out_backend, True, fn, i) if a.dtype.kind in "fc" else make(a, out_backend)
            for i, a in enumerate(out)
        )
        if fn.saved:
            fn._watch_saved(inputs, results)
        return results

    def _record(self, inputs, outputs):
        """Put this function on the tape: links to the inputs' creators (or leaves), metadata, its trace."""
        self.seq = next(_sequence)
        links, meta = [], []
        constants = None
        for i, t in enumerate(inputs):
            data = t.array
            meta.append((data.shape, data.dtype))
            if t.requires_grad:
                creator = t._creator
                links.append(t if creator is None else (creator, t._index))
            else:
                links.append(None)
                if constants is None:
                    constants = [None] * len(inputs)
                constants[i] = t
        self.next = tuple(links)
        self.in_meta = tuple(meta)
        self.outputs = len(outputs)
        out_meta = tuple([(a.shape, a.dtype) for a in outputs])
        self.trace = recording.Trace(recording.CURRENT.scope, constants, out_meta, STATE.keep_grads)

    def _watch_saved(self, inputs, outputs):
        """Remember the version of each input or output whose array this op saved, so that its backward
        can refuse to run on values that an in-place change has since overwritten."""
        saved = self.saved
        watched = None
        for tensors in (inputs, outputs):
            for t in tensors:
                array = t.array
                for kept in saved:
                    if kept is array:
                        cell = t._version
                        if cell is None:
                            cell = t._version = [0]
                        if watched is None:
                            watched = []
                        watched.append((cell, cell[0]))
                        break
        self.watched = watched

    def release(self):
        """Free what the backward kept, and the inputs that needed no gradient; a later backward raises."""
        self.saved = ()
        self.released = True
        if self.trace is not None:
            self.trace.release_constants()

    def __repr__(self):
        return f"<{self.name} #{getattr(self, 'seq', '?')}>"


def backward(root, gradient=None, retain_graph=False):
    """Backpropagate from ``root``: accumulate d(root)/d(leaf) into every leaf's ``.grad``.

    ``gradient`` (an array of ``root``'s device, or host data) seeds the walk;
    it may be omitted for a one-element ``root``. Walks the creators
    newest-first (a heap on creation number), sums the gradients of each
    output before calling its creator's backward, checks each returned
    gradient's shape and dtype against the input, and releases each
    function's saved arrays once used unless ``retain_graph`` is set.
    ``Tensor.backward`` is the usual way in.
    """
    if not root.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no creator; "
            "set requires_grad=True on a leaf it depends on (and do not run it under no_grad())"
        )
    backend = root._backend
    if gradient is None:
        if root.array.size != 1:
            raise RuntimeError(
                f"backward: a scalar output or an explicit gradient is required, got an output of shape "
                f"{tuple(root.shape)}; call .sum() or .mean() first, or pass gradient="
            )
        grad = backend.xp.ones(root.array.shape, dtype=root.array.dtype)
    else:
        grad = gradient if backend.is_array(gradient) else backend.asarray(gradient, dtype=root.array.dtype)
        if tuple(grad.shape) != tuple(root.array.shape):
            raise ValueError(
                f"backward: gradient of shape {tuple(grad.shape)} does not match the output's shape {tuple(root.shape)}"
            )
    if root._creator is None:
        _accumulate_leaf(root, grad)
        return
    start = root._creator
    pending = {start: [None] * start.outputs}
    pending[start][root._index] = grad
    heap = [(-start.seq, start)]
    anomaly = STATE.anomaly
    hooked = {}
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
            fn.trace.out_grads = list(grads_out)
        if fn.retained:
            _fill_retained(fn, grads_out)
        if fn.watched:
            _check_versions(fn)
        grads_in = fn.backward(*grads_out)
        if type(grads_in) is not tuple:
            grads_in = (grads_in,)
        if len(grads_in) != len(fn.next):
            raise RuntimeError(
                f"{fn.name}.backward: returned {len(grads_in)} gradient(s) for {len(fn.next)} input(s); "
                "return one per input of forward (None where an input needs none)"
            )
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
                _check_finite(fn.backend, g, f"{fn.name} (backward)")
            if type(parent) is tuple:
                creator, index = parent
                slots = pending.get(creator)
                if slots is None:
                    slots = pending[creator] = [None] * creator.outputs
                    slots[index] = g
                    heapq.heappush(heap, (-creator.seq, creator))
                elif slots[index] is None:
                    slots[index] = g
                else:
                    slots[index] = slots[index] + g
            else:
                _accumulate_leaf(parent, g, hooked)
    for leaf, g in hooked.items():
        _accumulate_leaf(leaf, g)


def sum_to_shape(grad, shape):
    """Sum a broadcast gradient back down to ``shape`` (the one place that undoes broadcasting)."""
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
        grad = grad.reshape(grad.shape[extra:])
    return grad


class GraphReleasedError(RuntimeError):
    """Raised by a second ``backward()`` through a graph whose saved arrays were freed."""


def _sum_to_input_shape(fn, grad, shape):
    """``sum_to_shape``, or an error naming the op when the gradient cannot be the input's."""
    try:
        summed = sum_to_shape(grad, shape)
    except ValueError:
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
    """Call the ``register_hook`` hooks of each output with its gradient (an array in, an array or None
    out: ``Tensor.register_hook`` wraps the user's function); a returned array replaces the gradient."""
    for index, hooks in fn.hooks.items():
        g = grads_out[index]
        if g is None:
            continue
        for hook in hooks:
            replaced = hook(g)
            if replaced is not None:
                g = replaced
        grads_out[index] = g


def _fill_retained(fn, grads_out):
    """Give the tensors that called ``retain_grad()`` their gradient (zeros for an unused output)."""
    for i, ref in fn.retained.items():
        tensor = ref()
        if tensor is not None:
            g = grads_out[i]
            if g is None:
                g = tensor.array * 0
            tensor.grad = tensor._make(g, tensor._backend)


def _accumulate_leaf(leaf, grad, hooked=None):
    """Add ``grad`` into ``leaf.grad``. A leaf with hooks gets them called once, on its whole gradient
    of this backward (as PyTorch): its parts are summed in ``hooked`` until the walk ends."""
    if leaf._hooks and hooked is not None:
        hooked[leaf] = grad if leaf not in hooked else hooked[leaf] + grad
        return
    if leaf._hooks:
        for hook in leaf._hooks:
            replaced = hook(grad)
            if replaced is not None:
                grad = replaced
    if leaf.grad is None:
        leaf.grad = leaf._make(leaf._backend.xp.array(grad, copy=True), leaf._backend)
    else:
        leaf.grad = leaf._make(leaf.grad.array + grad, leaf._backend)


def _check_finite(backend, array, where):
    if array.dtype.kind in "fc" and not bool(backend.xp.isfinite(array).all()):
        kind = "NaN" if bool(backend.xp.isnan(array).any()) else "inf"
        raise FloatingPointError(f"detect_anomaly: {where} produced {kind} (shape {tuple(array.shape)})")


# --------------------------------------------------------------------------- carried-over graphs
_warned_released = [False]


def _reaches_released_graph(creator, limit=64):
    """True when a function that a ``backward()`` already walked (released, or kept by
    ``retain_graph=True``) lies within ``limit`` functions behind ``creator``.

    A layer's ``h_n`` is often made by a small op (a stack or a copy) that the
    loss never used, so its own creator is not released while the graph behind it is.
    """
    stack, seen = [creator], set()
    while stack and len(seen) < limit:
        fn = stack.pop()
        if fn.released or fn.walked:
            return True
        seen.add(fn)
        stack.extend(link[0] for link in fn.next if type(link) is tuple and link[0] not in seen)
    return False


def graph_depth_warning(state_tensor, what="the initial state"):
    """Warn once when a tensor still carries a graph that ``backward()`` already consumed.

    That is what happens when a hidden state is carried from batch to batch
    without ``detach_state``: the graph grows every batch and keeps its arrays alive.
    """
    if _warned_released[0] or not STATE.grad_enabled or getattr(state_tensor, "_creator", None) is None:
        return  # under no_grad() (sampling, evaluation) nothing new is recorded onto the old graph
    if _reaches_released_graph(state_tensor._creator):
        _warned_released[0] = True
        warnings.warn(
            f"{what} carries the graph of an earlier batch that backward() already used; the graph keeps "
            "growing and holds its memory (retain_graph=True does not fix this). Cut it between batches with "
            "tinygrad_rnn.nn.utils.detach_state(state).",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )


def user_stacklevel():
    """The ``stacklevel`` of the first caller outside tinygrad_rnn, so a warning shows the user's line."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(2), 2  # level 1 is the function calling warnings.warn
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


# --------------------------------------------------------------------------- grad modes
class _GradMode:
    """Context manager and decorator that sets whether ops record the tape."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        self.previous = STATE.grad_enabled
        STATE.grad_enabled = self.enabled

    def __exit__(self, *exc):
        STATE.grad_enabled = self.previous

    def __call__(self, func):
        mode = self.enabled

        def wrapper(*args, **kwargs):
            with _GradMode(mode):
                return func(*args, **kwargs)

        wrapper.__name__ = getattr(func, "__name__", "wrapper")
        wrapper.__doc__ = getattr(func, "__doc__", None)
        wrapper.__wrapped__ = func
        return wrapper


def no_grad(func=None):
    """Context manager / decorator: ops inside record no tape (inference, updates).

    ``with no_grad():``, ``@no_grad()`` and ``@no_grad`` all work, as in PyTorch."""
    return _GradMode(False) if func is None else _GradMode(False)(func)


def enable_grad(func=None):
    """Context manager / decorator: turn tape recording back on inside a ``no_grad`` block."""
    return _GradMode(True) if func is None else _GradMode(True)(func)


def inference_mode(mode=True):
    """``no_grad`` under PyTorch's other name (``mode=False`` records as usual); also ``@inference_mode``."""
    if callable(mode):
        return _GradMode(False)(mode)
    return _GradMode(not mode)


class set_grad_enabled:  # noqa: N801  (PyTorch's name: a function-like class)
    """Switch recording on or off: at once when called (``set_grad_enabled(False)``), or for a block
    (``with set_grad_enabled(is_training):``), restoring the previous mode at its end."""

    def __init__(self, mode: bool):
        self.previous = STATE.grad_enabled
        STATE.grad_enabled = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        STATE.grad_enabled = self.previous


def is_grad_enabled() -> bool:
    """Whether ops record the tape right now."""
    return STATE.grad_enabled


@contextmanager
def detect_anomaly():
    """Raise at the first op whose forward output or backward gradient holds NaN or inf, naming it."""
    previous = STATE.anomaly
    STATE.anomaly = True
    try:
        yield
    finally:
        STATE.anomaly = previous


@contextmanager
def retain_grads():
    """Ops created inside keep their output gradients after ``backward()``.

    ``draw_graph(show_grads=True)`` reads them to shade the graph by gradient
    norm; ``Tensor.retain_grad()`` does the same for a single tensor.
    """
    previous = STATE.keep_grads
    STATE.keep_grads = True
    try:
        yield
    finally:
        STATE.keep_grads = previous


__all__ = [
    "Function",
    "backward",
    "sum_to_shape",
    "GraphReleasedError",
    "scope",
    "no_grad",
    "enable_grad",
    "inference_mode",
    "set_grad_enabled",
    "is_grad_enabled",
    "detect_anomaly",
    "retain_grads",
]
