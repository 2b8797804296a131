"""``explore``: the autodiff graph as one interactive, self-contained HTML page.

The page holds both drawings (unrolled and folded) as inline SVG laid out by
``dot`` when it is written, a JSON table of what each drawn node is (op,
shape, dtype, device, module path, time step, value and gradient statistics)
and, when the ``backward()`` ran inside :func:`record_backward`, the order the
tape ran in, so a stepper can replay the gradient flowing back from the loss.
The script and style are shipped in the page (``explore_page.py``); it loads
nothing and runs no code it did not ship; every name is shown as text.
"""
from __future__ import annotations

import html
import math
import re

import numpy as np

from ..recording import BackwardRecord, record_backward
from .budget import collapse
from .draw import _MODES, _check_params, _gc_paused
from .emit import to_digraph
from .explore_page import dumps_for_script, page_html
from .folded import fold
from .labels import Names
from .unrolled import add_leaf_roots, find_hand_loop, new_builder
from .walk import collect_functions, flatten_roots

#: how many elements of a value or gradient the page lists (larger ones: statistics only)
MAX_VALUES = 64

#: beyond this many nodes the middle of long runs of steps collapses, as in ``draw_graph``
MAX_NODES = 300

#: what the page says when the graph was drawn without a recorded backward pass
NO_RECORD_NOTE = ("No backward pass was recorded for this graph, so there is nothing to step through. "
                  "Run the backward inside `with tr.viz.record_backward() as record:` (and "
                  "tr.retain_grads() to keep every gradient) and pass record=record to tr.viz.explore.")


class Explorer:
    """An interactive graph page: shows inline in Jupyter, ``.save(path)`` writes it as one HTML file."""

    #: the height of the inline view in Jupyter, in pixels
    height = 640

    def __init__(self, html_text):
        self.html = html_text

    def _repr_html_(self):
        """The page inside an ``<iframe srcdoc>`` (Jupyter): its script and ids stay apart from the notebook's."""
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" '
                f'style="width:100%;height:{self.height}px;border:1px solid #ced4da"></iframe>')

    def save(self, path):
        """Write the page to ``path`` (one file: script, style and drawings inline; opens from disk)."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.html)
        return path


def explore(root, model=None, params=None, mode="unrolled", record=None, title="autodiff graph"):
    """The interactive explorer of the graph behind ``root`` (what ``draw_graph`` draws), as an :class:`Explorer`.

    ``model`` and ``params`` name parameters as in ``draw_graph``; ``mode``
    ("unrolled" or "folded") is the view the page opens on (both are in it).
    ``record``, a :class:`~tinygrad_rnn.recording.BackwardRecord` from
    ``with tr.viz.record_backward() as record: loss.backward()``, gives the
    backward stepper its steps; without it the page says there is nothing to
    step through. Inside ``tr.retain_grads()`` every tensor's gradient is kept
    and the page shows its statistics. Needs graphviz's ``dot``.
    """
    if mode not in _MODES:
        raise ValueError(f"explore: mode must be 'unrolled' or 'folded', got {mode!r}")
    if model is not None and not hasattr(model, "named_parameters"):
        raise TypeError(f"explore: model must be a Module, got {type(model).__name__}")
    if record is not None and not isinstance(record, BackwardRecord):
        raise TypeError(f"explore: record must come from tr.viz.record_backward(), got {type(record).__name__}")
    try:
        params = _check_params(params)
    except (TypeError, ValueError) as exc:
        raise type(exc)(str(exc).replace("draw_graph:", "explore:", 1)) from None
    roots = flatten_roots(root)
    views = {}
    with _gc_paused():
        functions = collect_functions(roots)
        names = Names(functions, model, params)
        order = _order(record, functions)
        for view in _MODES:
            drawing, origins = _drawing(roots, functions, names, view)
            digraph = to_digraph(drawing, rankdir="LR", show_grads=False, note=[])
            svg = _clean_svg(digraph.pipe(format="svg").decode("utf-8"))
            ids = {node: f"n{i}" for i, node in enumerate(drawing.nodes)}
            nodes = {ids[node]: _describe(node, origins.get(node), order) for node in drawing.nodes}
            views[view] = {"svg": svg, "nodes": nodes}
    steps = None
    if order is not None:
        steps = [{"op": fn.name, "norms": [_finite(n) for n in out]} for fn, out, _ in order["steps"]]
    data = {"title": title, "mode": mode, "note": None if steps is not None else NO_RECORD_NOTE, "steps": steps,
            "views": {view: {"nodes": v["nodes"]} for view, v in views.items()}}
    return Explorer(page_html(title, views["unrolled"]["svg"], views["folded"]["svg"], data))


def example_page(root, draw_options) -> bytes:
    """The explorer page (UTF-8) of the graph an example draws with ``run.graph(root, **draw_options)``:
    the same ``model``, ``params`` and ``mode``; examples record no backward order, and the page says so."""
    options = {key: draw_options[key] for key in ("model", "params", "mode") if key in draw_options}
    return explore(root, **options).html.encode("utf-8")


def _order(record, functions):
    """The recorded steps that belong to this graph, with each function's step index."""
    if record is None:
        return None
    drawn = {id(fn) for fn in functions}
    steps = [step for step in record.steps if id(step[0]) in drawn]
    index = {}
    for k, (fn, _, _) in enumerate(steps):
        index.setdefault(id(fn), k)
    sent = {}
    for k, (_, _, norms) in enumerate(steps):
        for key, norm in norms.items():
            sent.setdefault(key, []).append([k, _finite(norm)])
    return {"steps": steps, "index": index, "sent": sent}


def _drawing(roots, functions, names, mode):
    """The drawing ``draw_graph`` makes for ``mode``, and for each node where it came from on the tape."""
    builder = new_builder(roots, functions, names)
    origins = {}
    nodes = builder.drawing.nodes
    for fn in functions:
        start = len(nodes)
        builder.op(fn)
        for node in nodes[start:]:
            origins[node] = ("op", fn, None)
        for i in range(fn.outputs):
            node = builder.values.get((id(fn), i))
            # (a whole-sequence op's last h_t and c_t are its outputs 1, 2: drawn as steps, kept as such)
            stepwise = fn.draw_as == "sequence" and i > 0
            if node is not None and node.kind == "tensor" and origins.get(node, ("", None))[1] is fn and not stepwise:
                origins[node] = ("value", fn, i)
    add_leaf_roots(builder, roots)
    for tensor in builder.alive:
        origins[builder.leaves[id(tensor)]] = ("leaf", tensor, None)
    for tensor in roots:
        if tensor._creator is not None:
            origins[builder.values[(id(tensor._creator), tensor._index)]] = ("root", tensor, None)
    drawing = builder.finish()
    if find_hand_loop(drawing):
        _mark_states(drawing, origins)
    if mode == "folded":
        fold(drawing)
    else:
        collapse(drawing, MAX_NODES)
    return drawing, origins


def _mark_states(drawing, origins):
    """In a loop found by ``find_steps``, the op of each step whose value the next step reads is h_t."""
    step = {node: _path(node)[1] for node in drawing.nodes}
    handed = {src for src, dst in drawing.edges
              if src.kind == "op" and step[src] is not None and step[dst] == step[src] + 1}
    sigs = {node.sig for node in handed}
    last = max((t for t in step.values() if t is not None), default=None)
    handed |= {node for node in drawing.nodes if node.kind == "op" and step[node] == last and node.sig in sigs
               and not any(dst.kind == "op" and step[dst] == last for src, dst in drawing.edges if src is node)}
    for node in handed:
        origin = origins.get(node)
        if origin is not None and origin[0] == "op" and origin[1].outputs == 1:
            origins[node] = ("state", origin[1], 0)


def _finite(x):
    return None if x is None or not math.isfinite(x) else float(x)


def _stats(host):
    """min, max, mean, norm of an array (and its values when small), as JSON-safe numbers."""
    if host is None:
        return None
    flat = np.asarray(host, dtype=np.float64).ravel()
    if flat.size == 0:
        return {"size": 0}
    out = {"size": int(flat.size), "min": _finite(flat.min()), "max": _finite(flat.max()),
           "mean": _finite(flat.mean()), "norm": _finite(float(np.sqrt(np.sum(flat * flat))))}
    if flat.size <= MAX_VALUES:
        out["values"] = [_finite(v) for v in flat.tolist()]
    return out


def _host(backend, array):
    return None if array is None else backend.to_host(array)


def _path(node):
    """The module path and the time step of a node, from its clusters."""
    chain = node.cluster.chain()[::-1] if node.cluster is not None else []
    path = " / ".join(c.label for c in chain if c.kind == "module" and c.label)
    step = next((c for c in reversed(chain) if c.block is not None and c.time is not None), None)
    return path, (None if step is None or step.folded else step.time)


def _describe(node, origin, order):
    """What the page shows for a drawn node, and when the stepper lights it."""
    path, time = _path(node)
    info = {"title": node.title, "kind": node.kind, "role": node.role, "details": list(node.details),
            "module": path, "step": time, "op": None, "shape": None, "dtype": None, "device": None,
            "value": None, "grad": None, "lit": None, "norm": None, "events": None}
    if origin is None:
        return info
    kind, obj, index = origin
    if kind in ("leaf", "root"):
        tensor = obj
        info.update(shape=list(tensor.shape), dtype=str(tensor.dtype), device=tensor.device,
                    value=_stats(tensor._backend.to_host(tensor.array)))
        if tensor.grad is not None:
            info["grad"] = _stats(tensor._backend.to_host(tensor.grad.array))
        if kind == "root":
            fn, index = tensor._creator, tensor._index
            info["op"] = fn.name
            _light_value(info, fn, index, order)
        elif order is not None and id(tensor) in order["sent"]:
            events = order["sent"][id(tensor)]
            norm = _total(events) if tensor.grad is None else _stats(tensor._backend.to_host(tensor.grad.array))["norm"]
            info.update(events=events, lit=events[0][0], norm=norm)
        return info
    fn = obj
    if kind == "state":  # h_t of a loop written with tensor ops: the chart plots its ‖∂L/∂h_t‖
        info.update(role="hidden", op=fn.name, device=fn.backend.device)
        shape, dtype = fn.trace.out_meta[0]
        info.update(shape=list(shape), dtype=str(dtype))
        grads = fn.trace.out_grads
        if grads is not None and grads[0] is not None:
            info["grad"] = _stats(_host(fn.backend, grads[0]))
        _light_value(info, fn, 0, order)
        info["current"] = order is not None and id(fn) in order["index"]
        if info["grad"] is not None:
            info["norm"] = info["grad"]["norm"]
        return info
    if kind == "op" and node.kind == "tensor" and node.role == "input":
        return info  # a constant input released after backward(): nothing is known of it
    info.update(op=fn.name, device=fn.backend.device)
    if kind == "op" and node.kind == "tensor":
        # a tensor inside a fused op (x_t, h_t, c_t of a whole-sequence op): its gradient exists once
        # the op's backward ran; a sequence op kept ‖dL/dh_t‖ per step inside retain_grads()
        if order is not None and id(fn) in order["index"]:
            info["lit"] = order["index"][id(fn)]
        drawn = re.fullmatch(r"\(([\d, ]*)\)(?: (\w+))?", node.details[0]) if node.details else None
        if drawn is not None:  # the step's own shape, as the drawing shows it
            info.update(shape=[int(n) for n in re.findall(r"\d+", drawn.group(1))], dtype=drawn.group(2) or "float32")
        norms = fn.trace.step_grad_norms if node.role == "hidden" else None
        if norms is not None and time is not None and time < len(norms):
            info["norm"] = _finite(float(norms[time]))
    elif kind == "value":
        shape, dtype = fn.trace.out_meta[index]
        info.update(shape=list(shape), dtype=str(dtype))
        grads = fn.trace.out_grads
        if grads is not None and index < len(grads) and grads[index] is not None:
            info["grad"] = _stats(_host(fn.backend, grads[index]))
        _light_value(info, fn, index, order)
    else:
        meta = fn.trace.out_meta
        info.update(shape=[list(s) for s, _ in meta], dtype=", ".join(str(d) for _, d in meta))
        if order is not None and id(fn) in order["index"]:
            info["lit"] = order["index"][id(fn)]
            info["current"] = True
    return info


def _light_value(info, fn, index, order):
    """An output's gradient exists from the first step that sends it one (the loss's: from the start);
    its norm is the whole gradient, as its creator's backward receives it."""
    if order is None:
        return
    events = order["sent"].get((id(fn), index))
    k = order["index"].get(id(fn))
    if events is not None:
        info["lit"], info["events"] = events[0][0], events
    elif k == 0:
        info["lit"] = 0
    else:
        return
    norms = order["steps"][k][1] if k is not None else None
    info["norm"] = _finite(norms[index]) if norms is not None and index < len(norms) else _total(events)


def _total(events):
    """An estimate of the norm of a gradient sent in parts: the root of the parts' sum of squares
    (exact when the parts are orthogonal; used only where the whole gradient was not kept)."""
    parts = [n for _, n in events if n is not None]
    return _finite(math.sqrt(sum(n * n for n in parts))) if parts else None


def _clean_svg(svg):
    """dot's SVG without its XML prologue, doctype and namespace URLs (inline SVG in HTML needs none)."""
    svg = re.sub(r"<\?xml[^>]*\?>", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg)
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
    return svg.strip()


__all__ = ["explore", "Explorer", "record_backward", "example_page", "NO_RECORD_NOTE", "dumps_for_script"]
