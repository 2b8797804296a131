"""CUDA kernels for the pointwise gate updates of the fused RNN ops (one kernel per step and direction).

:class:`CupyPointwise` has the same methods as
:class:`tinygrad_rnn.backends.rnn_kernels_numpy.ReferencePointwise` (the NumPy reference,
which defines what each method computes), but each method is ONE
``cupy.ElementwiseKernel`` launch over the ``(B, H)`` state elements: thread
``(b, j)`` reads the ``G`` gate pre-activations of unit ``j`` from the
``(B, G*H)`` gate block, and writes the activated gates, the new cell and
hidden state (forward) or the pre-activation gradients (backward). Gate
blocks are passed ``raw`` and indexed by hand; the states go through
CuPy's normal elementwise indexing.

:meth:`CupyBackend.rnn_kernels <tinygrad_rnn.backends.cupy_backend.CupyBackend.rnn_kernels>`
creates them; importing this module does not import CuPy.
"""
from __future__ import annotations

_PREAMBLE = r"""
template <typename T> __device__ T rnn_sigmoid(T a) { return tanh(a * (T)0.5) * (T)0.5 + (T)0.5; }
"""

_RNN_FORWARD = ("T pre, T rec, int32 relu", "T h", """
    T a = pre + rec;
    h = relu ? (a > (T)0 ? a : (T)0) : tanh(a);
""")

_RNN_BACKWARD = ("T dh, T dout, T h, int32 relu", "T dpre", """
    T d = dh + dout;
    dpre = relu ? (h > (T)0 ? d : (T)0) : d * ((T)1 - h * h);
""")

# gates: (B, 4H) pre-activations in, activated (i, f, g, o) out; w_ch: (3H,) peepholes (i, f on c_{t-1}, o on c_t)
_LSTM_FORWARD = ("raw T rec, T c_prev, raw T w_ch, int32 hidden, int32 peephole, int32 coupled",
                 "raw T gates, T c, T h", """
    const int b = i / hidden, j = i % hidden;
    const int base = b * 4 * hidden + j;
    T ai = gates[base] + rec[base];
    T af = gates[base + hidden] + rec[base + hidden];
    T ag = gates[base + 2 * hidden] + rec[base + 2 * hidden];
    T ao = gates[base + 3 * hidden] + rec[base + 3 * hidden];
    if (peephole) {
        ai += w_ch[j] * c_prev;
        af += w_ch[hidden + j] * c_prev;
    }
    T gi = coupled ? (T)0 : rnn_sigmoid(ai);
    T gf = rnn_sigmoid(af);
    T gg = tanh(ag);
    T ct = coupled ? gg + gf * (c_prev - gg) : gf * c_prev + gi * gg;
    if (peephole) ao += w_ch[2 * hidden + j] * ct;
    T go = rnn_sigmoid(ao);
    gates[base] = gi;
    gates[base + hidden] = gf;
    gates[base + 2 * hidden] = gg;
    gates[base + 3 * hidden] = go;
    c = ct;
    h = go * tanh(ct);
""")

_LSTM_BACKWARD = ("T dh, T dout, T dc, raw T gates, T c_prev, T c, raw T w_ch, int32 hidden, int32 peephole, "
                  "int32 coupled", "raw T dgates, T dc_prev", """
    const int b = i / hidden, j = i % hidden;
    const int base = b * 4 * hidden + j;
    const T gi = gates[base], gf = gates[base + hidden], gg = gates[base + 2 * hidden], go = gates[base + 3 * hidden];
    const T d = dh + dout;
    const T tc = tanh(c);
    const T dao = d * tc * go * ((T)1 - go);
    T dct = dc + d * go * ((T)1 - tc * tc);
    if (peephole) dct += dao * w_ch[2 * hidden + j];
    T dai, daf, dag;
    if (coupled) {
        dai = (T)0;
        daf = dct * (c_prev - gg) * gf * ((T)1 - gf);
        dag = dct * ((T)1 - gf) * ((T)1 - gg * gg);
    } else {
        dai = dct * gg * gi * ((T)1 - gi);
        daf = dct * c_prev * gf * ((T)1 - gf);
        dag = dct * gi * ((T)1 - gg * gg);
    }
    T dcp = dct * gf;
    if (peephole) dcp += dai * w_ch[j] + daf * w_ch[hidden + j];
    dgates[base] = dai;
    dgates[base + hidden] = daf;
    dgates[base + 2 * hidden] = dag;
    dgates[base + 3 * hidden] = dao;
    dc_prev = dcp;
""")

# gates: (B, 3H) input projections (W_i x + b_i) in, activated (r, z, n) out; hn = W_hn h + b_hn is kept
_GRU_FORWARD = ("raw T rec, raw T b_hh, T h_prev, int32 hidden", "raw T gates, T h, T hn", """
    const int b = i / hidden, j = i % hidden;
    const int base = b * 3 * hidden + j;
    const T hr = rec[base] + b_hh[j];
    const T hz = rec[base + hidden] + b_hh[hidden + j];
    const T hc = rec[base + 2 * hidden] + b_hh[2 * hidden + j];
    const T r = rnn_sigmoid(gates[base] + hr);
    const T z = rnn_sigmoid(gates[base + hidden] + hz);
    const T cand = tanh(gates[base + 2 * hidden] + r * hc);
    gates[base] = r;
    gates[base + hidden] = z;
    gates[base + 2 * hidden] = cand;
    hn = hc;
    h = cand + z * (h_prev - cand);
""")

_GRU_BACKWARD = ("T dhz, T rec, T dout, raw T gates, T hn, T h_prev, int32 hidden",
                 "raw T dgi, raw T dgh, T dhz_out", """
    const int b = i / hidden, j = i % hidden;
    const int base = b * 3 * hidden + j;
    const T r = gates[base], z = gates[base + hidden], cand = gates[base + 2 * hidden];
    const T d = dhz + rec + dout;
    const T dan = d * ((T)1 - z) * ((T)1 - cand * cand);
    const T daz = d * (h_prev - cand) * z * ((T)1 - z);
    const T dar = dan * hn * r * ((T)1 - r);
    dgi[base] = dar;
    dgi[base + hidden] = daz;
    dgi[base + 2 * hidden] = dan;
    dgh[base] = dar;
    dgh[base + hidden] = daz;
    dgh[base + 2 * hidden] = dan * r;
    dhz_out = d * z;
""")

_SOURCES = {
    "rnn_forward": _RNN_FORWARD,
    "rnn_backward": _RNN_BACKWARD,
    "lstm_forward": _LSTM_FORWARD,
    "lstm_backward": _LSTM_BACKWARD,
    "gru_forward": _GRU_FORWARD,
    "gru_backward": _GRU_BACKWARD,
}


class CupyPointwise:
    """The pointwise gate updates as CUDA kernels; same methods and arguments as ``ReferencePointwise``."""

    def __init__(self, cupy):
        self.xp = cupy
        self.kernels = {
            name: cupy.ElementwiseKernel(ins, outs, body, f"tinygrad_rnn_{name}", preamble=_PREAMBLE)
            for name, (ins, outs, body) in _SOURCES.items()
        }
        self._zeros = {}

    def _zero(self, dtype, shape=()):
        """A cached zero array: broadcast in place of an absent gradient, or read in place of an absent
        bias or peephole weight."""
        key = (dtype, shape)
        zero = self._zeros.get(key)
        if zero is None:
            zero = self._zeros[key] = self.xp.zeros(shape, dtype=dtype)
        return zero

    def _optional(self, array, dtype, size=1):
        return array if array is not None else self._zero(dtype, (size,))

    def rnn_forward(self, pre, rec, h, relu):
        self.kernels["rnn_forward"](pre, rec, int(relu), h)

    def rnn_backward_prepare(self, h, dpre, relu):
        """Nothing to do: the backward kernel computes act'(h) itself, step by step."""

    def rnn_backward(self, dh, dout_t, h, dpre, relu):
        dout_t = dout_t if dout_t is not None else self._zero(dh.dtype)
        self.kernels["rnn_backward"](dh, dout_t, h, int(relu), dpre)

    def lstm_forward(self, gates, rec, c_prev, c, h, w_ch, coupled, tmp):
        peephole = w_ch is not None
        w_ch = self._optional(w_ch, gates.dtype)
        self.kernels["lstm_forward"](rec, c_prev, w_ch, c.shape[-1], int(peephole), int(coupled), gates, c, h)

    def lstm_backward(self, dh, dout_t, dc, gates, c_prev, c, w_ch, coupled, dgates, dc_prev, tmp):
        peephole = w_ch is not None
        w_ch = self._optional(w_ch, gates.dtype)
        dout_t = dout_t if dout_t is not None else self._zero(dh.dtype)
        self.kernels["lstm_backward"](
            dh, dout_t, dc, gates, c_prev, c, w_ch, c.shape[-1], int(peephole), int(coupled), dgates, dc_prev
        )

    def gru_forward(self, gates, rec, b_hh, h_prev, h, hn):
        b_hh = self._optional(b_hh, gates.dtype, gates.shape[-1])
        self.kernels["gru_forward"](rec, b_hh, h_prev, h.shape[-1], gates, h, hn)

    def gru_backward(self, dhz, rec, dout_t, gates, hn, h_prev, dgi, dgh, dhz_out, tmp):
        dout_t = dout_t if dout_t is not None else self._zero(dhz.dtype)
        self.kernels["gru_backward"](dhz, rec, dout_t, gates, hn, h_prev, h_prev.shape[-1], dgi, dgh, dhz_out)


__all__ = ["CupyPointwise"]
