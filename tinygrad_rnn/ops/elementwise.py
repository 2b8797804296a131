"""Elementwise ops: arithmetic, the usual nonlinearities, where, casts and device moves.

Broadcasting is NumPy's; each backward returns the gradient in the broadcast
shape and the tape sums it down to each input's shape (``sum_to_shape``).
"""
from __future__ import annotations

from ..autograd import Function


def _broadcast_error(name, a, b, exc):
    return ValueError(
        f"{name}: cannot broadcast shapes {tuple(a.shape)} and {tuple(b.shape)}: "
        "aligned from the right, each pair of dimensions must be equal or contain a 1"
    )


class _Binary(Function):
    """Shared forward for ``a OP b``: turns NumPy's broadcast error into one that names the op."""

    def forward(self, a, b):
        try:
            out = self.compute(a, b)
        except ValueError as exc:
            raise _broadcast_error(self.name.lower(), a, b, exc) from None
        self.remember(a, b, out)
        return out

    def remember(self, a, b, out):
        """Save what backward needs (nothing by default)."""


class Add(_Binary):
    def compute(self, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(_Binary):
    def compute(self, a, b):
        return a - b

    def backward(self, g):
        return g, (-g if self.next[1] is not None else None)


class Mul(_Binary):
    def compute(self, a, b):
        return a * b

    def remember(self, a, b, out):
        self.save_for_backward(a, b)

    def backward(self, g):
        a, b = self.saved
        return (g * b if self.next[0] is not None else None), (g * a if self.next[1] is not None else None)


class Div(_Binary):
    def compute(self, a, b):
        return a / b

    def remember(self, a, b, out):
        self.save_for_backward(b, out)

    def backward(self, g):
        b, out = self.saved
        ga = g / b
        return ga, (-ga * out if self.next[1] is not None else None)


class Pow(_Binary):
    """``a ** b`` for two tensors; d/da = b a^(b-1), d/db = a^b log a."""

    def compute(self, a, b):
        return a**b

    def remember(self, a, b, out):
        self.save_for_backward(a, b, out)

    def backward(self, g):
        a, b, out = self.saved
        ga = g * b * a ** (b - 1) if self.next[0] is not None else None
        gb = g * out * self.xp.log(a) if self.next[1] is not None else None
        return ga, gb


class PowScalar(Function):
    """``x ** p`` for a Python number ``p``; d/dx = p x^(p-1)."""

    def forward(self, x, exponent):
        self.exponent = exponent
        self.save_for_backward(x)
        return x**exponent

    def backward(self, g):
        (x,) = self.saved
        p = self.exponent
        if p == 2:
            return g * (2 * x)
        return g * (p * x ** (p - 1))


class Maximum(_Binary):
    """Elementwise max; at ties the gradient is shared half and half (as PyTorch does)."""

    pick = "maximum"

    def compute(self, a, b):
        return getattr(self.xp, self.pick)(a, b)

    def remember(self, a, b, out):
        self.save_for_backward(a, b)

    def backward(self, g):
        a, b = self.saved
        first = (a > b) if self.pick == "maximum" else (a < b)
        tie = (a == b) * 0.5
        weight_a = (first + tie).astype(g.dtype)
        return g * weight_a, g * (1 - weight_a)


class Minimum(Maximum):
    pick = "minimum"


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class Exp(Function):
    def forward(self, x):
        out = self.xp.exp(x)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        return g * self.saved[0]


class Log(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.log(x)

    def backward(self, g):
        return g / self.saved[0]


class Sqrt(Function):
    def forward(self, x):
        out = self.xp.sqrt(x)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        return g / (2 * self.saved[0])


class Abs(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.abs(x)

    def backward(self, g):
        return g * self.xp.sign(self.saved[0])


class Tanh(Function):
    def forward(self, x):
        out = self.xp.tanh(x)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        y = self.saved[0]
        return g * (1 - y * y)


class Sigmoid(Function):
    """σ(x) = (1 + tanh(x/2)) / 2: the same function as 1/(1+e^-x), finite for any x."""

    def forward(self, x):
        out = self.xp.tanh(x * 0.5)
        out += 1
        out *= 0.5
        self.save_for_backward(out)
        return out

    def backward(self, g):
        y = self.saved[0]
        return g * (y * (1 - y))


class Relu(Function):
    """max(x, 0), +0 (never -0) where x <= 0, as PyTorch; the gradient passes where x > 0."""

    def forward(self, x):
        positive = x > 0
        self.save_for_backward(positive)
        return self.xp.where(positive, x, x.dtype.type(0))

    def backward(self, g):
        return g * self.saved[0]


class Clamp(Function):
    """Clip to [low, high]; the gradient passes where low <= x <= high."""

    def forward(self, x, low=None, high=None):
        xp = self.xp
        inside = xp.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        self.save_for_backward(inside)
        return xp.clip(x, low, high).astype(x.dtype, copy=False)

    def backward(self, g):
        return g * self.saved[0]


class Where(Function):
    """``where(cond, a, b)``; ``cond`` is a boolean tensor and gets no gradient."""

    def forward(self, cond, a, b):
        try:
            out = self.xp.where(cond, a, b)
        except ValueError:
            raise ValueError(
                f"where: cannot broadcast condition {tuple(cond.shape)}, input {tuple(a.shape)} and other {tuple(b.shape)}"
            ) from None
        self.save_for_backward(cond)
        return out

    def backward(self, g):
        cond = self.saved[0]
        return None, g * cond, g * ~cond


class Cast(Function):
    """Change the dtype; the gradient is cast back."""

    def forward(self, x, dtype):
        self.in_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return g.astype(self.in_dtype)


class ToDevice(Function):
    """Copy to another device through the host; the gradient travels back the same way."""

    def forward(self, x, target):
        self.out_backend = target
        return target.asarray(self.backend.to_host(x))

    def backward(self, g):
        return self.backend.asarray(self.out_backend.to_host(g))

    def graph_backward(self, g):
        return g.to(self.backend.device)


class Clone(Function):
    """A copy of the data that stays in the graph; the gradient passes through."""

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g
