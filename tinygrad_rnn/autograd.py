"""The tape: differentiable functions, the backward walk, and the grad modes.

Every differentiable op is a subclass of :class:`Function` with a ``forward``
and a ``backward`` on raw backend arrays. ``Function.apply`` runs ``forward``
and, when a gradient is needed, records the function as the creator of its
outputs. ``backward`` walks the recorded functions from the newest to the
oldest with a heap keyed on their creation number, so a graph of any depth
(an RNN unrolled over 10,000 steps) is walked without recursion.

What a function keeps for its backward is exactly what it passes to
:meth:`Function.save_for_backward`; it is released after ``backward()``
unless ``retain_graph=True``. A function does not hold its input tensors,
only the functions that created them (or the leaf tensors themselves), so an
intermediate array lives only as long as some backward step needs it.
"""
from __future__ import annotations

import heapq
import itertools
import os
import sys
import warnings
from contextlib import contextmanager


class _State:
    """Process-wide switches read by every op (a plain object: attribute reads are cheap)."""

    grad_enabled = True
    anomaly = False
    keep_grads = False
    scope = None


STATE = _State()
_sequence = itertools.count()
#: the Tensor class, set by ``tensor.py`` (the tape wraps arrays without importing it)
Tensor = None


class Scope:
    """Where an op was created: the module running it, and for recurrent layers the
    layer, direction and time step. Scopes nest through ``parent``; the graph
    renderer reads them to cluster ops by module and by time step."""

    __slots__ = ("parent", "module", "tags")

    def __init__(self, parent, module, tags):
        self.parent = parent
        self.module = module
        self.tags = tags

    def chain(self):
        """The scopes from the outermost to this one."""
        chain, node = [], self
        while node is not None:
            chain.append(node)
            node = node.parent
        return chain[::-1]

    def get(self, tag, default=None):
        """The innermost value of ``tag`` (e.g. ``"step"``) along the chain."""
        node = self
        while node is not None:
            if tag in node.tags:
                return node.tags[tag]
            node = node.parent
        return default

    def __repr__(self):
        parts = [type(s.module).__name__ if s.module is not None else "" for s in self.chain()]
        return f"<Scope {'/'.join(parts)} {self.tags}>"


@contextmanager
def scope(module=None, **tags):
    """Record ``module`` and ``tags`` (``step=``, ``layer=``, ``direction=``) on every op created inside."""
    previous = STATE.scope
    STATE.scope = Scope(previous, module, tags)
    try:
        yield
    finally:
        STATE.scope = previous


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


def no_grad():
    """Context manager / decorator: ops inside record no tape (inference, updates)."""
    return _GradMode(False)


def enable_grad():
    """Context manager / decorator: turn tape recording back on inside a ``no_grad`` block."""
    return _GradMode(True)


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


class GraphReleasedError(RuntimeError):
    """Raised by a second ``backward()`` through a graph whose saved arrays were freed."""


class Function:
    """One node of the tape.

    Subclasses implement ``forward(*arrays, **params) -> array or tuple`` and
    ``backward(*grad_outputs) -> grad or tuple of grads`` (one per input,
    ``None`` where an input needs none). ``backward`` may return a gradient of
    the broadcast shape: the walk sums it down to the input's shape in one
    place. Backward functions never modify their ``grad_outputs`` in place.

    Attributes set by :meth:`apply` when the tape is recorded:

    ``next``     per input: ``None`` (needs no gradient), the leaf tensor, or
                 ``(creator, output_index)`` of a non-leaf input.
    ``in_meta``  per input: ``(shape, dtype)``, to check the gradients.
    ``out_meta`` per output: ``(shape, dtype)``, for rendering.
    ``seq``      creation number; the walk runs from the largest down.
    ``scope``    the :class:`Scope` the op was created in.
    ``constants`` per input: the tensor when it needs no gradient (data,
                 masks), else ``None``; kept so the graph can show inputs.
    """

    #: names for the outputs, used by the graph renderer (e.g. ``("h", "c")``)
    output_names = None
    #: True for an op that stands for a whole cell (drawn as one node)
    fused = False

    saved = ()
    released = False
    #: set when a ``backward(retain_graph=True)`` walked this function (``released`` says the same otherwise)
    walked = False
    keep_grads = False
    out_grads = None
    retained = None
    out_names = None

    @property
    def name(self) -> str:
        """The op's name as shown in errors and graphs."""
        return type(self).__name__

    @property
    def xp(self):
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
        backend = inputs[0]._backend
        arrays = []
        record = False
        for tensor in inputs:
            if tensor._backend is not backend:
                raise RuntimeError(
                    f"{cls.__name__}: expected all tensors on the same device, got "
                    f"{', '.join(t.device for t in inputs)}; move them explicitly with .to(device)"
                )
            arrays.append(tensor.data)
            if tensor.requires_grad:
                record = True
        fn = object.__new__(cls)
        fn.backend = backend
        out = fn.forward(*arrays, **params)
        make = Tensor._make
        if type(out) is not tuple:
            if STATE.anomaly:
                _check_finite(backend, out, f"{fn.name} (forward)")
            if not (record and STATE.grad_enabled):
                return make(out, backend)
            fn._record(inputs, (out,))
            if out.dtype.kind in "fc":
                return make(out, backend, True, fn, 0)
            return make(out, backend)
        if STATE.anomaly:
            for array in out:
                _check_finite(backend, array, f"{fn.name} (forward)")
        if not (record and STATE.grad_enabled):
            return tuple(make(a, backend) for a in out)
        fn._record(inputs, out)
        return tuple(
            make(a, backend, True, fn, i) if a.dtype.kind in "fc" else make(a, backend) for i, a in enumerate(out)
        )

    def _record(self, inputs, outputs):
        """Put this function on the tape: links to the inputs' creators (or leaves) and metadata."""
        self.seq = next(_sequence)
        self.scope = STATE.scope
        links, meta, constants = [], [], []
        for t in inputs:
            data = t.data
            meta.append((data.shape, data.dtype))
            if t.requires_grad:
                creator = t._creator
                links.append(t if creator is None else (creator, t._index))
                constants.append(None)
            else:
                links.append(None)
                constants.append(t)
        self.next = tuple(links)
        self.in_meta = tuple(meta)
        self.constants = tuple(constants)
        self.out_meta = tuple((a.shape, a.dtype) for a in outputs)
        if STATE.keep_grads:
            self.keep_grads = True

    def release(self):
        """Free what the backward kept; a later backward through this op raises."""
        self.saved = ()
        self.released = True

    def __repr__(self):
        return f"<{self.name} #{getattr(self, 'seq', '?')}>"


def _check_finite(backend, array, where):
    if array.dtype.kind in "fc" and not bool(backend.xp.isfinite(array).all()):
        kind = "NaN" if bool(backend.xp.isnan(array).any()) else "inf"
        raise FloatingPointError(f"detect_anomaly: {where} produced {kind} (shape {tuple(array.shape)})")


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


_warned_released = [False]


def backward(root, gradient=None, retain_graph=False):
    """Backpropagate from ``root``: accumulate d(root)/d(leaf) into every leaf's ``.grad``.

    Walks the creators newest-first (a heap on creation number), sums the
    gradients of each output before calling its creator's backward, checks each
    returned gradient's shape and dtype against the input, and releases each
    function's saved arrays once used unless ``retain_graph`` is set.
    """
    if not root.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no creator; "
            "set requires_grad=True on a leaf it depends on (and do not run it under no_grad())"
        )
    backend = root._backend
    if gradient is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward: a scalar output or an explicit gradient is required, got an output of shape "
                f"{tuple(root.shape)}; call .sum() or .mean() first, or pass gradient="
            )
        grad = backend.xp.ones(root.data.shape, dtype=root.data.dtype)
    else:
        grad = gradient.data if isinstance(gradient, Tensor) else backend.asarray(gradient, dtype=root.data.dtype)
        if isinstance(gradient, Tensor) and gradient._backend is not backend:
            raise RuntimeError(f"backward: gradient is on {gradient.device} but the output is on {root.device}")
        if tuple(grad.shape) != tuple(root.data.shape):
            raise ValueError(
                f"backward: gradient of shape {tuple(grad.shape)} does not match the output's shape {tuple(root.shape)}"
            )
    if root._creator is None:
        _accumulate_leaf(root, grad)
        return
    start = root._creator
    pending = {start: [None] * len(start.out_meta)}
    pending[start][root._index] = grad
    heap = [(-start.seq, start)]
    anomaly = STATE.anomaly
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
        for i, g in enumerate(grads_out):
            if g is None:
                shape, dtype = fn.out_meta[i]
                grads_out[i] = fn.backend.xp.zeros(shape, dtype=dtype)
        if fn.keep_grads:
            fn.out_grads = list(grads_out)
        if fn.retained:
            for i, ref in fn.retained.items():
                tensor = ref()
                if tensor is not None:
                    tensor.grad = Tensor._make(grads_out[i], tensor._backend)
        grads_in = fn.backward(*grads_out)
        if type(grads_in) is not tuple:
            grads_in = (grads_in,)
        if not retain_graph:
            fn.release()
        else:
            fn.walked = True
        for parent, g, (shape, dtype) in zip(fn.next, grads_in, fn.in_meta):
            if parent is None or g is None:
                continue
            if g.shape != shape:
                g = sum_to_shape(g, shape)
                if g.shape != shape:
                    raise RuntimeError(
                        f"{fn.name}.backward: gradient of shape {tuple(g.shape)} for an input of shape {tuple(shape)}"
                    )
            if g.dtype != dtype:
                raise RuntimeError(f"{fn.name}.backward: gradient of dtype {g.dtype} for an input of dtype {dtype}")
            if anomaly:
                _check_finite(fn.backend, g, f"{fn.name} (backward)")
            if type(parent) is tuple:
                creator, index = parent
                slots = pending.get(creator)
                if slots is None:
                    slots = pending[creator] = [None] * len(creator.out_meta)
                    slots[index] = g
                    heapq.heappush(heap, (-creator.seq, creator))
                elif slots[index] is None:
                    slots[index] = g
                else:
                    slots[index] = slots[index] + g
            else:
                _accumulate_leaf(parent, g)


def _accumulate_leaf(leaf, grad):
    if leaf.grad is None:
        leaf.grad = Tensor._make(leaf._backend.xp.array(grad, copy=True), leaf._backend)
    else:
        leaf.grad = Tensor._make(leaf.grad.data + grad, leaf._backend)


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
            stacklevel=_user_stacklevel(),
        )


def _user_stacklevel():
    """The ``stacklevel`` of the first caller outside tinygrad_rnn, so a warning shows the user's line."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(2), 2  # level 1 is the function calling warnings.warn
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


__all__ = [
    "Function",
    "Scope",
    "scope",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "detect_anomaly",
    "retain_grads",
    "backward",
    "sum_to_shape",
    "GraphReleasedError",
]
