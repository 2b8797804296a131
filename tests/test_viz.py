"""The graph renderer: structure of the DOT text, folding, the node budget, gradients, rendering with dot."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import autograd, nn
from tinygrad_rnn.viz import draw_graph
from tinygrad_rnn.viz import style
from tinygrad_rnn.lecture_graphs import KINDS, build_lecture_graph
from tinygrad_rnn.viz.walk import collect_functions

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="the graphviz 'dot' program is not installed")


# ------------------------------------------------------------------ helpers
def node_lines(source):
    """id -> attribute text of every node statement (n0, n1, ...)."""
    return dict(re.findall(r"^\s*(n\d+) \[(.*)\]$", source, flags=re.M))


def cluster_labels(source):
    return re.findall(r"^\s*label=\"?(.*?)\"?(?: style=|$)", source, flags=re.M) + re.findall(
        r"\blabel=\"([^\"<]*)\" style=", source
    )


def titles(source):
    """The first line of every node label (HTML), by node id."""
    return {k: re.search(r"label=<(.*?)(?:<br/>|> )", v).group(1) for k, v in node_lines(source).items()}


def count_title(source, title):
    return sum(1 for t in titles(source).values() if t == title)


def folded_node_count(source):
    return len(node_lines(source))


class TinyLinear(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.weight = nn.Parameter(tr.randn(o, i))
        self.bias = nn.Parameter(tr.zeros(o))

    def forward(self, x):
        return x @ self.weight.T + self.bias


class TinyRNN(nn.Module):
    """h_t = tanh(x_t W + h_{t-1} U): 4 recorded ops per step (the x slice of a constant is not recorded)."""

    def __init__(self, i, h):
        super().__init__()
        self.W = nn.Parameter(tr.randn(i, h) * 0.3)
        self.U = nn.Parameter(tr.randn(h, h) * 0.3)

    def forward(self, x):
        h = tr.zeros(x.shape[1], self.U.shape[0], device=x.device)
        for t in range(x.shape[0]):
            with autograd.scope(step=t):
                h = (x[t] @ self.W + h @ self.U).tanh()
                h.name = "h"
        return h


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = TinyLinear(3, 2)

    def forward(self, x):
        return self.encoder(x).sum()


# ------------------------------------------------------------------ basic structure
def test_ops_tensors_parameters_and_roles():
    tr.manual_seed(0)
    net = Net()
    x = tr.randn(4, 3)
    x.name = "x"
    loss = net(x)
    src = draw_graph(loss).source
    t = titles(src)
    assert {"MatMul", "Add", "Sum", "Permute"} <= set(t.values())
    assert "encoder.weight" in t.values() and "encoder.bias" in t.values()
    lines = node_lines(src)
    weight = next(k for k, v in t.items() if v == "encoder.weight")
    assert "(2, 3)" in lines[weight]
    assert f'fillcolor="{style.ROLES["parameter"][0]}"' in lines[weight]
    x_id = next(k for k, v in t.items() if v == "x")
    assert f'fillcolor="{style.ROLES["input"][0]}"' in lines[x_id] and "(4, 3)" in lines[x_id]
    loss_id = next(k for k, v in t.items() if v == "loss")
    assert f'fillcolor="{style.ROLES["loss"][0]}"' in lines[loss_id] and "peripheries=2" in lines[loss_id]
    assert 'label="encoder: TinyLinear"' in src and "label=Net" in src
    legend = re.search(r"legend \[label=<(.*)> margin", src).group(1)
    for text in ("legend", "parameter", "input / constant", "loss", "op"):
        assert text in legend
    assert "hidden state h" not in legend


def test_output_role_dtype_and_constant_annotation():
    a = tr.tensor([[1.0, 2.0]], dtype="float64", requires_grad=True)
    out = a * 2.0 + 1.0
    src = draw_graph(out).source
    lines = node_lines(src)
    out_id = next(k for k, v in titles(src).items() if v == "output")
    assert f'fillcolor="{style.ROLES["output"][0]}"' in lines[out_id]
    assert "(1, 2) float64" in lines[out_id]
    assert "const 2" in src and "const 1" in src
    leaf = next(k for k, v in titles(src).items() if v == "leaf")
    assert f'fillcolor="{style.ROLES["parameter"][0]}"' in lines[leaf]


def test_names_are_escaped():
    a = tr.tensor([1.0, 2.0], requires_grad=True)
    b = a * 3.0
    b.name = '<b>&"x'
    src = draw_graph(b.sum()).source
    assert "&lt;b&gt;&amp;&quot;x" in src and "<b>&" not in src


def test_same_computation_gives_identical_dot_and_counter_ids():
    sources = []
    for _ in range(2):
        tr.manual_seed(3)
        model = nn.LSTM(3, 4, impl="composed")
        out, _ = model(tr.randn(3, 2, 3))
        sources.append(draw_graph(out.sum()).source)
    assert sources[0] == sources[1]
    ids = sorted(int(k[1:]) for k in node_lines(sources[0]))
    assert ids == list(range(len(ids)))


def test_model_argument_names_parameters_used_outside_a_module_call():
    net = TinyLinear(3, 2)
    out = (tr.randn(1, 3) @ net.weight.T).sum()
    t = set(titles(draw_graph(out, model=net).source).values())
    assert "weight" in t
    wrapper = nn.Sequential(net)
    assert "0.weight" in set(titles(draw_graph(out, model=wrapper).source).values())


def test_bad_arguments_raise_clear_errors():
    y = tr.tensor([1.0], requires_grad=True) * 2.0
    with pytest.raises(ValueError, match="draw_graph: mode must be 'unrolled' or 'folded', got 'flat'"):
        draw_graph(y, mode="flat")
    with pytest.raises(TypeError, match="draw_graph: expected a Tensor or a list/tuple of tensors, got int"):
        draw_graph(3)
    with pytest.raises(ValueError, match="draw_graph: max_nodes must be a positive int"):
        draw_graph(y, max_nodes=0)
    with pytest.raises(ValueError, match="rankdir"):
        draw_graph(y, rankdir="XY")


# ------------------------------------------------------------------ recurrent layers
def test_composed_lstm_clusters_by_module_and_step():
    tr.manual_seed(0)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.LSTM(3, 4, impl="composed")

        def forward(self, x):
            return self.encoder(x)

    model = Model()
    out, (h, c) = model(tr.randn(3, 2, 3))
    src = draw_graph((out, (h, c)), rankdir="LR").source
    assert 'label="encoder: LSTM"' in src
    for t in range(3):
        assert f'label="t={t}"' in src
        assert f"label=<h<sub>{t}</sub>" in src and f"label=<c<sub>{t}</sub>" in src
    assert "t=3" not in src
    t = titles(src)
    w = next(k for k, v in t.items() if v == "encoder.weight_ih_l0")
    assert "(16, 3)" in node_lines(src)[w]
    assert {"i", "f", "g", "o", "gates"} <= set(t.values())
    assert count_title(src, "initial h") == 1 and count_title(src, "initial c") == 1
    roots = [k for k, v in node_lines(src).items() if "peripheries=2" in v]
    assert len(roots) == 3  # output, h_n and c_n


@pytest.mark.parametrize("impl", ["fused", "fused_step"])
def test_fused_cells_one_node_per_step(impl):
    model = nn.LSTM(3, 4, impl=impl)
    out, _ = model(tr.randn(4, 2, 3))
    src = draw_graph(out.sum(), rankdir="LR").source
    assert count_title(src, "LSTMCell") == 4
    for t in range(4):
        assert f'label="t={t}"' in src and f"label=<h<sub>{t}</sub>" in src
    lines = node_lines(src)
    cells = [k for k, v in lines.items() if "label=<LSTMCell" in v]
    assert all(f'fillcolor="{style.ROLES["fused"][0]}"' in lines[k] for k in cells)
    into_cells = rf'-> ({"|".join(cells)}) \[color="{style.RECURRENT_EDGE_COLOR}"'
    state_edges = re.findall(into_cells, src)
    assert len(state_edges) == 2 * 4  # h and c into every step (the initial state included)


def test_expand_fused_draws_the_gates():
    model = nn.LSTM(3, 4, impl="fused_step")
    out, _ = model(tr.randn(2, 1, 3))
    src = draw_graph(out.sum(), expand_fused=True).source
    gates = ("i = σ(·)", "f = σ(·)", "g = tanh(·)", "o = σ(·)", "c′ = f ⊙ c + i ⊙ g", "h′ = o ⊙ tanh(c′)")
    for gate in gates:
        assert count_title(src, gate) == 2
    assert src.count('point-size="9">LSTMCell</font>') == 2  # the lecture layout draws no cell boxes
    assert draw_graph(out.sum(), expand_fused=True, rankdir="LR").source.count("label=LSTMCell") == 2
    gru = nn.GRU(3, 4)
    out, _ = gru(tr.randn(3, 1, 3))
    src = draw_graph(out, expand_fused=True).source
    for gate in ("r = σ(·)", "z = σ(·)", "n = tanh(·)"):
        assert count_title(src, gate) == 3
    assert count_title(src, "GRUCell") == 0


def test_bidirectional_and_stacked_layers_get_their_own_clusters():
    model = nn.GRU(3, 4, num_layers=2, bidirectional=True)
    out, h = model(tr.randn(3, 2, 3))
    src = draw_graph((out, h), rankdir="LR").source
    for label in ("layer 0 · forward", "layer 0 · reverse", "layer 1 · forward", "layer 1 · reverse"):
        assert f'label="{label}"' in src
    assert count_title(src, "GRUCell") == 12
    assert "weight_hh_l1_reverse" in set(titles(src).values())


# ------------------------------------------------------------------ folded view
@pytest.mark.parametrize("impl", ["fused", "fused_step", "composed"])
def test_folded_size_does_not_depend_on_sequence_length(impl):
    sources = {}
    for T in (5, 50):
        tr.manual_seed(0)
        model = nn.LSTM(3, 4, impl=impl)
        out, _ = model(tr.randn(T, 2, 3))
        sources[T] = draw_graph(out.sum(), mode="folded").source
    assert folded_node_count(sources[5]) == folded_node_count(sources[50])
    assert sources[5].count("->") == sources[50].count("->")
    for T, src in sources.items():
        assert f'label="h(t-1) ×{T}"' in src and f'label="c(t-1) ×{T}"' in src
        assert f'label="t (×{T} steps)"' in src
        assert "label=<h<sub>t</sub>" in src
        assert "constraint=false" in src


def test_folded_reverse_direction_reads_the_next_step():
    model = nn.RNN(3, 4, bidirectional=True)
    out, _ = model(tr.randn(6, 2, 3))
    src = draw_graph(out.sum(), mode="folded").source
    assert 'label="h(t-1) ×6"' in src and 'label="h(t+1) ×6"' in src
    assert count_title(src, "RNNCell") == 2


def test_repeated_calls_of_a_module_are_steps():
    def run(T):
        tr.manual_seed(0)
        cell = nn.LSTMCell(3, 4, impl="composed")
        state = None
        for _ in range(T):
            state = cell(tr.randn(2, 3), state)
        return state[0].sum()

    unrolled = draw_graph(run(3), rankdir="LR").source
    for k in range(3):
        assert f'label="LSTMCell (call {k})"' in unrolled
    folded = {T: draw_graph(run(T), mode="folded").source for T in (4, 40)}
    assert 'label="LSTMCell (×4 calls)"' in folded[4] and 'label="LSTMCell (×40 calls)"' in folded[40]
    assert folded_node_count(folded[4]) == folded_node_count(folded[40])


# ------------------------------------------------------------------ node budget
def test_budget_collapses_the_middle_steps_with_an_exact_summary():
    T = 1500
    model = TinyRNN(3, 4)
    h = model(tr.randn(T, 2, 3))
    src = draw_graph(h.sum(), max_nodes=60, rankdir="LR").source
    assert len(node_lines(src)) <= 60
    shown = sorted(int(t) for t in re.findall(r'label="t=(\d+)"', src))
    keep = len([t for t in shown if t < T // 2])
    assert shown == list(range(keep)) + list(range(T - keep, T)) and keep >= 1
    middle = T - 2 * keep
    summary = f"t={keep}..{T - 1 - keep}: {middle:,} steps, {4 * middle:,} ops"
    assert f"label=<{summary}>" in src
    assert "," in f"{middle:,}"
    full = draw_graph(model(tr.randn(5, 2, 3)).sum()).source
    assert "steps," not in full


def test_2000_step_lstm_renders():
    model = nn.LSTM(2, 3, impl="composed")
    out, _ = model(tr.randn(2000, 1, 2))
    graph = draw_graph(out.sum(), rankdir="LR")
    src = graph.source
    assert 'label="t=0"' in src and 'label="t=1999"' in src
    assert re.search(r"label=<t=\d+\.\.\d+: 1,9\d\d steps, [\d,]+ ops>", src)
    assert len(node_lines(src)) <= 300
    if shutil.which("dot"):
        svg = graph.pipe(format="svg").decode()
        assert "<svg" in svg and "t=1999" in svg


def test_walk_is_iterative_on_a_100000_op_chain():
    x = tr.tensor(0.5, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y.tanh()
    assert len(collect_functions([y])) == 100_000
    src = draw_graph(y, show_shapes=False).source
    assert len(node_lines(src)) == 100_002  # the ops, the leaf and the output


# ------------------------------------------------------------------ gradients
def _grad_of(src, title):
    line = node_lines(src)[next(k for k, v in titles(src).items() if v == title)]
    match = re.search(r"‖g‖=([0-9.e+-]+)", line)
    return float(match.group(1)) if match else None


def test_grads_show_vanishing_through_time_after_backward(device):
    tr.manual_seed(1)
    model = TinyRNN(3, 4)
    model.to(device)
    with tr.retain_grads():
        h = model(tr.randn(12, 2, 3, device=device))
        loss = (h * h).sum()
        loss.backward()
    src = draw_graph(loss, show_grads=True).source
    norms = [_grad_of(src, f"h<sub>{t}</sub>") for t in range(12)]
    assert all(n is not None for n in norms)
    assert norms[0] < norms[-1] / 10
    assert "not kept" not in src
    assert "‖grad‖" in src
    w = node_lines(src)[next(k for k, v in titles(src).items() if v == "W")]
    expected = float(np.linalg.norm(model.W.grad.numpy()))
    assert f"‖g‖={expected:.1e}" in w
    assert style.ramp_color(1.0) in src and "penwidth" in src


def test_fused_sequence_grads_come_from_step_norms():
    tr.manual_seed(0)
    model = nn.LSTM(3, 4)
    with tr.retain_grads():
        out, _ = model(tr.randn(5, 2, 3))
        loss = out[-1].sum()
        loss.backward()
    fn = next(f for f in collect_functions([loss]) if getattr(f, "steps", None))
    src = draw_graph(loss, show_grads=True).source
    for t in range(5):
        assert _grad_of(src, f"h<sub>{t}</sub>") == pytest.approx(fn.trace.step_grad_norms[t], rel=0.06)
    folded = draw_graph(loss, show_grads=True, mode="folded").source
    low, high = min(fn.trace.step_grad_norms), max(fn.trace.step_grad_norms)
    assert f"‖g‖ {low:.1e} … {high:.1e} over 5 steps" in folded


def test_gradients_not_kept_are_marked():
    model = TinyRNN(3, 4)
    h = model(tr.randn(3, 2, 3))
    loss = h.sum()
    loss.backward()
    src = draw_graph(loss, show_grads=True).source
    assert "‖g‖ not kept" in src
    assert f"‖g‖={float(np.linalg.norm(model.U.grad.numpy())):.1e}" in src
    assert "dashed" in node_lines(src)[next(k for k, v in titles(src).items() if v == "MatMul")]


# ------------------------------------------------------------------ rendering with dot
@needs_dot
def test_renders_to_svg_and_png_with_dot(tmp_path):
    model = nn.LSTM(3, 4)
    out, _ = model(tr.randn(3, 2, 3))
    graph = draw_graph(out.sum(), mode="folded")
    svg = graph.pipe(format="svg").decode()
    assert "<svg" in svg and ">LSTMCell<" in svg and ">h(t&#45;1) ×3<" in svg and ">t (×3 steps)<" in svg
    path = graph.render(tmp_path / "lstm", format="png", cleanup=True)
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ the lecture's diagrams
@pytest.mark.parametrize("kind", KINDS)
def test_every_lecture_graph_builds(kind):
    src = build_lecture_graph(kind, steps=3, cell="gru").source
    assert "legend" in src and "loss" in src
    assert folded_node_count(build_lecture_graph(kind, steps=3, mode="folded").source) > 3


def test_lecture_graphs_have_the_expected_structure():
    many = build_lecture_graph("many-to-many", steps=4).source
    one = build_lecture_graph("many-to-one", steps=4).source
    assert count_title(many, "RNNCell") == 4 and count_title(one, "RNNCell") == 4
    assert "label=<output<br/>" in many and "label=<output<br/>" not in one  # only h_n reaches the head
    assert "(4, 2, 2)" in node_lines(many)[next(k for k, v in titles(many).items() if v == "Linear")]
    assert "(2, 2)" in node_lines(one)[next(k for k, v in titles(one).items() if v == "Linear")]
    gen = build_lecture_graph("one-to-many", steps=5, cell="lstm").source
    assert count_title(gen, "LSTMCell") == 5 and count_title(gen, "y<sub>4</sub>") == 1
    s2s = build_lecture_graph("seq2seq", cell="lstm").source
    assert "encoder.weight_hh_l0" in s2s and "decoder.weight_hh_l0" in s2s
    att = build_lecture_graph("attention", steps=3).source
    assert count_title(att, "attention") == 3 and "Softmax" not in att  # one node per attention call
    att = build_lecture_graph("attention", steps=3, expand_fused=True, rankdir="LR").source
    assert att.count('label="attention: AdditiveAttention"') == 3 and "Softmax" in att
    bi = build_lecture_graph("bidirectional").source
    assert bi.count(">forward</font>") == 4 and bi.count(">reverse</font>") == 4  # each cell says its direction
    stacked = build_lecture_graph("stacked", cell="lstm").source
    assert stacked.count(">layer 0</font>") == 4 and stacked.count(">layer 1</font>") == 4
    folded = build_lecture_graph("many-to-many", steps=6, cell="lstm", mode="folded").source
    assert 'label="h(t-1) ×6"' in folded
    grads = build_lecture_graph("many-to-one", steps=6, grads=True).source
    assert "‖g‖=" in grads and "‖grad‖" in grads
    with pytest.raises(ValueError, match="build_lecture_graph: kind must be one of"):
        build_lecture_graph("many-to-few")
    with pytest.raises(ValueError, match="cell must be one of"):
        build_lecture_graph("seq2seq", cell="transformer")
