"""Helpers of the vanishing-gradients example: a gated cell's carry-gate bias set as the lectures write it,
and the norm of the loss's gradient with respect to every state of a cell run step by step.

The "carry gate" is the gate that decides how much of the previous state a
cell keeps: the forget gate f of an LSTM (c' = f ⊙ c + i ⊙ g) and the update
gate z of a GRU (h' = (1 − z) ⊙ n + z ⊙ h). In PyTorch's layout both are rows
H..2H of ``weight_ih``, ``weight_hh``, ``bias_ih`` and ``bias_hh``.
"""
from __future__ import annotations

import numpy as np

from tinygrad_rnn import nn
from tinygrad_rnn.tensor import Tensor

#: the carry gate of each gated cell, and the name its equations give it
CARRY_GATES = {nn.LSTMCell: "forget gate f", nn.GRUCell: "update gate z"}


def _carry_rows(cell, where):
    """The slice of the carry gate's rows, after checking that ``cell`` is a gated cell with biases."""
    if type(cell) not in CARRY_GATES:
        raise TypeError(f"{where}: expected an nn.LSTMCell or nn.GRUCell, got {type(cell).__name__}")
    H = cell.hidden_size
    return slice(H, 2 * H)


def set_carry_gate_bias(cell, value: float) -> None:
    """Make the carry gate's bias — the sum b_ih + b_hh of its rows H..2H — equal ``value`` in every unit.

    PyTorch's cells add two bias vectors, so the gate sees b_ih + b_hh; we set
    the ``bias_ih`` rows to ``value`` and the ``bias_hh`` rows to 0. The other
    gates keep their biases. ``value = 0`` puts the gate at σ(0) = 0.5 on
    average; +1 and +3 open it to σ ≈ 0.73 and 0.95 (Jozefowicz et al. 2015
    recommend +1 for the LSTM's forget gate).
    """
    rows = _carry_rows(cell, "set_carry_gate_bias")
    if cell.bias_ih is None:
        raise ValueError("set_carry_gate_bias: the cell was built with bias=False; it has no gate bias to set")
    if not np.isfinite(value):
        raise ValueError(f"set_carry_gate_bias: expected a finite bias, got {value!r}")
    for param, fill in ((cell.bias_ih, value), (cell.bias_hh, 0.0)):
        array = param.numpy()
        array[rows] = fill
        param.set_(Tensor(array, dtype=param.dtype, device=param.device))


def state_gradient_norms(cell, x) -> dict:
    """Run ``cell`` over x (T, B, I) from zero states with L = mean over the batch of sum(h_T), and return

    ``"h"``: ‖∂L/∂h_t‖ for t = 1..T (h_t is the state after step t), an array of T floats,
    ``"c"``: ‖∂L/∂c_t‖ likewise for an ``nn.LSTMCell`` (None for other cells),
    ``"carry_gate"``: for a gated cell, the mean of its carry gate (f or z) over steps, batch and units.

    The states keep their gradients with ``retain_grad()``; each ∂L/∂c_t is the
    whole gradient, through c_{t+1} and through h_t = o_t ⊙ tanh(c_t) alike. For
    that an LSTM cell runs ``impl="composed"`` here (and is set back after), the
    equations as written, one op per gate; the fused step's retained c'.grad is
    the same whole gradient (tests/test_viz_cells.py compares the two).
    Like any ``backward()``, it also accumulates into the parameters' ``.grad``.
    """
    if not isinstance(cell, (nn.RNNCell, nn.LSTMCell, nn.GRUCell)):
        raise TypeError(f"state_gradient_norms: expected an nn.RNNCell, LSTMCell or GRUCell, got {type(cell).__name__}")
    if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[0] == 0:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"state_gradient_norms: expected x as a Tensor (T, B, input_size) with T >= 1, got {shape}")
    is_lstm = isinstance(cell, nn.LSTMCell)
    gated = type(cell) in CARRY_GATES
    impl = cell.impl
    if is_lstm:
        cell.impl = "composed"
    try:
        hs, cs, gates = _run(cell, x, is_lstm, gated)
    finally:
        cell.impl = impl
    (hs[-1].sum() / x.shape[1]).backward()
    return {
        "h": _norms(hs),
        "c": _norms(cs) if is_lstm else None,
        "carry_gate": float(np.mean(gates)) if gated else None,
    }


def _run(cell, x, is_lstm, gated):
    """The step loop: the states h_t (and c_t), each retaining its gradient, and the carry gate's means."""
    hs, cs, gates, state = [], [], [], None
    for t in range(x.shape[0]):
        if gated:
            gates.append(_carry_gate(cell, x[t], state))
        state = cell(x[t], state)
        h, c = state if is_lstm else (state, None)
        h.retain_grad()
        hs.append(h)
        if c is not None:
            c.retain_grad()
            cs.append(c)
    return hs, cs, gates


def _norms(states):
    return np.array([float(np.linalg.norm(s.grad.numpy())) for s in states])


def _carry_gate(cell, x_t, state):
    """σ(W_i x + b_i + W_h h + b_h [+ w_c ⊙ c for a peephole LSTM]) of the carry gate's rows, on the host
    (``state`` None: zero states)."""
    rows = _carry_rows(cell, "state_gradient_norms")
    pre = x_t.numpy().astype(np.float64) @ cell.weight_ih.numpy()[rows].T.astype(np.float64)
    if state is not None:
        h, c = state if isinstance(cell, nn.LSTMCell) else (state, None)
        pre = pre + h.numpy().astype(np.float64) @ cell.weight_hh.numpy()[rows].T.astype(np.float64)
        if getattr(cell, "weight_ch", None) is not None:  # peephole weights [w_ci, w_cf, w_co]
            pre = pre + cell.weight_ch.numpy()[rows] * c.numpy()
    if cell.bias_ih is not None:
        pre = pre + cell.bias_ih.numpy()[rows] + cell.bias_hh.numpy()[rows]
    return float(np.mean(1.0 / (1.0 + np.exp(-pre))))
