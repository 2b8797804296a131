"""Attention: scaled dot-product attention, and the Bahdanau and Luong scores for seq2seq.

Everything here is composed from Tensor ops (matmul, softmax, where), so the
recorded graph shows each step of the computation.

Masks come in two conventions, as in PyTorch:

* ``scaled_dot_product_attention``'s bool ``attn_mask`` and the ``mask`` of
  :class:`AdditiveAttention` / :class:`DotProductAttention`: **True = take
  part** (a valid position).
* ``MultiheadAttention``'s ``key_padding_mask`` and bool ``attn_mask``
  (in ``transformer.py``): **True = ignore**.

A query whose every key is masked out gets all-zero weights and a zero
output (and zero gradients) instead of PyTorch's NaN: a padded position
stays harmless and a bug does not silently poison the whole batch.
"""
from __future__ import annotations

import math

import numpy as np

from ..factories import arange, rand
from ..functions import where
from ..tensor import Tensor
from .module import Module


def masked_softmax(scores, mask=None, dim=-1):
    """Softmax of ``scores`` over ``dim`` among the positions where the bool ``mask`` is True.

    Masked positions get weight exactly 0; a row with no valid position gets
    all-zero weights (not NaN). ``mask`` broadcasts against ``scores``.
    """
    if mask is None:
        return scores.softmax(dim)
    # The fill is finite (not -inf) so no inf appears in the graph; it is low
    # enough that exp(fill - row max) is exactly 0.
    fill = float(np.finfo(scores.dtype).min) / 2
    weights = where(mask, scores, fill).softmax(dim)
    return where(mask, weights, 0.0)


def dropout_weights(weights, p):
    """Inverted dropout of attention weights: zero each with probability ``p``, scale the rest by 1/(1-p)."""
    if p == 0:
        return weights
    if p == 1:
        return weights * 0.0
    keep = rand(weights.shape, dtype=weights.dtype, device=weights.device) >= p
    return where(keep, weights * (1.0 / (1.0 - p)), 0.0)


def causal_mask(target_length, source_length, device="cpu"):
    """Bool (L, S) mask, True where query i may attend to key j (j <= i): the lower triangle."""
    rows = arange(target_length, device=device).unsqueeze(1)
    cols = arange(source_length, device=device).unsqueeze(0)
    return rows >= cols


def attend(query, key, value, allowed=None, additive=None, dropout_p=0.0, scale=None):
    """The core shared by SDPA and MultiheadAttention: ``(softmax(q kᵀ·scale + additive) v, weights)``.

    ``allowed`` is a bool mask (True = take part), ``additive`` a float mask
    added to the scores; both broadcast to (..., L, S). Positions where
    ``additive`` is -inf count as masked. Shapes are checked by the callers.
    """
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    scores = query.matmul(key.transpose(-2, -1)) * scale
    if additive is not None:
        scores = scores + additive
        finite = additive > float("-inf")
        allowed = finite if allowed is None else allowed & finite
    weights = dropout_weights(masked_softmax(scores, allowed), dropout_p)
    return weights.matmul(value), weights


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """softmax(Q Kᵀ · scale + M) V for query (..., L, E), key (..., S, E), value (..., S, Ev) → (..., L, Ev).

    ``scale`` defaults to 1/√E. ``attn_mask`` broadcasts to (..., L, S): a
    bool mask keeps the positions where it is True (PyTorch's SDPA
    convention); a float mask is added to the scores. ``is_causal=True``
    lets query i see keys j <= i only (and excludes ``attn_mask``).
    ``dropout_p`` drops attention weights (always: pass 0 at evaluation).
    Batch dimensions broadcast. A query with no visible key gets a zero output.
    """
    name = "scaled_dot_product_attention"
    _check_qkv(name, query, key, value)
    L, S = query.shape[-2], key.shape[-2]
    batch = _broadcast(
        name, query.shape[:-2], key.shape[:-2], value.shape[:-2], "batch dimensions of query, key and value"
    )
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{name}: dropout_p must be in [0, 1], got {dropout_p}")
    allowed = additive = None
    if is_causal:
        if attn_mask is not None:
            raise ValueError(f"{name}: attn_mask must be None when is_causal=True (the causal mask replaces it)")
        allowed = causal_mask(L, S, device=query.device)
    if attn_mask is not None:
        check_mask(name, "attn_mask", attn_mask, query, batch + (L, S), broadcast=True)
        if attn_mask.dtype == np.bool_:
            allowed = attn_mask
        else:
            additive = attn_mask.to(dtype=query.dtype)
    out, _ = attend(query, key, value, allowed, additive, dropout_p, scale)
    return out


def check_mask(name, arg, mask, like, expected, broadcast=False):
    """Raise a clear error unless ``mask`` is a bool or float tensor on ``like``'s device of shape ``expected``
    (or, with ``broadcast=True``, a shape that broadcasts to it)."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name}: {arg} must be a Tensor, got {type(mask).__name__}")
    if mask.dtype != np.bool_ and mask.dtype.kind != "f":
        raise TypeError(f"{name}: {arg} must be a bool or floating point tensor, got {mask.dtype}")
    if mask.device != like.device:
        raise RuntimeError(f"{name}: {arg} is on {mask.device} but the inputs are on {like.device}")
    shape, expected = tuple(mask.shape), tuple(expected)
    if broadcast:
        try:
            fits = np.broadcast_shapes(shape, expected) == expected
        except ValueError:
            fits = False
    else:
        fits = shape == expected
    if not fits:
        how = "a shape that broadcasts to" if broadcast else "shape"
        raise ValueError(f"{name}: expected {arg} of {how} {expected}, got {shape}")


def _check_qkv(name, query, key, value):
    for arg, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: {arg} must be a Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(
                f"{name}: expected {arg} with at least 2 dimensions (..., length, features), got {t.shape}"
            )
        if t.dtype.kind != "f":
            raise TypeError(f"{name}: {arg} must be a floating point tensor, got {t.dtype}")
    if not query.dtype == key.dtype == value.dtype:
        raise TypeError(
            f"{name}: query, key and value must have one dtype, got {query.dtype}, {key.dtype}, {value.dtype}"
        )
    if key.shape[-1] != query.shape[-1]:
        raise ValueError(
            f"{name}: query and key must have the same last dimension E, got query {query.shape} and key {key.shape}"
        )
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"{name}: key and value must have the same length S (dim -2), got key {key.shape} and value {value.shape}"
        )


def _broadcast(name, *shapes_and_what):
    *shapes, what = shapes_and_what
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"{name}: {what} do not broadcast: {', '.join(str(s) for s in shapes)}") from None


# ----------------------------------------------------------------------------- seq2seq attention


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
    weights = masked_softmax(scores, None if mask is None else mask.unsqueeze(1))
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
        from .layers import Linear  # here, not at the top: layers -> functional -> attention would be a cycle

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
            from .layers import Linear  # see AdditiveAttention

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
