"""The lecture layout of unrolled drawings: steps side by side in time order, x_t below h_t below L_t.

Positions are read back from ``dot -Tjson`` (graphviz's coordinates: y grows upwards).
"""
import json
import shutil

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.lecture_graphs import CELLS, KINDS, run_lecture_model
from tinygrad_rnn.viz import draw_graph
from tinygrad_rnn.viz.emit import to_digraph
from tinygrad_rnn.viz.labels import Names
from tinygrad_rnn.viz.layout import lecture_plan
from tinygrad_rnn.viz.unrolled import build
from tinygrad_rnn.viz.walk import collect_functions, flatten_roots

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot program is not installed")


def lecture_drawing(kind, cell, impl=None):
    model, loss = run_lecture_model("test", kind, 4, cell, impl=impl)
    roots = flatten_roots(loss)
    functions = collect_functions(roots)
    return build(roots, functions, Names(functions, model, {}))


def positions(drawing, **options):
    """IR node -> (x, y) of its centre as dot lays the lecture layout out; and the drawing's width."""
    graph = to_digraph(drawing, lecture=True, **options)
    laid = json.loads(graph.pipe(format="json"))
    ids = {f"n{i}": node for i, node in enumerate(drawing.nodes)}
    out = {}
    for obj in laid.get("objects", []):
        if obj.get("name") in ids and "pos" in obj:
            x, y = map(float, obj["pos"].split(","))
            out[ids[obj["name"]]] = (x, y)
    width = float(laid["bb"].split(",")[2])
    return out, width


def step_of(node):
    c = node.cluster
    while c is not None and c.block is None:
        c = c.parent
    return c


def assert_rows_in_time_order(drawing, what):
    """Every row of the plan at one height, and within it each block's steps left to right in time order."""
    plan = lecture_plan(drawing)
    assert plan is not None and plan.rows
    where, _ = positions(drawing)
    for row in plan.rows:
        ys = {round(where[n][1], 1) for n in row}
        assert len(ys) == 1, f"{what}: a row spans several heights {ys}"
        by_block = {}
        for node in row:
            step = step_of(node)
            by_block.setdefault(step.block, []).append((where[node][0], step.time))
        for block in by_block.values():
            times = [t for _, t in sorted(block)]
            assert times == sorted(times), f"{what}: steps out of order {times}"


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_row_runs_in_time_order_left_to_right(kind, cell):
    for impl in ("fused", "fused_step", "composed"):
        for steps, expand in ((3, False), (5, False), (4, True)):
            tr.manual_seed(0)
            model, loss = run_lecture_model("test", kind, steps, cell, impl=impl)
            roots = flatten_roots(loss)
            functions = collect_functions(roots)
            drawing = build(roots, functions, Names(functions, model, {}), expand_fused=expand)
            assert_rows_in_time_order(drawing, f"{kind}/{cell}/{impl}/{steps} steps/expand={expand}")


@pytest.mark.parametrize("impl", ["fused", "fused_step", "composed"])
def test_inputs_below_states_below_losses(impl):
    drawing = lecture_drawing("many-to-many", "lstm", impl=impl)
    where, _ = positions(drawing)

    def height(title):
        ys = sorted({round(where[n][1]) for n in drawing.nodes if n.title == title and step_of(n) is not None})
        assert ys, title
        return ys

    x_rows, h_rows, loss_rows = height("x"), height("h"), height("L")
    assert len(h_rows) == 1 and len(loss_rows) == 1  # all h_t in one row, all L_t in one row
    assert max(x_rows) < h_rows[0] < loss_rows[0]
    hs = sorted((where[n][0], step_of(n).time) for n in drawing.nodes if n.title == "h" and step_of(n) is not None)
    assert [t for _, t in hs] == [0, 1, 2, 3]


def test_lecture_layout_is_narrower_than_the_boxed_one():
    """The attention diagram at 4 steps: 5,723 px wide in the boxed layered layout, ~2,200 px now."""
    drawing = lecture_drawing("attention", "rnn")
    _, width = positions(drawing)
    boxed = json.loads(to_digraph(lecture_drawing("attention", "rnn")).pipe(format="json"))
    assert width * 96 / 72 < 2600
    assert width < 0.6 * float(boxed["bb"].split(",")[2])


def test_draw_graph_uses_the_lecture_layout_unless_a_rankdir_is_given():
    tr.manual_seed(0)
    rnn = tr.nn.RNN(3, 4)
    out, _ = rnn(tr.randn(5, 2, 3))
    lecture = draw_graph(out.sum(), model=rnn).source
    assert "rankdir=BT" in lecture and "rank=same" in lecture and 'label="t=0"' not in lecture
    boxed = draw_graph(out.sum(), model=rnn, rankdir="LR").source
    assert "rankdir=LR" in boxed and "rank=same" not in boxed and 'label="t=0"' in boxed
    assert "rankdir=LR" in draw_graph(out.sum(), model=rnn, mode="folded").source
    assert "rankdir=BT" in draw_graph(out.sum(), model=rnn, expand_fused=True).source


def test_a_graph_without_steps_keeps_the_plain_layout():
    x = tr.tensor(np.ones((2, 3)), requires_grad=True)
    src = draw_graph((x * 2).sum()).source
    assert "rankdir=LR" in src and "rank=same" not in src


def test_stacked_and_bidirectional_cells_say_their_layer():
    drawing = lecture_drawing("bidirectional", "gru")
    src = to_digraph(drawing, lecture=True).source
    assert src.count(">forward</font>") == 4 and src.count(">reverse</font>") == 4
    src = to_digraph(lecture_drawing("stacked", "rnn"), lecture=True).source
    assert src.count("layer 0</font>") == 4 and src.count("layer 1</font>") == 4


def test_subscripted_titles_leave_room_before_the_shape_line():
    tr.manual_seed(0)
    rnn = tr.nn.RNN(3, 4)
    out, _ = rnn(tr.randn(2, 1, 3))
    src = draw_graph(out.sum(), model=rnn).source
    assert 'label=<h<sub>0</sub><br/><font point-size="3"> </font><br/><font point-size="9">(1, 4)' in src


@pytest.mark.parametrize("cell", CELLS)
def test_the_reverse_direction_is_drawn_above_the_forward_one(cell):
    """A bidirectional layer as the lectures draw it: the reverse chain in a row above the forward
    chain, both running from t=0 on the left."""
    drawing = lecture_drawing("bidirectional", cell)
    where, _ = positions(drawing)
    chains = {}
    for node in drawing.nodes:
        step = step_of(node)
        if node.title == "h" and step is not None:
            chains.setdefault(step.parent.direction, []).append((where[node][0], where[node][1], step.time))
    forward, reverse = (chains[d] for d in sorted(chains, key=str))
    assert max(y for _, y, _ in forward) < min(y for _, y, _ in reverse)
    for chain in (forward, reverse):
        assert [t for _, _, t in sorted(chain)] == [0, 1, 2, 3]
