"""The lecture GRU variants fused: one op per layer direction over a whole sequence, and one per step.

``nn.GRU(variant=...)`` / ``nn.GRUCell(variant=...)`` (equations and row use
on ``nn.GRUCell``; the composed form is ``rnn_composed.gru_cell_composed``)
run these ops for every variant but PyTorch's own, which keeps the kernels of
``rnn.py``. Every variant keeps PyTorch's ``(3H, *)`` layout: three row blocks
(r, z, n or their analogues), each combining an input term and a state term:

* one product for the input projections of all steps, ``x @ W_ihᵀ`` over the
  row blocks that multiply x;
* per step, the recurrent products of the blocks that read the state
  (``h``, ``tanh(h)``, or the gated ``a ⊙ h`` once the first gate ``a`` is
  known) and the pointwise update, as ufuncs on ``self.xp`` arrays, so the
  same code runs on NumPy and CuPy;
* BPTT in reverse with per-step products, then every weight gradient as one
  product per row block over all steps.

Both ops work on the packed layout of ``rnn_packed.py`` (step ``t`` is
``sizes[t]`` rows, a prefix of the batch); a padded ``(T, B, I)`` batch is the
packed batch whose sizes are all ``B``. A whole-sequence op refuses double
backward (as ``FusedSequence`` does); the one-step op differentiates its
composed equations for it (as the other fused cells do).
"""
from __future__ import annotations

from .rnn import FusedCell, FusedSequence
from .rnn_composed import check_gru_input_size, check_gru_variant, gru_cell_composed
from .rnn_packed import PackedSteps

# Per variant: the (input term, state term) of the r, z and n row blocks, and the gate that mixes n into h.
#   input: "w" W_ih x, "x" x itself, "tanh" tanh(x), None (block unused)
#   state: "h" W_hh h, "tanh" W_hh tanh(h), "gated" W_hh (a ⊙ h) with a the first block's gate, None
#   mix:   h' = h + u ⊙ (n − h) with u = 1 − z ("1-z"), z ("z"), or the first gate a ("a", the MGU's f)
# Every used block also adds its rows of b_ih + b_hh.
SPECS = {
    "reset_before": ((("w", "h"), ("w", "h"), ("w", "gated")), "1-z"),
    "no_reset": (((None, None), ("w", "h"), ("w", "h")), "1-z"),
    "mgu": ((("w", "h"), (None, None), ("w", "gated")), "a"),
    "mut1": ((("w", "h"), ("w", None), ("tanh", "gated")), "z"),
    "mut2": ((("x", "h"), ("w", "h"), ("w", "gated")), "z"),
    "mut3": ((("w", "h"), ("w", "tanh"), ("w", "gated")), "z"),
}


class _Plan:
    """A variant's spec as column ranges of the (N, 3H) gate buffers."""

    def __init__(self, variant, H):
        blocks, self.mix = SPECS[variant]
        self.H = H
        self.used = [inp is not None or state is not None for inp, state in blocks]
        w = [k for k, (inp, _) in enumerate(blocks) if inp == "w"]
        self.w_cols = slice(w[0] * H, (w[-1] + 1) * H)  # blocks inside it that are not "w" are unused
        self.special = [(k, inp) for k, (inp, _) in enumerate(blocks) if inp in ("x", "tanh")]
        self.gated = blocks[2][1] == "gated"
        # the state products needing no gate, contiguous blocks with the same source merged: (lo, hi, source)
        self.groups = []
        for k, (_, state) in enumerate(blocks):
            if state in ("h", "tanh"):
                if self.groups and self.groups[-1][1] == k * H and self.groups[-1][2] == state:
                    self.groups[-1] = (self.groups[-1][0], (k + 1) * H, state)
                else:
                    self.groups.append((k * H, (k + 1) * H, state))
        self.tanh_state = any(source == "tanh" for _, _, source in self.groups)


def _sigmoid_(xp, a):
    """σ(a) in place as (1 + tanh(a/2)) / 2, the Sigmoid op's formula (finite for any a)."""
    xp.multiply(a, 0.5, out=a)
    xp.tanh(a, out=a)
    xp.multiply(a, 0.5, out=a)
    xp.add(a, 0.5, out=a)


def _split(extra, bias):
    return (extra[0], extra[1]) if bias else (None, None)


def variant_forward(fn, x, h0, w_ih, w_hh, b_ih, b_hh, steps, reverse):
    """Every step over the packed rows ``x`` (N, I); returns the states (N, H). Saves what BPTT needs."""
    xp, plan = fn.xp, fn.plan
    H, N, B = plan.H, x.shape[0], h0.shape[0]
    act = xp.zeros((N, 3 * H), dtype=x.dtype)  # the pre-activations, then the gates a, z, n
    cols = plan.w_cols
    act[:, cols] = xp.dot(x, w_ih[cols].T)  # every step's input projection in ONE product
    for k, kind in plan.special:
        act[:, k * H : (k + 1) * H] = x if kind == "x" else xp.tanh(x)
    if b_ih is not None:
        act += b_ih + b_hh
    out = xp.empty((N, H), dtype=x.dtype)
    prev = xp.empty((N, H), dtype=x.dtype)
    gated = xp.empty((N, H), dtype=x.dtype) if plan.gated else None  # a ⊙ h_{t-1}
    th = xp.empty((N, H), dtype=x.dtype) if plan.tanh_state else None  # tanh(h_{t-1})
    products = [(lo, hi, source, xp.ascontiguousarray(w_hh[lo:hi].T), xp.empty((B, hi - lo), dtype=x.dtype))
                for lo, hi, source in plan.groups]
    w_n = xp.ascontiguousarray(w_hh[2 * H :].T)
    rec_n = xp.empty((B, H), dtype=x.dtype)
    sig = slice(0 if plan.used[0] else H, 2 * H if plan.used[1] else H)
    for t in steps.order(reverse):
        r, n = steps.rows(t), steps.sizes[t]
        steps.fill_previous(prev[r], out, h0, t, reverse)
        hp, g = prev[r], act[r]
        if th is not None:
            xp.tanh(hp, out=th[r])
        for lo, hi, source, w_t, rec in products:
            xp.dot(hp if source == "h" else th[r], w_t, out=rec[:n])
            g[:, lo:hi] += rec[:n]
        _sigmoid_(xp, g[:, sig])
        a, z, c = g[:, :H], g[:, H : 2 * H], g[:, 2 * H :]
        if gated is not None:
            xp.multiply(a, hp, out=gated[r])
            xp.dot(gated[r], w_n, out=rec_n[:n])
            c += rec_n[:n]
        xp.tanh(c, out=c)
        h = out[r]
        if plan.mix == "1-z":  # h = n + z (h_prev - n)
            xp.subtract(hp, c, out=h)
            h *= z
            h += c
        else:  # h = h_prev + u (n - h_prev)
            xp.subtract(c, hp, out=h)
            h *= z if plan.mix == "z" else a
            h += hp
    fn.save_for_backward(x, w_ih, w_hh, act, prev, gated, th)
    return out


def variant_backward(fn, dout, dh_n, steps, reverse, norms):
    """BPTT of :func:`variant_forward`: (dx rows (N, I), dh0, dW_ih, dW_hh[, db_ih, db_hh]), None where
    nobody needs it; the rows a variant does not use get zero gradients."""
    x, w_ih, w_hh, act, prev, gated, th = fn.saved
    xp, plan = fn.xp, fn.plan
    H, N, B, dtype = plan.H, x.shape[0], steps.B, x.dtype
    dpre = xp.zeros((N, 3 * H), dtype=dtype)  # pre-activation gradients; unused blocks stay zero
    dh = xp.zeros((B, H), dtype=dtype) if dh_n is None else dh_n + 0
    total, tmp, u_buf = (xp.empty((B, H), dtype=dtype) for _ in range(3))
    back = [(lo, hi, source, xp.ascontiguousarray(w_hh[lo:hi]), xp.empty((B, H), dtype=dtype))
            for lo, hi, source in plan.groups]
    w_n = xp.ascontiguousarray(w_hh[2 * H :])
    dq = xp.empty((B, H), dtype=dtype)
    for t in steps.order(not reverse):
        r, n = steps.rows(t), steps.sizes[t]
        d = total[:n]  # dL/dh_t of the running rows
        d[...] = dh[:n]
        if dout is not None:
            d += dout[r]
        if norms is not None:
            norms[t] = xp.sqrt((d * d).sum())
        hp, g, dg = prev[r], act[r], dpre[r]
        a, z, c = g[:, :H], g[:, H : 2 * H], g[:, 2 * H :]
        da, dz, dc = dg[:, :H], dg[:, H : 2 * H], dg[:, 2 * H :]
        tm = tmp[:n]
        if plan.mix == "1-z":
            u = xp.subtract(1, z, out=u_buf[:n])
        else:
            u = z if plan.mix == "z" else a
        xp.multiply(d, u, out=dc)  # dL/dn, then through tanh
        xp.multiply(c, c, out=tm)
        xp.subtract(1, tm, out=tm)
        dc *= tm
        xp.subtract(1, u, out=tm)
        dnew = dh[:n]
        xp.multiply(d, tm, out=dnew)  # the direct path h_{t-1} → h_t
        mixed = dz if plan.mix in ("1-z", "z") else da
        if plan.mix == "1-z":
            xp.subtract(hp, c, out=mixed)  # dL/du ⊙ du/dz = -(n - h_prev) ⊙ d
        else:
            xp.subtract(c, hp, out=mixed)
        mixed *= d
        if gated is not None:
            dqn = dq[:n]
            xp.dot(dc, w_n, out=dqn)  # dL/d(a ⊙ h_{t-1})
            xp.multiply(dqn, hp, out=tm)
            if plan.mix == "a":
                da += tm
            else:
                da[...] = tm
            xp.multiply(dqn, a, out=tm)
            dnew += tm
        for k, (gate, dgate) in enumerate(((a, da), (z, dz))):
            if plan.used[k]:
                xp.subtract(1, gate, out=tm)
                tm *= gate
                dgate *= tm
        for lo, hi, source, w, buf in back:
            part = buf[:n]
            xp.dot(dg[:, lo:hi], w, out=part)
            if source == "tanh":
                xp.multiply(th[r], th[r], out=tm)
                xp.subtract(1, tm, out=tm)
                part *= tm
            dnew += part
    dh0 = dh if fn.next[1] is not None else None
    return (_dx(fn, x, w_ih, dpre), dh0, *_weight_grads(fn, x, prev, gated, th, dpre))


def _dx(fn, x, w_ih, dpre):
    """dL/dx rows: the W_ih blocks' product, plus the blocks that read x (or tanh x) directly."""
    if fn.next[0] is None:
        return None
    xp, plan = fn.xp, fn.plan
    H, cols = plan.H, plan.w_cols
    dx = xp.dot(dpre[:, cols], w_ih[cols])
    for k, kind in plan.special:
        block = dpre[:, k * H : (k + 1) * H]
        if kind == "x":
            dx += block
        else:
            th = xp.tanh(x)
            dx += block * (1 - th * th)
    return dx


def _weight_grads(fn, x, prev, gated, th, dpre):
    """[dW_ih, dW_hh] (+ [db_ih, db_hh]): one product per row block over all N rows; zero rows where unused."""
    xp, plan = fn.xp, fn.plan
    H = plan.H
    needs = [link is not None for link in fn.next[2:]]
    dw_ih = dw_hh = None
    if needs[0]:
        dw_ih = xp.zeros((3 * H, x.shape[1]), dtype=x.dtype)
        dw_ih[plan.w_cols] = xp.dot(dpre[:, plan.w_cols].T, x)
    if needs[1]:
        dw_hh = xp.zeros((3 * H, H), dtype=x.dtype)
        for lo, hi, source in plan.groups:
            dw_hh[lo:hi] = xp.dot(dpre[:, lo:hi].T, prev if source == "h" else th)
        if gated is not None:
            dw_hh[2 * H :] = xp.dot(dpre[:, 2 * H :].T, gated)
    if not fn.bias:
        return [dw_ih, dw_hh]
    db = dpre.sum(axis=0) if needs[2] or needs[3] else None  # b_ih and b_hh enter every block as a sum
    return [dw_ih, dw_hh, db if needs[2] else None, db if needs[3] else None]


def _setup(fn, x, h0, extra, bias, variant):
    where = type(fn).__name__
    fn.variant = check_gru_variant(where, variant)
    if variant == "pytorch":
        raise ValueError(f"{where}: variant 'pytorch' runs as GRUSequenceFn / GRUCellFn (ops/rnn.py)")
    check_gru_input_size(where, variant, x.shape[-1], h0.shape[-1], "the input's size")
    fn.bias, fn.plan, fn.cell = bool(bias), _Plan(variant, h0.shape[-1]), "gru_" + variant
    return _split(extra, fn.bias)


class GRUVariantSequenceFn(FusedSequence):
    """A whole layer direction of a lecture GRU variant (``variant``, see ``nn.GRUCell``) as one op.

    Inputs ``(x (T, B, I), h0 (B, H), W_ih, W_hh[, b_ih, b_hh])`` (or packed rows ``x (N, I)`` with
    ``batch_sizes``); outputs ``(output (T, B, H) or (N, H), h_n (B, H))``, as ``GRUSequenceFn``.
    """

    output_names = ("output", "h_n")

    def forward(self, x, h0, w_ih, w_hh, *extra, bias=True, variant="reset_before", layer=0, direction=0,
                batch_sizes=None):
        b_ih, b_hh = _setup(self, x, h0, extra, bias, variant)
        self.reverse = int(direction)
        self.describe(self.cell, x.shape[0], h0.shape[-1], layer, direction, batch_sizes)
        if batch_sizes is None:
            T, B = x.shape[0], x.shape[1]
            x = x.reshape(T * B, x.shape[2])
            batch_sizes = (B,) * T
        self.packed = PackedSteps(type(self).__name__, batch_sizes, x.shape[0], h0.shape[0])
        out = variant_forward(self, x, h0, w_ih, w_hh, b_ih, b_hh, self.packed, self.reverse)
        final = self.packed.finals(self.xp, out, self.reverse)
        return (out if self.active is not None else out.reshape(self.steps, -1, out.shape[-1])), final

    def backprop(self, dout, dh_n, norms):
        if dout is not None and self.active is None:
            dout = dout.reshape(-1, dout.shape[-1])
        return variant_backward(self, dout, dh_n, self.packed, self.reverse, norms)

    def graph_backward(self, *grads):
        """Refused, as for the other whole-sequence ops; the composed cells record every gate instead."""
        raise RuntimeError(
            f"GRU(variant={self.variant!r}) layer {self.layer} (direction {self.direction}) ran as one fused "
            f"whole-sequence op, which does not support double backward (create_graph=True); build the layer "
            f"with impl=\"composed\" (or impl=\"fused_step\") to differentiate its gradients"
        )


class GRUVariantCellFn(FusedCell):
    """One step of a lecture GRU variant as one op: h' from (x (B, I), h (B, H)), hand-written backward.

    A ``create_graph`` backward differentiates :func:`gru_cell_composed` with the same ``variant``.
    """

    output_names = ("h",)

    def forward(self, x, h, w_ih, w_hh, *extra, bias=True, variant="reset_before"):
        b_ih, b_hh = _setup(self, x, h, extra, bias, variant)
        self.keep_inputs(x, h, w_ih, w_hh, *extra)
        self.packed = PackedSteps(type(self).__name__, (x.shape[0],), x.shape[0], h.shape[0])
        return variant_forward(self, x, h, w_ih, w_hh, b_ih, b_hh, self.packed, 0)

    def backward(self, dh):
        return variant_backward(self, None, dh, self.packed, 0, None)

    def composed(self, x, h, w_ih, w_hh, *extra):
        b_ih, b_hh = _split(extra, self.bias)
        return gru_cell_composed(x, h, w_ih, w_hh, b_ih, b_hh, self.variant)


__all__ = ["GRUVariantSequenceFn", "GRUVariantCellFn", "SPECS"]
