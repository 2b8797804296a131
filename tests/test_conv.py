"""Convolution and pooling: nn.Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten and their functional forms.

Gradients are checked in float64 with ``tr.gradcheck`` option by option, second
(and third) derivatives with ``tr.gradgradcheck``; PyTorch is the oracle for
values, gradients, indices, default initialisation and reprs; every op runs on
each test backend (``hostless`` stands in for CuPy) and must equal NumPy's.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F
from conftest import SELECTED, _cuda_skip_reason, to_device
from tinygrad_rnn import nn
from tinygrad_rnn.autograd import graph_mode
from tinygrad_rnn.viz import draw_graph

rng = np.random.default_rng(7)


def leaf(shape, device="cpu"):
    return to_device(rng.standard_normal(shape), device, requires_grad=True)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def ran_on_tensors(monkeypatch):
    """The names of the op classes whose backward ran on Tensors (a create_graph backward) during the test."""
    seen = set()
    original = graph_mode.run_backward

    def recording(fn, grads_out):
        seen.add(type(fn).__name__)
        return original(fn, grads_out)

    monkeypatch.setattr(graph_mode, "run_backward", recording)
    return seen


# ----------------------------------------------------------------------------- configurations
#: name -> (input shape, weight shape, conv2d keyword arguments, with bias)
CONV = {
    "plain": ((2, 3, 5, 6), (4, 3, 3, 3), dict(), True),
    "no_bias": ((2, 3, 5, 6), (4, 3, 3, 2), dict(), False),
    "stride": ((2, 2, 7, 6), (3, 2, 3, 3), dict(stride=2), True),
    "stride_pair_padding": ((1, 2, 7, 6), (3, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2)), True),
    "dilation": ((2, 2, 7, 7), (3, 2, 2, 3), dict(dilation=2, padding=1), True),
    "groups": ((2, 4, 5, 5), (6, 2, 3, 3), dict(groups=2, padding=1), True),
    "depthwise": ((2, 3, 5, 4), (3, 1, 3, 3), dict(groups=3, stride=2, padding=1), False),
    "same_odd": ((2, 2, 5, 6), (3, 2, 3, 3), dict(padding="same"), True),
    "same_even_dilated": ((1, 2, 6, 5), (2, 2, 2, 4), dict(padding="same", dilation=(2, 1)), True),
    "valid": ((2, 2, 4, 5), (3, 2, 4, 5), dict(padding="valid"), True),
    "one_by_one": ((2, 3, 4, 4), (5, 3, 1, 1), dict(), True),
    "unbatched": ((2, 5, 5), (3, 2, 3, 3), dict(stride=2, padding=1), True),
}

#: name -> (input shape, max_pool2d keyword arguments)
MAX_POOL = {
    "non_overlapping": ((2, 3, 6, 4), dict(kernel_size=2)),
    "overlapping": ((2, 2, 7, 6), dict(kernel_size=3, stride=1)),
    "stride_padding": ((2, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1)),
    "dilation": ((1, 2, 8, 7), dict(kernel_size=(2, 3), stride=(1, 2), dilation=(3, 2), padding=(1, 0))),
    "ceil_mode": ((2, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    "ceil_mode_no_padding": ((1, 2, 5, 8), dict(kernel_size=2, ceil_mode=True)),
    "unbatched": ((3, 5, 5), dict(kernel_size=2, stride=1)),
}

#: name -> (input shape, avg_pool2d keyword arguments)
AVG_POOL = {
    "non_overlapping": ((2, 3, 6, 4), dict(kernel_size=2)),
    "overlapping": ((2, 2, 6, 5), dict(kernel_size=(3, 2), stride=1)),
    "padding": ((2, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1)),
    "padding_not_counted": ((2, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    "ceil_mode": ((2, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    "ceil_mode_not_counted": ((1, 2, 5, 8), dict(kernel_size=2, ceil_mode=True, count_include_pad=False)),
    "ceil_mode_window_past_padding": ((1, 1, 6, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    "divisor_override": ((2, 2, 6, 5), dict(kernel_size=3, stride=2, padding=1, divisor_override=4)),
    "unbatched": ((3, 5, 5), dict(kernel_size=2, stride=1)),
}

#: name -> (input shape, output_size)
ADAPTIVE = {
    "global": ((2, 3, 5, 4), 1),
    "divisible": ((2, 2, 6, 4), (3, 2)),
    "not_divisible": ((2, 2, 7, 5), (3, 4)),
    "upsampling": ((1, 2, 3, 2), (5, 3)),
    "none_keeps": ((2, 2, 5, 6), (None, 4)),
    "unbatched": ((3, 7, 5), 2),
}


def conv_call(name, device="cpu"):
    """(fn, inputs) of a CONV case: fn maps the leaves (input, weight[, bias]) to conv2d's output."""
    x_shape, w_shape, kwargs, with_bias = CONV[name]
    inputs = [leaf(x_shape, device), leaf(w_shape, device)] + ([leaf((w_shape[0],), device)] if with_bias else [])
    return (lambda x, w, b=None: F.conv2d(x, w, b, **kwargs)), inputs


def pool_call(op, table, name, device="cpu"):
    shape, kwargs = table[name]
    return (lambda x: op(x, **kwargs)), [leaf(shape, device)]


def adaptive_call(name, device="cpu"):
    shape, size = ADAPTIVE[name]
    return (lambda x: F.adaptive_avg_pool2d(x, size)), [leaf(shape, device)]


def every_call(device="cpu"):
    """(name, fn, leaves) of every configuration of every op."""
    calls = [(f"conv2d/{n}", *conv_call(n, device)) for n in CONV]
    calls += [(f"max_pool2d/{n}", *pool_call(F.max_pool2d, MAX_POOL, n, device)) for n in MAX_POOL]
    calls += [(f"avg_pool2d/{n}", *pool_call(F.avg_pool2d, AVG_POOL, n, device)) for n in AVG_POOL]
    calls += [(f"adaptive_avg_pool2d/{n}", *adaptive_call(n, device)) for n in ADAPTIVE]
    return calls


# ----------------------------------------------------------------------------- first derivatives
@pytest.mark.parametrize("name", sorted(CONV))
def test_conv2d_gradcheck(name):
    fn, inputs = conv_call(name)
    assert tr.gradcheck(fn, inputs)


@pytest.mark.parametrize("name", sorted(MAX_POOL))
def test_max_pool2d_gradcheck(name):
    fn, inputs = pool_call(F.max_pool2d, MAX_POOL, name)
    assert tr.gradcheck(fn, inputs)


@pytest.mark.parametrize("name", sorted(AVG_POOL))
def test_avg_pool2d_gradcheck(name):
    fn, inputs = pool_call(F.avg_pool2d, AVG_POOL, name)
    assert tr.gradcheck(fn, inputs)


@pytest.mark.parametrize("name", sorted(ADAPTIVE))
def test_adaptive_avg_pool2d_gradcheck(name):
    fn, inputs = adaptive_call(name)
    assert tr.gradcheck(fn, inputs)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum():
    x = tr.tensor([[[[1.0, 1.0, 0.0], [1.0, 1.0, 2.0], [2.0, 0.0, 2.0]]]], requires_grad=True)
    out, indices = F.max_pool2d(x, 2, stride=1, return_indices=True)
    out.backward(tr.tensor([[[[1.0, 10.0], [100.0, 1000.0]]]]))
    # windows: top-left all 1s -> (0, 0); top-right {1, 0, 1, 2} -> (1, 2); bottom-left {1, 1, 2, 0} -> (2, 0);
    # bottom-right {1, 2, 0, 2}: the first 2 in row-major order -> (1, 2)
    np.testing.assert_array_equal(indices.numpy().reshape(-1), [0, 5, 6, 5])
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [[1, 0, 0], [0, 0, 1010], [100, 0, 0]])


def test_max_pool_ties_match_torch(torch):
    x = rng.integers(0, 3, size=(2, 3, 7, 6)).astype(np.float64)  # many ties
    ours = tr.tensor(x, requires_grad=True)
    out, indices = F.max_pool2d(ours, 3, 2, 1, return_indices=True)
    g = rng.standard_normal(out.shape)
    (out * tr.tensor(g)).sum().backward()
    theirs = torch.tensor(x, requires_grad=True)
    t_out, t_indices = torch.nn.functional.max_pool2d(theirs, 3, 2, 1, return_indices=True)
    (t_out * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(indices.numpy(), t_indices.numpy())
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-14, atol=1e-14)  # sums in another order


# ----------------------------------------------------------------------------- second and third derivatives
GRADGRAD = {
    "conv2d": (["Conv2dFn"], lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1).tanh(), [(2, 2, 5, 4), (3, 2, 3, 2), (3,)]),
    "conv2d_groups_dilation": (
        ["Conv2dFn"], lambda x, w: F.conv2d(x, w, padding=(2, 1), dilation=2, groups=2) ** 2, [(1, 4, 5, 5), (2, 2, 2, 2)]
    ),
    "max_pool2d": (["MaxPool2dFn"], lambda x: F.max_pool2d(x * x, 3, 2, 1, ceil_mode=True), [(2, 2, 6, 5)]),
    "avg_pool2d": (["AvgPool2dFn"], lambda x: F.avg_pool2d(x * x, 3, 2, 1, count_include_pad=False), [(2, 2, 6, 5)]),
    "avg_pool2d_plain": (["AvgPool2dFn"], lambda x: F.avg_pool2d(x, 2).sin(), [(1, 2, 4, 4)]),
    "adaptive_avg_pool2d": (["AdaptiveAvgPool2dFn"], lambda x: F.adaptive_avg_pool2d(x * x, (3, 2)), [(2, 2, 7, 5)]),
}


@pytest.mark.parametrize("name", sorted(GRADGRAD))
def test_second_derivatives(name, device, ran_on_tensors):
    expected, fn, shapes = GRADGRAD[name]
    assert tr.gradgradcheck(fn, [leaf(s, device) for s in shapes])
    assert set(expected) <= ran_on_tensors


def test_third_derivatives_run_im2col_and_col2im_as_ops(device, ran_on_tensors):
    """A create_graph backward records Unfold / Fold; differentiating it once more runs their own
    backwards on Tensors (each is the other's), so conv2d and the pools have third derivatives."""

    def first_derivatives(x, w):
        y = F.conv2d(x, w, padding=1, stride=(1, 2))
        loss = (y**3).sum() + (F.avg_pool2d(y * y, 2, 1) * F.max_pool2d(y, 2, 1)).sum()
        return tr.autograd.grad(loss, [x, w], create_graph=True)

    assert tr.gradgradcheck(first_derivatives, [leaf((1, 2, 4, 4), device), leaf((2, 2, 2, 2), device)])
    assert {"Conv2dFn", "AvgPool2dFn", "MaxPool2dFn", "Unfold", "Fold"} <= ran_on_tensors


def test_second_derivatives_match_torch(torch):
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))

    def hessian_products(lib, functional, xx, ww):
        loss = (functional.avg_pool2d(functional.conv2d(xx, ww, padding=1, dilation=2) ** 2, 2) ** 2).sum()
        gx, gw = lib.autograd.grad(loss, [xx, ww], create_graph=True)
        return lib.autograd.grad((gx * gx).sum() + gw.sum(), [xx, ww])

    ours = hessian_products(tr, F, *(tr.tensor(a, requires_grad=True) for a in (x, w)))
    theirs = hessian_products(torch, torch.nn.functional, *(torch.tensor(a, requires_grad=True) for a in (x, w)))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------------------- PyTorch as the oracle
def _torch_results(torch, fn, arrays, g):
    leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    out.backward(torch.tensor(g))
    return [out.detach().numpy()] + [t.grad.numpy() for t in leaves]


def _our_results(fn, arrays, g, device="cpu"):
    leaves = [to_device(a, device, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    out.backward(to_device(g, device))
    return [out.numpy()] + [t.grad.numpy() for t in leaves]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("name", sorted(CONV))
def test_conv2d_matches_torch(name, torch):
    x_shape, w_shape, kwargs, with_bias = CONV[name]
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)] + ([rng.standard_normal(w_shape[0])] if with_bias else [])
    ours = _our_results(lambda *a: F.conv2d(*a, **kwargs), arrays, g := rng.standard_normal(
        torch.nn.functional.conv2d(*[torch.tensor(a) for a in arrays], **kwargs).shape))
    theirs = _torch_results(torch, lambda *a: torch.nn.functional.conv2d(*a, **kwargs), arrays, g)
    for a, b in zip(ours, theirs):  # output, grad input, grad weight (, grad bias)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("op, table", [("max_pool2d", MAX_POOL), ("avg_pool2d", AVG_POOL)])
def test_pools_match_torch(op, table, torch):
    for name, (shape, kwargs) in table.items():
        x = rng.standard_normal(shape)
        theirs_fn = getattr(torch.nn.functional, op)
        g = rng.standard_normal(theirs_fn(torch.tensor(x), **kwargs).shape)
        ours = _our_results(lambda a: getattr(F, op)(a, **kwargs), [x], g)
        theirs = _torch_results(torch, lambda a: theirs_fn(a, **kwargs), [x], g)
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape, name
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)


def test_max_pool_indices_match_torch(torch):
    for name, (shape, kwargs) in MAX_POOL.items():
        x = rng.standard_normal(shape)
        _, ours = F.max_pool2d(tr.tensor(x), **kwargs, return_indices=True)
        _, theirs = torch.nn.functional.max_pool2d(torch.tensor(x), **kwargs, return_indices=True)
        assert ours.dtype == np.int64
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=name)


def test_adaptive_avg_pool2d_matches_torch(torch):
    for name, (shape, size) in ADAPTIVE.items():
        x = rng.standard_normal(shape)
        g = rng.standard_normal(torch.nn.functional.adaptive_avg_pool2d(torch.tensor(x), size).shape)
        ours = _our_results(lambda a: F.adaptive_avg_pool2d(a, size), [x], g)
        theirs = _torch_results(torch, lambda a: torch.nn.functional.adaptive_avg_pool2d(a, size), [x], g)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv2d_module_loads_torch_state_dict_and_matches(padding_mode, torch):
    kwargs = dict(stride=(1, 2), padding=(1, 2), groups=2, padding_mode=padding_mode)
    theirs = torch.nn.Conv2d(4, 6, (3, 2), **kwargs)
    ours = nn.Conv2d(4, 6, (3, 2), **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    ours.load_state_dict({k: tr.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((2, 4, 5, 7)).astype(np.float32)
    ours_x, theirs_x = tr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, t_out = ours(ours_x), theirs(theirs_x)
    np.testing.assert_allclose(out.numpy(), t_out.detach().numpy(), rtol=1e-5, atol=1e-5)
    (out * out).sum().backward()
    (t_out * t_out).sum().backward()
    for a, b in ((ours_x.grad, theirs_x.grad), (ours.weight.grad, theirs.weight.grad), (ours.bias.grad, theirs.bias.grad)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)
    single = ours(tr.tensor(x[0]))  # unbatched (C, H, W)
    np.testing.assert_allclose(single.numpy(), out.numpy()[0], rtol=1e-6, atol=1e-6)


def test_small_cnn_trains_like_torch(torch):
    """A Conv2d-ReLU-MaxPool2d-AvgPool2d-Flatten-Linear stack: same loss and gradients as torch's, three SGD steps."""

    def build(m):
        return m.Sequential(m.Conv2d(1, 4, 3, padding=1), m.ReLU(), m.MaxPool2d(2), m.Conv2d(4, 6, 3, stride=2, padding=1),
                            m.AvgPool2d(2, count_include_pad=False, padding=1), m.AdaptiveAvgPool2d((2, 1)), m.Flatten(),
                            m.Linear(12, 3))

    theirs, ours = build(torch.nn).double(), build(nn).double()
    ours.load_state_dict({k: tr.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    x, y = rng.standard_normal((5, 1, 12, 12)), rng.integers(0, 3, size=5)
    opt, t_opt = tr.optim.SGD(ours.parameters(), lr=0.1), torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in range(3):
        loss = F.cross_entropy(ours(tr.tensor(x)), tr.tensor(y))
        t_loss = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        opt.zero_grad(), t_opt.zero_grad()
        loss.backward(), t_loss.backward()
        opt.step(), t_opt.step()
        np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-10)
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


# ----------------------------------------------------------------------------- initialisation, dtypes, reprs
def test_default_init_is_torchs_uniform_bound():
    """kaiming_uniform_(a=√5) gives U(±1/√fan_in) for the weight and the bias, fan_in = in/groups · kH · kW."""
    tr.manual_seed(3)
    layer = nn.Conv2d(8, 64, (3, 5), groups=2)
    bound = 1 / np.sqrt(4 * 3 * 5)
    for p in (layer.weight.numpy(), layer.bias.numpy()):
        assert p.dtype == np.float32 and np.abs(p).max() <= bound
    w = layer.weight.numpy().ravel()  # 3,840 draws
    assert np.abs(w).max() > 0.99 * bound
    assert abs(w.mean()) < 0.05 * bound and abs(w.var() / (bound**2 / 3) - 1) < 0.1
    assert abs(np.mean(np.abs(w) < bound / 2) - 0.5) < 0.05  # uniform, not normal
    tr.manual_seed(3)
    np.testing.assert_array_equal(nn.Conv2d(8, 64, (3, 5), groups=2).weight.numpy(), layer.weight.numpy())


def test_default_init_bound_equals_torchs(torch):
    torch.manual_seed(0)
    for args, kwargs in (((3, 16, 3), {}), ((4, 8, (2, 5)), dict(groups=4)), ((1, 32, 1), {})):
        theirs = torch.nn.Conv2d(*args, **kwargs)
        ours = nn.Conv2d(*args, **kwargs)
        fan_in = theirs.weight.shape[1] * theirs.weight.shape[2] * theirs.weight.shape[3]
        bound = 1 / np.sqrt(fan_in)
        for t, o in ((theirs.weight, ours.weight), (theirs.bias, ours.bias)):
            assert t.shape == o.shape
            assert np.abs(t.detach().numpy()).max() <= bound and np.abs(o.numpy()).max() <= bound
            assert np.abs(o.numpy()).max() > 0.5 * bound


def test_dtype_device_and_no_bias():
    layer = nn.Conv2d(2, 3, 3, bias=False, dtype="float64", device="hostless")
    assert layer.bias is None and layer.weight.dtype == np.float64 and layer.weight.device == "hostless"
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    out = layer(tr.randn(1, 2, 4, 4, dtype="float64", device="hostless"))
    assert out.shape == (1, 3, 2, 2) and out.device == "hostless"
    assert nn.Conv2d(2, 3, 3)(tr.randn(2, 4, 4)).dtype == np.float32


REPRS = [
    ("Conv2d", (1, 8, 3), {}),
    ("Conv2d", (4, 8, (3, 5)), dict(stride=2, padding=(1, 2), dilation=(2, 1), groups=2, bias=False)),
    ("Conv2d", (2, 4, 3), dict(padding="same", padding_mode="reflect")),
    ("Conv2d", (2, 4, 3), dict(padding="valid")),
    ("Conv2d", (2, 4, 3), dict(padding=1, padding_mode="circular")),
    ("MaxPool2d", (2,), {}),
    ("MaxPool2d", (3, 2, 1), dict(dilation=2, ceil_mode=True, return_indices=True)),
    ("MaxPool2d", ((2, 3),), dict(stride=(1, 2))),
    ("AvgPool2d", (2,), {}),
    ("AvgPool2d", (3, 2, 1), dict(ceil_mode=True, count_include_pad=False, divisor_override=3)),
    ("AdaptiveAvgPool2d", (1,), {}),
    ("AdaptiveAvgPool2d", ((None, 4),), {}),
    ("Flatten", (), {}),
    ("Flatten", (0, 2), {}),
]


@pytest.mark.parametrize("layer, args, kwargs", REPRS)
def test_reprs_are_torchs(layer, args, kwargs, torch):
    assert repr(getattr(nn, layer)(*args, **kwargs)) == repr(getattr(torch.nn, layer)(*args, **kwargs))


@pytest.mark.parametrize("start_dim, end_dim", [(1, -1), (0, -1), (1, 2), (-3, -2)])
def test_flatten_matches_torch(start_dim, end_dim, torch):
    x = rng.standard_normal((2, 3, 4, 5))
    out = nn.Flatten(start_dim, end_dim)(tr.tensor(x))
    np.testing.assert_array_equal(out.numpy(), torch.nn.Flatten(start_dim, end_dim)(torch.tensor(x)).numpy())
    assert nn.Flatten()(tr.tensor(x)).shape == (2, 60)


# ----------------------------------------------------------------------------- backends
def test_every_op_on_each_backend_equals_numpy(device):
    """Forward and backward of every configuration on ``device`` (hostless: arrays that refuse host NumPy,
    as CuPy's do; cuda when present) give NumPy's values."""
    for (name, fn, inputs), (_, _, host) in zip(every_call(device), every_call("cpu")):
        for a, b in zip(host, inputs):  # the same values on both
            b.array[...] = b.backend.asarray(a.numpy())
        out, host_out = fn(*inputs), fn(*host)
        g = rng.standard_normal(host_out.shape)
        out.backward(to_device(g, device))
        host_out.backward(to_device(g, "cpu"))
        assert out.device == device, name
        np.testing.assert_allclose(out.numpy(), host_out.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)
        for a, b in zip(inputs, host):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)


def test_max_pool_indices_on_each_backend(device):
    x = rng.standard_normal((2, 3, 7, 6))
    out, indices = F.max_pool2d(to_device(x, device), 3, 2, 1, return_indices=True)
    host_out, host_indices = F.max_pool2d(to_device(x, "cpu"), 3, 2, 1, return_indices=True)
    assert indices.device == device and indices.dtype == np.int64
    np.testing.assert_array_equal(indices.numpy(), host_indices.numpy())
    np.testing.assert_array_equal(out.numpy(), host_out.numpy())


@pytest.fixture(params=[d for d in ("hostless", "cuda") if d in SELECTED])
def capturing_device(request):
    if request.param == "cuda" and _cuda_skip_reason():
        pytest.skip(_cuda_skip_reason())
    return request.param


def test_cnn_step_captured_as_a_cuda_graph_replays_like_the_plain_step(capturing_device):
    """No op copies anything between host and device inside a step (the pooling divisors and averaging
    matrices are made once), so ``tr.cuda.graphed`` captures a CNN training step (emulated on hostless)."""

    def make_step():
        tr.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, stride=2, groups=2),
            nn.AvgPool2d(2, padding=1, ceil_mode=True, count_include_pad=False), nn.AdaptiveAvgPool2d((2, 1)),
            nn.Flatten(), nn.Linear(8, 3),
        ).to(capturing_device)
        opt = tr.optim.SGD(model.parameters(), lr=0.1)

        def step(x, y):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        return model, step

    data = [(to_device(rng.standard_normal((3, 1, 10, 10)).astype(np.float32), capturing_device),
             to_device(rng.integers(0, 3, 3), capturing_device)) for _ in range(4)]
    plain_model, plain_step = make_step()
    model, step = make_step()
    for _ in range(3):  # graphed() takes warmup + 1 steps on its static inputs
        plain_step(*data[0])
    graphed = tr.cuda.graphed(step, *data[0], warmup=2)
    losses = [graphed(*batch).item() for batch in data[1:]]
    np.testing.assert_allclose(losses, [plain_step(*batch).item() for batch in data[1:]], rtol=1e-5)
    assert graphed.replays == 3
    for (name, p), (_, q) in zip(model.named_parameters(), plain_model.named_parameters()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


# ----------------------------------------------------------------------------- graph drawing
def test_cnn_graph_names_the_ops_and_layers():
    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.avg = nn.AvgPool2d(2)
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

        def forward(self, x):
            return self.head(self.avg(self.pool(self.conv(x).relu())))

    x = tr.randn(2, 1, 8, 8)
    x.name = "images"
    src = draw_graph(CNN()(x).sum()).source
    nodes = dict(re.findall(r"^\s*(n\d+) \[label=<(.*?)> ", src, flags=re.M))
    titles = {k: v.split("<br/>")[0] for k, v in nodes.items()}
    for op in ("Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Linear"):
        assert list(titles.values()).count(op) == 1, op
    conv = next(k for k, v in titles.items() if v == "Conv2d")
    assert "(2, 4, 8, 8)" in nodes[conv]
    assert 'label="conv: Conv2d"' in src and "conv.weight" in titles.values() and "conv.bias" in titles.values()
    pool = next(k for k, v in titles.items() if v == "MaxPool2d")
    assert "pool" in nodes[pool] and "(2, 4, 4, 4)" in nodes[pool]  # the module's name as a line of the op's label
    images = next(k for k, v in titles.items() if v == "images")
    assert f"{images} -> {conv}" in src


# ----------------------------------------------------------------------------- bad input
def _cpu(*shape, dtype="float32"):
    return tr.zeros(*shape, dtype=dtype)


BAD = [
    ("2-D input", lambda: F.conv2d(_cpu(3, 5), _cpu(2, 3, 3, 3)), ValueError,
     r"^conv2d: expected a 3-D or 4-D input \(N, C, H, W\) or unbatched \(C, H, W\), got shape \(3, 5\)"),
    ("5-D input to a layer", lambda: nn.Conv2d(1, 2, 3)(_cpu(1, 1, 1, 5, 5)), ValueError,
     r"^conv2d: expected a 3-D or 4-D input .* got shape \(1, 1, 1, 5, 5\)"),
    ("channels", lambda: nn.Conv2d(3, 2, 3)(_cpu(1, 4, 5, 5)), ValueError,
     r"^conv2d: expected input with 3 channels \(weight \(2, 3, 3, 3\) with groups=1\), got input of shape \(1, 4, 5, 5\)"),
    ("channels, groups", lambda: F.conv2d(_cpu(1, 4, 5, 5), _cpu(4, 2, 3, 3), groups=3), ValueError,
     r"^conv2d: out_channels \(4, weight.shape\[0\]\) must be divisible by groups=3"),
    ("kernel larger", lambda: nn.Conv2d(1, 2, 5, padding=1)(_cpu(1, 1, 2, 2)), ValueError,
     r"^conv2d: the kernel's reach \(5, 5\) .* is larger than the padded input \(4, 4\) \(input \(2, 2\)\)"),
    ("dilated kernel larger", lambda: F.conv2d(_cpu(1, 1, 6, 6), _cpu(1, 1, 3, 3), dilation=3), ValueError,
     r"^conv2d: the kernel's reach \(7, 7\)"),
    ("int input", lambda: F.conv2d(tr.zeros(1, 1, 4, 4, dtype="int64"), _cpu(1, 1, 3, 3)), TypeError,
     r"^conv2d: input must be a floating point tensor, got dtype int64"),
    ("dtype mix", lambda: nn.Conv2d(1, 1, 3)(_cpu(1, 1, 4, 4, dtype="float64")), TypeError,
     r"^conv2d: input is float64 but weight is float32; cast one with \.to\(dtype\)"),
    ("bias dtype", lambda: F.conv2d(_cpu(1, 1, 4, 4), _cpu(2, 1, 3, 3), _cpu(2, dtype="float64")), TypeError,
     r"^conv2d: bias is float64 but weight is float32"),
    ("bias shape", lambda: F.conv2d(_cpu(1, 1, 4, 4), _cpu(2, 1, 3, 3), _cpu(3)), ValueError,
     r"^conv2d: expected bias of shape \(2,\) \(out_channels\), got \(3,\)"),
    ("weight ndim", lambda: F.conv2d(_cpu(1, 1, 4, 4), _cpu(2, 1, 3)), ValueError,
     r"^conv2d: weight must be 4-D \(out_channels, in_channels/groups, kH, kW\), got shape \(2, 1, 3\)"),
    ("not a tensor", lambda: F.conv2d(np.zeros((1, 1, 4, 4)), _cpu(1, 1, 3, 3)), TypeError,
     r"^conv2d: input must be a Tensor, got ndarray"),
    ("devices", lambda: F.conv2d(_cpu(1, 1, 4, 4), tr.zeros(1, 1, 3, 3, device="hostless")), RuntimeError,
     r"^conv2d: input is on cpu but weight is on hostless; move them with \.to\(device\)"),
    ("stride 0", lambda: F.conv2d(_cpu(1, 1, 4, 4), _cpu(1, 1, 3, 3), stride=0), ValueError,
     r"^conv2d: stride must be positive, got 0"),
    ("negative padding", lambda: nn.Conv2d(1, 1, 3, padding=-1), ValueError,
     r"^Conv2d: padding must be non-negative, got -1"),
    ("float kernel", lambda: nn.Conv2d(1, 1, 2.5), ValueError,
     r"^Conv2d: kernel_size must be an int or a pair of ints, got 2\.5"),
    ("triple kernel", lambda: nn.Conv2d(1, 1, (1, 2, 3)), ValueError,
     r"^Conv2d: kernel_size must be an int or a pair of ints, got \(1, 2, 3\)"),
    ("zero channels", lambda: nn.Conv2d(0, 1, 3), ValueError, r"^Conv2d: in_channels must be a positive integer, got 0"),
    ("groups", lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError,
     r"^Conv2d: in_channels \(3\) and out_channels \(4\) must both be divisible by groups \(2\)"),
    ("same and stride", lambda: nn.Conv2d(1, 1, 3, stride=2, padding="same"), ValueError,
     r"^Conv2d: padding='same' is not supported for strided convolutions \(got stride=\(2, 2\)\)"),
    ("padding word", lambda: F.conv2d(_cpu(1, 1, 4, 4), _cpu(1, 1, 3, 3), padding="full"), ValueError,
     r"^conv2d: padding must be 'valid', 'same', an int or a pair of ints, got 'full'"),
    ("padding_mode", lambda: nn.Conv2d(1, 1, 3, padding_mode="mirror"), ValueError,
     r"^Conv2d: padding_mode must be one of \('zeros', 'reflect', 'replicate', 'circular'\), got 'mirror'"),
    ("empty input", lambda: F.conv2d(_cpu(1, 1, 0, 4), _cpu(1, 1, 1, 1)), ValueError,
     r"^conv2d: expected non-zero channels, height, width and kernel sizes, got input of shape \(1, 1, 0, 4\)"),
    ("max pool padding", lambda: F.max_pool2d(_cpu(1, 1, 6, 6), 3, padding=2), ValueError,
     r"^max_pool2d: padding should be at most half of kernel size, got padding=\(2, 2\) and kernel_size=\(3, 3\)"),
    ("MaxPool2d padding", lambda: nn.MaxPool2d(2, padding=(0, 2)), ValueError,
     r"^MaxPool2d: padding should be at most half of kernel size, got padding=\(0, 2\) and kernel_size=2"),
    ("MaxPool2d kernel 0", lambda: nn.MaxPool2d(0), ValueError, r"^MaxPool2d: kernel_size must be positive, got 0"),
    ("MaxPool2d ceil_mode", lambda: nn.MaxPool2d(2, ceil_mode="yes"), TypeError,
     r"^MaxPool2d: ceil_mode must be a bool, got 'yes'"),
    ("max pool int input", lambda: F.max_pool2d(tr.zeros(1, 1, 4, 4, dtype="int64"), 2), TypeError,
     r"^max_pool2d: input must be a floating point tensor, got dtype int64"),
    ("max pool too small", lambda: nn.MaxPool2d(3)(_cpu(1, 1, 2, 5)), ValueError,
     r"^max_pool2d: the kernel's reach \(3, 3\) .* larger than the padded input \(2, 5\)"),
    ("max pool 2-D", lambda: nn.MaxPool2d(2)(_cpu(4, 4)), ValueError,
     r"^max_pool2d: expected a 3-D or 4-D input .* got shape \(4, 4\)"),
    ("avg pool stride", lambda: F.avg_pool2d(_cpu(1, 1, 4, 4), 2, stride=(1, 0)), ValueError,
     r"^avg_pool2d: stride must be positive, got \(1, 0\)"),
    ("avg pool divisor", lambda: F.avg_pool2d(_cpu(1, 1, 4, 4), 2, divisor_override=0), ValueError,
     r"^avg_pool2d: divisor_override must be a non-zero integer or None, got 0"),
    ("AvgPool2d divisor", lambda: nn.AvgPool2d(2, divisor_override=0), ValueError,
     r"^AvgPool2d: divisor_override must be a non-zero integer or None, got 0"),
    ("avg pool empty", lambda: F.avg_pool2d(_cpu(1, 0, 4, 4), 2), ValueError,
     r"^avg_pool2d: expected an input with non-zero channels, height and width, got shape \(1, 0, 4, 4\)"),
    ("adaptive size 0", lambda: nn.AdaptiveAvgPool2d((0, 2)), ValueError,
     r"^AdaptiveAvgPool2d: output_size must hold positive ints or None, got \(0, 2\)"),
    ("adaptive size 3", lambda: F.adaptive_avg_pool2d(_cpu(1, 1, 4, 4), (1, 2, 3)), ValueError,
     r"^adaptive_avg_pool2d: output_size must be an int or a pair \(None keeps the input's size\), got \(1, 2, 3\)"),
    ("adaptive int input", lambda: F.adaptive_avg_pool2d(tr.zeros(1, 2, 2, dtype="int32"), 1), TypeError,
     r"^adaptive_avg_pool2d: input must be a floating point tensor, got dtype int32"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_refused_clearly(case):
    _, call, error, pattern = case
    with pytest.raises(error, match=pattern):
        call()


def test_empty_batch_works():
    x, w = tr.randn(0, 2, 5, 5, requires_grad=True), tr.randn(3, 2, 3, 3, requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    assert y.shape == (0, 3, 5, 5)
    (F.max_pool2d(y, 2).sum() + F.avg_pool2d(y, 2).sum() + F.adaptive_avg_pool2d(y, 2).sum()).backward()
    assert x.grad.shape == (0, 2, 5, 5) and not w.grad.numpy().any()
