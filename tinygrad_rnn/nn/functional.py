"""Functional forms of the layers and losses, in the shape of ``torch.nn.functional``.

Import as ``import tinygrad_rnn.nn.functional as F``. Each function checks its
arguments (clear errors naming the call, the argument, what was expected and
what was given) and then calls one fused op from ``ops/layers.py`` /
``ops/losses.py``, or composes a few primitive ones. The argument checks live
in ``functional_args.py``; gelu, silu, leaky_relu, normalize, cosine_similarity
and pad in ``functional_activations.py``; binary_cross_entropy, kl_div,
smooth_l1_loss, huber_loss and cross-entropy against class probabilities in
``functional_losses.py`` (all re-exported here).
"""
from __future__ import annotations

import math

import numpy as np

from .. import capture
from ..autograd import no_grad
from ..checks import check_probability
from ..factories import arange
from ..functions import where
from ..tensor import Tensor
from ..ops import layers as layer_ops
from ..ops import losses as loss_ops
from .functional_activations import cosine_similarity, gelu, leaky_relu, normalize, pad, silu  # noqa: F401
from .functional_conv import adaptive_avg_pool2d, avg_pool2d, conv2d, max_pool2d  # noqa: F401
from .functional_args import (  # noqa: F401  (F._check_reduction and friends: the modules use them too)
    _REDUCTIONS, _broadcastable, _check_reduction, _constant, _pointwise_arguments, _reduce, _require_floating,
    _same_device, _tensor,
)
from .functional_losses import (  # noqa: F401
    _soft_cross_entropy, binary_cross_entropy, huber_loss, kl_div, smooth_l1_loss,
)



# ------------------------------------------------------------------------- layers
def linear(input, weight, bias=None) -> Tensor:
    """y = x Wᵀ + b over the last dimension of ``input``; ``weight`` is ``(out_features, in_features)``."""
    _require_floating(input, "linear", "input")
    _require_floating(weight, "linear", "weight")
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: expected input with last dimension {weight.shape[1]} (in_features), got input of shape {input.shape}"
        )
    _same_device("linear", ("weight", weight), ("input", input), ("bias", bias))
    if input.dtype != weight.dtype:
        raise TypeError(f"linear: input is {input.dtype} but weight is {weight.dtype}; cast one with .to(dtype)")
    if bias is None:
        return layer_ops.LinearFn.apply(input, weight)
    _require_floating(bias, "linear", "bias")
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: expected bias of shape ({weight.shape[0]},) (out_features), got {bias.shape}")
    if bias.dtype != weight.dtype:
        raise TypeError(f"linear: bias is {bias.dtype} but weight is {weight.dtype}")
    return layer_ops.LinearFn.apply(input, weight, bias)


def dropout(input, p=0.5, training=True) -> Tensor:
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the rest
    by 1/(1-p), so the expected value is unchanged; the identity when not training or p == 0."""
    _tensor(input, "dropout", "input")
    p = check_probability("dropout", "p", p)
    if not training or p == 0:
        return input
    return layer_ops.DropoutFn.apply(_require_floating(input, "dropout", "input"), p=p)


def _check_indices(input, num_embeddings, op):
    _tensor(input, op, "input")
    if input.dtype.kind not in "iu":
        raise TypeError(f"{op}: input must be an integer tensor of indices (e.g. int64), got dtype {input.dtype}")
    expected = f"(expected 0 <= index < {num_embeddings})"
    bad = capture.out_of_range(input.array, num_embeddings,
                               f"{op}: an index is out of range for num_embeddings={num_embeddings} {expected}")
    if bad is not None:
        raise IndexError(f"{op}: index {bad} is out of range for num_embeddings={num_embeddings} {expected}")


def _padding_index(padding_idx, num_embeddings, op):
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
        raise TypeError(f"{op}: padding_idx must be an int or None, got {padding_idx!r}")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{op}: padding_idx {padding_idx} is out of range for num_embeddings={num_embeddings}")
    return int(padding_idx) % num_embeddings


def _embedding_flags(scale_grad_by_freq, sparse, op):
    """Check the two bool options of an embedding; ``sparse=True`` is refused (dense gradients only)."""
    for name, value in (("scale_grad_by_freq", scale_grad_by_freq), ("sparse", sparse)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{op}: {name} must be a bool, got {value!r}")
    if sparse:
        raise NotImplementedError(
            f"{op}: sparse=True is not supported: Embedding's gradient is always a dense tensor of the weight's "
            "shape (sparse gradients are not implemented); use sparse=False"
        )
    return bool(scale_grad_by_freq)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False) -> Tensor:
    """Look up rows of ``weight`` (num_embeddings, embedding_dim) at the integer ``input``.

    The ``padding_idx`` row gets no gradient. With ``max_norm``, looked-up rows
    whose norm exceeds it are first rescaled in place in ``weight`` (not
    differentiated), as in PyTorch. With ``scale_grad_by_freq``, the gradient
    of each row is divided by the number of times its index occurs in
    ``input``. ``sparse=True`` (sparse gradients) is not supported.
    """
    scale_grad_by_freq = _embedding_flags(scale_grad_by_freq, sparse, "embedding")
    _require_floating(weight, "embedding", "weight")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape {weight.shape}")
    _tensor(input, "embedding", "input")
    _same_device("embedding", ("weight", weight), ("input", input))
    _check_indices(input, weight.shape[0], "embedding")
    padding_idx = _padding_index(padding_idx, weight.shape[0], "embedding")
    if max_norm is not None:
        if max_norm <= 0:
            raise ValueError(f"embedding: max_norm must be positive, got {max_norm!r}")
        if input.numel():
            with no_grad():
                layer_ops.embedding_renorm_(weight.backend, weight.array, input.array, float(max_norm), float(norm_type))
    return layer_ops.EmbeddingFn.apply(input, weight, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dims: (x - mean) / sqrt(var + eps) * weight + bias
    (biased variance, as PyTorch)."""
    _require_floating(input, "layer_norm", "input")
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    shape = tuple(int(n) for n in shape)
    if not shape or input.ndim < len(shape) or input.shape[input.ndim - len(shape) :] != shape:
        raise ValueError(
            f"layer_norm: expected input whose trailing dimensions are normalized_shape={shape}, "
            f"got input of shape {input.shape}"
        )
    affine = []
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None:
            _require_floating(value, "layer_norm", name)
            if value.shape != shape:
                raise ValueError(f"layer_norm: expected {name} of shape {shape}, got {value.shape}")
            if value.dtype != input.dtype:
                raise TypeError(f"layer_norm: {name} is {value.dtype} but input is {input.dtype}")
            affine.append(value)
    _same_device("layer_norm", ("input", input), ("weight", weight), ("bias", bias))
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    return layer_ops.LayerNormFn.apply(
        input, *affine, axes=axes, eps=float(eps), has_weight=weight is not None, has_bias=bias is not None
    )


def one_hot(tensor, num_classes=-1) -> Tensor:
    """int64 one-hot encoding with a new last dimension of size ``num_classes`` (max + 1 when -1)."""
    _tensor(tensor, "one_hot", "tensor")
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot: tensor must be an integer tensor of class indices, got dtype {tensor.dtype}")
    data = tensor.array
    if num_classes == -1:
        if data.size == 0:
            raise ValueError("one_hot: cannot infer num_classes from an empty tensor; pass num_classes")
        capture.refuse("one_hot(num_classes=-1) reads the largest class on the host (pass num_classes)")
        num_classes = int(data.max()) + 1
    bad = capture.out_of_range(data, num_classes,
                               f"one_hot: a class value is out of range for num_classes={num_classes}")
    if bad is not None:
        raise IndexError(f"one_hot: class value {bad} is out of range for num_classes={num_classes}")
    return (tensor.unsqueeze(-1) == arange(num_classes, device=tensor.device)).long()


def softmax(input, dim) -> Tensor:
    """exp(x) / Σ exp(x) along ``dim`` (computed stably)."""
    return _tensor(input, "softmax", "input").softmax(dim)


def log_softmax(input, dim) -> Tensor:
    """x - log Σ exp(x) along ``dim`` (computed stably)."""
    return _tensor(input, "log_softmax", "input").log_softmax(dim)


def tanh(input) -> Tensor:
    """Elementwise hyperbolic tangent."""
    return _tensor(input, "tanh", "input").tanh()


def sigmoid(input) -> Tensor:
    """Elementwise logistic function 1 / (1 + e^-x)."""
    return _tensor(input, "sigmoid", "input").sigmoid()


def relu(input) -> Tensor:
    """Elementwise max(x, 0)."""
    return _tensor(input, "relu", "input").relu()


# ------------------------------------------------------------------------- losses
def _class_arguments(op, input, target, weight, ignore_index, reduction):
    """Check a class-index loss's arguments; returns (input, target, weight, unbatched, all_counted),
    where ``all_counted`` says that no target equals ``ignore_index`` (so no row is ignored)."""
    _require_floating(input, op, "input")
    _tensor(target, op, "target")
    _check_reduction(reduction, op)
    _same_device(op, ("input", input), ("target", target))
    if target.dtype.kind not in "iu":
        hint = (
            f"; a floating point target holds class probabilities and must have the input's shape {input.shape}, "
            f"got {target.shape}" if op == "cross_entropy" and target.dtype.kind == "f" else ""
        )
        raise TypeError(
            f"{op}: target must be an integer tensor of class indices (e.g. int64), got dtype {target.dtype}{hint}"
        )
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have a class dimension, got a 0-d tensor")
    unbatched = input.ndim == 1
    if unbatched:
        if target.ndim != 0:
            raise ValueError(
                f"{op}: for an unbatched input of shape {input.shape}, expected a 0-d target, got {target.shape}"
            )
        input, target = input.reshape(1, input.shape[0]), target.reshape(1)
    num_classes = input.shape[1]
    expected = (input.shape[0],) + input.shape[2:]
    if target.shape != expected:
        raise ValueError(
            f"{op}: expected target of shape {expected} for input of shape {input.shape} "
            f"(classes on dim 1), got {target.shape}"
        )
    if num_classes == 0:
        raise ValueError(f"{op}: input has 0 classes (shape {input.shape})")
    labels = target.array
    # two reductions settle the common case: every target is a class, and ignore_index is none of them
    # (inside a capture the device tests the targets after the replay, and the op takes its general path)
    capturing = capture.capturing()
    in_range = not capturing and labels.size > 0 and int(labels.min()) >= 0 and int(labels.max()) < num_classes
    if not in_range:
        bad = ((labels < 0) | (labels >= num_classes)) & (labels != ignore_index)
        if capturing:
            capture.check_later(bad.any(), f"{op}: a target value is out of range for {num_classes} classes "
                                           f"(expected 0 <= target < {num_classes}, or ignore_index={ignore_index})")
        elif bool(bad.any()):
            value = int(labels[bad].reshape(-1)[0])
            raise IndexError(
                f"{op}: target value {value} is out of range for {num_classes} classes "
                f"(expected 0 <= target < {num_classes}, or ignore_index={ignore_index})"
            )
    if weight is not None:  # differentiable (PyTorch refuses a weight that requires grad)
        _require_floating(weight, op, "weight")
        _same_device(op, ("input", input), ("weight", weight))
        weight = weight if weight.dtype == input.dtype else weight.to(dtype=input.dtype)
    if weight is not None and weight.shape != (num_classes,):
        raise ValueError(f"{op}: expected weight of shape ({num_classes},) (one per class), got {weight.shape}")
    all_counted = in_range and not 0 <= ignore_index < num_classes
    return input, target, weight, unbatched, all_counted


def cross_entropy(input, target, weight=None, *, ignore_index=-100, reduction="mean", label_smoothing=0.0) -> Tensor:
    """Softmax cross-entropy of logits ``input`` (N, C) or (N, C, d1, ...) against class indices
    ``target`` (N) or (N, d1, ...), as one fused, numerically stable op.

    Per position: -w_t log softmax(x)_t (mixed with the uniform distribution by
    ``label_smoothing``); positions whose target is ``ignore_index`` count
    nothing. 'mean' divides by the summed weight of the counted positions.

    A floating point ``target`` of the input's shape holds class probabilities
    instead (PyTorch's rule): -Σ_c w_c t_c log softmax(x)_c per position, 'mean'
    dividing by the number of positions (see ``functional_losses``).
    """
    op = "cross_entropy"
    if isinstance(label_smoothing, bool) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    if isinstance(input, Tensor) and isinstance(target, Tensor) and input.ndim and target.shape == input.shape:
        return _soft_cross_entropy(input, target, weight, ignore_index, reduction, float(label_smoothing))
    x, t, w, unbatched, all_counted = _class_arguments(op, input, target, weight, ignore_index, reduction)
    loss = loss_ops.CrossEntropy.apply(
        x, t, *([w] if w is not None else []),
        ignore_index=ignore_index, reduction=reduction, label_smoothing=float(label_smoothing),
        all_counted=all_counted,
    )
    return loss.reshape(()) if unbatched and reduction == "none" else loss


def nll_loss(input, target, weight=None, *, ignore_index=-100, reduction="mean") -> Tensor:
    """Negative log likelihood of log-probabilities ``input`` (N, C) or (N, C, d1, ...), e.g. from
    ``log_softmax(x, dim=1)``: -w_t · input_t per position, 'mean' divided by the counted weight."""
    op = "nll_loss"
    x, t, w, unbatched, _ = _class_arguments(op, input, target, weight, ignore_index, reduction)
    loss = loss_ops.NLL.apply(x, t, *([w] if w is not None else []), ignore_index=ignore_index, reduction=reduction)
    return loss.reshape(()) if unbatched and reduction == "none" else loss


def mse_loss(input, target, *, reduction="mean") -> Tensor:
    """Mean squared error (x - y)², reduced by ``reduction``; shapes must match exactly."""
    _pointwise_arguments("mse_loss", input, target, reduction)
    diff = input - target
    return _reduce(diff * diff, reduction)


def l1_loss(input, target, *, reduction="mean") -> Tensor:
    """Mean absolute error |x - y|, reduced by ``reduction``; shapes must match exactly."""
    _pointwise_arguments("l1_loss", input, target, reduction)
    return _reduce((input - target).abs(), reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, *, reduction="mean", pos_weight=None) -> Tensor:
    """Binary cross-entropy of logits: -[q·t·log σ(x) + (1 - t)·log(1 - σ(x))], computed stably
    for any x. ``target`` holds probabilities in [0, 1] (a float tensor of the input's shape);
    ``weight`` scales each element, ``pos_weight`` (q) the positive term, both broadcast."""
    op = "binary_cross_entropy_with_logits"
    _pointwise_arguments(op, input, target, reduction)
    if target.dtype.kind != "f":
        raise TypeError(f"{op}: target must be a floating point tensor of probabilities, got dtype {target.dtype}")
    if target.dtype != input.dtype:
        target = target.to(dtype=input.dtype)
    extra = []
    if pos_weight is not None:
        _require_floating(pos_weight, op, "pos_weight")
        _same_device(op, ("input", input), ("pos_weight", pos_weight))
        _broadcastable(op, "pos_weight", pos_weight, input.shape)
        extra.append(pos_weight if pos_weight.dtype == input.dtype else pos_weight.to(dtype=input.dtype))
    loss = loss_ops.BCEWithLogits.apply(input, target, *extra)
    if weight is not None:
        weight = _constant(weight, input, op, "weight")
        _broadcastable(op, "weight", weight, input.shape)
        loss = loss * weight
    return _reduce(loss, reduction)


def perplexity(loss) -> float:
    """exp of a mean per-token cross-entropy loss (in nats), as a Python float.

    Accepts a scalar loss tensor (e.g. from ``cross_entropy`` with 'mean'), a
    tensor of per-token losses (averaged first) or a number; overflow gives inf.
    """
    if isinstance(loss, Tensor):
        value = float(loss.detach().mean().item()) if loss.numel() != 1 else float(loss.item())
    else:
        try:
            value = float(np.mean(np.asarray(loss, dtype=np.float64)))
        except (TypeError, ValueError):
            raise TypeError(f"perplexity: expected a loss tensor or a number, got {loss!r:.60}") from None
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf


# ---------------------------------------------------------------------- attention
# Masks come in two conventions, as in PyTorch: ``scaled_dot_product_attention``'s bool
# ``attn_mask`` means True = take part; ``nn.MultiheadAttention``'s ``key_padding_mask`` and
# bool ``attn_mask`` mean True = ignore. A query whose every key is masked out gets all-zero
# weights and a zero output (and zero gradients) instead of PyTorch's NaN: a padded position
# stays harmless and a bug does not silently poison the whole batch.


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
    weights = dropout(masked_softmax(scores, allowed), dropout_p)
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
