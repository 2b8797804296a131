"""What the tape records for the graph renderer: the scope an op ran in, and one ``Trace`` per function.

``backward()`` never reads any of this. ``Module.__call__`` and the recurrent
layers open scopes (``scope(module=..., step=t, layer=k, direction=d)``);
every function recorded inside gets the innermost one, and the renderer
clusters ops by module and by time step with them.
"""
from __future__ import annotations

import math
import weakref
from contextlib import contextmanager

import numpy as np


class Scope:
    """Where an op was created: the module running it, and for recurrent layers the
    layer, direction and time step. Scopes nest through ``parent``."""

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


class _Current:
    scope = None


CURRENT = _Current()


@contextmanager
def scope(module=None, **tags):
    """Record ``module`` and ``tags`` (``step=``, ``layer=``, ``direction=``) on every op created inside."""
    previous = CURRENT.scope
    CURRENT.scope = Scope(previous, module, tags)
    try:
        yield
    finally:
        CURRENT.scope = previous


class Trace:
    """The renderer's slot on a recorded function (``fn.trace``).

    ``scope``      the :class:`Scope` the op was created in (or None).
    ``constants``  per input: the tensor when it needs no gradient (data, masks), else None
                   (or None for all when every input needs one); after the graph is released,
                   only 0-d ones are kept and the rest become weak references, so the graph
                   does not keep a batch of data alive.
    ``out_meta``   per output: ``(shape, dtype)``.
    ``names``      names given to outputs with ``Tensor.name = ...`` ({index: name}) or None.
    ``out_grads``  the output gradients, kept inside ``retain_grads()``.
    ``step_grad_norms``  for a whole-sequence op inside ``retain_grads()``: ‖dL/dh_t‖ per step.
    ``step_cell_grad_norms``  likewise for an LSTM's cell state: the whole ‖dL/dc_t‖ per step
                   (through c_{t+1} and through h_t = o_t ⊙ tanh(c_t)); None for other ops.
    ``out_stats``  for an op created inside :func:`record_backward`: per output, the statistics of
                   its value (:func:`value_stats`, taken when it was made); None otherwise.
    ``step_stats`` likewise for a whole-sequence op: the statistics of each step's h_t (its
                   output 0 at step t); None otherwise.
    ``constant_names``  the names of the constants let go by :meth:`release_constants`
                   ({index: name}), so a drawing made after ``backward()`` still names them; or None.
    """

    __slots__ = ("scope", "constants", "out_meta", "names", "out_grads", "step_grad_norms", "step_cell_grad_norms",
                 "keep_grads", "out_stats", "step_stats", "constant_names")

    def __init__(self, scope, constants, out_meta, keep_grads):
        self.scope = scope
        self.constants = constants
        self.out_meta = out_meta
        self.names = None
        self.out_grads = None
        self.step_grad_norms = None
        self.step_cell_grad_norms = None
        self.keep_grads = keep_grads
        self.out_stats = None
        self.step_stats = None
        self.constant_names = None

    def keep_values(self, fn, outputs):
        """Keep the statistics of ``fn``'s output arrays (called at creation, only inside
        :func:`record_backward`); the arrays themselves are not held."""
        backend = fn.out_backend or fn.backend
        self.out_stats = [value_stats(backend.to_host(a)) for a in outputs]
        if fn.draw_as == "sequence":
            self.step_stats = _step_stats(backend.to_host(outputs[0]), fn.steps, fn.active)

    def constant(self, index):
        """Input ``index`` when it needed no gradient: the tensor, or None (a gradient input, or
        a released constant nobody holds any more)."""
        if self.constants is None:
            return None
        value = self.constants[index]
        return value() if type(value) is weakref.ref else value

    def release_constants(self):
        """Stop holding the inputs that needed no gradient (0-d constants stay: they cost nothing);
        their names are kept."""
        constants = self.constants
        if constants is not None:
            for i, c in enumerate(constants):
                if c is not None and type(c) is not weakref.ref and c.array.ndim:
                    if c.name is not None:
                        self.constant_names = {**(self.constant_names or {}), i: c.name}
                    constants[i] = weakref.ref(c)

    def constant_name(self, index):
        """The name of input ``index`` when it was a named constant since let go, else None."""
        return self.constant_names.get(index) if self.constant_names else None


class BackwardRecord:
    """The order a ``backward()`` ran the tape in, kept by :func:`record_backward`.

    ``steps`` holds one entry per function differentiated, in the order the
    walk ran them: ``(fn, out_norms, sent)``, where ``out_norms`` is
    ‖dL/d output i‖ per output (None for an output nobody used) and ``sent``
    maps each input that got a gradient from this step (``id(leaf)``, or
    ``(id(creator), output index)``) to the norm of that gradient;
    ``leaves`` maps ``id(leaf)`` to the leaf tensors that got one.
    The explorer (``tr.viz.explore``) replays it as its backward stepper.
    """

    def __init__(self):
        self.steps = []
        self.leaves = {}

    def add(self, fn, grads_out, grads_in, to_shape):
        """Called by the backward walk after ``fn``'s backward ran (only while recording);
        ``to_shape(g, shape)`` undoes broadcasting of an input's gradient."""
        backend = fn.backend
        sent = {}
        for parent, g, (shape, _) in zip(fn.next, grads_in, fn.in_meta):
            if parent is None or g is None:
                continue
            if type(parent) is tuple:
                key = (id(parent[0]), parent[1])
            else:
                key = id(parent)
                self.leaves[key] = parent
            norm = _norm_of(backend, to_shape(g, shape))
            sent[key] = norm if key not in sent else math.hypot(sent[key], norm)
        self.steps.append((fn, [None if g is None else _norm_of(backend, g) for g in grads_out], sent))

    @property
    def functions(self):
        """The functions in the order their backward ran."""
        return [fn for fn, _, _ in self.steps]


#: how many elements of a value the statistics list one by one (larger ones: statistics only)
MAX_VALUES = 64


def value_stats(host):
    """min, max, mean, norm of a host array (and its values when it has at most ``MAX_VALUES``),
    as JSON-safe numbers (None for NaN or inf): what the explorer shows of a value or gradient.
    A complex array gets its size and norm only."""
    if host is None:
        return None
    host = np.asarray(host)
    if host.size == 0:
        return {"size": 0}
    if host.dtype.kind == "c":  # no order: only the norm
        return {"size": int(host.size), "norm": finite_float(float(np.sqrt(np.sum(np.abs(host) ** 2))))}
    flat = host.astype(np.float64).ravel()
    out = {"size": int(flat.size), "min": finite_float(flat.min()), "max": finite_float(flat.max()),
           "mean": finite_float(flat.mean()), "norm": finite_float(float(np.sqrt(np.sum(flat * flat))))}
    if flat.size <= MAX_VALUES:
        out["values"] = [finite_float(v) for v in flat.tolist()]
    return out


def finite_float(x):
    """``x`` as a float, or None for None, NaN and infinities (a JSON-safe number)."""
    return None if x is None or not math.isfinite(x) else float(x)


def _step_stats(output, steps, active):
    """Per step t, the statistics of h_t: row t of a padded (T, B, H) output, or step t's
    ``active[t]`` rows of a packed one; None when the output is shaped otherwise."""
    if active is None:
        if output.ndim != 3 or output.shape[0] != steps:
            return None
        return [value_stats(output[t]) for t in range(steps)]
    if output.shape[0] != sum(active):
        return None
    ends = np.cumsum(active)
    return [value_stats(output[end - n:end]) for n, end in zip(active, ends)]


def _norm_of(backend, g) -> float:
    host = backend.to_host(g if backend.is_array(g) else g.array)  # a Tensor under create_graph
    return float(np.sqrt(np.sum(np.square(host, dtype=np.float64))))


class _Recording:
    record = None


RECORDING = _Recording()


@contextmanager
def record_backward():
    """Record the order every ``backward()`` inside runs the tape in, with each step's gradient norms,
    and the value of every op created inside.

    ``with tr.viz.record_backward() as record: loss.backward()`` leaves
    the steps in ``record.steps``. An op created inside keeps the statistics
    of its outputs (min, max, mean, norm, and the values of small ones) in
    ``fn.trace.out_stats``, and a whole-sequence RNN op those of each step's
    h_t in ``fn.trace.step_stats``; the arrays themselves are not held. So
    ``with record_backward() as record: loss = model(x); loss.backward()``
    lets ``tr.viz.explore(loss, record=record)`` show every value. Outside it,
    ops and ``backward()`` record nothing and pay nothing. Combine with
    ``retain_grads()`` to keep the gradients themselves.
    """
    previous = RECORDING.record
    record = RECORDING.record = BackwardRecord()
    try:
        yield record
    finally:
        RECORDING.record = previous


__all__ = ["Scope", "scope", "Trace", "CURRENT", "BackwardRecord", "record_backward", "RECORDING",
           "value_stats", "finite_float", "MAX_VALUES"]
