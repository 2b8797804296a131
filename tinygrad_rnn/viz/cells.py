"""Drawing a fused cell: one node, or (``expand_fused=True``) its gates from a static template.

A fused op computes a whole cell step in one function, so the tape holds no
gate-level ops; the templates below redraw the cell's equations (PyTorch's):

LSTM:  i, f, g, o = σ, σ, tanh, σ of (W_ih x + b_ih + W_hh h + b_hh);
       c' = f ⊙ c + i ⊙ g;  h' = o ⊙ tanh(c')
       peephole: i, f see w_ci ⊙ c, w_cf ⊙ c and o sees w_co ⊙ c' (``weight_ch``);
       coupled: i = 1 − f (no input gate of its own)
GRU:   r, z = σ(W_ir x + b_ir + W_hr h + b_hr), σ(...);
       n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn));  h' = (1 − z) ⊙ n + z ⊙ h
RNN:   h' = tanh or relu(W_ih x + b_ih + W_hh h + b_hh)

A call of a seq2seq attention module (``AdditiveAttention``,
``DotProductAttention``) is composed of a dozen ops; like a fused cell it is
drawn as one node per call (``collapse_calls``) unless ``expand_fused=True``.
"""
from __future__ import annotations

from ..nn.attention import AdditiveAttention, DotProductAttention
from .ir import Cluster, Node
from .labels import cell_class

#: the modules each call of which is drawn as one node unless ``expand_fused=True``
BLOCK_MODULES = (AdditiveAttention, DotProductAttention)


def _lstm(peephole=False, coupled=False):
    """The LSTM template; ``peephole`` adds the edges c → i, f and c′ → o (named by their weights),
    ``coupled`` drops the input gate: f's arrow into c′ is labelled i = 1 − f (it plays both parts)."""
    def gate(name, act, peek):
        return f"{name} = {act}(· + {peek})" if peephole and peek else f"{name} = {act}(·)"

    nodes = [("gates", "W_ih x + b_ih + W_hh h + b_hh")]
    nodes += [] if coupled else [("i", gate("i", "σ", "w_ci ⊙ c"))]
    nodes += [("f", gate("f", "σ", "w_cf ⊙ c")), ("g", "g = tanh(·)"), ("o", gate("o", "σ", "w_co ⊙ c′")),
              ("c", "c′ = f ⊙ c + (1 − f) ⊙ g" if coupled else "c′ = f ⊙ c + i ⊙ g"), ("h", "h′ = o ⊙ tanh(c′)")]
    gated = ("f", "g", "o") if coupled else ("i", "f", "g", "o")
    edges = [("gates", k) for k in gated]
    edges += [("f", "c", "i = 1 − f"), ("g", "c")] if coupled else [("i", "c"), ("f", "c"), ("g", "c")]
    edges += [("o", "h"), ("c", "h")]
    inputs = {"x": ("gates",), "h": ("gates",), "c": ("c",), "ih": ("gates",), "hh": ("gates",)}
    if peephole:
        peeked = ("f",) if coupled else ("i", "f")
        edges.append(("c", "o", "w_co"))
        inputs["c"] = ("c", *peeked)
        inputs["ch"] = (*peeked, "o")
        inputs["labels"] = {("c", "i"): "w_ci", ("c", "f"): "w_cf"}
    return {"nodes": tuple(nodes), "edges": tuple(edges), "inputs": inputs}


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
    "inputs": {"x": ("gi",), "h": ("gh", "h"), "ih": ("gi",), "hh": ("gh",)},
}


def _rnn(activation):
    return {
        "nodes": (("a", "W_ih x + b_ih + W_hh h + b_hh"), ("h", f"h′ = {activation}(·)")),
        "edges": (("a", "h"),),
        "inputs": {"x": ("a",), "h": ("a",), "ih": ("a",), "hh": ("a",)},
    }


TEMPLATES = {"gru": _GRU, "rnn_tanh": _rnn("tanh"), "rnn_relu": _rnn("relu")}
#: the LSTM kinds (``ops.rnn_composed.lstm_kind``): plain, peephole, coupled, both
TEMPLATES.update({"lstm" + ("_peephole" if p else "") + ("_coupled" if c else ""): _lstm(p, c)
                  for p in (False, True) for c in (False, True)})


def state_count(kind) -> int:
    """How many state tensors the cell carries: 2 (h, c) for an LSTM (any variant), else 1."""
    return 2 if _is_lstm(kind) else 1


def _is_lstm(kind) -> bool:
    return kind == "lstm" or str(kind).startswith("lstm_")


def _class_label(kind) -> str:
    """The cell's class, with an LSTM's variants: ``"lstm_peephole"`` → ``LSTMCell(peephole)``."""
    if _is_lstm(kind) and kind != "lstm":
        return f"{cell_class('lstm')}({', '.join(kind.split('_')[1:])})"
    return cell_class(kind)


def add_cell(drawing, kind, cluster, x, h, c, params, expand, grad=None, wants_grad=False):
    """Draw one step of a fused cell; return the node(s) its new ``h`` and ``c`` come out of.

    ``params`` are the parameter nodes in PyTorch's order (weight_ih, weight_hh,
    bias_ih, bias_hh, then a peephole LSTM's weight_ch); in the expanded drawing
    each goes to the part of the cell that uses it (weight_ch to the gates it peeks into).
    """
    if not expand or kind not in TEMPLATES:
        details = ["relu"] if kind == "rnn_relu" else ["tanh"] if kind == "rnn_tanh" else []
        node = drawing.add_node(Node("fused", "fused", _class_label(kind), cluster, details, sig=f"cell:{kind}", ops=1))
        node.grad, node.wants_grad = grad, wants_grad
        for src in (x, h, c, *params):
            drawing.connect(src, node)
        return {"h": node, "c": node}
    template = TEMPLATES[kind]
    box = drawing.add_cluster(Cluster("cell", _class_label(kind), cluster))
    parts = {}
    for key, label in template["nodes"]:
        parts[key] = drawing.add_node(Node("gate", "gate", label, box, sig=f"gate:{kind}:{key}"))
    parts[template["nodes"][0][0]].ops = 1
    for src, dst, *label in template["edges"]:
        drawing.connect(parts[src], parts[dst], label="".join(label))
    inputs = template["inputs"]
    labels = inputs.get("labels", {})
    for name, src in (("x", x), ("h", h), ("c", c)):
        for dst in inputs.get(name, ()):
            drawing.connect(src, parts[dst], label=labels.get((name, dst), ""))
    for k, param in enumerate(params):
        for dst in inputs[_param_side(param, k, "ch" in inputs and k == len(params) - 1)]:
            drawing.connect(param, parts[dst])
    return {"h": parts["h"], "c": parts.get("c")}


def _param_side(param, position, last_is_peephole=False) -> str:
    """What a parameter multiplies: the input (``ih``), the state (``hh``) or, for a peephole LSTM's
    ``weight_ch``, the cell state (``ch``): by name, else by position (the peepholes come last)."""
    title = param.title if param is not None else ""
    for side in ("ch", "hh", "ih"):
        if f"_{side}" in title and (side != "ch" or last_is_peephole):
            return side
    if last_is_peephole:
        return "ch"
    return "ih" if position % 2 == 0 else "hh"


def collapse_calls(drawing, modules=BLOCK_MODULES) -> None:
    """Draw each call of a module of the classes ``modules`` as one node, in place.

    The call's ops (and those of its submodules) merge into one ``block`` node
    titled with the module's name, class and op count (``attention`` /
    ``AdditiveAttention`` / ``12 ops``; with gradients, the largest norm of its
    ops), which takes the cluster's place; its leaves (parameters, inputs) and
    the named tensors it hands out (``weights.name = "a"``) stay visible beside
    it, so the arrows read query, keys → attention → context, a.
    """
    calls = [c for c in drawing.clusters if c.kind == "module" and isinstance(c.module, modules)]
    called = set(calls)
    calls = [c for c in calls if not any(a in called for a in c.chain()[1:])]  # the outermost calls only
    if not calls:
        return
    outer = set(calls)
    owner = {}
    for node in drawing.nodes:
        owner_call = next((a for a in node.cluster.chain() if a in outer), None) if node.cluster else None
        if owner_call is not None:
            owner[node] = owner_call
    feeds_inside = {e.src for e in drawing.edges.values() if e.src in owner and owner.get(e.dst) is owner[e.src]}
    blocks = {}
    for call in calls:
        kind = type(call.module).__name__
        title = call.name or call.label
        block = Node("block", "block", title, call.parent, [kind] if title != kind else [], sig=f"block:{call.label}")
        blocks[call] = drawing.add_node(block)
    mapping = {}
    for node, call in owner.items():
        block = blocks[call]
        keep = node.kind == "tensor" and (node.sig.startswith("leaf:") or node not in feeds_inside)
        if keep:
            node.cluster = call.parent
            continue
        mapping[node] = block
        block.ops += node.ops
        if node.wants_grad:
            block.wants_grad = True
            if node.grad is not None and (block.grad is None or node.grad > block.grad):
                block.grad = node.grad
    for block in blocks.values():
        block.details.append(f"{block.ops} ops")
    drawing.merge(mapping)
    drawing.drop_clusters({c for c in drawing.clusters if any(a in outer for a in c.chain())})
