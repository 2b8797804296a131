"""Matrix products: 1-D, 2-D and batched, with NumPy's matmul semantics."""
from __future__ import annotations

from ..autograd import Function


class MatMul(Function):
    """``a @ b``. Backward: dA = dC Bᵀ, dB = Aᵀ dC (batch dims summed by the tape)."""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both arguments need at least 1 dimension, got {tuple(a.shape)} and {tuple(b.shape)}")
        inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.shape[-1] != inner_b:
            which = "size" if b.ndim == 1 else "second-to-last dimension"
            raise ValueError(
                f"matmul: cannot multiply {tuple(a.shape)} by {tuple(b.shape)}: expected the {which} of the second "
                f"operand to equal the last dimension of the first ({a.shape[-1]}), got {inner_b}"
            )
        try:
            out = a @ b
        except ValueError:
            raise ValueError(
                f"matmul: cannot multiply {tuple(a.shape)} by {tuple(b.shape)}: batch dimensions do not broadcast"
            ) from None
        self.save_for_backward(a, b)
        return out

    def backward(self, g):
        a, b = self.saved
        if a.ndim == 1 and b.ndim == 1:
            return g * b, g * a
        # Give 1-D operands a unit axis so both products are plain (batched) matmuls.
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g[..., None, :] if a.ndim == 1 else (g[..., None] if b.ndim == 1 else g)
        ga = gb = None
        if self.next[0] is not None:
            ga = g2 @ b2.swapaxes(-1, -2)
            if a.ndim == 1:
                ga = ga[..., 0, :]
        if self.next[1] is not None:
            a2 = a[None, :] if a.ndim == 1 else a
            gb = a2.swapaxes(-1, -2) @ g2
            if b.ndim == 1:
                gb = gb[..., 0]
        return ga, gb
