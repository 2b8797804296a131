"""Loss modules in the shape of ``torch.nn``: each stores its options and calls ``nn.functional``.

Per-class ``weight`` and ``pos_weight`` tensors are registered as buffers, so
``.to(device)`` moves them with the model.
"""
from __future__ import annotations

from . import functional as F
from .module import Module


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        F._check_reduction(reduction, type(self).__name__)
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits (N, C) or (N, C, d1, ...) against class indices (N) or (N, d1, ...).

    ℓ = -w_t log softmax(x)_t per position (see ``F.cross_entropy``); targets equal
    to ``ignore_index`` are skipped; 'mean' divides by the summed weight of the rest.
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(
            input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class NLLLoss(_Loss):
    """Negative log likelihood of log-probabilities: ℓ = -w_t x_t per position (see ``F.nll_loss``)."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(_Loss):
    """Squared error ℓ = (x - y)²; input and target must have the same shape."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Absolute error ℓ = |x - y|; input and target must have the same shape."""

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits, ℓ = -[q·t·log σ(x) + (1 - t)·log(1 - σ(x))], computed stably.

    ``weight`` rescales each element and ``pos_weight`` (q) the positive term; both broadcast.
    """

    def __init__(self, weight=None, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, reduction=self.reduction, pos_weight=self.pos_weight
        )


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities (e.g. after a sigmoid) against targets in [0, 1]:
    ℓ = -w·[t·log x + (1 - t)·log(1 - x)], logs clamped at -100 (see ``F.binary_cross_entropy``).
    ``weight`` (a buffer) rescales each element and broadcasts to the input's shape."""

    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class KLDivLoss(Module):
    """Kullback-Leibler divergence of log-probabilities ``input`` from ``target`` (probabilities, or
    log-probabilities with ``log_target=True``): ℓ = t·(log t - x) per element (see ``F.kl_div``).
    ``reduction='batchmean'`` gives the KL divergence per sample; 'mean' averages over every element."""

    def __init__(self, reduction="mean", log_target=False):
        super().__init__()
        if reduction not in ("none", "batchmean", "sum", "mean"):
            raise ValueError(
                f"KLDivLoss: reduction must be one of ('none', 'batchmean', 'sum', 'mean'), got {reduction!r}"
            )
        self.reduction = reduction
        self.log_target = log_target

    def forward(self, input, target):
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)

    def extra_repr(self):
        return f"reduction={self.reduction!r}, log_target={self.log_target}"


class HuberLoss(_Loss):
    """Huber loss of d = x - y: ½d² where |d| < δ, else δ(|d| - ½δ): quadratic for small errors,
    linear (robust to outliers) for large ones (see ``F.huber_loss``)."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input, target):
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)

    def extra_repr(self):
        return f"reduction={self.reduction!r}, delta={self.delta}"


class SmoothL1Loss(_Loss):
    """Smooth L1 loss of d = x - y: ½d²/β where |d| < β, else |d| - ½β (Huber divided by β;
    plain L1 when β = 0; see ``F.smooth_l1_loss``)."""

    def __init__(self, reduction="mean", beta=1.0):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)

    def extra_repr(self):
        return f"reduction={self.reduction!r}, beta={self.beta}"


__all__ = [
    "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCEWithLogitsLoss", "BCELoss", "KLDivLoss", "HuberLoss",
    "SmoothL1Loss",
]
