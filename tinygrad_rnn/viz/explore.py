"""``explore``: the autodiff graph as one interactive, self-contained HTML page.

The page holds both drawings (unrolled and folded) as inline SVG laid out by
``dot`` when it is written, a JSON table of what each drawn node is (op,
shape, dtype, device, module path, time step, value and gradient statistics)
and, when the ``backward()`` ran inside :func:`record_backward`, the order the
tape ran in, so a stepper can replay the gradient flowing back from the loss.
Values of intermediate results are known when the forward pass ran inside
:func:`record_backward` too (each op keeps its outputs' statistics there).
The script and style are shipped in the page (``explore_page.py``); it loads
nothing and runs no code it did not ship; every name is shown as text.
"""
from __future__ import annotations

import html
import math
import re

from ..autograd.engine import GraphReleasedError
from ..recording import BackwardRecord, finite_float, record_backward, value_stats
from .budget import collapse
from .draw import _MODES, _check_params, _gc_paused
from .emit import to_digraph
from .explore_page import dumps_for_script, page_html
from .folded import fold
from .labels import Names, is_reverse
from .recurrence import name_loops
from .unrolled import add_leaf_roots, find_hand_loop, new_builder
from .walk import collect_functions, flatten_roots

#: beyond this many nodes the middle of long runs of steps collapses, as in ``draw_graph``
MAX_NODES = 300

#: what the page says when the graph was drawn without a recorded backward pass
NO_RECORD_NOTE = ("No backward pass was recorded for this graph, so there is nothing to step through. "
                  "Run the backward inside `with tr.viz.record_backward() as record:` (and "
                  "tr.retain_grads() to keep every gradient) and pass record=record to tr.viz.explore; "
                  "run the forward pass inside it too to see every intermediate value.")


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


def explore(root, model=None, params=None, mode="unrolled", record=None, title="autodiff graph", *,
            expand_fused=False):
    """The interactive explorer of the graph behind ``root`` (what ``draw_graph`` draws), as an :class:`Explorer`.

    ``model`` and ``params`` name parameters as in ``draw_graph``; ``mode``
    ("unrolled" or "folded") is the view the page opens on (both are in it);
    ``expand_fused=True`` draws the gates of fused cells, as ``draw_graph`` does.
    ``record``, a :class:`~tinygrad_rnn.recording.BackwardRecord` from
    ``with tr.viz.record_backward() as record: loss.backward()``, gives the
    backward stepper its steps; without it the page says there is nothing to
    step through. Leaves and the root always show their values; the other
    tensors (op outputs, h_t, gates' results) show theirs when the forward
    pass ran inside ``record_backward()`` as well. Inside ``tr.retain_grads()``
    every tensor's gradient is kept and the page shows its statistics. Needs
    graphviz's ``dot``.
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
            drawing, origins = _drawing(roots, functions, names, view, bool(expand_fused))
            digraph = to_digraph(drawing, rankdir="LR", show_grads=False, note=[], lecture=view == "unrolled")
            svg = _clean_svg(digraph.pipe(format="svg").decode("utf-8"))
            ids = {node: f"n{i}" for i, node in enumerate(drawing.nodes)}
            nodes = {ids[node]: _describe(node, origins.get(node), order) for node in drawing.nodes}
            views[view] = {"svg": svg, "nodes": nodes}
    steps = None
    if order is not None:
        steps = [{"op": fn.name, "norms": [finite_float(n) for n in out]} for fn, out, _ in order["steps"]]
    data = {"title": title, "mode": mode, "note": None if steps is not None else NO_RECORD_NOTE, "steps": steps,
            "views": {view: {"nodes": v["nodes"]} for view, v in views.items()}}
    return Explorer(page_html(title, views["unrolled"]["svg"], views["folded"]["svg"], data))


def example_page(root, draw_options) -> bytes:
    """The explorer page (UTF-8) of the graph an example draws with ``run.graph(root, **draw_options)``
    (the same ``model``, ``params``, ``mode`` and ``expand_fused``), with a backward stepper.

    Examples draw their loss before their own ``backward()``; so when ``root``
    is a scalar whose graph is still there, one backward is run here
    (``retain_graph=True``, recorded, every op's output gradients kept) for
    the page, and then every ``.grad`` it touched, each op's kept gradients
    and its walked flag are put back as they were: the example's own
    backward and training run exactly as without the page. Where that cannot
    be done (a graph already released, a root with several elements,
    gradient hooks whose side effects would run twice) the page says that no
    backward pass was recorded.
    """
    options = {key: draw_options[key] for key in ("model", "params", "mode", "expand_fused") if key in draw_options}
    if _can_replay(root):
        page = _replayed_page(root, options)
        if page is not None:
            return page.html.encode("utf-8")
    return explore(root, **options).html.encode("utf-8")


def _can_replay(root) -> bool:
    """Whether ``example_page`` may run a backward of its own from ``root``: a scalar made by ops that
    require grad, whose graph still holds its saved arrays and has no gradient hooks."""
    if not hasattr(root, "_creator") or root._creator is None or not root.requires_grad or root.array.size != 1:
        return False
    for fn in collect_functions([root]):
        if fn.released or fn.hooks:
            return False
        if any(link is not None and type(link) is not tuple and link._hooks for link in fn.next):
            return False
    return True


def _replayed_page(root, options):
    """``explore`` after one recorded backward from ``root`` whose traces are all undone afterwards; None
    when that backward fails (the graph turned out to be released): then nothing it did is left."""
    functions = collect_functions([root])
    leaves = {id(link): link for fn in functions for link in fn.next if link is not None and type(link) is not tuple}
    retained = [ref() for fn in functions if fn.retained for ref in fn.retained.values()]
    saved_grads = [(t, t.grad) for t in list(leaves.values()) + [t for t in retained if t is not None]]
    saved_traces = [(fn, fn.walked, fn.trace.keep_grads, fn.trace.out_grads, fn.trace.step_grad_norms,
                     fn.trace.step_cell_grad_norms) for fn in functions]
    try:
        for tensor, _ in saved_grads:
            tensor.grad = None  # the page shows this loss's gradients, not ones accumulated before
        for fn in functions:
            fn.trace.keep_grads = True
        with record_backward() as record:
            try:
                root.backward(retain_graph=True)
            except GraphReleasedError:
                return None
        return explore(root, record=record, **options)
    finally:
        for tensor, grad in saved_grads:
            tensor.grad = grad
        for fn, walked, keep, out_grads, step_norms, cell_norms in saved_traces:
            fn.walked = walked
            trace = fn.trace
            trace.keep_grads, trace.out_grads = keep, out_grads
            trace.step_grad_norms, trace.step_cell_grad_norms = step_norms, cell_norms


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
            sent.setdefault(key, []).append([k, finite_float(norm)])
    return {"steps": steps, "index": index, "sent": sent}


def _drawing(roots, functions, names, mode, expand_fused=False):
    """The drawing ``draw_graph`` makes for ``mode``, and for each node where it came from on the tape."""
    builder = new_builder(roots, functions, names, expand_fused=expand_fused)
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
    for value, op in name_loops(drawing).items():  # h_t, c_t, L_t of a hand-written loop: its op's value
        origin = origins.get(op)
        if origin is not None and origin[0] in ("op", "state") and origin[1].outputs == 1:
            origins[value] = ("state", origin[1], 0) if value.role in ("hidden", "cell") else ("value", origin[1], 0)
            origins[op] = ("op", origin[1], None)
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


def _kept(fn, index):
    """The statistics ``fn`` kept of output ``index`` when it was made inside ``record_backward()``, or None."""
    stats = fn.trace.out_stats
    return stats[index] if stats is not None and index < len(stats) else None


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
            "value": None, "grad": None, "lit": None, "norm": None, "events": None, "about": None}
    if origin is None:
        return info
    kind, obj, index = origin
    if kind in ("leaf", "root"):
        tensor = obj
        info.update(shape=list(tensor.shape), dtype=str(tensor.dtype), device=tensor.device,
                    value=value_stats(tensor._backend.to_host(tensor.array)))
        if tensor.grad is not None:
            info["grad"] = value_stats(tensor._backend.to_host(tensor.grad.array))
        if kind == "root":
            fn, index = tensor._creator, tensor._index
            info["op"] = fn.name
            _light_value(info, fn, index, order)
        elif order is not None and id(tensor) in order["sent"]:
            events = order["sent"][id(tensor)]
            norm = _total(events) if info["grad"] is None else info["grad"]["norm"]
            info.update(events=events, lit=events[0][0], norm=norm)
        return info
    fn = obj
    if kind == "state":  # h_t of a loop written with tensor ops: the chart plots its ‖∂L/∂h_t‖
        info.update(role="hidden", op=fn.name, device=fn.backend.device)
        shape, dtype = fn.trace.out_meta[0]
        info.update(shape=list(shape), dtype=str(dtype), value=_kept(fn, 0))
        grads = fn.trace.out_grads
        if grads is not None and grads[0] is not None:
            info["grad"] = value_stats(_host(fn.backend, grads[0]))
        _light_value(info, fn, 0, order)
        info["current"] = order is not None and id(fn) in order["index"]
        if info["grad"] is not None:
            info["norm"] = info["grad"]["norm"]
        return info
    if kind == "op" and node.kind == "tensor" and node.role == "input":
        return info  # a constant input released after backward(): nothing is known of it
    info.update(op=fn.name, device=fn.backend.device)
    if node.kind == "gate":  # expand_fused=True: a part of a fused cell, redrawn from its equations
        info["about"] = (f"part of the fused {fn.name} op, drawn from the cell's equations: "
                         "the tape keeps no value or gradient of its own")
        if order is not None and id(fn) in order["index"]:
            info["lit"] = order["index"][id(fn)]
        return info
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
            info["norm"] = finite_float(float(norms[time]))
        info["value"] = _step_value(fn, node.role, time)
    elif kind == "value":
        shape, dtype = fn.trace.out_meta[index]
        info.update(shape=list(shape), dtype=str(dtype), value=_kept(fn, index))
        grads = fn.trace.out_grads
        if grads is not None and index < len(grads) and grads[index] is not None:
            info["grad"] = value_stats(_host(fn.backend, grads[index]))
        _light_value(info, fn, index, order)
    else:
        meta = fn.trace.out_meta
        info.update(shape=[list(s) for s, _ in meta], dtype=", ".join(str(d) for _, d in meta))
        if node.kind == "op" and fn.outputs == 1:  # its value is the arrow out of it: shown on the op
            info["value"] = _kept(fn, 0)
            grads = fn.trace.out_grads
            if grads is not None and grads[0] is not None:
                info["grad"] = value_stats(_host(fn.backend, grads[0]))
        if order is not None and id(fn) in order["index"]:
            info["lit"] = order["index"][id(fn)]
            info["current"] = True
    return info


def _step_value(fn, role, time):
    """The statistics of step ``time``'s h_t of a whole-sequence op (its c_t at the last step: c_n), or None."""
    if time is None:
        return None
    if role == "hidden":
        steps = fn.trace.step_stats
        return steps[time] if steps is not None and time < len(steps) else None
    last = 0 if is_reverse(fn.direction) else fn.steps - 1
    return _kept(fn, 2) if role == "cell" and time == last and fn.outputs > 2 else None


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
    info["norm"] = finite_float(norms[index]) if norms is not None and index < len(norms) else _total(events)


def _total(events):
    """An estimate of the norm of a gradient sent in parts: the root of the parts' sum of squares
    (exact when the parts are orthogonal; used only where the whole gradient was not kept)."""
    parts = [n for _, n in events if n is not None]
    return finite_float(math.sqrt(sum(n * n for n in parts))) if parts else None


def _clean_svg(svg):
    """dot's SVG without its XML prologue, doctype and namespace URLs (inline SVG in HTML needs none)."""
    svg = re.sub(r"<\?xml[^>]*\?>", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg)
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
    return svg.strip()


__all__ = ["explore", "Explorer", "record_backward", "example_page", "NO_RECORD_NOTE", "dumps_for_script"]
