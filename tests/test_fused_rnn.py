"""The fused ops themselves: whole-sequence and per-step Functions, the pointwise kernels, saved arrays."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.backends import get_backend
from tinygrad_rnn.backends.rnn_kernels_numpy import ReferencePointwise
from tinygrad_rnn.ops.rnn import GRUCellFn, GRUSequenceFn, LSTMCellFn, LSTMSequenceFn, RNNCellFn, RNNSequenceFn

T, B, I, H = 3, 2, 3, 2
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def tensors(shapes, device="cpu", seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [tr.Tensor(rng.standard_normal(s) * scale, device=device, requires_grad=True) for s in shapes]


def sequence_inputs(cell, device, bias=True, peephole=False, steps=T):
    G = GATES[cell]
    shapes = [(steps, B, I), (B, H)] + ([(B, H)] if cell == "lstm" else []) + [(G * H, I), (G * H, H)]
    shapes += [(G * H,), (G * H,)] if bias else []
    shapes += [(3 * H,)] if peephole else []
    return tensors(shapes, device)


SEQUENCE_CASES = [
    ("rnn", RNNSequenceFn, dict(bias=True, nonlinearity="tanh")),
    ("rnn", RNNSequenceFn, dict(bias=False, nonlinearity="relu")),
    ("lstm", LSTMSequenceFn, dict(bias=True)),
    ("lstm", LSTMSequenceFn, dict(bias=False, peephole=True)),
    ("lstm", LSTMSequenceFn, dict(bias=True, coupled=True)),
    ("lstm", LSTMSequenceFn, dict(bias=True, peephole=True, coupled=True)),
    ("gru", GRUSequenceFn, dict(bias=True)),
    ("gru", GRUSequenceFn, dict(bias=False)),
]


@pytest.mark.parametrize("direction", [0, 1])
@pytest.mark.parametrize("cell, op, params", SEQUENCE_CASES)
def test_gradcheck_sequence_ops(device, cell, op, params, direction):
    inputs = sequence_inputs(cell, device, params["bias"], params.get("peephole", False))
    assert tr.gradcheck(lambda *a: op.apply(*a, **params, direction=direction), inputs)


CELL_CASES = [
    ("rnn", RNNCellFn, dict(bias=True, nonlinearity="tanh")),
    ("rnn", RNNCellFn, dict(bias=True, nonlinearity="relu")),
    ("lstm", LSTMCellFn, dict(bias=True)),
    ("lstm", LSTMCellFn, dict(bias=False, peephole=True, coupled=True)),
    ("gru", GRUCellFn, dict(bias=True)),
    ("gru", GRUCellFn, dict(bias=False)),
]


@pytest.mark.parametrize("cell, op, params", CELL_CASES)
def test_gradcheck_cell_ops(device, cell, op, params):
    x, *rest = sequence_inputs(cell, device, params["bias"], params.get("peephole", False), steps=1)
    x = tr.Tensor(x.array[0], device=device, requires_grad=True)
    assert tr.gradcheck(lambda *a: op.apply(*a, **params), [x, *rest])


@pytest.mark.parametrize("cell, op, params", SEQUENCE_CASES)
def test_reverse_direction_reads_the_sequence_backwards(cell, op, params):
    inputs = sequence_inputs(cell, "cpu", params["bias"], params.get("peephole", False), steps=4)
    backward = op.apply(*inputs, **params, direction=1)
    flipped = tr.Tensor(inputs[0].numpy()[::-1].copy())
    forward = op.apply(flipped, *inputs[1:], **params, direction=0)
    np.testing.assert_allclose(backward[0].numpy(), forward[0].numpy()[::-1], atol=1e-14)
    for a, b in zip(backward[1:], forward[1:]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-14)
    np.testing.assert_allclose(backward[1].numpy(), backward[0].numpy()[0], atol=0)


@pytest.mark.parametrize("cell, op, params", SEQUENCE_CASES)
def test_one_step_sequence_equals_the_cell_op(cell, op, params):
    cell_op = {"rnn": RNNCellFn, "lstm": LSTMCellFn, "gru": GRUCellFn}[cell]
    inputs = sequence_inputs(cell, "cpu", params["bias"], params.get("peephole", False), steps=1)
    seq = op.apply(*inputs, **params)
    one = cell_op.apply(tr.Tensor(inputs[0].numpy()[0]), *inputs[1:], **params)
    one = one if isinstance(one, tuple) else (one,)
    np.testing.assert_allclose(seq[0].numpy()[0], one[0].numpy(), atol=1e-15)
    for a, b in zip(seq[1:], one):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-15)


def test_saves_only_what_bptt_needs_and_releases_it():
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = sequence_inputs("lstm", "cpu")
    out, h_n, c_n = LSTMSequenceFn.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    fn = out.grad_fn
    x2, saved_w_ih, saved_w_hh, w_ch, gates, hs, cs = fn.saved
    assert x2.shape == (T * B, I) and saved_w_ih is w_ih.array and saved_w_hh is w_hh.array and w_ch is None
    assert gates.shape == (T, B, 4 * H) and hs.shape == (T + 1, B, H) and cs.shape == (T + 1, B, H)
    assert not np.shares_memory(h_n.array, hs) and not np.shares_memory(c_n.array, cs)  # a kept h_n frees hs
    gru_out, _ = GRUSequenceFn.apply(*sequence_inputs("gru", "cpu"))
    assert [a.shape for a in gru_out.grad_fn.saved[3:]] == [(T, B, 3 * H), (T, B, H), (T + 1, B, H)]
    out.sum().backward()
    assert fn.saved == () and fn.released


def test_unused_outputs_get_zero_gradients():
    """Only h_n used: gradients equal those of a loss on output[-1] (the same tensor)."""
    inputs = sequence_inputs("gru", "cpu")
    _, h_n = GRUSequenceFn.apply(*inputs)
    (h_n * h_n).sum().backward()
    first = [t.grad.numpy() for t in inputs]
    for t in inputs:
        t.grad = None
    out, _ = GRUSequenceFn.apply(*inputs)
    (out[-1] * out[-1]).sum().backward()
    for a, t in zip(first, inputs):
        np.testing.assert_allclose(a, t.grad.numpy(), atol=1e-14)


def test_skips_gradients_nobody_needs():
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = sequence_inputs("lstm", "cpu")
    x.requires_grad = h0.requires_grad = c0.requires_grad = b_hh.requires_grad = False
    out, h_n, c_n = LSTMSequenceFn.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    grads = out.grad_fn.backward(np.ones(out.shape), np.zeros(h_n.shape), np.zeros(c_n.shape))
    assert grads[0] is None and grads[6] is None
    assert grads[3].shape == w_ih.shape and grads[4].shape == w_hh.shape and grads[5].shape == b_ih.shape


def test_step_grad_norms_only_inside_retain_grads():
    inputs = sequence_inputs("rnn", "cpu")
    out, h_n = RNNSequenceFn.apply(*inputs, direction=1)
    out.sum().backward()
    assert out.grad_fn.trace.step_grad_norms is None
    with tr.retain_grads():
        out, h_n = RNNSequenceFn.apply(*inputs, direction=1)
    g = np.random.default_rng(0).standard_normal(out.shape)
    (out * tr.Tensor(g)).sum().backward()
    norms = out.grad_fn.trace.step_grad_norms
    # reverse direction: step 0 comes last, so only output[0] feeds h_0; h_{T-1} also feeds step T-2
    assert len(norms) == T and norms[0] == pytest.approx(np.linalg.norm(g[0]), rel=1e-12)
    assert norms[T - 1] != pytest.approx(np.linalg.norm(g[T - 1]))
    assert out.grad_fn.trace.out_grads is not None


def test_the_numpy_gate_kernels_are_the_backends_default():
    cpu = get_backend("cpu")
    assert isinstance(cpu.rnn_kernels(), ReferencePointwise) and cpu.rnn_kernels().xp is np
    assert cpu.rnn_kernels() is cpu.rnn_kernels()


def test_reference_sigmoid_stays_finite_for_large_preactivations():
    inputs = sequence_inputs("lstm", "cpu")
    inputs[3] = tr.Tensor(inputs[3].numpy() * 1e4, requires_grad=True)
    with tr.detect_anomaly():
        out, h_n, c_n = LSTMSequenceFn.apply(*inputs)
        (out.sum() + c_n.sum()).backward()
    assert np.isfinite(inputs[3].grad.numpy()).all()


@pytest.mark.parametrize("coupled", [False, True])
@pytest.mark.parametrize("peephole", [False, True])
def test_cupy_kernels_match_the_reference(cuda_device, peephole, coupled):
    """Each CUDA kernel against ReferencePointwise on the same device arrays (float64 and float32)."""
    backend = get_backend(cuda_device)
    cuda, reference = backend.rnn_kernels(), ReferencePointwise(backend.xp)
    assert not isinstance(cuda, ReferencePointwise)
    xp, rng = backend.xp, np.random.default_rng(0)
    for dtype, atol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        def arr(*shape):
            return xp.asarray(rng.standard_normal(shape).astype(dtype))

        w_ch = arr(3 * H) if peephole else None
        gates, rec, c_prev = arr(B, 4 * H), arr(B, 4 * H), arr(B, H)
        dh, dout, dc = arr(B, H), arr(B, H), arr(B, H)
        results = []
        for kernels in (reference, cuda):
            g, c, h = gates.copy(), xp.empty((B, H), dtype), xp.empty((B, H), dtype)
            kernels.lstm_forward(g, rec.copy(), c_prev, c, h, w_ch, coupled, xp.empty((B, H), dtype))
            dgates, dc_prev = xp.empty((B, 4 * H), dtype), xp.empty((B, H), dtype)
            scratch = xp.empty((B, H), dtype)
            kernels.lstm_backward(dh.copy(), dout, dc, g, c_prev, c, w_ch, coupled, dgates, dc_prev, scratch)
            results.append([g, c, h, dgates, dc_prev])
        for a, b in zip(*results):
            np.testing.assert_allclose(backend.to_host(a), backend.to_host(b), atol=atol)


def test_cupy_rnn_and_gru_kernels_match_the_reference(cuda_device):
    backend = get_backend(cuda_device)
    cuda, reference = backend.rnn_kernels(), ReferencePointwise(backend.xp)
    xp, rng = backend.xp, np.random.default_rng(0)
    arr = lambda *shape: xp.asarray(rng.standard_normal(shape))
    pre, rec, dh, dout = arr(B, H), arr(B, H), arr(B, H), arr(B, H)
    gates, rec3, b_hh, h_prev, dhz, rec1 = arr(B, 3 * H), arr(B, 3 * H), arr(3 * H), arr(B, H), arr(B, H), arr(B, H)
    results = []
    for kernels in (reference, cuda):
        out = []
        for relu in (False, True):
            h, dpre = xp.empty((B, H)), xp.empty((B, H))
            kernels.rnn_forward(pre, rec, h, relu)
            kernels.rnn_backward_prepare(h, dpre, relu)  # the reference's act'(h); a no-op for the kernels
            kernels.rnn_backward(dh.copy(), dout, h, dpre, relu)
            out += [h, dpre]
        g, h, hn = gates.copy(), xp.empty((B, H)), xp.empty((B, H))
        kernels.gru_forward(g, rec3.copy(), b_hh, h_prev, h, hn)
        dgi, dgh, dhz_out = xp.empty((B, 3 * H)), xp.empty((B, 3 * H)), xp.empty((B, H))
        kernels.gru_backward(dhz.copy(), rec1, dout, g, hn, h_prev, dgi, dgh, dhz_out, xp.empty((B, H)))
        results.append(out + [g, h, hn, dgi, dgh, dhz_out])
    for a, b in zip(*results):
        np.testing.assert_allclose(backend.to_host(a), backend.to_host(b), atol=1e-12)


@pytest.mark.parametrize("cell, op, params", SEQUENCE_CASES[::2])
def test_backward_leaves_saved_arrays_intact_for_retain_graph(cell, op, params):
    inputs = sequence_inputs(cell, "cpu", params["bias"], params.get("peephole", False))
    outs = op.apply(*inputs, **params)
    loss = sum((o * o).sum() for o in outs)
    loss.backward(retain_graph=True)
    first = [t.grad.numpy().copy() for t in inputs]
    loss.backward()
    for g, t in zip(first, inputs):
        np.testing.assert_allclose(t.grad.numpy(), 2 * g, atol=1e-13)
