"""Transformer building blocks with PyTorch's names and layouts: sinusoidal PositionalEncoding,
TransformerEncoderLayer (post-LayerNorm by default, as PyTorch) and TransformerEncoder (a stack of
copies of one layer), built on ``attention.MultiheadAttention``.

Mask conventions here are ``torch.nn.MultiheadAttention``'s: in
``key_padding_mask`` and a bool ``attn_mask``, **True = ignore**.
"""
from __future__ import annotations

import copy

import numpy as np

from ..checks import check_int
from ..tensor import Tensor, float32
from .attention import MultiheadAttention
from . import functional as F
from .layers import Dropout, LayerNorm, Linear
from .module import Module, ModuleList


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
        check_int("PositionalEncoding", "d_model", d_model, minimum=1)
        check_int("PositionalEncoding", "max_len", max_len, minimum=1)
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

    Post-LayerNorm (``norm_first=False``, the default, as in PyTorch and the original paper)::

        z'  = LN1(z  + Dropout1(SelfAttn(z)))
        z'' = LN2(z' + Dropout2(FFN(z'))),   FFN(z) = W2 Dropout(act(W1 z + b1)) + b2

    Pre-LayerNorm (``norm_first=True``, often easier to train in deep stacks)::

        z'  = z  + Dropout1(SelfAttn(LN1(z)))
        z'' = z' + Dropout2(FFN(LN2(z')))

    Submodules have PyTorch's names (``self_attn``, ``linear1``, ``dropout``,
    ``linear2``, ``norm1``, ``norm2``, ``dropout1``, ``dropout2``), so weights
    load from ``torch.nn.TransformerEncoderLayer`` by name. ``activation`` is
    ``"relu"``, ``"gelu"`` or a callable on tensors. ``forward(src, src_mask=None,
    src_key_padding_mask=None, is_causal=False)`` takes src (S, N, d_model),
    (N, S, d_model) with ``batch_first=True``, or unbatched (S, d_model); the
    masks follow :class:`MultiheadAttention` (True = ignore).
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True):
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
            self.activation = F.relu
        elif activation == "gelu":
            self.activation = F.gelu
        elif callable(activation):
            self.activation = activation
        else:
            raise ValueError(
                f"TransformerEncoderLayer: activation must be 'relu' or a callable on tensors, or 'gelu'; "
                f"got {activation!r}"
            )

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


class TransformerEncoder(Module):
    """A stack of ``num_layers`` copies of ``encoder_layer`` (deep copies: each has its own weights,
    all starting equal to the given layer's), then ``norm`` (e.g. a LayerNorm) if given.

    Submodules have PyTorch's names (``layers.0.self_attn.in_proj_weight``, ...,
    ``norm.weight``), so state dicts move to and from ``torch.nn.TransformerEncoder``
    by name. ``forward(src, mask=None, src_key_padding_mask=None, is_causal=None)``
    passes the masks to every layer (True = ignore, see :class:`TransformerEncoderLayer`).
    ``enable_nested_tensor`` and ``mask_check`` are accepted for PyTorch compatibility; they
    only choose PyTorch's fast paths, which do not exist here.
    """

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        if not isinstance(encoder_layer, Module):
            raise TypeError(
                f"TransformerEncoder: encoder_layer must be a Module (e.g. a TransformerEncoderLayer), "
                f"got {type(encoder_layer).__name__}"
            )
        num_layers = check_int("TransformerEncoder", "num_layers", num_layers, minimum=0)
        if norm is not None and not isinstance(norm, Module):
            raise TypeError(f"TransformerEncoder: norm must be a Module or None, got {type(norm).__name__}")
        self.layers = ModuleList(copy.deepcopy(encoder_layer) for _ in range(num_layers))
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        output = src
        for layer in self.layers:
            output = layer(output, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        if self.norm is not None:
            output = self.norm(output)
        return output
