"""The backward-order recording and the explorer page (``tr.viz.explore``), without a browser."""
import contextlib
import gc
import html
import json
import math
import re
import shutil
import weakref

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn
from tinygrad_rnn.recording import RECORDING
from tinygrad_rnn.viz.explore import NO_RECORD_NOTE, example_page
from tinygrad_rnn.viz.walk import collect_functions

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")


def _chain(context=None, backward=False):
    """h1 = tanh(W x), h2 = tanh(W h1), L = sum(h2), recorded inside ``context`` (default
    retain_grads(): every op keeps its output gradients), with ``L.backward()`` inside it too when
    ``backward``; named so the page's nodes can be found."""
    tr.manual_seed(0)
    W = tr.randn(3, 3, requires_grad=True)
    x = tr.randn(3)
    with context if context is not None else tr.retain_grads():
        h1 = (W @ x).tanh()
        h1.name = "h1"
        h2 = (W @ h1).tanh()
        h2.name = "h2"
        loss = h2.sum()
        loss.name = "L"
        if backward:
            loss.backward()
    return W, x, h1, h2, loss


def _page_data(page):
    found = re.search(r'<script type="application/json" id="tgx-data">(.*?)</script>', page, re.S)
    return json.loads(found.group(1))


def _by_title(nodes, title):
    hits = [n for n in nodes.values() if n["title"] == title]
    assert len(hits) == 1, f"{len(hits)} nodes titled {title!r}"
    return hits[0]


# ----------------------------------------------------------------------------- recording
def test_record_matches_the_engines_order():
    W, x, h1, h2, loss = _chain()
    ran = []
    for t in (h1, h2, loss):
        t.register_hook(lambda g, t=t: ran.append(t.grad_fn))
    with tr.viz.record_backward() as record:
        loss.backward()
    fns = record.functions
    assert [fn.name for fn in fns] == ["Sum", "Tanh", "MatMul", "Tanh", "MatMul"]
    # the hooks run when the walk reaches each creator: the same order as the record
    assert [fns.index(fn) for fn in ran] == sorted(fns.index(fn) for fn in ran)
    assert ran == [loss.grad_fn, h2.grad_fn, h1.grad_fn]


def test_record_norms_are_the_gradients_norms():
    W, x, h1, h2, loss = _chain()
    with tr.viz.record_backward() as record:
        loss.backward()
    (_, out, sent), (tanh_fn, tanh_out, _) = record.steps[0], record.steps[1]
    assert out == [1.0]
    assert sent[(id(h2.grad_fn), 0)] == pytest.approx(math.sqrt(3.0))  # d sum / d h2 = ones(3)
    assert tanh_out[0] == pytest.approx(float(np.linalg.norm(tanh_fn.trace.out_grads[0])))
    parts = [s[id(W)] for _, _, s in record.steps if id(W) in s]
    assert len(parts) == 2 and record.leaves[id(W)] is W
    # the two parts sum to W.grad
    assert math.hypot(*parts) > 0 and np.linalg.norm(W.grad.numpy()) <= sum(parts) + 1e-6


def test_recording_is_off_by_default_and_restored():
    assert RECORDING.record is None
    W, x, h1, h2, loss = _chain()
    loss.backward(retain_graph=True)
    assert RECORDING.record is None
    with tr.viz.record_backward() as outer:
        with tr.viz.record_backward() as inner:
            loss.backward(retain_graph=True)
        assert RECORDING.record is outer
    assert RECORDING.record is None
    assert len(inner.steps) == 5 and outer.steps == []


def test_record_under_create_graph():
    x = tr.tensor([0.5, -1.0], requires_grad=True)
    with tr.viz.record_backward() as record:
        (x * x * x).sum().backward(create_graph=True)
    assert [fn.name for fn in record.functions][0] == "Sum"
    assert record.steps[-1][2][id(x)] > 0


# ----------------------------------------------------------------------------- the page
@needs_dot
def test_page_metadata_values_and_grads():
    W, x, h1, h2, loss = _chain()
    with tr.viz.record_backward() as record:
        loss.backward()
    page = tr.viz.explore(loss, params={"W": W}, record=record).html
    data = _page_data(page)
    nodes = data["views"]["unrolled"]["nodes"]
    w = _by_title(nodes, "W")
    assert w["shape"] == [3, 3] and w["dtype"] == "float32" and w["device"] == "cpu"
    values = W.numpy().astype(np.float64)
    assert w["value"]["min"] == pytest.approx(values.min()) and w["value"]["max"] == pytest.approx(values.max())
    assert w["value"]["mean"] == pytest.approx(values.mean())
    assert w["value"]["values"] == pytest.approx(values.ravel().tolist())
    assert w["grad"]["norm"] == pytest.approx(float(np.linalg.norm(W.grad.numpy())), rel=1e-5)
    h1_node = _by_title(nodes, "h1")
    assert h1_node["grad"]["values"] == pytest.approx(h1.grad_fn.trace.out_grads[0].tolist())
    # the stepper: L from the first step, h2 from Sum's, W and h1 from the first MatMul's (step 3)
    assert [data["steps"][k]["op"] for k in range(5)] == ["Sum", "Tanh", "MatMul", "Tanh", "MatMul"]
    assert (_by_title(nodes, "L")["lit"], _by_title(nodes, "h2")["lit"], w["lit"], h1_node["lit"]) == (0, 0, 2, 2)
    assert data["note"] is None


@needs_dot
def test_names_are_escaped():
    W, x, h1, h2, loss = _chain()
    h1.name = "</script><script>alert(1)</script>"
    page = tr.viz.explore(loss, params={"<script>evil()</script>": W}).html
    assert "<script>alert" not in page and "<script>evil" not in page
    assert page.count("<script") == 2 and page.count("</script>") == 2
    names = {n["title"] for n in _page_data(page)["views"]["unrolled"]["nodes"].values()}
    assert {"<script>evil()</script>", "</script><script>alert(1)</script>"} <= names


@needs_dot
def test_page_references_no_external_url(tmp_path):
    W, x, h1, h2, loss = _chain()
    path = tr.viz.explore(loss).save(tmp_path / "graph.html")
    page = path.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:|//)""", page, re.I)
    assert not re.search(r"@import|url\(", page, re.I)
    # the one URL-shaped string is the SVG namespace name createElementNS needs (never fetched)
    assert set(re.findall(r"https?://[^\s\"'<>]*", page)) <= {"http://www.w3.org/2000/svg"}


@needs_dot
def test_without_a_record_the_page_says_so():
    W, x, h1, h2, loss = _chain()
    loss.backward()
    explorer = tr.viz.explore(loss, mode="folded")
    inline = explorer._repr_html_()
    assert inline.startswith("<iframe srcdoc=") and "<script" not in inline  # the page is an escaped attribute
    data = _page_data(html.unescape(re.search(r'srcdoc="([^"]*)"', inline).group(1)))
    assert data["steps"] is None and data["note"] == NO_RECORD_NOTE
    assert data["mode"] == "folded"
    assert all(n["lit"] is None for n in data["views"]["unrolled"]["nodes"].values())


@needs_dot
def test_both_views_match_draw_graph():
    tr.manual_seed(1)
    cell = nn.RNNCell(2, 3)
    h = tr.zeros(1, 3)
    x = tr.randn(1, 6, 2)
    for t in range(6):
        h = cell(x[:, t], h)
    loss = h.sum()
    data = _page_data(tr.viz.explore(loss, model=cell).html)
    for mode in ("unrolled", "folded"):
        source = tr.viz.draw_graph(loss, model=cell, mode=mode).source
        drawn = set(re.findall(r"^\t+(n\d+) \[", source, re.M))
        assert set(data["views"][mode]["nodes"]) == drawn
    assert len(data["views"]["folded"]["nodes"]) < len(data["views"]["unrolled"]["nodes"])


def test_bad_arguments_are_named():
    W, x, h1, h2, loss = _chain()
    with pytest.raises(ValueError, match="explore: mode"):
        tr.viz.explore(loss, mode="rolled")
    with pytest.raises(TypeError, match="explore: record"):
        tr.viz.explore(loss, record=[])
    with pytest.raises(TypeError, match="explore: params"):
        tr.viz.explore(loss, params=[W])


# ----------------------------------------------------------------------------- command line and examples
@needs_dot
def test_cli_graph_writes_the_explorer(tmp_path, capsys):
    from tinygrad_rnn import cli

    html_path, svg_path = tmp_path / "out.html", tmp_path / "out.svg"
    assert cli.main(["graph", "many-to-many", "--cell", "lstm", "--steps", "3", "--html", str(html_path),
                     "-o", str(svg_path)]) == 0
    assert svg_path.read_text().lstrip().startswith("<?xml")
    data = _page_data(html_path.read_text(encoding="utf-8"))
    assert data["steps"] and data["steps"][0]["op"] == "Sum" and data["note"] is None
    hidden = [n for n in data["views"]["unrolled"]["nodes"].values() if n["role"] == "hidden" and n["step"] is not None]
    assert sorted({n["step"] for n in hidden}) == [0, 1, 2] and all(n["norm"] > 0 for n in hidden)
    assert all(n["value"]["size"] > 0 for n in hidden)  # the lecture's forward pass ran inside the record
    assert cli.main(["graph", "many-to-one", "--html", str(tmp_path / "only.html")]) == 0
    assert (tmp_path / "only.html").exists()


@needs_dot
def test_example_graph_writes_html_beside_svg(tmp_path):
    import argparse

    from tinygrad_rnn.examples_support import ExampleRun

    tr.manual_seed(0)
    model = nn.Linear(2, 1)
    loss = model(tr.randn(4, 2)).pow(2).mean()
    run = ExampleRun("test", argparse.Namespace(device="cpu", quick=True, seed=0, out=str(tmp_path)))
    svg = run.graph(loss, "graph", model=model)
    assert "graph.html" in run.outputs
    page = (tmp_path / "graph.html").read_text(encoding="utf-8")
    data = _page_data(page)
    # the loss was not backpropagated yet: the page ran one backward of its own and put the grads back
    assert svg == tmp_path / "graph.svg" and data["note"] is None
    assert [step["op"] for step in data["steps"]][0] == "Mean"
    assert model.weight.grad is None and model.bias.grad is None
    titles = {n["title"] for n in data["views"]["unrolled"]["nodes"].values()}
    assert {"weight", "bias"} <= titles


@needs_dot
def test_steps_of_a_fused_sequence_op():
    tr.manual_seed(2)
    lstm = nn.LSTM(3, 4, batch_first=True)
    x = tr.randn(2, 5, 3)
    with tr.retain_grads():
        out, (h, c) = lstm(x)
        loss = out.pow(2).sum()
    with tr.viz.record_backward() as record:
        loss.backward()
    nodes = _page_data(tr.viz.explore(loss, model=lstm, record=record).html)["views"]["unrolled"]["nodes"]
    hidden = sorted((n for n in nodes.values() if n["role"] == "hidden" and n["step"] is not None),
                    key=lambda n: n["step"])
    sequence_step = [fn.name for fn in record.functions].index(hidden[0]["op"])
    assert [n["step"] for n in hidden] == [0, 1, 2, 3, 4]
    assert all(n["shape"] == [2, 4] and n["dtype"] == "float32" and n["lit"] == sequence_step for n in hidden)
    fn = record.functions[sequence_step]
    assert [n["norm"] for n in hidden] == pytest.approx([float(v) for v in fn.trace.step_grad_norms])


def _hand_rnn_page(steps=5):
    """The README's RNN written with tensor ops (float64), recorded; also each step's h for the oracle."""
    rng = np.random.default_rng(3)
    W_xh = tr.tensor(rng.standard_normal((3, 4)), dtype=tr.float64, requires_grad=True)
    W_hh = tr.tensor(rng.standard_normal((4, 4)), dtype=tr.float64, requires_grad=True)
    b_h = tr.zeros(4, dtype=tr.float64, requires_grad=True)
    xs = tr.tensor(rng.standard_normal((steps, 1, 3)), dtype=tr.float64)
    hs = []
    with tr.retain_grads(), tr.viz.record_backward() as record:
        h = tr.zeros(1, 4, dtype=tr.float64)
        for x_t in xs:
            h = (x_t @ W_xh + h @ W_hh + b_h).tanh()
            h.retain_grad()
            hs.append(h)
        loss = h.sum()
        loss.backward()
    page = tr.viz.explore(loss, params={"W_xh": W_xh, "W_hh": W_hh, "b_h": b_h}, record=record).html
    return _page_data(page), hs


def test_hand_written_loop_gets_steps_and_the_chart_its_states():
    data, hs = _hand_rnn_page(5)
    for view in ("unrolled", "folded"):
        assert data["views"][view]["nodes"]
    nodes = data["views"]["unrolled"]["nodes"].values()
    assert {n["step"] for n in nodes} - {None} == set(range(5))
    states = {n["step"]: n["norm"] for n in nodes if n["role"] == "hidden" and n["norm"] and n["lit"] is not None}
    expected = [float(np.linalg.norm(h.grad.numpy().astype(np.float64))) for h in hs]
    assert sorted(states) == list(range(5))
    np.testing.assert_allclose([states[t] for t in range(5)], expected, rtol=1e-6, atol=1e-12)
    assert len(set(expected)) == 5  # distinct per step: the chart is not one value repeated
    # the forward pass ran inside the record too: each h_t shows its value
    values = {n["step"]: n["value"] for n in nodes if n["role"] == "hidden" and n["norm"] and n["lit"] is not None}
    for t in range(5):
        _assert_stats(values[t], hs[t].numpy())


def test_mlp_without_a_loop_has_no_chart_points():
    lin1, lin2 = nn.Linear(3, 4), nn.Linear(4, 1)
    with tr.viz.record_backward() as record:
        loss = lin2(lin1(tr.randn(2, 3)).tanh()).sum()
        loss.backward()
    data = _page_data(tr.viz.explore(loss, record=record).html)
    for view in ("unrolled", "folded"):
        nodes = data["views"][view]["nodes"].values()
        assert all(n["step"] is None for n in nodes)
        assert not any(n["role"] == "hidden" for n in nodes)


# ----------------------------------------------------------------------------- values of intermediate results
def _recorded_chain():
    """``_chain`` with its forward pass run inside ``record_backward()``: every op keeps its value."""
    with tr.viz.record_backward() as record:
        W, x, _, _, loss = _chain(contextlib.nullcontext(), backward=True)
    return W, x, loss, record


def _assert_stats(stats, reference):
    reference = np.asarray(reference, dtype=np.float64).ravel()
    assert stats["size"] == reference.size
    for key, expected in (("min", reference.min()), ("max", reference.max()), ("mean", reference.mean()),
                          ("norm", np.linalg.norm(reference))):
        assert stats[key] == pytest.approx(float(expected), rel=1e-5, abs=1e-6), key
    assert stats["values"] == pytest.approx(reference.tolist(), rel=1e-5, abs=1e-6)


@needs_dot
def test_values_of_ops_made_inside_the_record():
    W, x, loss, record = _recorded_chain()
    nodes = _page_data(tr.viz.explore(loss, params={"W": W}, record=record).html)["views"]["unrolled"]["nodes"]
    # the oracle: the same forward pass in float64 NumPy, run outside any record
    w, xv = W.numpy().astype(np.float64), x.numpy().astype(np.float64)
    a1 = w @ xv
    h1 = np.tanh(a1)
    a2 = w @ h1
    h2 = np.tanh(a2)
    _assert_stats(_by_title(nodes, "h1")["value"], h1)
    _assert_stats(_by_title(nodes, "h2")["value"], h2)
    _assert_stats(_by_title(nodes, "L")["value"], [h2.sum()])
    ops = [n for n in nodes.values() if n["kind"] == "op"]
    assert sorted(n["title"] for n in ops) == ["MatMul", "MatMul", "Sum", "Tanh", "Tanh"]
    matmuls = sorted((n["value"] for n in ops if n["title"] == "MatMul"), key=lambda v: v["norm"])
    for stats, reference in zip(matmuls, sorted((a1, a2), key=np.linalg.norm)):
        _assert_stats(stats, reference)  # an op's unnamed output is shown on the op
    assert all(n["value"] is not None for n in ops)


def test_values_are_kept_only_inside_the_record():
    W = tr.randn(3, requires_grad=True)
    before = (W * 2).sum()
    with tr.viz.record_backward():
        inside = (W * 3).sum()
        total = before + inside
        total.backward()
    after = (W * 4).sum()
    assert before.grad_fn.trace.out_stats is None and before.grad_fn.next[0][0].trace.out_stats is None
    assert after.grad_fn.trace.out_stats is None and after.grad_fn.trace.step_stats is None
    assert inside.grad_fn.trace.out_stats[0]["values"] == pytest.approx([3 * float(W.numpy().sum())], rel=1e-5)
    assert total.grad_fn.trace.out_stats[0]["size"] == 1
    with tr.viz.record_backward():  # statistics only: the output array itself is not held
        z = W + 1
        fn, ref = z.grad_fn, weakref.ref(z.array)
        del z
        gc.collect()
        assert ref() is None and fn.trace.out_stats[0]["values"] == pytest.approx((W.numpy() + 1).tolist())


@needs_dot
def test_ops_made_outside_the_record_show_no_value():
    W, x, h1, h2, loss = _chain()  # made outside any record, backpropagated inside one
    with tr.viz.record_backward() as record:
        loss.backward()
    nodes = _page_data(tr.viz.explore(loss, params={"W": W}, record=record).html)["views"]["unrolled"]["nodes"]
    assert _by_title(nodes, "h1")["value"] is None and _by_title(nodes, "h1")["grad"] is not None
    assert all(n["value"] is None for n in nodes.values() if n["kind"] == "op")
    assert _by_title(nodes, "W")["value"] is not None and _by_title(nodes, "L")["value"] is not None


@needs_dot
def test_steps_of_a_sequence_op_show_h_t():
    tr.manual_seed(5)
    lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    x = tr.randn(2, 4, 3)
    with tr.viz.record_backward() as record:
        out, (h_n, c_n) = lstm(x)
        loss = out.pow(2).sum()
        loss.backward()
    nodes = _page_data(tr.viz.explore(loss, model=lstm, record=record).html)["views"]["unrolled"]["nodes"]
    hidden = [n for n in nodes.values() if n["role"] == "hidden" and n["step"] is not None]
    ref, cells = out.numpy().astype(np.float64), c_n.numpy().astype(np.float64)
    for t in range(4):  # each step: one h_t per direction, the forward one in out[..., :4], the reverse in out[..., 4:]
        at_t = sorted((n["value"] for n in hidden if n["step"] == t), key=lambda v: v["values"])
        expected = sorted((ref[:, t, :4], ref[:, t, 4:]), key=lambda a: a.ravel().tolist())
        assert len(at_t) == 2
        for stats, reference in zip(at_t, expected):
            _assert_stats(stats, reference)
    # c_t is kept only where it is an output: c_n, the forward direction's last step and the reverse one's first
    kept = {n["step"]: n["value"] for n in nodes.values() if n["role"] == "cell" and n["value"] is not None}
    assert sorted(kept) == [0, 3]
    _assert_stats(kept[3], cells[0])
    _assert_stats(kept[0], cells[1])


@needs_dot
def test_expand_fused_draws_the_gates():
    tr.manual_seed(4)
    lstm = nn.LSTM(3, 4)
    x = tr.randn(3, 2, 3)
    with tr.viz.record_backward() as record:
        out, _ = lstm(x)
        loss = out.sum()
        loss.backward()
    plain = _page_data(tr.viz.explore(loss, model=lstm, record=record).html)["views"]
    expanded = _page_data(tr.viz.explore(loss, model=lstm, record=record, expand_fused=True).html)["views"]
    for mode in ("unrolled", "folded"):
        assert len(expanded[mode]["nodes"]) > len(plain[mode]["nodes"])
    source = tr.viz.draw_graph(loss, model=lstm, expand_fused=True).source
    assert set(expanded["unrolled"]["nodes"]) == set(re.findall(r"^\t+(n\d+) \[", source, re.M))
    nodes = expanded["unrolled"]["nodes"].values()
    assert not any(n["kind"] == "gate" for n in plain["unrolled"]["nodes"].values())
    forget = [n for n in nodes if n["kind"] == "gate" and n["title"].startswith("f = σ")]
    sequence_step = [fn.name for fn in record.functions].index("LSTMSequence")
    assert sorted(n["step"] for n in forget) == [0, 1, 2]
    assert all(n["op"] == "LSTMSequence" and "fused LSTMSequence" in n["about"] and n["lit"] == sequence_step
               for n in forget)
    # the tensors are described as without the gates
    def hidden(views):
        return sorted((n["step"], n["value"]["norm"]) for n in views["unrolled"]["nodes"].values()
                      if n["role"] == "hidden" and n["step"] is not None)
    assert hidden(expanded) == hidden(plain) and len(hidden(plain)) == 3


# ----------------------------------------------------------------------------- the examples' pages
def _train(with_page, steps=4):
    """An example-like loop: the graph drawn before the example's own backward/step (gradients are
    accumulated over two batches, so the page is drawn while the first batch's are there)."""
    tr.manual_seed(0)
    model, head = nn.LSTM(3, 4, batch_first=True), nn.Linear(4, 2)
    params = [*model.parameters(), *head.parameters()]
    opt = tr.optim.Adam(params, lr=0.05)
    pages = []
    for it in range(steps):
        out, _ = model(tr.randn(2, 5, 3))
        loss = head(out).pow(2).mean()
        if with_page and it == 1:  # the grads of the batch before are still there
            pages.append(example_page(loss, {"model": model, "mode": "folded"}))
        loss.backward()
        if it % 2 == 1:
            opt.step()
            opt.zero_grad()
    return [p.numpy().copy() for p in params], pages


@needs_dot
def test_example_page_steps_and_leaves_training_unchanged():
    without, _ = _train(False)
    with_page, pages = _train(True)
    assert all(np.array_equal(a, b) for a, b in zip(without, with_page))
    data = _page_data(pages[0].decode("utf-8"))
    assert data["note"] is None and data["mode"] == "folded" and data["steps"][0]["op"] == "Mean"
    assert "LSTMSequence" in [step["op"] for step in data["steps"]]
    hidden = [n for n in data["views"]["unrolled"]["nodes"].values() if n["role"] == "hidden" and n["step"] is not None]
    assert sorted(n["step"] for n in hidden) == [0, 1, 2, 3, 4] and all(n["norm"] > 0 for n in hidden)


@needs_dot
def test_example_page_puts_every_grad_back():
    tr.manual_seed(6)
    W, b = tr.randn(3, 3, requires_grad=True), tr.randn(3, requires_grad=True)
    W.grad = tr.ones(3, 3)
    accumulated = W.grad
    h = (W @ tr.randn(3)).tanh()
    h.retain_grad()
    loss = (h + b).sum()
    data = _page_data(example_page(loss, {"params": {"W": W, "b": b}}).decode("utf-8"))
    assert W.grad is accumulated and b.grad is None and h.grad is None
    assert all(fn.trace.out_grads is None and not fn.walked for fn in collect_functions([loss]))
    loss.backward()  # the example's own backward still runs (the page kept the graph)
    shown = _by_title(data["views"]["unrolled"]["nodes"], "W")["grad"]["values"]
    # the page showed this loss's gradient, not the one accumulated before it
    assert shown == pytest.approx((W.grad.numpy() - 1).ravel().tolist(), rel=1e-5)
    assert b.grad is not None and h.grad is not None


@needs_dot
def test_example_page_without_a_backward_of_its_own():
    W = tr.randn(3, requires_grad=True)
    hooked = tr.randn(3, requires_grad=True)
    calls = []
    hooked.register_hook(lambda g: calls.append(g))
    shared = (W * 2).tanh()
    first, second = shared.sum(), (shared * 3).sum()
    first.backward()  # releases the graph `second` shares
    grad = W.grad
    cases = [second, W * 2, (W * hooked).sum(), [first, second]]  # released, not a scalar, a hook, a list
    for root in cases:
        data = _page_data(example_page(root, {}).decode("utf-8"))
        assert data["steps"] is None and data["note"] == NO_RECORD_NOTE
    assert W.grad is grad and hooked.grad is None and calls == []


@needs_dot
def test_example_page_undoes_a_backward_that_fails(monkeypatch):
    from tinygrad_rnn.autograd.engine import GraphReleasedError
    from tinygrad_rnn.tensor import Tensor

    W = tr.randn(3, requires_grad=True)
    loss = (W * 2).sum()

    def failing(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        W.grad = tr.ones(3)  # a partial gradient, then the walk meets a released function
        raise GraphReleasedError("backward: trying to backward through Mul a second time")

    monkeypatch.setattr(Tensor, "backward", failing)
    data = _page_data(example_page(loss, {}).decode("utf-8"))
    assert data["note"] == NO_RECORD_NOTE and W.grad is None
    assert all(fn.trace.out_grads is None and not fn.trace.keep_grads for fn in collect_functions([loss]))


def test_step_values_of_a_packed_sequence():
    from tinygrad_rnn.nn.utils import rnn as rnn_utils

    tr.manual_seed(0)
    gru = nn.GRU(2, 3)
    packed = rnn_utils.pack_padded_sequence(tr.randn(4, 3, 2), [4, 2, 1])
    with tr.viz.record_backward() as record:
        out, _ = gru(packed)
        out.data.sum().backward()
    fn = next(fn for fn in record.functions if fn.name == "GRUSequence")
    padded, _ = rnn_utils.pad_packed_sequence(out)
    assert fn.active == (3, 2, 1, 1) and len(fn.trace.step_stats) == 4
    for t, stats in enumerate(fn.trace.step_stats):  # step t: the sequences still running
        _assert_stats(stats, padded.numpy()[t, : fn.active[t]])
