"""Recurrent cells — one time step of an Elman RNN, an LSTM or a GRU — and the switch between implementations.

Every cell has two implementations that compute the same function:

* **composed**: built from primitive Tensor ops, so the graph shows every gate
  (the intermediate tensors are named ``"i"``, ``"f"``, ``"g"``, ``"o"``,
  ``"r"``, ``"z"``, ``"n"``, ``"c"``, ``"h"``) — for reading and teaching;
* **fused**: ONE op per step with a hand-written backward
  (:mod:`tinygrad_rnn.ops.rnn`) — small graphs, fast.

Fused is the default. Choose per module with ``impl="composed"`` (or by
setting ``module.impl``), or for every module left at ``impl=None`` with
``set_rnn_impl("composed")`` or ``with rnn_impl("composed"): ...``. The
sequence layers (``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``) also accept ``"fused_step"``:
a loop over the fused per-step ops instead of their default whole-sequence op
(``"cell"``, its old name, still works and warns).

Parameters use PyTorch's names, shapes and gate order, and PyTorch's
initialisation U(-1/√H, 1/√H) drawn from the CPU generator, so weights move
to and from ``torch.nn.RNNCell`` / ``LSTMCell`` / ``GRUCell`` through
``state_dict()``.
"""
from __future__ import annotations

import math
import warnings
from contextlib import contextmanager

from .. import autograd
from ..checks import check_int
from ..backends import get_backend
from ..tensor import Tensor, float32
from ..ops.rnn import GRUCellFn, LSTMCellFn, RNNCellFn
from ..ops.rnn_composed import (  # noqa: F401
    _named, check_gru_input_size, check_gru_variant, gru_cell_composed, lstm_cell_composed, rnn_cell_composed,
)
from ..ops.rnn_gru_variants import GRUVariantCellFn
from .module import Module, Parameter

#: the implementations a sequence layer accepts (a cell treats "fused_step" as "fused")
RNN_IMPLS = ("fused", "fused_step", "composed")
#: old names that still work, with a warning
_RENAMED = {"cell": "fused_step"}
_GLOBAL_IMPL = ["fused"]


def _check_impl(impl, where):
    """``impl`` checked against :data:`RNN_IMPLS` (an old name is translated, with a FutureWarning)."""
    if impl in _RENAMED:
        warnings.warn(
            f'{where}: impl="{impl}" is now called "{_RENAMED[impl]}" (one fused op per time step); '
            "the old name will go away",
            FutureWarning,
            stacklevel=autograd.user_stacklevel(),
        )
        return _RENAMED[impl]
    if impl not in RNN_IMPLS:
        raise ValueError(f"{where}: impl must be one of {', '.join(repr(i) for i in RNN_IMPLS)}, got {impl!r}")
    return impl


def set_rnn_impl(impl: str) -> None:
    """Choose the implementation of every recurrent module created with ``impl=None`` (the default).

    ``"fused"`` (default): one op per sequence (layers) or per step (cells);
    ``"fused_step"``: layers loop over the fused per-step cell op; ``"composed"``:
    loops over cells built from primitive ops (the most detailed graph).
    """
    _GLOBAL_IMPL[0] = _check_impl(impl, "set_rnn_impl")


def get_rnn_impl() -> str:
    """The implementation used by recurrent modules whose ``impl`` is None."""
    return _GLOBAL_IMPL[0]


@contextmanager
def rnn_impl(impl: str):
    """Context manager: use ``impl`` for recurrent modules with ``impl=None`` inside the block."""
    previous = _GLOBAL_IMPL[0]
    set_rnn_impl(impl)
    try:
        yield
    finally:
        _GLOBAL_IMPL[0] = previous


def uniform_parameter(shape, bound) -> Parameter:
    """A float32 Parameter drawn from U(-bound, bound) with the CPU generator (PyTorch's RNN init)."""
    u = get_backend("cpu").rand(shape, float32)
    return Parameter(u * (2 * bound) - bound)


# --------------------------------------------------------------------------- composed cells
# ``rnn_cell_composed``, ``lstm_cell_composed`` and ``gru_cell_composed`` live in ``ops/rnn_composed.py``
# (the fused cells' create_graph backward differentiates them too); imported above.


# --------------------------------------------------------------------------- one step, either way
def _extras(b_ih, b_hh, w_ch=None):
    return [t for t in (b_ih, b_hh, w_ch) if t is not None]


def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh", impl="fused"):
    """One Elman RNN step on batched tensors, composed (``impl="composed"``) or as one fused op."""
    if impl == "composed":
        return rnn_cell_composed(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity)
    h = RNNCellFn.apply(x, h, w_ih, w_hh, *_extras(b_ih, b_hh), bias=b_ih is not None, nonlinearity=nonlinearity)
    return _named(h, "h")


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, w_ch=None, coupled=False, impl="fused"):
    """One LSTM step on batched tensors, composed or as one fused op; returns (h', c')."""
    if impl == "composed":
        return lstm_cell_composed(x, h, c, w_ih, w_hh, b_ih, b_hh, w_ch, coupled)
    h, c = LSTMCellFn.apply(
        x, h, c, w_ih, w_hh, *_extras(b_ih, b_hh, w_ch),
        bias=b_ih is not None, peephole=w_ch is not None, coupled=coupled,
    )
    return _named(h, "h"), _named(c, "c")


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, impl="fused", variant="pytorch"):
    """One GRU step on batched tensors, composed or as one fused op; returns h'.

    ``variant`` picks the equations (those on :class:`GRUCell`); PyTorch's GRU by default."""
    check_gru_variant("gru_cell", variant)
    if impl == "composed":
        return gru_cell_composed(x, h, w_ih, w_hh, b_ih, b_hh, variant)
    extras = _extras(b_ih, b_hh)
    if variant == "pytorch":
        return _named(GRUCellFn.apply(x, h, w_ih, w_hh, *extras, bias=b_ih is not None), "h")
    return _named(GRUVariantCellFn.apply(x, h, w_ih, w_hh, *extras, bias=b_ih is not None, variant=variant), "h")


# --------------------------------------------------------------------------- checks shared with the layers
def check_sizes(where, input_size, hidden_size):
    check_int(where, "input_size", input_size, minimum=1)
    check_int(where, "hidden_size", hidden_size, minimum=1)


def check_tensor(where, what, value, like):
    """``value`` must be a Tensor on ``like``'s device and of its dtype (the parameters')."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{where}: expected {what} to be a Tensor, got {type(value).__name__}")
    if value.device != like.device:
        raise RuntimeError(
            f"{where}: {what} is on {value.device} but the parameters are on {like.device}; "
            f"move one of them with .to(device)"
        )
    if value.dtype != like.dtype:
        raise TypeError(
            f"{where}: {what} has dtype {value.dtype} but the parameters are {like.dtype}; "
            f"convert one of them (e.g. module.double() or tensor.float())"
        )


def warn_if_used_graph(where, state):
    """Warn when a given initial state still carries a graph that backward() already consumed."""
    autograd.graph_depth_warning(state, f"{where}: the initial state")


# --------------------------------------------------------------------------- cell modules
class _CellBase(Module):
    """Parameters, impl switch and input/state checks shared by the three cells."""

    gate_count = 1

    def __init__(self, input_size, hidden_size, bias=True, impl=None):
        super().__init__()
        name = type(self).__name__
        check_sizes(name, input_size, hidden_size)
        if impl is not None:
            impl = _check_impl(impl, name)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bool(bias)
        self.impl = impl
        rows = self.gate_count * hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        self.weight_ih = uniform_parameter((rows, input_size), bound)
        self.weight_hh = uniform_parameter((rows, hidden_size), bound)
        if self.bias:
            self.bias_ih = uniform_parameter((rows,), bound)
            self.bias_hh = uniform_parameter((rows,), bound)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    def _impl(self, batch=1):
        impl = self.impl if self.impl is not None else get_rnn_impl()
        _check_impl(impl, type(self).__name__)
        # an empty batch runs the composed cell, which handles zero rows (the fused kernels need one)
        return "composed" if impl == "composed" or batch == 0 else "fused"

    def _input(self, input):
        """(batched input (B, I), whether the input was unbatched)."""
        name = type(self).__name__
        check_tensor(name, "input", input, self.weight_ih)
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(
                f"{name}: expected input of shape (B, {self.input_size}) or unbatched ({self.input_size},), "
                f"got {input.shape}"
            )
        return (input.unsqueeze(0), True) if input.ndim == 1 else (input, False)

    def _state(self, state, what, batch, unbatched, like):
        """A given state checked against (B, H) (or (H,) unbatched), or zeros."""
        name = type(self).__name__
        if state is None:
            return like.new_zeros(batch, self.hidden_size)
        check_tensor(name, what, state, self.weight_ih)
        expected = (self.hidden_size,) if unbatched else (batch, self.hidden_size)
        if state.shape != expected:
            raise ValueError(f"{name}: expected {what} of shape {expected}, got {state.shape}")
        warn_if_used_graph(name, state)
        return state.unsqueeze(0) if unbatched else state

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        if self.impl is not None:
            text += f", impl={self.impl!r}"
        return text


class RNNCell(_CellBase):
    """An Elman RNN cell: h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu with ``nonlinearity="relu"``).

    ``RNNCell(input_size, hidden_size, bias=True, nonlinearity="tanh", impl=None)``.
    ``forward(input (B, I) or (I,), hx (B, H) or (H,) = zeros) -> h'``.
    Parameters as in PyTorch: ``weight_ih (H, I)``, ``weight_hh (H, H)``,
    ``bias_ih (H,)``, ``bias_hh (H,)``.
    """

    gate_count = 1

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", impl=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, impl)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, unbatched = self._input(input)
        h = self._state(hx, "hx", x.shape[0], unbatched, x)
        out = rnn_cell(
            x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.nonlinearity, self._impl(x.shape[0])
        )
        return out[0] if unbatched else out

    def extra_repr(self):
        text = super().extra_repr()
        return text + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class LSTMCell(_CellBase):
    """A long short-term memory cell, PyTorch's equations and gate order (i, f, g, o)::

        i = σ(W_ii x + b_ii + W_hi h + b_hi)        f = σ(W_if x + b_if + W_hf h + b_hf)
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)     o = σ(W_io x + b_io + W_ho h + b_ho)
        c' = f ⊙ c + i ⊙ g                          h' = o ⊙ tanh(c')

    ``LSTMCell(input_size, hidden_size, bias=True, peephole=False, coupled=False, impl=None)``.
    ``forward(input (B, I) or (I,), hx=(h, c) each (B, H) or (H,), default zeros) -> (h', c')``.
    Parameters: ``weight_ih (4H, I)``, ``weight_hh (4H, H)``, ``bias_ih``, ``bias_hh (4H,)``, rows in
    the order i, f, g, o.

    Two variants from the lectures (neither is PyTorch's LSTM: such a model
    cannot be loaded into ``torch.nn.LSTMCell`` and keep its meaning):

    * ``peephole=True`` (Gers & Schmidhuber): a diagonal peephole weight
      ``weight_ch`` of shape (3H,) = [w_ci, w_cf, w_co]; the input and forget
      gates see the previous cell state and the output gate the new one:
      i = σ(… + w_ci ⊙ c), f = σ(… + w_cf ⊙ c), o = σ(… + w_co ⊙ c').
      Initialised like the other weights, U(-1/√H, 1/√H).
    * ``coupled=True`` (coupled input and forget gates): c' = f ⊙ c + (1 − f) ⊙ g.
      The input gate is not computed. We keep PyTorch's 4-gate layout, so
      the shapes and names match a plain LSTM and the same kernels run every
      variant; the input-gate rows of the weights and biases (and w_ci) are
      unused and always get zero gradients.
    """

    gate_count = 4

    def __init__(self, input_size, hidden_size, bias=True, peephole=False, coupled=False, impl=None):
        super().__init__(input_size, hidden_size, bias, impl)
        self.peephole = bool(peephole)
        self.coupled = bool(coupled)
        if self.peephole:
            self.weight_ch = uniform_parameter((3 * hidden_size,), 1.0 / math.sqrt(hidden_size))
        else:
            self.register_parameter("weight_ch", None)

    def forward(self, input, hx=None):
        x, unbatched = self._input(input)
        if hx is None:
            hx = (None, None)
        elif not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"LSTMCell: expected hx to be a tuple (h, c), got {type(hx).__name__}")
        h = self._state(hx[0], "hx[0] (h)", x.shape[0], unbatched, x)
        c = self._state(hx[1], "hx[1] (c)", x.shape[0], unbatched, x)
        h, c = lstm_cell(
            x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.weight_ch,
            self.coupled, self._impl(x.shape[0]),
        )
        return (h[0], c[0]) if unbatched else (h, c)

    def extra_repr(self):
        text = super().extra_repr()
        text += ", peephole=True" if self.peephole else ""
        return text + (", coupled=True" if self.coupled else "")


class GRUCell(_CellBase):
    """A gated recurrent unit, PyTorch's equations and gate order (r, z, n)::

        r = σ(W_ir x + b_ir + W_hr h + b_hr)        z = σ(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
        h' = (1 − z) ⊙ n + z ⊙ h

    ``GRUCell(input_size, hidden_size, bias=True, variant="pytorch", impl=None)``.
    ``forward(input (B, I) or (I,), hx (B, H) or (H,) = zeros) -> h'``.
    Parameters: ``weight_ih (3H, I)``, ``weight_hh (3H, H)``, ``bias_ih``, ``bias_hh (3H,)``.

    ``variant`` selects a GRU from the lectures instead of PyTorch's (none has a
    twin in PyTorch's GRU: ``to_torch`` and ONNX export refuse them). Every
    variant keeps the layout above — same names, shapes and initialisation —
    with its gates in the r, z, n row blocks as listed; each gate adds its rows
    of both biases (b = b_ih + b_hh); rows a variant does not use (marked
    unused) always get zero gradients. Below W_* x are rows of ``weight_ih``,
    U_* h rows of ``weight_hh``:

    * ``"reset_before"`` (the slides' GRU: the reset gate acts on h before the
      product): r, z as above; n = tanh(W_n x + U_n (r ⊙ h) + b_n);
      h' = (1 − z) ⊙ n + z ⊙ h (PyTorch's convention: z keeps the old state).
      All rows used.
    * ``"no_reset"`` (the slides' GRU without a reset gate): z as above;
      n = tanh(W_n x + U_n h + b_n); h' = (1 − z) ⊙ n + z ⊙ h. r rows unused.
    * ``"mgu"`` (minimal gated unit, Zhou et al. 2016): f = σ(W_f x + U_f h + b_f)
      in the r rows; n = tanh(W_n x + U_n (f ⊙ h) + b_n); h' = (1 − f) ⊙ h + f ⊙ n.
      z rows unused.
    * ``"mut1"``, ``"mut2"``, ``"mut3"`` (Jozefowicz, Zaremba & Sutskever 2015,
      as the paper writes them, with h' = n ⊙ z + h ⊙ (1 − z): here z keeps
      the *new* state, the opposite of PyTorch's z):

      - MUT1: z = σ(W_z x + b_z); r = σ(W_r x + U_r h + b_r);
        n = tanh(U_n (r ⊙ h) + tanh(x) + b_n). Unused: the z rows of
        ``weight_hh`` and the n rows of ``weight_ih``.
      - MUT2: z = σ(W_z x + U_z h + b_z); r = σ(x + U_r h + b_r);
        n = tanh(U_n (r ⊙ h) + W_n x + b_n). Unused: the r rows of ``weight_ih``.
      - MUT3: z = σ(W_z x + U_z tanh(h) + b_z); r = σ(W_r x + U_r h + b_r);
        n = tanh(U_n (r ⊙ h) + W_n x + b_n). All rows used.

      MUT1 and MUT2 add x itself, so they need ``input_size == hidden_size``.

    The composed cell names its gates ``r``, ``z``, ``f``, ``n``, ``h`` as above;
    the fused one runs :class:`~tinygrad_rnn.ops.rnn_gru_variants.GRUVariantCellFn`.
    """

    gate_count = 3

    def __init__(self, input_size, hidden_size, bias=True, variant="pytorch", impl=None):
        check_gru_variant("GRUCell", variant)
        super().__init__(input_size, hidden_size, bias, impl)
        check_gru_input_size("GRUCell", variant, input_size, hidden_size)
        self.variant = variant

    def forward(self, input, hx=None):
        x, unbatched = self._input(input)
        h = self._state(hx, "hx", x.shape[0], unbatched, x)
        out = gru_cell(
            x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self._impl(x.shape[0]), self.variant
        )
        return out[0] if unbatched else out

    def extra_repr(self):
        text = super().extra_repr()
        return text + (f", variant={self.variant!r}" if self.variant != "pytorch" else "")


__all__ = [
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "set_rnn_impl",
    "get_rnn_impl",
    "rnn_impl",
    "rnn_cell",
    "lstm_cell",
    "gru_cell",
    "rnn_cell_composed",
    "lstm_cell_composed",
    "gru_cell_composed",
]
