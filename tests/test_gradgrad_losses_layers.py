"""Second derivatives of the fused losses, layers and norms, option by option.

``test_gradgradcheck.py`` has one or two cases per op; here every option of
each (reductions, class weights, ignore_index, label smoothing, pos_weight,
log_target, beta, p, affine or not, padding_idx, ...) is checked with
``gradgradcheck`` in float64, and the second derivatives are compared with
PyTorch's (``torch.autograd.grad(..., create_graph=True)`` twice) where
PyTorch is installed. Inputs stay away from kinks (|d| = β, zero norms, ties).
"""
import numpy as np
import pytest

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F
from conftest import to_device
from test_gradgradcheck import const, leaf

rng = np.random.default_rng(11)

TARGET = [0, 3, 1]  # class targets of a (3, 4) input
TARGET_3D = [[0, 3], [1, 2], [3, 3]]  # of a (3, 4, 2) input


def away_from(shape, kink, gap, device):
    """Float64 leaf whose elements all lie at least ``gap`` from ±``kink`` (and from 0), both sides of
    the kink represented."""
    below = rng.uniform(gap, kink - gap, size=shape[-1] // 2) if kink > 2 * gap else np.full(0, 0.0)
    magnitude = np.concatenate([below, rng.uniform(kink + gap, kink + 1.0, size=shape[-1] - below.size)])
    data = np.stack([rng.permutation(magnitude) for _ in range(int(np.prod(shape[:-1])))]).reshape(shape)
    return to_device(data * rng.choice([-1.0, 1.0], size=shape), device, requires_grad=True)


# ----------------------------------------------------------------------------- class losses
CE_OPTIONS = {
    "mean": dict(),
    "sum": dict(reduction="sum"),
    "none": dict(reduction="none"),
    "ignore_mean": dict(ignore_index=3),
    "ignore_none": dict(ignore_index=1, reduction="none"),
    "smooth_mean": dict(label_smoothing=0.3),
    "smooth_sum_ignore": dict(label_smoothing=0.1, reduction="sum", ignore_index=0),
    "smooth_none": dict(label_smoothing=0.25, reduction="none"),
}


@pytest.mark.parametrize("weighted", ["none", "constant", "leaf"])
@pytest.mark.parametrize("name", sorted(CE_OPTIONS))
def test_cross_entropy_options(name, weighted, device):
    options = CE_OPTIONS[name]
    x = leaf((3, 4), device)
    inputs = [x]
    if weighted == "leaf":
        inputs.append(leaf((4,), device, low=0.3))
    constant = const([0.5, 1.5, 2.0, 0.7], device)

    def fn(x, *w):
        weight = (w[0] * w[0]) if w else (constant if weighted == "constant" else None)
        return F.cross_entropy(x * 1.5, const(TARGET, device), weight, **options)

    assert tr.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("options", [dict(), dict(reduction="none", ignore_index=3), dict(label_smoothing=0.2)])
def test_cross_entropy_spatial(options, device):
    """(N, C, d) input: the class axis is moved last inside, and back in the gradients."""
    x = leaf((3, 4, 2), device)
    w = leaf((4,), device, low=0.3)
    assert tr.gradgradcheck(lambda x, w: F.cross_entropy(x, const(TARGET_3D, device), w * w, **options), [x, w])


def test_cross_entropy_unbatched(device):
    x = leaf((4,), device)
    assert tr.gradgradcheck(lambda x: F.cross_entropy(x, const(2, device), label_smoothing=0.1), [x])


@pytest.mark.parametrize("options", [
    dict(), dict(reduction="sum"), dict(reduction="none"), dict(ignore_index=3), dict(reduction="none", ignore_index=0),
])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_options(options, weighted, device):
    x = leaf((3, 4), device)
    inputs = [x] + ([leaf((4,), device, low=0.3)] if weighted else [])

    def fn(x, *w):
        weight = w[0] * w[0] if w else None
        return F.nll_loss((x * x).log_softmax(1), const(TARGET, device), weight, **options)

    assert tr.gradgradcheck(fn, inputs)


def test_nll_spatial(device):
    x = leaf((3, 4, 2), device)
    w = leaf((4,), device, low=0.3)
    assert tr.gradgradcheck(lambda x, w: F.nll_loss(x.log_softmax(1), const(TARGET_3D, device), w, ignore_index=2), [x, w])


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("options", [dict(), dict(reduction="sum", ignore_index=1), dict(label_smoothing=0.2)])
def test_class_weight_first_order_gradient(loss, options, device):
    """A class weight that requires grad gets its gradient (PyTorch refuses one): checked numerically."""
    if loss == "nll_loss" and "label_smoothing" in options:
        pytest.skip("nll_loss has no label smoothing")
    x = leaf((3, 4), device)
    w = leaf((4,), device, low=0.3)
    assert tr.gradcheck(lambda x, w: getattr(F, loss)(x, const(TARGET, device), w, **options), [x, w])


def test_cross_entropy_all_ignored_mean_is_nan_with_zero_gradients(device):
    x = leaf((3, 4), device)
    loss = F.cross_entropy(x, const([2, 2, 2], device), ignore_index=2)
    (g,) = tr.autograd.grad(loss, x, create_graph=True)
    (h,) = tr.autograd.grad((g * g).sum(), x)
    assert np.isnan(loss.item())
    np.testing.assert_array_equal(h.numpy(), 0)


# ----------------------------------------------------------------------------- elementwise losses
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("pos_weight", [None, "constant", "leaf"])
def test_bce_with_logits_options(reduction, pos_weight, device):
    x, t = leaf((3, 4), device), leaf((3, 4), device)
    inputs = [x, t] + ([leaf((4,), device, low=0.5)] if pos_weight == "leaf" else [])
    weight = const(rng.uniform(0.5, 2.0, (3, 4)), device)

    def fn(x, t, *q):
        pw = q[0] if q else (const([1.5, 0.5, 2.0, 1.0], device) if pos_weight == "constant" else None)
        return F.binary_cross_entropy_with_logits(x * 2, t.sigmoid(), weight, reduction=reduction, pos_weight=pw)

    assert tr.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_options(reduction, device):
    x, t = leaf((3, 4), device), leaf((3, 4), device)
    weight = const(rng.uniform(0.5, 2.0, (4,)), device)
    assert tr.gradgradcheck(lambda x, t: F.binary_cross_entropy(x.sigmoid(), t.sigmoid(), weight, reduction=reduction), [x, t])


@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none", "mean"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.filterwarnings("ignore:kl_div")
def test_kl_div_options(reduction, log_target, device):
    x, t = leaf((3, 4), device), leaf((3, 4), device)

    def fn(x, t):
        target = t.log_softmax(1) if log_target else t.softmax(1)
        return F.kl_div(x.log_softmax(1), target, reduction=reduction, log_target=log_target)

    assert tr.gradgradcheck(fn, [x, t])


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_smooth_l1_options(beta, reduction, device):
    x = away_from((3, 4), beta, 0.1, device)
    t = to_device(np.zeros((3, 4)), device, requires_grad=True)
    # d = x - t with t = 0: every |d| at least 0.1 from β (and from 0)
    assert tr.gradgradcheck(lambda x, t: F.smooth_l1_loss(x * 1.0, t, beta=beta, reduction=reduction) * 3, [x, t])


@pytest.mark.parametrize("delta", [0.5, 1.5])
def test_huber_options(delta, device):
    x = away_from((3, 4), delta, 0.1, device)
    t = to_device(np.zeros((3, 4)), device, requires_grad=True)
    assert tr.gradgradcheck(lambda x, t: F.huber_loss(x, t, reduction="sum", delta=delta), [x, t])


def test_smooth_l1_second_derivative_is_one_over_beta_inside(device):
    x = to_device(np.array([0.1, -0.2, 0.9, -2.0]), device, requires_grad=True)
    loss = F.smooth_l1_loss(x, const(np.zeros(4), device), beta=0.5, reduction="sum")
    (g,) = tr.autograd.grad(loss, x, create_graph=True)
    (h,) = tr.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), [2.0, 2.0, 0.0, 0.0])


# ----------------------------------------------------------------------------- layers
@pytest.mark.parametrize("bias", [False, True])
def test_linear_options(bias, device):
    x, w = leaf((2, 3, 3), device), leaf((4, 3), device)
    inputs = [x, w] + ([leaf((4,), device)] if bias else [])
    assert tr.gradgradcheck(lambda x, w, *b: (F.linear(x, w, *b) ** 2).sin(), inputs)


@pytest.mark.parametrize("padding_idx", [None, 1, -1])
def test_embedding_options(padding_idx, device):
    w = leaf((4, 3), device)
    indices = const([[0, 1, 2], [2, 3, 1]], device)
    assert tr.gradgradcheck(lambda w: (F.embedding(indices, w, padding_idx=padding_idx) ** 3).tanh(), [w])


def test_embedding_padding_row_has_no_second_derivative(device):
    w = leaf((4, 3), device)
    out = F.embedding(const([1, 1, 2], device), w, padding_idx=1)
    (g,) = tr.autograd.grad((out**3).sum(), w, create_graph=True)
    (h,) = tr.autograd.grad(g.sum(), w)
    assert np.all(h.numpy()[1] == 0) and np.all(g.numpy()[1] == 0)
    np.testing.assert_allclose(h.numpy()[2], 6 * w.numpy()[2])


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_options(p, device):
    x = leaf((4, 5), device)
    assert tr.gradgradcheck(lambda x: (tr.manual_seed(1), F.dropout(x.sin(), p, True) * x)[1], [x])


@pytest.mark.parametrize("affine", ["none", "weight", "bias", "both"])
@pytest.mark.parametrize("shape", [(4,), (2, 3)])
def test_layer_norm_options(affine, shape, device):
    x = leaf((3,) + shape, device)
    inputs = [x] + [leaf(shape, device) for _ in range({"none": 0, "weight": 1, "bias": 1, "both": 2}[affine])]

    def fn(x, *params):
        weight = params[0] if affine in ("weight", "both") else None
        bias = params[-1] if affine in ("bias", "both") else None
        return F.layer_norm(x, shape, weight, bias, eps=1e-3) ** 2

    assert tr.gradgradcheck(fn, inputs)


# ----------------------------------------------------------------------------- norms
@pytest.mark.parametrize("p", [1, 2, 3, 1.5, 0.5, 0, float("inf"), float("-inf")])
@pytest.mark.parametrize("dim, keepdim", [(None, False), (1, False), ((0, 2), True), (2, True)])
def test_vector_norm_options(p, dim, keepdim, device):
    x = leaf((2, 3, 4), device, low=0.2)  # away from 0 (|x|^p, sign); ties in max |x| have probability 0
    signs = const(rng.choice([-1.0, 1.0], size=(2, 3, 4)), device)
    fn = lambda x: (x * signs).norm(p=p, dim=dim, keepdim=keepdim) ** 2  # noqa: E731
    if p == 0:
        y = fn(x)
        (g,) = tr.autograd.grad(y.sum(), x, create_graph=True, allow_unused=True)
        assert g is None or not g.numpy().any()
        return
    assert tr.gradgradcheck(fn, [x])


def test_tensor_norm_and_normalize(device):
    x = leaf((3, 4), device, low=0.2)
    assert tr.gradgradcheck(lambda x: x.norm(dim=0, keepdim=True) * x + F.normalize(x, p=3, dim=1), [x])


@pytest.mark.parametrize("shapes, dim", [(((3, 4), (3, 4)), 1), (((3, 4), (3, 4)), 0), (((3, 1), (3, 4)), 1),
                                         (((2, 1, 4), (3, 4)), -1), (((4,), (2, 4)), 1)])
def test_cosine_similarity_options(shapes, dim, device):
    a, b = (leaf(shape, device) for shape in shapes)
    assert tr.gradgradcheck(lambda a, b: F.cosine_similarity(a, b, dim=dim) ** 2, [a, b])


# ----------------------------------------------------------------------------- against PyTorch
def _second_derivatives(grad, tensors, loss, vectors):
    firsts = grad(loss, tensors, create_graph=True)
    contracted = sum((g * v).sum() for g, v in zip(firsts, vectors))
    return firsts, grad(contracted, tensors)


TORCH_CASES = {
    "ce_weight_smooth_ignore": (
        [(3, 4)], lambda F_, T, x: F_.cross_entropy(x, T([0, 3, 1]), T([0.5, 1.5, 2.0, 0.7]), ignore_index=3,
                                                      label_smoothing=0.2)),
    "ce_none_spatial": (
        [(3, 4, 2)], lambda F_, T, x: F_.cross_entropy(x, T(TARGET_3D), reduction="none", label_smoothing=0.1) ** 2),
    "ce_sum": ([(3, 4)], lambda F_, T, x: F_.cross_entropy(x * x, T([0, 3, 1]), reduction="sum")),
    "nll_weight": ([(3, 4)], lambda F_, T, x: F_.nll_loss((x * x).log_softmax(1), T([0, 3, 1]), T([0.5, 1.5, 2.0, 0.7]))),
    "bce_logits_pos_weight": (
        [(3, 4), (3, 4)], lambda F_, T, x, t: F_.binary_cross_entropy_with_logits(
            x * x, t.sigmoid(), pos_weight=T([1.5, 0.5, 2.0, 1.0]), reduction="sum")),
    "bce_logits": ([(3, 4), (3, 4)], lambda F_, T, x, t: F_.binary_cross_entropy_with_logits(x * x, t.sigmoid())),
    "bce": ([(3, 4), (3, 4)], lambda F_, T, x, t: F_.binary_cross_entropy(x.sigmoid(), t.sigmoid(), reduction="sum")),
    "kl_div": ([(3, 4), (3, 4)], lambda F_, T, x, t: F_.kl_div(x.log_softmax(1), t.softmax(1), reduction="batchmean")),
    "kl_div_log_target": (
        [(3, 4), (3, 4)], lambda F_, T, x, t: F_.kl_div(x * x, t.log_softmax(1), reduction="sum", log_target=True)),
    "smooth_l1": ([(3, 4), (3, 4)], lambda F_, T, x, t: F_.smooth_l1_loss(x * x, t, beta=0.5, reduction="sum")),
    "huber": ([(3, 4), (3, 4)], lambda F_, T, x, t: F_.huber_loss(x * x, t, delta=0.7)),
    "linear": ([(2, 3), (4, 3), (4,)], lambda F_, T, x, w, b: (F_.linear(x, w, b) ** 2).sum()),
    "layer_norm": ([(3, 4), (4,), (4,)], lambda F_, T, x, w, b: (F_.layer_norm(x, (4,), w, b) ** 3).sum()),
    "layer_norm_plain": ([(3, 2, 4)], lambda F_, T, x: (F_.layer_norm(x, (2, 4)) ** 3).sum()),
    "norms": ([(3, 4)], lambda F_, T, x: (x.norm(dim=1) ** 3).sum() + x.norm(p=3) ** 2 + x.norm(p=1.5)),
    "cosine": ([(3, 4), (3, 4)], lambda F_, T, a, b: (F_.cosine_similarity(a, b) ** 2).sum()),
    "cosine_clamped": (  # ‖0.1 a‖ < eps: the clamp changes the value, not the derivative of the norm
        [(3, 4), (3, 4)], lambda F_, T, a, b: (F_.cosine_similarity(a * 0.1, b, eps=0.5) ** 2).sum()),
    "cosine_broadcast": ([(3, 1), (3, 4)], lambda F_, T, a, b: (F_.cosine_similarity(a * a, b, dim=1) ** 3).sum()),
}


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_second_derivatives_match_pytorch(name):
    torch = pytest.importorskip("torch")
    shapes, build = TORCH_CASES[name]
    data = [rng.standard_normal(shape) for shape in shapes]
    vectors = None
    results = []
    for framework in ("tr", "torch"):
        if framework == "tr":
            leaves = [tr.tensor(d, requires_grad=True) for d in data]
            F_, grad = F, tr.autograd.grad
            T = lambda v: tr.tensor(np.asarray(v))  # noqa: E731
        else:
            leaves = [torch.tensor(d, requires_grad=True) for d in data]
            F_, grad = torch.nn.functional, torch.autograd.grad
            T = lambda v: torch.tensor(np.asarray(v))  # noqa: E731
        out = build(F_, T, *leaves)
        loss = out.sum() if out.ndim else out
        if vectors is None:
            vectors = [rng.standard_normal(shape) for shape in shapes]
        vs = [tr.tensor(v) if framework == "tr" else torch.tensor(v) for v in vectors]
        firsts, seconds = _second_derivatives(grad, leaves, loss, vs)
        results.append(([np.asarray(g.detach().numpy()) for g in firsts], [np.asarray(h.numpy()) for h in seconds]))
    (ours_first, ours_second), (theirs_first, theirs_second) = results
    for a, b in zip(ours_first, theirs_first):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(ours_second, theirs_second):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)
