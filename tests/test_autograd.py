"""The tape: accumulation, release, grad modes, anomalies, errors, devices, deep graphs."""
import gc
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.autograd import Function, graph_depth_warning
from tinygrad_rnn.ops.rnn import LSTMSequenceFn


def test_gradients_accumulate_across_backward_calls(device):
    x = tr.Tensor(np.array([1.0, 2.0]), device=device, requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])


def test_graph_is_released_after_backward():
    x = tr.Tensor([1.0, 2.0], requires_grad=True)
    y = (x.tanh() * x).sum()
    y.backward()
    with pytest.raises(tr.GraphReleasedError, match="second time.*retain_graph=True.*detach_state"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = tr.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_saved_arrays_are_freed_after_backward():
    x = tr.Tensor(np.ones(3), requires_grad=True)
    y = x.tanh()
    z = y.sum()
    assert y.grad_fn.saved
    z.backward()
    assert y.grad_fn.saved == () and y.grad_fn.released


def test_no_grad_and_enable_grad():
    x = tr.Tensor([1.0], requires_grad=True)
    with tr.no_grad():
        y = x * 2
        with tr.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad

    @tr.no_grad()
    def infer(t):
        return t * 2

    assert not infer(x).requires_grad and tr.is_grad_enabled()


def test_backward_needs_a_scalar_or_gradient(device):
    x = tr.Tensor(np.ones((2, 2)), device=device, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"scalar output or an explicit gradient.*\(2, 2\)"):
        y.backward()
    y.backward(gradient=tr.Tensor(np.full((2, 2), 0.5), device=device))
    np.testing.assert_allclose(x.grad.numpy(), np.ones((2, 2)))
    with pytest.raises(ValueError, match="does not match"):
        (x * 2).backward(gradient=tr.ones(3, dtype=tr.float64, device=device))


def test_backward_without_grad_says_why():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tr.Tensor([1.0]).sum().backward()


def test_a_chain_of_100000_ops_backpropagates():
    x = tr.Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_detect_anomaly_names_the_forward_op():
    x = tr.Tensor([-1.0, 1.0], requires_grad=True)
    with tr.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"Log \(forward\) produced NaN"):
            with np.errstate(invalid="ignore"):
                x.log()


def test_detect_anomaly_names_the_backward_op():
    x = tr.Tensor([0.0, 1.0], requires_grad=True)
    with np.errstate(divide="ignore"):
        y = x.sqrt().sum()  # finite forward, infinite gradient at 0
        with tr.detect_anomaly():
            with pytest.raises(FloatingPointError, match=r"Sqrt \(backward\) produced inf"):
                y.backward()


def test_mixed_devices_are_an_error_naming_op_and_devices():
    a = tr.Tensor([1.0])
    b = tr.Tensor([1.0], device="hostless")
    with pytest.raises(RuntimeError, match=r"Add: expected all tensors on the same device, got cpu, hostless"):
        a + b
    with pytest.raises(RuntimeError, match="NumPy array next to a tensor on hostless"):
        b + np.ones(1)


def test_cuda_without_cupy_or_gpu_says_what_is_missing():
    if tr.cuda_is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match=r"(CuPy|GPU).*|tinygrad_rnn\[cuda12\]"):
        tr.Tensor([1.0], device="cuda")


def test_cuda_error_mentions_install_command(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_cupy(name, *args, **kwargs):
        if name == "cupy":
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cupy)
    from tinygrad_rnn.backends.cupy_backend import import_cupy

    with pytest.raises(RuntimeError, match=r'pip install "tinygrad_rnn\[cuda12\]"'):
        import_cupy()


def test_op_errors_name_the_op_and_shapes(device):
    a = tr.ones(3, 4, device=device)
    with pytest.raises(ValueError, match=r"matmul: cannot multiply \(3, 4\) by \(5, 6\)"):
        a @ tr.ones(5, 6, device=device)
    with pytest.raises(ValueError, match=r"add: cannot broadcast shapes \(3, 4\) and \(5,\)"):
        a + tr.ones(5, device=device)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape a tensor of shape \(3, 4\)"):
        a.reshape(5, 3)
    with pytest.raises(IndexError, match=r"__getitem__: .*shape \(3, 4\)"):
        a[7]
    with pytest.raises(IndexError, match="sum: dim 2 is out of range"):
        a.sum(dim=2)
    with pytest.raises(ValueError, match="cat: tensor 1 has shape"):
        tr.cat([a, tr.ones(2, 5, device=device)], dim=0)
    with pytest.raises(ValueError, match="stack: tensor 1 has shape"):
        tr.stack([a, tr.ones(3, 5, device=device)])


def test_retain_grad_keeps_a_non_leaf_gradient():
    x = tr.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [6.0, 12.0])


def test_retain_grads_context_keeps_output_gradients():
    x = tr.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with tr.retain_grads():
        h = x * 3
    y = (h * h).sum()
    y.backward()
    np.testing.assert_allclose(h.grad_fn.trace.out_grads[0], [6.0, 12.0])


def test_backward_gradient_shape_mismatch_names_the_op():
    class Broken(Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return g[:1]

    x = tr.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Broken.backward: gradient of shape \(1,\) for an input of shape \(3,\)"):
        Broken.apply(x).sum().backward()


def test_backward_gradient_dtype_mismatch_names_the_op():
    class Upcasts(Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return g.astype(np.float64)

    x = tr.Tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(RuntimeError, match="Upcasts.backward: gradient of dtype float64 for an input of dtype float32"):
        Upcasts.apply(x).sum().backward()


def test_multi_output_function_gets_none_for_an_unused_output():
    received = []

    class Split2(Function):
        def forward(self, x):
            return x * 2, x * 3

        def backward(self, ga, gb):
            received.append((ga, gb))
            return (0 if ga is None else ga * 2) + (0 if gb is None else gb * 3)

    x = tr.Tensor(np.ones(2), requires_grad=True)
    a, b = Split2.apply(x)
    b.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])
    assert received[0][0] is None and received[0][1] is not None


def test_a_fused_sequence_op_skips_the_unused_final_state():
    """Many-to-one with the last output only: dh_n arrives as None and the op does the same work as with zeros."""
    rnn = tr.nn.LSTM(3, 4).double()
    x = tr.randn(6, 2, 3, dtype=tr.float64)
    out, (h, c) = rnn(x)
    assert isinstance(out.grad_fn, LSTMSequenceFn)
    grads = []
    original = out.grad_fn.backprop
    out.grad_fn.backprop = lambda *a, **k: grads.append(a) or original(*a, **k)
    out[-1].sum().backward()
    assert grads[0][1] is None and grads[0][2] is None  # h_n, c_n unused
    w = rnn.weight_hh_l0.grad.numpy().copy()
    rnn.zero_grad()
    out, (h, c) = rnn(x)
    (out[-1].sum() + 0 * h.sum() + 0 * c.sum()).backward()
    np.testing.assert_allclose(rnn.weight_hh_l0.grad.numpy(), w, rtol=1e-12)


def test_release_lets_go_of_inputs_that_needed_no_gradient():
    """The graph does not keep a batch of data alive after backward(); 0-d constants stay for the renderer."""
    import gc
    import weakref

    w = tr.randn(3, 3, requires_grad=True)
    x = tr.randn(4, 3)
    y = (x @ w * 2.0).sum()
    ref = weakref.ref(x)
    fn = y.grad_fn
    del x
    gc.collect()
    assert ref() is not None  # before backward the graph holds the data (the renderer shows it)
    y.backward()
    gc.collect()
    assert ref() is None
    mul = fn.next[0][0]
    assert mul.trace.constant(1) is not None and mul.trace.constant(1).ndim == 0  # the scalar 2.0


def test_graph_memory_is_released_when_the_output_goes():
    x = tr.Tensor(np.ones(10), requires_grad=True)
    y = (x.tanh() * 2).sum()
    fn = y.grad_fn
    import weakref

    ref = weakref.ref(fn)
    del y, fn
    gc.collect()
    assert ref() is None


def test_warning_for_a_state_carrying_a_consumed_graph(monkeypatch):
    from tinygrad_rnn import autograd

    monkeypatch.setattr(autograd.carried, "_warned_released", [False])
    x = tr.Tensor([1.0], requires_grad=True)
    h = x * 2
    h.sum().backward(retain_graph=False)
    with pytest.warns(RuntimeWarning, match="detach_state"):
        graph_depth_warning(h, "RNN: the initial state")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph_depth_warning(h)  # only once
