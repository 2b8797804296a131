"""Sequence layers ``RNN``, ``LSTM`` and ``GRU``: stacked, optionally bidirectional, PyTorch's API and layouts.

Input ``(T, B, I)``, ``(B, T, I)`` with ``batch_first=True``, or unbatched
``(T, I)``; initial state ``h_0`` (and ``c_0``) of shape ``(L*D, B, H)``
(``(L*D, H)`` unbatched), zeros when not given. They return
``(output, h_n)`` — or ``(output, (h_n, c_n))`` for the LSTM — with output
``(T, B, D*H)`` (``(B, T, D*H)`` with ``batch_first``), exactly as
``torch.nn.RNN`` / ``LSTM`` / ``GRU`` do. Parameters are named as in PyTorch
(``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}``, with
the suffix ``_reverse`` for the backward direction), so ``state_dict()``
moves weights to and from PyTorch.

Three implementations compute the same function (``impl=`` or
:func:`~tinygrad_rnn.nn.set_rnn_impl`):

* ``"fused"`` (default): ONE op per layer and direction for the whole
  sequence (``RNNSequenceFn`` / ``LSTMSequenceFn`` / ``GRUSequenceFn``);
* ``"fused_step"``: a loop over the fused one-step ops (``"cell"``, its old
  name, still works and warns);
* ``"composed"``: a loop over cells made of primitive ops.

In the two loops every time step runs inside
``autograd.scope(step=t, layer=k, direction=d)`` so the graph renderer can
cluster the ops by step; the fused op carries ``layer``, ``direction`` and
``steps`` itself. Dropout (``dropout > 0``) is applied to the outputs of every
layer but the last, in training mode only.

Given a :class:`~tinygrad_rnn.nn.utils.rnn.PackedSequence` (variable-length
sequences), the layers return ``(PackedSequence output, h_n)`` as PyTorch
does: every implementation computes only the real steps, ``h_n`` (and
``c_n``) is each sequence's state at its own length, the reverse direction
starts at each sequence's own last step, and ``hx`` is given (and ``h_n``
returned) in the original batch order (see ``forward_packed``).
"""
from __future__ import annotations

import math
import warnings

from .. import autograd
from ..checks import check_int, check_probability
from ..functions import cat, stack
from ..ops.rnn import GRUSequenceFn, LSTMSequenceFn, RNNSequenceFn
from ..ops.rnn_gru_variants import GRUVariantSequenceFn
from . import functional as F
from .module import Module
from .utils.rnn import PackedSequence
from .rnn_cells import (
    GRUCell, LSTMCell, RNNCell, _check_impl, check_gru_input_size, check_gru_variant, check_sizes, check_tensor,
    get_rnn_impl, gru_cell, lstm_cell, rnn_cell, rnn_impl, set_rnn_impl, uniform_parameter, warn_if_used_graph,
)


class RNNBase(Module):
    """What the three layers share: parameters, checks, stacking, directions, dropout, the impl switch.

    A subclass says how many gates its cell has (``gate_count``), how many
    state tensors it carries (``state_names``), and how to run one direction
    of one layer as a whole-sequence op (:meth:`_sequence`) and as one step
    (:meth:`_step`).
    """

    gate_count = 1
    state_names = ("h_0",)

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, impl=None):
        super().__init__()
        name = type(self).__name__
        check_sizes(name, input_size, hidden_size)
        check_int(name, "num_layers", num_layers, minimum=1)
        check_probability(name, "dropout", dropout)
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"{name}: dropout={dropout} is applied between stacked layers only, so it has no effect "
                "with num_layers=1",
                UserWarning,
                stacklevel=3,
            )
        if impl is not None:
            impl = _check_impl(impl, name)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.impl = impl

    def _make_parameters(self, extra_vectors=()):
        """Register PyTorch's parameters layer by layer and direction by direction (PyTorch's order),
        plus ``extra_vectors``: (name, length) of per-layer vectors such as the peepholes."""
        H = self.hidden_size
        bound = 1.0 / math.sqrt(H)
        rows = self.gate_count * H
        self._weight_names = []
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else H * self.num_directions
            per_direction = []
            for direction in range(self.num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = [("weight_ih", (rows, layer_input)), ("weight_hh", (rows, H))]
                if self.bias:
                    shapes += [("bias_ih", (rows,)), ("bias_hh", (rows,))]
                shapes += [(n, (length,)) for n, length in extra_vectors]
                names = []
                for base, shape in shapes:
                    setattr(self, base + suffix, uniform_parameter(shape, bound))
                    names.append(base + suffix)
                per_direction.append(names)
            self._weight_names.append(per_direction)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def all_weights(self):
        """The parameters of each layer and direction, as lists in PyTorch's order."""
        return [[getattr(self, n) for n in names] for per_layer in self._weight_names for names in per_layer]

    def _weights(self, layer, direction):
        return [getattr(self, n) for n in self._weight_names[layer][direction]]

    def _impl(self):
        impl = self.impl if self.impl is not None else get_rnn_impl()
        return _check_impl(impl, type(self).__name__)

    # ------------------------------------------------------------------ checks
    def _check_input(self, input):
        """The input as (T, B, I) and whether it was unbatched."""
        name, I = type(self).__name__, self.input_size
        check_tensor(name, "input", input, self.weight_ih_l0)
        expected = f"(T, B, {I}) or (B, T, {I}) with batch_first=True"
        if input.ndim == 3 and input.shape[2] != I:
            raise ValueError(f"{name}: expected input of shape {expected}, got {input.shape}")
        if input.ndim == 2 and input.shape[1] != I:
            raise ValueError(f"{name}: expected unbatched input of shape (T, {I}), got {input.shape}")
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: expected input of shape {expected}, or unbatched (T, {I}), got {input.shape}")
        unbatched = input.ndim == 2
        if unbatched:
            x = input.unsqueeze(1)
        else:
            x = input.transpose(0, 1) if self.batch_first else input
        if x.shape[0] == 0:
            raise ValueError(f"{name}: expected a sequence of at least one time step, got input of shape {input.shape}")
        return x, unbatched

    def _check_states(self, hx, batch, unbatched, input_shape=None):
        """Each given initial state as (L*D, B, H), or None where not given."""
        name = type(self).__name__
        count = len(self.state_names)
        if hx is None:
            return [None] * count
        if count == 1:
            states = [hx]
        elif isinstance(hx, (tuple, list)) and len(hx) == count:
            states = list(hx)
        else:
            names = ", ".join(self.state_names)
            raise TypeError(f"{name}: expected hx to be a tuple ({names}), got {type(hx).__name__}")
        depth = self.num_layers * self.num_directions
        expected = (depth, self.hidden_size) if unbatched else (depth, batch, self.hidden_size)
        checked = []
        for state_name, state in zip(self.state_names, states):
            check_tensor(name, state_name, state, self.weight_ih_l0)
            if state.shape != expected:
                raise ValueError(
                    f"{name}: expected {state_name} of shape {expected}, got {state.shape}"
                    + self._batch_first_hint(state, expected, input_shape)
                )
            warn_if_used_graph(name, state)
            checked.append(state.unsqueeze(1) if unbatched else state)
        return checked

    def _batch_first_hint(self, state, expected, input_shape):
        """When a state's batch size is the input's *other* leading dimension, say how the input was read."""
        if input_shape is None or len(input_shape) != 3 or len(state.shape) != 3:
            return ""
        other = input_shape[1] if self.batch_first else input_shape[0]
        if (state.shape[0], state.shape[2]) != (expected[0], expected[2]) or state.shape[1] != other:
            return ""
        layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
        return (
            f"; the input {tuple(input_shape)} is read as {layout} (batch_first={self.batch_first}), a batch of "
            f"{expected[1]}: if its batch is dimension {1 if self.batch_first else 0}, create the layer with "
            f"batch_first={not self.batch_first}"
        )

    # ------------------------------------------------------------------ forward
    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return self.forward_packed(input, hx)
        x, unbatched = self._check_input(input)
        states = self._check_states(hx, x.shape[1], unbatched, input.shape)
        impl = self._impl()
        if x.shape[1] == 0:
            impl = "composed"  # an empty batch: the composed cells handle zero rows (the fused kernels need one)
        x, finals = self._layers(x, states, impl)
        if unbatched:
            x = x[:, 0]
            finals = [f[:, 0] for f in finals]
        elif self.batch_first:
            x = x.transpose(0, 1)
        return x, (finals[0] if len(finals) == 1 else tuple(finals))

    def forward_packed(self, packed, hx=None):
        """The layer on a PackedSequence: ``(PackedSequence output, h_n)`` (LSTM: ``(h_n, c_n)``).

        ``hx`` is in the original batch order; it is permuted into the packed
        (length-sorted) order by ``sorted_indices`` and ``h_n`` back by
        ``unsorted_indices``. Each step computes only the sequences still running.
        """
        name = type(self).__name__
        data, batch_sizes, sorted_indices, unsorted_indices = packed
        check_tensor(name, "the packed data", data, self.weight_ih_l0)
        sizes = tuple(int(n) for n in batch_sizes.tolist())
        if data.ndim != 2 or data.shape[1] != self.input_size or data.shape[0] != sum(sizes):
            raise ValueError(
                f"{name}: expected packed data of shape (sum(batch_sizes), {self.input_size}) = "
                f"({sum(sizes)}, {self.input_size}), got {data.shape}"
            )
        states = self._check_states(hx, sizes[0], False)
        if sorted_indices is not None:
            states = [None if s is None else s[:, sorted_indices] for s in states]
        x, finals = self._layers(data, states, self._impl(), sizes)
        if unsorted_indices is not None:
            finals = [f[:, unsorted_indices] for f in finals]
        output = PackedSequence(x, batch_sizes, sorted_indices, unsorted_indices)
        return output, (finals[0] if len(finals) == 1 else tuple(finals))

    def _layers(self, x, states, impl, sizes=None):
        """Every layer and direction over ``x``: time-major (T, B, I), or packed rows (N, I) with the
        ``sizes`` of the running batch at each step. Returns the last layer's output (directions joined
        on the feature dim) and the final states, one list per state, stacked over layers × directions."""
        D = self.num_directions
        finals = [[] for _ in self.state_names]
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(D):
                initial = [self._initial(s, layer * D + direction, x, sizes and sizes[0]) for s in states]
                if impl == "fused":
                    with autograd.scope(layer=layer, direction=direction):
                        output, *last = self._sequence(x, initial, self._weights(layer, direction), layer, direction,
                                                       batch_sizes=sizes)
                elif sizes is None:
                    output, *last = self._loop(x, initial, layer, direction, impl)
                else:
                    output, *last = self._loop_packed(x, initial, layer, direction, impl, sizes)
                outputs.append(output)
                for store, value in zip(finals, last):
                    store.append(value)
            x = outputs[0] if D == 1 else cat(outputs, dim=outputs[0].ndim - 1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x, [stack(values, dim=0) for values in finals]

    def _loop_packed(self, x, initial, layer, direction, impl, sizes):
        """One direction of one layer on packed rows ``x`` as a loop of cell steps over the running
        sequences only; returns (output (N, H), *final states (B, H))."""
        weights = self._weights(layer, direction)
        step_impl = "composed" if impl == "composed" else "fused"
        T = len(sizes)
        offsets = [sum(sizes[:t]) for t in range(T)]
        outputs = [None] * T
        states, done = [s[:0] for s in initial], []  # the running sequences' states; finished ones, last first
        for t in (range(T - 1, -1, -1) if direction else range(T)):
            n = sizes[t]
            if n < states[0].shape[0]:  # forward: the sequences past n ended at step t - 1
                done.append([s[n:] for s in states])
                states = [s[:n] for s in states]
            elif n > states[0].shape[0]:  # reverse: the sequences past the running ones start here
                have = states[0].shape[0]
                states = [s0[:n] if have == 0 else cat([s, s0[have:n]], dim=0) for s, s0 in zip(states, initial)]
            with autograd.scope(step=t, layer=layer, direction=direction):
                x_t = x[offsets[t] : offsets[t] + n]
                x_t.name = "x"
                states = self._step(x_t, states, weights, step_impl)
            outputs[t] = states[0]
        if done:
            states = [cat([s] + [d[k] for d in reversed(done)], dim=0) for k, s in enumerate(states)]
        return (cat(outputs, dim=0), *states)

    def _initial(self, state, index, x, batch=None):
        if state is not None:
            return state[index]
        return x.new_zeros(x.shape[1] if batch is None else batch, self.hidden_size)

    def _loop(self, x, states, layer, direction, impl):
        """One direction of one layer as a loop of cell steps; returns (output (T, B, H), *final states)."""
        weights = self._weights(layer, direction)
        step_impl = "composed" if impl == "composed" else "fused"
        T = x.shape[0]
        outputs = [None] * T
        for t in (range(T - 1, -1, -1) if direction else range(T)):
            with autograd.scope(step=t, layer=layer, direction=direction):
                x_t = x[t]
                x_t.name = "x"  # drawn as x_t in the step's cluster
                states = self._step(x_t, states, weights, step_impl)
            outputs[t] = states[0]
        return (stack(outputs, dim=0), *states)

    def _sequence(self, x, states, weights, layer, direction, batch_sizes=None):
        raise NotImplementedError

    def _step(self, x_t, states, weights, impl):
        raise NotImplementedError

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        if self.impl is not None:
            text += f", impl={self.impl!r}"
        return text


class RNN(RNNBase):
    """A stacked Elman RNN: for each layer and time step h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    (relu with ``nonlinearity="relu"``); layer k > 0 reads the (dropped-out) outputs of layer k-1.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, impl=None)``; ``forward(input, h_0=None) -> (output, h_n)``.
    """

    gate_count = 1

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, impl=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, impl)
        self.nonlinearity = nonlinearity
        self._make_parameters()

    def _sequence(self, x, states, weights, layer, direction, batch_sizes=None):
        return RNNSequenceFn.apply(
            x, states[0], *weights, bias=self.bias, nonlinearity=self.nonlinearity, layer=layer, direction=direction,
            batch_sizes=batch_sizes,
        )

    def _step(self, x_t, states, weights, impl):
        w_ih, w_hh, *biases = weights
        return [rnn_cell(x_t, states[0], w_ih, w_hh, *biases, nonlinearity=self.nonlinearity, impl=impl)]

    def extra_repr(self):
        return super().extra_repr() + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class LSTM(RNNBase):
    """A stacked LSTM, PyTorch's equations and gate order (i, f, g, o); for each layer and step::

        i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)     f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)  o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                     h_t = o_t ⊙ tanh(c_t)

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, peephole=False, coupled=False, impl=None)``;
    ``forward(input, (h_0, c_0)=None) -> (output, (h_n, c_n))``.

    ``peephole`` adds ``weight_ch_l{k}[_reverse]`` of shape (3H,) and
    ``coupled`` ties the input gate to 1 − f, exactly as on
    :class:`~tinygrad_rnn.nn.LSTMCell` (same 4-gate layout; such models are
    not PyTorch's LSTM and cannot be loaded into it). The whole-sequence op
    covers every variant. PyTorch's ``proj_size`` is not supported.
    """

    gate_count = 4
    state_names = ("h_0", "c_0")

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, peephole=False, coupled=False, impl=None):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, impl)
        self.peephole = bool(peephole)
        self.coupled = bool(coupled)
        self._make_parameters([("weight_ch", 3 * hidden_size)] if self.peephole else ())

    def _sequence(self, x, states, weights, layer, direction, batch_sizes=None):
        return LSTMSequenceFn.apply(
            x, states[0], states[1], *weights, bias=self.bias, peephole=self.peephole, coupled=self.coupled,
            layer=layer, direction=direction, batch_sizes=batch_sizes,
        )

    def _step(self, x_t, states, weights, impl):
        w_ih, w_hh = weights[:2]
        b_ih, b_hh = weights[2:4] if self.bias else (None, None)
        w_ch = weights[-1] if self.peephole else None
        h, c = lstm_cell(x_t, states[0], states[1], w_ih, w_hh, b_ih, b_hh, w_ch, self.coupled, impl)
        return [h, c]

    def extra_repr(self):
        text = super().extra_repr()
        text += ", peephole=True" if self.peephole else ""
        return text + (", coupled=True" if self.coupled else "")


class GRU(RNNBase):
    """A stacked GRU, PyTorch's equations and gate order (r, z, n); for each layer and step::

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)     z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, variant="pytorch", impl=None)``; ``forward(input, h_0=None) -> (output, h_n)``.

    ``variant`` selects a lecture GRU ("reset_before", "no_reset", "mgu", "mut1", "mut2", "mut3"),
    with the equations and row use on :class:`~tinygrad_rnn.nn.GRUCell`, in every layer and
    direction (same parameters; such a model is not PyTorch's GRU and cannot be loaded into it).
    The fused implementation runs them as ``GRUVariantSequenceFn``. MUT1 and MUT2 add each layer's
    input to a gate, so every layer's input size must equal ``hidden_size`` (no bidirectional
    stacks for them).
    """

    gate_count = 3

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, variant="pytorch", impl=None):
        check_gru_variant("GRU", variant)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, impl)
        check_gru_input_size("GRU", variant, input_size, hidden_size)
        if num_layers > 1 and self.bidirectional:
            check_gru_input_size("GRU", variant, 2 * hidden_size, hidden_size,
                                 "the input size of every layer (bidirectional=True: layers above the first read "
                                 "2 * hidden_size features)")
        self.variant = variant
        self._make_parameters()

    def _sequence(self, x, states, weights, layer, direction, batch_sizes=None):
        op = GRUSequenceFn if self.variant == "pytorch" else GRUVariantSequenceFn
        options = {} if self.variant == "pytorch" else {"variant": self.variant}
        return op.apply(
            x, states[0], *weights, bias=self.bias, layer=layer, direction=direction, batch_sizes=batch_sizes,
            **options,
        )

    def _step(self, x_t, states, weights, impl):
        w_ih, w_hh, *biases = weights
        return [gru_cell(x_t, states[0], w_ih, w_hh, *biases, impl=impl, variant=self.variant)]

    def extra_repr(self):
        return super().extra_repr() + (f", variant={self.variant!r}" if self.variant != "pytorch" else "")


__all__ = [
    "RNN", "LSTM", "GRU", "RNNBase", "RNNCell", "LSTMCell", "GRUCell", "set_rnn_impl", "get_rnn_impl", "rnn_impl",
]
