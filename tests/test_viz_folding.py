"""Folding hand-written loops: ``mode="folded"`` on an RNN written with Tensor ops, with
``tr.autograd.scope(step=t)`` and without it (the recurrence is found in the graph), and a clear
note and warning where there is no loop to fold."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn import nn
from tinygrad_rnn.viz import draw_graph
from tinygrad_rnn.viz.draw import NO_GRADS_NOTE, NO_LOOP_NOTE

RECURRENT = 'color="#d9480f" penwidth=2'


def nodes(src):
    """id -> title (first line of the label) of every node statement."""
    found = re.findall(r"^\s*(n\d+) \[label=<(.*?)(?:<br/>|>[ \]])", src, flags=re.M)
    return dict(found)


def edges(src):
    """(src id, dst id, attribute text) of every drawn arrow between nodes (``b -> a [dir=back]`` runs
    from a to b; invisible layout arrows are left out)."""
    found = re.findall(r"^\s*(n\d+) -> (n\d+)(?: \[(.*)\])?$", src, flags=re.M)
    return [(b, a, attrs) if "dir=back" in attrs else (a, b, attrs) for a, b, attrs in found if "style=invis" not in attrs]


def ids(src, title):
    return [k for k, v in nodes(src).items() if v == title]


def one(src, title):
    found = ids(src, title)
    assert len(found) == 1, (title, sorted(set(nodes(src).values())))
    return found[0]


def into(src, node):
    return {a for a, b, _ in edges(src) if b == node}


def out_of(src, node):
    return {b for a, b, _ in edges(src) if a == node}


def weight(rng, *shape, name):
    return tr.tensor(0.3 * rng.standard_normal(shape), dtype=tr.float32, requires_grad=True, name=name)


def hand_rnn(steps=4, scoped=False, loss="ce"):
    """tanh(x_t W_xh + h W_hh + b_h), h0 = zeros, a per-step loss against targets summed over steps
    (``loss="ce"``: cross-entropy on h W_hy; ``"mse"``: squared error), or ``"last"``: the README's
    ``h.sum()`` after the loop."""
    rng = np.random.default_rng(0)
    W_xh, W_hh, W_hy = weight(rng, 3, 4, name="W_xh"), weight(rng, 4, 4, name="W_hh"), weight(rng, 4, 5, name="W_hy")
    b_h = tr.tensor(np.zeros(4), dtype=tr.float32, requires_grad=True, name="b_h")
    xs = tr.tensor(rng.standard_normal((steps, 2, 3)), dtype=tr.float32)
    ys = tr.tensor(rng.integers(0, 5, (steps, 2)))
    yf = tr.tensor(rng.standard_normal((steps, 2, 5)), dtype=tr.float32)
    h = tr.zeros(2, 4)
    total = 0
    for t in range(steps):
        with tr.autograd.scope(step=t) if scoped else _nothing():
            h = (xs[t] @ W_xh + h @ W_hh + b_h).tanh()
            if loss == "ce":
                total = total + F.cross_entropy(h @ W_hy, ys[t])
            elif loss == "mse":
                total = total + ((h @ W_hy - yf[t]) ** 2).mean()
    return h.sum() if loss == "last" else total


def hand_lstm(steps=4, scoped=False):
    """An LSTM written out with Tensor ops: two states (h, c), both starting at zeros; per-step losses
    collected in a list and averaged after the loop. ``cat([x_t, h])`` of the first step is a constant
    (neither needs a gradient), so the recorded graph starts with ``c`` as its only initial state
    (``z_0`` is the step's input)."""
    rng = np.random.default_rng(1)
    W = {g: weight(rng, 3 + 4, 4, name=f"W_{g}") for g in "ifgo"}
    xs = tr.tensor(rng.standard_normal((steps, 2, 3)), dtype=tr.float32)
    ys = tr.tensor(rng.standard_normal((steps, 2, 4)), dtype=tr.float32)
    h, c = tr.zeros(2, 4), tr.zeros(2, 4)
    losses = []
    for t in range(steps):
        with tr.autograd.scope(step=t) if scoped else _nothing():
            z = tr.cat([xs[t], h], dim=1)
            i, f, o = (z @ W["i"]).sigmoid(), (z @ W["f"]).sigmoid(), (z @ W["o"]).sigmoid()
            c = f * c + i * (z @ W["g"]).tanh()
            h = o * c.tanh()
            losses.append(F.mse_loss(h, ys[t]))
    return tr.stack(losses).mean()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def folded(loss, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return draw_graph(loss, mode="folded", show_shapes=False, **kw).source


# ---------------------------------------------------------------------------- 1. no recurrence: say so
def mlp_loss():
    tr.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
    return F.mse_loss(model(tr.randn(5, 3)), tr.randn(5, 2))


def test_folding_a_graph_without_recurrence_warns_and_notes_it_on_the_picture():
    with pytest.warns(UserWarning, match=r"draw_graph: no recurrence found.*tr\.autograd\.scope\(step=t\)"):
        src = draw_graph(mlp_loss(), mode="folded").source
    assert re.search(r"^\s*note \[label=<no recurrence found", src, flags=re.M)
    assert "tr.autograd.scope(step=t)" in src.replace("<br/>", " ")
    assert "t (×" not in src  # nothing folded


def test_a_hand_written_mlp_is_not_taken_for_a_loop():
    rng = np.random.default_rng(0)
    W1, W2 = weight(rng, 3, 8, name="W1"), weight(rng, 8, 8, name="W2")
    x = tr.tensor(rng.standard_normal((5, 3)), dtype=tr.float32)
    loss = ((x @ W1).relu() @ W2).relu().sum()
    with pytest.warns(UserWarning, match="no recurrence found"):
        src = draw_graph(loss, mode="folded").source
    assert "note [" in src


def test_unrolled_mode_and_library_layers_give_no_loop_note():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "note [" not in draw_graph(mlp_loss()).source
        out, _ = nn.LSTM(3, 4)(tr.randn(5, 1, 3))
        assert "note [" not in draw_graph(out.sum(), mode="folded").source


def test_both_notes_appear_together():
    with pytest.warns(UserWarning) as record:
        src = draw_graph(mlp_loss(), mode="folded", show_grads=True).source
    messages = " ".join(str(w.message) for w in record)
    assert "no recurrence found" in messages and "no gradients recorded yet" in messages
    text = src.replace("<br/>", " ")
    assert NO_GRADS_NOTE.split(":")[0] in text and NO_LOOP_NOTE.split(":")[0] in text


# ---------------------------------------------------------------------------- 2. with scope(step=t)
H_T, X_T, TARGET_T, L_T = "h<sub>t</sub>", "x<sub>t</sub>", "target<sub>t</sub>", "L<sub>t</sub>"


def check_folded_rnn(src, steps, target_op):
    """The folded hand-written RNN, named as the lecture draws it: one cell; ``initial h`` into the loop;
    the state ``h_t`` made by the Tanh and read back through ``h(t-1) ×T``; ``x_t`` into W_xh's MatMul,
    ``target_t`` into the loss, whose value ``L_t`` is added to the running sum (``sum of L_t ×T``)."""
    assert f"t (×{steps} steps)" in src
    init = one(src, "initial h")
    matmul_hh = [n for n in out_of(src, one(src, "W_hh"))]
    assert len(matmul_hh) == 1 and nodes(src)[matmul_hh[0]] == "MatMul"
    feeding = into(src, matmul_hh[0])
    assert init in feeding  # h0 starts the loop
    h = one(src, H_T)
    assert {nodes(src)[n] for n in feeding} == {"W_hh", "initial h", H_T}
    assert {nodes(src)[n] for n in into(src, h)} == {"Tanh"}
    recurrent = [(a, b, attrs) for a, b, attrs in edges(src) if RECURRENT in attrs]
    assert [(a, b) for a, b, _ in recurrent if b == matmul_hh[0]] == [(h, matmul_hh[0])]
    assert all(f'label="h(t-1) ×{steps}"' in attrs for a, _, attrs in recurrent if a == h)
    (matmul_xh,) = out_of(src, one(src, "W_xh"))
    assert one(src, X_T) in into(src, matmul_xh)
    assert {nodes(src)[n] for n in out_of(src, one(src, TARGET_T))} == {target_op}
    (running,) = out_of(src, one(src, L_T))
    assert nodes(src)[running] == "Add"
    assert [attrs for a, b, attrs in recurrent if a == b == running] == [
        f'color="#d9480f" penwidth=2 constraint=false fontcolor="#d9480f" label=<sum of L<sub>t</sub> ×{steps}>']
    assert "input" not in nodes(src).values() and "state(t-1)" not in src


@pytest.mark.parametrize("loss, target_op", [("ce", "CrossEntropy"), ("mse", "Sub")])
def test_scoped_rnn_folds_with_initial_state_inputs_and_targets_in_place(loss, target_op):
    src = folded(hand_rnn(scoped=True, loss=loss))
    check_folded_rnn(src, 4, target_op)


def hand_lstm_split(steps=4, scoped=False):
    """The LSTM with separate input and recurrent weights per gate: h0 and c0 both in the graph."""
    rng = np.random.default_rng(2)
    Wx = {g: weight(rng, 3, 4, name=f"W_x{g}") for g in "ifgo"}
    Wh = {g: weight(rng, 4, 4, name=f"W_h{g}") for g in "ifgo"}
    xs = tr.tensor(rng.standard_normal((steps, 2, 3)), dtype=tr.float32)
    h, c = tr.zeros(2, 4), tr.zeros(2, 4)
    for t in range(steps):
        with tr.autograd.scope(step=t) if scoped else _nothing():
            i, f, o, g = (xs[t] @ Wx[k] + h @ Wh[k] for k in "ifgo")
            c = f.sigmoid() * c + i.sigmoid() * g.tanh()
            h = o.sigmoid() * c.tanh()
    return (h * h).sum()


@pytest.mark.parametrize("scoped", [True, False])
def test_lstm_folds_with_both_initial_states_feeding_the_loop(scoped):
    """Two states told apart by the structure: h_t is computed from c_t within the step (h = o·tanh(c)), c_t
    not from h_t, and c feeds no weight: c is the cell state."""
    src = folded(hand_lstm_split(scoped=scoped))
    assert "t (×4 steps)" in src
    inits = [one(src, "initial h"), one(src, "initial c")]
    assert [sorted(nodes(src)[n] for n in out_of(src, i)) for i in inits] == [["MatMul"] * 4, ["Mul"]]
    recurrent = sorted((nodes(src)[a], nodes(src)[b]) for a, b, attrs in edges(src) if RECURRENT in attrs)
    assert recurrent == [("c<sub>t</sub>", "Mul")] + [(H_T, "MatMul")] * 4  # c into f*c, h into the 4 h @ W_h·
    assert {nodes(src)[n] for n in into(src, one(src, "c<sub>t</sub>"))} == {"Add"}
    assert {nodes(src)[n] for n in into(src, one(src, H_T))} == {"Mul"}
    assert 'label="c(t-1) ×4"' in src and src.count('label="h(t-1) ×4"') == 4
    body = src.split("subgraph cluster_0 {")[1].split("}")[0]
    assert "Sum" not in body and body.count("label=<MatMul>") == 8


def test_scoped_lstm_folds_with_the_cell_state_and_two_recurrences():
    src = folded(hand_lstm(scoped=True))
    assert "t (×4 steps)" in src
    (init,) = [n for n, title in nodes(src).items() if title.startswith("initial")]
    assert nodes(src)[init] == "initial c" and {nodes(src)[n] for n in out_of(src, init)} == {"Mul"}
    recurrent = [(nodes(src)[a], nodes(src)[b]) for a, b, attrs in edges(src) if RECURRENT in attrs]
    assert sorted(recurrent) == [("c<sub>t</sub>", "Mul"), (H_T, "Cat")]  # c into f*c, h into cat([x, h])
    # the per-step losses are collected in a list and averaged after the loop: each step's one is L_t
    assert {nodes(src)[n] for n in out_of(src, one(src, L_T))} == {"Stack"}
    assert {nodes(src)[n] for n in into(src, one(src, L_T))} == {"Mean"}


# ---------------------------------------------------------------------------- 3. found without scopes
@pytest.mark.parametrize("loss", ["ce", "mse", "last"])
def test_hand_written_rnn_folds_without_scopes_as_with_them(loss):
    auto = folded(hand_rnn(scoped=False, loss=loss))
    assert auto == folded(hand_rnn(scoped=True, loss=loss))
    if loss != "last":
        check_folded_rnn(auto, 4, {"ce": "CrossEntropy", "mse": "Sub"}[loss])


def test_hand_written_lstm_folds_without_scopes_as_with_them():
    assert folded(hand_lstm(scoped=False)) == folded(hand_lstm(scoped=True))


def test_folded_hand_loop_size_does_not_depend_on_the_number_of_steps():
    short, long = folded(hand_rnn(steps=3)), folded(hand_rnn(steps=30))
    assert re.sub(r"×3\b", "×N", short).replace("t=2", "t=L") == re.sub(r"×30\b", "×N", long).replace("t=29", "t=L")


def test_readme_rnn_folds_with_the_sum_after_the_loop_outside_it():
    src = folded(hand_rnn(loss="last"))
    body = src.split("subgraph cluster_0 {")[1].split("}")[0]
    assert "t (×4 steps)" in body and "Tanh" in body and "Sum" not in body
    assert re.search(r"label=<Sum", src)


def test_loop_in_unrolled_mode_is_drawn_as_its_steps_without_a_note():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        src = draw_graph(hand_rnn(), show_shapes=False).source
    assert "note [" not in src
    for t in range(4):  # each step's values carry its step number (from the step they were put in)
        assert all(len(ids(src, f"{name}<sub>{t}</sub>")) == 1 for name in ("h", "x", "target", "L"))
    assert not ids(src, "h<sub>4</sub>")
    assert len(ids(src, "initial h")) == 1 and "input" not in nodes(src).values()


def test_grads_on_a_folded_hand_loop_are_drawn_without_a_note():
    with tr.retain_grads():
        loss = hand_rnn()
        loss.backward()
    W_hh = next(t for t in _leaves(loss) if t.name == "W_hh")
    src = folded(loss, show_grads=True, params={"W_hh": W_hh})
    expected = float(np.linalg.norm(W_hh.grad.numpy()))
    assert "t (×4 steps)" in src and "note [" not in src
    assert f"‖g‖={expected:.1e}" in src


def _leaves(tensor):
    """The leaf tensors a result was computed from (through the recorded functions)."""
    from tinygrad_rnn.viz.walk import collect_functions
    found = []
    for fn in collect_functions([tensor]):
        found.extend(link for link in fn.next if link is not None and type(link) is not tuple)
    return found


def cluster_body(src, label):
    """The statements of the cluster labelled ``label`` (up to its first closing brace)."""
    return src.split(f'label="{label}"')[1].split("}")[0]


def test_a_loop_of_linear_layers_in_a_module_folds_whole():
    class MyRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.i2h, self.h2h, self.out = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, xs):
            h = tr.zeros(xs.shape[1], 4)
            for x in xs:
                h = (self.i2h(x) + self.h2h(h)).tanh()
            return self.out(h)

    tr.manual_seed(0)
    src = folded(MyRNN()(tr.randn(5, 2, 3)).sum())
    body = cluster_body(src, "t (×5 steps)")
    assert body.count("label=<Tanh") == 1 and body.count("label=<Add") == 1
    assert list(nodes(src).values()).count("Linear") == 3  # i2h and h2h once, out after the loop
    assert "calls" not in src and len(ids(src, "initial h")) == 1
    assert {nodes(src)[n] for n in into(src, one(src, H_T))} == {"Tanh"}


def test_a_cell_module_called_in_a_loop_folds_as_its_calls():
    tr.manual_seed(0)
    cell, h = nn.RNNCell(3, 4), tr.zeros(2, 4)
    for x in tr.randn(4, 2, 3):
        h = cell(x, h)
    src = folded(h.sum())
    assert "RNNCell (×4 calls)" in src and "steps)" not in src


def test_ops_before_the_loop_stay_outside_it():
    rng = np.random.default_rng(3)
    E, W, U = weight(rng, 10, 3, name="E"), weight(rng, 3, 4, name="W"), weight(rng, 4, 4, name="U")
    emb = E[tr.tensor(rng.integers(0, 10, (4, 2)))]  # the whole sequence embedded at once
    h = tr.zeros(2, 4)
    for t in range(4):
        h = (emb[t] @ W + h @ U).tanh()
    src = folded(h.sum())
    body = cluster_body(src, "t (×4 steps)")
    assert body.count("GetItem") == 1 and list(nodes(src).values()).count("GetItem") == 2


def test_weights_read_through_a_transpose_are_found_as_weights():
    """PyTorch's layout, ``x_t @ W_ih.T + h @ W_hh.T``: the loop folds as with ``h @ W_hh`` (each step's
    ``.T`` reads only the weight, so the MatMuls still read W_hh once per step)."""
    rng = np.random.default_rng(0)
    W_ih, W_hh = weight(rng, 4, 3, name="W_ih"), weight(rng, 4, 4, name="W_hh")
    h = tr.zeros(1, 4)
    for x_t in tr.tensor(rng.standard_normal((5, 1, 3)), dtype=tr.float32):
        h = (x_t @ W_ih.T + h @ W_hh.T).tanh()
    src = folded(h.sum())
    assert NO_LOOP_NOTE.split(":")[0] not in src
    assert "t (×5 steps)" in src and "×5" in src
    assert len(ids(src, "W_hh")) == 1
