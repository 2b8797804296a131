"""The lecture's RNN diagrams, computed: a tiny real model per architecture, run and drawn.

``build_lecture_graph(kind)`` builds a small model of one of the classic
shapes, runs it on random data (and ``backward()`` when ``grads=True``), and
returns ``draw_graph`` of its loss. It builds models, so it lives beside the
CLI (``tinygrad-rnn graph KIND``), not in ``viz/``, which only draws:

* ``many-to-many``: an RNN reads x_1..x_T and a Linear head gives y_t at every step; each step has
  its own loss L_t (cross-entropy of y_t against that step's target) and L = Σ_t L_t, as the lecture draws it;
* ``many-to-one``: the head reads only the last hidden state (sequence classification);
* ``one-to-many``: one input sets the initial state; each step feeds back its previous output;
* ``seq2seq``: an ``encoder`` RNN's final state starts a ``decoder`` RNN (teacher forcing);
* ``attention``: a decoder cell attends (Bahdanau) over the encoder's outputs at every step;
* ``bidirectional``: a forward and a reverse RNN over the sequence, outputs concatenated;
* ``stacked``: a two-layer RNN, the second layer reading the first one's outputs.
"""
from __future__ import annotations

from . import autograd
from .checks import check_int
from .factories import manual_seed, randint, randn, zeros
from .functions import cat, stack
from .nn import (
    GRU, LSTM, RNN, AdditiveAttention, GRUCell, LSTMCell, Linear, Module, MSELoss, RNNCell,
)
from .nn.functional import cross_entropy
from .viz import draw_graph

KINDS = ("many-to-many", "many-to-one", "one-to-many", "seq2seq", "attention", "bidirectional", "stacked")
CELLS = ("rnn", "lstm", "gru")
_LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
_CELL_MODULES = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}
INPUT, HIDDEN, OUTPUT, BATCH = 3, 4, 2, 2


def _hidden(state):
    """The hidden part of a layer's or cell's state (an LSTM's is ``(h, c)``)."""
    return state[0] if isinstance(state, tuple) else state


class SequenceModel(Module):
    """An RNN layer and a Linear head on its outputs (many-to-many) or its last hidden state (many-to-one)."""

    def __init__(self, cell, last_only=False, num_layers=1, bidirectional=False, impl=None):
        super().__init__()
        self.last_only = last_only
        self.rnn = _LAYERS[cell](INPUT, HIDDEN, num_layers=num_layers, bidirectional=bidirectional, impl=impl)
        self.head = Linear(HIDDEN * (2 if bidirectional else 1), OUTPUT)

    def forward(self, x):
        output, state = self.rnn(x)
        if self.last_only:
            return self.head(_hidden(state)[-1])
        return self.head(output)


class Generator(Module):
    """One-to-many: ``h_0 = tanh(init(x))``, then each step reads the previous output y_{t-1} (y_0 = 0)."""

    def __init__(self, cell, steps, impl=None):
        super().__init__()
        self.steps = steps
        self.lstm = cell == "lstm"
        self.init = Linear(INPUT, HIDDEN)
        self.cell = _CELL_MODULES[cell](OUTPUT, HIDDEN, impl=impl)
        self.head = Linear(HIDDEN, OUTPUT)

    def forward(self, x):
        h = self.init(x).tanh()
        state = (h, zeros(*h.shape)) if self.lstm else h
        y = zeros(x.shape[0], OUTPUT)
        outputs = []
        for t in range(self.steps):
            with autograd.scope(step=t):
                state = self.cell(y, state)
                y = self.head(_hidden(state))
                y.name = "y"
            outputs.append(y)
        return stack(outputs)


class Seq2Seq(Module):
    """Encoder-decoder: the encoder's final state is the decoder's initial state."""

    def __init__(self, cell, impl=None):
        super().__init__()
        self.encoder = _LAYERS[cell](INPUT, HIDDEN, impl=impl)
        self.decoder = _LAYERS[cell](OUTPUT, HIDDEN, impl=impl)
        self.head = Linear(HIDDEN, OUTPUT)

    def forward(self, source, target_in):
        _, state = self.encoder(source)
        output, _ = self.decoder(target_in, state)
        return self.head(output)


class AttentionSeq2Seq(Module):
    """Encoder-decoder with Bahdanau attention: each decoder step reads [y_{t-1}; context_t]."""

    def __init__(self, cell, impl=None):
        super().__init__()
        self.lstm = cell == "lstm"
        self.encoder = _LAYERS[cell](INPUT, HIDDEN, impl=impl)
        self.attention = AdditiveAttention(HIDDEN, HIDDEN, HIDDEN)
        self.decoder = _CELL_MODULES[cell](OUTPUT + HIDDEN, HIDDEN, impl=impl)
        self.head = Linear(2 * HIDDEN, OUTPUT)

    def forward(self, source, target_in):
        keys, state = self.encoder(source)
        keys = keys.transpose(0, 1)
        state = (state[0][-1], state[1][-1]) if self.lstm else state[-1]
        outputs = []
        for t in range(target_in.shape[0]):
            with autograd.scope(step=t):
                context, weights = self.attention(_hidden(state), keys)
                weights.name = "a"
                state = self.decoder(cat([target_in[t], context], dim=1), state)
                y = self.head(cat([_hidden(state), context], dim=1))
                y.name = "y"
            outputs.append(y)
        return stack(outputs)


def _model_and_inputs(kind, cell, steps, impl):
    if kind in ("many-to-many", "many-to-one", "bidirectional", "stacked"):
        model = SequenceModel(cell, last_only=kind == "many-to-one", num_layers=2 if kind == "stacked" else 1,
                              bidirectional=kind == "bidirectional", impl=impl)
        return model, (randn(steps, BATCH, INPUT),)
    if kind == "one-to-many":
        return Generator(cell, steps, impl), (randn(BATCH, INPUT),)
    model = Seq2Seq(cell, impl) if kind == "seq2seq" else AttentionSeq2Seq(cell, impl)
    return model, (randn(steps, BATCH, INPUT), randn(steps, BATCH, OUTPUT))


def per_step_loss(prediction, targets):
    """L = Σ_t L_t for ``prediction`` (T, B, C) logits and ``targets`` (T, B) class indices.

    Each L_t (cross-entropy of y_t against step t's targets) is computed inside
    ``autograd.scope(step=t)`` and named ``"L"``, and y_t is named ``"y"``, so
    the drawing shows y_t → L_t in every time step (``L_t`` once folded) and
    the arrows of all steps meeting in the total L.
    """
    losses = []
    for t in range(prediction.shape[0]):
        with autograd.scope(step=t):
            y = prediction[t]
            y.name = "y"
            target = targets[t]
            target.name = "target"
            step_loss = cross_entropy(y, target)
            step_loss.name = "L"
        losses.append(step_loss)
    total = stack(losses).sum()
    total.name = "L"
    return total


def run_lecture_model(caller, kind, steps=4, cell="rnn", *, impl=None, seed=0):
    """Check the arguments (errors name ``caller``), build the tiny model of ``kind`` and run it
    forward on random inputs: ``(model, loss)`` (a loss L_t per step summed for many-to-many)."""
    if kind not in KINDS:
        raise ValueError(f"{caller}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if cell not in CELLS:
        raise ValueError(f"{caller}: cell must be one of {', '.join(CELLS)}, got {cell!r}")
    check_int(caller, "steps", steps, minimum=1)
    manual_seed(seed)
    model, inputs = _model_and_inputs(kind, cell, steps, impl)
    prediction = model(*inputs)
    if kind == "many-to-many":
        return model, per_step_loss(prediction, randint(0, OUTPUT, prediction.shape[:2]))
    return model, MSELoss()(prediction, randn(*prediction.shape))


def build_lecture_graph(kind, steps=4, cell="rnn", mode="unrolled", grads=False, *, impl=None, expand_fused=False,
                        max_nodes=300, seed=0, rankdir=None):
    """Build, run and draw a tiny model of architecture ``kind`` (see :data:`KINDS`).

    ``cell`` is ``"rnn"``, ``"lstm"`` or ``"gru"``; ``steps`` the sequence
    length; ``mode`` ``"unrolled"`` or ``"folded"``. With ``grads=True`` the
    loss is backpropagated inside ``retain_grads()`` and the drawing is shaded
    by gradient norm. ``impl`` picks the recurrent implementation (``"fused"``,
    ``"cell"`` or ``"composed"``; default: the global one). Fused cells and
    attention calls are one node each unless ``expand_fused=True``; ``rankdir``
    asks for the boxed layered layout instead of the lecture one (see ``draw_graph``).
    Returns a ``graphviz.Digraph``.
    """
    with autograd.retain_grads() if grads else autograd.enable_grad():
        model, loss = run_lecture_model("build_lecture_graph", kind, steps, cell, impl=impl, seed=seed)
        if grads:
            loss.backward()
    return draw_graph(loss, mode=mode, show_grads=grads, expand_fused=expand_fused, max_nodes=max_nodes,
                      model=model, rankdir=rankdir)
