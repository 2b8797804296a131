"""``Function``: one node of the tape, and the switches every op reads (``STATE``)."""
from __future__ import annotations

import itertools

from .. import recording


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
    #: per saved array: the input (``i``) or output (``-1 - j``) it is, or None (see ``_watch_saved``)
    saved_from = None
    #: saved arrays that are float but constant in the inputs (a dropout mask): a ``create_graph``
    #: backward uses them as they are. Any other float array computed in forward is refused there.
    constant_saved = ()
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
                check_finite(out_backend, out, f"{fn.name} (forward)")
            if not (record and STATE.grad_enabled):
                return make(out, out_backend)
            fn._record(inputs, (out,))
            result = make(out, out_backend, True, fn, 0) if out.dtype.kind in "fc" else make(out, out_backend)
            if fn.saved:
                fn._watch_saved(inputs, (result,))
            return result
        if STATE.anomaly:
            for array in out:
                check_finite(out_backend, array, f"{fn.name} (forward)")
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
        if recording.RECORDING.record is not None:  # inside record_backward(): keep what the explorer shows
            self.trace.keep_values(self, outputs)

    def _watch_saved(self, inputs, outputs):
        """For each saved array that is an input's or an output's, remember which (``saved_from``: input
        ``i`` as ``i``, output ``j`` as ``-1 - j``; ``None`` for an array computed from them), so that a
        ``create_graph`` backward can put the tensor back in its place; and remember that tensor's
        version, so that backward refuses to run on values an in-place change has since overwritten."""
        saved = self.saved
        watched = sources = None
        k = 0
        for kept in saved:
            found = None
            i = 0
            for t in inputs:
                if t.array is kept:
                    found = i
                    break
                i += 1
            else:
                j = -1
                for t in outputs:
                    if t.array is kept:
                        found = j
                        break
                    j -= 1
            if found is not None:
                if sources is None:
                    sources = [None] * len(saved)
                    watched = []
                sources[k] = found
                cell = t._version
                if cell is None:
                    cell = t._version = [0]
                watched.append((cell, cell[0]))
            k += 1
        self.watched = watched
        self.saved_from = sources

    def release(self):
        """Free what the backward kept, and the inputs that needed no gradient; a later backward raises."""
        self.saved = ()
        self.released = True
        if self.trace is not None:
            self.trace.release_constants()

    def __repr__(self):
        return f"<{self.name} #{getattr(self, 'seq', '?')}>"


def check_finite(backend, array, where):
    """Raise FloatingPointError naming ``where`` when ``array`` holds NaN or inf (``detect_anomaly``)."""
    if array.dtype.kind in "fc" and not bool(backend.xp.isfinite(array).all()):
        kind = "NaN" if bool(backend.xp.isnan(array).any()) else "inf"
        raise FloatingPointError(f"detect_anomaly: {where} produced {kind} (shape {tuple(array.shape)})")
