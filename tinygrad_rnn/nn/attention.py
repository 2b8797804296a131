"""Attention modules: Bahdanau and Luong attention for seq2seq, and PyTorch's MultiheadAttention.

The functional core (``scaled_dot_product_attention``, masked softmax, masks)
is in ``nn/functional.py``, as in ``torch.nn.functional``. Everything is
composed from Tensor ops (matmul, softmax, where), so the recorded graph shows
each step of the computation.

Masks come in two conventions, as in PyTorch:

* ``scaled_dot_product_attention``'s bool ``attn_mask`` and the ``mask`` of
  :class:`AdditiveAttention` / :class:`DotProductAttention`: **True = take
  part** (a valid position).
* ``MultiheadAttention``'s ``key_padding_mask`` and bool ``attn_mask``:
  **True = ignore**.

A query whose every key is masked out gets all-zero weights and a zero
output (and zero gradients) instead of PyTorch's NaN.
"""
from __future__ import annotations

import math

import numpy as np

from ..checks import check_int, check_probability
from ..dtypes import float32
from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import Linear
from .module import Module, Parameter


def _empty_parameter(*shape):
    return Parameter(np.zeros(shape, dtype=float32))


def _seq2seq_inputs(name, query, keys, values, mask, query_size, key_size):
    """Check (query, keys, values, mask) of a seq2seq attention; return the query as (B, Lq, Q) and
    whether it came as (B, Q)."""
    for arg, t in (("query", query), ("keys", keys), ("values", values)):
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"{name}: {arg} must be a Tensor, got {type(t).__name__}")
    if keys.ndim != 3:
        raise ValueError(f"{name}: expected keys of shape (B, S, {key_size or 'K'}), got {keys.shape}")
    B, S, K = keys.shape
    if key_size is not None and K != key_size:
        raise ValueError(f"{name}: expected keys of shape ({B}, {S}, {key_size}), got {keys.shape}")
    if query.ndim not in (2, 3) or query.shape[0] != B or (query_size is not None and query.shape[-1] != query_size):
        Q = query_size or "Q"
        raise ValueError(
            f"{name}: expected query of shape ({B}, {Q}) or ({B}, Lq, {Q}) for keys {keys.shape}, got {query.shape}"
        )
    if values is not None and (values.ndim != 3 or values.shape[:2] != (B, S)):
        raise ValueError(f"{name}: expected values of shape ({B}, {S}, V) like keys {keys.shape}, got {values.shape}")
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != np.bool_:
            got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
            raise TypeError(f"{name}: mask must be a bool tensor (True = valid position), got {got}")
        if mask.shape != (B, S):
            raise ValueError(f"{name}: expected mask of shape ({B}, {S}) (batch, source length), got {mask.shape}")
    single = query.ndim == 2
    return (query.unsqueeze(1) if single else query), single


def _attend_seq2seq(scores, values, mask, single):
    """Masked softmax of (B, Lq, S) scores, the weighted sum of values; squeeze Lq for a single query."""
    weights = F.masked_softmax(scores, None if mask is None else mask.unsqueeze(1))
    context = weights.matmul(values)
    if single:
        return context.squeeze(1), weights.squeeze(1)
    return context, weights


class AdditiveAttention(Module):
    """Bahdanau (additive) attention.

    For a query q (a decoder state) and keys k_1..k_S (encoder outputs)::

        e_j = vᵀ tanh(W_q q + W_k k_j)
        a   = softmax(e)            (over valid positions; 0 where mask is False)
        c   = Σ_j a_j v_j           (values default to the keys)

    ``W_q`` (hidden_size, query_size), ``W_k`` (hidden_size, key_size) and
    ``v`` (1, hidden_size) are bias-free Linear layers.
    ``forward(query, keys, values=None, mask=None) -> (context, weights)`` for
    query (B, Q) → context (B, V), weights (B, S), or query (B, Lq, Q) →
    (B, Lq, V), (B, Lq, S); ``mask`` (B, S) is True at valid positions.
    """

    def __init__(self, query_size, key_size, hidden_size):
        super().__init__()
        self.query_size, self.key_size, self.hidden_size = query_size, key_size, hidden_size
        self.W_q = Linear(query_size, hidden_size, bias=False)
        self.W_k = Linear(key_size, hidden_size, bias=False)
        self.v = Linear(hidden_size, 1, bias=False)

    def forward(self, query, keys, values=None, mask=None):
        query, single = _seq2seq_inputs(
            "AdditiveAttention", query, keys, values, mask, self.query_size, self.key_size
        )
        features = self.W_q(query).unsqueeze(2) + self.W_k(keys).unsqueeze(1)  # (B, Lq, S, H)
        scores = self.v(features.tanh()).squeeze(-1)  # (B, Lq, S)
        return _attend_seq2seq(scores, keys if values is None else values, mask, single)

    def extra_repr(self):
        return f"query_size={self.query_size}, key_size={self.key_size}, hidden_size={self.hidden_size}"


class DotProductAttention(Module):
    """Luong (multiplicative) attention.

    For a query q and keys k_1..k_S::

        e_j = qᵀ k_j              ("dot"; needs Q == K)
        e_j = qᵀ W_a k_j          ("general", ``general=True``; W_a is (query_size, key_size))
        e_j = e_j / √Q            (with ``scale=True``)
        a   = softmax(e)          (over valid positions; 0 where mask is False)
        c   = Σ_j a_j v_j         (values default to the keys)

    ``forward(query, keys, values=None, mask=None) -> (context, weights)``
    with the shapes of :class:`AdditiveAttention`.
    """

    def __init__(self, scale=False, general=False, query_size=None, key_size=None):
        super().__init__()
        self.scale, self.general = bool(scale), bool(general)
        self.query_size = query_size
        self.key_size = key_size if key_size is not None else query_size
        if general:
            if query_size is None:
                raise ValueError("DotProductAttention: general=True needs query_size (and key_size if it differs)")
            self.W_a = Linear(self.key_size, query_size, bias=False)

    def forward(self, query, keys, values=None, mask=None):
        name = "DotProductAttention"
        query, single = _seq2seq_inputs(name, query, keys, values, mask, self.query_size, self.key_size)
        if self.general:
            keys_for_score = self.W_a(keys)
        elif query.shape[-1] != keys.shape[-1]:
            raise ValueError(
                f"{name}: the dot score needs queries and keys of one size, got query {query.shape[-1]} and key "
                f"{keys.shape[-1]}; use general=True with query_size and key_size"
            )
        else:
            keys_for_score = keys
        scores = query.matmul(keys_for_score.transpose(1, 2))  # (B, Lq, S)
        if self.scale:
            scores = scores * (1.0 / math.sqrt(query.shape[-1]))
        return _attend_seq2seq(scores, keys if values is None else values, mask, single)

    def extra_repr(self):
        sizes = f", query_size={self.query_size}, key_size={self.key_size}" if self.general else ""
        return f"scale={self.scale}, general={self.general}{sizes}"


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
        check_int(name, "embed_dim", embed_dim, minimum=1)
        check_int(name, "num_heads", num_heads, minimum=1)
        if embed_dim % num_heads:
            raise ValueError(f"{name}: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        check_probability(name, "dropout", dropout)
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
        heads, weights = F.attend(q, k, v, allowed, additive, dropout_p)  # (N, H, L, d), (N, H, L, S)
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
            self._split_heads(F.linear(x, w_i, b_i))
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
            F.check_mask(name, "key_padding_mask", key_padding_mask, query, (N, S) if batched else (S,))
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
            F.check_mask(name, "attn_mask", attn_mask, query, attn_mask.shape)
            mask = attn_mask.reshape(N, H, L, S) if attn_mask.ndim == 3 else attn_mask
            if mask.dtype == np.bool_:
                allowed = ~mask if allowed is None else allowed & ~mask
            else:
                mask = mask.to(dtype=query.dtype)
                additive = mask if additive is None else additive + mask
        elif is_causal:
            causal = F.causal_mask(L, S, device=query.device)
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
