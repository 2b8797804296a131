"""RMSprop: divide the gradient by a running root mean square, optionally centred and with momentum."""
from __future__ import annotations

from .optimizer import Optimizer, check_hyperparameter


class RMSprop(Optimizer):
    """PyTorch's RMSprop (Hinton's lecture 6e). With g = ∇ + λθ:

    s ← α s + (1 - α) g²;   centred: ḡ ← α ḡ + (1 - α) g and d = √(s - ḡ²) + ε, else d = √s + ε
    momentum μ > 0: b ← μ b + g / d, θ ← θ - lr b;   otherwise θ ← θ - lr g / d
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False):
        check_hyperparameter("RMSprop", "lr", lr)
        check_hyperparameter("RMSprop", "alpha", alpha)
        check_hyperparameter("RMSprop", "eps", eps)
        check_hyperparameter("RMSprop", "weight_decay", weight_decay)
        check_hyperparameter("RMSprop", "momentum", momentum)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered)
        super().__init__(params, defaults)

    def _init_state(self, p, state, group):
        state["step"] = 0
        state["square_avg"] = self._buffer(p)
        if group["momentum"] > 0:
            state["momentum_buffer"] = self._buffer(p)
        if group["centered"]:
            state["grad_avg"] = self._buffer(p)

    def _state_keys(self, group):
        keys = {"step", "square_avg"}
        if group["momentum"] > 0:
            keys.add("momentum_buffer")
        if group["centered"]:
            keys.add("grad_avg")
        return keys, set()

    def _update(self, p, grad, state, group):
        xp = p.backend.xp
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        decay, momentum = float(group["weight_decay"]), float(group["momentum"])
        state["step"] += 1
        if decay:
            decayed = xp.multiply(p.array, decay)
            decayed += grad
            grad = decayed
        square_avg = state["square_avg"].array
        scratch = xp.multiply(grad, grad)
        scratch *= 1 - alpha
        square_avg *= alpha
        square_avg += scratch
        if group["centered"]:
            grad_avg = state["grad_avg"].array
            xp.multiply(grad, 1 - alpha, out=scratch)
            grad_avg *= alpha
            grad_avg += scratch
            xp.multiply(grad_avg, grad_avg, out=scratch)
            xp.subtract(square_avg, scratch, out=scratch)
            xp.sqrt(scratch, out=scratch)
        else:
            xp.sqrt(square_avg, out=scratch)
        scratch += eps
        xp.divide(grad, scratch, out=scratch)
        if momentum > 0:
            buffer = state["momentum_buffer"].array
            buffer *= momentum
            buffer += scratch
            xp.multiply(buffer, lr, out=scratch)
        else:
            scratch *= lr
        p.array -= scratch


__all__ = ["RMSprop"]
