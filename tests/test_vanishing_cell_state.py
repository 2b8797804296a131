"""vanishing-gradients, experiment 2: the LSTM's cell-state path and the GRU's update-gate path.

The helpers of ``tinygrad_rnn.examples_gradients`` (the carry gate's bias,
‖∂L/∂c_t‖ and ‖∂L/∂h_t‖ per step) against a hand-written LSTM differentiated
with ``tr.autograd.grad`` and against PyTorch's cells; then the example's
metrics and what they must show.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import examples_support as support
from tinygrad_rnn import nn
from tinygrad_rnn.examples_gradients import set_carry_gate_bias, state_gradient_norms

I, H, T, B = 3, 4, 6, 2


def _inputs(seed, dtype=np.float64):
    return tr.tensor(np.random.default_rng(seed).standard_normal((T, B, I)).astype(dtype))


def _lstm(seed, bias):
    tr.manual_seed(seed)
    cell = nn.LSTMCell(I, H).double()
    set_carry_gate_bias(cell, bias)
    return cell


# ------------------------------------------------------------------ the carry gate's bias
@pytest.mark.parametrize("cls, gates", [(nn.LSTMCell, 4), (nn.GRUCell, 3)])
def test_set_carry_gate_bias_sets_the_sum_of_rows_h_to_2h(cls, gates):
    tr.manual_seed(0)
    cell = cls(I, H)
    before_ih, before_hh = cell.bias_ih.numpy(), cell.bias_hh.numpy()
    set_carry_gate_bias(cell, 3.0)
    b_ih, b_hh = cell.bias_ih.numpy(), cell.bias_hh.numpy()
    np.testing.assert_array_equal(b_ih[H:2 * H] + b_hh[H:2 * H], np.full(H, 3.0, np.float32))
    others = np.r_[0:H, 2 * H:gates * H]
    np.testing.assert_array_equal(b_ih[others], before_ih[others])
    np.testing.assert_array_equal(b_hh[others], before_hh[others])
    assert cell.bias_ih.dtype == tr.float32 and cell.bias_ih.requires_grad


def test_set_carry_gate_bias_errors():
    with pytest.raises(TypeError, match=r"set_carry_gate_bias: expected an nn.LSTMCell or nn.GRUCell, got RNNCell"):
        set_carry_gate_bias(nn.RNNCell(I, H), 1.0)
    with pytest.raises(ValueError, match=r"set_carry_gate_bias: the cell was built with bias=False"):
        set_carry_gate_bias(nn.GRUCell(I, H, bias=False), 1.0)
    with pytest.raises(ValueError, match=r"set_carry_gate_bias: expected a finite bias, got nan"):
        set_carry_gate_bias(nn.LSTMCell(I, H), math.nan)


def test_state_gradient_norms_errors():
    with pytest.raises(TypeError, match=r"state_gradient_norms: expected an nn.RNNCell, LSTMCell or GRUCell, got Linear"):
        state_gradient_norms(nn.Linear(I, H), _inputs(0, np.float32))
    with pytest.raises(ValueError, match=r"state_gradient_norms: expected x as a Tensor \(T, B, input_size\) with "
                                         r"T >= 1, got \(2, 3\)"):
        state_gradient_norms(nn.GRUCell(I, H), tr.zeros(2, 3))
    with pytest.raises(ValueError, match=r"got \(0, 2, 3\)"):
        state_gradient_norms(nn.GRUCell(I, H), tr.zeros(0, 2, 3))


# ------------------------------------------------------------------ ‖∂L/∂c_t‖ and ‖∂L/∂h_t‖
def _hand_lstm(cell, x):
    """The LSTM equations written out with tensor ops (h_t computed from the c_t tensor itself)."""
    w_ih, w_hh, b = cell.weight_ih, cell.weight_hh, cell.bias_ih + cell.bias_hh
    h = c = tr.zeros(B, H, dtype=tr.float64)
    hs, cs, forget = [], [], []
    for t in range(T):
        gates = x[t] @ w_ih.T + h @ w_hh.T + b
        i, f, o = gates[:, :H].sigmoid(), gates[:, H:2 * H].sigmoid(), gates[:, 3 * H:].sigmoid()
        c = f * c + i * gates[:, 2 * H:3 * H].tanh()
        h = o * c.tanh()
        hs.append(h)
        cs.append(c)
        forget.append(f.numpy())
    return hs, cs, float(np.mean(forget))


@pytest.mark.parametrize("impl", [None, "fused", "composed"])
@pytest.mark.parametrize("bias", [0.0, 3.0])
def test_lstm_state_norms_equal_autograd_grad_of_a_hand_written_lstm(impl, bias):
    """float64: the helper's ‖∂L/∂c_t‖, ‖∂L/∂h_t‖ and mean forget gate equal tr.autograd.grad's on the same
    weights, whatever the cell's impl (the helper runs it composed and restores the setting)."""
    cell = _lstm(1, bias)
    cell.impl = impl
    x = _inputs(2)
    got = state_gradient_norms(cell, x)
    assert cell.impl == impl
    hs, cs, forget = _hand_lstm(cell, x)
    grads = tr.autograd.grad(hs[-1].sum() / B, cs + hs)
    norms = np.array([float(np.linalg.norm(g.numpy())) for g in grads])
    assert got["c"].shape == got["h"].shape == (T,)
    np.testing.assert_allclose(got["c"], norms[:T], rtol=1e-10, atol=0)
    np.testing.assert_allclose(got["h"], norms[T:], rtol=1e-10, atol=0)
    assert got["carry_gate"] == pytest.approx(forget, rel=1e-12)
    assert got["c"][-1] > 0  # the path through h_T = o_T tanh(c_T)


def test_state_norms_match_pytorch_cells():
    """‖∂L/∂c_t‖ (LSTM) and ‖∂L/∂h_t‖ (LSTM, GRU) equal PyTorch's retained gradients on copied weights."""
    torch = pytest.importorskip("torch")
    x = _inputs(3)
    tr.manual_seed(4)
    for cell, theirs in ((nn.LSTMCell(I, H).double(), torch.nn.LSTMCell(I, H).double()),
                         (nn.GRUCell(I, H).double(), torch.nn.GRUCell(I, H).double())):
        set_carry_gate_bias(cell, 1.0)
        got = state_gradient_norms(cell, x)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(theirs, name).copy_(torch.from_numpy(getattr(cell, name).numpy()))
        state, hs, cs = None, [], []
        for t in range(T):
            state = theirs(torch.from_numpy(x[t].numpy()), state)
            for kept, tensor in zip((hs, cs), state if isinstance(state, tuple) else (state,)):
                tensor.retain_grad()
                kept.append(tensor)
        (hs[-1].sum() / B).backward()
        np.testing.assert_allclose(got["h"], [float(h.grad.norm()) for h in hs], rtol=1e-10)
        if cs:
            np.testing.assert_allclose(got["c"], [float(c.grad.norm()) for c in cs], rtol=1e-10)
        else:
            assert got["c"] is None


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_an_open_forget_gate_keeps_the_cell_state_gradient(seed):
    """Over seeds, on the example's sizes (T = 40, 32 units): with the forget gate's bias at +3 the gradient
    reaching c_1 is of the order of the one at c_T; at 0 it has vanished; +1 lies between. Same for the GRU's
    update gate and h_t."""
    tr.manual_seed(seed)
    x = tr.tensor(np.random.default_rng(seed).standard_normal((40, 16, 4)).astype(np.float32))
    for cls, state in ((nn.LSTMCell, "c"), (nn.LSTMCell, "h"), (nn.GRUCell, "h")):
        cell, ratios = cls(4, 32), []
        for bias in (0.0, 1.0, 3.0):
            set_carry_gate_bias(cell, bias)
            norms = state_gradient_norms(cell, x)
            assert abs(norms["carry_gate"] - 1 / (1 + math.exp(-bias))) < 0.03
            ratios.append(norms[state][0] / norms[state][-1])
        assert ratios[0] < 1e-6 and 1e2 * ratios[0] < ratios[1] < 1e-2 < ratios[2], (cls.__name__, state, ratios)
        if state == "c":
            assert ratios[2] > 0.3


# ------------------------------------------------------------------ the example
@pytest.fixture(scope="module")
def quick_metrics(tmp_path_factory):
    out = tmp_path_factory.mktemp("vanishing")
    metrics = support.load_example("vanishing-gradients").main(
        ["--quick", "--seed", "0", "--train-steps", "10", "--out", str(out)])
    return metrics, out


def test_example_tables_the_carry_paths(quick_metrics):
    metrics, out = quick_metrics
    lstm, gru = metrics["lstm_forget_bias"], metrics["gru_update_bias"]
    assert list(lstm) == list(gru) == ["0", "1", "3"]
    for key, row in lstm.items():
        assert len(row["dL_dc"]) == len(row["dL_dh"]) == 40
        assert row["c_ratio_first_last"] == row["dL_dc"][0] / row["dL_dc"][-1]
        assert row["h_ratio_first_last"] == row["dL_dh"][0] / row["dL_dh"][-1]
        assert row["forget_gate_power"] == pytest.approx(row["forget_gate_mean"] ** 39)
        assert abs(row["forget_gate_mean"] - 1 / (1 + math.exp(-float(key)))) < 0.03
    for key, row in gru.items():
        assert len(row["dL_dh"]) == 40 and "dL_dc" not in row
        assert row["h_ratio_first_last"] == row["dL_dh"][0] / row["dL_dh"][-1]
        assert abs(row["update_gate_mean"] - 1 / (1 + math.exp(-float(key)))) < 0.03
    # the claim of the docstring: an open forget gate passes the gradient along the cell state, a half-open one not
    assert lstm["3"]["c_ratio_first_last"] > 0.3 and lstm["0"]["c_ratio_first_last"] < 1e-6
    assert lstm["3"]["c_ratio_first_last"] > 1e5 * lstm["0"]["c_ratio_first_last"]
    assert gru["3"]["h_ratio_first_last"] > 1e5 * gru["0"]["h_ratio_first_last"]
    assert (out / "carry_paths.png").read_bytes()[:4] == b"\x89PNG"
    assert "carry_paths.png" in metrics["outputs"]
