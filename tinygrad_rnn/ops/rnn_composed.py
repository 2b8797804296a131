"""The three cells written with primitive ops, and what the fused per-step cells do with them.

``rnn_cell_composed``, ``lstm_cell_composed`` and ``gru_cell_composed`` are
the cell equations (PyTorch's gate order) as Tensor ops: the ``"composed"``
implementation of the recurrent modules, whose graph shows every gate.
``gru_cell_composed`` also writes the lecture GRU variants (``variant=``, the
equations on ``nn.GRUCell``); ``rnn_gru_variants.py`` fuses them.

A fused cell op (``RNNCellFn``, ``LSTMCellFn``, ``GRUCellFn`` in ``rnn.py``)
has a hand-written first-order backward on arrays. For a ``create_graph``
backward, :func:`fused_cell_graph_backward` differentiates the composed
equations instead, on the cell's own inputs, with ``create_graph=True``: the
same derivative, recorded, so a gradient through a fused cell can be
differentiated again.
"""
from __future__ import annotations

from ..autograd import grad
from .elementwise import Clone
from .layers import LinearFn
from .rnn_packed import lstm_cell_grad


def _linear(x, w, b):
    return LinearFn.apply(x, w) if b is None else LinearFn.apply(x, w, b)


def _named(t, name):
    t.name = name
    return t


def rnn_cell_composed(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh"):
    """h' = act(W_ih x + b_ih + W_hh h + b_hh) from primitive ops; x (B, I), h (B, H)."""
    pre = _linear(x, w_ih, b_ih) + _linear(h, w_hh, b_hh)
    return _named(pre.tanh() if nonlinearity == "tanh" else pre.relu(), "h")


def lstm_cell_composed(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, w_ch=None, coupled=False):
    """One LSTM step from primitive ops (equations on ``nn.LSTMCell``); returns (h', c')."""
    H = h.shape[-1]
    gates = _named(_linear(x, w_ih, b_ih) + _linear(h, w_hh, b_hh), "gates")
    f_pre, g_pre, o_pre = gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
    if w_ch is not None:
        f_pre = f_pre + w_ch[H : 2 * H] * c
    f = _named(f_pre.sigmoid(), "f")
    g = _named(g_pre.tanh(), "g")
    if coupled:
        c_new = f * c + (1 - f) * g
    else:
        i_pre = gates[:, :H]
        if w_ch is not None:
            i_pre = i_pre + w_ch[:H] * c
        i = _named(i_pre.sigmoid(), "i")
        c_new = f * c + i * g
    _named(c_new, "c")
    if w_ch is not None:
        o_pre = o_pre + w_ch[2 * H :] * c_new
    o = _named(o_pre.sigmoid(), "o")
    return _named(o * c_new.tanh(), "h"), c_new


#: the GRU variants (equations and row use on ``nn.GRUCell``); "pytorch" is PyTorch's GRU
GRU_VARIANTS = ("pytorch", "reset_before", "no_reset", "mgu", "mut1", "mut2", "mut3")
#: the variants that add the input x itself to a pre-activation: they need input size == hidden size
GRU_VARIANTS_ADDING_X = ("mut1", "mut2")


def check_gru_variant(where, variant):
    """``variant`` if it is one of :data:`GRU_VARIANTS`, else a ValueError listing them."""
    if not isinstance(variant, str) or variant not in GRU_VARIANTS:
        choices = ", ".join(repr(v) for v in GRU_VARIANTS)
        raise ValueError(f"{where}: variant must be one of {choices}, got {variant!r}")
    return variant


def check_gru_input_size(where, variant, input_size, hidden_size, what="input_size"):
    """MUT1 and MUT2 add x itself to a hidden-size pre-activation: refuse any other input size."""
    if variant in GRU_VARIANTS_ADDING_X and input_size != hidden_size:
        raise ValueError(
            f"{where}: variant={variant!r} adds the input x itself to a gate's pre-activation, so it needs "
            f"{what} == hidden_size, got {what}={input_size} and hidden_size={hidden_size}"
        )


def _block(t, first, last, H):
    """Rows ``first*H .. last*H`` of a stacked gate weight or bias (None stays None)."""
    return None if t is None else t[first * H : last * H]


def _gru_reset_before(x, h, w_ih, w_hh, b_ih, b_hh, H):
    gi = _linear(x, w_ih, b_ih)
    gh = _linear(h, w_hh[: 2 * H], _block(b_hh, 0, 2, H))
    r = _named((gi[:, :H] + gh[:, :H]).sigmoid(), "r")
    z = _named((gi[:, H : 2 * H] + gh[:, H:]).sigmoid(), "z")
    n = _named((gi[:, 2 * H :] + _linear(r * h, w_hh[2 * H :], _block(b_hh, 2, 3, H))).tanh(), "n")
    return _named((1 - z) * n + z * h, "h")


def _gru_no_reset(x, h, w_ih, w_hh, b_ih, b_hh, H):
    pre = _linear(x, w_ih[H:], _block(b_ih, 1, 3, H)) + _linear(h, w_hh[H:], _block(b_hh, 1, 3, H))
    z = _named(pre[:, :H].sigmoid(), "z")
    n = _named(pre[:, H:].tanh(), "n")
    return _named((1 - z) * n + z * h, "h")


def _gru_mgu(x, h, w_ih, w_hh, b_ih, b_hh, H):
    gi = _linear(x, w_ih, b_ih)
    f = _named((gi[:, :H] + _linear(h, w_hh[:H], _block(b_hh, 0, 1, H))).sigmoid(), "f")
    n = _named((gi[:, 2 * H :] + _linear(f * h, w_hh[2 * H :], _block(b_hh, 2, 3, H))).tanh(), "n")
    return _named((1 - f) * h + f * n, "h")


def _gru_mut1(x, h, w_ih, w_hh, b_ih, b_hh, H):
    gi = _linear(x, w_ih[: 2 * H], _block(b_ih, 0, 2, H))
    z_pre = gi[:, H:] if b_hh is None else gi[:, H:] + b_hh[H : 2 * H]
    z = _named(z_pre.sigmoid(), "z")
    r = _named((gi[:, :H] + _linear(h, w_hh[:H], _block(b_hh, 0, 1, H))).sigmoid(), "r")
    n_pre = _linear(r * h, w_hh[2 * H :], _block(b_hh, 2, 3, H)) + x.tanh()
    n = _named((n_pre if b_ih is None else n_pre + b_ih[2 * H :]).tanh(), "n")
    return _named(n * z + h * (1 - z), "h")


def _gru_mut2(x, h, w_ih, w_hh, b_ih, b_hh, H):
    gi = _linear(x, w_ih[H:], _block(b_ih, 1, 3, H))
    gh = _linear(h, w_hh[: 2 * H], _block(b_hh, 0, 2, H))
    z = _named((gi[:, :H] + gh[:, H:]).sigmoid(), "z")
    r_pre = x + gh[:, :H]
    r = _named((r_pre if b_ih is None else r_pre + b_ih[:H]).sigmoid(), "r")
    n = _named((gi[:, H:] + _linear(r * h, w_hh[2 * H :], _block(b_hh, 2, 3, H))).tanh(), "n")
    return _named(n * z + h * (1 - z), "h")


def _gru_mut3(x, h, w_ih, w_hh, b_ih, b_hh, H):
    gi = _linear(x, w_ih, b_ih)
    z = _named((gi[:, H : 2 * H] + _linear(h.tanh(), w_hh[H : 2 * H], _block(b_hh, 1, 2, H))).sigmoid(), "z")
    r = _named((gi[:, :H] + _linear(h, w_hh[:H], _block(b_hh, 0, 1, H))).sigmoid(), "r")
    n = _named((gi[:, 2 * H :] + _linear(r * h, w_hh[2 * H :], _block(b_hh, 2, 3, H))).tanh(), "n")
    return _named(n * z + h * (1 - z), "h")


_GRU_VARIANT_CELLS = {
    "reset_before": _gru_reset_before, "no_reset": _gru_no_reset, "mgu": _gru_mgu,
    "mut1": _gru_mut1, "mut2": _gru_mut2, "mut3": _gru_mut3,
}


def gru_cell_composed(x, h, w_ih, w_hh, b_ih=None, b_hh=None, variant="pytorch"):
    """One GRU step from primitive ops (equations of every ``variant`` on ``nn.GRUCell``); returns h'."""
    H = h.shape[-1]
    if variant != "pytorch":
        check_gru_variant("gru_cell", variant)
        check_gru_input_size("gru_cell", variant, x.shape[-1], H, "the input's size")
        return _GRU_VARIANT_CELLS[variant](x, h, w_ih, w_hh, b_ih, b_hh, H)
    gi = _linear(x, w_ih, b_ih)
    gh = _linear(h, w_hh, b_hh)
    r = _named((gi[:, :H] + gh[:, :H]).sigmoid(), "r")
    z = _named((gi[:, H : 2 * H] + gh[:, H : 2 * H]).sigmoid(), "z")
    n = _named((gi[:, 2 * H :] + r * gh[:, 2 * H :]).tanh(), "n")
    return _named((1 - z) * n + z * h, "h")


def fused_cell_graph_backward(fn, grads):
    """The create_graph backward of a fused cell ``fn``: its composed equations, run on its inputs
    (``fn.input_arrays``, each put back in the graph behind a Clone so that its gradient is its own),
    differentiated with ``create_graph=True`` against ``grads`` (Tensors; None for an unused output)."""
    if fn.input_arrays is None:
        raise RuntimeError(f"{fn.name}.backward: its inputs were released by an earlier backward()")
    first = next(g for g in grads if g is not None)
    make, backend = first._make, fn.backend
    inputs = []
    for array, link in zip(fn.input_arrays, fn.next):
        if link is None:
            inputs.append(make(array, backend))
        elif type(link) is tuple:
            inputs.append(Clone.apply(make(array, backend, True, link[0], link[1])))
        else:
            inputs.append(Clone.apply(link))
    outputs = fn.composed(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    used = [(out, g) for out, g in zip(outputs, grads) if g is not None]
    wanted = [(k, t) for k, t in enumerate(inputs) if fn.next[k] is not None]
    found = grad([o for o, _ in used], [t for _, t in wanted], [g for _, g in used], create_graph=True, allow_unused=True)
    result = [None] * len(inputs)
    for (k, _), g in zip(wanted, found):
        result[k] = g
    return tuple(result)


def lstm_kind(peephole, coupled) -> str:
    """The cell kind an LSTM op is drawn as: ``"lstm"``, or with ``_peephole`` / ``_coupled`` for a variant."""
    return "lstm" + ("_peephole" if peephole else "") + ("_coupled" if coupled else "")


def keep_whole_cell_grad(fn, dh, dc):
    """Before a fused LSTM cell's backward: give its c' output the whole dL/dc' where a gradient is kept.

    h' = o ⊙ tanh(c') is computed inside the op, so the gradient arriving at c'
    holds only the path through the next step. A composed cell's c' also has
    the path through h'; so when c' is retained (``retain_grad()``) or the op
    ran inside ``retain_grads()``, the kept gradient becomes that whole one
    (no work otherwise). A ``create_graph`` backward keeps the partial one.
    """
    ref = fn.retained.get(1) if fn.retained else None
    c_out = ref() if ref is not None else None
    if c_out is None and not fn.trace.keep_grads:
        return
    _, _, _, w_ch, gates, hs, cs = fn.saved
    xp = fn.xp
    dh = xp.zeros_like(hs[1]) if dh is None else dh
    total = lstm_cell_grad(xp, dh, None, xp.zeros_like(cs[1]) if dc is None else dc, gates[0], cs[1], w_ch)
    if c_out is not None:
        c_out.grad = c_out._make(total, c_out._backend)
    if fn.trace.out_grads is not None and len(fn.trace.out_grads) > 1:
        fn.trace.out_grads[1] = total
