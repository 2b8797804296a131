"""Attention: SDPA, Bahdanau/Luong attention, MultiheadAttention, PositionalEncoding, TransformerEncoderLayer.

Gradients against float64 central differences on every backend; values
against the equations written out in NumPy here and against PyTorch.
"""
import math

import numpy as np
import pytest

import tinygrad_rnn as tr
from conftest import to_device
from tinygrad_rnn.nn.attention import AdditiveAttention, DotProductAttention, MultiheadAttention
from tinygrad_rnn.nn.functional import masked_softmax, scaled_dot_product_attention
from tinygrad_rnn.nn.transformer import PositionalEncoding, TransformerEncoderLayer

rng = np.random.default_rng(3)


def leaf(shape, device, requires_grad=True):
    return to_device(rng.standard_normal(shape), device, requires_grad=requires_grad)


def np_softmax(x, mask=None):
    """Reference softmax over the last axis; mask True = valid, fully masked rows → 0."""
    x = np.where(mask, x, -np.inf) if mask is not None else x
    top = np.max(x, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(x - top)
    total = e.sum(-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def module_on(module, device):
    return module.double().to(device)


def params(module):
    return list(module.parameters())


# --------------------------------------------------------------------------------------- SDPA
def sdpa_masks(device):
    bool_mask = rng.random((3, 5)) > 0.4
    bool_mask[:, 0] = True
    float_mask = rng.standard_normal((2, 3, 5))
    float_mask[0, 1, 2] = -np.inf
    return {
        "none": {},
        "bool": {"attn_mask": tr.Tensor(bool_mask, device=device)},
        "float": {"attn_mask": tr.Tensor(float_mask, device=device)},
        "causal": {"is_causal": True},
        "scale": {"scale": 0.7},
    }


@pytest.mark.parametrize("case", ["none", "bool", "float", "causal", "scale"])
def test_sdpa_gradcheck(device, case):
    q, k, v = leaf((2, 3, 4), device), leaf((2, 5, 4), device), leaf((2, 5, 3), device)
    kwargs = sdpa_masks(device)[case]
    assert tr.gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, **kwargs), [q, k, v])


def test_sdpa_gradcheck_through_float_mask(device):
    q, k, v, m = leaf((3, 2), device), leaf((4, 2), device), leaf((4, 3), device), leaf((3, 4), device)
    assert tr.gradcheck(lambda q, k, v, m: scaled_dot_product_attention(q, k, v, attn_mask=m), [q, k, v, m])


@pytest.mark.parametrize("case", ["none", "bool", "float", "causal", "scale"])
def test_sdpa_matches_torch(case):
    torch = pytest.importorskip("torch")
    q, k, v = (rng.standard_normal(s) for s in ((2, 2, 3, 4), (2, 1, 5, 4), (1, 2, 5, 6)))  # batch dims broadcast
    kwargs = sdpa_masks("cpu")[case]
    torch_kwargs = {n: torch.tensor(a.numpy()) if isinstance(a, tr.Tensor) else a for n, a in kwargs.items()}
    ours = scaled_dot_product_attention(tr.Tensor(q), tr.Tensor(k), tr.Tensor(v), **kwargs)
    theirs = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(q), torch.tensor(k), torch.tensor(v), **torch_kwargs
    )
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-12)
    assert ours.shape == (2, 2, 3, 6)


def test_sdpa_float32_stays_float32(device):
    q = tr.randn(2, 3, 4, device=device, requires_grad=True)
    k = tr.randn(2, 5, 4, device=device)
    mask = tr.Tensor(rng.standard_normal((3, 5)), device=device)  # float64 mask is cast to the query's dtype
    out = scaled_dot_product_attention(q, k, k, attn_mask=mask)
    assert out.dtype == tr.float32
    out.sum().backward()
    assert q.grad.dtype == tr.float32


def test_sdpa_fully_masked_row_is_zero_not_nan(device):
    q, k, v = leaf((3, 4), device), leaf((5, 4), device), leaf((5, 2), device)
    mask = np.ones((3, 5), dtype=bool)
    mask[1] = False
    out = scaled_dot_product_attention(q, k, v, attn_mask=tr.Tensor(mask, device=device))
    values = out.numpy()
    assert np.isfinite(values).all()
    np.testing.assert_array_equal(values[1], 0.0)
    # The other rows are the unmasked attention.
    expected = np_softmax(q.numpy() @ k.numpy().T / 2.0) @ v.numpy()
    np.testing.assert_allclose(values[[0, 2]], expected[[0, 2]], atol=1e-12)
    assert tr.gradcheck(
        lambda q, k, v: scaled_dot_product_attention(q, k, v, attn_mask=tr.Tensor(mask, device=device)), [q, k, v]
    )
    float_mask = np.where(mask, 0.0, -np.inf)
    out = scaled_dot_product_attention(q, k, v, attn_mask=tr.Tensor(float_mask, device=device)).numpy()
    np.testing.assert_array_equal(out[1], 0.0)


def test_sdpa_causal_uses_only_past_keys(device):
    q, k, v = leaf((4, 3), device, False), leaf((4, 3), device, False), leaf((4, 2), device, False)
    out = scaled_dot_product_attention(q, k, v, is_causal=True).numpy()
    scores = q.numpy() @ k.numpy().T / math.sqrt(3)
    expected = np_softmax(scores, np.tril(np.ones((4, 4), dtype=bool))) @ v.numpy()
    np.testing.assert_allclose(out, expected, atol=1e-12)
    np.testing.assert_allclose(out[0], v.numpy()[0], atol=1e-12)  # the first query sees only the first key


def test_sdpa_dropout_zeroes_or_rescales_weights(device):
    q, k = leaf((6, 4), device, False), leaf((5, 4), device, False)
    identity = tr.eye(5, dtype=tr.float64, device=device)  # with V = I the output is the weight matrix
    weights = scaled_dot_product_attention(q, k, identity).numpy()
    dropped = scaled_dot_product_attention(q, k, identity, dropout_p=0.5).numpy()
    kept = dropped != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(dropped[kept], weights[kept] * 2, atol=1e-12)


def test_sdpa_errors():
    q, k, v = tr.randn(2, 3, 4), tr.randn(2, 5, 4), tr.randn(2, 5, 6)
    with pytest.raises(ValueError, match=r"same last dimension E, got query \(2, 3, 4\) and key \(2, 5, 3\)"):
        scaled_dot_product_attention(q, tr.randn(2, 5, 3), v)
    with pytest.raises(ValueError, match=r"key and value must have the same length S"):
        scaled_dot_product_attention(q, k, tr.randn(2, 4, 6))
    with pytest.raises(ValueError, match=r"batch dimensions of query, key and value do not broadcast"):
        scaled_dot_product_attention(q, tr.randn(3, 5, 4), tr.randn(3, 5, 6))
    with pytest.raises(ValueError, match=r"expected attn_mask of a shape that broadcasts to \(2, 3, 5\), got \(3, 4\)"):
        scaled_dot_product_attention(q, k, v, attn_mask=tr.ones(3, 4, dtype=tr.bool_))
    with pytest.raises(TypeError, match=r"attn_mask must be a bool or floating point tensor, got int64"):
        scaled_dot_product_attention(q, k, v, attn_mask=tr.ones(3, 5, dtype=tr.int64))
    with pytest.raises(ValueError, match="attn_mask must be None when is_causal=True"):
        scaled_dot_product_attention(q, k, v, attn_mask=tr.ones(3, 5, dtype=tr.bool_), is_causal=True)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        scaled_dot_product_attention(tr.randn(4), k, v)


def test_masked_softmax_sums_to_one_and_zero_where_masked(device):
    scores = leaf((3, 4, 6), device, False)
    mask = rng.random((3, 1, 6)) > 0.5
    mask[0] = False  # a batch element with no valid position at all
    mask[1:, :, 2] = True
    weights = masked_softmax(scores, tr.Tensor(mask, device=device)).numpy()
    full = np.broadcast_to(mask, weights.shape)
    np.testing.assert_array_equal(weights[~full], 0.0)
    np.testing.assert_allclose(weights[1:].sum(-1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(weights[0], 0.0)
    np.testing.assert_allclose(weights, np_softmax(scores.numpy(), full), atol=1e-12)


# ------------------------------------------------------------------------ seq2seq attention
def padding_mask(device, lengths=(5, 3), S=5):
    return tr.Tensor(np.arange(S)[None, :] < np.array(lengths)[:, None], device=device)


def additive_reference(attn, q, keys, values, mask):
    w_q, w_k, v = (p.numpy() for p in (attn.W_q.weight, attn.W_k.weight, attn.v.weight))
    q3 = q[:, None, :] if q.ndim == 2 else q
    scores = (np.tanh((q3 @ w_q.T)[:, :, None, :] + (keys @ w_k.T)[:, None, :, :]) @ v.T)[..., 0]
    weights = np_softmax(scores, mask[:, None, :])
    context = weights @ values
    return (context[:, 0], weights[:, 0]) if q.ndim == 2 else (context, weights)


@pytest.mark.parametrize("query_shape", [(2, 3), (2, 4, 3)])
def test_additive_attention_values_and_weights(device, query_shape):
    attn = module_on(AdditiveAttention(query_size=3, key_size=4, hidden_size=6), device)
    q, keys, values = leaf(query_shape, device, False), leaf((2, 5, 4), device, False), leaf((2, 5, 2), device, False)
    mask = padding_mask(device)
    context, weights = attn(q, keys, values, mask=mask)
    ref_context, ref_weights = additive_reference(attn, q.numpy(), keys.numpy(), values.numpy(), mask.numpy())
    np.testing.assert_allclose(weights.numpy(), ref_weights, atol=1e-12)
    np.testing.assert_allclose(context.numpy(), ref_context, atol=1e-12)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, atol=1e-12)
    assert (weights.numpy()[1, ..., 3:] == 0).all()
    # values default to the keys
    context_k, _ = attn(q, keys, mask=mask)
    w = weights.numpy() if len(query_shape) == 3 else weights.numpy()[:, None]
    np.testing.assert_allclose(context_k.numpy(), (w @ keys.numpy()).reshape(context_k.shape), atol=1e-12)


def test_additive_attention_gradcheck(device):
    attn = module_on(AdditiveAttention(query_size=3, key_size=2, hidden_size=4), device)
    q, keys, values = leaf((2, 3), device), leaf((2, 4, 2), device), leaf((2, 4, 3), device)
    mask = padding_mask(device, (4, 2), S=4)
    assert tr.gradcheck(lambda q, k, v, *p: attn(q, k, v, mask=mask), [q, keys, values, *params(attn)])


@pytest.mark.parametrize("variant", ["dot", "scaled", "general"])
def test_dot_product_attention_values(device, variant):
    if variant == "general":
        attn, K = DotProductAttention(general=True, query_size=3, key_size=4), 4
    else:
        attn, K = DotProductAttention(scale=variant == "scaled"), 3
    attn = module_on(attn, device)
    q, keys, values = leaf((2, 3), device, False), leaf((2, 5, K), device, False), leaf((2, 5, 2), device, False)
    mask = padding_mask(device)
    context, weights = attn(q, keys, values, mask=mask)
    projected = keys.numpy() @ attn.W_a.weight.numpy().T if variant == "general" else keys.numpy()
    scores = np.einsum("bq,bsq->bs", q.numpy(), projected) / (math.sqrt(3) if variant == "scaled" else 1.0)
    ref_weights = np_softmax(scores, mask.numpy())
    np.testing.assert_allclose(weights.numpy(), ref_weights, atol=1e-12)
    np.testing.assert_allclose(context.numpy(), np.einsum("bs,bsv->bv", ref_weights, values.numpy()), atol=1e-12)
    assert weights.shape == (2, 5) and context.shape == (2, 2)


@pytest.mark.parametrize("general", [False, True])
def test_dot_product_attention_gradcheck(device, general):
    sizes = {"query_size": 3, "key_size": 2} if general else {}
    attn = module_on(DotProductAttention(scale=True, general=general, **sizes), device)
    K = 2 if general else 3
    q, keys, values = leaf((2, 2, 3), device), leaf((2, 4, K), device), leaf((2, 4, 2), device)
    mask = padding_mask(device, (4, 1), S=4)
    assert tr.gradcheck(lambda q, k, v, *p: attn(q, k, v, mask=mask), [q, keys, values, *params(attn)])


def test_seq2seq_attention_errors():
    attn = AdditiveAttention(query_size=3, key_size=4, hidden_size=5)
    keys = tr.randn(2, 5, 4)
    expected = r"expected query of shape \(2, 3\) or \(2, Lq, 3\) for keys \(2, 5, 4\), got \(3, 3\)"
    with pytest.raises(ValueError, match=expected):
        attn(tr.randn(3, 3), keys)
    with pytest.raises(ValueError, match=r"expected keys of shape \(2, 5, 4\), got \(2, 5, 6\)"):
        attn(tr.randn(2, 3), tr.randn(2, 5, 6))
    with pytest.raises(ValueError, match=r"expected mask of shape \(2, 5\) \(batch, source length\), got \(2, 4\)"):
        attn(tr.randn(2, 3), keys, mask=tr.ones(2, 4, dtype=tr.bool_))
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        attn(tr.randn(2, 3), keys, mask=tr.ones(2, 5))
    with pytest.raises(ValueError, match=r"expected values of shape \(2, 5, V\)"):
        attn(tr.randn(2, 3), keys, tr.randn(2, 4, 3))
    with pytest.raises(ValueError, match="the dot score needs queries and keys of one size"):
        DotProductAttention()(tr.randn(2, 3), keys)
    with pytest.raises(ValueError, match="general=True needs query_size"):
        DotProductAttention(general=True)


# ------------------------------------------------------------------------ MultiheadAttention
def test_mha_parameters_follow_pytorch():
    mha = MultiheadAttention(8, 2)
    assert {n: p.shape for n, p in mha.named_parameters()} == {
        "in_proj_weight": (24, 8), "in_proj_bias": (24,), "out_proj.weight": (8, 8), "out_proj.bias": (8,),
    }
    bound = math.sqrt(6 / (8 + 24))  # xavier_uniform_ on (3E, E)
    w = mha.in_proj_weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    np.testing.assert_array_equal(mha.in_proj_bias.numpy(), 0.0)
    np.testing.assert_array_equal(mha.out_proj.bias.numpy(), 0.0)
    separate = MultiheadAttention(8, 4, bias=False, kdim=3, vdim=5)
    assert {n: p.shape for n, p in separate.named_parameters()} == {
        "q_proj_weight": (8, 8), "k_proj_weight": (8, 3), "v_proj_weight": (8, 5), "out_proj.weight": (8, 8),
    }
    assert separate.in_proj_weight is None and separate.in_proj_bias is None


def mha_masks(device, N=2, H=2, L=3, S=4):
    padding = np.zeros((N, S), dtype=bool)
    padding[1, 2:] = True
    attn_bool = rng.random((L, S)) > 0.7
    attn_bool[:, 0] = False
    return {
        "none": {},
        "padding": {"key_padding_mask": tr.Tensor(padding, device=device)},
        "float_padding": {"key_padding_mask": tr.Tensor(np.where(padding, -np.inf, 0.0), device=device)},
        "attn_bool": {"attn_mask": tr.Tensor(attn_bool, device=device)},
        "attn_float_3d": {"attn_mask": tr.Tensor(rng.standard_normal((N * H, L, S)), device=device)},
        "both": {
            "key_padding_mask": tr.Tensor(padding, device=device), "attn_mask": tr.Tensor(attn_bool, device=device)
        },
    }


@pytest.mark.parametrize("case", ["none", "padding", "attn_float_3d", "both"])
def test_mha_gradcheck(device, case):
    mha = module_on(MultiheadAttention(4, 2), device)
    q, k, v = leaf((3, 2, 4), device), leaf((4, 2, 4), device), leaf((4, 2, 4), device)
    kwargs = mha_masks(device)[case]
    assert tr.gradcheck(lambda q, k, v, *p: mha(q, k, v, **kwargs), [q, k, v, *params(mha)])


def test_mha_gradcheck_kdim_vdim_batch_first_no_average(device):
    mha = module_on(MultiheadAttention(4, 2, batch_first=True, kdim=3, vdim=2), device)
    q, k, v = leaf((2, 3, 4), device), leaf((2, 4, 3), device), leaf((2, 4, 2), device)
    mask = mha_masks(device)["padding"]["key_padding_mask"]
    run = lambda q, k, v, *p: mha(q, k, v, key_padding_mask=mask, average_attn_weights=False)  # noqa: E731
    assert tr.gradcheck(run, [q, k, v, *params(mha)])


def test_mha_weights_sum_to_one_and_zero_at_padding(device):
    mha = module_on(MultiheadAttention(4, 2), device)
    q, k = leaf((3, 2, 4), device, False), leaf((4, 2, 4), device, False)
    masks = mha_masks(device)["both"]
    out, weights = mha(q, k, k, average_attn_weights=False, **masks)
    w = weights.numpy()
    assert out.shape == (3, 2, 4) and w.shape == (2, 2, 3, 4)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(w[1, :, :, 2:], 0.0)
    ignored = np.broadcast_to(masks["attn_mask"].numpy(), w.shape)
    np.testing.assert_array_equal(w[ignored], 0.0)


def test_mha_is_causal_without_mask_builds_the_causal_mask(device):
    mha = module_on(MultiheadAttention(4, 2), device)
    x = leaf((4, 1, 4), device, False)
    causal_bool = tr.Tensor(np.triu(np.ones((4, 4), dtype=bool), 1), device=device)
    out, weights = mha(x, x, x, is_causal=True)
    expected_out, expected_weights = mha(x, x, x, attn_mask=causal_bool)
    np.testing.assert_allclose(out.numpy(), expected_out.numpy(), atol=1e-12)
    np.testing.assert_allclose(weights.numpy(), expected_weights.numpy(), atol=1e-12)
    np.testing.assert_array_equal(np.triu(weights.numpy()[0], 1), 0.0)


def test_mha_fully_masked_query_gives_zero_not_nan(device):
    mha = module_on(MultiheadAttention(4, 2), device)
    x = leaf((3, 1, 4), device, False)
    padding = tr.Tensor(np.ones((1, 3), dtype=bool), device=device)
    out, weights = mha(x, x, x, key_padding_mask=padding)
    np.testing.assert_array_equal(weights.numpy(), 0.0)
    # With no key visible, the attention is 0 and only the output bias remains.
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(mha.out_proj.bias.numpy(), (3, 1, 4)), atol=1e-12)


def torch_mha_pair(torch, **kwargs):
    theirs = torch.nn.MultiheadAttention(**kwargs).double()
    ours = MultiheadAttention(**kwargs).double()
    return ours, theirs


def to_torch_state(torch, module):
    return {name: torch.tensor(t.numpy()) for name, t in module.state_dict().items()}


MHA_CONFIGS = [
    dict(embed_dim=6, num_heads=2),
    dict(embed_dim=6, num_heads=3, batch_first=True),
    dict(embed_dim=4, num_heads=2, kdim=3, vdim=5),
    dict(embed_dim=4, num_heads=1, bias=False),
]


@pytest.mark.parametrize("config", MHA_CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("direction", ["torch_to_ours", "ours_to_torch"])
@pytest.mark.parametrize("case", ["none", "padding", "float_padding", "attn_bool", "attn_float_3d", "both"])
def test_mha_matches_torch(config, direction, case):
    torch = pytest.importorskip("torch")
    ours, theirs = torch_mha_pair(torch, **config)
    if direction == "torch_to_ours":
        ours.load_state_dict(theirs.state_dict())
    else:
        theirs.load_state_dict(to_torch_state(torch, ours))
    N, L, S, E = 2, 3, 4, config["embed_dim"]
    H = config["num_heads"]
    kdim, vdim = config.get("kdim", E), config.get("vdim", E)
    def sample(length, size):
        return rng.standard_normal((N, length, size) if config.get("batch_first") else (length, N, size))

    q, k, v = sample(L, E), sample(S, kdim), sample(S, vdim)
    masks = mha_masks("cpu", N=N, H=H, L=L, S=S)[case]
    for average in (True, False):
        out, weights = ours(tr.Tensor(q), tr.Tensor(k), tr.Tensor(v), average_attn_weights=average, **masks)
        torch_masks = {n: torch.tensor(m.numpy()) for n, m in masks.items()}
        t_out, t_weights = theirs(
            torch.tensor(q), torch.tensor(k), torch.tensor(v), average_attn_weights=average, **torch_masks
        )
        np.testing.assert_allclose(out.numpy(), t_out.detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(weights.numpy(), t_weights.detach().numpy(), atol=1e-12)
    out, weights = ours(tr.Tensor(q), tr.Tensor(k), tr.Tensor(v), need_weights=False, **masks)
    assert weights is None
    np.testing.assert_allclose(out.numpy(), t_out.detach().numpy(), atol=1e-12)


def test_mha_unbatched_matches_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = torch_mha_pair(torch, embed_dim=4, num_heads=2)
    ours.load_state_dict(theirs.state_dict())
    q, kv = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    padding = np.array([False, False, True, False, True])
    attn = rng.standard_normal((2, 3, 5))
    out, weights = ours(tr.Tensor(q), tr.Tensor(kv), tr.Tensor(kv), key_padding_mask=tr.Tensor(padding),
                        attn_mask=tr.Tensor(attn), average_attn_weights=False)
    t_out, t_weights = theirs(torch.tensor(q), torch.tensor(kv), torch.tensor(kv),
                              key_padding_mask=torch.tensor(padding), attn_mask=torch.tensor(attn),
                              average_attn_weights=False)
    assert out.shape == (3, 4) and weights.shape == (2, 3, 5)
    np.testing.assert_allclose(out.numpy(), t_out.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(weights.numpy(), t_weights.detach().numpy(), atol=1e-12)


def test_mha_float32_on_device(device):
    mha = MultiheadAttention(4, 2).to(device)
    x = tr.randn(3, 2, 4, device=device, requires_grad=True)
    out, weights = mha(x, x, x, key_padding_mask=tr.Tensor(np.array([[False] * 3, [False, True, True]]), device=device))
    assert out.dtype == tr.float32 and weights.dtype == tr.float32
    out.sum().backward()
    assert x.grad.dtype == tr.float32 and mha.in_proj_weight.grad.dtype == tr.float32
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, atol=1e-6)


def test_mha_errors():
    with pytest.raises(ValueError, match="MultiheadAttention: embed_dim 8 is not divisible by num_heads 3"):
        MultiheadAttention(8, 3)
    mha = MultiheadAttention(4, 2)
    q = tr.randn(3, 2, 4)
    with pytest.raises(ValueError, match=r"expected query of shape \(L, N, 4\) or unbatched \(L, 4\).*got \(3, 2, 6\)"):
        mha(tr.randn(3, 2, 6), q, q)
    with pytest.raises(ValueError, match=r"same batch size N, got shapes \(3, 2, 4\), \(5, 3, 4\), \(5, 3, 4\)"):
        mha(q, tr.randn(5, 3, 4), tr.randn(5, 3, 4))
    with pytest.raises(ValueError, match=r"key and value must have the same length S"):
        mha(q, tr.randn(5, 2, 4), tr.randn(4, 2, 4))
    with pytest.raises(ValueError, match=r"expected key_padding_mask of shape \(2, 5\), got \(5, 2\)"):
        mha(q, tr.randn(5, 2, 4), tr.randn(5, 2, 4), key_padding_mask=tr.ones(5, 2, dtype=tr.bool_))
    expected = r"expected attn_mask of shape \(L, S\) = \(3, 5\) or \(N\*num_heads, L, S\) = \(4, 3, 5\), got \(5, 3\)"
    with pytest.raises(ValueError, match=expected):
        mha(q, tr.randn(5, 2, 4), tr.randn(5, 2, 4), attn_mask=tr.ones(5, 3, dtype=tr.bool_))


# ------------------------------------------------------------------------ PositionalEncoding
def test_positional_encoding_matches_formula():
    d, max_len = 7, 50  # an odd d_model: the last column is a sine
    pe = PositionalEncoding(d, max_len=max_len)
    assert dict(pe.named_buffers())["pe"] is pe.pe and "pe" in pe.state_dict()
    assert list(pe.parameters()) == []
    expected = np.zeros((max_len, d))
    for t in range(max_len):
        for i in range(d):
            angle = t / 10000 ** (2 * (i // 2) / d)
            expected[t, i] = math.sin(angle) if i % 2 == 0 else math.cos(angle)
    np.testing.assert_allclose(pe.pe.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("batch_first", [False, True])
def test_positional_encoding_adds_table(device, batch_first):
    pe = PositionalEncoding(4, max_len=10, batch_first=batch_first).to(device)
    x = leaf((2, 6, 4) if batch_first else (6, 2, 4), device)
    out = pe(x)
    table = pe.pe.numpy()[:6].astype(np.float64)
    expected = x.numpy() + (table[None] if batch_first else table[:, None])
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)
    assert tr.gradcheck(pe, [x])


def test_positional_encoding_errors():
    pe = PositionalEncoding(4, max_len=5)
    with pytest.raises(ValueError, match=r"expected input of shape \(T, N, 4\) \(batch_first=False\), got \(3, 2, 5\)"):
        pe(tr.randn(3, 2, 5))
    with pytest.raises(ValueError, match="sequence length 6 exceeds max_len 5"):
        pe(tr.randn(6, 2, 4))


# ------------------------------------------------------------------- TransformerEncoderLayer
def test_transformer_encoder_layer_names_follow_pytorch():
    layer = TransformerEncoderLayer(8, 2, dim_feedforward=16)
    names = {n for n, _ in layer.named_parameters()}
    assert names == {
        "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias",
        "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
        "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
    }
    assert {n for n, _ in layer.named_children()} >= {"dropout", "dropout1", "dropout2"}


@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_encoder_layer_gradcheck(device, norm_first):
    layer = module_on(TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0, norm_first=norm_first), device)
    x = leaf((3, 2, 4), device)
    padding = mha_masks(device, S=3)["padding"]["key_padding_mask"]
    assert tr.gradcheck(lambda x, *p: layer(x, src_key_padding_mask=padding), [x, *params(layer)])


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("case", ["none", "padding", "causal"])
def test_transformer_encoder_layer_matches_torch(norm_first, batch_first, case):
    torch = pytest.importorskip("torch")
    config = dict(d_model=6, nhead=2, dim_feedforward=10, dropout=0.1, batch_first=batch_first, norm_first=norm_first)
    theirs = torch.nn.TransformerEncoderLayer(**config).double().eval()
    ours = TransformerEncoderLayer(**config).double().eval()
    ours.load_state_dict(theirs.state_dict())
    x = rng.standard_normal((2, 5, 6) if batch_first else (5, 2, 6))
    padding = np.zeros((2, 5), dtype=bool)
    padding[0, 3:] = True
    causal = np.triu(np.ones((5, 5), dtype=bool), 1)
    cases = {"padding": {"src_key_padding_mask": padding}, "causal": {"src_mask": causal, "is_causal": True}}
    kwargs = cases.get(case, {})
    ours_kwargs = {n: tr.Tensor(m) if isinstance(m, np.ndarray) else m for n, m in kwargs.items()}
    torch_kwargs = {n: torch.tensor(m) if isinstance(m, np.ndarray) else m for n, m in kwargs.items()}
    with torch.no_grad():
        expected = theirs(torch.tensor(x), **torch_kwargs).numpy()
    out = ours(tr.Tensor(x), **ours_kwargs).numpy()
    if case == "padding":
        # PyTorch's eval fast path may zero the outputs at padded positions (nested tensors); compare the rest.
        keep = ~padding if batch_first else ~padding.T
        out, expected = out[keep], expected[keep]
    np.testing.assert_allclose(out, expected, atol=1e-10)


def test_transformer_encoder_layer_unbatched_and_errors():
    layer = TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0).double()
    x = tr.Tensor(rng.standard_normal((5, 4)))
    batched = layer(x.unsqueeze(1)).numpy()[:, 0]
    np.testing.assert_allclose(layer(x).numpy(), batched, atol=1e-12)
    expected = r"TransformerEncoderLayer: expected src of shape \(S, N, 4\).*got \(5, 2, 3\)"
    with pytest.raises(ValueError, match=expected):
        layer(tr.randn(5, 2, 3))
    with pytest.raises(ValueError, match="activation must be 'relu' or a callable"):
        TransformerEncoderLayer(4, 2, activation="swish")


def test_transformer_encoder_layer_dropout_only_in_training():
    layer = TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.5).double()
    x = tr.Tensor(rng.standard_normal((5, 2, 4)))
    layer.eval()
    first, second = layer(x).numpy(), layer(x).numpy()
    np.testing.assert_array_equal(first, second)
    layer.train()
    assert not np.allclose(layer(x).numpy(), first)


def test_masks_keep_the_graph_finite_under_detect_anomaly(device):
    # Bool masks fill with a finite number, so detect_anomaly sees no inf even for an all-padding sequence.
    layer = module_on(TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0, norm_first=True), device)
    x = leaf((3, 2, 4), device)
    padding = tr.Tensor(np.array([[False] * 3, [True] * 3]), device=device)
    with tr.detect_anomaly():
        out = layer(x, src_key_padding_mask=padding, is_causal=True)
        out.sum().backward()
    assert np.isfinite(out.numpy()).all() and np.isfinite(x.grad.numpy()).all()
