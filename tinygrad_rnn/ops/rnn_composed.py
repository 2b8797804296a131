"""The three cells written with primitive ops, and what the fused per-step cells do with them.

``rnn_cell_composed``, ``lstm_cell_composed`` and ``gru_cell_composed`` are
the cell equations (PyTorch's gate order) as Tensor ops: the ``"composed"``
implementation of the recurrent modules, whose graph shows every gate.

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


def gru_cell_composed(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step from primitive ops (equations on ``nn.GRUCell``); returns h'."""
    H = h.shape[-1]
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
