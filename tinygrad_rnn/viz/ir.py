"""The drawing's intermediate form: nodes, edges and nested clusters, before any DOT is written.

``unrolled.build`` turns the tape into this form; ``folded.fold`` and
``budget.collapse`` rewrite it (both merge nodes through :meth:`Drawing.merge`);
``emit.to_digraph`` writes it out. Everything is kept in creation order, so
the same computation always gives the same DOT text.
"""
from __future__ import annotations


class Cluster:
    """A box in the drawing: a module call, a layer/direction, a time step, or an expanded cell.

    Step-like clusters (time steps, and repeated calls of one module) carry the
    ``block`` they belong to and their ``time``; the folded view keeps one step
    per block and the node budget collapses runs of them.
    """

    __slots__ = ("kind", "label", "name", "parent", "module", "layer", "direction", "time", "block", "word", "folded")

    def __init__(self, kind, label="", parent=None, module=None, name=""):
        self.kind = kind
        self.label = label
        self.name = name
        self.parent = parent
        self.module = module
        self.layer = None
        self.direction = None
        self.time = None
        self.block = None
        self.word = "t"
        self.folded = 0

    def chain(self):
        """This cluster and its ancestors, innermost first."""
        out, node = [], self
        while node is not None:
            out.append(node)
            node = node.parent
        return out


class Node:
    """A box or label in the drawing: a tensor, an op, a fused cell, a gate or a summary of steps.

    ``shape`` is the shape of the value drawn (None where unknown, or for an op with several
    outputs); ``named`` says whether the title is a name the user or a library gave (it is then
    never replaced by a name found from the structure); ``carried`` names what the loop hands to
    the next step through this node's value, where that is no state name (HTML: ``sum of L<sub>t</sub>``).
    """

    __slots__ = ("kind", "role", "title", "details", "cluster", "sig", "ops", "grad", "wants_grad", "root", "sub",
                 "shape", "named", "carried")

    def __init__(self, kind, role, title, cluster=None, details=(), sig=None, ops=0):
        self.kind = kind
        self.role = role
        self.title = title
        self.details = list(details)
        self.cluster = cluster
        self.sig = sig if sig is not None else f"{kind}:{title}"
        self.ops = ops
        self.grad = None
        self.wants_grad = False
        self.root = False
        self.sub = False
        self.shape = None
        self.named = False
        self.carried = ""


class Edge:
    """An arrow from ``src`` to ``dst``; ``kind`` is ``data``, ``param`` or ``recurrent``."""

    __slots__ = ("src", "dst", "kind", "grad", "label")

    def __init__(self, src, dst, kind="data", grad=None, label=""):
        self.src = src
        self.dst = dst
        self.kind = kind
        self.grad = grad
        self.label = label


class Drawing:
    """Nodes, edges (one per ordered pair of nodes) and clusters, in creation order.

    ``inputs`` maps each op node to the nodes of its inputs, slot by slot
    (None for a 0-d constant), for finding the initial state of a loop.
    """

    def __init__(self):
        self.nodes = []
        self.edges = {}
        self.clusters = []
        self.inputs = {}

    def add_node(self, node):
        self.nodes.append(node)
        return node

    def add_cluster(self, cluster):
        self.clusters.append(cluster)
        return cluster

    def connect(self, src, dst, grad=None, label=""):
        """Add an arrow (a parameter's arrows are drawn lighter); an existing arrow is kept."""
        if src is None or dst is None:
            return None
        key = (src, dst)
        edge = self.edges.get(key)
        if edge is None:
            kind = "param" if src.role == "parameter" else "data"
            edge = self.edges[key] = Edge(src, dst, kind, grad, label)
        return edge

    def merge(self, mapping, describe=None):
        """Replace each node in ``mapping`` by its image; arrows between merged nodes disappear.

        ``describe(edge, new_src, new_dst)`` may return a tag for each arrow; the
        tags of the arrows that land on one new arrow are returned in a list per
        new arrow, for the caller to turn into a label. An arrow that becomes a
        loop is kept only when it has a tag (a recurrence drawn as a self-loop).
        """
        gone = {n for n, image in mapping.items() if image is not n}
        self.nodes = [n for n in self.nodes if n not in gone]
        edges, tags = {}, {}
        for edge in self.edges.values():
            src = mapping.get(edge.src, edge.src)
            dst = mapping.get(edge.dst, edge.dst)
            tag = describe(edge, src, dst) if describe is not None else None
            if src is dst and (edge.src is not src or edge.dst is not dst) and tag is None:
                continue
            key = (src, dst)
            merged = edges.get(key)
            if merged is None:
                merged = edges[key] = Edge(src, dst, edge.kind, edge.grad, edge.label)
            else:
                if edge.kind == "recurrent":
                    merged.kind = "recurrent"
                if edge.label != merged.label:
                    merged.label = ""
                if edge.grad is not None and (merged.grad is None or edge.grad > merged.grad):
                    merged.grad = edge.grad
            if tag is not None:
                tags.setdefault(key, []).append(tag)
        self.edges = edges
        return tags

    def drop_clusters(self, clusters):
        """Forget ``clusters`` (after their nodes were merged away)."""
        self.clusters = [c for c in self.clusters if c not in clusters]


def inside(node, cluster) -> bool:
    """Whether ``node`` sits in ``cluster`` or in a cluster nested in it."""
    c = node.cluster
    while c is not None:
        if c is cluster:
            return True
        c = c.parent
    return False


def common_cluster(a, b):
    """The innermost cluster containing both ``a`` and ``b`` (None: the top level)."""
    if a is None or b is None:
        return None
    ancestors = set(a.chain())
    c = b
    while c is not None and c not in ancestors:
        c = c.parent
    return c


def step_blocks(drawing) -> list:
    """The blocks of step-like clusters, outermost first, each in creation (processing) order."""
    blocks = {}
    for cluster in drawing.clusters:
        if cluster.block is not None:
            blocks.setdefault(cluster.block, []).append(cluster)
    return sorted(blocks.values(), key=lambda steps: len(steps[0].chain()))


def step_keys(drawing, member) -> dict:
    """node -> (signature, occurrence): the part each node of ``member`` (node -> its step, from
    :func:`step_members`) plays in its step, the same in every step of a loop. Folding merges the
    nodes with one key; naming a loop compares them step to step."""
    seen, keys = {}, {}
    for node in drawing.nodes:
        step = member.get(node)
        if step is not None:
            count = seen[(step, node.sig)] = seen.get((step, node.sig), 0) + 1
            keys[node] = (node.sig, count)
    return keys


def step_members(drawing, steps) -> dict:
    """node -> the step cluster (of ``steps``) it sits in, for the nodes inside one of them."""
    step_set = set(steps)
    member = {}
    for node in drawing.nodes:
        c = node.cluster
        while c is not None:
            if c in step_set:
                member[node] = c
                break
            c = c.parent
    return member
