"""Fused cells as the lectures draw them: the LSTM variants' gate templates (``expand_fused=True``), and the
whole ‖∂L/∂c_t‖ that fused LSTMs keep inside ``retain_grads()``, checked against the composed cell."""
import re

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn
from tinygrad_rnn.examples_gradients import state_gradient_norms
from tinygrad_rnn.nn.utils.rnn import pack_padded_sequence
from tinygrad_rnn.viz import draw_graph
from tinygrad_rnn.viz.grads import GradNorms

VARIANTS = [{}, {"peephole": True}, {"coupled": True}, {"peephole": True, "coupled": True}]
IDS = ["plain", "peephole", "coupled", "peephole+coupled"]


# ------------------------------------------------------------------ DOT helpers
def _nodes(src):
    """{node id: first line of its label}."""
    out = {}
    for m in re.finditer(r"^\s*(\w+) \[label=<(.*?)(?:<br/>|> )", src, re.M):
        out[m.group(1)] = m.group(2)
    return out


def _edges(src):
    """[(src title, dst title, label)] of every drawn arrow (an arrow written ``b -> a [dir=back]``
    runs from a to b; invisible layout arrows are left out), titles by the nodes' first label line."""
    nodes = _nodes(src)
    edges = []
    for m in re.finditer(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?$", src, re.M):
        a, b, attrs = m.group(1), m.group(2), m.group(3) or ""
        if "style=invis" in attrs:
            continue
        if "dir=back" in attrs:
            a, b = b, a
        label = re.search(r'label=("[^"]*"|\w+)', attrs)
        edges.append((nodes.get(a, a), nodes.get(b, b), label.group(1).strip('"') if label else ""))
    return edges


def _expanded(rankdir=None, **options):
    tr.manual_seed(0)
    model = nn.LSTM(3, 4, **options)
    out, _ = model(tr.randn(2, 1, 3))
    return draw_graph(out.sum(), expand_fused=True, rankdir=rankdir).source


# ------------------------------------------------------------------ templates
@pytest.mark.parametrize("impl", ["fused", "fused_step"])
def test_coupled_lstm_has_no_input_gate_node(impl):
    src = _expanded(coupled=True, impl=impl)
    titles = list(_nodes(src).values())
    assert not any(t.startswith("i = ") for t in titles)
    for gate in ("f = σ(·)", "g = tanh(·)", "o = σ(·)", "c′ = f ⊙ c + (1 − f) ⊙ g", "h′ = o ⊙ tanh(c′)"):
        assert titles.count(gate) == 2, gate
    coupling = [e for e in _edges(src) if e[2] == "i = 1 − f"]
    assert len(coupling) == 2 and all(e[:2] == ("f = σ(·)", "c′ = f ⊙ c + (1 − f) ⊙ g") for e in coupling)
    assert src.count('point-size="9">LSTMCell(coupled)</font>') == 2  # no boxes: the first gate says it
    assert _expanded(rankdir="LR", coupled=True, impl=impl).count('label="LSTMCell(coupled)"') == 2  # boxed


@pytest.mark.parametrize("impl", ["fused", "fused_step"])
def test_peephole_lstm_draws_its_peephole_edges(impl):
    src = _expanded(peephole=True, impl=impl)
    i, f, o = "i = σ(· + w_ci ⊙ c)", "f = σ(· + w_cf ⊙ c)", "o = σ(· + w_co ⊙ c′)"
    c_new = "c′ = f ⊙ c + i ⊙ g"
    titles = list(_nodes(src).values())
    for gate in (i, f, o, c_new):
        assert titles.count(gate) == 2, gate
    edges = _edges(src)
    assert edges.count((c_new, o, "w_co")) == 2
    # c_{t-1} (the initial c, then step 0's c_t) into i and f, each arrow named by its weight
    c_prev_edges = [e for e in edges if e[0] in ("initial c", "c<sub>0</sub>") and e[2]]
    assert sorted(e[1:] for e in c_prev_edges) == sorted([(i, "w_ci"), (f, "w_cf")] * 2)
    assert sorted(e[1] for e in edges if e[0] == "weight_ch_l0") == sorted([i, f, o] * 2)
    assert src.count('point-size="9">LSTMCell(peephole)</font>') == 2  # no boxes: the first gate says it
    assert _expanded(rankdir="LR", peephole=True, impl=impl).count('label="LSTMCell(peephole)"') == 2  # boxed


def test_peephole_lstm_cell_without_bias_routes_each_weight():
    tr.manual_seed(0)
    cell = nn.LSTMCell(3, 4, bias=False, peephole=True, impl="fused")
    h, c = cell(tr.randn(2, 3))
    edges = _edges(draw_graph((h, c), expand_fused=True).source)
    gates = "W_ih x + b_ih + W_hh h + b_hh"
    assert sorted(e[1] for e in edges if e[0] == "weight_ch") == sorted(
        ["i = σ(· + w_ci ⊙ c)", "f = σ(· + w_cf ⊙ c)", "o = σ(· + w_co ⊙ c′)"])
    assert [e[1] for e in edges if e[0] in ("weight_ih", "weight_hh")] == [gates, gates]


def test_peephole_coupled_lstm_peeks_only_into_f_and_o():
    src = _expanded(peephole=True, coupled=True)
    edges = _edges(src)
    titles = list(_nodes(src).values())
    assert not any(t.startswith("i = ") for t in titles)
    f, o = "f = σ(· + w_cf ⊙ c)", "o = σ(· + w_co ⊙ c′)"
    assert sorted(e[1] for e in edges if e[0] == "weight_ch_l0") == sorted([f, o] * 2)
    assert sorted(e[2] for e in edges if e[2] in ("w_ci", "w_cf", "w_co")) == ["w_cf"] * 2 + ["w_co"] * 2


def test_plain_lstm_template_unchanged_and_variants_label_the_fused_node():
    src = _expanded()
    assert not any(e[2] for e in _edges(src) if e[2] not in ("", "<y<sub>0</sub>>", "<y<sub>1</sub>>"))
    assert "i = σ(·)" in _nodes(src).values()
    tr.manual_seed(0)
    out, _ = nn.LSTM(3, 4, peephole=True, coupled=True)(tr.randn(2, 1, 3))
    folded = draw_graph(out.sum()).source
    assert list(_nodes(folded).values()).count("LSTMCell(peephole, coupled)") == 2


# ------------------------------------------------------------------ ‖∂L/∂c_t‖
def _pair(seed, **options):
    """A float64 nn.LSTM (fused whole-sequence op) and an nn.LSTMCell (composed) with the same weights."""
    tr.manual_seed(seed)
    layer = nn.LSTM(3, 4, **options).double()
    cell = nn.LSTMCell(3, 4, impl="composed", **options).double()
    state = {k.replace("_l0", ""): v for k, v in layer.state_dict().items()}
    cell.load_state_dict(state)
    return layer, cell


def _composed_cell_grads(cell, x, weights, c_weight):
    """‖∂L/∂c_t‖ (t = 1..T) of L = Σ_t ⟨w_t, h_t⟩ + ⟨c_weight, c_T⟩ on the composed cell, c_t retaining grads."""
    state, cs, loss = None, [], 0
    for t in range(x.shape[0]):
        state = cell(x[t], state)
        state[1].retain_grad()
        cs.append(state[1])
        loss = loss + (state[0] * weights[t]).sum()
    (loss + (state[1] * c_weight).sum()).backward()
    return np.array([np.linalg.norm(c.grad.numpy()) for c in cs])


@pytest.mark.parametrize("options", VARIANTS, ids=IDS)
def test_fused_lstm_keeps_whole_cell_state_grad_norms(options):
    layer, cell = _pair(1, **options)
    x = tr.randn(6, 2, 3, dtype="float64")
    weights = tr.randn(6, 2, 4, dtype="float64")
    c_weight = tr.randn(2, 4, dtype="float64")
    with tr.retain_grads():
        out, (h_n, c_n) = layer(x)
        loss = (out * weights).sum() + (c_n * c_weight).sum()
    loss.backward()
    fn = out.grad_fn
    drawn = GradNorms.cell_steps(fn)
    expected = _composed_cell_grads(cell, x, weights, c_weight)
    np.testing.assert_allclose(drawn, expected, rtol=1e-6, atol=1e-12)
    assert len(GradNorms.steps(fn)) == 6  # ‖∂L/∂h_t‖ are still kept alongside


def test_cell_state_norms_agree_with_the_vanishing_gradients_example():
    layer, cell = _pair(2, peephole=True)
    x = tr.randn(8, 3, 3, dtype="float64")
    with tr.retain_grads():
        out, _ = layer(x)
    (out[-1].sum() / x.shape[1]).backward()
    example = state_gradient_norms(cell, x)["c"]
    np.testing.assert_allclose(GradNorms.cell_steps(out.grad_fn), example, rtol=1e-6, atol=1e-12)


def test_reverse_and_packed_lstm_record_cell_state_norms():
    tr.manual_seed(3)
    layer = nn.LSTM(3, 4, bidirectional=True).double()
    x = tr.randn(5, 3, 3, dtype="float64")
    with tr.retain_grads():
        out, _ = layer(x)
    out.sum().backward()
    fns = {f.direction: f for f in _sequence_fns(out)}
    assert sorted(fns) == [0, 1] and all(len(GradNorms.cell_steps(f)) == 5 for f in fns.values())
    # packed: the norms over each step's running rows equal the padded run's with the padding cut off
    lengths = [5, 3, 2]
    with tr.retain_grads():
        packed_out, _ = layer(pack_padded_sequence(x, lengths))
    packed_out.data.sum().backward()
    packed = {f.direction: f for f in _sequence_fns(packed_out.data)}
    for direction in (0, 1):
        norms = []
        for t in range(5):
            running = [b for b, n in enumerate(lengths) if t < n]
            norms.append(_one_direction_norm(layer, x, lengths, direction, t, running))
        np.testing.assert_allclose(GradNorms.cell_steps(packed[direction]), norms, rtol=1e-6, atol=1e-12)


def _one_direction_norm(layer, x, lengths, direction, t, running):
    """‖∂L/∂c_t‖ over the running sequences, each sequence run alone (unpacked) through the fused layer."""
    total = 0.0
    for b in running:
        seq = x[: lengths[b], b : b + 1]
        with tr.retain_grads():
            out, _ = layer(seq)
        out.sum().backward()
        fn = [f for f in _sequence_fns(out) if f.direction == direction][0]
        total += GradNorms.cell_steps(fn)[t] ** 2
    return np.sqrt(total)


def _sequence_fns(out):
    """The whole-sequence ops behind ``out``."""
    found, stack, seen = [], [out.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if getattr(fn, "draw_as", None) == "sequence":
            found.append(fn)
        stack.extend(p[0] for p in fn.next if type(p) is tuple)
    return found


def test_no_cell_state_norms_outside_retain_grads():
    layer, _ = _pair(4)
    out, _ = layer(tr.randn(4, 2, 3, dtype="float64"))
    out.sum().backward()
    assert out.grad_fn.trace.step_cell_grad_norms is None and out.grad_fn.trace.step_grad_norms is None


# ------------------------------------------------------------------ the fused LSTMCell's c'
@pytest.mark.parametrize("options", VARIANTS, ids=IDS)
def test_fused_lstm_cell_retained_c_has_the_h_path(options):
    tr.manual_seed(5)
    fused = nn.LSTMCell(3, 4, impl="fused", **options).double()
    composed = nn.LSTMCell(3, 4, impl="composed", **options).double()
    composed.load_state_dict(fused.state_dict())
    x = tr.randn(4, 2, 3, dtype="float64")
    w = tr.randn(4, 2, 4, dtype="float64")
    grads = {}
    for name, cell in (("fused", fused), ("composed", composed)):
        state, cs, loss = None, [], 0
        for t in range(4):
            state = cell(x[t], state)
            state[1].retain_grad()
            cs.append(state[1])
            loss = loss + (state[0] * w[t]).sum()
        loss.backward()
        grads[name] = [c.grad.numpy() for c in cs]
    for a, b in zip(grads["fused"], grads["composed"]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12)
    assert np.abs(grads["fused"][-1]).sum() > 0  # the last c' gets its gradient through h' alone


def test_fused_lstm_cell_kept_c_norm_is_the_whole_gradient():
    """Inside retain_grads() the drawn norm of c' (its kept output gradient) has the path through h'."""
    tr.manual_seed(6)
    fused = nn.LSTMCell(3, 4, impl="fused", peephole=True).double()
    composed = nn.LSTMCell(3, 4, impl="composed", peephole=True).double()
    composed.load_state_dict(fused.state_dict())
    x = tr.randn(2, 3, dtype="float64")
    with tr.retain_grads():
        h, c = fused(x)
    h.sum().backward()
    h2, c2 = composed(x)
    c2.retain_grad()
    h2.sum().backward()
    kept = GradNorms().output(h.grad_fn, 1)
    np.testing.assert_allclose(kept, np.linalg.norm(c2.grad.numpy()), rtol=1e-9)
    assert kept > 0  # only h' was used: the whole ∂L/∂c' is the path through h'
def test_drawn_cell_state_norms_are_the_whole_gradient():
    """show_grads on a fused LSTM labels every c_t with ‖∂L/∂c_t‖ of the composed cell (not 'not kept')."""
    layer, cell = _pair(7, peephole=True)
    x = tr.randn(4, 2, 3, dtype="float64")
    with tr.retain_grads():
        out, _ = layer(x)
        loss = out[-1].sum() / x.shape[1]
    loss.backward()
    src = draw_graph(loss, show_grads=True).source
    expected = state_gradient_norms(cell, x)["c"]
    for t, norm in enumerate(expected):
        line = [v for k, v in _node_lines(src).items() if v.startswith(f"c<sub>{t}</sub>")]
        assert len(line) == 1 and f"‖g‖={norm:.1e}" in line[0], (t, line)
    assert not any(v.startswith("c<sub>") and "not kept" in v for v in _node_lines(src).values())


def _node_lines(src):
    """{node id: its whole label}."""
    return {m.group(1): m.group(2) for m in re.finditer(r"^\s*(\w+) \[label=<(.*)> shape", src, re.M)}
