"""Drawing a fused cell: one node, or (``expand_fused=True``) its gates from a static template.

A fused op computes a whole cell step in one function, so the tape holds no
gate-level ops; the templates below redraw the cell's equations (PyTorch's):

LSTM:  i, f, g, o = σ, σ, tanh, σ of (W_ih x + b_ih + W_hh h + b_hh);
       c' = f ⊙ c + i ⊙ g;  h' = o ⊙ tanh(c')
GRU:   r, z = σ(W_ir x + b_ir + W_hr h + b_hr), σ(...);
       n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn));  h' = (1 − z) ⊙ n + z ⊙ h
RNN:   h' = tanh or relu(W_ih x + b_ih + W_hh h + b_hh)
"""
from __future__ import annotations

from .ir import Cluster, Node
from .labels import cell_class

_LSTM = {
    "nodes": (
        ("gates", "W_ih x + b_ih + W_hh h + b_hh"),
        ("i", "i = σ(·)"),
        ("f", "f = σ(·)"),
        ("g", "g = tanh(·)"),
        ("o", "o = σ(·)"),
        ("c", "c′ = f ⊙ c + i ⊙ g"),
        ("h", "h′ = o ⊙ tanh(c′)"),
    ),
    "edges": (("gates", "i"), ("gates", "f"), ("gates", "g"), ("gates", "o"), ("i", "c"), ("f", "c"), ("g", "c"),
              ("o", "h"), ("c", "h")),
    "inputs": {"x": ("gates",), "h": ("gates",), "c": ("c",), "ih": "gates", "hh": "gates"},
}
_GRU = {
    "nodes": (
        ("gi", "W_ih x + b_ih"),
        ("gh", "W_hh h + b_hh"),
        ("r", "r = σ(·)"),
        ("z", "z = σ(·)"),
        ("n", "n = tanh(·)"),
        ("h", "h′ = (1 − z) ⊙ n + z ⊙ h"),
    ),
    "edges": (("gi", "r"), ("gh", "r"), ("gi", "z"), ("gh", "z"), ("gi", "n"), ("gh", "n"), ("r", "n"),
              ("z", "h"), ("n", "h")),
    "inputs": {"x": ("gi",), "h": ("gh", "h"), "ih": "gi", "hh": "gh"},
}


def _rnn(activation):
    return {
        "nodes": (("a", "W_ih x + b_ih + W_hh h + b_hh"), ("h", f"h′ = {activation}(·)")),
        "edges": (("a", "h"),),
        "inputs": {"x": ("a",), "h": ("a",), "ih": "a", "hh": "a"},
    }


TEMPLATES = {"lstm": _LSTM, "gru": _GRU, "rnn_tanh": _rnn("tanh"), "rnn_relu": _rnn("relu")}


def state_count(kind) -> int:
    """How many state tensors the cell carries: 2 (h, c) for an LSTM, else 1."""
    return 2 if kind == "lstm" else 1


def add_cell(drawing, kind, cluster, x, h, c, params, expand, grad=None, wants_grad=False):
    """Draw one step of a fused cell; return the node(s) its new ``h`` and ``c`` come out of.

    ``params`` are the parameter nodes in PyTorch's order (weight_ih, weight_hh,
    bias_ih, bias_hh); in the expanded drawing each goes to the part of the
    cell that uses it.
    """
    if not expand or kind not in TEMPLATES:
        details = ["relu"] if kind == "rnn_relu" else ["tanh"] if kind == "rnn_tanh" else []
        node = drawing.add_node(Node("fused", "fused", cell_class(kind), cluster, details, sig=f"cell:{kind}", ops=1))
        node.grad, node.wants_grad = grad, wants_grad
        for src in (x, h, c, *params):
            drawing.connect(src, node)
        return {"h": node, "c": node}
    template = TEMPLATES[kind]
    box = drawing.add_cluster(Cluster("cell", cell_class(kind), cluster))
    parts = {}
    for key, label in template["nodes"]:
        parts[key] = drawing.add_node(Node("gate", "gate", label, box, sig=f"gate:{kind}:{key}"))
    parts[template["nodes"][0][0]].ops = 1
    for src, dst in template["edges"]:
        drawing.connect(parts[src], parts[dst])
    inputs = template["inputs"]
    for name, src in (("x", x), ("h", h), ("c", c)):
        for dst in inputs.get(name, ()):
            drawing.connect(src, parts[dst])
    for k, param in enumerate(params):
        drawing.connect(param, parts[inputs[_param_side(param, k)]])
    return {"h": parts["h"], "c": parts.get("c")}


def _param_side(param, position) -> str:
    """Whether a parameter multiplies the input (``ih``) or the state (``hh``): by name, else by position."""
    title = param.title if param is not None else ""
    if "_hh" in title:
        return "hh"
    if "_ih" in title:
        return "ih"
    return "ih" if position % 2 == 0 else "hh"
