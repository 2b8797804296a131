"""The CUDA gate kernels of the fused RNN ops, compiled for the CPU and checked without a GPU.

``cuda_kernel_emulator`` compiles the exact kernel bodies of
``backends/rnn_kernels_cupy.py`` as C++ and calls them with CuPy's argument
convention, so ``CupyPointwise`` — the class the fused ops use on a GPU — runs
here on NumPy arrays: each kernel against the NumPy reference, and whole
fused RNN/LSTM/GRU sequence and cell ops through the kernels against the
reference path and central finite differences. ``test_fused_rnn.py`` repeats
the kernel comparisons on a real GPU when there is one.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.backends.rnn_kernels_cupy import CupyPointwise
from tinygrad_rnn.backends import get_backend
from tinygrad_rnn.backends.rnn_kernels_numpy import ReferencePointwise

from cuda_kernel_emulator import compiler, emulated_cupy  # noqa: E402
from test_fused_rnn import CELL_CASES, SEQUENCE_CASES, sequence_inputs

pytestmark = pytest.mark.skipif(compiler() is None, reason="no C++ compiler to build the CUDA kernel bodies for the CPU")

B, H = 3, 4


@pytest.fixture(scope="module")
def kernels():
    return CupyPointwise(emulated_cupy())


@pytest.fixture
def through_kernels(kernels, monkeypatch):
    """Make the fused ops use the (emulated) CUDA kernels on the CPU backend."""
    monkeypatch.setattr(get_backend("cpu"), "rnn_kernels", lambda: kernels)
    return kernels


def random_arrays(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return lambda *shape: rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype, atol", [(np.float64, 1e-13), (np.float32, 1e-5)])
@pytest.mark.parametrize("coupled", [False, True])
@pytest.mark.parametrize("peephole", [False, True])
def test_lstm_kernels_match_the_reference(kernels, peephole, coupled, dtype, atol):
    arr = random_arrays(dtype)
    w_ch = arr(3 * H) if peephole else None
    gates, rec, c_prev = arr(B, 4 * H), arr(B, 4 * H), arr(B, H)
    dh, dout, dc = arr(B, H), arr(B, H), arr(B, H)
    results = []
    for pointwise in (ReferencePointwise(np), kernels):
        g, c, h = gates.copy(), np.empty((B, H), dtype), np.empty((B, H), dtype)
        pointwise.lstm_forward(g, rec.copy(), c_prev, c, h, w_ch, coupled, np.empty((B, H), dtype))
        dgates, dc_prev = np.empty((B, 4 * H), dtype), np.empty((B, H), dtype)
        pointwise.lstm_backward(dh.copy(), dout, dc, g, c_prev, c, w_ch, coupled, dgates, dc_prev,
                                np.empty((B, H), dtype))
        results.append([g, c, h, dgates, dc_prev])
    for ours, reference in zip(results[1], results[0]):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, reference, atol=atol)


@pytest.mark.parametrize("with_dout", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_rnn_kernels_match_the_reference(kernels, relu, with_dout):
    arr = random_arrays(np.float64, seed=1)
    pre, rec, dh = arr(B, H), arr(B, H), arr(B, H)
    dout = arr(B, H) if with_dout else None
    results = []
    for pointwise in (ReferencePointwise(np), kernels):
        h, dpre = np.empty((B, H)), np.empty((B, H))
        pointwise.rnn_forward(pre, rec, h, relu)
        pointwise.rnn_backward_prepare(h, dpre, relu)
        pointwise.rnn_backward(dh.copy(), dout, h, dpre, relu)
        results.append([h, dpre])
    for ours, reference in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, reference, atol=1e-14)


@pytest.mark.parametrize("with_bias", [True, False])
def test_gru_kernels_match_the_reference(kernels, with_bias):
    arr = random_arrays(np.float64, seed=2)
    gates, rec, h_prev = arr(B, 3 * H), arr(B, 3 * H), arr(B, H)
    b_hh = arr(3 * H) if with_bias else None
    dhz, rec_grad, dout = arr(B, H), arr(B, H), arr(B, H)
    results = []
    for pointwise in (ReferencePointwise(np), kernels):
        g, r, h, hn = gates.copy(), rec.copy(), np.empty((B, H)), np.empty((B, H))
        pointwise.gru_forward(g, r, b_hh, h_prev, h, hn)
        # in the backward, ``rec`` is the part of dL/dh_t that arrives through the next step's W_hh
        dgi, dgh, dhz_out = np.empty((B, 3 * H)), np.empty((B, 3 * H)), np.empty((B, H))
        pointwise.gru_backward(dhz.copy(), rec_grad, dout, g, hn, h_prev, dgi, dgh, dhz_out, np.empty((B, H)))
        results.append([g, h, hn, dgi, dgh, dhz_out])
    for ours, reference in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, reference, atol=1e-14)


def test_kernels_refuse_mixed_dtypes(kernels):
    h32, h64 = np.zeros((B, H), np.float32), np.zeros((B, H))
    with pytest.raises(TypeError, match="must be a float64 array"):
        kernels.rnn_forward(h64, h32, h64, False)


def _run(op, inputs, params, direction, seed=5):
    """Outputs and input gradients of ``op`` under a fixed random output gradient."""
    for t in inputs:
        t.grad = None
    outs = op.apply(*inputs, **params, direction=direction) if direction is not None else op.apply(*inputs, **params)
    outs = outs if isinstance(outs, tuple) else (outs,)
    rng = np.random.default_rng(seed)
    loss = sum((o * tr.Tensor(rng.standard_normal(o.shape))).sum() for o in outs)
    loss.backward()
    return [o.numpy().copy() for o in outs], [t.grad.numpy().copy() for t in inputs]


@pytest.mark.parametrize("direction", [0, 1])
@pytest.mark.parametrize("cell, op, params", SEQUENCE_CASES)
def test_sequence_ops_through_the_kernels_equal_the_reference(monkeypatch, kernels, cell, op, params, direction):
    inputs = sequence_inputs(cell, "cpu", params["bias"], params.get("peephole", False), steps=4)
    reference = _run(op, inputs, params, direction)
    monkeypatch.setattr(get_backend("cpu"), "rnn_kernels", lambda: kernels)
    ours = _run(op, inputs, params, direction)
    for got, expected in zip(ours[0] + ours[1], reference[0] + reference[1]):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("direction", [0, 1])
@pytest.mark.parametrize("cell, op, params", SEQUENCE_CASES)
def test_gradcheck_sequence_ops_through_the_kernels(through_kernels, cell, op, params, direction):
    inputs = sequence_inputs(cell, "cpu", params["bias"], params.get("peephole", False))
    assert tr.gradcheck(lambda *a: op.apply(*a, **params, direction=direction), inputs)


@pytest.mark.parametrize("cell, op, params", CELL_CASES)
def test_gradcheck_cell_ops_through_the_kernels(through_kernels, cell, op, params):
    x, *rest = sequence_inputs(cell, "cpu", params["bias"], params.get("peephole", False), steps=1)
    x = tr.Tensor(x.array[0], requires_grad=True)
    assert tr.gradcheck(lambda *a: op.apply(*a, **params), [x, *rest])


@pytest.mark.parametrize("layer", ["RNN", "LSTM", "GRU"])
def test_layers_through_the_kernels_equal_the_composed_cells(through_kernels, layer):
    """A stacked bidirectional layer in float32 (the GPU's usual dtype) through the kernels."""
    tr.manual_seed(0)
    model = getattr(tr.nn, layer)(5, 6, num_layers=2, bidirectional=True, batch_first=True)
    x = tr.Tensor(np.random.default_rng(3).standard_normal((2, 7, 5)).astype(np.float32))
    results = []
    for impl in ("fused", "composed"):
        model.impl = impl
        model.zero_grad()
        out, _ = model(x)
        (out * out).sum().backward()
        results.append([out.numpy()] + [p.grad.numpy() for p in model.parameters()])
    for ours, composed in zip(*results):
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, composed, rtol=2e-4, atol=2e-5)


def test_the_hostless_backend_runs_the_fused_ops_through_the_kernels():
    """So every fused RNN test on the ``hostless`` device exercises the CUDA kernel bodies."""
    assert isinstance(get_backend("hostless").rnn_kernels(), CupyPointwise)
    assert isinstance(get_backend("cpu").rnn_kernels(), ReferencePointwise)
