"""Write a drawing out as a ``graphviz.Digraph``: nested clusters, styled nodes and arrows, a legend.

Node ids are counters (``n0``, ``n1``, ...) and clusters are numbered in
creation order, so the same computation always gives the same DOT text.
Arrows that feed a time step from outside it (parameters, the input
sequence) have no weight in the layout, so each step's nodes stay together.
Labels are HTML-like (escaped), so names may contain any character.
"""
from __future__ import annotations

import functools
import html
import textwrap

import graphviz

from . import style
from .grads import LogScale
from .ir import common_cluster
from .labels import grad_text, is_reverse
from .layout import lecture_plan

#: ``newrank`` lays the steps out in time order (a staircase), but its cost grows fast with
#: the number of steps; beyond this many visible steps dot's default ranking is used.
NEWRANK_MAX_STEPS = 24

#: the fill and border/text colour of a note the reader must see (amber, as a warning)
NOTE_FILL = "#fff3cd"
NOTE_BORDER = "#8a6d00"


def _title_html(node) -> str:
    title = html.escape(node.title)
    if node.sub:
        step = next((c for c in node.cluster.chain() if c.block is not None), None) if node.cluster else None
        if step is not None:
            title += f"<sub>{'t' if step.folded else html.escape(str(step.time))}</sub>"
    return title


def _node_label(node, show_grads, extra=None) -> str:
    title = _title_html(node)
    lines = [title]
    details = list(node.details) + ([extra] if extra else [])
    if details and title.endswith("</sub>"):
        lines.append('<font point-size="3"> </font>')  # room for the subscript above the next line
    if show_grads and node.wants_grad:
        details.append(grad_text(node.grad))
    lines.extend(f'<font point-size="9">{html.escape(d)}</font>' for d in details)
    return "<" + "<br/>".join(lines) + ">"


def _layers_label(cluster, siblings) -> str:
    parts = []
    if len({s.layer for s in siblings}) > 1 or len({s.direction for s in siblings}) == 1:
        parts.append(f"layer {cluster.layer}")
    if len({s.direction for s in siblings}) > 1:
        parts.append("reverse" if is_reverse(cluster.direction) else "forward")
    return " · ".join(parts)


def _calls(cluster) -> str:
    """`` (call 2)`` for one of several calls of a module, `` (×6 calls)`` once folded."""
    if cluster.block is None:
        return ""
    return f" (×{cluster.folded} calls)" if cluster.folded else f" (call {cluster.time})"


def _cluster_attrs(cluster, siblings):
    if cluster.kind == "module":
        label = cluster.label + _calls(cluster)
        return {"label": label, "style": "rounded", "color": style.MODULE_CLUSTER_COLOR,
                "fontcolor": style.MODULE_CLUSTER_COLOR, "fontname": style.FONT + "-Bold"}
    if cluster.kind == "layers":
        return {"label": _layers_label(cluster, siblings), "style": "rounded,dashed", "color": style.STEP_CLUSTER_COLOR,
                "fontcolor": "#343a40", "fontname": style.FONT}
    if cluster.kind == "step":
        label = f"t (×{cluster.folded} steps)" if cluster.folded else cluster.label
        return {"label": label, "style": "rounded,filled", "color": style.STEP_CLUSTER_COLOR, "fillcolor": "#f8f9fa",
                "fontcolor": "#343a40", "fontname": style.FONT}
    fill, border, _ = style.ROLES["gate"]
    return {"label": cluster.label, "style": "rounded,filled", "color": border, "fillcolor": fill,
            "fontcolor": border}


def _visible_parents(drawing, boxless=None):
    """cluster -> the cluster it is drawn in, leaving out boxes that say nothing.

    Not drawn: a layer/direction cluster without siblings, and a module call
    around a single op (a cell module around its fused op); that op gets the
    module's name as a line of its label instead.
    """
    clusters = drawing.clusters
    layer_children = {}
    has_children = set()
    for c in clusters:
        has_children.add(c.parent)
        if c.kind == "layers":
            layer_children.setdefault(c.parent, []).append(c)
    hidden = {c for group in layer_children.values() if len(group) == 1 for c in group}
    if boxless is not None:
        hidden.update(boxless)
    members = {}
    for node in drawing.nodes:
        members.setdefault(node.cluster, []).append(node)
    for c in clusters:
        inside = members.get(c, ())
        if c.kind == "module" and c not in has_children and len(inside) == 1 and inside[0].kind in ("op", "fused"):
            hidden.add(c)
            inside[0].details.insert(0, (c.name or c.label) + _calls(c))

    def visible(c):
        while c is not None and c in hidden:
            c = c.parent
        return c

    return visible, layer_children, hidden


def to_digraph(drawing, *, rankdir="LR", show_grads=False, legend=True, note=None, lecture=False) -> graphviz.Digraph:
    """The drawing as a ``graphviz.Digraph`` (displays inline in Jupyter; ``.render``/``.pipe`` run ``dot``).

    ``note``, when given (a string, or a list of them drawn as paragraphs), is drawn as a
    highlighted box next to the legend (a warning the reader must see, such as gradients
    asked for but not there).

    ``lecture=True`` lays a drawing with time steps out as the lecture figures
    do (``layout.lecture_plan``): bottom to top, the steps side by side from
    t=0 on the left; ``rankdir`` applies to drawings without steps.
    """
    plan = lecture_plan(drawing) if lecture else None
    if plan is not None:
        rankdir = "BT"
    graph = graphviz.Digraph(
        "tinygrad_rnn",
        graph_attr={"rankdir": rankdir, "fontname": style.FONT, "fontsize": "11", "nodesep": "0.25",
                    "ranksep": "0.3"},
        node_attr={"fontname": style.FONT, "fontsize": "11", "margin": "0.08,0.04", "height": "0.3"},
        edge_attr={"fontname": style.FONT, "fontsize": "9", "arrowsize": "0.6", "color": style.EDGE_COLOR},
    )
    ids = {node: f"n{i}" for i, node in enumerate(drawing.nodes)}
    scale = LogScale([n.grad for n in drawing.nodes]) if show_grads else None
    visible, layer_children, hidden = _visible_parents(drawing, _boxless(drawing, plan))
    shown = [c for c in drawing.clusters if c not in hidden]
    subgraphs = {c: graphviz.Digraph(f"cluster_{i}") for i, c in enumerate(shown)}
    for c in shown:
        subgraphs[c].attr(**_cluster_attrs(c, layer_children.get(c.parent, ())))
    bundles = _param_bundles(drawing) if plan is None else []
    for k, (params, consumers) in enumerate(bundles):
        where = visible(functools.reduce(common_cluster, (n.cluster for n in consumers)))
        hub = f"p{k}"
        (subgraphs[where] if where is not None else graph).node(
            hub, label="", shape="point", width="0.07", color=style.PARAM_EDGE_COLOR)
    bundled = {(p, n) for params, consumers in bundles for p in params for n in consumers}
    roles = set()
    lecture_lines = _lecture_lines(drawing, plan, layer_children)
    for node in drawing.nodes:
        roles.add(node.role)
        target = visible(node.cluster)
        where = subgraphs[target] if target is not None else graph
        where.body.append(_statement(ids[node], _node_attrs(node, scale, lecture_lines.get(node))))
    if plan is not None:
        for row in plan.rows:
            where = visible(functools.reduce(common_cluster, (n.cluster for n in row)))
            target = subgraphs[where] if where is not None else graph
            target.body.append("\t{rank=same; " + " ".join(ids[n] for n in row) + "}\n")
    depth = {c: len(c.chain()) for c in shown}
    for c in sorted(shown, key=lambda c: -depth[c]):
        parent = visible(c.parent)
        if parent is None:
            continue
        subgraphs[parent].subgraph(subgraphs[c])
    for c in shown:
        if visible(c.parent) is None:
            graph.subgraph(subgraphs[c])
    step_of = _steps_of(drawing)
    for edge in drawing.edges.values():
        if (edge.src, edge.dst) in bundled:
            continue
        attrs = _edge_attrs(edge, scale)
        a, b = step_of.get(edge.src), step_of.get(edge.dst)
        if plan is None and (edge.kind == "param" or (a is not b and (a is None or b is None))):
            attrs["weight"] = "0"  # (weight 0 makes dot drop the order of the lecture layout's rows)
        head = f"{ids[edge.src]} -> {ids[edge.dst]}"
        if plan is not None and (edge.src, edge.dst) in plan.backward:
            head, attrs["dir"] = f"{ids[edge.dst]} -> {ids[edge.src]}", "back"
        elif plan is not None and (edge.src, edge.dst) in plan.loose:
            attrs["constraint"] = "false"
        graph.body.append(_statement(head, attrs))
    if plan is not None:
        _add_plan(graph, plan, ids)
    for k, (params, consumers) in enumerate(bundles):
        for param in params:
            graph.edge(ids[param], f"p{k}", color=style.PARAM_EDGE_COLOR, arrowhead="none", weight="0")
        for node in consumers:
            graph.edge(f"p{k}", ids[node], color=style.PARAM_EDGE_COLOR, weight="0")
    if plan is not None or len(set(step_of.values())) <= NEWRANK_MAX_STEPS:
        graph.graph_attr["newrank"] = "true"
    if legend and drawing.nodes:
        grad_range = scale.range if scale is not None and not scale.empty else None
        graph.node("legend", style.legend_label(roles, grad_range), shape="plaintext", margin="0")
    paragraphs = [note] if isinstance(note, str) else list(note or ())
    if paragraphs:
        text = "<br/><br/>".join("<br/>".join(html.escape(line) for line in textwrap.wrap(p, 70)) for p in paragraphs)
        graph.node("note", f"<{text}>", shape="note", style="filled", fillcolor=NOTE_FILL, color=NOTE_BORDER,
                   fontcolor=NOTE_BORDER)
    return graph


def _boxless(drawing, plan):
    """The clusters the lecture layout draws without a box: the time steps, and every cluster around
    a row of steps (``dot`` does not keep the left-to-right order of a rank inside a cluster)."""
    if plan is None:
        return None
    out = {c for c in drawing.clusters if c.kind == "step"}
    for node in plan.row_of:
        if node.cluster is not None:
            out.update(node.cluster.chain())
    return out


def _lecture_lines(drawing, plan, layer_children) -> dict:
    """node -> a line the lecture layout adds, since it draws no boxes for layers, steps and expanded
    cells: a cell of a stacked or bidirectional layer says its layer and direction (``layer 1 ·
    reverse``), the first node of an expanded cell or of a module call in a step what its box said
    (``LSTMCell(coupled)``, ``attention: AdditiveAttention``), the
    x_t of a step of a packed batch how many sequences the step runs (``4 active``)."""
    if plan is None:
        return {}
    lines = {}
    first, size = {}, {}
    for node in drawing.nodes:
        if node.cluster is not None and _per_step_box(node.cluster):
            first.setdefault(node.cluster, node)
            size[node.cluster] = size.get(node.cluster, 0) + 1
    for box, node in first.items():  # what the box said: LSTMCell(coupled), attention: AdditiveAttention
        if node in plan.row_of and size[box] > 1:  # (a box around one op is never drawn: its op says it)
            lines[node] = box.label + (_calls(box) if box.kind == "module" else "")
    for node in drawing.nodes:
        if node not in plan.row_of or node.cluster is None:
            continue
        if node.kind == "fused":
            layers = next((c for c in node.cluster.chain() if c.kind == "layers"), None)
            siblings = layer_children.get(layers.parent, ()) if layers is not None else ()
            if len(siblings) > 1:
                lines[node] = _layers_label(layers, siblings)
        elif node.title == "x" and node.cluster.kind == "step" and node.cluster.label.endswith(" active)"):
            lines[node] = node.cluster.label.split(" (", 1)[1][:-1]
    return lines


def _per_step_box(cluster) -> bool:
    """An expanded cell, or a module call inside a time step (or one of several calls)."""
    if cluster.kind == "cell":
        return True
    return cluster.kind == "module" and any(c.block is not None for c in cluster.chain())


def _add_plan(graph, plan, ids):
    """The lecture layout's invisible arrows (see ``layout.LecturePlan``)."""
    for src, dst in plan.order:
        graph.body.append(_statement(f"{ids[src]} -> {ids[dst]}", {"style": "invis"}))
    for src, dst in plan.stack:
        graph.body.append(_statement(f"{ids[src]} -> {ids[dst]}", {"style": "invis"}))
    for src, dst in plan.align:
        graph.body.append(_statement(f"{ids[src]} -> {ids[dst]}", {"style": "invis", "weight": "4", "minlen": "0"}))


def _param_bundles(drawing) -> list:
    """(parameters, consumers) for each group of several parameters that feeds several nodes together.

    The weights of a recurrent layer feed every time step; drawing their
    arrows through one bundle point per layer (4 + T arrows instead of 4 × T)
    keeps the unrolled drawing readable.
    """
    feeds = {}
    for edge in drawing.edges.values():
        if edge.kind == "param":
            feeds.setdefault(edge.dst, []).append(edge.src)
    groups = {}
    for node, params in feeds.items():
        if len(params) > 1:
            groups.setdefault(tuple(params), []).append(node)
    return [(params, consumers) for params, consumers in groups.items() if len(consumers) > 1]


@functools.lru_cache(maxsize=1024)
def _quoted(value: str) -> str:
    return graphviz.quoting.quote(value)


def _statement(head, attrs) -> str:
    """One DOT statement, as ``Digraph.node``/``edge`` write it (written directly: 100,000 nodes stay fast).

    Labels are HTML-like (``<...>``, escaped by us) or plain text whose
    backslashes are escaped; other values come from this module.
    """
    parts = []
    for key, value in attrs.items():
        if key == "label" and not (value.startswith("<") and value.endswith(">")):
            value = graphviz.quoting.quote(graphviz.escape(value))
        elif key != "label":
            value = _quoted(value)
        parts.append(f"{key}={value}")
    return f"\t{head} [{' '.join(parts)}]\n" if parts else f"\t{head}\n"


def _steps_of(drawing) -> dict:
    """node -> the innermost step-like cluster it sits in (nodes outside every step are left out)."""
    out = {}
    for node in drawing.nodes:
        c = node.cluster
        while c is not None and c.block is None:
            c = c.parent
        if c is not None:
            out[node] = c
    return out


def _node_attrs(node, scale, extra=None) -> dict:
    shape, node_style = style.SHAPES[node.kind]
    fill, border, _ = style.ROLES[node.role]
    attrs = {"label": _node_label(node, scale is not None, extra), "shape": shape, "style": node_style,
             "fillcolor": fill, "color": border}
    if node.kind == "gate":
        attrs["fontsize"] = "10"
    if node.root:
        attrs["peripheries"] = "2"
    if scale is not None:
        if node.grad is not None:
            t = scale(node.grad)
            attrs.update(fillcolor=style.ramp_color(t), fontcolor=style.text_color_on(t), penwidth="2")
        elif node.wants_grad:
            attrs.update(fillcolor=style.NOT_KEPT_FILL, style=node_style + ",dashed")
    return attrs


def _edge_attrs(edge, scale) -> dict:
    attrs = {}
    if edge.kind == "param":
        attrs.update(color=style.PARAM_EDGE_COLOR)
    elif edge.kind == "recurrent":
        attrs.update(color=style.RECURRENT_EDGE_COLOR, penwidth="2", constraint="false",
                     fontcolor=style.RECURRENT_EDGE_COLOR)
    elif edge.src.role in ("hidden", "cell"):
        attrs.update(color=style.RECURRENT_EDGE_COLOR, penwidth="1.5")
    if edge.label:
        attrs["label"] = edge.label
    if scale is not None and edge.kind != "param":
        grad = edge.grad if edge.grad is not None else edge.src.grad
        if grad is not None:
            t = scale(grad)
            attrs.update(color=style.ramp_color(max(t, 0.15)), penwidth=f"{0.6 + 3.0 * t:.2f}")
    return attrs
