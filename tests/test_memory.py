"""Memory: nothing survives a training step, a carried graph is reported, and BPTT's peak stays small.

Measured with ``tracemalloc``: NumPy reports every array's data buffer to it
(in its own domain, ``numpy.lib.tracemalloc_domain``), so array memory is
counted exactly, apart from the Python objects around it.
"""
from __future__ import annotations

import gc
import tracemalloc
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import autograd, nn, optim
from tinygrad_rnn.nn import functional as F
from tinygrad_rnn.nn.utils import detach_state

ARRAYS = tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)
PYTHON_OBJECTS = [
    tracemalloc.DomainFilter(False, np.lib.tracemalloc_domain),
    # Python objects allocated by the framework's own code; other libraries imported in the same
    # process (torch, for the comparison tests) fill caches of their own that are not ours to count.
    tracemalloc.Filter(True, "*/tinygrad_rnn/*"),
]
#: Python-level caches that fill up during the first few hundred steps: CPython's and NumPy's
#: small-object free lists. Measured on the composed LSTM: +5.4 KB from step 10 to 100 (mostly ~50-byte
#: blocks allocated under ``ndarray.item()`` for ``loss.item()``), +2.7 KB over the next 100 steps,
#: +1.5 KB over the 200 after that: a cache filling up, not a leak. A leak of graph objects is caught
#: exactly by counting live tensors and functions, and a leak of arrays by the array bytes.
PYTHON_SLACK = 16 * 1024


@pytest.fixture
def traced():
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def live_graph_objects():
    """How many Tensors and tape Functions are alive (after a full garbage collection)."""
    gc.collect()
    counts = {"Tensor": 0, "Function": 0}
    for obj in gc.get_objects():
        kind = type(obj)  # not isinstance(): that would read __class__, which some lazy modules warn about
        if issubclass(kind, tr.Tensor):
            counts["Tensor"] += 1
        elif issubclass(kind, autograd.Function):
            counts["Function"] += 1
    return counts


def traced_bytes():
    """(array bytes, other Python bytes) alive now, after a full garbage collection."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    arrays = sum(t.size for t in snapshot.filter_traces([ARRAYS]).traces)
    python = sum(t.size for t in snapshot.filter_traces(PYTHON_OBJECTS).traces)
    return arrays, python


class CharModel(nn.Module):
    """Embedding → LSTM → Linear, the shape of a character language model."""

    def __init__(self, vocab, hidden, impl):
        super().__init__()
        self.embed = nn.Embedding(vocab, 8)
        self.lstm = nn.LSTM(8, hidden, impl=impl)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        output, state = self.lstm(self.embed(x), state)
        return self.head(output), state


def _trainer(impl, vocab=12):
    tr.manual_seed(0)
    model = CharModel(vocab, 16, impl)
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    starts = np.random.default_rng(0).integers(0, vocab, size=(50, 1, 4))
    batches = (starts + np.arange(11)[None, :, None]) % vocab  # counting sequences: learnable
    carried = {"state": None}

    def step(i):
        tokens = batches[i % len(batches)]
        x, y = tr.tensor(tokens[:-1]), tr.tensor(tokens[1:])
        logits, state = model(x, detach_state(carried["state"]))
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        carried["state"] = state
        return loss.item()

    return step


@pytest.mark.parametrize("impl", ["fused", "composed"])
def test_memory_after_100_training_steps_equals_memory_after_10(traced, impl):
    step = _trainer(impl)
    losses = [step(i) for i in range(10)]
    arrays_10, python_10 = traced_bytes()
    objects_10 = live_graph_objects()
    losses += [step(i) for i in range(10, 100)]
    arrays_100, python_100 = traced_bytes()
    objects_100 = live_graph_objects()
    assert losses[-1] < losses[0]  # it trains
    assert arrays_100 == arrays_10, f"{arrays_100 - arrays_10} bytes of arrays kept alive by 90 more steps"
    assert objects_100 == objects_10
    assert abs(python_100 - python_10) < PYTHON_SLACK, f"{python_100 - python_10} bytes of Python objects"


def test_a_training_step_creates_no_reference_cycles():
    """With the cycle collector off, every step's graph must be freed by reference counting alone."""
    step = _trainer("fused_step")
    step(0)
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(1, 6):
            step(i)
        unreachable = gc.collect()
    finally:
        if was_enabled:
            gc.enable()
    assert unreachable == 0


# ---------------------------------------------------------------------- carried hidden state
def _carry_without_detach(layer, use, retain_graph, steps=4):
    """Feed ``layer`` its own previous state, batch after batch, never detaching it."""
    state, losses = None, []
    for _ in range(steps):
        output, state = layer(tr.randn(5, 2, 3), state)
        h_n, c_n = state
        loss = {"output": output.sum(), "h_n": h_n.sum(), "c_n": c_n.sum()}[use]
        loss.backward(retain_graph=retain_graph)
        losses.append(loss)
    return losses


@pytest.fixture
def fresh_warning(monkeypatch):
    """The carried-graph warning is given once per process: let each test see it again."""
    monkeypatch.setattr(autograd.carried, "_warned_released", [False])


@pytest.mark.parametrize("impl", ["fused", "composed"])
@pytest.mark.parametrize("use", ["output", "h_n", "c_n"])
def test_a_carried_state_without_detach_warns_once_and_points_to_detach_state(fresh_warning, impl, use):
    lstm = nn.LSTM(3, 4, impl=impl)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(tr.GraphReleasedError, match=r"detach_state"):
            _carry_without_detach(lstm, use, retain_graph=False)
    carried = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(carried) == 1
    message = str(carried[0].message)
    assert message.startswith("LSTM: the initial state carries the graph of an earlier batch")
    assert "tinygrad_rnn.nn.utils.detach_state(state)" in message
    assert carried[0].filename == __file__  # it points at the user's line, not at the framework


@pytest.mark.parametrize("use", ["output", "h_n"])
def test_retain_graph_does_not_hide_an_ever_growing_graph(fresh_warning, use):
    """``retain_graph=True`` (what other frameworks' error suggests) makes the graph grow every batch."""
    lstm = nn.LSTM(3, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _carry_without_detach(lstm, use, retain_graph=True, steps=5)
    carried = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(carried) == 1
    assert "retain_graph=True does not fix this" in str(carried[0].message)
    assert "detach_state" in str(carried[0].message)


def test_detach_state_between_batches_keeps_quiet_and_bounded(fresh_warning, traced):
    lstm = nn.LSTM(3, 4)
    state = None
    sizes = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(30):
            output, state = lstm(tr.randn(5, 2, 3), detach_state(state))
            (output.sum() + state[0].sum()).backward()
            if i in (9, 29):
                sizes.append(traced_bytes()[0])
    assert sizes[0] == sizes[1]


def test_sampling_under_no_grad_from_a_trained_state_does_not_warn(fresh_warning):
    """A generation loop under no_grad() records nothing onto the old graph: no warning (min-char-rnn does this)."""
    lstm = nn.LSTM(3, 4)
    output, state = lstm(tr.randn(5, 2, 3))
    output.sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tr.no_grad():
            for _ in range(3):
                _, state = lstm(tr.randn(1, 2, 3), state)
    assert state[0].grad_fn is None


def test_a_cell_loop_carrying_its_state_warns_too(fresh_warning):
    cell = nn.GRUCell(3, 4)
    h = None
    with pytest.warns(RuntimeWarning, match=r"^GRUCell: the initial state carries .*detach_state"):
        for _ in range(2):
            h = cell(tr.randn(2, 3), h)
            h.sum().backward(retain_graph=True)


# ------------------------------------------------------------------ peak memory of BPTT
def _peak_during_backward(layer, x):
    """(bytes alive after forward, peak bytes during forward + backward), both above the baseline."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        output, _ = layer(x)
        loss = output.sum()
        after_forward = tracemalloc.get_traced_memory()[0] - base
        loss.backward()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return after_forward, peak


def test_peak_memory_of_a_10000_step_rnn_backward_is_within_twice_its_hidden_states(capsys):
    """nn.RNN (hidden 64, batch 8, T = 10,000), the fused whole-sequence op, full BPTT.

    The activations BPTT must keep are the hidden states h_0 .. h_T: (T+1)·B·H·4 bytes = 20.5 MB.
    The loss is ``output.sum()``, whose gradient is a broadcast view: nothing but BPTT allocates.
    The peak of forward + backward (above what existed before: the input and the weights) must stay
    within 2× those states.
    """
    T, B, H, I = 10_000, 8, 64, 16
    tr.manual_seed(0)
    rnn = nn.RNN(I, H)
    x = tr.randn(T, B, I)
    states = (T + 1) * B * H * 4
    after_forward, peak = _peak_during_backward(rnn, x)
    with capsys.disabled():
        print(f"\n[memory] RNN T={T} B={B} H={H}: hidden states {states / 2**20:.1f} MiB, kept after forward "
              f"{after_forward / states:.2f}x, peak forward+backward {peak / states:.2f}x")
    assert after_forward <= 1.02 * states
    assert peak <= 2 * states
    assert rnn.weight_hh_l0.grad is not None and np.isfinite(rnn.weight_hh_l0.grad.numpy()).all()


@pytest.mark.parametrize("layer_cls, saved_per_step", [(nn.LSTM, 6), (nn.GRU, 5)])
def test_peak_memory_of_lstm_and_gru_backward_is_within_twice_what_they_save(capsys, layer_cls, saved_per_step):
    """The gated layers save more per step (LSTM: h, c and the 4 gates = 6·B·H; GRU: h, the 3 gates and
    W_hn h + b_hn = 5·B·H); BPTT's peak must stay within 2× what the forward saved."""
    T, B, H, I = 2_000, 8, 64, 16
    tr.manual_seed(0)
    layer = layer_cls(I, H)
    x = tr.randn(T, B, I)
    saved = (saved_per_step * T + 2) * B * H * 4
    after_forward, peak = _peak_during_backward(layer, x)
    with capsys.disabled():
        print(f"\n[memory] {layer_cls.__name__} T={T} B={B} H={H}: saved {saved / 2**20:.1f} MiB, kept after forward "
              f"{after_forward / saved:.2f}x, peak forward+backward {peak / saved:.2f}x")
    assert after_forward <= 1.02 * saved
    assert peak <= 2 * saved
