"""Numerical safety: the softmax family, sigmoid and the logit losses stay finite (and right) for logits
of ±1e4, forward and backward; detect_anomaly() names the op that first produced NaN or inf."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn
from tinygrad_rnn.nn import functional as F

BIG = 1e4
DTYPES = ["float32", "float64"]


def logits(device, dtype, rows=((BIG, -BIG), (-BIG, BIG), (BIG, BIG), (-BIG, -BIG))):
    return tr.tensor(np.array(rows), dtype=dtype, device=device, requires_grad=True)


def grad_of(x, y, weights=None):
    """d(Σ w ⊙ y)/dx, with fixed distinct weights so no gradient cancels by symmetry."""
    if weights is None:
        weights = np.arange(1, y.numel() + 1, dtype=np.float64).reshape(y.shape) / y.numel()
    x.grad = None
    (y * tr.tensor(weights, dtype=y.dtype, device=y.device)).sum().backward()
    return x.grad.numpy()


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_of_huge_logits(device, dtype):
    x = logits(device, dtype)
    y = x.softmax(1)
    np.testing.assert_array_equal(y.numpy(), [[1, 0], [0, 1], [0.5, 0.5], [0.5, 0.5]])
    g = grad_of(x, y)
    assert np.isfinite(g).all()
    # y ⊙ (w - Σ w y): exactly zero where one class takes all the mass; ±(w1 - w2)/4 at the ties
    np.testing.assert_allclose(g, [[0, 0], [0, 0], [-1 / 32, 1 / 32], [-1 / 32, 1 / 32]], atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_of_huge_logits(device, dtype):
    x = logits(device, dtype)
    y = x.log_softmax(1)
    log2 = np.log(2.0)
    np.testing.assert_allclose(y.numpy(), [[0, -2 * BIG], [-2 * BIG, 0], [-log2, -log2], [-log2, -log2]], rtol=1e-6)
    g = grad_of(x, y, np.ones((4, 2)))
    assert np.isfinite(g).all()
    # 1 - softmax · Σ 1 = 1 - 2 softmax
    np.testing.assert_allclose(g, [[-1, 1], [1, -1], [0, 0], [0, 0]], atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_tanh_of_huge_inputs(device, dtype):
    x = tr.tensor([BIG, -BIG, 0.0], dtype=dtype, device=device, requires_grad=True)
    y = x.sigmoid()
    np.testing.assert_array_equal(y.numpy(), [1.0, 0.0, 0.5])
    np.testing.assert_allclose(grad_of(x, y, np.ones(3)), [0.0, 0.0, 0.25], atol=1e-12)
    t = x.tanh()
    np.testing.assert_array_equal(t.numpy(), [1.0, -1.0, 0.0])
    np.testing.assert_allclose(grad_of(x, t, np.ones(3)), [0.0, 0.0, 1.0], atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_of_huge_logits(device, dtype, label_smoothing):
    x = logits(device, dtype)
    target = tr.tensor([1, 1, 0, 0], device=device)
    loss = F.cross_entropy(x, target, reduction="none", label_smoothing=label_smoothing)
    log2, eps = np.log(2.0), label_smoothing
    # -log p_t = (max - x_t) + log Σ exp(x - max); smoothing mixes in the mean over classes
    nll = np.array([2 * BIG, 0.0, log2, log2])
    mean_over_classes = np.array([BIG, BIG, log2, log2])
    np.testing.assert_allclose(loss.numpy(), (1 - eps) * nll + eps * mean_over_classes, rtol=1e-6)
    g = grad_of(x, loss, np.ones(4))
    assert np.isfinite(g).all()
    softmax = np.array([[1, 0], [0, 1], [0.5, 0.5], [0.5, 0.5]])
    onehot = np.eye(2)[[1, 1, 0, 0]]
    np.testing.assert_allclose(g, softmax - ((1 - eps) * onehot + eps / 2), atol=1e-6)
    mean = F.cross_entropy(x, target)
    assert np.isfinite(mean.item()) and mean.item() == pytest.approx(nll.mean(), rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_binary_cross_entropy_with_logits_of_huge_logits(device, dtype, pos_weight):
    x = tr.tensor([BIG, -BIG, BIG, -BIG, 0.0], dtype=dtype, device=device, requires_grad=True)
    t = tr.tensor([1.0, 0.0, 0.0, 1.0, 1.0], dtype=dtype, device=device)
    q = 1.0 if pos_weight is None else pos_weight
    extra = {} if pos_weight is None else {"pos_weight": tr.tensor([pos_weight], dtype=dtype, device=device)}
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none", **extra)
    # right and confident: 0; wrong and confident: |x| (times q for a missed positive); x = 0: q log 2
    np.testing.assert_allclose(loss.numpy(), [0.0, 0.0, BIG, q * BIG, q * np.log(2.0)], rtol=1e-6, atol=1e-6)
    g = grad_of(x, loss, np.ones(5))
    assert np.isfinite(g).all()
    # dℓ/dx = (1 - t) - (1 + (q - 1) t) σ(-x)
    sigmoid_neg = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    expected = (1 - t.numpy()) - (1 + (q - 1) * t.numpy()) * sigmoid_neg
    np.testing.assert_allclose(g, expected, atol=1e-7)


def test_losses_match_pytorch_on_huge_random_logits():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    values = rng.choice([-BIG, BIG], size=(6, 5)) * rng.random((6, 5))
    labels = rng.integers(0, 5, size=6)
    bits = rng.integers(0, 2, size=(6, 5)).astype(np.float64)
    x = tr.tensor(values, dtype="float64", requires_grad=True)
    xt = torch.tensor(values, requires_grad=True)
    ours = F.cross_entropy(x, tr.tensor(labels)) + F.binary_cross_entropy_with_logits(x, tr.tensor(bits))
    theirs = torch.nn.functional.cross_entropy(xt, torch.tensor(labels)) + \
        torch.nn.functional.binary_cross_entropy_with_logits(xt, torch.tensor(bits))
    ours.backward()
    theirs.backward()
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("layer_cls", [nn.RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize("impl", ["fused", "composed"])
def test_recurrent_layers_saturate_without_overflow(device, layer_cls, impl):
    """Pre-activations of ±1e4 saturate every gate; outputs and gradients stay finite."""
    tr.manual_seed(0)
    layer = layer_cls(3, 4, impl=impl).to(device)
    x = tr.tensor(np.random.default_rng(0).choice([-BIG, BIG], size=(5, 2, 3)), dtype="float32", device=device,
                  requires_grad=True)
    output, _ = layer(x)
    out = output.numpy()
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
    output.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    for name, p in layer.named_parameters():
        assert np.isfinite(p.grad.numpy()).all(), name


# ------------------------------------------------------------------------------ detect_anomaly
def test_detect_anomaly_names_the_first_forward_op_not_the_later_ones(device):
    x = tr.tensor([1.0, -1.0], device=device, requires_grad=True)
    with tr.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"^detect_anomaly: Log \(forward\) produced NaN"):
            with np.errstate(invalid="ignore"):
                (x.log().tanh() * 2).sum()
    with np.errstate(invalid="ignore"):
        quiet = (x.log().tanh() * 2).sum()  # without detect_anomaly, NaN flows on as in PyTorch
    assert np.isnan(quiet.item())


def test_detect_anomaly_names_the_first_backward_op(device):
    x = tr.tensor([0.0, 4.0], device=device, requires_grad=True)
    y = (x.sqrt() * 3).exp().sum()
    with tr.detect_anomaly(), np.errstate(divide="ignore", invalid="ignore"):
        with pytest.raises(FloatingPointError, match=r"^detect_anomaly: Sqrt \(backward\) produced inf"):
            y.backward()


def test_detect_anomaly_names_a_fused_recurrent_op_forward_and_backward(device):
    tr.manual_seed(0)
    lstm = nn.LSTM(2, 3).to(device)
    bad = np.zeros((4, 1, 2), dtype=np.float32)
    bad[2, 0, 1] = np.nan  # e.g. a missing value in the data
    with tr.detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(FloatingPointError, match=r"^detect_anomaly: LSTMSequence \(forward\) produced NaN"):
            lstm(tr.tensor(bad, device=device))
    output, _ = lstm(tr.zeros(4, 1, 2, device=device))
    huge = tr.full((4, 1, 3), 3e38, device=device)  # finite, but the weight gradients sum it over steps
    with tr.detect_anomaly(), np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(FloatingPointError, match=r"^detect_anomaly: LSTMSequence \(backward\) produced inf"):
            output.backward(huge)


def test_detect_anomaly_is_restored_after_the_block():
    with tr.detect_anomaly():
        pass
    with np.errstate(divide="ignore"):
        y = tr.tensor([0.0]).log()  # no error outside the block
    assert np.isneginf(y.numpy()).all()
