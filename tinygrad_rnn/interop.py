"""Moving a model to PyTorch and back: ``to_torch(module)`` and ``from_torch(torch_module)``.

Every layer here has PyTorch's parameter names and layouts, so a model moves
by building the twin module with the same hyper-parameters and copying the
``state_dict``. Containers (``Sequential``, ``ModuleList``, ``ModuleDict``)
move with their children. A module with no twin (a custom ``Module``
subclass, a peephole or coupled LSTM, a GRU of a lecture ``variant``, a
PyTorch LSTM with ``proj_size``) is refused with an error naming it; for a custom module, build the same module
on the other side and copy the ``state_dict``.
"""
from __future__ import annotations

import numpy as np

from .nn.module import Module
from . import nn


def _torch(op):
    try:
        import torch
    except ImportError:
        raise ImportError(f"{op}: needs PyTorch (pip install torch)") from None
    return torch


def _check_gru_variant(m, op):
    variant = getattr(m, "variant", "pytorch")
    if variant != "pytorch":
        raise ValueError(
            f"{op}: a {type(m).__name__} with variant={variant!r} has no twin in PyTorch's {type(m).__name__} "
            "(only variant='pytorch' computes PyTorch's equations)"
        )


def _rnn(m, op):
    _check_gru_variant(m, op)
    if getattr(m, "peephole", False) or getattr(m, "coupled", False):
        raise ValueError(f"{op}: a peephole or coupled {type(m).__name__} has no twin (PyTorch's LSTM has neither)")
    if getattr(m, "proj_size", 0):
        raise ValueError(f"{op}: an LSTM with proj_size={m.proj_size} has no tinygrad_rnn twin")
    kwargs = dict(input_size=m.input_size, hidden_size=m.hidden_size, num_layers=m.num_layers, bias=m.bias,
                  batch_first=m.batch_first, dropout=float(m.dropout), bidirectional=m.bidirectional)
    if type(m).__name__ == "RNN":
        kwargs["nonlinearity"] = m.nonlinearity
    return kwargs


def _cell(m, op):
    _check_gru_variant(m, op)
    if getattr(m, "peephole", False) or getattr(m, "coupled", False):
        raise ValueError(f"{op}: a peephole or coupled LSTMCell has no twin (PyTorch's LSTMCell has neither)")
    kwargs = dict(input_size=m.input_size, hidden_size=m.hidden_size, bias=m.bias)
    if type(m).__name__ == "RNNCell":
        kwargs["nonlinearity"] = m.nonlinearity
    return kwargs


def _activation_name(activation, op):
    name = activation if isinstance(activation, str) else getattr(activation, "__name__", "")
    if name not in ("relu", "gelu"):
        raise ValueError(f"{op}: a TransformerEncoderLayer with activation {activation!r} has no twin (relu or gelu)")
    return name


def _encoder_layer(m, op):
    return dict(d_model=m.linear1.in_features, nhead=m.self_attn.num_heads, dim_feedforward=m.linear1.out_features,
                dropout=float(m.dropout.p), activation=_activation_name(m.activation, op), layer_norm_eps=m.norm1.eps,
                batch_first=m.self_attn.batch_first, norm_first=m.norm_first, bias=m.linear1.bias is not None)


# the hyper-parameters of each layer, read the same way off ours and PyTorch's (the attribute names agree)
_LAYERS = {
    "Linear": lambda m, op: dict(in_features=m.in_features, out_features=m.out_features, bias=m.bias is not None),
    "Embedding": lambda m, op: dict(num_embeddings=m.num_embeddings, embedding_dim=m.embedding_dim,
                                    padding_idx=m.padding_idx, max_norm=m.max_norm, norm_type=m.norm_type,
                                    scale_grad_by_freq=bool(m.scale_grad_by_freq)),
    "LayerNorm": lambda m, op: dict(normalized_shape=tuple(m.normalized_shape), eps=m.eps,
                                    elementwise_affine=m.elementwise_affine,
                                    bias=getattr(m, "bias", None) is not None or not m.elementwise_affine),
    "MultiheadAttention": lambda m, op: dict(embed_dim=m.embed_dim, num_heads=m.num_heads, dropout=float(m.dropout),
                                             bias=m.in_proj_bias is not None, batch_first=m.batch_first,
                                             kdim=m.kdim, vdim=m.vdim),
    "RNN": _rnn, "LSTM": _rnn, "GRU": _rnn, "RNNCell": _cell, "LSTMCell": _cell, "GRUCell": _cell,
    "TransformerEncoderLayer": _encoder_layer,
    "Dropout": lambda m, op: dict(p=float(m.p)),
    "GELU": lambda m, op: dict(approximate=m.approximate),
    "LeakyReLU": lambda m, op: dict(negative_slope=m.negative_slope),
    "Softmax": lambda m, op: dict(dim=m.dim), "LogSoftmax": lambda m, op: dict(dim=m.dim),
    "Flatten": lambda m, op: dict(start_dim=m.start_dim, end_dim=m.end_dim),
    "Tanh": lambda m, op: {}, "ReLU": lambda m, op: {}, "Sigmoid": lambda m, op: {}, "SiLU": lambda m, op: {},
    "Identity": lambda m, op: {},
}


def _twin(module, source, target, op):
    """The module of ``target`` (``torch.nn`` or ours) matching ``module`` of ``source``, without weights yet."""
    kind = type(module).__name__
    if type(module) is not getattr(source, kind, None):
        raise TypeError(
            f"{op}: {type(module).__module__}.{type(module).__qualname__} has no twin; supported: "
            f"{', '.join(sorted(_LAYERS) + ['Sequential', 'ModuleList', 'ModuleDict'])}. For a custom module, "
            "build the same module on the other side and copy its state_dict() (the names and layouts agree)"
        )
    if kind == "Sequential":
        return target.Sequential(*[_twin(child, source, target, op) for child in module])
    if kind == "ModuleList":
        return target.ModuleList([_twin(child, source, target, op) for child in module])
    if kind == "ModuleDict":
        return target.ModuleDict({name: _twin(child, source, target, op) for name, child in module.items()})
    if kind not in _LAYERS:
        raise TypeError(f"{op}: {kind} has no twin; build it on the other side and copy its state_dict()")
    return getattr(target, kind)(**_LAYERS[kind](module, op))


def to_torch(module):
    """An equivalent ``torch.nn`` module with a copy of ``module``'s weights (and its train/eval mode)."""
    torch = _torch("to_torch")
    if not isinstance(module, Module):
        raise TypeError(f"to_torch: expected a tinygrad_rnn.nn.Module, got {type(module).__name__}")
    twin = _twin(module, nn, torch.nn, "to_torch")
    state = {name: torch.from_numpy(np.array(value.numpy(), copy=True)) for name, value in module.state_dict().items()}
    if any(v.dtype == torch.float64 for v in state.values()):
        twin = twin.double()
    twin.load_state_dict(state, strict=True)
    return twin.train(module.training)


def from_torch(torch_module):
    """An equivalent ``tinygrad_rnn.nn`` module with a copy of ``torch_module``'s weights (and its mode)."""
    from .tensor import Tensor

    torch = _torch("from_torch")
    if not isinstance(torch_module, torch.nn.Module):
        raise TypeError(f"from_torch: expected a torch.nn.Module, got {type(torch_module).__name__}")
    twin = _twin(torch_module, torch.nn, nn, "from_torch")
    state = {name: Tensor(value.detach().cpu().numpy().copy()) for name, value in torch_module.state_dict().items()}
    if any(v.dtype == np.float64 for v in state.values()):
        twin = twin.double()
    twin.load_state_dict(state)
    twin.train(torch_module.training)
    return twin


__all__ = ["to_torch", "from_torch"]
