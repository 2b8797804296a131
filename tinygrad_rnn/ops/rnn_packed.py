"""The whole-sequence fused RNN/LSTM/GRU ops on a packed batch: no work for padding, forward or backward.

A packed batch (``nn.utils.rnn.PackedSequence``) stores step ``t`` as the
``batch_sizes[t]`` consecutive rows ``data[off_t : off_t + batch_sizes[t]]``
of the sequences still running, sorted by decreasing length, so the running
sequences of a step are always a *prefix* of the batch. The ops of
``ops/rnn.py`` call these functions when given ``batch_sizes``; they work
directly on that layout, with ``N = sum(batch_sizes)`` rows:

* the input projection of all real steps is ONE matmul ``(N, I) @ W_ihᵀ``;
* step ``t`` multiplies and updates only its ``batch_sizes[t]`` rows (the
  backend's gate kernels on prefix views of the state buffers);
* each step's previous state is copied into a packed ``(N, H)`` buffer as it
  is read, so BPTT ends with every weight gradient as ONE matmul over the
  ``N`` rows, e.g. ``dW_hh = dGatesᵀ @ H_prev``;
* a sequence's state is frozen once it ends: ``h_n`` (and ``c_n``) is its
  state at its own last step. In the reverse direction each sequence starts
  from ``h_0`` at its own last step, so the state read at step ``t`` is the
  output of step ``t + 1`` for the ``batch_sizes[t + 1]`` sequences already
  running and ``h_0`` for those that start at ``t``.

BPTT keeps one ``(B, H)`` gradient per state: rows of sequences not yet (or
no longer) running are simply not touched, so they carry ``dL/dh_n`` until
the sequence's last step, and end as ``dL/dh_0``.
"""
from __future__ import annotations


class PackedSteps:
    """Where each step of a packed batch lives: ``sizes[t]`` rows from ``offsets[t]``."""

    def __init__(self, op, batch_sizes, rows, batch):
        try:
            sizes = tuple(int(b) for b in batch_sizes)
        except (TypeError, ValueError):
            raise TypeError(f"{op}: batch_sizes must be a sequence of ints, got {batch_sizes!r:.80}") from None
        if not sizes or sizes[-1] < 1 or any(b < a for a, b in zip(sizes[1:], sizes)):
            raise ValueError(f"{op}: batch_sizes must be positive and non-increasing, got {list(sizes)!r:.120}")
        if sum(sizes) != rows or sizes[0] != batch:
            raise ValueError(
                f"{op}: batch_sizes {list(sizes)!r:.80} describe {sum(sizes)} rows of a batch of {sizes[0]}, "
                f"but the input has {rows} rows and the initial state a batch of {batch}"
            )
        self.sizes, self.T, self.B, self.N = sizes, len(sizes), sizes[0], rows
        offsets, total = [], 0
        for n in sizes:
            offsets.append(total)
            total += n
        self.offsets = offsets

    def rows(self, t):
        """The slice of step ``t``'s rows."""
        return slice(self.offsets[t], self.offsets[t] + self.sizes[t])

    def order(self, reverse):
        return range(self.T - 1, -1, -1) if reverse else range(self.T)

    def fill_previous(self, prev, out, first, t, reverse):
        """Step t's previous states into ``prev`` (its rows): last step's outputs, or ``first`` (h_0 / c_0)
        for the sequences that start at t."""
        n = self.sizes[t]
        if not reverse:
            if t == 0:
                prev[...] = first
            else:
                start = self.offsets[t - 1]
                prev[...] = out[start : start + n]
            return
        m = self.sizes[t + 1] if t + 1 < self.T else 0
        if m:
            start = self.offsets[t + 1]
            prev[:m] = out[start : start + m]
        if m < n:
            prev[m:] = first[m:n]

    def finals(self, xp, out, reverse):
        """Each sequence's state at its own last step, (B, H): (the reverse direction ends at step 0)."""
        final = xp.empty((self.B,) + tuple(out.shape[1:]), dtype=out.dtype)
        if reverse:
            final[...] = out[: self.B]
            return final
        for t in range(self.T):
            lo, n = (self.sizes[t + 1] if t + 1 < self.T else 0), self.sizes[t]
            if lo < n:
                final[lo:n] = out[self.offsets[t] + lo : self.offsets[t] + n]
        return final


def _add_biases(out, biases):
    present = [b for b in biases if b is not None]
    if present:
        out += present[0] if len(present) == 1 else present[0] + present[1]


def _writable(xp, grad, like):
    if grad is None:
        return xp.zeros(like.shape, dtype=like.dtype)
    out = xp.empty(grad.shape, dtype=grad.dtype)
    out[...] = grad
    return out


def _record_norm(xp, norms, t, n, dout_t, *states):
    """‖dL/dh_t‖ over the step's running rows into norms[t] (only inside retain_grads())."""
    if norms is None:
        return
    total = states[0][:n] + 0
    for s in states[1:]:
        total += s[:n]
    if dout_t is not None:
        total += dout_t
    norms[t] = xp.sqrt((total * total).sum())


def lstm_cell_grad(xp, dh, dout_t, dc, gates, c, w_ch):
    """The whole dL/dc_t of one LSTM step as a new array, computed apart from the fused kernel (which
    keeps it only in a scratch buffer): ``dc`` (the path from c_{t+1}, peepholes of step t+1 included)
    plus the path through h_t = o_t ⊙ tanh(c_t), and through o_t's peephole w_co ⊙ c_t when ``w_ch``.
    ``dh`` is dL/dh_t without the output's ``dout_t``; ``gates`` are the activated gates (i, f, g, o).
    Only called while recording (inside retain_grads(), or for a retained c')."""
    H = c.shape[-1]
    o = gates[:, 3 * H :]
    dh_t = dh if dout_t is None else dh + dout_t
    th = xp.tanh(c)
    dho = dh_t * o
    total = dc + dho * (1 - th * th)
    if w_ch is not None:
        total += dho * th * (1 - o) * w_ch[2 * H :]
    return total


def _weight_grads(fn, first, x, prev, w_ih, dg_in, dg_rec):
    """dx and [dW_ih, dW_hh(, db_ih, db_hh)], each ONE matmul or sum over the N packed rows (None where
    nobody needs it); ``first`` is the input index of W_ih."""
    needs = [link is not None for link in fn.next]
    dx = fn.xp.dot(dg_in, w_ih) if needs[0] else None
    grads = [dg_in.T @ x if needs[first] else None, dg_rec.T @ prev if needs[first + 1] else None]
    if fn.bias:
        db_ih = dg_in.sum(axis=0) if needs[first + 2] or (needs[first + 3] and dg_rec is dg_in) else None
        db_hh = (db_ih if dg_rec is dg_in else dg_rec.sum(axis=0)) if needs[first + 3] else None
        grads += [db_ih if needs[first + 2] else None, db_hh]
    return dx, grads


def _direction_steps(fn, x, h0, batch_sizes):
    return PackedSteps(type(fn).__name__, batch_sizes, x.shape[0], h0.shape[0])


# --------------------------------------------------------------------------- Elman RNN
def rnn_forward(fn, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse, relu):
    """Packed forward: (output (N, H), h_n (B, H))."""
    xp, kernels = fn.xp, fn.backend.rnn_kernels()
    steps = fn.packed = _direction_steps(fn, x, h0, batch_sizes)
    N, H = x.shape[0], h0.shape[-1]
    out = xp.empty((N, H), dtype=x.dtype)
    xp.dot(x, w_ih.T, out=out)  # every real step's input projection in ONE matmul
    _add_biases(out, (b_ih, b_hh))
    prev = xp.empty((N, H), dtype=x.dtype)
    rec = xp.empty((steps.B, H), dtype=x.dtype)
    w_hh_t = xp.ascontiguousarray(w_hh.T)
    for t in steps.order(reverse):
        r, n = steps.rows(t), steps.sizes[t]
        steps.fill_previous(prev[r], out, h0, t, reverse)
        xp.dot(prev[r], w_hh_t, out=rec[:n])
        kernels.rnn_forward(out[r], rec[:n], out[r], relu)
    fn.save_for_backward(x, w_ih, w_hh, out, prev)
    return out, steps.finals(xp, out, reverse)


def rnn_backward(fn, dout, dh_n, reverse, relu, norms):
    x, w_ih, w_hh, out, prev = fn.saved
    xp, kernels, steps = fn.xp, fn.backend.rnn_kernels(), fn.packed
    dpre = xp.empty(out.shape, dtype=out.dtype)
    kernels.rnn_backward_prepare(out, dpre, relu)
    dh = _writable(xp, dh_n, out[: steps.B])
    for t in steps.order(not reverse):
        r, n = steps.rows(t), steps.sizes[t]
        dout_t = None if dout is None else dout[r]
        _record_norm(xp, norms, t, n, dout_t, dh)
        kernels.rnn_backward(dh[:n], dout_t, out[r], dpre[r], relu)
        xp.dot(dpre[r], w_hh, out=dh[:n])
    dx, grads = _weight_grads(fn, 2, x, prev, w_ih, dpre, dpre)
    return (dx, dh, *grads)


# --------------------------------------------------------------------------- LSTM
def lstm_forward(fn, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_ch, batch_sizes, reverse, coupled):
    """Packed forward: (output (N, H), h_n, c_n (B, H))."""
    xp, kernels = fn.xp, fn.backend.rnn_kernels()
    steps = fn.packed = _direction_steps(fn, x, h0, batch_sizes)
    N, H = x.shape[0], h0.shape[-1]
    gates = xp.dot(x, w_ih.T)
    _add_biases(gates, (b_ih, b_hh))
    hs, cs = xp.empty((N, H), dtype=x.dtype), xp.empty((N, H), dtype=x.dtype)
    h_prev, c_prev = xp.empty((N, H), dtype=x.dtype), xp.empty((N, H), dtype=x.dtype)
    rec = xp.empty((steps.B, 4 * H), dtype=x.dtype)
    tmp = xp.empty((steps.B, H), dtype=x.dtype)
    w_hh_t = xp.ascontiguousarray(w_hh.T)
    for t in steps.order(reverse):
        r, n = steps.rows(t), steps.sizes[t]
        steps.fill_previous(h_prev[r], hs, h0, t, reverse)
        steps.fill_previous(c_prev[r], cs, c0, t, reverse)
        xp.dot(h_prev[r], w_hh_t, out=rec[:n])
        kernels.lstm_forward(gates[r], rec[:n], c_prev[r], cs[r], hs[r], w_ch, coupled, tmp[:n])
    fn.save_for_backward(x, w_ih, w_hh, w_ch, gates, h_prev, c_prev, cs)
    return hs, steps.finals(xp, hs, reverse), steps.finals(xp, cs, reverse)


def lstm_backward(fn, dout, dh_n, dc_n, reverse, coupled, norms, cell_norms=None):
    """Packed BPTT; with ``norms`` / ``cell_norms`` (inside retain_grads()) it records ‖dL/dh_t‖ and
    ‖dL/dc_t‖ over each step's running rows."""
    x, w_ih, w_hh, w_ch, gates, h_prev, c_prev, cs = fn.saved
    xp, kernels, steps = fn.xp, fn.backend.rnn_kernels(), fn.packed
    H = cs.shape[-1]
    dgates = xp.empty(gates.shape, dtype=gates.dtype)
    dh = _writable(xp, dh_n, cs[: steps.B])
    dc = _writable(xp, dc_n, cs[: steps.B])
    dc_prev = xp.empty(dc.shape, dtype=dc.dtype)
    tmp = xp.empty(dc.shape, dtype=dc.dtype)
    for t in steps.order(not reverse):
        r, n = steps.rows(t), steps.sizes[t]
        dout_t = None if dout is None else dout[r]
        _record_norm(xp, norms, t, n, dout_t, dh)
        if cell_norms is not None:
            total = lstm_cell_grad(xp, dh[:n], dout_t, dc[:n], gates[r], cs[r], w_ch)
            cell_norms[t] = xp.sqrt((total * total).sum())
        kernels.lstm_backward(dh[:n], dout_t, dc[:n], gates[r], c_prev[r], cs[r], w_ch, coupled, dgates[r],
                              dc_prev[:n], tmp[:n])
        xp.dot(dgates[r], w_hh, out=dh[:n])
        dc[:n] = dc_prev[:n]  # a copy, not a swap: rows past n keep dL/dc_n of the sequences not running
    dx, grads = _weight_grads(fn, 3, x, h_prev, w_ih, dgates, dgates)
    if w_ch is not None:
        dw_ch = None
        if fn.next[-1] is not None:
            dw_ch = xp.empty((3 * H,), dtype=dgates.dtype)
            dw_ch[:H] = (dgates[:, :H] * c_prev).sum(axis=0)
            dw_ch[H : 2 * H] = (dgates[:, H : 2 * H] * c_prev).sum(axis=0)
            dw_ch[2 * H :] = (dgates[:, 3 * H :] * cs).sum(axis=0)
        grads.append(dw_ch)
    return (dx, dh, dc, *grads)


# --------------------------------------------------------------------------- GRU
def gru_forward(fn, x, h0, w_ih, w_hh, b_ih, b_hh, batch_sizes, reverse):
    """Packed forward: (output (N, H), h_n (B, H))."""
    xp, kernels = fn.xp, fn.backend.rnn_kernels()
    steps = fn.packed = _direction_steps(fn, x, h0, batch_sizes)
    N, H = x.shape[0], h0.shape[-1]
    gates = xp.dot(x, w_ih.T)
    _add_biases(gates, (b_ih,))
    hn = xp.empty((N, H), dtype=x.dtype)
    hs, prev = xp.empty((N, H), dtype=x.dtype), xp.empty((N, H), dtype=x.dtype)
    rec = xp.empty((steps.B, 3 * H), dtype=x.dtype)
    w_hh_t = xp.ascontiguousarray(w_hh.T)
    for t in steps.order(reverse):
        r, n = steps.rows(t), steps.sizes[t]
        steps.fill_previous(prev[r], hs, h0, t, reverse)
        xp.dot(prev[r], w_hh_t, out=rec[:n])
        kernels.gru_forward(gates[r], rec[:n], b_hh, prev[r], hs[r], hn[r])
    fn.save_for_backward(x, w_ih, w_hh, gates, hn, prev)
    return hs, steps.finals(xp, hs, reverse)


def gru_backward(fn, dout, dh_n, reverse, norms):
    x, w_ih, w_hh, gates, hn, prev = fn.saved
    xp, kernels, steps = fn.xp, fn.backend.rnn_kernels(), fn.packed
    dgi = xp.empty(gates.shape, dtype=gates.dtype)
    dgh = xp.empty(gates.shape, dtype=gates.dtype)
    # dL/dh = dhz (the direct path, through z) + rec (through W_hh) + dout
    dhz = _writable(xp, dh_n, hn[: steps.B])
    dhz_next = xp.empty(dhz.shape, dtype=dhz.dtype)
    rec = xp.zeros(dhz.shape, dtype=dhz.dtype)
    tmp = xp.empty(dhz.shape, dtype=dhz.dtype)
    for t in steps.order(not reverse):
        r, n = steps.rows(t), steps.sizes[t]
        dout_t = None if dout is None else dout[r]
        _record_norm(xp, norms, t, n, dout_t, dhz, rec)
        kernels.gru_backward(dhz[:n], rec[:n], dout_t, gates[r], hn[r], prev[r], dgi[r], dgh[r], dhz_next[:n],
                             tmp[:n])
        xp.dot(dgh[r], w_hh, out=rec[:n])
        dhz[:n] = dhz_next[:n]
    dx, grads = _weight_grads(fn, 2, x, prev, w_ih, dgi, dgh)
    return (dx, dhz + rec, *grads)


__all__ = ["PackedSteps"]
