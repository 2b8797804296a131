"""The CPU fast paths equal the simple paths they replace: the sort-based scatter-add (np.add.at as the oracle),
the whole-row LSTM backward gate kernel (the old column-slice formulas as the oracle), and BPTT skipping the
last recurrent product when h0 needs no gradient (the same op with h0 requiring grad as the oracle)."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn
from tinygrad_rnn.backends import numpy_backend
from tinygrad_rnn.backends.numpy_backend import NumpyBackend
from tinygrad_rnn.backends.rnn_kernels_numpy import ReferencePointwise
from tinygrad_rnn.ops import rnn as fused_rnn
from tinygrad_rnn.ops.rnn import FusedSequence, GRUSequenceFn, LSTMSequenceFn, RNNSequenceFn


# ------------------------------------------------------------------ scatter_add
def _scatter_both(target_shape, index, values, wrap=False):
    """(NumpyBackend.scatter_add's result, np.add.at's) on the same random starting target."""
    start = np.random.default_rng(1).standard_normal(target_shape).astype(values.dtype)
    ours, oracle = start.copy(), start.copy()
    NumpyBackend().scatter_add(ours, (index,) if wrap else index, values)
    np.add.at(oracle, index, values)
    return ours, oracle


def _uses_fast_path(target_shape, index, values, dtype=None):
    target = np.zeros(target_shape, values.dtype if dtype is None else dtype)
    return numpy_backend._scatter_rows_sorted(target, index, values)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("index_shape", [(32, 64), (2048,), (4, 8, 16), (300,), (8, 8)])
@pytest.mark.parametrize("wrap", [False, True])
@pytest.mark.parametrize("negative", [False, True])
def test_scatter_add_equals_np_add_at(dtype, rtol, index_shape, wrap, negative):
    rng = np.random.default_rng(0)
    V, D = 65, 64
    index = rng.integers(-V if negative else 0, V, size=index_shape)  # many repeats
    values = rng.standard_normal(index_shape + (D,)).astype(dtype)
    ours, oracle = _scatter_both((V, D), index, values, wrap)
    np.testing.assert_allclose(ours, oracle, rtol=rtol, atol=rtol)
    assert _uses_fast_path((V, D), index, values) == (int(np.prod(index_shape)) >= 256)


def test_scatter_add_fast_path_threshold_and_shapes():
    rng = np.random.default_rng(0)
    rows = numpy_backend.SCATTER_MIN_ROWS
    index = rng.integers(0, 10, size=rows)
    assert _uses_fast_path((10, 64), index, rng.standard_normal((rows, 64)))
    assert not _uses_fast_path((10, 64), index[:-1], rng.standard_normal((rows - 1, 64)))  # too few rows
    assert not _uses_fast_path((10, 4), index, rng.standard_normal((rows, 4)))  # rows too narrow
    assert not _uses_fast_path((10,), index, rng.standard_normal(rows))  # scalars: np.add.at is fast there
    assert not _uses_fast_path((10, 64), index, rng.standard_normal((1, 64)))  # broadcast values
    assert not _uses_fast_path((10, 64), index, rng.standard_normal((rows, 64)), np.float32)  # a cast
    assert not _uses_fast_path((10, 64), index.astype(np.float64), rng.standard_normal((rows, 64)))
    assert not _uses_fast_path((10, 64), (index, index % 64), rng.standard_normal(rows))  # two index arrays
    assert not _uses_fast_path((64, 10), (slice(None), index), rng.standard_normal((64, rows)))  # axis 1


def test_scatter_add_fallback_cases_equal_np_add_at():
    rng = np.random.default_rng(0)
    cases = [
        ((10, 64), (slice(None), rng.integers(0, 64, size=300)), rng.standard_normal((10, 300))),  # along axis 1
        ((10,), rng.integers(0, 10, size=500), rng.standard_normal(500)),  # scalar rows
        ((3, 4, 16), rng.integers(-3, 3, size=(20, 20)), rng.standard_normal((20, 20, 4, 16))),  # rows of (4, 16)
        ((65, 64), rng.integers(0, 65, size=(32, 64)), rng.standard_normal((1, 64, 64))),  # broadcast values
    ]
    for shape, index, values in cases:
        ours, oracle = _scatter_both(shape, index, values)
        np.testing.assert_allclose(ours, oracle, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad", [65, 1000, -66])
def test_scatter_add_out_of_range_index_still_raises(bad):
    rng = np.random.default_rng(0)
    index = rng.integers(0, 65, size=(32, 64))
    index[5, 7] = bad
    values = rng.standard_normal((32, 64, 64))
    with pytest.raises(IndexError):
        np.add.at(np.zeros((65, 64)), index, values)
    with pytest.raises(IndexError):
        NumpyBackend().scatter_add(np.zeros((65, 64)), index, values)


def test_embedding_backward_uses_the_same_sums():
    rng = np.random.default_rng(0)
    emb = nn.Embedding(65, 64).double()
    tokens = tr.Tensor(rng.integers(0, 65, size=(32, 64)))
    weights = rng.standard_normal((32, 64, 64))
    (emb(tokens) * tr.Tensor(weights)).sum().backward()
    expected = np.zeros((65, 64))
    np.add.at(expected, tokens.numpy(), weights)
    np.testing.assert_allclose(emb.weight.grad.numpy(), expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ the LSTM backward gate kernel
def _old_lstm_backward(xp, dh, dout_t, dc, gates, c_prev, c, dgates, dc_prev, tmp):
    """ReferencePointwise.lstm_backward before the whole-row pass (no peephole, not coupled), as it was."""
    H = c.shape[-1]
    if dout_t is not None:
        dh += dout_t
    i, f, g, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
    di, df, dg, do = dgates[:, :H], dgates[:, H : 2 * H], dgates[:, 2 * H : 3 * H], dgates[:, 3 * H :]
    total = dc_prev
    xp.tanh(c, out=tmp)
    xp.multiply(dh, tmp, out=do)
    xp.multiply(tmp, tmp, out=total)
    xp.subtract(1, total, out=total)
    total *= o
    total *= dh
    total += dc
    xp.subtract(1, o, out=tmp)
    tmp *= o
    do *= tmp
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
    total *= f


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("B, H", [(1, 1), (2, 3), (5, 17), (32, 256)])
@pytest.mark.parametrize("with_dout", [True, False])
def test_lstm_backward_whole_rows_equal_the_old_formulas(dtype, tol, B, H, with_dout):
    rng = np.random.default_rng(B * 1000 + H)
    kernels = ReferencePointwise(np)

    def arr(*shape):
        return (rng.standard_normal(shape) * 2).astype(dtype)

    gates, c_prev = arr(B, 4 * H), arr(B, H)
    c, h, tmp = np.empty((B, H), dtype), np.empty((B, H), dtype), np.empty((B, H), dtype)
    kernels.lstm_forward(gates, np.zeros_like(gates), c_prev, c, h, None, False, tmp)  # activated gates
    dh, dc = arr(B, H), arr(B, H)
    dout = arr(B, H) if with_dout else None
    results = []
    for run in (kernels.lstm_backward, None):
        dgates = np.full((B, 4 * H), np.nan, dtype)
        dc_prev = np.full((B, H), np.nan, dtype)
        if run is None:
            _old_lstm_backward(np, dh.copy(), dout, dc, gates, c_prev, c, dgates, dc_prev, np.empty_like(c))
        else:
            run(dh.copy(), dout, dc, gates, c_prev, c, None, False, dgates, dc_prev, np.empty_like(c))
        results.append((dgates, dc_prev))
    for new, old in zip(*results):
        assert new.dtype == dtype
        scale = max(1.0, float(np.abs(old).max()))
        np.testing.assert_allclose(new, old, rtol=tol, atol=tol * scale)


def test_lstm_backward_on_rows_of_a_bigger_buffer():
    """dgates / gates may be one step of a (T, B, 4H) buffer, as in the sequence op."""
    rng = np.random.default_rng(0)
    B, H = 3, 5
    kernels = ReferencePointwise(np)
    gates = rng.uniform(0.05, 0.95, size=(2, B, 4 * H))
    c_prev, c, dh, dc = (rng.standard_normal((B, H)) for _ in range(4))
    dgates = np.zeros((2, B, 4 * H))
    dc_prev, expected, expected_dc = np.empty((B, H)), np.empty((B, 4 * H)), np.empty((B, H))
    kernels.lstm_backward(dh.copy(), None, dc, gates[1], c_prev, c, None, False, dgates[1], dc_prev, np.empty((B, H)))
    _old_lstm_backward(np, dh.copy(), None, dc, gates[1], c_prev, c, expected, expected_dc, np.empty((B, H)))
    np.testing.assert_allclose(dgates[1], expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dc_prev, expected_dc, rtol=1e-12, atol=1e-14)
    assert not dgates[0].any()


# ------------------------------------------------------------------ no dL/dh0 when h0 needs none
LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _layer_grads(kind, states_grad, impl="fused", T=7, B=2, H=4, c_grad=None, **options):
    """Output, parameter and input gradients of a float64 bidirectional 2-layer ``kind`` with a given
    initial state that requires grad (``states_grad``) or not; for the LSTM ``c_grad`` sets c0's separately."""
    tr.manual_seed(3)
    layer = LAYERS[kind](3, H, num_layers=2, bidirectional=True, impl=impl, **options).double()
    rng = np.random.default_rng(0)
    x = tr.Tensor(rng.standard_normal((T, B, 3)), requires_grad=True)
    h0 = tr.Tensor(rng.standard_normal((4, B, H)), requires_grad=states_grad)
    hx = h0
    if kind == "lstm":
        c0 = tr.Tensor(rng.standard_normal((4, B, H)), requires_grad=states_grad if c_grad is None else c_grad)
        hx = (h0, c0)
    out, last = layer(x, hx)
    finals = last if kind == "lstm" else (last,)
    loss = (out * tr.Tensor(rng.standard_normal(out.shape))).sum()
    for k, final in enumerate(finals):
        loss = loss + (final * tr.Tensor(rng.standard_normal(final.shape))).sum() * (k + 1)
    loss.backward()
    grads = {name: p.grad.numpy() for name, p in layer.named_parameters()}
    grads["x"] = x.grad.numpy()
    states = {"h0": h0.grad} if kind != "lstm" else {"h0": h0.grad, "c0": hx[1].grad}
    return out.numpy(), grads, states


def _spy_returns(monkeypatch):
    """The tuples FusedSequence.backward returns, per op class, from now on."""
    seen = []
    original = FusedSequence.backward

    def spy(self, *grads):
        result = original(self, *grads)
        seen.append((type(self), result))
        return result

    monkeypatch.setattr(FusedSequence, "backward", spy)
    return seen


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("block_steps", [None, 3])
def test_constant_initial_state_leaves_every_other_gradient_unchanged(monkeypatch, kind, block_steps):
    if block_steps is not None:  # BPTT in blocks of 3 steps (7 steps: 3 blocks, the last short)
        monkeypatch.setattr(fused_rnn, "_block_steps", lambda T, B, H: block_steps)
    out_ref, ref, states_ref = _layer_grads(kind, True)
    assert all(g is not None for g in states_ref.values())
    seen = _spy_returns(monkeypatch)
    out, grads, states = _layer_grads(kind, False)
    np.testing.assert_array_equal(out, out_ref)
    assert grads.keys() == ref.keys()
    for name in ref:
        np.testing.assert_array_equal(grads[name], ref[name], err_msg=name)
    assert all(g is None for g in states.values())
    # the layer-0 ops (initial state straight from the constant h0) returned None for dL/dh0
    assert len(seen) == 4 and all(result[1] is None for _, result in seen)


def test_lstm_constant_h0_with_c0_requiring_grad():
    out_ref, ref, states_ref = _layer_grads("lstm", True)
    out, grads, states = _layer_grads("lstm", False, c_grad=True)
    for name in ref:
        np.testing.assert_array_equal(grads[name], ref[name], err_msg=name)
    assert states["h0"] is None
    np.testing.assert_array_equal(states["c0"].numpy(), states_ref["c0"].numpy())


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_constant_initial_state_fused_step_cells(kind):
    _, ref, _ = _layer_grads(kind, True, impl="fused_step")
    _, grads, states = _layer_grads(kind, False, impl="fused_step")
    for name in ref:
        np.testing.assert_array_equal(grads[name], ref[name], err_msg=name)
    assert all(g is None for g in states.values())


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_constant_initial_state_matches_composed(kind):
    _, expected, _ = _layer_grads(kind, False, impl="composed")
    _, grads, _ = _layer_grads(kind, False)
    for name in expected:
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_step_grad_norms_unchanged_by_the_skipped_product(kind):
    norms = []
    for states_grad in (True, False):
        with tr.retain_grads():
            tr.manual_seed(3)
            layer = LAYERS[kind](3, 4).double()
            rng = np.random.default_rng(0)
            x = tr.Tensor(rng.standard_normal((6, 2, 3)), requires_grad=True)
            h0 = tr.Tensor(rng.standard_normal((1, 2, 4)), requires_grad=states_grad)
            hx = (h0, tr.Tensor(rng.standard_normal((1, 2, 4)), requires_grad=states_grad)) if kind == "lstm" else h0
            out, _ = layer(x, hx)
            (out * tr.Tensor(rng.standard_normal(out.shape))).sum().backward()
        norms.append(out.grad_fn.trace.step_grad_norms)
    assert len(norms[0]) == 6
    assert norms[0] == norms[1]


SEQUENCE_OPS = {
    "rnn_tanh": (RNNSequenceFn, dict(nonlinearity="tanh"), 1),
    "rnn_relu": (RNNSequenceFn, dict(nonlinearity="relu"), 1),
    "lstm": (LSTMSequenceFn, {}, 4),
    "gru": (GRUSequenceFn, {}, 3),
}


def _sequence_inputs(name, T, B, I, H, seed=0, grad=(1,)):
    """(x, h0[, c0], w_ih, w_hh, b_ih, b_hh) in float64; the inputs at positions ``grad`` require grad."""
    _, _, G = SEQUENCE_OPS[name]
    shapes = [(T, B, I), (B, H)] + ([(B, H)] if name == "lstm" else []) + [(G * H, I), (G * H, H), (G * H,), (G * H,)]
    rng = np.random.default_rng(seed)
    return [tr.Tensor(rng.standard_normal(s) * 0.5, requires_grad=k in grad) for k, s in enumerate(shapes)]


@pytest.mark.parametrize("direction", [0, 1])
@pytest.mark.parametrize("name", list(SEQUENCE_OPS))
def test_gradcheck_h0_alone(name, direction):
    """dL/dh0 (the product no longer skipped when h0 requires grad) against finite differences."""
    op, params, _ = SEQUENCE_OPS[name]

    def run(*a):
        return op.apply(*a, **params, direction=direction)

    assert tr.gradcheck(run, _sequence_inputs(name, 4, 2, 3, 3, grad=(1,)))
    if name == "lstm":  # h0 and c0 together, and c0 alone (h0 constant: its product skipped)
        assert tr.gradcheck(run, _sequence_inputs(name, 4, 2, 3, 3, grad=(1, 2)))
        assert tr.gradcheck(run, _sequence_inputs(name, 4, 2, 3, 3, grad=(2,)))


@pytest.mark.parametrize("direction", [0, 1])
@pytest.mark.parametrize("name", ["rnn_tanh", "rnn_relu", "gru"])
def test_long_sequence_in_blocks(monkeypatch, name, direction):
    """A sequence long enough that BPTT runs in several blocks (the real _block_steps, BLOCK_ELEMENTS lowered):
    dL/dh0 passes gradcheck, and a constant h0 leaves the weight gradients exactly as they were."""
    monkeypatch.setattr(fused_rnn, "BLOCK_ELEMENTS", 0)
    T, B, I, H = 300, 2, 2, 3
    steps = fused_rnn._block_steps(T, B, H)
    assert len(fused_rnn._blocks(T, steps, True)) == 3
    op, params, _ = SEQUENCE_OPS[name]

    def run(*a):
        return op.apply(*a, **params, direction=direction)

    assert tr.gradcheck(run, _sequence_inputs(name, T, B, I, H, grad=(1,)))
    grads, seen = [], _spy_returns(monkeypatch)
    for h0_grad in (True, False):
        inputs = _sequence_inputs(name, T, B, I, H, grad=(0, 1, 2, 3, 4, 5) if h0_grad else (0, 2, 3, 4, 5))
        out, h_n = run(*inputs)
        rng = np.random.default_rng(1)
        ((out * tr.Tensor(rng.standard_normal(out.shape))).sum() + (h_n * h_n).sum()).backward()
        grads.append([None if t.grad is None else t.grad.numpy() for t in inputs])
    assert grads[0][1] is not None and grads[1][1] is None
    assert seen[-2][1][1] is not None and seen[-1][1][1] is None  # the op skipped dL/dh0 the second time
    for k in (0, 2, 3, 4, 5):
        np.testing.assert_array_equal(grads[1][k], grads[0][k])
