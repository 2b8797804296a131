"""nn.RNNCell / nn.LSTMCell / nn.GRUCell: composed == fused, gradient checks, variants, names, errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn
from tinygrad_rnn.ops.rnn import GRUCellFn, LSTMCellFn, RNNCellFn

VARIANTS = {
    "rnn": lambda I, H, **kw: nn.RNNCell(I, H, **kw),
    "rnn_relu": lambda I, H, **kw: nn.RNNCell(I, H, nonlinearity="relu", **kw),
    "lstm": lambda I, H, **kw: nn.LSTMCell(I, H, **kw),
    "lstm_peephole": lambda I, H, **kw: nn.LSTMCell(I, H, peephole=True, **kw),
    "lstm_coupled": lambda I, H, **kw: nn.LSTMCell(I, H, coupled=True, **kw),
    "lstm_peephole_coupled": lambda I, H, **kw: nn.LSTMCell(I, H, peephole=True, coupled=True, **kw),
    "gru": lambda I, H, **kw: nn.GRUCell(I, H, **kw),
}


def make(kind, I=3, H=4, **kw):
    return VARIANTS[kind](I, H, **kw).double()


def is_lstm(cell):
    return isinstance(cell, nn.LSTMCell)


def random_state(cell, batch, rng):
    shape = (cell.hidden_size,) if batch is None else (batch, cell.hidden_size)
    count = 2 if is_lstm(cell) else 1
    return [tr.Tensor(rng.standard_normal(shape), requires_grad=True) for _ in range(count)]


def call(cell, x, states):
    if not states:
        out = cell(x)
    else:
        out = cell(x, tuple(states) if is_lstm(cell) else states[0])
    return out if isinstance(out, tuple) else (out,)


def values_and_grads(cell, x_np, states_np):
    x = tr.Tensor(x_np, requires_grad=True)
    states = [tr.Tensor(s, requires_grad=True) for s in states_np]
    cell.zero_grad()
    outs = call(cell, x, states)
    rng = np.random.default_rng(3)
    loss = 0
    for o in outs:
        loss = loss + (o * tr.Tensor(rng.standard_normal(o.shape))).sum()
    loss.backward()
    result = {f"out{i}": o.numpy() for i, o in enumerate(outs)}
    result["x.grad"] = x.grad.numpy()
    result.update({f"state{i}.grad": s.grad.numpy() for i, s in enumerate(states)})
    result.update({n + ".grad": p.grad.numpy() for n, p in cell.named_parameters()})
    return result


SHAPES = [(2, True), (1, True), (2, False), (None, True), (None, False)]  # (batch or unbatched, given state)


@pytest.mark.parametrize("kind", VARIANTS)
@pytest.mark.parametrize("batch, with_state", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_composed_equals_fused(kind, batch, with_state, bias):
    cell = make(kind, bias=bias)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3,) if batch is None else (batch, 3))
    states = [s.numpy() for s in random_state(cell, batch, rng)] if with_state else []
    cell.impl = "fused"
    fused = values_and_grads(cell, x, states)
    cell.impl = "composed"
    composed = values_and_grads(cell, x, states)
    assert fused.keys() == composed.keys()
    for key in fused:
        np.testing.assert_allclose(fused[key], composed[key], rtol=0, atol=1e-10, err_msg=key)
    expected = (cell.hidden_size,) if batch is None else (batch, cell.hidden_size)
    assert fused["out0"].shape == expected


@pytest.mark.parametrize("impl", ["fused", "composed"])
@pytest.mark.parametrize("kind", VARIANTS)
def test_gradcheck_cells(kind, impl):
    cell = make(kind, H=2, impl=impl)
    rng = np.random.default_rng(1)
    x = tr.Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    states = random_state(cell, 2, rng)
    params = list(cell.parameters())

    def fn(x, *rest):
        return call(cell, x, list(rest[: len(states)]))

    assert tr.gradcheck(fn, [x, *states, *params])


@pytest.mark.parametrize("kind", ["rnn", "lstm_peephole", "gru"])
def test_gradcheck_unbatched_default_state(kind):
    cell = make(kind, I=2, H=3)
    x = tr.Tensor(np.random.default_rng(2).standard_normal(2), requires_grad=True)
    assert tr.gradcheck(lambda x, *p: call(cell, x, []), [x, *cell.parameters()])


def test_lstm_cell_matches_the_equations():
    cell = make("lstm", H=2)
    rng = np.random.default_rng(0)
    x, h, c = rng.standard_normal((1, 3)), rng.standard_normal((1, 2)), rng.standard_normal((1, 2))
    gates = x @ cell.weight_ih.numpy().T + cell.bias_ih.numpy() + h @ cell.weight_hh.numpy().T + cell.bias_hh.numpy()
    sig = lambda a: 1 / (1 + np.exp(-a))
    i, f, g, o = sig(gates[:, :2]), sig(gates[:, 2:4]), np.tanh(gates[:, 4:6]), sig(gates[:, 6:])
    c_new = f * c + i * g
    h_new, c_out = cell(tr.Tensor(x), (tr.Tensor(h), tr.Tensor(c)))
    np.testing.assert_allclose(c_out.numpy(), c_new, atol=1e-12)
    np.testing.assert_allclose(h_new.numpy(), o * np.tanh(c_new), atol=1e-12)


def test_peephole_and_coupled_follow_their_equations():
    cell = make("lstm_peephole_coupled", H=2)
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ch"]
    assert cell.weight_ch.shape == (6,)
    rng = np.random.default_rng(0)
    x, h, c = rng.standard_normal((1, 3)), rng.standard_normal((1, 2)), rng.standard_normal((1, 2))
    w = cell.weight_ch.numpy()
    gates = x @ cell.weight_ih.numpy().T + cell.bias_ih.numpy() + h @ cell.weight_hh.numpy().T + cell.bias_hh.numpy()
    sig = lambda a: 1 / (1 + np.exp(-a))
    f, g = sig(gates[:, 2:4] + w[2:4] * c), np.tanh(gates[:, 4:6])
    c_new = f * c + (1 - f) * g
    o = sig(gates[:, 6:] + w[4:] * c_new)
    for impl in ("fused", "composed"):
        cell.impl = impl
        h_new, c_out = cell(tr.Tensor(x), (tr.Tensor(h), tr.Tensor(c)))
        np.testing.assert_allclose(c_out.numpy(), c_new, atol=1e-12)
        np.testing.assert_allclose(h_new.numpy(), o * np.tanh(c_new), atol=1e-12)


@pytest.mark.parametrize("impl", ["fused", "composed"])
def test_coupled_input_gate_rows_get_zero_gradient(impl):
    cell = make("lstm_peephole_coupled", H=2, impl=impl)
    rng = np.random.default_rng(0)
    h, c = cell(tr.Tensor(rng.standard_normal((2, 3))), tuple(random_state(cell, 2, rng)))
    (h.sum() + c.sum()).backward()
    for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh):
        assert np.all(p.grad.numpy()[:2] == 0) and np.abs(p.grad.numpy()[2:]).sum() > 0
    assert np.all(cell.weight_ch.grad.numpy()[:2] == 0) and np.abs(cell.weight_ch.grad.numpy()[2:]).sum() > 0


def test_parameters_follow_pytorch_layout_and_init():
    cell = nn.LSTMCell(5, 8)
    assert [(n, p.shape) for n, p in cell.named_parameters()] == [
        ("weight_ih", (32, 5)), ("weight_hh", (32, 8)), ("bias_ih", (32,)), ("bias_hh", (32,))]
    assert nn.GRUCell(5, 8).weight_hh.shape == (24, 8) and nn.RNNCell(5, 8, bias=False).bias_ih is None
    values = np.concatenate([p.numpy().ravel() for p in nn.GRUCell(5, 16).parameters()])
    assert values.dtype == np.float32 and np.abs(values).max() <= 0.25 and values.max() > 0.2
    assert repr(nn.LSTMCell(3, 4, peephole=True)) == "LSTMCell(3, 4, peephole=True)"


def graph_names(tensor):
    """The names of every named tensor in the graph behind ``tensor``."""
    names, stack, seen = set(), [tensor.grad_fn], set()
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        names.update((fn.trace.names or {}).values())
        stack.extend(link[0] for link in fn.next if type(link) is tuple)
    return names


def test_composed_graph_names_every_gate():
    rng = np.random.default_rng(0)
    cell = make("lstm", impl="composed")
    h, c = cell(tr.Tensor(rng.standard_normal((2, 3))), tuple(random_state(cell, 2, rng)))
    assert h.name == "h" and c.name == "c"
    assert {"i", "f", "g", "o", "c", "h"} <= graph_names(h)
    gru = make("gru", impl="composed")
    out = gru(tr.Tensor(rng.standard_normal((2, 3))), random_state(gru, 2, rng)[0])
    assert out.name == "h" and {"r", "z", "n", "h"} <= graph_names(out)
    coupled = make("lstm_coupled", impl="composed")
    h, _ = coupled(tr.Tensor(rng.standard_normal((2, 3))), tuple(random_state(coupled, 2, rng)))
    assert "i" not in graph_names(h) and {"f", "g", "o", "c"} <= graph_names(h)


def test_fused_cell_is_one_op():
    rng = np.random.default_rng(0)
    x = tr.Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    h, c = make("lstm")(x)
    assert isinstance(h.grad_fn, LSTMCellFn) and h.grad_fn is c.grad_fn
    assert h.grad_fn.draw_as == "cell" and h.grad_fn.cell == "lstm" and LSTMCellFn.output_names == ("h", "c")
    assert h.name == "h" and c.name == "c"
    assert isinstance(make("gru")(x).grad_fn, GRUCellFn)
    relu = make("rnn_relu")(x).grad_fn
    assert isinstance(relu, RNNCellFn) and relu.cell == "rnn_relu" and relu.draw_as == "cell"


def test_impl_switch_global_and_per_module():
    cell = make("gru")
    x = tr.Tensor(np.random.default_rng(0).standard_normal((2, 3)))
    assert isinstance(cell(x).grad_fn, GRUCellFn)
    with nn.rnn_impl("composed"):
        assert not isinstance(cell(x).grad_fn, GRUCellFn)
        assert isinstance(make("gru", impl="fused")(x).grad_fn, GRUCellFn)
    with nn.rnn_impl("fused_step"):
        assert isinstance(cell(x).grad_fn, GRUCellFn)
    with pytest.raises(ValueError, match="GRUCell: impl must be one of"):
        make("gru", impl="quick")


def test_errors_name_the_cell_and_the_shapes():
    cell = nn.LSTMCell(5, 3)
    message = r"LSTMCell: expected input of shape \(B, 5\) or unbatched \(5,\), got \(2, 4\)"
    with pytest.raises(ValueError, match=message):
        cell(tr.zeros(2, 4))
    with pytest.raises(ValueError, match=r"LSTMCell: expected hx\[1\] \(c\) of shape \(2, 3\), got \(3,\)"):
        cell(tr.zeros(2, 5), (tr.zeros(2, 3), tr.zeros(3)))
    with pytest.raises(TypeError, match=r"LSTMCell: expected hx to be a tuple \(h, c\)"):
        cell(tr.zeros(2, 5), tr.zeros(2, 3))
    with pytest.raises(ValueError, match=r"GRUCell: expected hx of shape \(3,\), got \(1, 3\)"):
        nn.GRUCell(5, 3)(tr.zeros(5), tr.zeros(1, 3))
    with pytest.raises(TypeError, match="RNNCell: input has dtype float64 but the parameters are float32"):
        nn.RNNCell(5, 3)(tr.zeros(2, 5, dtype="float64"))
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        nn.GRUCell(5, 0)
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        nn.RNNCell(5, 3, nonlinearity="gelu")


def test_warns_when_state_carries_a_used_graph(monkeypatch):
    monkeypatch.setattr(tr.autograd.carried, "_warned_released", [False])
    cell = make("rnn")
    h = cell(tr.Tensor(np.ones((1, 3))))
    h.sum().backward()
    with pytest.warns(RuntimeWarning, match="RNNCell: the initial state"):
        cell(tr.Tensor(np.ones((1, 3))), h)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cell(tr.Tensor(np.ones((1, 3))), h.detach())


@pytest.mark.parametrize("kind", VARIANTS)
def test_cells_run_on_every_device(device, kind):
    cell = make(kind)
    rng = np.random.default_rng(0)
    x, states = rng.standard_normal((2, 3)), [s.numpy() for s in random_state(cell, 2, rng)]
    expected = {}
    for impl in ("fused", "composed"):
        cell.impl = impl
        expected[impl] = values_and_grads(cell, x, states)
    cell.to(device)
    for impl in ("fused", "composed"):
        cell.impl = impl
        xt = tr.Tensor(x, device=device, requires_grad=True)
        st = [tr.Tensor(s, device=device, requires_grad=True) for s in states]
        cell.zero_grad()
        outs = call(cell, xt, st)
        sum(o.sum() for o in outs).backward()
        assert all(o.device == xt.device for o in outs)
        np.testing.assert_allclose(outs[0].numpy(), expected[impl]["out0"], atol=1e-12)
        assert xt.grad is not None and all(p.grad is not None for p in cell.parameters())


def test_float32_stays_float32():
    for kind in VARIANTS:
        cell = VARIANTS[kind](3, 4)
        x = tr.Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
        outs = call(cell, x, [])
        sum(o.sum() for o in outs).backward()
        assert all(o.dtype == tr.float32 for o in outs) and x.grad.dtype == tr.float32
