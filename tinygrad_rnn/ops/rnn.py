"""Fused recurrent ops: one Function per cell step, and one per layer and direction over a whole sequence.

A fused op does the work of a whole cell (or a whole sequence of cells)
in a single :class:`~tinygrad_rnn.autograd.Function` with a hand-written
backward, so the tape holds one node where the composed cell holds ~25.

The whole-sequence ops (``RNNSequenceFn``, ``LSTMSequenceFn``,
``GRUSequenceFn``) run, for ``T`` steps, batch ``B``, hidden size ``H`` and
``G`` gates:

* the input projection of all steps as ONE matmul ``(T*B, I) @ W_ihᵀ``;
* per step, one recurrent matmul ``h_{t-1} @ W_hhᵀ`` written into a
  preallocated buffer, and one pointwise update (activations, cell state,
  hidden state) written into preallocated buffers by the backend's gate
  kernels (``Backend.rnn_kernels()``: NumPy ufuncs with ``out=`` in
  ``backends/rnn_kernels_numpy.py``, a single CUDA kernel on CuPy);
* a backward (BPTT) that walks the steps in reverse with one matmul and one
  pointwise update per step, then gets every weight gradient as ONE matmul
  over all steps, e.g. ``dW_hh = dGatesᵀ @ H_prev`` with ``(G*H, T*B) @ (T*B, H)``.
  The Elman RNN does this in blocks of steps on long sequences (one matmul
  per block), so it never holds the pre-activation gradients of all T steps.

They save only what BPTT needs: the hidden states of all steps (``h_0 ..
h_T``), the activated gates, and for the LSTM the cell states, for the GRU
the recurrent part of the candidate (``W_hn h + b_hn``).

The three whole-sequence ops share one backward (:class:`FusedSequence`),
which also declares what the graph renderer reads off them; the three
per-step ops share :class:`FusedCell`.

State buffers ``hs`` (and ``cs``) have ``T + 1`` rows: the forward direction
reads ``h_{t-1}`` from row ``t`` and writes ``h_t`` to row ``t + 1``; the
reverse direction walks ``t = T-1 .. 0``, reads row ``t + 1`` and writes row
``t``. Either way the output at time ``t`` is the state after reading ``x_t``.

Given ``batch_sizes`` (a packed batch, see ``nn.utils.rnn``), the sequence ops
run on the packed layout instead, ``x`` of shape ``(sum(batch_sizes), I)``,
computing only the running sequences of each step (``ops/rnn_packed.py``).
"""
from __future__ import annotations

from ..autograd import Function
from .rnn_composed import (
    fused_cell_graph_backward, gru_cell_composed, keep_whole_cell_grad, lstm_cell_composed, lstm_kind,
    rnn_cell_composed,
)
from . import rnn_packed


# --------------------------------------------------------------------------- shared pieces
def _steps(T, reverse):
    return range(T - 1, -1, -1) if reverse else range(T)


def _projection(xp, x2, w_ih, biases, T, B):
    """All steps' input projections as ONE matmul: (T*B, I) @ W_ihᵀ (+ biases) → (T, B, G*H)."""
    out = xp.matmul(x2, w_ih.T)
    _add_biases(out, biases)
    return out.reshape(T, B, -1)


def _add_biases(out, biases):
    """``out += b_ih + b_hh`` (either may be None), adding the vectors first: one pass over ``out``."""
    present = [b for b in biases if b is not None]
    if present:
        out += present[0] if len(present) == 1 else present[0] + present[1]


def _state_buffer(xp, first, T, reverse):
    """A (T+1, B, H) buffer with the initial state in the row the direction starts from."""
    buffer = xp.empty((T + 1,) + tuple(first.shape), dtype=first.dtype)
    buffer[T if reverse else 0] = first
    return buffer


def _copy(xp, array):
    out = xp.empty(array.shape, dtype=array.dtype)
    out[...] = array
    return out


def _record_norm(xp, norms, t, *parts):
    """‖Σ parts‖ into norms[t] (only inside retain_grads(): it costs a temporary)."""
    if norms is None:
        return
    total = None
    for p in parts:
        if p is not None:
            total = p + 0 if total is None else total + p
    norms[t] = xp.sqrt((total * total).sum())


def _split_extra(extra, bias, peephole):
    """(b_ih, b_hh, w_ch) from the optional inputs after the weights."""
    extra = list(extra)
    b_ih = b_hh = w_ch = None
    if bias:
        b_ih, b_hh = extra[0], extra[1]
        extra = extra[2:]
    if peephole:
        w_ch = extra[0]
    return b_ih, b_hh, w_ch


#: a sequence whose (T, B, H) gradient has at most this many elements is backpropagated as one block
BLOCK_ELEMENTS = 1 << 16


def _block_steps(T, B, H):
    """How many steps' pre-activation gradients BPTT holds at once: all T for short sequences; for long
    ones about T/64 (at least 256 rows), so a step's memory stays near the saved states themselves."""
    if T * B * H <= BLOCK_ELEMENTS:
        return T
    return min(T, max(-(-T // 64), -(-256 // B)))


def _first_step(T, reverse):
    """The time step whose input state is h0: BPTT ends there, and its recurrent product is dL/dh0 alone
    (skipped when h0 needs no gradient, ``fn.next[1] is None``)."""
    return T - 1 if reverse else 0


def _blocks(T, steps, reverse):
    """(start, stop) time ranges of ``steps`` steps covering 0..T, the last first when ``reverse``
    (like :func:`_steps`)."""
    starts = range(0, T, steps)
    return [(start, min(start + steps, T)) for start in (reversed(starts) if reverse else starts)]


class _GradientSums:
    """dx and the weight/bias gradients of a sequence op, added up block by block of BPTT.

    Each :meth:`add` costs ONE matmul or sum per gradient over the block's
    ``(stop - start) * B`` rows, e.g. ``dW_hh += dGatesᵀ @ H_prev``. ``first``
    is the input index of W_ih; ``hprev`` holds h_{t-1} of every step, (T, B, H).
    Gradients nobody needs (``fn.next[k] is None``) are not computed; when the
    input and recurrent sides share their pre-activation gradient (RNN, LSTM),
    db_ih and db_hh are the same sum, computed once.
    """

    def __init__(self, fn, first, x2, hprev, w_ih):
        self.xp, self.x2, self.w_ih = fn.xp, x2, w_ih
        self.hprev = hprev.reshape(-1, hprev.shape[-1])
        self.batch = hprev.shape[1]
        needs = [link is not None for link in fn.next]
        self.need_dx = needs[0]
        self.need_weights = needs[first : first + 2]
        self.need_biases = needs[first + 2 : first + 4]
        self.dx_rows = self.xp.empty(x2.shape, dtype=x2.dtype) if self.need_dx else None
        self.sums = [None] * 4  # dW_ih, dW_hh, db_ih, db_hh
        self.shared = True

    def add(self, start, stop, dg_in, dg_rec):
        """Add steps start..stop-1: ``dg_in`` / ``dg_rec`` are their input-side and recurrent-side
        pre-activation gradients, (stop - start, B, G*H) (the same array except for the GRU)."""
        rows = slice(start * self.batch, stop * self.batch)
        gi = dg_in.reshape(-1, dg_in.shape[-1])
        gh = dg_rec.reshape(-1, dg_rec.shape[-1])
        self.shared = self.shared and dg_rec is dg_in
        if self.dx_rows is not None:
            self.xp.dot(gi, self.w_ih, out=self.dx_rows[rows])
        parts = [
            gi.T @ self.x2[rows] if self.need_weights[0] else None,
            gh.T @ self.hprev[rows] if self.need_weights[1] else None,
            None,
            None,
        ]
        if any(self.need_biases):
            if self.shared:
                parts[2] = gi.sum(axis=0)
            else:
                parts[2] = gi.sum(axis=0) if self.need_biases[0] else None
                parts[3] = gh.sum(axis=0) if self.need_biases[1] else None
        for k, part in enumerate(parts):
            if part is not None:
                if self.sums[k] is None:
                    self.sums[k] = part
                else:
                    self.sums[k] += part

    @property
    def dx(self):
        """The input's gradient as rows, (T*B, I) (None if not needed)."""
        return self.dx_rows

    def grads(self, bias):
        """[dW_ih, dW_hh] (+ [db_ih, db_hh] with ``bias``), None where not needed."""
        if not bias:
            return self.sums[:2]
        db_ih, db_hh = self.sums[2], (self.sums[2] if self.shared else self.sums[3])
        return [*self.sums[:2], db_ih if self.need_biases[0] else None, db_hh if self.need_biases[1] else None]


def _writable_grad(xp, grad, like):
    """A copy of an output's gradient that BPTT may overwrite; zeros of ``like``'s shape when nothing used
    that output (it arrives as None)."""
    return xp.zeros(like.shape, dtype=like.dtype) if grad is None else _copy(xp, grad)


class FusedSequence(Function):
    """A whole layer direction over the sequence as one op: the shared backward, and what the renderer reads.

    Subclasses implement ``forward`` (calling :meth:`describe`) and
    ``backprop(dout, *dstates, norms) -> (dx rows (T*B, I), dstate_0..., dweights...)``, None for a
    gradient its input does not need (dL/dh0 then skips BPTT's last recurrent product).
    The renderer draws the op as ``steps`` cells of kind ``cell`` (``"rnn_tanh"``,
    ``"rnn_relu"``, ``"lstm"``, ``"gru"``) for ``layer`` and ``direction``, and,
    inside ``retain_grads()``, shades step t by ``trace.step_grad_norms[t]``,
    the norm of the total gradient dL/dh_t.
    """

    draw_as = "sequence"
    cell = None
    steps = hidden_size = layer = direction = None
    #: on a packed batch, how many sequences run at each step (``batch_sizes``); None on a padded one
    active = None

    def describe(self, cell, T, H, layer, direction, active=None):
        """Record what the renderer reads (called by ``forward``); ``T`` is ``len(active)`` when packed."""
        if active is not None:
            active = tuple(int(n) for n in active)
            T = len(active)
        self.cell, self.steps, self.hidden_size, self.layer, self.direction = cell, T, H, layer, direction
        self.active = active

    def graph_backward(self, *grads):
        """Refused, as cuDNN's RNNs in PyTorch refuse it: the whole-sequence kernels have no recorded form."""
        layer = {"rnn_tanh": "RNN", "rnn_relu": "RNN", "gru": "GRU"}.get(self.cell, self.cell)
        layer = "LSTM" if layer.startswith("lstm") else layer
        raise RuntimeError(
            f"{layer} layer {self.layer} (direction {self.direction}) ran as one fused whole-sequence op, which "
            f"does not support double backward (create_graph=True); build the layer with impl=\"composed\" "
            f"(or impl=\"fused_step\") to differentiate its gradients"
        )

    def backward(self, dout, *dstates):
        norms = self.xp.zeros((self.steps,), dtype=self.saved[0].dtype) if self.trace.keep_grads else None
        dx, *grads = self.backprop(dout, *dstates, norms=norms)
        if norms is not None:
            self.trace.step_grad_norms = [float(v) for v in self.backend.to_host(norms)]
        if dx is not None and self.active is None:
            dx = dx.reshape(self.steps, -1, dx.shape[-1])
        return (dx, *grads)


class FusedCell(Function):
    """One time step of a cell as one op (drawn as a cell of kind ``cell``, its gates inside).

    It also keeps its input arrays (``input_arrays``, freed with the saved ones):
    a ``create_graph`` backward differentiates the cell's composed equations on
    them (``rnn_composed.fused_cell_graph_backward``), so gradients through
    fused cells can be differentiated again."""

    draw_as = "cell"
    cell = None
    input_arrays = None

    def keep_inputs(self, *arrays):
        self.input_arrays = arrays

    def release(self):
        super().release()
        self.input_arrays = None

    def graph_backward(self, *grads):
        return fused_cell_graph_backward(self, grads)


# --------------------------------------------------------------------------- Elman RNN
def _rnn_forward(fn, x, h0, w_ih, w_hh, b_ih, b_hh, reverse, relu):
    xp = fn.xp
    kernels = fn.backend.rnn_kernels()
    T, B, I = x.shape
    x2 = x.reshape(T * B, I)
    hs = _state_buffer(xp, h0, T, reverse)
    # Each step's input projection goes where its h_t will be written: no separate (T, B, H) buffer.
    pre = hs[1 - reverse : T + 1 - reverse]
    xp.dot(x2, w_ih.T, out=pre.reshape(T * B, -1))
    _add_biases(pre, (b_ih, b_hh))
    rec = xp.empty(h0.shape, dtype=x.dtype)
    w_hh_t = xp.ascontiguousarray(w_hh.T)  # BLAS is faster on a contiguous right operand
    dot, update = xp.dot, kernels.rnn_forward  # dot: less call overhead than matmul on small arrays
    for t in _steps(T, reverse):
        h = pre[t]
        dot(hs[t + reverse], w_hh_t, out=rec)
        update(h, rec, h, relu)
    fn.save_for_backward(x2, w_ih, w_hh, hs)
    return hs


def _rnn_backward(fn, dout, dh_n, reverse, relu, norms):
    x2, w_ih, w_hh, hs = fn.saved
    xp = fn.xp
    kernels = fn.backend.rnn_kernels()
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    h_out = hs[1 - reverse : T + 1 - reverse]
    sums = _GradientSums(fn, 2, x2, hs[reverse : T + reverse], w_ih)
    steps = _block_steps(T, B, H)
    dpre = xp.empty((steps, B, H), dtype=hs.dtype)
    dh = _writable_grad(xp, dh_n, hs[0])
    dot, update = xp.dot, kernels.rnn_backward
    need_h0, first = fn.next[1] is not None, _first_step(T, reverse)
    for start, stop in _blocks(T, steps, not reverse):
        block = dpre[: stop - start]
        kernels.rnn_backward_prepare(h_out[start:stop], block, relu)
        for t in _steps(stop - start, not reverse):
            dout_t = None if dout is None else dout[start + t]
            if norms is not None:
                _record_norm(xp, norms, start + t, dh, dout_t)
            d = block[t]
            update(dh, dout_t, h_out[start + t], d, relu)
            if need_h0 or start + t != first:
                dot(d, w_hh, out=dh)
        sums.add(start, stop, block, block)
    return (sums.dx, dh if need_h0 else None, *sums.grads(fn.bias))


class RNNSequenceFn(FusedSequence):
    """A whole Elman RNN layer direction, h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), as one op.

    Inputs ``(x (T, B, I), h0 (B, H), W_ih, W_hh[, b_ih, b_hh])``; outputs
    ``(output (T, B, H), h_n (B, H))``. ``direction=1`` reads the sequence
    backwards (output[t] is still the state after x_t).
    """

    output_names = ("output", "h_n")

    def forward(self, x, h0, w_ih, w_hh, *extra, bias=True, nonlinearity="tanh", layer=0, direction=0,
                batch_sizes=None):
        b_ih, b_hh, _ = _split_extra(extra, bias, False)
        self.bias, self.relu, self.reverse = bias, nonlinearity == "relu", int(direction)
        self.describe("rnn_" + nonlinearity, x.shape[0], h0.shape[-1], layer, direction, batch_sizes)
        if batch_sizes is not None:
            return rnn_packed.rnn_forward(self, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, self.reverse, self.relu)
        hs = _rnn_forward(self, x, h0, w_ih, w_hh, b_ih, b_hh, self.reverse, self.relu)
        T = x.shape[0]
        return hs[1 - self.reverse : T + 1 - self.reverse], _copy(self.xp, hs[0 if self.reverse else T])

    def backprop(self, dout, dh_n, norms):
        if self.active is not None:
            return rnn_packed.rnn_backward(self, dout, dh_n, self.reverse, self.relu, norms)
        return _rnn_backward(self, dout, dh_n, self.reverse, self.relu, norms)


class RNNCellFn(FusedCell):
    """One Elman RNN step, h' = act(W_ih x + b_ih + W_hh h + b_hh), as one op with a hand-written backward."""

    output_names = ("h",)

    def forward(self, x, h, w_ih, w_hh, *extra, bias=True, nonlinearity="tanh"):
        b_ih, b_hh, _ = _split_extra(extra, bias, False)
        self.bias, self.relu = bias, nonlinearity == "relu"
        self.cell = "rnn_" + nonlinearity
        self.keep_inputs(x, h, w_ih, w_hh, *extra)
        hs = _rnn_forward(self, x[None], h, w_ih, w_hh, b_ih, b_hh, 0, self.relu)
        return hs[1]

    def backward(self, dh):
        return _rnn_backward(self, None, dh, 0, self.relu, None)

    def composed(self, x, h, w_ih, w_hh, *extra):
        b_ih, b_hh, _ = _split_extra(extra, self.bias, False)
        return rnn_cell_composed(x, h, w_ih, w_hh, b_ih, b_hh, "relu" if self.relu else "tanh")


# --------------------------------------------------------------------------- LSTM
def _lstm_forward(fn, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_ch, reverse, coupled):
    xp = fn.xp
    kernels = fn.backend.rnn_kernels()
    T, B, I = x.shape
    x2 = x.reshape(T * B, I)
    gates = _projection(xp, x2, w_ih, (b_ih, b_hh), T, B)
    hs = _state_buffer(xp, h0, T, reverse)
    cs = _state_buffer(xp, c0, T, reverse)
    rec = xp.empty((B, gates.shape[-1]), dtype=x.dtype)
    tmp = xp.empty(h0.shape, dtype=x.dtype)
    w_hh_t = xp.ascontiguousarray(w_hh.T)  # BLAS is faster on a contiguous right operand
    for t in _steps(T, reverse):
        prev, cur = t + reverse, t + 1 - reverse
        xp.dot(hs[prev], w_hh_t, out=rec)
        kernels.lstm_forward(gates[t], rec, cs[prev], cs[cur], hs[cur], w_ch, coupled, tmp)
    fn.save_for_backward(x2, w_ih, w_hh, w_ch, gates, hs, cs)
    return hs, cs


def _lstm_backward(fn, dout, dh_n, dc_n, reverse, coupled, norms, cell_norms=None):
    x2, w_ih, w_hh, w_ch, gates, hs, cs = fn.saved
    xp = fn.xp
    kernels = fn.backend.rnn_kernels()
    T, H = hs.shape[0] - 1, hs.shape[-1]
    dgates = xp.empty(gates.shape, dtype=gates.dtype)
    dh = _writable_grad(xp, dh_n, hs[0])
    dc = _writable_grad(xp, dc_n, cs[0])
    dc_prev = xp.empty(dc.shape, dtype=dc.dtype)
    tmp = xp.empty(dc.shape, dtype=dc.dtype)
    need_h0, first = fn.next[1] is not None, _first_step(T, reverse)
    for t in _steps(T, not reverse):
        prev, cur = t + reverse, t + 1 - reverse
        dout_t = None if dout is None else dout[t]
        _record_norm(xp, norms, t, dh, dout_t)
        if cell_norms is not None:
            total = rnn_packed.lstm_cell_grad(xp, dh, dout_t, dc, gates[t], cs[cur], w_ch)
            cell_norms[t] = xp.sqrt((total * total).sum())
        kernels.lstm_backward(dh, dout_t, dc, gates[t], cs[prev], cs[cur], w_ch, coupled, dgates[t], dc_prev, tmp)
        if need_h0 or t != first:
            xp.dot(dgates[t], w_hh, out=dh)
        dc, dc_prev = dc_prev, dc
    sums = _GradientSums(fn, 3, x2, hs[reverse : T + reverse], w_ih)
    sums.add(0, T, dgates, dgates)
    dx, grads = sums.dx, sums.grads(fn.bias)
    if w_ch is not None:
        dw_ch = None
        if fn.next[-1] is not None:
            c_prev, c_cur = cs[reverse : T + reverse], cs[1 - reverse : T + 1 - reverse]
            dw_ch = xp.empty((3 * H,), dtype=dgates.dtype)
            dw_ch[:H] = (dgates[..., :H] * c_prev).sum(axis=(0, 1))
            dw_ch[H : 2 * H] = (dgates[..., H : 2 * H] * c_prev).sum(axis=(0, 1))
            dw_ch[2 * H :] = (dgates[..., 3 * H :] * c_cur).sum(axis=(0, 1))
        grads.append(dw_ch)
    return (dx, dh if need_h0 else None, dc, *grads)


class LSTMSequenceFn(FusedSequence):
    """A whole LSTM layer direction as one op (PyTorch's equations, gate order i, f, g, o).

    Inputs ``(x (T, B, I), h0, c0 (B, H), W_ih, W_hh[, b_ih, b_hh][, w_ch])``;
    outputs ``(output (T, B, H), h_n, c_n)``. ``peephole`` and ``coupled``
    select the variants described on :class:`~tinygrad_rnn.nn.LSTMCell`
    (drawn as the cell kinds ``"lstm_peephole"``, ``"lstm_coupled"``,
    ``"lstm_peephole_coupled"``). Inside ``retain_grads()`` its backward also
    records ``trace.step_cell_grad_norms``: ‖dL/dc_t‖ per step, the whole
    gradient of c_t (through c_{t+1} and through h_t alike).
    """

    output_names = ("output", "h_n", "c_n")

    def forward(self, x, h0, c0, w_ih, w_hh, *extra, bias=True, peephole=False, coupled=False, layer=0, direction=0,
                batch_sizes=None):
        b_ih, b_hh, w_ch = _split_extra(extra, bias, peephole)
        self.bias, self.coupled, self.reverse = bias, coupled, int(direction)
        self.describe(lstm_kind(peephole, coupled), x.shape[0], h0.shape[-1], layer, direction, batch_sizes)
        if batch_sizes is not None:
            return rnn_packed.lstm_forward(
                self, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_ch, batch_sizes, self.reverse, coupled
            )
        hs, cs = _lstm_forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_ch, self.reverse, coupled)
        T, last = x.shape[0], (0 if self.reverse else x.shape[0])
        return hs[1 - self.reverse : T + 1 - self.reverse], _copy(self.xp, hs[last]), _copy(self.xp, cs[last])

    def backprop(self, dout, dh_n, dc_n, norms):
        cell_norms = None if norms is None else self.xp.zeros(norms.shape, dtype=norms.dtype)
        backward = rnn_packed.lstm_backward if self.active is not None else _lstm_backward
        grads = backward(self, dout, dh_n, dc_n, self.reverse, self.coupled, norms, cell_norms)
        if cell_norms is not None:
            self.trace.step_cell_grad_norms = [float(v) for v in self.backend.to_host(cell_norms)]
        return grads


class LSTMCellFn(FusedCell):
    """One LSTM step as one op: (h', c') from (x, h, c), with a hand-written backward.

    A retained c' (or one kept by ``retain_grads()``) gets the whole dL/dc', see
    :func:`~tinygrad_rnn.ops.rnn_composed.keep_whole_cell_grad`.
    """

    cell = "lstm"
    output_names = ("h", "c")

    def forward(self, x, h, c, w_ih, w_hh, *extra, bias=True, peephole=False, coupled=False):
        b_ih, b_hh, w_ch = _split_extra(extra, bias, peephole)
        self.bias, self.coupled, self.peephole = bias, coupled, peephole
        self.cell = lstm_kind(peephole, coupled)
        self.keep_inputs(x, h, c, w_ih, w_hh, *extra)
        hs, cs = _lstm_forward(self, x[None], h, c, w_ih, w_hh, b_ih, b_hh, w_ch, 0, coupled)
        return hs[1], cs[1]

    def backward(self, dh, dc):
        keep_whole_cell_grad(self, dh, dc)
        return _lstm_backward(self, None, dh, dc, 0, self.coupled, None)

    def composed(self, x, h, c, w_ih, w_hh, *extra):
        b_ih, b_hh, w_ch = _split_extra(extra, self.bias, self.peephole)
        return lstm_cell_composed(x, h, c, w_ih, w_hh, b_ih, b_hh, w_ch, self.coupled)


# --------------------------------------------------------------------------- GRU
def _gru_forward(fn, x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    xp = fn.xp
    kernels = fn.backend.rnn_kernels()
    T, B, I = x.shape
    H = h0.shape[-1]
    x2 = x.reshape(T * B, I)
    gates = _projection(xp, x2, w_ih, (b_ih,), T, B)
    hn = xp.empty((T, B, H), dtype=x.dtype)
    hs = _state_buffer(xp, h0, T, reverse)
    rec = xp.empty((B, 3 * H), dtype=x.dtype)
    w_hh_t = xp.ascontiguousarray(w_hh.T)  # BLAS is faster on a contiguous right operand
    for t in _steps(T, reverse):
        prev, cur = t + reverse, t + 1 - reverse
        xp.dot(hs[prev], w_hh_t, out=rec)
        kernels.gru_forward(gates[t], rec, b_hh, hs[prev], hs[cur], hn[t])
    fn.save_for_backward(x2, w_ih, w_hh, gates, hn, hs)
    return hs


def _gru_backward(fn, dout, dh_n, reverse, norms):
    x2, w_ih, w_hh, gates, hn, hs = fn.saved
    xp = fn.xp
    kernels = fn.backend.rnn_kernels()
    T = hs.shape[0] - 1
    B, H = hs.shape[1], hs.shape[2]
    # pre-activation gradients are held for one block of steps at a time (all T for short sequences)
    steps = _block_steps(T, B, H)
    dgi = xp.empty((steps,) + gates.shape[1:], dtype=gates.dtype)
    dgh = xp.empty((steps,) + gates.shape[1:], dtype=gates.dtype)
    sums = _GradientSums(fn, 2, x2, hs[reverse : T + reverse], w_ih)
    # dL/dh_t = dhz (through z, from step t+1) + rec (through W_hh) + dout_t
    dhz = _writable_grad(xp, dh_n, hs[0])
    dhz_next = xp.empty(dhz.shape, dtype=dhz.dtype)
    rec = xp.zeros(dhz.shape, dtype=dhz.dtype)
    tmp = xp.empty(dhz.shape, dtype=dhz.dtype)
    need_h0, first = fn.next[1] is not None, _first_step(T, reverse)
    for start, stop in _blocks(T, steps, not reverse):
        for k in _steps(stop - start, not reverse):
            t = start + k
            dout_t = None if dout is None else dout[t]
            _record_norm(xp, norms, t, dhz, rec, dout_t)
            kernels.gru_backward(dhz, rec, dout_t, gates[t], hn[t], hs[t + reverse], dgi[k], dgh[k], dhz_next, tmp)
            if need_h0 or t != first:
                xp.dot(dgh[k], w_hh, out=rec)
            dhz, dhz_next = dhz_next, dhz
        sums.add(start, stop, dgi[: stop - start], dgh[: stop - start])
    dh0 = dhz + rec if need_h0 else None
    dx, grads = sums.dx, sums.grads(fn.bias)
    return (dx, dh0, *grads)


class GRUSequenceFn(FusedSequence):
    """A whole GRU layer direction as one op (PyTorch's equations, gate order r, z, n).

    Inputs ``(x (T, B, I), h0 (B, H), W_ih, W_hh[, b_ih, b_hh])``; outputs
    ``(output (T, B, H), h_n (B, H))``.
    """

    output_names = ("output", "h_n")

    def forward(self, x, h0, w_ih, w_hh, *extra, bias=True, layer=0, direction=0, batch_sizes=None):
        b_ih, b_hh, _ = _split_extra(extra, bias, False)
        self.bias, self.reverse = bias, int(direction)
        self.describe("gru", x.shape[0], h0.shape[-1], layer, direction, batch_sizes)
        if batch_sizes is not None:
            return rnn_packed.gru_forward(self, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, self.reverse)
        hs = _gru_forward(self, x, h0, w_ih, w_hh, b_ih, b_hh, self.reverse)
        T = x.shape[0]
        return hs[1 - self.reverse : T + 1 - self.reverse], _copy(self.xp, hs[0 if self.reverse else T])

    def backprop(self, dout, dh_n, norms):
        if self.active is not None:
            return rnn_packed.gru_backward(self, dout, dh_n, self.reverse, norms)
        return _gru_backward(self, dout, dh_n, self.reverse, norms)


class GRUCellFn(FusedCell):
    """One GRU step as one op: h' from (x, h), with a hand-written backward."""

    cell = "gru"
    output_names = ("h",)

    def forward(self, x, h, w_ih, w_hh, *extra, bias=True):
        b_ih, b_hh, _ = _split_extra(extra, bias, False)
        self.bias = bias
        self.keep_inputs(x, h, w_ih, w_hh, *extra)
        hs = _gru_forward(self, x[None], h, w_ih, w_hh, b_ih, b_hh, 0)
        return hs[1]

    def backward(self, dh):
        return _gru_backward(self, None, dh, 0, None)

    def composed(self, x, h, w_ih, w_hh, *extra):
        b_ih, b_hh, _ = _split_extra(extra, self.bias, False)
        return gru_cell_composed(x, h, w_ih, w_hh, b_ih, b_hh)


__all__ = [
    "FusedSequence",
    "FusedCell",
    "RNNSequenceFn",
    "LSTMSequenceFn",
    "GRUSequenceFn",
    "RNNCellFn",
    "LSTMCellFn",
    "GRUCellFn",
]
