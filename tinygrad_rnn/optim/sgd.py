"""Stochastic gradient descent with optional momentum, dampening, weight decay and Nesterov momentum."""
from __future__ import annotations

from .optimizer import Optimizer, check_hyperparameter


class SGD(Optimizer):
    """PyTorch's SGD. With g = ∇ + λθ (weight decay λ):

    b ← g on the first step, else b ← μ b + (1 - τ) g   (momentum μ, dampening τ)
    d = g + μ b (Nesterov) or b (momentum) or g (plain)
    θ ← θ - lr · d
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        check_hyperparameter("SGD", "lr", lr)
        check_hyperparameter("SGD", "momentum", momentum)
        check_hyperparameter("SGD", "weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a positive momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    def _init_state(self, p, state, group):
        if group["momentum"]:
            state["momentum_buffer"] = None

    def _state_keys(self, group):
        return set(), {"momentum_buffer"}  # absent until a step with momentum, as in PyTorch

    def _update(self, p, grad, state, group):
        xp = p.backend.xp
        lr, momentum, decay = float(group["lr"]), float(group["momentum"]), float(group["weight_decay"])
        if decay:
            direction = xp.multiply(p.array, decay)
            direction += grad
        else:
            direction = grad
        if momentum:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                state["momentum_buffer"] = self._buffer(p)
                state["momentum_buffer"].array[...] = direction
                buffer = state["momentum_buffer"]
            else:
                buffer.array *= momentum
                dampening = float(group["dampening"])
                buffer.array += direction if not dampening else direction * (1 - dampening)
            if group["nesterov"]:
                ahead = xp.multiply(buffer.array, momentum)
                ahead += direction
                direction = ahead
            else:
                direction = buffer.array
        p.array -= xp.multiply(direction, lr)


__all__ = ["SGD"]
