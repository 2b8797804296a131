"""Lecture diagrams as the lectures draw them: a loss L_t per step summed into L (many-to-many), and
one node per attention call unless ``expand_fused=True``."""
import re
import shutil

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import autograd, nn
from tinygrad_rnn.lecture_graphs import build_lecture_graph, per_step_loss
from tinygrad_rnn.viz import draw_graph

NODE = re.compile(r"^\s*(n\d+) \[label=<(.*?)(?:<br/>.*)?> ", re.M)
EDGE = re.compile(r"^\s*([np]\d+) -> ([np]\d+)(?: \[(.*)\])?$", re.M)


def titles(source):
    """node id -> the first line of its label (the title, HTML as written)."""
    return dict(NODE.findall(source))


def ids_titled(source, title):
    return [k for k, v in titles(source).items() if v == title]


def edges(source):
    """(src, dst, attributes) of every drawn arrow (``b -> a [dir=back]`` runs from a to b; invisible
    layout arrows are left out); a parameter's arrows through a bundling point ``pK`` (one point for
    the weights many nodes share) count as arrows from the parameter itself."""
    found = [(b, a, attrs) if "dir=back" in attrs else (a, b, attrs)
             for a, b, attrs in EDGE.findall(source) if "style=invis" not in attrs]
    into_hub = {}
    for a, b, _ in found:
        if b.startswith("p"):
            into_hub.setdefault(b, []).append(a)
    out = [(a, b, attrs) for a, b, attrs in found if not a.startswith("p") and not b.startswith("p")]
    out += [(param, b, attrs) for a, b, attrs in found if a.startswith("p") for param in into_hub.get(a, ())]
    return out


def svg_width_px(graph):
    svg = graph.pipe(format="svg").decode()
    return int(re.search(r'<svg width="(\d+)pt"', svg).group(1)) * 4 / 3


# ------------------------------------------------------------------ many-to-many: L_t per step, summed into L
@pytest.mark.parametrize("steps", [3, 5])
def test_many_to_many_unrolled_draws_a_loss_per_step_feeding_the_total(steps):
    src = build_lecture_graph("many-to-many", steps=steps, cell="lstm").source
    per_step = [ids_titled(src, f"L<sub>{t}</sub>") for t in range(steps)]
    assert all(len(found) == 1 for found in per_step), per_step
    (total,) = ids_titled(src, "L")
    assert 'peripheries=2' in next(line for line in src.splitlines() if line.strip().startswith(f"{total} ["))
    (stack,) = ids_titled(src, "Stack")
    arrows = edges(src)
    for (node,) in per_step:  # every L_t is drawn as a loss and flows into the sum
        line = next(line for line in src.splitlines() if line.strip().startswith(f"{node} ["))
        assert 'fillcolor="#f8c9c4"' in line
        assert any(a == node and b == stack for a, b, _ in arrows)
    for t in range(steps):  # y_t and its target meet in the step's cross-entropy
        (y,) = ids_titled(src, f"y<sub>{t}</sub>")
        assert any(a == y and titles(src)[b] == "CrossEntropy" for a, b, _ in arrows)
    assert len(ids_titled(src, "target")) == steps and len(ids_titled(src, "CrossEntropy")) == steps


def test_many_to_many_folded_draws_l_t_once_with_its_arrow_into_l():
    steps = 6
    src = build_lecture_graph("many-to-many", steps=steps, mode="folded").source
    (l_t,) = ids_titled(src, "L<sub>t</sub>")
    (stack,) = ids_titled(src, "Stack")
    (total,) = ids_titled(src, "L")
    arrows = edges(src)
    assert any(a == l_t and b == stack and f'label="×{steps}"' in attrs for a, b, attrs in arrows)
    assert any(a == stack for a, b, _ in arrows) and any(b == total for _, b, _ in arrows)
    assert not ids_titled(src, "L<sub>0</sub>")


def test_per_step_loss_is_the_sum_of_each_steps_cross_entropy():
    tr.manual_seed(3)
    logits = tr.randn(4, 5, 3, requires_grad=True)
    targets = tr.randint(0, 3, (4, 5))
    total = per_step_loss(logits, targets)
    x, y = logits.numpy(), targets.numpy()
    log_p = x - np.log(np.exp(x).sum(-1, keepdims=True))
    expected = sum(-log_p[t, np.arange(5), y[t]].mean() for t in range(4))
    assert total.name == "L" and total.shape == ()
    np.testing.assert_allclose(total.item(), expected, rtol=1e-5)
    total.backward()
    assert logits.grad is not None and logits.grad.shape == (4, 5, 3)


# ------------------------------------------------------------------ attention: one node per call
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_attention_is_one_node_per_decoder_step(cell):
    steps = 4
    src = build_lecture_graph("attention", steps=steps, cell=cell).source
    blocks = ids_titled(src, "attention")
    assert len(blocks) == steps
    assert "Softmax" not in src and 'label="attention: AdditiveAttention' not in src
    assert src.count("AdditiveAttention</font>") == steps and src.count(">12 ops</font>") == steps
    arrows = edges(src)
    names = titles(src)
    for block in blocks:  # the query (a state), the keys and the three weights go in; the context comes out
        sources = {names[a] for a, b, _ in arrows if b == block}
        assert {"attention.W_q.weight", "attention.W_k.weight", "attention.v.weight"} <= sources
        assert "Permute" in sources  # the keys: the encoder's outputs, batch first
        assert sum(1 for a, b, _ in arrows if a == block and names[b] == "Cat") == 2  # into the cell and the head
    assert src.count(">12 ops</font>") == steps


def test_expand_fused_brings_the_attention_ops_back():
    steps = 3
    collapsed = build_lecture_graph("attention", steps=steps).source
    expanded = build_lecture_graph("attention", steps=steps, expand_fused=True).source
    assert not ids_titled(expanded, "attention")
    # no boxes in the lecture layout: each call's first op says whose it is
    assert expanded.count('>attention: AdditiveAttention</font>') == steps
    boxed = build_lecture_graph("attention", steps=steps, expand_fused=True, rankdir="LR").source
    assert boxed.count('label="attention: AdditiveAttention') == steps
    assert len(ids_titled(expanded, "Softmax")) == steps and len(ids_titled(collapsed, "Softmax")) == 0
    assert len(titles(expanded)) - len(titles(collapsed)) >= steps * 10


def test_attention_folded_is_one_node_with_its_recurrence():
    src = build_lecture_graph("attention", steps=5, mode="folded").source
    (block,) = ids_titled(src, "attention")
    assert any(b == block and "h(t-1) ×5" in attrs for _, b, attrs in edges(src))


def test_attention_block_shows_a_gradient_norm():
    src = build_lecture_graph("attention", steps=2, grads=True).source
    lines = [line for line in src.splitlines() if "<attention<br/>" in line]
    assert len(lines) == 2 and all("‖g‖=" in line for line in lines)


def test_dot_product_attention_calls_collapse_and_keep_their_named_outputs():
    tr.manual_seed(0)
    attention = nn.DotProductAttention(general=True, query_size=4, key_size=3)
    keys = tr.randn(2, 5, 3)
    query = tr.randn(2, 4, requires_grad=True)
    outputs = []
    for t in range(3):
        with autograd.scope(step=t):
            context, weights = attention(query, keys)
            weights.name = "a"
            query = (query + context.sum(-1, keepdim=True)).tanh()
        outputs.append(weights)
    src = draw_graph((query.sum(), outputs[-1]), model=attention).source
    blocks = ids_titled(src, "attention") + ids_titled(src, "DotProductAttention")
    assert len(blocks) == 3 and "Softmax" not in src
    (a,) = ids_titled(src, "a")  # the last step's weights, a root, stay a node beside the call
    assert any(a_ == blocks[-1] and b == a for a_, b, _ in edges(src))
    expanded = draw_graph((query.sum(), outputs[-1]), model=attention, expand_fused=True).source
    assert not (ids_titled(expanded, "attention") + ids_titled(expanded, "DotProductAttention"))
    assert len(ids_titled(expanded, "Softmax")) + len(ids_titled(expanded, "MaskedSoftmax")) >= 3


@pytest.mark.skipif(shutil.which("dot") is None, reason="the graphviz 'dot' program is not installed")
def test_collapsed_attention_is_much_narrower_than_expanded():
    collapsed = svg_width_px(build_lecture_graph("attention", steps=4))
    expanded = svg_width_px(build_lecture_graph("attention", steps=4, expand_fused=True))
    assert collapsed < 0.8 * expanded
