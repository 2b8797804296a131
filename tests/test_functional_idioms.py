"""The functional names courses use, as in ``torch.nn.functional``: gelu (and its erf), silu, leaky_relu,
normalize, cosine_similarity, pad, binary_cross_entropy, kl_div, smooth_l1_loss, huber_loss, and
cross_entropy against class probabilities.

Gradients against float64 central differences on every backend; values and
gradients against PyTorch (skipped without it), table-driven; bad input gets
an error that names the call.
"""
import math
import warnings

import numpy as np
import pytest
from conftest import to_device

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn.backends import get_backend
from tinygrad_rnn.ops.activations import erf
from tinygrad_rnn.ops.padding import border_index

rng = np.random.default_rng(11)


def randn(*shape, scale=1.0):
    return rng.standard_normal(shape) * scale


def probabilities(*shape, low=0.05, high=0.95):
    return rng.uniform(low, high, shape)


def distributions(rows, classes):
    """``rows`` probability vectors over ``classes`` (each sums to 1), shape (rows, classes)."""
    return rng.dirichlet(np.ones(classes), rows)


# ------------------------------------------------------------------------------- erf
def test_erf_is_accurate_to_a_few_ulps_over_the_whole_line(device):
    xs = np.concatenate([
        np.linspace(-7.0, 7.0, 20001), np.geomspace(1e-300, 6.0, 2000), -np.geomspace(1e-12, 6.5, 500),
        [0.0, -0.0, 0.25, 0.2500001, 5.75, 6.0, 6.25, 30.0, np.inf, -np.inf],
    ])
    backend = get_backend(device)
    got = backend.to_host(erf(backend, backend.asarray(xs)))
    expected = np.array([math.erf(v) for v in xs])
    relative = np.abs(got - expected) / np.maximum(np.abs(expected), 1e-300)
    assert relative.max() < 1e-15
    assert np.isnan(backend.to_host(erf(backend, backend.asarray(np.array([np.nan, 1.0]))))[0])
    as_float32 = backend.to_host(erf(backend, backend.asarray(xs.astype(np.float32))))
    assert as_float32.dtype == np.float32
    np.testing.assert_allclose(as_float32, expected, rtol=2e-6, atol=1e-7)


# ------------------------------------------------------------------------- gradchecks
GRADCHECKS = {
    "gelu": (lambda x: F.gelu(x), [randn(3, 4, scale=2.0)]),
    "gelu tanh": (lambda x: F.gelu(x, approximate="tanh"), [randn(3, 4, scale=2.0)]),
    "silu": (F.silu, [randn(3, 4, scale=3.0)]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), [randn(3, 4)]),
    "normalize p=2": (lambda x: F.normalize(x), [randn(3, 4)]),
    "normalize p=1 dim=0": (lambda x: F.normalize(x, p=1.0, dim=0), [randn(3, 4)]),
    "normalize p=3 dim=-1": (lambda x: F.normalize(x, p=3, dim=-1), [randn(2, 3, 4)]),
    "normalize p=inf": (lambda x: F.normalize(x, p=math.inf), [randn(3, 4)]),
    "cosine_similarity": (lambda a, b: F.cosine_similarity(a, b), [randn(3, 4), randn(3, 4)]),
    "cosine_similarity broadcast": (lambda a, b: F.cosine_similarity(a, b, dim=-1), [randn(2, 1, 4), randn(3, 4)]),
    "pad constant": (lambda x: F.pad(x, (1, 2, -1, 1), value=0.5), [randn(2, 3, 4)]),
    "pad reflect": (lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"), [randn(1, 3, 4)]),
    "pad replicate": (lambda x: F.pad(x, (2, 3), mode="replicate"), [randn(2, 3, 4)]),
    "pad circular": (lambda x: F.pad(x, (1, 2, 2, -1), mode="circular"), [randn(1, 3, 4)]),
    "binary_cross_entropy": (lambda x, t: F.binary_cross_entropy(x, t), [probabilities(3, 4), probabilities(3, 4)]),
    "binary_cross_entropy none": (
        lambda x, t: F.binary_cross_entropy(x, t, reduction="none"), [probabilities(5), probabilities(5)],
    ),
    "kl_div batchmean": (
        lambda x, t: F.kl_div(x, t, reduction="batchmean"), [np.log(distributions(3, 4)), distributions(3, 4)],
    ),
    "kl_div log_target": (
        lambda x, t: F.kl_div(x, t, reduction="sum", log_target=True),
        [np.log(distributions(3, 4)), np.log(distributions(3, 4))],
    ),
    "smooth_l1_loss": (lambda x, t: F.smooth_l1_loss(x, t, beta=0.7), [randn(4, 3), randn(4, 3)]),
    "smooth_l1_loss beta=0": (lambda x, t: F.smooth_l1_loss(x, t, beta=0.0), [randn(4, 3), randn(4, 3)]),
    "huber_loss": (lambda x, t: F.huber_loss(x, t, "sum", 0.8), [randn(4, 3), randn(4, 3)]),
    "cross_entropy probabilities": (
        lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1), [randn(3, 4), distributions(3, 4)],
    ),
    "cross_entropy probabilities (N, C, d)": (
        lambda x, t: F.cross_entropy(x, t, reduction="none"),
        [randn(2, 4, 3), np.ascontiguousarray(np.moveaxis(distributions(6, 4).reshape(2, 3, 4), 2, 1))],
    ),
}


@pytest.mark.parametrize("name", list(GRADCHECKS))
def test_gradcheck(device, name):
    fn, arrays = GRADCHECKS[name]
    inputs = [to_device(a, device, requires_grad=True) for a in arrays]
    assert tr.gradcheck(fn, inputs)


def test_gradcheck_with_weights(device):
    x, t = to_device(probabilities(3, 4), device, True), to_device(probabilities(3, 4), device)
    w = to_device(rng.uniform(0.5, 2.0, (4,)), device)
    assert tr.gradcheck(lambda a: F.binary_cross_entropy(a, t, w), [x])
    a, b = to_device(randn(3, 4), device, True), to_device(randn(3, 4), device, True)
    weight = to_device(rng.uniform(0.5, 2.0, (3, 4)), device, True)
    assert tr.gradcheck(lambda p, q, w: F.huber_loss(p, q, weight=w), [a, b, weight])
    logits = to_device(randn(3, 4), device, True)
    target = to_device(distributions(3, 4), device, True)
    class_weight = to_device(rng.uniform(0.5, 2.0, (4,)), device)
    assert tr.gradcheck(lambda x, t: F.cross_entropy(x, t, class_weight, reduction="sum"), [logits, target])


@pytest.mark.parametrize("fn", [F.silu, F.leaky_relu])
def test_inplace_activations_overwrite_their_input_as_in_torch(device, fn):
    x = to_device(randn(2, 3), device, requires_grad=True)
    hidden = x * 2.0
    out = fn(hidden, inplace=True)
    assert out is hidden
    np.testing.assert_allclose(hidden.numpy(), fn(x * 2.0).numpy(), rtol=1e-15)
    assert tr.gradcheck(lambda v: fn(v * 2.0, inplace=True), [x])
    plain = to_device(randn(4), device)
    assert fn(plain, inplace=True) is plain
    with pytest.raises(RuntimeError, match=rf"^{fn.__name__}: a leaf tensor that requires grad"):
        fn(x, inplace=True)
    # tanh keeps its output for the backward: overwriting it is caught, as in PyTorch
    with pytest.raises(RuntimeError, match=r"modified in place after it was saved"):
        fn(x.tanh(), inplace=True).sum().backward()


def test_zero_vectors_normalize_to_zero_with_zero_gradient(device):
    x = to_device(np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]]), device, requires_grad=True)
    out = F.normalize(x)
    np.testing.assert_allclose(out.numpy(), [[0, 0, 0], [0.6, 0.8, 0]], atol=1e-15)
    out.sum().backward()  # a zero vector is divided by eps (1e-12): its gradient is 1/eps, as in PyTorch
    np.testing.assert_allclose(x.grad.numpy()[0], [1e12] * 3, rtol=1e-15)
    similarity = F.cosine_similarity(x, to_device(np.ones((2, 3)), device))
    np.testing.assert_allclose(similarity.numpy(), [0.0, 7 / (5 * math.sqrt(3))], atol=1e-15)


# ------------------------------------------------------------------------ vs PyTorch
def _compare(ours_fn, torch_fn, arrays, grad_of=None, rtol=1e-12, atol=1e-12):
    """Values and the gradients of every input (or those in ``grad_of``) against PyTorch, float64."""
    torch = pytest.importorskip("torch")
    grad_of = range(len(arrays)) if grad_of is None else grad_of
    ours = [tr.Tensor(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a, requires_grad=i in grad_of) for i, a in enumerate(arrays)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's 'mean' warning, in both libraries
        out, expected = ours_fn(*ours), torch_fn(*theirs)
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=rtol, atol=atol)
    seed = rng.standard_normal(tuple(expected.shape))
    out.backward(tr.Tensor(seed))
    expected.backward(torch.tensor(seed))
    for i in grad_of:
        np.testing.assert_allclose(ours[i].grad.numpy(), theirs[i].grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i}")


def _gelu_points():
    return np.concatenate([np.linspace(-10, 10, 401), [0.0, 1e-8, -1e-8, 5.9, -5.9, 7.0, -7.0]])


ACTIVATIONS = [
    ("gelu", lambda F_: (lambda x: F_.gelu(x)), [_gelu_points()]),
    ("gelu tanh", lambda F_: (lambda x: F_.gelu(x, approximate="tanh")), [_gelu_points()]),
    ("silu", lambda F_: F_.silu, [randn(4, 5, scale=10.0)]),
    ("leaky_relu default", lambda F_: F_.leaky_relu, [np.array([-2.0, -0.5, 0.0, 0.5, 2.0])]),
    ("leaky_relu 0.2", lambda F_: (lambda x: F_.leaky_relu(x, 0.2)), [randn(3, 4)]),
    ("silu inplace", lambda F_: (lambda x: F_.silu(x * 1.0, inplace=True)), [randn(6)]),
    ("leaky_relu inplace", lambda F_: (lambda x: F_.leaky_relu(x * 1.0, 0.3, inplace=True)), [randn(6)]),
]
NORMS = [(f"normalize p={p} dim={d}", p, d) for p, d in [
    (2.0, 1), (1.0, 1), (3.0, 0), (1.5, -1), (0.5, 1), (math.inf, 1), (-math.inf, 0), (0, 1), (-1.0, 1),
]]
PADS = [
    ("constant", (1, 2), (2, 3, 4)), ("constant", (2, 0, -1, 3), (2, 3, 4)),
    ("constant", (1, 1, 1, 1, 1, 1), (2, 3, 4)),
    ("constant", (-2, -2), (2, 3, 4)),
    ("reflect", (2, 3), (2, 3, 4)), ("reflect", (1, 2, 2, 1), (2, 3, 4)), ("reflect", (-2, 3), (2, 3, 5)),
    ("reflect", (1, 1, 1, 1, 1, 1), (1, 2, 3, 4)),
    ("replicate", (3, 1), (2, 3, 4)), ("replicate", (1, 2, 0, 3), (1, 2, 3, 4)), ("replicate", (-1, 2), (2, 3, 4)),
    ("circular", (4, 2), (2, 3, 4)), ("circular", (1, 2, 2, -1), (2, 3, 4)), ("circular", (-2, 3), (1, 1, 6)),
]


@pytest.mark.parametrize("name,make,arrays", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_matches_torch(name, make, arrays):
    torch = pytest.importorskip("torch")
    _compare(make(F), make(torch.nn.functional), arrays)


@pytest.mark.parametrize("name,p,dim", NORMS, ids=[n[0] for n in NORMS])
def test_normalize_matches_torch(name, p, dim):
    torch = pytest.importorskip("torch")
    x = randn(3, 4)
    x[1] = 0.0  # a zero vector along dim 1 (and a zero in every column for dim 0)
    _compare(lambda t: F.normalize(t, p=p, dim=dim), lambda t: torch.nn.functional.normalize(t, p=p, dim=dim), [x])


@pytest.mark.parametrize("shapes,dim,scale", [
    (((4, 5), (4, 5)), 1, 1.0), (((3, 1, 5), (4, 5)), -1, 1.0), (((2, 5), (2, 5)), 0, 1.0),
    (((4, 5), (4, 5)), 1, 1e-10), (((6,), (6,)), 0, 1.0),
])
def test_cosine_similarity_matches_torch(shapes, dim, scale):
    torch = pytest.importorskip("torch")
    a, b = randn(*shapes[0]) * scale, randn(*shapes[1])
    _compare(lambda x, y: F.cosine_similarity(x, y, dim=dim),
             lambda x, y: torch.nn.functional.cosine_similarity(x, y, dim=dim), [a, b], rtol=1e-10)


@pytest.mark.parametrize("mode,pad,shape", PADS, ids=[f"{m}-{p}" for m, p, _ in PADS])
def test_pad_matches_torch(mode, pad, shape):
    torch = pytest.importorskip("torch")
    _compare(lambda x: F.pad(x, pad, mode=mode), lambda x: torch.nn.functional.pad(x, pad, mode=mode), [randn(*shape)])


def test_pad_value_and_dtypes():
    torch = pytest.importorskip("torch")
    _compare(lambda x: F.pad(x, (1, 2), value=-3.5), lambda x: torch.nn.functional.pad(x, (1, 2), value=-3.5),
             [randn(2, 3)])
    ints = F.pad(tr.tensor([[1, 2, 3]]), (1, 1), value=7)
    assert ints.dtype == np.int64 and ints.tolist() == [[7, 1, 2, 3, 7]]
    assert F.pad(tr.ones(2, 3), (0, 0)).shape == (2, 3)
    assert F.pad(tr.ones(2, 3), (-3, 0)).shape == (2, 0)


def test_border_indices():
    assert border_index(4, 2, 3, "reflect").tolist() == [2, 1, 0, 1, 2, 3, 2, 1, 0]
    assert border_index(4, 2, 3, "replicate").tolist() == [0, 0, 0, 1, 2, 3, 3, 3, 3]
    assert border_index(4, 2, 3, "circular").tolist() == [2, 3, 0, 1, 2, 3, 0, 1, 2]
    assert border_index(6, -2, 3, "circular").tolist() == [2, 3, 4, 5, 2, 3, 4]


LOSSES = [
    ("binary_cross_entropy", lambda F_, x, t: F_.binary_cross_entropy(x, t), None),
    ("binary_cross_entropy sum", lambda F_, x, t: F_.binary_cross_entropy(x, t, reduction="sum"), None),
    ("binary_cross_entropy none", lambda F_, x, t: F_.binary_cross_entropy(x, t, reduction="none"), None),
    ("kl_div mean", lambda F_, x, t: F_.kl_div(x, t), "log-probs"),
    ("kl_div batchmean", lambda F_, x, t: F_.kl_div(x, t, reduction="batchmean"), "log-probs"),
    ("kl_div none", lambda F_, x, t: F_.kl_div(x, t, reduction="none"), "log-probs"),
    ("kl_div sum log_target", lambda F_, x, t: F_.kl_div(x, t.log(), reduction="sum", log_target=True), "log-probs"),
    ("smooth_l1_loss", lambda F_, x, t: F_.smooth_l1_loss(x, t), "values"),
    ("smooth_l1_loss beta=0.3 sum", lambda F_, x, t: F_.smooth_l1_loss(x, t, reduction="sum", beta=0.3), "values"),
    ("smooth_l1_loss beta=0 none", lambda F_, x, t: F_.smooth_l1_loss(x, t, reduction="none", beta=0.0), "values"),
    ("huber_loss", lambda F_, x, t: F_.huber_loss(x, t), "values"),
    ("huber_loss delta=2 none", lambda F_, x, t: F_.huber_loss(x, t, "none", 2.0), "values"),
    ("huber_loss delta=0.5 sum", lambda F_, x, t: F_.huber_loss(x, t, reduction="sum", delta=0.5), "values"),
]


@pytest.mark.parametrize("name,call,kind", LOSSES, ids=[row[0] for row in LOSSES])
def test_loss_matches_torch(name, call, kind):
    torch = pytest.importorskip("torch")
    if kind is None:
        x, t = probabilities(4, 5, low=0.0, high=1.0), probabilities(4, 5, low=0.0, high=1.0)
        x[0, :3] = [0.0, 1.0, 1e-14]  # the clamped logs, and PyTorch's epsilon in the backward
        t[0, :2] = [0.3, 0.6]
    elif kind == "log-probs":
        x, t = np.log(distributions(4, 5)), distributions(4, 5)
    else:
        x = randn(4, 5, scale=2.0)
        t = x + randn(4, 5)
    _compare(lambda a, b: call(F, a, b), lambda a, b: call(torch.nn.functional, a, b), [x, t])


def test_kl_div_and_weighted_losses_match_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x, t = np.log(distributions(3, 4)), distributions(3, 4)
    t[0, 1] = 0.0  # 0 · log 0 = 0; the target's gradient there is NaN in both
    _compare(lambda a, b: F.kl_div(a, b, reduction="sum"), lambda a, b: tf.kl_div(a, b, reduction="sum"), [x, t],
             grad_of=[0])
    ours, theirs = tr.Tensor(t, requires_grad=True), torch.tensor(t, requires_grad=True)
    F.kl_div(tr.Tensor(x), ours, reduction="sum").backward()
    tf.kl_div(torch.tensor(x), theirs, reduction="sum").backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12)  # NaN where t = 0 in both
    p, q, w = probabilities(3, 4), probabilities(3, 4), rng.uniform(0.5, 2.0, (4,))
    _compare(lambda a, b: F.binary_cross_entropy(a, b, tr.Tensor(w)),
             lambda a, b: tf.binary_cross_entropy(a, b, torch.tensor(w)), [p, q])
    weight = rng.uniform(0.5, 2.0, (3, 4))
    _compare(lambda a, b, c: F.huber_loss(a, b, weight=c), lambda a, b, c: tf.huber_loss(a, b, weight=c),
             [randn(3, 4), randn(3, 4), weight])


CROSS_ENTROPY = [
    ((4, 5), {}), ((4, 5), {"reduction": "sum"}), ((4, 5), {"reduction": "none"}), ((4, 5), {"label_smoothing": 0.2}),
    ((2, 5, 3), {"weight": True}), ((2, 5, 3, 2), {"weight": True, "label_smoothing": 0.1, "reduction": "none"}),
    ((5,), {}), ((5,), {"reduction": "none", "weight": True}), ((2, 5, 3), {"weight": True, "reduction": "sum"}),
]


@pytest.mark.parametrize("shape,options", CROSS_ENTROPY, ids=[f"{s}-{o}" for s, o in CROSS_ENTROPY])
def test_cross_entropy_with_probability_targets_matches_torch(shape, options):
    torch = pytest.importorskip("torch")
    classes = shape[0] if len(shape) == 1 else shape[1]
    rows = int(np.prod(shape)) // classes
    target = distributions(rows, classes)
    if len(shape) > 1:  # (N, d..., C) -> (N, C, d...)
        target = np.moveaxis(target.reshape((shape[0],) + shape[2:] + (classes,)), -1, 1)
    else:
        target = target[0]
    kwargs = dict(options)
    weight = rng.uniform(0.5, 2.0, (classes,)) if kwargs.pop("weight", False) else None
    ours_w = None if weight is None else tr.Tensor(weight)
    theirs_w = None if weight is None else torch.tensor(weight)
    _compare(lambda x, t: F.cross_entropy(x, t, ours_w, **kwargs),
             lambda x, t: torch.nn.functional.cross_entropy(x, t, theirs_w, **kwargs),
             [randn(*shape, scale=2.0), target])


def test_cross_entropy_keeps_the_class_index_path_and_empty_batches():
    logits = tr.Tensor(randn(3, 4), requires_grad=True)
    labels = tr.tensor([0, 3, 1])
    one_hot = F.one_hot(labels, 4).double()
    np.testing.assert_allclose(F.cross_entropy(logits, one_hot).item(), F.cross_entropy(logits, labels).item(),
                               rtol=1e-14)
    nothing = tr.zeros(0, 4, dtype="float64")
    assert math.isnan(F.cross_entropy(nothing, nothing).item())
    assert F.cross_entropy(nothing, nothing, reduction="sum").item() == 0


def test_gelu_in_float32_and_the_kl_div_mean_warning():
    torch = pytest.importorskip("torch")
    x = randn(50, scale=4.0).astype(np.float32)
    np.testing.assert_allclose(F.gelu(tr.Tensor(x)).numpy(), torch.nn.functional.gelu(torch.tensor(x)).numpy(),
                               rtol=2e-6, atol=1e-6)  # 1 + erf(x) cancels for x << 0 in float32, in both
    assert F.gelu(tr.Tensor(x)).dtype == np.float32
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        F.kl_div(tr.Tensor(np.log(distributions(2, 3))), tr.Tensor(distributions(2, 3)))


# ------------------------------------------------------------------------- bad input
X = lambda d: tr.randn(3, 4, device=d, dtype="float64")  # noqa: E731
P = lambda d: tr.rand(3, 4, device=d, dtype="float64")  # noqa: E731

BAD_INPUT = [
    ("gelu approximate", lambda d: F.gelu(X(d), approximate="fast"), ValueError,
     r"^gelu: approximate must be 'none' or 'tanh', got 'fast'"),
    ("gelu of ints", lambda d: F.gelu(tr.tensor([1, 2], device=d)), TypeError,
     r"^gelu: input must be a floating point tensor, got dtype int64"),
    ("silu of a list", lambda d: F.silu([1.0, 2.0]), TypeError, r"^silu: input must be a Tensor, got list"),
    ("leaky_relu slope", lambda d: F.leaky_relu(X(d), "0.1"), TypeError,
     r"^leaky_relu: negative_slope must be a real number, got '0.1'"),
    ("normalize dim", lambda d: F.normalize(X(d), dim=2), IndexError, r"^normalize: dim 2 is out of range"),
    ("normalize p", lambda d: F.normalize(X(d), p="fro"), TypeError, r"^normalize: p must be a real number, got 'fro'"),
    ("cosine_similarity shapes", lambda d: F.cosine_similarity(X(d), tr.randn(4, 4, device=d, dtype="float64")),
     ValueError, r"^cosine_similarity: x1 of shape \(3, 4\) and x2 of shape \(4, 4\) do not broadcast"),
    ("pad odd", lambda d: F.pad(X(d), (1, 2, 3)), ValueError, r"^pad: the padding length must be divisible by 2"),
    ("pad too long", lambda d: F.pad(X(d), (1,) * 6), ValueError,
     r"^pad: padding \(1, 1, 1, 1, 1, 1\) covers 3 dimensions but the input has 2 \(shape \(3, 4\)\)"),
    ("pad floats", lambda d: F.pad(X(d), (1.5, 1)), TypeError, r"^pad: pad must be a tuple of ints"),
    ("pad mode", lambda d: F.pad(X(d), (1, 1), mode="mirror"), ValueError,
     r"^pad: mode must be one of \('constant', 'reflect', 'replicate', 'circular'\), got 'mirror'"),
    ("pad reflect too wide", lambda d: F.pad(X(d), (4, 4), mode="reflect"), ValueError,
     r"^pad: reflect padding \(4, 4\) must be less than the size 4 of dimension 1"),
    ("pad circular too wide", lambda d: F.pad(X(d), (5, 0), mode="circular"), ValueError,
     r"^pad: circular padding \(5, 0\) wraps around dimension 1 .* more than once \(4 elements after cropping\)"),
    ("pad circular too wide after cropping", lambda d: F.pad(X(d), (-2, 3), mode="circular"), ValueError,
     r"^pad: circular padding \(-2, 3\) wraps around dimension 1 .* more than once \(2 elements after cropping\)"),
    ("pad value with reflect", lambda d: F.pad(X(d), (1, 1), mode="reflect", value=2.0), ValueError,
     r"^pad: mode 'reflect' takes no value \(got value=2.0\)"),
    ("pad crops too much", lambda d: F.pad(X(d), (-3, -2)), ValueError,
     r"^pad: padding \(-3, -2\) leaves no elements of dimension 1 of the input of shape \(3, 4\)"),
    ("binary_cross_entropy range", lambda d: F.binary_cross_entropy(X(d) + 2, P(d)), ValueError,
     r"^binary_cross_entropy: every element of input must be a probability in \[0, 1\]"
     r".*binary_cross_entropy_with_logits"),
    ("binary_cross_entropy shapes", lambda d: F.binary_cross_entropy(P(d), P(d)[0]), ValueError,
     r"^binary_cross_entropy: input of shape \(3, 4\) and target of shape \(4,\) differ"),
    ("binary_cross_entropy int target", lambda d: F.binary_cross_entropy(P(d), tr.ones(3, 4, dtype="int64", device=d)),
     TypeError, r"^binary_cross_entropy: target must be a floating point tensor, got dtype int64"),
    ("binary_cross_entropy weight", lambda d: F.binary_cross_entropy(P(d), P(d), tr.ones(3, device=d, dtype="float64")),
     ValueError, r"^binary_cross_entropy: weight of shape \(3,\) does not broadcast to the input's shape \(3, 4\)"),
    ("kl_div reduction", lambda d: F.kl_div(X(d), P(d), reduction="avg"), ValueError,
     r"^kl_div: reduction must be one of \('none', 'batchmean', 'sum', 'mean'\), got 'avg'"),
    ("smooth_l1_loss beta", lambda d: F.smooth_l1_loss(X(d), X(d), beta=-1.0), ValueError,
     r"^smooth_l1_loss: beta must be non-negative, got -1.0"),
    ("huber_loss delta", lambda d: F.huber_loss(X(d), X(d), delta=0.0), ValueError,
     r"^huber_loss: delta must be positive, got 0.0"),
    ("huber_loss weight shape", lambda d: F.huber_loss(X(d), X(d), weight=tr.ones(4, device=d, dtype="float64")),
     ValueError, r"^huber_loss: weight must have the input's shape \(3, 4\), got \(4,\)"),
    ("cross_entropy float target of another shape", lambda d: F.cross_entropy(X(d), P(d)[:, :3]), TypeError,
     r"^cross_entropy: target must be an integer tensor of class indices .*float64; a floating point target holds "
     r"class probabilities and must have the input's shape \(3, 4\), got \(3, 3\)"),
    ("cross_entropy int target of the input's shape",
     lambda d: F.cross_entropy(X(d), tr.ones(3, 4, dtype="int64", device=d)), TypeError,
     r"^cross_entropy: a target of the input's shape \(3, 4\) holds class probabilities and must be a floating"),
    ("cross_entropy probabilities with ignore_index", lambda d: F.cross_entropy(X(d), P(d), ignore_index=1), ValueError,
     r"^cross_entropy: ignore_index=1 is not supported with class-probability targets"),
    ("cross_entropy probabilities weight", lambda d: F.cross_entropy(X(d), P(d), tr.ones(3, device=d, dtype="float64")),
     ValueError, r"^cross_entropy: expected weight of shape \(4,\) \(one per class\), got \(3,\)"),
]


@pytest.mark.parametrize("name,call,error,pattern", BAD_INPUT, ids=[row[0] for row in BAD_INPUT])
def test_bad_input_gets_a_clear_error(device, name, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(device)
