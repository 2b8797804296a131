"""Full backpropagation through time over T = 10,000 steps, without recursion.

Every graph walk (backward, freeing a graph) must use an explicit stack or
heap: these tests run the framework under a recursion limit only ~150 frames
above the test's own depth, so any recursive walk over the 10,000 steps (or
over the >50,000 nodes of a per-step Python loop) would fail. Each test
checks values: the whole-sequence ops against the per-step cell loop, and a
hand-written loop of primitive ops against the fused RNN layer.
"""
from __future__ import annotations

import inspect
import sys
from contextlib import contextmanager

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn

T = 10_000


@contextmanager
def shallow_stack(headroom=150):
    """Allow only ``headroom`` frames above the caller: a recursive walk over T steps cannot fit."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + headroom)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def count_graph_nodes(root) -> int:
    """The number of functions recorded behind ``root`` (an explicit-stack walk)."""
    seen, stack = set(), [root.grad_fn]
    while stack:
        fn = stack.pop()
        if fn in seen:
            continue
        seen.add(fn)
        stack.extend(link[0] for link in fn.next if type(link) is tuple)
    return len(seen)


def _run(layer, x, impl):
    layer.impl = impl
    layer.zero_grad()
    x.grad = None
    with shallow_stack():
        output, state = layer(x)
        h_n = state[0] if isinstance(state, tuple) else state
        # weights on the output make every step's gradient different
        weights = tr.tensor(np.linspace(-1, 1, output.numel()).reshape(output.shape))
        loss = (output * weights).sum() + h_n.sum()
        loss.backward()
    return loss.item(), x.grad.numpy(), {n: p.grad.numpy() for n, p in layer.named_parameters()}


@pytest.mark.parametrize("layer_cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_full_bptt_over_10000_steps_fused_equals_the_cell_loop(layer_cls):
    """In float64, so that the two summation orders over 20,000 rows agree to rounding."""
    tr.manual_seed(0)
    layer = layer_cls(3, 8).double()
    x = tr.randn(T, 2, 3, dtype="float64", requires_grad=True)
    loss_fused, dx_fused, grads_fused = _run(layer, x, "fused")
    loss_cell, dx_cell, grads_cell = _run(layer, x, "fused_step")
    assert np.isfinite(loss_fused) and loss_fused == pytest.approx(loss_cell, rel=1e-10)
    assert np.isfinite(dx_fused).all() and np.abs(dx_fused[0]).sum() > 0  # the first step still gets a gradient
    np.testing.assert_allclose(dx_fused, dx_cell, rtol=1e-8, atol=1e-12)
    for name, grad in grads_fused.items():
        assert np.isfinite(grad).all() and np.abs(grad).sum() > 0, name
        np.testing.assert_allclose(grad, grads_cell[name], rtol=1e-8, atol=1e-10, err_msg=name)


def test_float32_bptt_over_10000_steps_through_a_stacked_bidirectional_rnn():
    """Both directions of two fused layers: the reverse direction carries the last step's gradient to the first."""
    tr.manual_seed(2)
    rnn = nn.RNN(2, 4, num_layers=2, bidirectional=True)
    x = tr.randn(T, 1, 2, requires_grad=True)
    with shallow_stack():
        output, h_n = rnn(x)
        (output[-1].sum() + output[0].sum()).backward()
    assert output.shape == (T, 1, 8) and output.dtype == tr.float32
    dx = x.grad.numpy()
    assert np.isfinite(dx).all() and np.abs(dx[0]).sum() > 0 and np.abs(dx[-1]).sum() > 0
    for name, p in rnn.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), name


def test_composed_python_loop_of_more_than_50000_nodes_backpropagates():
    """h_t = tanh(x_t W_ihᵀ + h_{t-1} W_hhᵀ + b) written as a per-step loop of primitive ops,
    checked against the fused nn.RNN with the same weights."""
    tr.manual_seed(1)
    rnn = nn.RNN(3, 8)
    x = tr.randn(T, 2, 3)
    w_ih = rnn.weight_ih_l0.detach().requires_grad_()
    w_hh = rnn.weight_hh_l0.detach().requires_grad_()
    bias = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach().requires_grad_()
    with shallow_stack():
        h = tr.zeros(2, 8)
        total = None
        for t in range(T):
            h = (x[t].matmul(w_ih.T) + h.matmul(w_hh.T) + bias).tanh()
            total = h if total is None else total + h
        loss = total.sum()
        nodes = count_graph_nodes(loss)
        loss.backward()
    assert nodes > 50_000, nodes

    output, _ = rnn(x)
    output.sum().backward()
    assert loss.item() == pytest.approx(output.sum().item(), rel=1e-4)
    np.testing.assert_allclose(w_hh.grad.numpy(), rnn.weight_hh_l0.grad.numpy(), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(w_ih.grad.numpy(), rnn.weight_ih_l0.grad.numpy(), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(bias.grad.numpy(), rnn.bias_hh_l0.grad.numpy(), rtol=1e-3, atol=1e-4)


def test_an_unused_graph_of_50000_nodes_is_freed_without_recursion():
    """Dropping a deep graph that never saw backward() frees it (CPython deallocates the chain)."""
    import gc
    import weakref

    w = tr.randn(4, 4, requires_grad=True)
    with shallow_stack():
        h = tr.randn(1, 4)
        for _ in range(25_000):
            h = h.matmul(w).tanh()
        first = weakref.ref(h.grad_fn)
        assert count_graph_nodes(h) == 50_000
        del h
        gc.collect()
    assert first() is None
