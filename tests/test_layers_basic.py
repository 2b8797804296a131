"""Basic layers (Linear, Embedding, Dropout, LayerNorm, activations) and the initialisers."""
import math

import numpy as np
import pytest
from conftest import to_device

import tinygrad_rnn as tr
import tinygrad_rnn.nn as nn
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn.nn import init


def _randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ------------------------------------------------------------------------ Linear
def test_linear_shapes_init_and_determinism():
    tr.manual_seed(3)
    layer = nn.Linear(4, 3)
    assert layer.weight.shape == (3, 4) and layer.bias.shape == (3,)
    assert layer.weight.dtype == np.float32 and layer.weight.requires_grad
    bound = 1 / math.sqrt(4)
    assert np.abs(layer.weight.numpy()).max() <= bound and np.abs(layer.bias.numpy()).max() <= bound
    assert np.abs(layer.weight.numpy()).max() > 0.5 * bound  # spread over the range, not all near 0
    tr.manual_seed(3)
    again = nn.Linear(4, 3)
    np.testing.assert_array_equal(again.weight.numpy(), layer.weight.numpy())
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert nn.Linear(4, 3, bias=False).bias is None
    assert repr(layer) == "Linear(in_features=4, out_features=3, bias=True)"


def test_linear_device_and_dtype_kwargs(device):
    tr.manual_seed(0)
    on_cpu = nn.Linear(5, 2)
    tr.manual_seed(0)
    moved = nn.Linear(5, 2, device=device, dtype="float64")
    assert moved.weight.device == device and moved.weight.dtype == np.float64
    np.testing.assert_allclose(moved.weight.numpy(), on_cpu.weight.numpy(), rtol=1e-6)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(device, bias):
    layer = nn.Linear(3, 2, bias=bias).double().to(device)
    x = to_device(_randn(2, 4, 3), device, requires_grad=True)
    params = [layer.weight] + ([layer.bias] if bias else [])
    assert tr.gradcheck(lambda inp, *ps: layer(inp), [x, *params])
    single = to_device(_randn(3), device, requires_grad=True)  # a 1-D input
    assert layer(single).shape == (2,)
    assert tr.gradcheck(lambda inp, *ps: layer(inp), [single, *params])


def test_linear_matches_torch_with_copied_weights():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Linear(4, 3)
    ours = nn.Linear(4, 3)
    ours.load_state_dict(theirs.state_dict())
    x_np = _randn(2, 5, 4).astype(np.float32)
    x, xt = tr.Tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    out, out_t = ours(x), theirs(xt)
    np.testing.assert_allclose(out.numpy(), out_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    out.sum().backward()
    out_t.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_linear_errors():
    layer = nn.Linear(5, 2)
    expected = r"linear: expected input with last dimension 5 \(in_features\), got input of shape \(4, 6\)"
    with pytest.raises(ValueError, match=expected):
        layer(tr.zeros(4, 6))
    with pytest.raises(TypeError, match=r"linear: input is float64 but weight is float32"):
        layer(tr.zeros(4, 5, dtype="float64"))
    with pytest.raises(ValueError, match=r"Linear: in_features must be a non-negative integer"):
        nn.Linear(-1, 2)


# --------------------------------------------------------------------- Embedding
def test_embedding_lookup_and_gradient_scatter_adds(device):
    emb = nn.Embedding(6, 3).double().to(device)
    idx = tr.Tensor(np.array([[1, 4, 1], [0, 1, 5]]), device=device)
    out = emb(idx)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[[[1, 4, 1], [0, 1, 5]]])
    out.sum().backward()
    counts = np.bincount([1, 4, 1, 0, 1, 5], minlength=6)[:, None] * np.ones((1, 3))
    np.testing.assert_array_equal(emb.weight.grad.numpy(), counts)
    assert tr.gradcheck(lambda w: F.embedding(idx, w), [emb.weight])


def test_embedding_init_and_padding_idx_gets_no_gradient(device):
    tr.manual_seed(1)
    emb = nn.Embedding(50, 8, padding_idx=2).to(device)
    w = emb.weight.numpy()
    assert (w[2] == 0).all()
    others = np.delete(w, 2, axis=0)
    assert abs(others.mean()) < 0.15 and abs(others.std() - 1) < 0.15  # N(0, 1)
    idx = tr.Tensor(np.array([2, 3, 2, 7]), device=device)
    emb(idx).sum().backward()
    grad = emb.weight.grad.numpy()
    assert (grad[2] == 0).all() and (grad[3] == 1).all() and (grad[7] == 1).all()
    assert nn.Embedding(5, 2, padding_idx=-1).padding_idx == 4


def test_embedding_max_norm_renormalises_rows_in_place(device):
    emb = nn.Embedding(4, 3, max_norm=1.0).double().to(device)
    emb.weight.array[...] = emb.weight._backend.asarray(np.array([[3.0, 4.0, 0.0], [0.1, 0.2, 0.2], [0, 0, 2.0], [5, 5, 5]]))
    out = emb(tr.Tensor(np.array([0, 1, 0, 2]), device=device))
    w = emb.weight.numpy()
    np.testing.assert_allclose(w[0], np.array([0.6, 0.8, 0.0]) * (5 / (5 + 1e-7)), rtol=1e-12)
    np.testing.assert_allclose(w[1], [0.1, 0.2, 0.2])  # norm 0.3 < 1: untouched
    np.testing.assert_allclose(np.linalg.norm(w[2]), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(w[3], [5, 5, 5])  # not looked up: untouched
    np.testing.assert_allclose(out.numpy(), w[[0, 1, 0, 2]])


def test_embedding_matches_torch_including_max_norm():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Embedding(7, 4, padding_idx=0, max_norm=1.5, norm_type=3.0)
    ours = nn.Embedding(7, 4, padding_idx=0, max_norm=1.5, norm_type=3.0)
    with torch.no_grad():
        theirs.weight.mul_(2)
    ours.load_state_dict(theirs.state_dict())
    idx = np.array([[0, 3, 3, 6], [2, 0, 1, 3]])
    out, out_t = ours(tr.Tensor(idx)), theirs(torch.tensor(idx))
    np.testing.assert_allclose(out.numpy(), out_t.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.weight.numpy(), theirs.weight.detach().numpy(), rtol=1e-6)
    g = np.random.default_rng(0).standard_normal(out.shape).astype(np.float32)
    out.backward(tr.Tensor(g))
    out_t.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_embedding_errors():
    emb = nn.Embedding(10, 3)
    with pytest.raises(TypeError, match=r"embedding: input must be an integer tensor of indices.*float32"):
        emb(tr.tensor([1.0, 2.0]))
    with pytest.raises(IndexError, match=r"embedding: index 12 is out of range for num_embeddings=10"):
        emb(tr.tensor([1, 12, 3]))
    with pytest.raises(IndexError, match=r"index -1 is out of range for num_embeddings=10"):
        emb(tr.tensor([-1]))
    with pytest.raises(ValueError, match=r"Embedding: padding_idx 10 is out of range for num_embeddings=10"):
        nn.Embedding(10, 3, padding_idx=10)


def test_embedding_from_pretrained():
    table = tr.tensor([[1.0, 2.0], [3.0, 4.0]])
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(frozen(tr.tensor([1, 0])).numpy(), [[3, 4], [1, 2]])
    frozen.weight.array[0, 0] = 9.0
    assert table.numpy()[0, 0] == 1.0  # a copy
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad


# ----------------------------------------------------------------------- Dropout
def test_dropout_eval_is_identity_and_train_scales(device):
    layer = nn.Dropout(0.3)
    x = tr.Tensor(np.ones((200, 100), dtype=np.float32), device=device, requires_grad=True)
    layer.eval()
    assert layer(x) is x
    layer.train()
    out = layer(x)
    values = out.numpy()
    zero_fraction = (values == 0).mean()
    assert abs(zero_fraction - 0.3) < 0.02
    np.testing.assert_allclose(values[values != 0], 1 / 0.7, rtol=1e-6)
    assert out.dtype == np.float32
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), values)  # the gradient is the same mask, scaled


def test_dropout_gradcheck_with_a_fixed_mask(device):
    x = to_device(_randn(4, 6), device, requires_grad=True)

    def fixed_mask_dropout(a):
        tr.manual_seed(11)  # the same mask on every call, so finite differences see one function
        return F.dropout(a, 0.4)

    assert (fixed_mask_dropout(x).numpy() == 0).any()
    assert tr.gradcheck(fixed_mask_dropout, [x])


def test_dropout_edge_probabilities_and_seed():
    x = tr.ones(4, 5)
    assert F.dropout(x, 0.0) is x
    assert (F.dropout(x, 1.0).numpy() == 0).all()
    tr.manual_seed(7)
    a = F.dropout(x, 0.5).numpy()
    tr.manual_seed(7)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), a)
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match=r"dropout: p must be a probability"):
        F.dropout(x, -0.1)


# --------------------------------------------------------------------- LayerNorm
@pytest.mark.parametrize("shape,normalized", [((3, 5), 5), ((2, 3, 4), (3, 4))])
def test_layer_norm_gradcheck(device, shape, normalized):
    layer = nn.LayerNorm(normalized).double().to(device)
    layer.weight.array[...] = layer.weight._backend.asarray(1 + 0.3 * _randn(*layer.weight.shape, seed=1))
    layer.bias.array[...] = layer.bias._backend.asarray(0.2 * _randn(*layer.bias.shape, seed=2))
    x = to_device(_randn(*shape), device, requires_grad=True)
    assert tr.gradcheck(lambda a, w, b: layer(a), [x, layer.weight, layer.bias])
    plain = nn.LayerNorm(normalized, elementwise_affine=False)
    assert plain.weight is None and not list(plain.parameters())
    out = plain(x).numpy()
    count = 1 if isinstance(normalized, int) else len(normalized)
    axes = tuple(range(len(shape) - count, len(shape)))
    np.testing.assert_allclose(out.mean(axis=axes), 0, atol=1e-10)
    np.testing.assert_allclose(out.var(axis=axes), 1, rtol=1e-3)
    assert tr.gradcheck(lambda a: plain(a), [x])


def test_layer_norm_matches_torch():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.LayerNorm(6)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-0.5, 0.5)
    ours = nn.LayerNorm(6)
    ours.load_state_dict(theirs.state_dict())
    x_np = (3 * _randn(4, 2, 6) + 1).astype(np.float32)
    x, xt = tr.Tensor(x_np, requires_grad=True), torch.tensor(x_np, requires_grad=True)
    out, out_t = ours(x), theirs(xt)
    np.testing.assert_allclose(out.numpy(), out_t.detach().numpy(), rtol=1e-5, atol=1e-5)
    g = _randn(4, 2, 6, seed=3).astype(np.float32)
    out.backward(tr.Tensor(g))
    out_t.backward(torch.tensor(g))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-5, atol=1e-5)
    expected = r"layer_norm: expected input whose trailing dimensions are normalized_shape=\(6,\), got input of shape \(4, 5\)"
    with pytest.raises(ValueError, match=expected):
        ours(tr.zeros(4, 5))


# ------------------------------------------------------------ activations & misc
def test_activation_modules(device):
    x_np = _randn(3, 4)
    x = to_device(x_np, device, requires_grad=True)
    np.testing.assert_allclose(nn.Tanh()(x).numpy(), np.tanh(x_np))
    np.testing.assert_allclose(nn.ReLU()(x).numpy(), np.maximum(x_np, 0))
    np.testing.assert_allclose(nn.Sigmoid()(x).numpy(), 1 / (1 + np.exp(-x_np)))
    np.testing.assert_allclose(nn.Softmax(dim=1)(x).numpy().sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(nn.LogSoftmax(dim=1)(x).numpy()), nn.Softmax(1)(x).numpy())
    assert nn.Identity(5, unused=True)(x) is x
    assert nn.Flatten()(to_device(_randn(2, 3, 4), device)).shape == (2, 12)
    for module in (nn.Tanh(), nn.Sigmoid(), nn.Softmax(dim=-1)):
        assert tr.gradcheck(lambda a: module(a), [x])


def test_sequential_model_from_torch_state_dict():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.LayerNorm(5), torch.nn.Linear(5, 2))
    ours = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.LayerNorm(5), nn.Linear(5, 2))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    x_np = _randn(4, 3).astype(np.float32)
    np.testing.assert_allclose(ours(tr.Tensor(x_np)).numpy(), theirs(torch.tensor(x_np)).detach().numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ initialisers
def test_initialisers():
    w = nn.Parameter(np.zeros((30, 20), dtype=np.float32))
    bound = math.sqrt(6 / 50)
    init.xavier_uniform_(w)
    assert np.abs(w.numpy()).max() <= bound and np.abs(w.numpy()).max() > 0.8 * bound
    assert w.dtype == np.float32
    init.kaiming_uniform_(w, nonlinearity="relu")
    assert np.abs(w.numpy()).max() <= math.sqrt(2) * math.sqrt(3 / 20)
    init.orthogonal_(w)
    np.testing.assert_allclose(w.numpy().T @ w.numpy(), np.eye(20), atol=1e-5)
    wide = nn.Parameter(np.zeros((4, 9)))
    init.orthogonal_(wide, gain=2.0)
    np.testing.assert_allclose(wide.numpy() @ wide.numpy().T, 4 * np.eye(4), atol=1e-10)
    init.constant_(w, 0.25)
    assert (w.numpy() == 0.25).all()
    init.zeros_(w)
    assert (w.numpy() == 0).all()
    init.ones_(w)
    assert (w.numpy() == 1).all()
    init.normal_(w, mean=3.0, std=0.01)
    assert abs(w.numpy().mean() - 3.0) < 0.01
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    with pytest.raises(ValueError, match="xavier_uniform_: fan in and fan out need a tensor with at least 2 dimensions"):
        init.xavier_uniform_(nn.Parameter(np.zeros(3)))


def test_initialisers_fill_device_tensors_from_the_cpu_generator(device):
    tr.manual_seed(5)
    host = init.uniform_(nn.Parameter(np.zeros((3, 4))), -1, 1).numpy()
    tr.manual_seed(5)
    on_device = nn.Parameter(tr.zeros(3, 4, dtype="float64", device=device))
    init.uniform_(on_device, -1, 1)
    assert on_device.device == device
    np.testing.assert_array_equal(on_device.numpy(), host)
