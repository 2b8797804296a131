"""Losses: fused cross-entropy / NLL / BCE-with-logits, MSE, L1, their modules, perplexity, one_hot."""
import math

import numpy as np
import pytest
from conftest import to_device

import tinygrad_rnn as tr
import tinygrad_rnn.nn as nn
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn.ops import losses as loss_ops


def _logits(shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


def _labels(shape, classes, seed=1, ignore_every=0):
    labels = np.random.default_rng(seed).integers(0, classes, size=shape)
    if ignore_every:
        labels.reshape(-1)[::ignore_every] = -100
    return labels


# ------------------------------------------------------------------ cross-entropy
def test_cross_entropy_hand_computed():
    x = tr.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]], requires_grad=True)
    t = tr.tensor([2, 0])
    loss = F.cross_entropy(x, t)
    first = -math.log(math.exp(3) / (math.exp(1) + math.exp(2) + math.exp(3)))
    second = math.log(3)
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-6)
    loss.backward()
    p = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    expected = np.array([p - [0, 0, 1], np.full(3, 1 / 3) - [1, 0, 0]]) / 2
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4), (2, 3, 2, 2)])
def test_cross_entropy_gradcheck_with_ignore_index(device, shape, reduction):
    target_shape = (shape[0],) + shape[2:]
    x = to_device(_logits(shape), device, requires_grad=True)
    t = tr.Tensor(_labels(target_shape, shape[1], ignore_every=3), device=device)
    assert tr.gradcheck(lambda a: F.cross_entropy(a, t, reduction=reduction), [x])


def test_cross_entropy_gradcheck_weight_and_label_smoothing(device):
    x = to_device(_logits((2, 4, 3)), device, requires_grad=True)
    t = tr.Tensor(_labels((2, 3), 4, ignore_every=4), device=device)
    w = to_device([0.5, 1.0, 2.0, 1.5], device)
    for reduction in ("mean", "sum", "none"):
        fn = lambda a: F.cross_entropy(a, t, w, reduction=reduction, label_smoothing=0.2)  # noqa: E731
        assert tr.gradcheck(fn, [x])


@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2), (2, 4, 3, 2)])
@pytest.mark.parametrize("options", [
    {}, {"reduction": "sum"}, {"reduction": "none"}, {"label_smoothing": 0.1},
    {"weight": [0.2, 1.0, 3.0, 0.7]}, {"weight": [0.2, 1.0, 3.0, 0.7], "label_smoothing": 0.3, "reduction": "none"},
    {"weight": [0.2, 1.0, 3.0, 0.7], "label_smoothing": 0.3},
])
def test_cross_entropy_matches_torch(shape, options):
    torch = pytest.importorskip("torch")
    x_np = _logits(shape, scale=3.0)
    t_np = _labels((shape[0],) + shape[2:], shape[1], ignore_every=3)
    kwargs = dict(options)
    weight = kwargs.pop("weight", None)
    x = tr.Tensor(x_np, requires_grad=True)
    ours = F.cross_entropy(x, tr.Tensor(t_np), None if weight is None else tr.Tensor(np.array(weight)), **kwargs)
    xt = torch.tensor(x_np, requires_grad=True)
    theirs = torch.nn.functional.cross_entropy(
        xt, torch.tensor(t_np), None if weight is None else torch.tensor(weight, dtype=torch.float64), **kwargs
    )
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.random.default_rng(5).standard_normal(theirs.shape)
    ours.backward(tr.Tensor(g))
    theirs.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_cross_entropy_is_one_fused_op_and_keeps_float32(device):
    x = tr.Tensor(_logits((3, 5, 2)).astype(np.float32), device=device, requires_grad=True)
    t = tr.Tensor(_labels((3, 2), 5), device=device)
    loss = F.cross_entropy(x, t)
    assert isinstance(loss.grad_fn, loss_ops.CrossEntropy)
    assert loss.grad_fn.next[0] is x  # straight from the leaf: no softmax/log/gather nodes in between
    assert loss.dtype == np.float32
    loss.backward()
    assert x.grad.dtype == np.float32 and x.grad.device == device


def test_cross_entropy_extreme_logits_are_finite(device):
    x_np = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]], dtype=np.float32)
    t_np = np.array([1, 2, 0])
    x = tr.Tensor(x_np, device=device, requires_grad=True)
    loss = F.cross_entropy(x, tr.Tensor(t_np, device=device), reduction="none")
    loss.sum().backward()
    assert np.isfinite(loss.numpy()).all() and np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(loss.numpy(), [2e4, 0.0, math.log(2)], rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy()[0], [1.0, -1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy()[2], [-0.5, 0.5, 0.0], atol=1e-6)


def test_cross_entropy_all_ignored_mean_is_nan_with_zero_gradient():
    x = tr.Tensor(_logits((3, 4)), requires_grad=True)
    loss = F.cross_entropy(x, tr.tensor([-100, -100, -100]))
    assert math.isnan(loss.item())
    loss.backward()
    assert (x.grad.numpy() == 0).all()


def test_cross_entropy_custom_ignore_index_and_unbatched():
    x = tr.Tensor(_logits((4, 3)), requires_grad=True)
    t = tr.tensor([0, 7, 2, 7])
    full = F.cross_entropy(x, t, ignore_index=7, reduction="none").numpy()
    assert full[1] == 0 and full[3] == 0
    assert F.cross_entropy(x, t, ignore_index=7).item() == pytest.approx((full[0] + full[2]) / 2)
    single = F.cross_entropy(x[0], tr.tensor(0), reduction="none")
    assert single.shape == () and single.item() == pytest.approx(full[0])


def test_cross_entropy_errors():
    x = tr.Tensor(_logits((4, 3)))
    with pytest.raises(TypeError, match=r"cross_entropy: target must be an integer tensor.*float32"):
        F.cross_entropy(x, tr.tensor([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(IndexError, match=r"cross_entropy: target value 5 is out of range for 3 classes"):
        F.cross_entropy(x, tr.tensor([0, 5, 2, 1]))
    with pytest.raises(IndexError, match=r"target value -1 is out of range"):
        F.cross_entropy(x, tr.tensor([0, -1, 2, 1]))
    with pytest.raises(ValueError, match=r"expected target of shape \(4,\) for input of shape \(4, 3\).*got \(3,\)"):
        F.cross_entropy(x, tr.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"reduction must be one of"):
        F.cross_entropy(x, tr.tensor([0, 1, 2, 1]), reduction="avg")
    with pytest.raises(ValueError, match=r"expected weight of shape \(3,\)"):
        F.cross_entropy(x, tr.tensor([0, 1, 2, 1]), tr.ones(4, dtype="float64"))
    with pytest.raises(TypeError, match=r"input must be a floating point tensor"):
        F.cross_entropy(tr.tensor([[1, 2]]), tr.tensor([0]))


# ------------------------------------------------------------------------ NLL loss
def test_nll_loss_equals_cross_entropy_of_log_softmax(device):
    x = to_device(_logits((3, 4, 2)), device, requires_grad=True)
    t = tr.Tensor(_labels((3, 2), 4, ignore_every=4), device=device)
    w = to_device([1.0, 0.5, 2.0, 1.0], device)
    for reduction in ("mean", "sum", "none"):
        a = F.nll_loss(x.log_softmax(1), t, w, reduction=reduction).numpy()
        b = F.cross_entropy(x, t, w, reduction=reduction).numpy()
        np.testing.assert_allclose(a, b, rtol=1e-12)
        assert tr.gradcheck(lambda v: F.nll_loss(v, t, w, reduction=reduction), [x])


def test_nll_loss_matches_torch():
    torch = pytest.importorskip("torch")
    x_np = _logits((5, 3, 2))
    t_np = _labels((5, 2), 3, ignore_every=3)
    x = tr.Tensor(x_np, requires_grad=True)
    xt = torch.tensor(x_np, requires_grad=True)
    ours = F.nll_loss(x, tr.Tensor(t_np), tr.tensor([0.3, 1.0, 2.0], dtype="float64"))
    theirs = torch.nn.functional.nll_loss(xt, torch.tensor(t_np), torch.tensor([0.3, 1.0, 2.0], dtype=torch.float64))
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)
    ours.backward()
    theirs.backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)


# ---------------------------------------------------------------- MSE, L1 losses
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_pointwise_losses_gradcheck_and_values(device, name):
    a_np, b_np = _logits((3, 4), 0), _logits((3, 4), 1)
    a = to_device(a_np, device, requires_grad=True)
    b = to_device(b_np, device, requires_grad=True)
    fn = getattr(F, name)
    expected = (a_np - b_np) ** 2 if name == "mse_loss" else np.abs(a_np - b_np)
    np.testing.assert_allclose(fn(a, b, reduction="none").numpy(), expected)
    assert fn(a, b).item() == pytest.approx(expected.mean())
    assert fn(a, b, reduction="sum").item() == pytest.approx(expected.sum())
    for reduction in ("mean", "sum", "none"):
        assert tr.gradcheck(lambda u, v: fn(u, v, reduction=reduction), [a, b])


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_pointwise_losses_refuse_to_broadcast(name):
    with pytest.raises(ValueError, match=rf"{name}: input of shape \(3, 1\) and target of shape \(3,\) differ"):
        getattr(F, name)(tr.zeros(3, 1), tr.zeros(3))


def test_mse_and_l1_match_torch():
    torch = pytest.importorskip("torch")
    a_np, b_np = _logits((2, 5), 0), _logits((2, 5), 1)
    for ours_fn, theirs_fn in ((F.mse_loss, torch.nn.functional.mse_loss), (F.l1_loss, torch.nn.functional.l1_loss)):
        a = tr.Tensor(a_np, requires_grad=True)
        at = torch.tensor(a_np, requires_grad=True)
        ours, theirs = ours_fn(a, tr.Tensor(b_np)), theirs_fn(at, torch.tensor(b_np))
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)
        ours.backward()
        theirs.backward()
        np.testing.assert_allclose(a.grad.numpy(), at.grad.numpy(), rtol=1e-12)


# ---------------------------------------------------------------- BCE with logits
def test_bce_with_logits_gradcheck(device):
    x = to_device(_logits((3, 4), 0, scale=3.0), device, requires_grad=True)
    t = to_device(np.random.default_rng(2).random((3, 4)), device, requires_grad=True)
    q = to_device([0.5, 1.0, 2.0, 3.0], device, requires_grad=True)
    w = to_device(np.random.default_rng(3).random((3, 4)), device)
    assert tr.gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b), [x, t])
    assert tr.gradcheck(lambda a, b, c: F.binary_cross_entropy_with_logits(a, b, w, pos_weight=c, reduction="sum"), [x, t, q])


@pytest.mark.parametrize("options", [{}, {"reduction": "none"}, {"pos_weight": True}, {"weight": True, "reduction": "sum"}])
def test_bce_with_logits_matches_torch(options):
    torch = pytest.importorskip("torch")
    x_np = _logits((4, 3), scale=4.0)
    t_np = (np.random.default_rng(1).random((4, 3)) > 0.5).astype(np.float64)
    q_np, w_np = np.array([0.5, 2.0, 3.0]), np.random.default_rng(2).random((4, 3))
    kwargs_ours, kwargs_torch = {"reduction": options.get("reduction", "mean")}, {"reduction": options.get("reduction", "mean")}
    if options.get("pos_weight"):
        kwargs_ours["pos_weight"], kwargs_torch["pos_weight"] = tr.Tensor(q_np), torch.tensor(q_np)
    if options.get("weight"):
        kwargs_ours["weight"], kwargs_torch["weight"] = tr.Tensor(w_np), torch.tensor(w_np)
    x, xt = tr.Tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    ours = F.binary_cross_entropy_with_logits(x, tr.Tensor(t_np), **kwargs_ours)
    theirs = torch.nn.functional.binary_cross_entropy_with_logits(xt, torch.tensor(t_np), **kwargs_torch)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12)
    g = np.ones(theirs.shape)
    ours.backward(tr.Tensor(g))
    theirs.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_bce_with_logits_is_stable_for_extreme_logits():
    x = tr.tensor([1e4, -1e4, 1e4, -1e4, 0.0], requires_grad=True)
    t = tr.tensor([1.0, 0.0, 0.0, 1.0, 1.0])
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [0.0, 0.0, 1e4, 1e4, math.log(2)], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 1.0, -1.0, -0.5], atol=1e-6)


def test_bce_with_logits_errors():
    with pytest.raises(TypeError, match=r"binary_cross_entropy_with_logits: target must be a floating point tensor"):
        F.binary_cross_entropy_with_logits(tr.zeros(3), tr.tensor([1, 0, 1]))
    with pytest.raises(ValueError, match=r"differ"):
        F.binary_cross_entropy_with_logits(tr.zeros(3), tr.zeros(3, 1))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2,\) does not broadcast"):
        F.binary_cross_entropy_with_logits(tr.zeros(4, 3), tr.zeros(4, 3), pos_weight=tr.ones(2))


# ---------------------------------------------------------------------- modules
def test_loss_modules_match_functional_and_move_weights(device):
    x = to_device(_logits((4, 3)), device, requires_grad=True)
    t = tr.Tensor(_labels((4,), 3), device=device)
    weight = tr.tensor([1.0, 2.0, 0.5], dtype="float64")
    module = nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1).to(device)
    assert module.weight.device == device
    expected = F.cross_entropy(x, t, module.weight, label_smoothing=0.1).item()
    assert module(x, t).item() == pytest.approx(expected)
    assert nn.NLLLoss(reduction="sum")(x, t).item() == pytest.approx(F.nll_loss(x, t, reduction="sum").item())
    y = to_device(_logits((4, 3), 7), device)
    assert nn.MSELoss()(x, y).item() == pytest.approx(F.mse_loss(x, y).item())
    assert nn.L1Loss(reduction="sum")(x, y).item() == pytest.approx(F.l1_loss(x, y, reduction="sum").item())
    probs = to_device(np.random.default_rng(0).random((4, 3)), device)
    bce = nn.BCEWithLogitsLoss(pos_weight=tr.tensor([1.0, 2.0, 3.0], dtype="float64")).to(device)
    assert bce(x, probs).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(x, probs, pos_weight=bce.pos_weight).item()
    )
    with pytest.raises(ValueError, match="CrossEntropyLoss: reduction must be one of"):
        nn.CrossEntropyLoss(reduction="batchmean")


# ---------------------------------------------------------------- perplexity etc
def test_perplexity():
    assert F.perplexity(tr.tensor(math.log(5.0))) == pytest.approx(5.0)
    assert F.perplexity(2.0) == pytest.approx(math.exp(2.0))
    assert F.perplexity(tr.tensor([1.0, 3.0])) == pytest.approx(math.exp(2.0))
    assert F.perplexity(1e6) == math.inf
    uniform = F.cross_entropy(tr.zeros(6, 10), tr.tensor([0, 1, 2, 3, 4, 5]))
    assert F.perplexity(uniform) == pytest.approx(10.0, rel=1e-5)


def test_one_hot(device):
    labels = tr.Tensor(np.array([[0, 2], [1, 0]]), device=device)
    out = F.one_hot(labels, 3)
    assert out.dtype == np.int64 and out.shape == (2, 2, 3) and out.device == device
    np.testing.assert_array_equal(out.numpy(), np.eye(3, dtype=np.int64)[[[0, 2], [1, 0]]])
    assert F.one_hot(tr.tensor([1, 4])).shape == (2, 5)
    with pytest.raises(IndexError, match=r"one_hot: class value 3 is out of range for num_classes=3"):
        F.one_hot(tr.tensor([3]), 3)
    with pytest.raises(TypeError, match="integer tensor"):
        F.one_hot(tr.tensor([1.0]), 3)
