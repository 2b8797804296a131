"""Hand-written models drawn right: leaves named by ``params=``, by ``name=``, by their modules, and
``show_grads=True`` before any ``backward()`` saying so on the picture."""
from __future__ import annotations

import copy
import gc
import re
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn import nn
from tinygrad_rnn.viz import draw_graph
from tinygrad_rnn.viz.draw import NO_GRADS_NOTE
from tinygrad_rnn.viz.folded import fold
from tinygrad_rnn.viz.labels import Names
from tinygrad_rnn.viz.recurrence import name_loops
from tinygrad_rnn.viz.unrolled import build, find_hand_loop
from tinygrad_rnn.viz.walk import collect_functions, flatten_roots


def node_lines(source):
    """id -> attribute text of every node statement (n0, n1, ...)."""
    return dict(re.findall(r"^\s*(n\d+) \[(.*)\]$", source, flags=re.M))


def titles(source):
    """The first line of every node label, by node id."""
    return {k: re.search(r"label=<(.*?)(?:<br/>|> )", v).group(1) for k, v in node_lines(source).items()}


def node_of(source, title):
    """The attribute text of the one node titled ``title``."""
    found = [node_lines(source)[k] for k, v in titles(source).items() if v == title]
    assert len(found) == 1, (title, sorted(set(titles(source).values())))
    return found[0]


def hand_rnn(steps=4, named=False):
    """The learner's RNN: weights as plain tensors, the loop written out with Tensor ops."""
    tr.manual_seed(0)
    kw = (lambda n: {"name": n}) if named else (lambda n: {})
    W_xh = tr.tensor(0.3 * np.random.default_rng(0).standard_normal((3, 4)), dtype=tr.float32,
                     requires_grad=True, **kw("W_xh"))
    W_hh = tr.tensor(0.3 * np.random.default_rng(1).standard_normal((4, 4)), dtype=tr.float32,
                     requires_grad=True, **kw("W_hh"))
    b_h = tr.tensor(np.zeros(4), dtype=tr.float32, requires_grad=True, **kw("b_h"))
    xs = tr.randn(steps, 2, 3)
    h = tr.zeros(2, 4)
    for x in xs:
        h = (x @ W_xh + h @ W_hh + b_h).tanh()
    return (h * h).sum(), {"W_xh": W_xh, "W_hh": W_hh, "b_h": b_h}


PARAM_FILL = 'fillcolor="#cfe2ff"'


# ---------------------------------------------------------------------------- params=
def test_without_names_the_weights_are_anonymous_leaves():
    loss, _ = hand_rnn()
    assert sorted(t for t in titles(draw_graph(loss).source).values() if t == "leaf") == ["leaf"] * 3


@pytest.mark.parametrize("mode", ["unrolled", "folded"])
def test_params_name_the_hand_written_rnn_weights(mode):
    loss, params = hand_rnn()
    src = draw_graph(loss, params=params, mode=mode).source
    names = set(titles(src).values())
    assert {"W_xh", "W_hh", "b_h"} <= names and "leaf" not in names
    for name in params:
        assert PARAM_FILL in node_of(src, name)


def test_params_accepts_a_dict_of_named_parameters_and_ignores_unused_ones():
    model = nn.Linear(3, 2)
    unused = tr.zeros(2, requires_grad=True)
    out = model(tr.randn(4, 3)).sum()
    src = draw_graph(out, params={"W": model.weight, "unused": unused}).source
    names = set(titles(src).values())
    assert "W" in names and "bias" in names and "weight" not in names and "unused" not in names


# ---------------------------------------------------------------------------- name=
def test_name_on_the_tensor_names_the_weights():
    loss, _ = hand_rnn(named=True)
    src = draw_graph(loss).source
    names = set(titles(src).values())
    assert {"W_xh", "W_hh", "b_h"} <= names and "leaf" not in names


def test_name_argument_of_tensor_constructors_and_parameter():
    t = tr.Tensor([1.0, 2.0], name="a")
    assert t.name == "a" and tr.tensor([1.0], name="b").name == "b"
    assert nn.Parameter(tr.zeros(2), name="p").name == "p"
    assert nn.Parameter(tr.zeros(2, requires_grad=False)).name is None
    assert nn.Parameter(tr.tensor([1.0], name="kept")).name == "kept"
    assert "name='a'" in repr(t) and "name" not in repr(t * 2)
    with pytest.raises(TypeError, match=r"Tensor\.name: expected a str or None, got int"):
        tr.tensor([1.0], name=3)
    with pytest.raises(TypeError, match=r"Tensor\.name"):
        t.name = ["x"]


def test_name_is_kept_by_detach_to_and_deepcopy_but_not_by_op_results():
    w = tr.randn(2, 2, requires_grad=True, dtype=tr.float64)
    w.name = "W"
    assert w.detach().name == "W"
    assert w.to(tr.float64) is w
    assert (w * 2).name is None and w.clone().name is None
    x = tr.tensor([1.0, 2.0], name="x")
    assert x.to(tr.float64).name == "x" and x.to(tr.float64).dtype == tr.float64
    assert w.to(tr.float32).name is None  # an op's result (recorded: w requires grad), not w itself
    assert copy.deepcopy(nn.Parameter(tr.zeros(1), name="p")).name == "p"


# ---------------------------------------------------------------------------- precedence
def test_module_parameters_keep_their_dotted_names():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    src = draw_graph(model(tr.randn(2, 3)).sum()).source
    names = set(titles(src).values())
    assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= names


def test_params_beat_own_name_which_beats_the_dotted_name():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    model[0].weight.name = "W_in"
    model[2].weight.name = "ignored"
    out = model(tr.randn(2, 3)).sum()
    src = draw_graph(out, params={"W_out": model[2].weight}, model=model).source
    names = set(titles(src).values())
    assert {"W_in", "W_out", "0.bias", "2.bias"} <= names
    assert not names & {"0.weight", "2.weight", "ignored"}


def test_a_named_state_leaf_stays_a_state():
    _, params = hand_rnn()
    h0 = tr.zeros(2, 4, requires_grad=True)
    h0.name = "h0"
    W_hh = params["W_hh"]
    out = ((h0 @ W_hh).tanh() @ W_hh).sum()
    src = draw_graph(out, params={"W_hh": W_hh}).source
    assert 'fillcolor="#fff0b3"' in node_of(src, "h0") and PARAM_FILL in node_of(src, "W_hh")


# ---------------------------------------------------------------------------- bad params=
@pytest.mark.parametrize(
    "params, error, message",
    [
        ([("W", None)], TypeError, r"draw_graph: params must be a dict of name -> tensor, got list"),
        (nn.Linear(2, 2), TypeError, r"draw_graph: params must be a dict.*got .*Linear.*pass model="),
        ({"W": np.zeros(3)}, TypeError, r"draw_graph: params\['W'\] must be a tinygrad_rnn Tensor, got numpy\.ndarray"),
        ({"W": "weights"}, TypeError, r"draw_graph: params\['W'\] must be a tinygrad_rnn Tensor, got str"),
        ({3: None}, TypeError, r"draw_graph: params keys must be non-empty strings"),
    ],
)
def test_bad_params_are_refused_naming_draw_graph(params, error, message):
    loss, _ = hand_rnn(steps=2)
    with pytest.raises(error, match=message):
        draw_graph(loss, params=params)


def test_params_refuses_non_leaves_and_one_tensor_under_two_names():
    loss, params = hand_rnn(steps=2)
    scaled = params["W_hh"] * 2
    with pytest.raises(ValueError, match=r"draw_graph: params\['S'\] is not a leaf tensor .*Mul.*\.name = 'S'"):
        draw_graph(loss, params={"S": scaled})
    with pytest.raises(ValueError, match=r"draw_graph: params names one tensor twice: 'A' and 'B'"):
        draw_graph(loss, params={"A": params["W_hh"], "B": params["W_hh"]})


def test_torch_tensors_in_params_are_named_as_such():
    torch = pytest.importorskip("torch")
    loss, _ = hand_rnn(steps=2)
    with pytest.raises(TypeError, match=r"params\['W'\] must be a tinygrad_rnn Tensor, got torch\.Tensor"):
        draw_graph(loss, params={"W": torch.zeros(2)})


# ---------------------------------------------------------------------------- show_grads before backward
def test_show_grads_before_backward_says_so_and_warns():
    loss, params = hand_rnn()
    with pytest.warns(UserWarning, match=r"draw_graph: no gradients recorded yet: call backward\(\)"):
        src = draw_graph(loss, params=params, show_grads=True).source
    assert re.search(r"^\s*note \[label=<no gradients recorded yet", src, flags=re.M)
    assert "tr.retain_grads()" in src.replace("<br/>", " ")


@pytest.mark.parametrize("mode", ["unrolled", "folded"])
def test_after_backward_inside_retain_grads_the_note_is_gone(mode):
    with tr.retain_grads():
        loss, params = hand_rnn()
        loss.backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        src = draw_graph(loss, params=params, show_grads=True, mode=mode).source
    assert "no gradients recorded" not in src and "note [" not in src
    expected = float(np.linalg.norm(params["W_hh"].grad.numpy()))
    assert f"‖g‖={expected:.1e}" in node_of(src, "W_hh")


def test_no_note_without_show_grads_or_when_only_leaf_grads_exist():
    loss, params = hand_rnn()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "note [" not in draw_graph(loss).source
        loss.backward()  # outside retain_grads: the leaves have gradients, the steps not
        src = draw_graph(loss, params=params, show_grads=True).source
    assert "note [" not in src and "‖g‖ not kept" in src


def test_the_note_is_kept_in_a_lecture_sized_module_graph():
    model = nn.RNN(3, 4)
    out, _ = model(tr.randn(5, 1, 3))
    with pytest.warns(UserWarning, match="no gradients recorded yet"):
        src = draw_graph(out.sum(), show_grads=True, mode="folded").source
    assert NO_GRADS_NOTE.split(":")[0] in src


# ---------------------------------------------------------------------------- a hand-written loop, named
# A new user's loops as written in the lecture: no names, no scopes. What the loop reads and carries is
# named from the structure (what feeds what): x_t, target_t, h_t (and c_t), initial h, L_t, the running sum.
HIDDEN_FILL, CELL_FILL, LOSS_FILL, INPUT_FILL = ('fillcolor="#fff0b3"', 'fillcolor="#ffd8a8"', 'fillcolor="#f8c9c4"',
                                                 'fillcolor="#e9ecef"')


def student_loop(cell="rnn", steps=4, h0_grad=False, bias=True, head=False):
    """The loop a new user writes: plain tensors, no names, no scopes, ``loss = loss + F.cross_entropy(...)``.
    ``cell``: "rnn" (tanh), "lstm" (separate input/recurrent weights per gate), "gru"; ``head``: an
    ``nn.Linear`` read-out per step instead of ``h @ W_hy``. Returns the loss and the params= dict."""
    rng = np.random.default_rng(0)
    B, I, H = 2, 3, 5

    def w(*shape):
        return tr.tensor(rng.normal(size=shape) * 0.3, requires_grad=True)

    gates = {"rnn": "h", "lstm": "ifgo", "gru": "zrn"}[cell]
    Wx, Wh = {g: w(I, H) for g in gates}, {g: w(H, H) for g in gates}
    b, W_hy = w(H), w(H, 2)
    tr.manual_seed(0)
    read_out = nn.Linear(H, 2, dtype=tr.float64) if head else None
    xs = [tr.tensor(rng.normal(size=(B, I))) for _ in range(steps)]
    ys = [tr.tensor(rng.integers(0, 2, size=B)) for _ in range(steps)]
    h = tr.tensor(np.zeros((B, H)), requires_grad=h0_grad)
    c = tr.tensor(np.zeros((B, H)))
    loss = 0
    for t in range(steps):
        if cell == "rnn":
            h = (xs[t] @ Wx["h"] + h @ Wh["h"] + b).tanh() if bias else (xs[t] @ Wx["h"] + h @ Wh["h"]).tanh()
        elif cell == "lstm":
            i, f, o, g = (xs[t] @ Wx[k] + h @ Wh[k] for k in "ifgo")
            c = f.sigmoid() * c + i.sigmoid() * g.tanh()
            h = o.sigmoid() * c.tanh()
        else:
            z = (xs[t] @ Wx["z"] + h @ Wh["z"]).sigmoid()
            r = (xs[t] @ Wx["r"] + h @ Wh["r"]).sigmoid()
            n = (xs[t] @ Wx["n"] + (r * h) @ Wh["n"]).tanh()
            h = (1 - z) * n + z * h
        loss = loss + F.cross_entropy(read_out(h) if head else h @ W_hy, ys[t])
    params = {**{f"W_x{g}": v for g, v in Wx.items()}, **{f"W_h{g}": v for g, v in Wh.items()}}
    params.update({} if head else {"W_hy": W_hy})
    params.update({"b": b} if bias and cell == "rnn" else {})
    return loss, params


def drawn(root, mode, **kw):
    """draw_graph's DOT text; any warning fails (a loop was found, so neither mode may warn)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return draw_graph(root, mode=mode, show_shapes=False, **kw).source


def ir(root, mode="unrolled", params=None):
    """The drawing draw_graph writes out, before the DOT (the same steps: build, find the loop, name it)."""
    roots = flatten_roots(root)
    functions = collect_functions(roots)
    drawing = build(roots, functions, Names(functions, None, params or {}), show_shapes=False)
    find_hand_loop(drawing)
    name_loops(drawing)
    if mode == "folded":
        fold(drawing)
    return drawing


def steps_of(drawing):
    """step cluster -> the titles of the nodes inside it (the initial state left out)."""
    found = {}
    for node in drawing.nodes:
        step = next((c for c in node.cluster.chain() if c.kind == "step"), None) if node.cluster else None
        if step is not None and not node.title.startswith("initial"):
            found.setdefault(step.time, []).append(node.title)
    return {t: sorted(v) for t, v in sorted(found.items())}


def plain(title):
    return re.sub(r"<sub>.*?</sub>", "", title)


def recurrent_labels(src):
    """The labels of the recurrent arrows (drawn in the recurrence's colour, not constraining the layout)."""
    found = re.findall(r'^\s*n\d+ -> n\d+ \[.*constraint=false.*?label=("[^"]*"|<.*?>)(?=\s+\w+=|\]|$)', src, flags=re.M)
    return sorted(found)


@pytest.mark.parametrize("h0_grad, bias", [(False, True), (True, True), (True, False)])
def test_student_rnn_folded_names_what_the_loop_reads_and_carries(h0_grad, bias):
    loss, params = student_loop(h0_grad=h0_grad, bias=bias)
    src = drawn(loss, "folded", params=params)
    names = set(titles(src).values())
    assert {"initial h", "x<sub>t</sub>", "target<sub>t</sub>", "h<sub>t</sub>", "L<sub>t</sub>", "loss"} <= names
    assert not names & {"input", "leaf", "initial state"}
    assert recurrent_labels(src) == ['"h(t-1) ×4"', "<sum of L<sub>t</sub> ×4>"]
    for title, fill in (("initial h", HIDDEN_FILL), ("h<sub>t</sub>", HIDDEN_FILL), ("L<sub>t</sub>", LOSS_FILL),
                        ("x<sub>t</sub>", INPUT_FILL), ("target<sub>t</sub>", INPUT_FILL)):
        assert fill in node_of(src, title), title
    assert PARAM_FILL not in node_of(src, "initial h")  # an h0 that requires grad is no parameter


@pytest.mark.parametrize("h0_grad, bias", [(False, True), (True, True), (True, False)])
def test_each_step_holds_the_same_ops_and_the_initial_state_starts_the_first(h0_grad, bias):
    """With an h0 that requires grad (and no bias to anchor the steps) the first step's ``h0 @ W_hh`` is
    still the first step's, and h0 its initial state, not a parameter."""
    loss, params = student_loop(h0_grad=h0_grad, bias=bias)
    drawing = ir(loss, params=params)
    steps = steps_of(drawing)
    assert list(steps) == [0, 1, 2, 3]
    assert all(titles == steps[1] for titles in steps.values())
    assert steps[0].count("MatMul") == 3 and {"x", "h", "target", "L"} <= set(steps[0])
    (init,) = [n for n in drawing.nodes if n.title == "initial h"]
    assert init.role == "hidden" and init.cluster.time == 0
    assert [n.role for n in drawing.nodes if n.title == "h"] == ["hidden"] * 4


@pytest.mark.parametrize("case", [dict(), dict(h0_grad=True, bias=False), dict(cell="lstm"), dict(cell="gru"),
                                  dict(head=True)], ids=["rnn", "rnn-h0-grad", "lstm", "gru", "linear-head"])
def test_unrolled_draws_the_steps_with_the_names_folded_uses(case):
    loss, params = student_loop(**case)
    unrolled, folded = drawn(loss, "unrolled", params=params), drawn(loss, "folded", params=params)
    assert "note [" not in unrolled and "note [" not in folded
    assert {plain(t) for t in titles(unrolled).values()} == {plain(t) for t in titles(folded).values()}
    names = list(titles(unrolled).values())
    for name in ("x", "h", "target", "L") + (("c",) if case.get("cell") == "lstm" else ()):
        assert sorted(n for n in names if plain(n) == name) == [f"{name}<sub>{t}</sub>" for t in range(4)], name
    assert list(steps_of(ir(loss, params=params))) == [0, 1, 2, 3]
    assert [t.folded for t in ir(loss, "folded", params=params).clusters if t.kind == "step"] == [4]


def test_unrolled_running_sum_arrows_say_what_they_carry():
    loss, params = student_loop()
    src = drawn(loss, "unrolled", params=params)
    labels = re.findall(r"^\s*n\d+ -> n\d+ \[.*label=<(.*?)>(?=\s+\w+=|\]|$)", src, flags=re.M)
    assert labels == ["L<sub>0</sub>", "L<sub>0</sub>+L<sub>1</sub>", "L<sub>0</sub>+…+L<sub>2</sub>"]


def test_hand_lstm_states_are_told_apart_as_h_and_c():
    loss, params = student_loop("lstm")
    src = drawn(loss, "folded", params=params)
    t = titles(src)
    assert CELL_FILL in node_of(src, "c<sub>t</sub>") and HIDDEN_FILL in node_of(src, "h<sub>t</sub>")
    assert CELL_FILL in node_of(src, "initial c") and HIDDEN_FILL in node_of(src, "initial h")
    made = {t[b]: t[a] for a, b in re.findall(r"^\s*(n\d+) -> (n\d+)", src, flags=re.M)}
    assert (made["c<sub>t</sub>"], made["h<sub>t</sub>"]) == ("Add", "Mul")  # c = f·c + i·g, h = o·tanh(c)
    assert recurrent_labels(src) == ['"c(t-1) ×4"'] + ['"h(t-1) ×4"'] * 4 + ["<sum of L<sub>t</sub> ×4>"]


def test_gru_like_loop_has_one_state_h():
    loss, params = student_loop("gru")
    src = drawn(loss, "folded", params=params)
    names = set(titles(src).values())
    assert "h<sub>t</sub>" in names and "initial h" in names and not any("c<sub>" in n or "state" in n for n in names)
    # h_{t-1} is read four times: h @ W_hz, h @ W_hr, r * h and z * h
    assert recurrent_labels(src) == ['"h(t-1) ×4"'] * 4 + ["<sum of L<sub>t</sub> ×4>"]


def test_an_nn_linear_head_per_step_stays_in_its_step():
    loss, params = student_loop(head=True)
    drawing = ir(loss, params=params)
    assert all(titles.count("Linear") == 1 for titles in steps_of(drawing).values())
    src = drawn(loss, "folded", params=params)
    t = titles(src)
    edges = re.findall(r"^\s*(n\d+) -> (n\d+)", src, flags=re.M)
    (linear,) = [k for k, v in t.items() if v == "Linear"]
    assert {t[a] for a, b in edges if b == linear} == {"h<sub>t</sub>", "weight", "bias"}
    assert {t[b] for a, b in edges if t[a] == "L<sub>t</sub>"} == {"Add"}


def test_given_names_win_over_the_names_found():
    rng = np.random.default_rng(0)
    W_xh = tr.tensor(rng.normal(size=(3, 4)), requires_grad=True, name="U")
    W_hh = tr.tensor(rng.normal(size=(4, 4)), requires_grad=True)
    h = tr.tensor(np.zeros((2, 4)), name="start")
    for t in range(3):
        h = (tr.tensor(rng.normal(size=(2, 3)), name="frame") @ W_xh + h @ W_hh).tanh()
        h.name = "hid"
    for mode in ("unrolled", "folded"):
        src = drawn(h.sum(), mode, params={"V": W_hh})
        names = set(titles(src).values())
        assert {"U", "V", "start", "frame", "hid"} <= names, mode
        assert not names & {"initial h", "h<sub>t</sub>", "x<sub>t</sub>", "h<sub>0</sub>", "x<sub>0</sub>"}, mode
    assert recurrent_labels(src) == ['"hid(t-1) ×3"']


def test_two_states_that_cannot_be_told_apart_are_numbered():
    """Both states feed weights in the next step: no cell state to tell apart, so ``state 1``, ``state 2``."""
    rng = np.random.default_rng(0)
    A, B, C, D, E = (tr.tensor(rng.normal(size=s) * 0.3, requires_grad=True) for s in [(3, 4)] + [(4, 4)] * 4)
    h1, h2 = tr.tensor(np.zeros((2, 4))), tr.tensor(np.zeros((2, 4)))
    for t in range(4):
        h1 = (tr.tensor(rng.normal(size=(2, 3))) @ A + h1 @ B + h2 @ E).tanh()
        h2 = (h1 @ C + h2 @ D).tanh()
    src = drawn(h2.sum(), "folded")
    names = set(titles(src).values())
    assert {"state 1<sub>t</sub>", "state 2<sub>t</sub>", "initial state 1", "initial state 2"} <= names
    assert "h<sub>t</sub>" not in names
    assert recurrent_labels(src) == ['"state 1(t-1) ×4"', '"state 2(t-1) ×4"', '"state 2(t-1) ×4"']


def test_a_chain_of_ops_on_one_leaf_is_no_loop():
    """``y = y.tanh()`` repeated reads no weight per step: nothing is folded, and unrolled draws every op."""
    y = x = tr.tensor(0.5, requires_grad=True)
    for _ in range(30):
        y = y.tanh()
    with pytest.warns(UserWarning, match="no recurrence found"):
        draw_graph(y, mode="folded")
    assert not steps_of(ir(y)) and len(titles(drawn(y, "unrolled"))) == 32
    assert x.requires_grad


def test_named_constants_keep_their_names_after_backward_lets_them_go():
    """backward() stops holding the inputs that need no gradient; a drawing made afterwards still
    names them (the per-step targets of the lecture's many-to-many model) and no unnamed "input"
    appears in their place."""
    from tinygrad_rnn.lecture_graphs import run_lecture_model

    model, loss = run_lecture_model("test", "many-to-many", 3, "rnn")
    before = draw_graph(loss, model=model).source
    loss.backward()
    gc.collect()  # nothing else holds the targets: the weak references are dead
    after = draw_graph(loss, model=model).source
    assert before.count("label=<target<br/>") == after.count("label=<target<br/>") == 3
    assert "label=<input<br/>" in after  # the unnamed input sequence, let go as well, stays "input"
    assert after.count("label=<input<br/>") == before.count("label=<input<br/>")
