"""Hand-written models drawn right: leaves named by ``params=``, by ``name=``, by their modules, and
``show_grads=True`` before any ``backward()`` saying so on the picture."""
from __future__ import annotations

import copy
import re
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn
from tinygrad_rnn.viz import draw_graph
from tinygrad_rnn.viz.draw import NO_GRADS_NOTE


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
