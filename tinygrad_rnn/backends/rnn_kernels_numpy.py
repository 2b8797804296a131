"""The pointwise gate updates of the fused RNN ops, as NumPy ufuncs writing into given buffers.

The fused recurrent ops (``ops/rnn.py``) do, per time step, one matrix product
and one pointwise update: activations, cell state, hidden state. The update is
the backend's business: this file is the reference every backend gets by
default; ``rnn_kernels_cupy.py`` does the same work as single CUDA kernels.
"""
from __future__ import annotations


def _sigmoid_(xp, a):
    """σ(a) in place, as (1 + tanh(a/2)) / 2: finite for any a, and the same formula as the Sigmoid op."""
    xp.multiply(a, 0.5, out=a)
    xp.tanh(a, out=a)
    xp.multiply(a, 0.5, out=a)
    xp.add(a, 0.5, out=a)


class ReferencePointwise:
    """The pointwise gate updates of one time step, as ufuncs writing into given buffers (``out=``).

    This is the reference implementation, the default of
    :meth:`Backend.rnn_kernels <tinygrad_rnn.backends.Backend.rnn_kernels>` (any
    array module with NumPy's API); ``rnn_kernels_cupy.py`` has the same methods
    as single CUDA kernels. Arguments are the arrays of one
    step: gate blocks are ``(B, G*H)`` in PyTorch's gate order, states
    ``(B, H)``; ``tmp`` is a ``(B, H)`` scratch buffer. ``dout_t`` (the
    gradient of the layer output at this step) may be None.
    """

    def __init__(self, xp):
        self.xp = xp
        self._gate_rows = {}

    # -- Elman RNN
    def rnn_forward(self, pre, rec, h, relu):
        """h = act(pre + rec), written into ``h``."""
        xp = self.xp
        xp.add(pre, rec, out=h)
        if relu:
            xp.maximum(h, 0, out=h)
        else:
            xp.tanh(h, out=h)

    def rnn_backward_prepare(self, h, dpre, relu):
        """act'(h) for a block of steps, (K, B, H), into ``dpre`` in one vectorised pass, so that
        :meth:`rnn_backward` is a single multiply per step."""
        xp = self.xp
        if relu:
            xp.sign(h, out=dpre)  # h >= 0, so sign(h) is the step function h > 0
        else:
            xp.multiply(h, h, out=dpre)
            xp.subtract(1, dpre, out=dpre)

    def rnn_backward(self, dh, dout_t, h, dpre, relu):
        """dpre = (dh + dout_t) ⊙ act'(h), where ``dpre`` holds act'(h) from :meth:`rnn_backward_prepare`;
        ``dh`` is overwritten."""
        if dout_t is not None:
            dh += dout_t
        dpre *= dh

    # -- LSTM
    def lstm_forward(self, gates, rec, c_prev, c, h, w_ch, coupled, tmp):
        """Activate ``gates`` (pre-activations, in place), write c_t into ``c`` and h_t into ``h``."""
        xp = self.xp
        H = c.shape[-1]
        gates += rec
        i, f, g, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
        if w_ch is None:
            # all four gates in three passes over whole contiguous rows (a column slice is a slow
            # strided view): σ(a) = tanh(a/2)/2 + 1/2 for i, f, o and tanh(a) for g, the same formulas
            scale, shift = self._gate_scale(H, gates.dtype)
            gates *= scale
            xp.tanh(gates, out=gates)
            gates *= scale
            gates += shift
        else:
            xp.multiply(c_prev, w_ch[:H], out=tmp)
            i += tmp
            xp.multiply(c_prev, w_ch[H : 2 * H], out=tmp)
            f += tmp
            _sigmoid_(xp, gates[:, : 2 * H])  # i and f together
            xp.tanh(g, out=g)
        if coupled:  # c = f c_prev + (1 - f) g = g + f (c_prev - g)
            i[...] = 0  # the input gate is 1 - f and is not stored here
            xp.subtract(c_prev, g, out=c)
            c *= f
            c += g
        else:
            xp.multiply(f, c_prev, out=c)
            xp.multiply(i, g, out=tmp)
            c += tmp
        if w_ch is not None:
            xp.multiply(c, w_ch[2 * H :], out=tmp)
            o += tmp
            _sigmoid_(xp, o)
        xp.tanh(c, out=h)
        h *= o

    def _gate_scale(self, H, dtype):
        """(scale, shift) rows for the gates i, f, g, o: (½, ½, 1, ½) and (½, ½, 0, ½), each repeated H times."""
        key = (H, dtype)
        rows = self._gate_rows.get(key)
        if rows is None:
            scale = self.xp.full((4 * H,), 0.5, dtype=dtype)
            scale[2 * H : 3 * H] = 1
            shift = scale.copy()
            shift[2 * H : 3 * H] = 0
            rows = self._gate_rows[key] = (scale, shift)
        return rows

    def lstm_backward(self, dh, dout_t, dc, gates, c_prev, c, w_ch, coupled, dgates, dc_prev, tmp):
        """Pre-activation gradients into ``dgates`` and dL/dc_{t-1} into ``dc_prev``; ``dh`` is overwritten."""
        xp = self.xp
        H = c.shape[-1]
        if dout_t is not None:
            dh += dout_t
        i, f, g, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
        di, df, dg, do = dgates[:, :H], dgates[:, H : 2 * H], dgates[:, 2 * H : 3 * H], dgates[:, 3 * H :]
        total = dc_prev  # first holds dL/dc_t (all paths), then becomes dL/dc_{t-1}
        if w_ch is None and not coupled:
            self._lstm_backward_plain(dh, dc, c_prev, c, gates, dgates, total, tmp)
            return
        xp.tanh(c, out=tmp)
        xp.multiply(dh, tmp, out=do)  # dL/do
        xp.multiply(tmp, tmp, out=total)
        xp.subtract(1, total, out=total)
        total *= o
        total *= dh
        total += dc  # dL/dc_t = dc_next + dh ⊙ o ⊙ (1 - tanh²c)
        xp.subtract(1, o, out=tmp)
        tmp *= o
        do *= tmp  # through σ
        if w_ch is not None:
            xp.multiply(do, w_ch[2 * H :], out=tmp)
            total += tmp
        if coupled:
            xp.subtract(c_prev, g, out=df)
            df *= total
            xp.subtract(1, f, out=dg)
            dg *= total
            di[...] = 0
        else:
            xp.multiply(total, g, out=di)
            xp.multiply(total, i, out=dg)
            xp.multiply(total, c_prev, out=df)
            xp.subtract(1, i, out=tmp)
            tmp *= i
            di *= tmp
        xp.subtract(1, f, out=tmp)
        tmp *= f
        df *= tmp
        xp.multiply(g, g, out=tmp)
        xp.subtract(1, tmp, out=tmp)
        dg *= tmp
        total *= f  # now dL/dc_{t-1} through the cell update
        if w_ch is not None:
            xp.multiply(di, w_ch[:H], out=tmp)
            total += tmp
            xp.multiply(df, w_ch[H : 2 * H], out=tmp)
            total += tmp

    def _lstm_backward_plain(self, dh, dc, c_prev, c, gates, dgates, total, tmp):
        """:meth:`lstm_backward` without peephole or coupling (``dh`` already holds dh + dout_t): σ'(a) = s (1 - s)
        of i, f, o in two passes over whole contiguous rows (column slices are slow strided views), then
        each gate's slot times its upstream factor; the same formulas as the general path."""
        xp = self.xp
        H = c.shape[-1]
        i, f, g, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
        di, df, dg, do = dgates[:, :H], dgates[:, H : 2 * H], dgates[:, 2 * H : 3 * H], dgates[:, 3 * H :]
        xp.subtract(1, gates, out=dgates)
        dgates *= gates  # g's slot is overwritten with 1 - g² below
        xp.tanh(c, out=tmp)
        do *= tmp
        do *= dh  # dL/da_o = dh ⊙ tanh(c) ⊙ σ'
        xp.multiply(tmp, tmp, out=total)
        xp.subtract(1, total, out=total)
        total *= o
        total *= dh
        total += dc  # dL/dc_t = dc_next + dh ⊙ o ⊙ (1 - tanh²c)
        xp.multiply(g, g, out=dg)
        xp.subtract(1, dg, out=dg)
        xp.multiply(total, i, out=tmp)
        dg *= tmp
        xp.multiply(total, g, out=tmp)
        di *= tmp
        xp.multiply(total, c_prev, out=tmp)
        df *= tmp
        total *= f  # now dL/dc_{t-1}

    # -- GRU
    def gru_forward(self, gates, rec, b_hh, h_prev, h, hn):
        """``gates`` holds W_i x + b_i and becomes (r, z, n); ``hn`` gets W_hn h + b_hn; h_t into ``h``."""
        xp = self.xp
        H = h.shape[-1]
        if b_hh is not None:
            rec += b_hh
        gates[:, : 2 * H] += rec[:, : 2 * H]
        _sigmoid_(xp, gates[:, : 2 * H])
        r, z, n = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H :]
        hn[...] = rec[:, 2 * H :]
        xp.multiply(r, hn, out=h)
        n += h
        xp.tanh(n, out=n)
        xp.subtract(h_prev, n, out=h)  # h = n + z (h_prev - n)
        h *= z
        h += n

    def gru_backward(self, dhz, rec, dout_t, gates, hn, h_prev, dgi, dgh, dhz_out, tmp):
        """dL/dh_t = dhz + rec + dout_t; pre-activation grads into ``dgi`` (input side) and ``dgh``
        (recurrent side), and the direct part of dL/dh_{t-1}, dL/dh_t ⊙ z, into ``dhz_out``."""
        xp = self.xp
        H = h_prev.shape[-1]
        dh = dhz
        dh += rec
        if dout_t is not None:
            dh += dout_t
        r, z, n = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H :]
        dr, dz, dn = dgi[:, :H], dgi[:, H : 2 * H], dgi[:, 2 * H :]
        xp.subtract(1, z, out=dn)
        dn *= dh
        xp.multiply(n, n, out=tmp)
        xp.subtract(1, tmp, out=tmp)
        dn *= tmp
        xp.subtract(h_prev, n, out=dz)
        dz *= dh
        xp.subtract(1, z, out=tmp)
        tmp *= z
        dz *= tmp
        xp.multiply(dn, hn, out=dr)
        xp.subtract(1, r, out=tmp)
        tmp *= r
        dr *= tmp
        dgh[:, : 2 * H] = dgi[:, : 2 * H]
        xp.multiply(dn, r, out=dgh[:, 2 * H :])
        xp.multiply(dh, z, out=dhz_out)


__all__ = ["ReferencePointwise"]
