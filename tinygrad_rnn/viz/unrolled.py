"""Turn the recorded tape into a drawing: every op, every time step, clustered by module and step.

Ops are placed in clusters from their scopes: one cluster per module call
(``encoder: LSTM``), one per layer/direction of a recurrent layer, one per
time step (``t=0``). Leaves (parameters, inputs) sit in the innermost cluster
that holds all their uses. Intermediate results get their own node only when
they have a name (``h``, ``c``, gates, ...) or are the drawing's root; other
values are the arrow from the op that made them.

A fused whole-sequence op (one per layer and direction) is drawn as its T
steps, one cell node per step with the ``h`` (and ``c``) chain between them,
an ``x_t`` slice going in and an arrow ``y_t`` to the output, since its
per-step structure is known.
"""
from __future__ import annotations

from .cells import add_cell, collapse_calls, state_count
from .grads import GradNorms
from .ir import Cluster, Drawing, Node, common_cluster, step_blocks, step_keys, step_members
from .labels import is_reverse, scalar_text, shape_text, state_role
from .recurrence import find_steps
from ..nn.module import Parameter


class _Clusters:
    """One cluster per module call, per layer/direction and per time step, made from op scopes."""

    def __init__(self, drawing, names):
        self.drawing = drawing
        self.names = names
        self.by_scope = {}
        self.by_key = {}
        self.scopes = []

    def of(self, scope):
        """The innermost cluster of the ops created in ``scope``."""
        if scope is None:
            return None
        if id(scope) in self.by_scope:
            return self.by_scope[id(scope)]
        current = None
        for s in scope.chain():
            if id(s) in self.by_scope:
                current = self.by_scope[id(s)]
                continue
            if s.module is not None:
                label = self.names.module_label(s.module)
                name = self.names.modules.get(id(s.module), "")
                current = self.drawing.add_cluster(Cluster("module", label, current, s.module, name))
            tags = s.tags
            if "layer" in tags or "direction" in tags:
                current = self.layers(current, s.get("layer"), s.get("direction"))
            if "step" in tags:
                current = self.step(current, tags["step"])
            self.by_scope[id(s)] = current
            self.scopes.append(s)
        return current

    def layers(self, parent, layer, direction):
        """The cluster of one layer and direction of a recurrent module."""
        if parent is not None and parent.kind == "layers" and (parent.layer, parent.direction) == (layer, direction):
            return parent
        key = ("layers", parent, layer, direction)
        cluster = self.by_key.get(key)
        if cluster is None:
            cluster = self.by_key[key] = self.drawing.add_cluster(Cluster("layers", "", parent))
            cluster.layer, cluster.direction = layer, direction
        return cluster

    def step(self, parent, time):
        """The cluster of time step ``time`` under ``parent`` (a block of steps)."""
        key = ("step", parent, time)
        cluster = self.by_key.get(key)
        if cluster is None:
            cluster = self.by_key[key] = self.drawing.add_cluster(Cluster("step", f"t={time}", parent))
            cluster.time = time
            cluster.block = ("steps", parent)
        return cluster


#: names drawn with the time step as a subscript inside a step (h₃, c₃, x₃, y₃, L₃)
_SUBSCRIPTED = ("h", "c", "x", "y", "L")

#: names of a (per-step) loss: drawn as a loss wherever they are, as the lecture's L_t are
_LOSS_NAMES = ("L", "loss")


class _Builder:
    def __init__(self, names, show_shapes, show_grads, expand_fused):
        self.drawing = Drawing()
        self.clusters = _Clusters(self.drawing, names)
        self.names = names
        self.show_shapes = show_shapes
        self.norms = GradNorms() if show_grads else None
        self.expand = expand_fused
        self.values = {}
        self.leaves = {}
        self.alive = []
        self.roots = {}
        self.inputs = self.drawing.inputs
        self.used = set()

    # ----------------------------------------------------------------- helpers
    def shape(self, shape, dtype):
        return [shape_text(shape, dtype)] if self.show_shapes else []

    def tensor_node(self, title, role, cluster, shape, dtype, sig=None):
        node = Node("tensor", role, title, cluster, self.shape(shape, dtype), sig=sig or f"tensor:{title}")
        node.shape = tuple(shape)
        return self.drawing.add_node(node)

    def leaf(self, tensor, consumer_cluster):
        """The node of a leaf tensor (parameter, input, constant), moved out to the clusters of all its uses."""
        node = self.leaves.get(id(tensor))
        if node is not None:
            if not node.root:
                node.cluster = common_cluster(node.cluster, consumer_cluster)
            return node
        name = self.names.param_name(tensor)
        if name is not None or isinstance(tensor, Parameter):
            role, title = "parameter", name or tensor.name or "parameter"
        elif tensor.requires_grad:
            role, title = state_role(tensor.name) or "parameter", tensor.name or "leaf"
        else:
            role, title = state_role(tensor.name) or "input", tensor.name or "input"
        node = self.tensor_node(title, role, consumer_cluster, tensor.shape, tensor.dtype, sig=f"leaf:{title}")
        node.sub = title in _SUBSCRIPTED
        node.named = bool(name or tensor.name)
        if tensor.requires_grad and self.norms is not None:
            node.wants_grad, node.grad = True, self.norms.leaf(tensor)
        self.leaves[id(tensor)] = node
        self.alive.append(tensor)
        return node

    def sources(self, fn, cluster):
        """Per input: the node its value comes from (None for a 0-d constant), and the constants' texts."""
        nodes, notes = [], []
        for i, link in enumerate(fn.next):
            if link is None:
                const = fn.trace.constant(i)
                if const is None:  # released after backward() and no longer held by anyone
                    shape, dtype = fn.in_meta[i]
                    title = fn.trace.constant_name(i) or "input"
                    node = self.tensor_node(title, "input", cluster, shape, dtype, sig=f"leaf:{title}")
                    node.sub = title in _SUBSCRIPTED
                    nodes.append(node)
                elif const.ndim == 0:
                    notes.append(scalar_text(const))
                    nodes.append(None)
                else:
                    nodes.append(self.leaf(const, cluster))
            elif type(link) is tuple:
                nodes.append(self.values[(id(link[0]), link[1])])
            else:
                nodes.append(self.leaf(link, cluster))
        return nodes, notes

    def output_name(self, fn, index):
        names = fn.trace.names
        if names and index in names:
            return names[index]
        if fn.output_names and index < len(fn.output_names):
            return fn.output_names[index]
        return None

    def value_node(self, fn, index, producer, cluster, name=None, role=None):
        """Record what output ``index`` of ``fn`` is drawn as: a tensor node when named or a root, else ``producer``."""
        root = self.roots.get((id(fn), index))
        name = name or self.output_name(fn, index) or (root.name if root is not None else None)
        if name is None and root is None:
            self.values[(id(fn), index)] = producer
            return producer
        shape, dtype = fn.trace.out_meta[index]
        state = state_role(name)
        if root is not None:
            role = "loss" if all(n == 1 for n in shape) else state or "output"
        elif role is None:
            role = state or ("loss" if name in _LOSS_NAMES and all(n == 1 for n in shape) else "tensor")
        title = name or ("loss" if role == "loss" else "output")
        node = self.tensor_node(title, role, None if root is not None else cluster, shape, dtype)
        node.root = root is not None
        node.sub = name in _SUBSCRIPTED
        node.named = name is not None
        if self.norms is not None:
            node.wants_grad, node.grad = True, self.norms.output(fn, index)
        self.drawing.connect(producer, node)
        self.values[(id(fn), index)] = node
        return node

    # --------------------------------------------------------------------- ops
    def op(self, fn):
        cluster = self.clusters.of(fn.trace.scope)
        if fn.draw_as == "sequence":
            return self.sequence(fn, cluster)
        sources, notes = self.sources(fn, cluster)
        if fn.draw_as == "cell":
            return self.fused_cell(fn, cluster, sources)
        details = []
        if self.show_shapes:
            details.append(", ".join(shape_text(s, d) for s, d in fn.trace.out_meta))
        details.extend(f"const {note}" for note in notes)
        role = "op"
        node = self.drawing.add_node(Node("op", role, fn.name, cluster, details, sig=f"op:{fn.name}", ops=1))
        if fn.outputs == 1:
            node.shape = tuple(fn.trace.out_meta[0][0])
        if self.norms is not None:
            node.wants_grad, node.grad = True, self.norms.outputs(fn)
        for src in sources:
            self.drawing.connect(src, node)
        self.inputs[node] = sources
        for i in range(fn.outputs):
            self.value_node(fn, i, node, cluster)

    def fused_cell(self, fn, cluster, sources):
        """A fused per-step cell: one node (or its gates), with its h (and c) outputs as state nodes."""
        kind = fn.cell
        n = state_count(kind)
        x, h = sources[0], _initial(sources[1], "h")
        c = _initial(sources[2], "c") if n == 2 else None
        grad = self.norms.outputs(fn) if self.norms is not None else None
        outs = add_cell(self.drawing, kind, cluster, x, h, c, sources[1 + n :], self.expand, grad,
                        self.norms is not None)
        if outs["h"].kind == "fused":
            self.inputs[outs["h"]] = sources
        for i, default in enumerate(("h", "c")[: fn.outputs]):
            name = self.output_name(fn, i) or default
            self.value_node(fn, i, outs[default] or outs["h"], cluster, name=name, role=state_role(name) or "hidden")

    def sequence(self, fn, cluster):
        """A fused whole-sequence op, drawn as its T steps (x_t in, h_t and c_t out, y_t to the output)."""
        sources, _ = self.sources(fn, cluster)
        kind = fn.cell
        n = state_count(kind)
        x, h = sources[0], _initial(sources[1], "h")
        c = _initial(sources[2], "c") if n == 2 else None
        params = sources[1 + n :]
        layers = self.clusters.layers(cluster, fn.layer, fn.direction)
        x_shape, x_dtype = fn.in_meta[0]
        h_shape, h_dtype = fn.trace.out_meta[1]
        x_role = "input" if x is not None and x.role == "input" else "tensor"
        steps = range(fn.steps)
        if is_reverse(fn.direction):
            steps = reversed(steps)
        step_norms = self.norms.steps(fn) if self.norms is not None else None
        cell_norms = self.norms.cell_steps(fn) if self.norms is not None else None
        output = None
        if (id(fn), 0) in self.used or (id(fn), 0) in self.roots:
            output = self.value_node(fn, 0, None, cluster, name=self.output_name(fn, 0) or "output", role="tensor")
        active = getattr(fn, "active", None)  # on a packed batch: how many sequences run at each step
        for t in steps:
            step = self.clusters.step(layers, t)
            x_t_shape = x_shape[1:] if active is None else (active[t],) + tuple(x_shape[1:])
            if active is not None:
                step.label = f"t={t} ({active[t]} active)"
                h_shape = (active[t],) + tuple(h_shape[1:])
            x_t = self.tensor_node("x", x_role, step, x_t_shape, x_dtype, sig="tensor:x_t")
            x_t.sub = True
            self.drawing.connect(x, x_t)
            outs = add_cell(self.drawing, kind, step, x_t, h, c, params, self.expand)
            h = self.tensor_node("h", "hidden", step, h_shape, h_dtype, sig="tensor:h_t")
            h.sub = True
            if self.norms is not None:
                h.wants_grad = True
                h.grad = step_norms[t] if step_norms is not None and t < len(step_norms) else None
            self.drawing.connect(outs["h"], h)
            if n == 2:
                c = self.tensor_node("c", "cell", step, h_shape, h_dtype, sig="tensor:c_t")  # shaped like h
                c.sub = True
                c.wants_grad = self.norms is not None
                c.grad = cell_norms[t] if cell_norms is not None and t < len(cell_norms) else None
                self.drawing.connect(outs["c"], c)
            edge = self.drawing.connect(h, output)
            if edge is not None:
                edge.grad, edge.label = output.grad, f"<y<sub>{t}</sub>>"
        for i, node in ((1, h), (2, c)):
            if i < fn.outputs:
                self.values[(id(fn), i)] = node
                if (id(fn), i) in self.roots:
                    node.root = True

    def finish(self):
        """Draw attention calls as one node each (unless expanding); mark repeated calls of one module
        under one parent as steps; name the initial states."""
        if not self.expand:
            collapse_calls(self.drawing)
        groups = {}
        for cluster in self.drawing.clusters:
            if cluster.kind == "module":
                groups.setdefault((cluster.parent, id(cluster.module)), []).append(cluster)
        for (parent, _), calls in groups.items():
            if len(calls) > 1:
                for i, cluster in enumerate(calls):
                    cluster.block = ("calls", parent, id(cluster.module))
                    cluster.time = i
                    cluster.word = "call"
        name_initial_states(self.drawing)
        return self.drawing


def _initial(node, state):
    """An unnamed constant fed in as a cell's state is its initial state: call it so."""
    if node is not None and node.sig == "leaf:input":
        node.title, node.sig = f"initial {state}", f"leaf:initial {state}"
        node.role = "hidden" if state == "h" else "cell"
    return node


def name_initial_states(drawing):
    """Name the unnamed constants that play the state's part in the first step of a loop.

    When an op of the first step reads such a constant in the input slot
    where the same op of the second step reads a value the first step left
    (its ``h`` or ``c``, or any result of a loop written by hand), the
    constant is the initial state: ``initial h``/``initial c`` for a named
    state; in time steps with no named state at all (a loop written by hand)
    ``initial state``, numbered when a loop has several. (Where a state is
    named, another value read back, such as the previous output fed in as
    the next input, is not a state.)
    """
    inputs = drawing.inputs
    for steps in step_blocks(drawing):
        if len(steps) < 2:
            continue
        member = step_members(drawing, steps[:2])
        first, second = {}, {}
        for node, key in step_keys(drawing, member).items():
            (first if member[node] is steps[0] else second)[key] = node
        generic = steps[0].kind == "step" and not any(n.role in ("hidden", "cell") for n in member)
        found = []
        for key, node in first.items():
            twin = second.get(key)
            if twin is None or node not in inputs or twin not in inputs:
                continue
            for src, later in zip(inputs[node], inputs[twin]):
                if src is None or src.sig != "leaf:input" or later is None or member.get(later) is not steps[0]:
                    continue
                if later.role in ("hidden", "cell"):
                    _initial(src, "h" if later.role == "hidden" else "c")
                elif generic and src not in found:
                    found.append(src)
        for k, src in enumerate(found):
            title = "initial state" if len(found) == 1 else f"initial state {k + 1}"
            src.title, src.sig, src.role = title, f"leaf:{title}", "hidden"


def new_builder(roots, functions, names, *, show_shapes=True, show_grads=False, expand_fused=False) -> _Builder:
    """A builder for ``functions`` that knows ``roots`` (drawn as outputs) and which op outputs are read."""
    builder = _Builder(names, show_shapes, show_grads, expand_fused)
    for root in roots:
        if root._creator is not None:
            builder.roots[(id(root._creator), root._index)] = root
    for fn in functions:
        for link in fn.next:
            if type(link) is tuple:
                builder.used.add((id(link[0]), link[1]))
    return builder


def add_leaf_roots(builder, roots):
    """Draw the roots that no op made (a leaf passed as an output) as outputs of their own."""
    for root in roots:
        if root._creator is None:
            node = builder.leaf(root, None)
            node.root, node.cluster = True, None
            if node.role == "input" and root.requires_grad is False:
                node.role = "output" if root.ndim else "loss"


def build(roots, functions, names, *, show_shapes=True, show_grads=False, expand_fused=False) -> Drawing:
    """The full (unrolled) drawing of ``functions`` with ``roots`` as outputs."""
    builder = new_builder(roots, functions, names, show_shapes=show_shapes, show_grads=show_grads,
                          expand_fused=expand_fused)
    for fn in functions:
        builder.op(fn)
    add_leaf_roots(builder, roots)
    return builder.finish()


def find_hand_loop(drawing) -> bool:
    """For a graph recorded without time steps: cut a hand-written loop into steps (``find_steps``) and
    name its initial state. True when it did; False when the graph has steps already or no loop.
    (``recurrence.name_loops`` names the rest of what the loop reads and carries.)"""
    if any(steps[0].kind == "step" for steps in step_blocks(drawing)) or not find_steps(drawing):
        return False
    name_initial_states(drawing)
    return True
