"""Adagrad: per-element learning rates that shrink with the accumulated squared gradients."""
from __future__ import annotations

from .. import capture
from .optimizer import Optimizer, check_hyperparameter


class Adagrad(Optimizer):
    """PyTorch's Adagrad (Duchi et al., 2011). At step t, with g = ∇ + λθ:

    η_t = lr / (1 + (t - 1) · lr_decay),   s ← s + g²  (s starts at initial_accumulator_value),
    θ ← θ - η_t · g / (√s + ε)
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10):
        check_hyperparameter("Adagrad", "lr", lr)
        check_hyperparameter("Adagrad", "lr_decay", lr_decay)
        check_hyperparameter("Adagrad", "weight_decay", weight_decay)
        check_hyperparameter("Adagrad", "initial_accumulator_value", initial_accumulator_value)
        check_hyperparameter("Adagrad", "eps", eps)
        defaults = dict(
            lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, eps=eps,
        )
        super().__init__(params, defaults)

    def _init_state(self, p, state, group):
        state["step"] = 0
        state["sum"] = self._buffer(p, float(group["initial_accumulator_value"]))

    def _state_keys(self, group):
        return {"step", "sum"}, set()

    def _update(self, p, grad, state, group):
        xp = p.backend.xp
        lr, decay, eps = float(group["lr"]), float(group["weight_decay"]), float(group["eps"])
        state["step"] += 1
        if float(group["lr_decay"]):
            capture.refuse("Adagrad's lr_decay counts steps on the host", "a replay would repeat the captured "
                           "learning rate: use lr_decay=0 in a captured step")
        if decay:
            decayed = xp.multiply(p.array, decay)
            decayed += grad
            grad = decayed
        clr = lr / (1 + (state["step"] - 1) * float(group["lr_decay"]))
        accumulator = state["sum"].array
        scratch = xp.multiply(grad, grad)
        accumulator += scratch
        xp.sqrt(accumulator, out=scratch)
        if eps:
            scratch += eps
        xp.divide(grad, scratch, out=scratch)
        scratch *= clr
        p.array -= scratch


__all__ = ["Adagrad"]
