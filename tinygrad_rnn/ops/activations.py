"""Activation ops beyond the basic ones in ``elementwise``: GELU (exact and tanh), SiLU, LeakyReLU.

NumPy has no ``erf``, so :func:`erf` evaluates it here with ufuncs of the
backend's ``xp`` only, one implementation for NumPy and CuPy alike: Taylor
polynomials of erf around the centres 0, 0.5, ..., 6 (|x - centre| <= 0.25),
whose coefficients come from erf's derivatives, erf^(k+1)(c) =
2/√π (-1)^k H_k(c) e^(-c²) with H_k the Hermite polynomials. Degree 18 keeps
the relative error below 3e-16 in float64 (erf(x) rounds to ±1 beyond |x| = 6).
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import Function

_STEP = 0.5
_CENTRES = 13  # 0, 0.5, ..., 6.0
_DEGREE = 18
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_CUBIC = 0.044715
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _taylor_table() -> np.ndarray:
    """(degree + 1, centres) host table: row k holds erf^(k)(c) / k! for every centre c."""
    rows = []
    for i in range(_CENTRES):
        c = i * _STEP
        scale = 2.0 / math.sqrt(math.pi) * math.exp(-c * c)
        previous, current = 0.0, 1.0  # H_{n-1}(c)/(n-1)! and H_n(c)/n!, from n = 0
        row = [math.erf(c)]
        for k in range(1, _DEGREE + 1):
            n = k - 1
            row.append(scale * (-1) ** n * current / k)
            previous, current = current, (2.0 * c * current - 2.0 * previous) / (n + 1)
        rows.append(row)
    return np.array(rows, dtype=np.float64).T.copy()


_HOST_TABLE = _taylor_table()
_DEVICE_TABLES = {}  # (backend, dtype) -> the table on that device


def erf(backend, x):
    """The error function of the floating array ``x`` of ``backend``'s device (NaN stays NaN)."""
    xp = backend.xp
    key = (backend, x.dtype.str)
    table = _DEVICE_TABLES.get(key)
    if table is None:
        table = _DEVICE_TABLES[key] = backend.asarray(_HOST_TABLE.astype(x.dtype))
    a = xp.minimum(xp.abs(x), (_CENTRES - 1) * _STEP)
    nan = xp.isnan(a)
    a = xp.where(nan, 0, a).astype(x.dtype, copy=False)
    centre = xp.rint(a * (1 / _STEP)).astype(xp.int64)
    u = a - centre.astype(x.dtype) * _STEP
    out = xp.take(table[_DEGREE], centre)
    for k in range(_DEGREE - 1, -1, -1):
        out *= u
        out += xp.take(table[k], centre)
    out = xp.copysign(out, x)
    return xp.where(nan, x, out)


class Erf(Function):
    """erf(x); d/dx = 2/√π e^(-x²). GELU's create_graph backward differentiates Φ through it."""

    def forward(self, x):
        self.save_for_backward(x)
        return erf(self.backend, x)

    def backward(self, g):
        (x,) = self.saved
        return g * (self.xp.exp(-(x * x)) * _TWO_OVER_SQRT_PI)


class GELUFn(Function):
    """GELU(x) = x Φ(x) with Φ the standard normal CDF, Φ(x) = (1 + erf(x/√2)) / 2;
    ``approximate='tanh'``: Φ(x) ≈ (1 + tanh(√(2/π) (x + 0.044715 x³))) / 2 (PyTorch's two forms).

    Backward: exact Φ(x) + x φ(x) with φ(x) = e^(-x²/2)/√(2π); the tanh form
    differentiates its own formula, as PyTorch does.
    """

    def forward(self, x, approximate):
        xp = self.xp
        self.approximate = approximate
        if approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (x + _TANH_CUBIC * x * x * x)
            t = xp.tanh(inner)
            self.save_for_backward(x, t)
            return 0.5 * x * (1 + t)
        cdf = erf(self.backend, x * _INV_SQRT_2)
        cdf += 1
        cdf *= 0.5
        self.save_for_backward(x, cdf)
        return x * cdf

    def backward(self, g):
        xp = self.xp
        x, saved = self.saved
        if self.approximate == "tanh":
            t = saved
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * _TANH_CUBIC * x * x)
            return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner)
        pdf = xp.exp(-0.5 * x * x) * _INV_SQRT_2PI
        return g * (saved + x * pdf)

    def graph_saved(self, saved):
        """Φ(x) (or the tanh of the approximation), recomputed from ``x`` by recorded ops."""
        x = saved[0]
        if self.approximate == "tanh":
            return x, (_SQRT_2_OVER_PI * (x + _TANH_CUBIC * x * x * x)).tanh()
        return x, (Erf.apply(x * _INV_SQRT_2) + 1) * 0.5


class SiLUFn(Function):
    """SiLU(x) = x σ(x) (also called swish); backward σ(x) + SiLU(x) (1 - σ(x)).

    σ is computed as (1 + tanh(x/2)) / 2, finite for any x (as ``Sigmoid``). It
    keeps x and recomputes σ in backward, which a create_graph backward can
    differentiate; with ``keep_input=False`` (``F.silu(x, inplace=True)``, which
    overwrites x) it keeps the output and σ instead, and refuses double backward."""

    def forward(self, x, keep_input=True):
        s = self.xp.tanh(x * 0.5)
        s += 1
        s *= 0.5
        out = x * s
        if keep_input:
            self.save_for_backward(x)
        else:
            self.save_for_backward(out, s)
        return out

    def backward(self, g):
        if len(self.saved) == 1:
            (x,) = self.saved
            s = (self.xp.tanh(x * 0.5) + 1) * 0.5
            out = x * s
        else:
            out, s = self.saved
        return g * (s + out * (1 - s))


class LeakyReLUFn(Function):
    """x where x > 0, else ``negative_slope`` · x; the gradient is 1 or ``negative_slope``
    (``negative_slope`` at x = 0, as PyTorch). Only the mask x > 0 is kept for the backward,
    so ``F.leaky_relu(x, inplace=True)`` may overwrite x."""

    def forward(self, x, negative_slope):
        positive = x > 0
        self.negative_slope = negative_slope
        self.save_for_backward(positive)
        return self.xp.where(positive, x, x * negative_slope).astype(x.dtype, copy=False)

    def backward(self, g):
        (positive,) = self.saved
        return self.xp.where(positive, g, g * self.negative_slope).astype(g.dtype, copy=False)
