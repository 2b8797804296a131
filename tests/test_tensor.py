"""Tensor construction, attributes, dtypes, devices and host conversion."""
import numpy as np
import pytest

import tinygrad_rnn as tr


def test_python_data_dtypes():
    assert tr.Tensor(1.5).dtype == tr.float32
    assert tr.Tensor([1.0, 2.0]).dtype == tr.float32
    assert tr.Tensor([[1, 2], [3, 4.5]]).dtype == tr.float32
    assert tr.Tensor([1, 2]).dtype == tr.int64
    assert tr.Tensor(3).dtype == tr.int64
    assert tr.Tensor([True, False]).dtype == tr.bool_


def test_numpy_arrays_keep_their_dtype():
    assert tr.Tensor(np.zeros(3)).dtype == tr.float64
    assert tr.Tensor(np.zeros(3, np.float32)).dtype == tr.float32
    assert tr.Tensor(np.arange(3)).dtype == tr.int64
    assert tr.Tensor(np.zeros(3), dtype="float32").dtype == tr.float32
    assert tr.Tensor([1, 2], dtype=tr.float64).dtype == tr.float64


def test_attributes(device):
    t = tr.Tensor(np.arange(24.0).reshape(2, 3, 4), device=device, requires_grad=True)
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.size() == (2, 3, 4) and t.size(-1) == 4
    assert t.numel() == 24 and len(t) == 2
    assert t.device == device if device != "cuda" else t.device.startswith("cuda")
    assert t.is_leaf and t.requires_grad and t.grad is None
    assert t.T.shape == (4, 3, 2)
    y = t * 2
    assert not y.is_leaf and y.grad_fn is not None
    assert isinstance(t.numpy(), np.ndarray) and type(t.numpy()) is np.ndarray
    np.testing.assert_array_equal(t.numpy(), np.arange(24.0).reshape(2, 3, 4))
    assert t[1, 2, 3].item() == 23.0
    assert t[0, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_numpy_returns_a_copy():
    t = tr.Tensor(np.zeros(3))
    t.numpy()[0] = 5
    assert t[0].item() == 0


def test_detach_shares_data_clone_copies():
    x = tr.Tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf and d.array is x.array
    c = x.clone()
    assert c.array is not x.array and not c.is_leaf
    c.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_requires_grad_rules():
    with pytest.raises(TypeError, match="floating point"):
        tr.Tensor([1, 2], requires_grad=True)
    x = tr.Tensor([1.0]).requires_grad_()
    assert x.requires_grad
    y = x * 2
    with pytest.raises(RuntimeError, match="non-leaf"):
        y.requires_grad_(False)


def test_repr_is_readable():
    assert repr(tr.Tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "requires_grad=True" in repr(tr.Tensor([1.0], requires_grad=True))
    assert "dtype=float64" in repr(tr.Tensor(np.zeros(2)))
    assert "grad_fn=<Mul>" in repr(tr.Tensor([1.0], requires_grad=True) * 2)


def test_to_and_casts(device):
    x = tr.Tensor([1.0, 2.0], device=device)
    assert x.to(device) is x
    assert x.double().dtype == tr.float64 and x.double().float().dtype == tr.float32
    assert x.long().dtype == tr.int64
    cpu = x.cpu()
    assert cpu.device == "cpu"
    np.testing.assert_array_equal(cpu.numpy(), [1.0, 2.0])


def test_to_device_is_differentiable():
    from hostless_backend import HostlessArray

    x = tr.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x.to("hostless")
    assert isinstance(y.array, HostlessArray) and y.device == "hostless"
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    assert x.grad.device == "cpu"


def test_factories(device):
    assert tr.zeros(2, 3, device=device).shape == (2, 3)
    assert tr.zeros((2, 3)).dtype == tr.float32
    assert tr.ones(4, dtype=tr.float64).dtype == tr.float64
    assert tr.full((2,), 7).dtype == tr.int64 and tr.full((2,), 0.5).dtype == tr.float32
    assert tr.arange(5).tolist() == [0, 1, 2, 3, 4] and tr.arange(5).dtype == tr.int64
    assert tr.arange(0, 1, 0.25).dtype == tr.float32
    np.testing.assert_array_equal(tr.eye(3, device=device).numpy(), np.eye(3))
    x = tr.randn(2, 5, device=device)
    assert tr.zeros_like(x).shape == (2, 5) and tr.ones_like(x).device == x.device
    assert tr.rand(1000).numpy().min() >= 0 and tr.rand(1000).numpy().max() < 1
    assert tr.randn(3, requires_grad=True).requires_grad


def test_manual_seed_repeats_random_numbers(device):
    tr.manual_seed(42)
    a = tr.randn(5, device=device).numpy()
    tr.manual_seed(42)
    b = tr.randn(5, device=device).numpy()
    tr.manual_seed(43)
    c = tr.randn(5, device=device).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_comparisons_and_arg_reductions(device):
    x = tr.Tensor(np.array([[1.0, 5.0, 3.0], [7.0, 2.0, 2.0]]), device=device)
    assert (x > 2).tolist() == [[False, True, True], [True, False, False]]
    assert (x == 2).sum().item() == 2
    assert (x <= 2.0).dtype == tr.bool_
    assert x.argmax().item() == 3
    assert x.argmax(dim=1).tolist() == [1, 0]
    assert x.argmin(dim=0, keepdim=True).tolist() == [[0, 1, 1]]
    values, indices = x.max(dim=1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    values, indices = x.min(dim=1, keepdim=True)
    assert values.tolist() == [[1.0], [2.0]] and indices.tolist() == [[0], [1]]
    assert x.max().item() == 7.0


def test_float32_stays_float32_through_forward_and_backward(device):
    x = tr.Tensor(np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32), device=device, requires_grad=True)
    w = tr.Tensor(np.ones((4, 2), np.float32), device=device, requires_grad=True)
    ints = tr.Tensor(np.array([0, 1, 2]), device=device)
    y = ((x @ w).tanh() * 0.5 + 2 - x.mean() / 3.0) ** 2
    y = y.softmax(1).log() + x[ints].sum(dim=1, keepdim=True).sigmoid() + np.float32(1.0)
    y = y.var(dim=0) + y.max() + tr.where(y > 0, y, 0.0).mean() + (x.exp() / 2).abs().sum()
    assert y.dtype == tr.float32
    y.sum().backward()
    assert x.grad.dtype == tr.float32 and w.grad.dtype == tr.float32


def test_promotion_follows_pytorch():
    f32 = tr.Tensor([1.0, 2.0])
    i64 = tr.Tensor([1, 2])
    assert (i64 * 2).dtype == tr.int64
    assert (i64 * 2.5).dtype == tr.float32
    assert (i64 + f32).dtype == tr.float32
    assert (i64 / 2).dtype == tr.float32
    assert (f32 + tr.Tensor(np.ones(2))).dtype == tr.float64
    assert i64.mean().dtype == tr.float32
    assert tr.Tensor([True, False]).sum().item() == 1


def test_host_conversion_of_device_tensor_is_refused():
    x = tr.Tensor([1.0], device="hostless")
    np.asarray(tr.Tensor([1.0]))  # CPU tensors convert
    with pytest.raises(TypeError, match=r"\.cpu\(\)"):
        np.asarray(x)


def test_bad_construction_errors():
    with pytest.raises(TypeError, match="ragged"):
        tr.Tensor([[1.0, 2.0], [3.0]])
    with pytest.raises(TypeError, match="unknown dtype"):
        tr.Tensor([1.0], dtype="floaty")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        tr.Tensor([1.0], device="tpu")


def test_cat_promotes_like_arithmetic():
    ints, bools, floats = tr.Tensor([1, 2]), tr.Tensor([True]), tr.Tensor([0.5])
    assert tr.cat([ints, bools]).dtype == tr.int64 and tr.cat([bools, ints]).dtype == tr.int64
    assert tr.cat([ints, floats]).dtype == tr.float32 and tr.stack([bools, floats]).dtype == tr.float32
