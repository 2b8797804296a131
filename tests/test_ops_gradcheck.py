"""Every differentiable op against float64 central differences, on every backend."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from conftest import to_device

rng = np.random.default_rng(1)


def leaf(shape, device, low=None):
    data = rng.standard_normal(shape)
    if low is not None:
        data = np.abs(data) + low
    return to_device(data, device, requires_grad=True)


UNARY = {
    "neg": lambda x: -x,
    "exp": lambda x: x.exp(),
    "tanh": lambda x: x.tanh(),
    "sigmoid": lambda x: x.sigmoid(),
    "relu": lambda x: x.relu(),
    "abs": lambda x: x.abs(),
    "clamp": lambda x: x.clamp(-0.5, 0.7),
    "clamp_min": lambda x: x.clamp(min=0.1),
    "pow2": lambda x: x**2,
    "pow3": lambda x: x**3,
    "softmax0": lambda x: x.softmax(0),
    "softmax-1": lambda x: x.softmax(-1),
    "log_softmax": lambda x: x.log_softmax(1),
    "sum": lambda x: x.sum(),
    "sum_dim": lambda x: x.sum(dim=1),
    "sum_tuple_keep": lambda x: x.sum(dim=(0, 2), keepdim=True),
    "mean": lambda x: x.mean(),
    "mean_dim": lambda x: x.mean(dim=-1, keepdim=True),
    "max": lambda x: x.max(),
    "max_dim": lambda x: x.max(dim=1)[0],
    "min_dim_keep": lambda x: x.min(dim=0, keepdim=True)[0],
    "amax_tuple": lambda x: x.amax(dim=(1, 2)),
    "var": lambda x: x.var(),
    "var_dim": lambda x: x.var(dim=1, correction=0),
    "std": lambda x: x.std(dim=2),
    "reshape": lambda x: x.reshape(4, 6),
    "view_-1": lambda x: x.view(-1, 3),
    "transpose": lambda x: x.transpose(0, 2),
    "permute": lambda x: x.permute(1, 2, 0),
    "T": lambda x: x.T,
    "unsqueeze": lambda x: x.unsqueeze(1),
    "squeeze": lambda x: x[:, :1].squeeze(1),
    "flatten": lambda x: x.flatten(1),
    "expand": lambda x: x[:, :1].expand(2, 5, 4),
    "getitem_int": lambda x: x[1],
    "getitem_slice": lambda x: x[:, 1:3, ::2],
    "getitem_none_ellipsis": lambda x: x[None, ..., 0],
    "getitem_negative": lambda x: x[-1, -2],
    "getitem_int_array": lambda x: x[[0, 1, 0]],
    "getitem_repeated_tensor": lambda x: x[:, tr.Tensor(np.array([2, 2, 0]), device=x.device)],
    "getitem_bool_mask": lambda x: x[tr.Tensor(np.array([True, False]), device=x.device)],
    "getitem_mixed": lambda x: x[[1, 0], :, [3, 3]],
    "split": lambda x: tr.cat(x.split(1, dim=1)[::-1], dim=1),
    "split_sections": lambda x: x.split([1, 2], dim=1)[1],
    "chunk": lambda x: x.chunk(2, dim=2)[1] * 2,
    "clone": lambda x: x.clone(),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_ops(name, device):
    x = leaf((2, 3, 4), device)
    assert tr.gradcheck(UNARY[name], [x])


@pytest.mark.parametrize("name", ["log", "sqrt", "pow_half", "rpow"])
def test_positive_domain_ops(name, device):
    x = leaf((3, 4), device, low=0.5)
    fn = {"log": lambda x: x.log(), "sqrt": lambda x: x.sqrt(), "pow_half": lambda x: x**0.5, "rpow": lambda x: 2.0**x}[name]
    assert tr.gradcheck(fn, [x])


SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1,), (2, 3)), ((), (2, 2))]


@pytest.mark.parametrize("a_shape,b_shape", SHAPES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "where"])
def test_broadcasting_binary_ops(op, a_shape, b_shape, device):
    a = leaf(a_shape, device, low=0.5 if op == "pow" else None)
    b = leaf(b_shape, device, low=0.5 if op == "div" else None)
    fns = {
        "add": lambda a, b: a + b,
        "sub": lambda a, b: a - b,
        "mul": lambda a, b: a * b,
        "div": lambda a, b: a / b,
        "pow": lambda a, b: a**b,
        "maximum": tr.maximum,
        "minimum": tr.minimum,
        "where": lambda a, b: tr.where(a > 0.1, a, b),
    }
    assert tr.gradcheck(fns[op], [a, b])


@pytest.mark.parametrize("scalar_left", [True, False])
def test_scalar_operands(scalar_left, device):
    x = leaf((3,), device, low=0.5)
    if scalar_left:
        fn = lambda x: 2.0 - x + 3 * x / (1.5 + x) - 1 / x  # noqa: E731
    else:
        fn = lambda x: (x - 2.0) * 3 + x / 2 - x**2  # noqa: E731
    assert tr.gradcheck(fn, [x])


@pytest.mark.parametrize("a_shape,b_shape", [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)),
                                             ((5, 2, 3), (3, 4)), ((5, 2, 3), (5, 3, 4)), ((1, 2, 3), (4, 3, 2)),
                                             ((3,), (5, 3, 4)), ((5, 2, 3), (3,))])
def test_matmul(a_shape, b_shape, device):
    a, b = leaf(a_shape, device), leaf(b_shape, device)
    assert tr.gradcheck(lambda a, b: a @ b, [a, b])


def test_cat_stack(device):
    a, b, c = leaf((2, 3), device), leaf((2, 1), device), leaf((2, 3), device)
    assert tr.gradcheck(lambda a, b, c: tr.cat([a, b, c], dim=1), [a, b, c])
    assert tr.gradcheck(lambda a, c: tr.stack([a, c], dim=1), [a, c])
    assert tr.gradcheck(lambda a, c: tr.stack([a, c], dim=-1), [a, c])


def test_shared_input_used_twice(device):
    x = leaf((3,), device)
    assert tr.gradcheck(lambda x: x * x + x.tanh() * x, [x])


def test_masked_fill(device):
    x = leaf((3, 4), device)
    mask = tr.Tensor(np.arange(12).reshape(3, 4) % 3 == 0, device=device)
    assert tr.gradcheck(lambda x: x.masked_fill(mask, -1.0).softmax(1), [x])


def test_dtype_cast_in_graph(device):
    x = leaf((3,), device)
    assert tr.gradcheck(lambda x: (x.float() * 2).double() + x, [x], eps=1e-3, atol=1e-3, rtol=1e-2)


def test_gradcheck_reports_the_worst_element():
    class Wrong(tr.autograd.Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return g * 3

    x = tr.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(tr.GradcheckError, match=r"input 0 .*analytic .*numeric"):
        tr.gradcheck(lambda x: Wrong.apply(x), [x])
    with pytest.raises(tr.GradcheckError, match="random direction"):
        tr.gradcheck_directional(lambda x: Wrong.apply(x), [x])


def test_gradcheck_needs_float64():
    with pytest.raises(TypeError, match="float64"):
        tr.gradcheck(lambda x: x * 2, [tr.Tensor([1.0, 2.0], requires_grad=True)])


def test_directional_check_on_a_large_input(device):
    x = leaf((40, 50), device)
    w = leaf((50, 30), device)
    assert tr.gradcheck_directional(lambda x, w: (x @ w).tanh().log_softmax(1), [x, w])
