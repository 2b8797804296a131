"""Transformer building blocks with PyTorch's names and layouts: MultiheadAttention,
sinusoidal PositionalEncoding and a (pre-LayerNorm by default) TransformerEncoderLayer.

Mask conventions here are ``torch.nn.MultiheadAttention``'s: in
``key_padding_mask`` and a bool ``attn_mask``, **True = ignore** (the
opposite of ``scaled_dot_product_attention``'s bool mask, where True = take
part); a float mask is added to the attention scores. A query that may see
no key gets zero attention weights and a zero attention output, not NaN.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor, float32
from . import init
from .attention import attend, causal_mask, check_mask
from .layers import Dropout, LayerNorm, Linear
from .module import Module, Parameter


def _linear(x, weight, bias):
    """x Wᵀ + b for a weight of PyTorch's (out, in) layout."""
    out = x.matmul(weight.transpose(0, 1))
    return out if bias is None else out + bias


def _empty_parameter(*shape):
    return Parameter(np.zeros(shape, dtype=float32))


class MultiheadAttention(Module):
    """Multi-head attention (Vaswani et al. 2017), laid out as ``torch.nn.MultiheadAttention``.

    With h = ``num_heads`` heads of size d = embed_dim / h::

        head_i = softmax(Q W_qᵢᵀ (K W_kᵢᵀ)ᵀ / √d + M) V W_vᵢᵀ
        out    = concat(head_1..head_h) W_oᵀ + b_o

    Parameters: ``in_proj_weight`` (3E, E) = [W_q; W_k; W_v] and
    ``in_proj_bias`` (3E,) when key and value have E features; otherwise
    ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim), ``v_proj_weight``
    (E, vdim). ``out_proj`` is a Linear(E, E). Init as PyTorch: Xavier-uniform
    projections, zero biases. (``add_bias_kv`` and ``add_zero_attn`` are not
    supported.)

    ``forward(query, key, value, key_padding_mask=None, need_weights=True,
    attn_mask=None, average_attn_weights=True, is_causal=False)`` takes query
    (L, N, E), key (S, N, kdim), value (S, N, vdim) — (N, L, E) etc. with
    ``batch_first=True``, or unbatched (L, E) — and returns
    ``(attn_output, attn_weights)``: attn_output like query, attn_weights
    (N, L, S) averaged over heads, (N, num_heads, L, S) with
    ``average_attn_weights=False``, or None with ``need_weights=False``.

    Masks (PyTorch's MHA convention, **True = ignore**):
    ``key_padding_mask`` (N, S): True marks padding keys no query may see;
    ``attn_mask`` (L, S) or (N·num_heads, L, S): bool, True = not allowed, or
    float, added to the scores. ``is_causal=True`` without ``attn_mask``
    builds the causal mask (PyTorch raises there); with an ``attn_mask`` it is
    only a hint, as in PyTorch, and the mask given is used.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, batch_first=False, kdim=None, vdim=None):
        super().__init__()
        name = "MultiheadAttention"
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"{name}: embed_dim and num_heads must be positive, got {embed_dim} and {num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"{name}: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self._qkv_same_embed_dim:
            self.in_proj_weight = _empty_parameter(3 * embed_dim, embed_dim)
            for unused in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(unused, None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = _empty_parameter(embed_dim, embed_dim)
            self.k_proj_weight = _empty_parameter(embed_dim, self.kdim)
            self.v_proj_weight = _empty_parameter(embed_dim, self.vdim)
        if bias:
            self.in_proj_bias = _empty_parameter(3 * embed_dim)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def forward(
        self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
        average_attn_weights=True, is_causal=False,
    ):
        batched = self._check_inputs(query, key, value)
        if not batched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        N, L, E = query.shape
        S = key.shape[1]
        allowed, additive = self._masks(query, key_padding_mask, attn_mask, is_causal, batched, N, L, S)

        q, k, v = self._project(query, key, value)
        dropout_p = self.dropout if self.training else 0.0
        heads, weights = attend(q, k, v, allowed, additive, dropout_p)  # (N, H, L, d), (N, H, L, S)
        out = self.out_proj(heads.transpose(1, 2).reshape(N, L, E))

        if not batched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(dim=1)
        return out, (weights if batched else weights.squeeze(0))

    def _project(self, query, key, value):
        """The per-head queries, keys and values, each (N, H, length, head_dim)."""
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            w_q, w_k, w_v = w[:E], w[E : 2 * E], w[2 * E :]
        else:
            w_q, w_k, w_v = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        b = self.in_proj_bias
        b_q, b_k, b_v = (None, None, None) if b is None else (b[:E], b[E : 2 * E], b[2 * E :])
        return tuple(
            self._split_heads(_linear(x, w_i, b_i))
            for x, w_i, b_i in ((query, w_q, b_q), (key, w_k, b_k), (value, w_v, b_v))
        )

    def _split_heads(self, x):
        N, length, _ = x.shape
        return x.reshape(N, length, self.num_heads, self.head_dim).transpose(1, 2)

    def _masks(self, query, key_padding_mask, attn_mask, is_causal, batched, N, L, S):
        """The masks as (allowed: bool, True = take part; additive: float), each broadcasting to (N, H, L, S)."""
        name, H = "MultiheadAttention", self.num_heads
        allowed = additive = None
        if key_padding_mask is not None:
            check_mask(name, "key_padding_mask", key_padding_mask, query, (N, S) if batched else (S,))
            mask = key_padding_mask.reshape(N, 1, 1, S)
            if mask.dtype == np.bool_:
                allowed = ~mask
            else:
                additive = mask.to(dtype=query.dtype)
        if attn_mask is not None:
            if not isinstance(attn_mask, Tensor):
                raise TypeError(f"{name}: attn_mask must be a Tensor, got {type(attn_mask).__name__}")
            per_head = (N * H, L, S) if batched else (H, L, S)
            if attn_mask.shape not in ((L, S), per_head):
                raise ValueError(
                    f"{name}: expected attn_mask of shape (L, S) = {(L, S)} or (N*num_heads, L, S) = {per_head}, "
                    f"got {attn_mask.shape}"
                )
            check_mask(name, "attn_mask", attn_mask, query, attn_mask.shape)
            mask = attn_mask.reshape(N, H, L, S) if attn_mask.ndim == 3 else attn_mask
            if mask.dtype == np.bool_:
                allowed = ~mask if allowed is None else allowed & ~mask
            else:
                mask = mask.to(dtype=query.dtype)
                additive = mask if additive is None else additive + mask
        elif is_causal:
            causal = causal_mask(L, S, device=query.device)
            allowed = causal if allowed is None else allowed & causal
        return allowed, additive

    def _check_inputs(self, query, key, value):
        """Raise a clear error for wrong shapes; return whether the inputs are batched."""
        name = "MultiheadAttention"
        for arg, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{name}: {arg} must be a Tensor, got {type(t).__name__}")
        layout = "(N, {0}, {1})" if self.batch_first else "({0}, N, {1})"
        for arg, t, length, size in (("query", query, "L", self.embed_dim), ("key", key, "S", self.kdim),
                                     ("value", value, "S", self.vdim)):
            if t.ndim not in (2, 3) or t.ndim != query.ndim or t.shape[-1] != size:
                shapes = f"{layout.format(length, size)} or unbatched ({length}, {size})"
                raise ValueError(
                    f"{name}: expected {arg} of shape {shapes} (batch_first={self.batch_first}, query of "
                    f"{query.ndim} dims), got {t.shape}"
                )
        batched = query.ndim == 3
        if batched:
            batch_axis = 0 if self.batch_first else 1
            sizes = [t.shape[batch_axis] for t in (query, key, value)]
            if len(set(sizes)) != 1:
                raise ValueError(
                    f"{name}: query, key and value must have the same batch size N, got shapes {query.shape}, "
                    f"{key.shape}, {value.shape} (batch_first={self.batch_first})"
                )
        length_axis = 1 if batched and self.batch_first else 0
        if key.shape[length_axis] != value.shape[length_axis]:
            raise ValueError(f"{name}: key and value must have the same length S, got {key.shape} and {value.shape}")
        return batched

    def extra_repr(self):
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
            f"batch_first={self.batch_first}"
        )


class PositionalEncoding(Module):
    """Adds sinusoidal position codes (Vaswani et al. 2017) to a sequence of embeddings::

        PE[t, 2k]   = sin(t / 10000^(2k / d_model))
        PE[t, 2k+1] = cos(t / 10000^(2k / d_model))

    The table is the buffer ``pe`` of shape (max_len, d_model) (saved in the
    state dict, not trained). ``forward(x)`` returns dropout(x + PE[:T]) for x
    of shape (T, N, d_model), or (N, T, d_model) with ``batch_first=True``.
    """

    def __init__(self, d_model, max_len=5000, dropout=0.0, batch_first=False):
        super().__init__()
        if d_model <= 0 or max_len <= 0:
            raise ValueError(f"PositionalEncoding: d_model and max_len must be positive, got {d_model} and {max_len}")
        self.d_model, self.max_len, self.batch_first = d_model, max_len, batch_first
        position = np.arange(max_len, dtype=np.float64)[:, None]
        frequency = 10000.0 ** (-np.arange(0, d_model, 2, dtype=np.float64) / d_model)  # 1 / 10000^(2k/d)
        table = np.zeros((max_len, d_model))
        table[:, 0::2] = np.sin(position * frequency)
        table[:, 1::2] = np.cos(position * frequency[: d_model // 2])
        self.register_buffer("pe", Tensor(table.astype(float32)))
        self.dropout = Dropout(dropout)

    def forward(self, x):
        name = "PositionalEncoding"
        layout = "(N, T, {0})" if self.batch_first else "(T, N, {0})"
        if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[-1] != self.d_model:
            got = x.shape if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{name}: expected input of shape {layout.format(self.d_model)} "
                             f"(batch_first={self.batch_first}), got {got}")
        T = x.shape[1] if self.batch_first else x.shape[0]
        if T > self.max_len:
            raise ValueError(f"{name}: sequence length {T} exceeds max_len {self.max_len}")
        pe = self.pe[:T].to(dtype=x.dtype)
        pe = pe.unsqueeze(0) if self.batch_first else pe.unsqueeze(1)
        return self.dropout(x + pe)

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}, batch_first={self.batch_first}"


class TransformerEncoderLayer(Module):
    """One Transformer encoder layer: self-attention and a feed-forward network, each in a residual branch.

    Pre-LayerNorm (``norm_first=True``, the default here; PyTorch's default is False)::

        z'  = z  + Dropout1(SelfAttn(LN1(z)))
        z'' = z' + Dropout2(W2 Dropout(act(W1 LN2(z') + b1)) + b2)

    Post-LayerNorm (``norm_first=False``, the original paper)::

        z'  = LN1(z  + Dropout1(SelfAttn(z)))
        z'' = LN2(z' + Dropout2(FFN(z')))

    Submodules have PyTorch's names (``self_attn``, ``linear1``, ``dropout``,
    ``linear2``, ``norm1``, ``norm2``, ``dropout1``, ``dropout2``), so weights
    load from ``torch.nn.TransformerEncoderLayer`` by name. ``activation`` is
    ``"relu"`` or a callable on tensors. ``forward(src, src_mask=None,
    src_key_padding_mask=None, is_causal=False)`` takes src (S, N, d_model),
    (N, S, d_model) with ``batch_first=True``, or unbatched (S, d_model); the
    masks follow :class:`MultiheadAttention` (True = ignore).
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=True, bias=True):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.d_model, self.batch_first = d_model, batch_first
        if activation == "relu":
            self.activation = Tensor.relu
        elif callable(activation):
            self.activation = activation
        else:
            raise ValueError(f"TransformerEncoderLayer: activation must be 'relu' or a callable, got {activation!r}")

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        if not isinstance(src, Tensor) or src.ndim not in (2, 3) or src.shape[-1] != self.d_model:
            layout = "(N, S, {0})" if self.batch_first else "(S, N, {0})"
            got = src.shape if isinstance(src, Tensor) else type(src).__name__
            raise ValueError(
                f"TransformerEncoderLayer: expected src of shape {layout.format(self.d_model)} "
                f"(batch_first={self.batch_first}) or unbatched (S, {self.d_model}), got {got}"
            )
        x = src
        if self.norm_first:
            x = x + self._self_attention_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._feed_forward_block(self.norm2(x))
        else:
            x = self.norm1(x + self._self_attention_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._feed_forward_block(x))
        return x

    def _self_attention_block(self, x, attn_mask, key_padding_mask, is_causal):
        out, _ = self.self_attn(
            x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False, is_causal=is_causal
        )
        return self.dropout1(out)

    def _feed_forward_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))
