"""Basic layers in the shape of ``torch.nn``: Linear, Embedding, Dropout, LayerNorm, activations
(Tanh, ReLU, Sigmoid, GELU, SiLU, LeakyReLU, Softmax, LogSoftmax), Identity, Flatten.

Parameters are created on the CPU and filled from the CPU generator, so
``tinygrad_rnn.manual_seed(s)`` gives the same initial weights on every
device; ``device=`` (or ``.to(device)``) then moves them. Parameter names,
shapes and initialisations are PyTorch's, so ``state_dict`` moves weights
between the two by name.
"""
from __future__ import annotations

import math

import numpy as np

from ..checks import check_int, check_probability
from ..tensor import as_dtype, float32
from . import functional as F
from . import init
from .module import Module, Parameter


def _size(value, layer, arg):
    return check_int(layer, arg, value, minimum=0)


def _new_parameter(shape, dtype, layer):
    """A zero-filled host Parameter of a floating ``dtype`` (float32 by default), filled by ``init`` next."""
    dtype = float32 if dtype is None else as_dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{layer}: dtype must be a floating point type, got {dtype}")
    return Parameter(np.zeros(shape, dtype=dtype))


class Linear(Module):
    """Affine map y = x Wᵀ + b over the last dimension.

    ``weight``: (out_features, in_features), ``bias``: (out_features,), both
    drawn from U(-1/√in_features, 1/√in_features) as in PyTorch.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features = _size(in_features, "Linear", "in_features")
        self.out_features = _size(out_features, "Linear", "out_features")
        self.weight = _new_parameter((self.out_features, self.in_features), dtype, "Linear")
        if bias:
            self.bias = _new_parameter((self.out_features,), dtype, "Linear")
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        """PyTorch's default: kaiming_uniform_(a=√5) for the weight, U(±1/√fan_in) for the bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: out[...] = weight[input[...]] for an integer ``input``.

    ``weight``: (num_embeddings, embedding_dim) drawn from N(0, 1); the
    ``padding_idx`` row starts at zero and never receives a gradient. With
    ``max_norm``, each looked-up row whose ``norm_type``-norm exceeds it is
    rescaled in place to that norm before the lookup. With
    ``scale_grad_by_freq``, each row's gradient is divided by how many times
    its index occurs in the mini-batch. ``sparse=True`` is refused: the
    gradient is always dense.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None, dtype=None):
        super().__init__()
        self.num_embeddings = _size(num_embeddings, "Embedding", "num_embeddings")
        self.embedding_dim = _size(embedding_dim, "Embedding", "embedding_dim")
        self.padding_idx = F._padding_index(padding_idx, self.num_embeddings, "Embedding")
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = F._embedding_flags(scale_grad_by_freq, sparse, "Embedding")
        self.sparse = False
        if _weight is None:
            self.weight = _new_parameter((self.num_embeddings, self.embedding_dim), dtype, "Embedding")
            self.reset_parameters()
        else:
            if _weight.shape != (self.num_embeddings, self.embedding_dim):
                raise ValueError(
                    f"Embedding: _weight must have shape ({self.num_embeddings}, {self.embedding_dim}), got {_weight.shape}"
                )
            self.weight = Parameter(_weight.detach().clone(), requires_grad=not _freeze)
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        """N(0, 1) entries; the padding row is zero."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.array[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """An Embedding holding a copy of the 2-D tensor ``embeddings`` (frozen unless ``freeze=False``),
        e.g. word vectors read by ``tinygrad_rnn.data.load_word_vectors``."""
        if embeddings.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape {embeddings.shape}")
        rows, dim = embeddings.shape
        return cls(rows, dim, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, _weight=embeddings,
                   _freeze=freeze)

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq)

    def extra_repr(self):
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2.0:
            text += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            text += ", scale_grad_by_freq=True"
        return text


class Dropout(Module):
    """Inverted dropout: in training mode each element is zeroed with probability ``p`` and the
    rest are scaled by 1/(1-p); in eval mode (``model.eval()``) it is the identity."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = check_probability("Dropout", "p", p)

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class LayerNorm(Module):
    """y = (x - E[x]) / √(Var[x] + eps) · weight + bias over the trailing ``normalized_shape`` dims
    (biased variance). ``weight`` starts at ones and ``bias`` at zeros."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        self.normalized_shape = tuple(_size(n, "LayerNorm", "normalized_shape") for n in shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = _new_parameter(self.normalized_shape, dtype, "LayerNorm")
            if bias:
                self.bias = _new_parameter(self.normalized_shape, dtype, "LayerNorm")
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        """weight = 1, bias = 0."""
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class Tanh(Module):
    """Elementwise tanh(x)."""

    def forward(self, input):
        return F.tanh(input)


class ReLU(Module):
    """Elementwise max(x, 0)."""

    def forward(self, input):
        return F.relu(input)


class Sigmoid(Module):
    """Elementwise 1 / (1 + e^-x)."""

    def forward(self, input):
        return F.sigmoid(input)


class GELU(Module):
    """Gaussian Error Linear Unit x·Φ(x) (Φ the standard normal CDF), the activation of BERT and GPT;
    ``approximate='tanh'`` uses PyTorch's tanh approximation (see ``F.gelu``)."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """Elementwise x·σ(x) (swish); with ``inplace=True`` the result overwrites the input."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.silu(input, inplace=self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """Elementwise x for x > 0, ``negative_slope``·x otherwise; with ``inplace=True`` the result
    overwrites the input."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float, np.number)):
            raise TypeError(f"LeakyReLU: negative_slope must be a real number, got {negative_slope!r}")
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, inplace=self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Softmax(Module):
    """softmax(x) along ``dim``."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log softmax(x) along ``dim``."""

    def forward(self, input):
        return F.log_softmax(input, self.dim)


class Identity(Module):
    """Returns its input unchanged (arguments are accepted and ignored, as in PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Flatten(Module):
    """Merges dims ``start_dim`` .. ``end_dim`` into one (by default all but the batch dim)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


__all__ = [
    "Linear", "Embedding", "Dropout", "LayerNorm", "Tanh", "ReLU", "Sigmoid", "GELU", "SiLU", "LeakyReLU", "Softmax",
    "LogSoftmax", "Identity", "Flatten",
]
