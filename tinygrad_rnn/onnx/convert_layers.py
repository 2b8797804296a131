"""ONNX nodes for the fused layer ops: linear, embedding, layer norm, and the RNN/LSTM/GRU ops.

A whole-sequence op (one layer, one direction) becomes one ONNX ``RNN``,
``LSTM`` or ``GRU`` node with ``num_directions = 1`` (``direction="reverse"``
for the backward direction); a one-step cell op becomes the same node over a
sequence of length 1. The parameters stay initializers under their own names
and are rearranged by nodes (ONNX Runtime folds them when it loads the model):
PyTorch's gate blocks are reordered to ONNX's — LSTM i, f, g, o → i, o, f, c;
GRU r, z, n → z, r, h (with ``linear_before_reset=1``, PyTorch's GRU) — each
weight gets a leading direction axis, and the biases are concatenated
``[W_b, R_b]``. Of the lecture GRU variants (``GRU(variant=...)``),
``"reset_before"`` is ONNX's GRU with ``linear_before_reset=0``; the others have
no ONNX GRU node and their fused ops are refused with an error naming the variant.
"""
from __future__ import annotations

import numpy as np

from ..ops import layers, rnn, rnn_gru_variants
from .graph import ExportError

_ORDER = {"RNN": [0], "LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2]}


def _linear(graph, fn, ins):
    out = graph.node("MatMul", [ins[0], graph.node("Transpose", [ins[1]], perm=[1, 0])])
    return [graph.node("Add", [out, ins[2]]) if len(ins) == 3 else out]


def _embedding(graph, fn, ins):
    return [graph.node("Gather", [ins[1], ins[0]], axis=0)]


def _layer_norm(graph, fn, ins):
    x, affine = ins[0], ins[1:]
    normalized = fn.in_meta[0][0][min(fn.axes):]
    scale = affine[0] if fn.has_weight else graph.const(np.ones(normalized, dtype=fn.in_meta[0][1]))
    inputs = [x, scale] + ([affine[-1]] if fn.has_bias else [])
    return [graph.node("LayerNormalization", inputs, axis=min(fn.axes), epsilon=float(fn.eps))]


def _dropout(graph, fn, ins):
    raise ExportError(
        "onnx.export: a Dropout ran in training mode (F.dropout(..., training=True)); export runs the model "
        "in eval mode, so call dropout with training=self.training"
    )


def _reordered(graph, value, kind, hidden):
    """A weight or bias with PyTorch's gate blocks in ONNX's order (``kind`` RNN, LSTM or GRU)."""
    order = _ORDER[kind]
    if len(order) == 1:
        return value
    parts = graph.node("Split", [value, graph.const([hidden] * len(order))], outputs=len(order), axis=0)
    return graph.node("Concat", [parts[k] for k in order], axis=0)


def _recurrent(graph, kind, x, states, weights, hidden, reverse, **attributes):
    """One ONNX ``kind`` node over ``x`` (T, B, I) from ``states`` (each (B, H)); returns Y (T, B, H) and
    the final states (each (B, H))."""
    w_ih, w_hh, *biases = weights
    w = graph.unsqueeze(_reordered(graph, w_ih, kind, hidden), [0])
    r = graph.unsqueeze(_reordered(graph, w_hh, kind, hidden), [0])
    b = ""
    if biases:
        both = graph.node("Concat", [_reordered(graph, v, kind, hidden) for v in biases], axis=0)
        b = graph.unsqueeze(both, [0])
    initial = [graph.unsqueeze(s, [0]) for s in states]
    inputs = [x, w, r, b, ""] + initial
    count = 1 + len(states)
    outs = graph.node(kind, inputs, outputs=count, hidden_size=hidden,
                      direction="reverse" if reverse else "forward", **attributes)
    y, finals = outs[0], outs[1:]
    return graph.squeeze(y, [1]), [graph.squeeze(s, [0]) for s in finals]


def _check_padded(fn, kind):
    if fn.active is not None:
        raise ExportError(
            f"onnx.export: {kind} layer {fn.layer} ran on a PackedSequence, which has no ONNX conversion here; "
            "export the model on a padded batch"
        )


def _rnn_sequence(graph, fn, ins):
    _check_padded(fn, "RNN")
    hidden = fn.in_meta[3][0][1]
    activation = "Relu" if fn.relu else "Tanh"
    y, finals = _recurrent(graph, "RNN", ins[0], [ins[1]], ins[2:], hidden, fn.reverse, activations=[activation])
    return [y] + finals


def _check_lstm(fn, count):
    if getattr(fn, "coupled", False):
        raise ExportError("onnx.export: a coupled LSTM (input gate tied to 1 - f) has no ONNX LSTM equivalent")
    if getattr(fn, "peephole", False) or count > 5 + 2 * bool(fn.bias):
        raise ExportError(
            "onnx.export: a peephole LSTM (weight_ch) is not exported: its peepholes are not ONNX LSTM's P input"
        )


def _lstm_sequence(graph, fn, ins):
    _check_padded(fn, "LSTM")
    _check_lstm(fn, len(ins))
    hidden = fn.in_meta[4][0][1]
    y, finals = _recurrent(graph, "LSTM", ins[0], ins[1:3], ins[3:], hidden, fn.reverse)
    return [y] + finals


def _gru_sequence(graph, fn, ins):
    _check_padded(fn, "GRU")
    hidden = fn.in_meta[3][0][1]
    y, finals = _recurrent(graph, "GRU", ins[0], [ins[1]], ins[2:], hidden, fn.reverse, linear_before_reset=1)
    return [y] + finals


def _one_step(graph, fn, kind, ins, state_count, **attributes):
    if len(fn.in_meta[0][0]) != 2:
        raise ExportError(f"onnx.export: {kind}Cell step on an input of shape {fn.in_meta[0][0]}; expected (B, I)")
    hidden = fn.in_meta[state_count + 2][0][1]
    x = graph.unsqueeze(ins[0], [0])
    states, weights = ins[1 : 1 + state_count], ins[1 + state_count :]
    _, finals = _recurrent(graph, kind, x, states, weights, hidden, False, **attributes)
    return finals


def _rnn_cell(graph, fn, ins):
    return _one_step(graph, fn, "RNN", ins, 1, activations=["Relu" if fn.relu else "Tanh"])


def _lstm_cell(graph, fn, ins):
    _check_lstm(fn, len(ins))
    return _one_step(graph, fn, "LSTM", ins, 2)


def _gru_cell(graph, fn, ins):
    return _one_step(graph, fn, "GRU", ins, 1, linear_before_reset=1)


def _check_gru_variant(fn, where):
    if fn.variant != "reset_before":
        raise ExportError(
            f"onnx.export: a {where} with variant={fn.variant!r} has no twin in PyTorch's GRU, nor an ONNX GRU node "
            "(only 'pytorch' and 'reset_before' have one); build the module with impl=\"composed\" to export its "
            "equations as elementary ONNX ops"
        )


def _gru_variant_sequence(graph, fn, ins):
    _check_gru_variant(fn, f"GRU layer {fn.layer}")
    _check_padded(fn, "GRU")
    hidden = fn.in_meta[3][0][1]
    y, finals = _recurrent(graph, "GRU", ins[0], [ins[1]], ins[2:], hidden, fn.reverse, linear_before_reset=0)
    return [y] + finals


def _gru_variant_cell(graph, fn, ins):
    _check_gru_variant(fn, "fused GRU step")
    return _one_step(graph, fn, "GRU", ins, 1, linear_before_reset=0)


LAYERS = {
    layers.LinearFn: _linear, layers.EmbeddingFn: _embedding, layers.LayerNormFn: _layer_norm,
    layers.DropoutFn: _dropout,
    rnn.RNNSequenceFn: _rnn_sequence, rnn.LSTMSequenceFn: _lstm_sequence, rnn.GRUSequenceFn: _gru_sequence,
    rnn.RNNCellFn: _rnn_cell, rnn.LSTMCellFn: _lstm_cell, rnn.GRUCellFn: _gru_cell,
    rnn_gru_variants.GRUVariantSequenceFn: _gru_variant_sequence, rnn_gru_variants.GRUVariantCellFn: _gru_variant_cell,
}
