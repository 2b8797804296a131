"""More elementwise functions: sin, cos, log1p, sign and nan_to_num (no broadcasting: one input each)."""
from __future__ import annotations

from ..autograd import Function


class Sin(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.sin(x)

    def backward(self, g):
        return g * self.xp.cos(self.saved[0])


class Cos(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.cos(x)

    def backward(self, g):
        return -g * self.xp.sin(self.saved[0])


class Log1p(Function):
    """log(1 + x), exact for tiny x where ``log(1 + x)`` rounds to 0."""

    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.log1p(x)

    def backward(self, g):
        return g / (1 + self.saved[0])


class Sign(Function):
    """-1, 0 or 1; piecewise constant, so its gradient is 0 everywhere (as PyTorch defines it)."""

    def forward(self, x):
        return self.xp.sign(x)

    def backward(self, g):
        return self.xp.zeros_like(g)


class NanToNum(Function):
    """NaN, +inf and -inf replaced by finite numbers; the gradient passes only where ``x`` was finite."""

    def forward(self, x, nan=0.0, posinf=None, neginf=None):
        finite = self.xp.isfinite(x)
        self.save_for_backward(finite)
        return self.xp.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)

    def backward(self, g):
        return g * self.saved[0]
