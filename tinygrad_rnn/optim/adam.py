"""Adam and AdamW: adaptive moment estimation, with L2 (Adam) or decoupled (AdamW) weight decay."""
from __future__ import annotations

import math

from .. import capture
from ..dtypes import float64
from ..tensor import Tensor
from .optimizer import Optimizer, check_hyperparameter


class Adam(Optimizer):
    """PyTorch's Adam (Kingma & Ba, 2015). At step t, with g = ∇ + λθ:

    m ← β₁ m + (1 - β₁) g,   v ← β₂ v + (1 - β₂) g²,   (amsgrad: v̂ ← max(v̂, v), used for v)
    θ ← θ - lr / (1 - β₁ᵗ) · m / (√v / √(1 - β₂ᵗ) + ε)
    """

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False):
        name = type(self).__name__
        check_hyperparameter(name, "lr", lr)
        check_hyperparameter(name, "eps", eps)
        check_hyperparameter(name, "weight_decay", weight_decay)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        check_hyperparameter(name, "beta1", betas[0], 0.0, 1.0)
        check_hyperparameter(name, "beta2", betas[1], 0.0, 1.0)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults)

    def _init_state(self, p, state, group):
        state["step"] = 0
        state["exp_avg"] = self._buffer(p)
        state["exp_avg_sq"] = self._buffer(p)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = self._buffer(p)

    def _state_keys(self, group):
        return {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if group["amsgrad"] else set()), set()

    def _update(self, p, grad, state, group):
        xp = p.backend.xp
        lr, eps, decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        step_size, bias_root = _bias_corrections(p, state, lr, beta1, beta2)
        if decay and self.decoupled:
            p.array *= 1 - lr * decay
        elif decay:
            decayed = xp.multiply(p.array, decay)
            decayed += grad
            grad = decayed
        m, v = state["exp_avg"].array, state["exp_avg_sq"].array
        scratch = xp.multiply(grad, 1 - beta1)
        m *= beta1
        m += scratch
        xp.multiply(grad, grad, out=scratch)
        scratch *= 1 - beta2
        v *= beta2
        v += scratch
        if group["amsgrad"]:
            v_max = state["max_exp_avg_sq"].array
            xp.maximum(v_max, v, out=v_max)
            v = v_max
        xp.sqrt(v, out=scratch)
        scratch /= bias_root
        scratch += eps
        xp.divide(m, scratch, out=scratch)
        scratch *= step_size
        p.array -= scratch


def _bias_corrections(p, state, lr, beta1, beta2):
    """Count this step and return (lr / (1 - β₁ᵗ), √(1 - β₂ᵗ)): Python floats, or, once a step has been
    prepared for ``tr.cuda.graphed``, 0-d device arrays of p's dtype computed from a step count kept on
    the device (float64), so that every replay of a captured step counts on. Same values either way."""
    step = state["step"]
    if capture.preparing() and not isinstance(step, Tensor):
        step = state["step"] = Tensor(float(step), dtype=float64, device=p.device)
    if not isinstance(step, Tensor):
        step = state["step"] = step + 1
        return lr / (1 - beta1**step), math.sqrt(1 - beta2**step)
    xp, count = p.backend.xp, step.array
    count += 1
    step_size = lr / (1 - xp.power(beta1, count))
    bias_root = xp.sqrt(1 - xp.power(beta2, count))
    return step_size.astype(p.dtype), bias_root.astype(p.dtype)


class AdamW(Adam):
    """PyTorch's AdamW (Loshchilov & Hutter, 2019): Adam on the plain gradient, with the weight
    decay applied directly to the parameters first: θ ← θ (1 - lr λ). Default λ = 1e-2."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


__all__ = ["Adam", "AdamW"]
