"""Finding the loop in a graph recorded without time steps (an RNN written by hand with Tensor ops).

A recurrence shows in the graph as ops that read the same weights once per
step, each depending on the one before (``h @ W_hh`` at step t reads the h
that ``h @ W_hh`` at step t-1 led to). The longest such chain of one op on
one set of parameter leaves gives the steps. Python records the loop body
step after step, so each step is a window of the recording around its
chained op; the window's start is where a step hands the fewest values
to the next. Ops before the loop (an embedding of the whole sequence)
and after it (a loss on the last state) are what the first and last steps
have more of than their neighbours; they stay outside the steps. The steps
then fold as if ``tr.autograd.scope(step=t)`` had marked them.

:func:`name_loops` then names what such a loop reads and carries from the
structure alone (the user's variable names are not recorded): the state
``h_t`` (and ``c_t``), ``initial h``, ``x_t``, ``target_t``, ``L_t`` and
the running sum of the per-step losses.
"""
from __future__ import annotations

import functools
import heapq
from collections import Counter

from .ir import Cluster, Edge, Node, common_cluster, step_blocks, step_keys, step_members


def _adjacency(drawing):
    """node -> the nodes it reads, and node -> the nodes that read it."""
    preds, succs = {}, {}
    for src, dst in drawing.edges:
        preds.setdefault(dst, []).append(src)
        succs.setdefault(src, []).append(dst)
    return preds, succs


def find_steps(drawing) -> bool:
    """Cut ``drawing`` into time-step clusters when it holds a recurrence; return whether it did."""
    preds, succs = _adjacency(drawing)
    order = _topological(drawing.nodes, preds, succs)
    chain = _recurrence(order, preds)
    if len(chain) < 2:
        return False
    step = _assign(order, preds, succs, chain)
    _trim_ends(order, step, len(chain))
    if all(_in_block(node) for node in step):
        return False  # repeated calls of one module (a cell in a loop) hold the whole loop: they fold already
    parent = functools.reduce(common_cluster, (m.cluster for m in chain))
    _place(drawing, order, preds, succs, step, parent, len(chain))
    return True


def _topological(nodes, preds, succs) -> list:
    """The nodes in an order where every arrow goes forward (creation order where it already does)."""
    position = {n: i for i, n in enumerate(nodes)}
    waiting = {n: len(preds.get(n, ())) for n in nodes}
    ready = [position[n] for n in nodes if waiting[n] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        order.append(node)
        for dst in succs.get(node, ()):
            waiting[dst] -= 1
            if waiting[dst] == 0:
                heapq.heappush(ready, position[dst])
    return order


def _is_param(node, preds) -> bool:
    return node.kind == "tensor" and node.role == "parameter" and not preds.get(node)


def _weights_read(node, preds, memo, weights) -> frozenset:
    """The weights ``node`` reads: directly, or through ops that read nothing else (``W_hh.T``)."""
    if node not in memo:
        memo[node] = None  # not a weight while it is being looked at (no cycles in a tape, but be safe)
        sources = preds.get(node, ())
        if node in weights:
            memo[node] = frozenset((node,))
        elif sources and all(_weights_read(p, preds, memo, weights) for p in sources):
            memo[node] = frozenset().union(*(memo[p] for p in sources))
    return memo[node] or frozenset()


def _recurrence(order, preds) -> list:
    """The longest group of same ops on the same weights, each depending on the one before.

    A weight is a parameter leaf read by several ops, or by one op that reads
    nothing else (``W_hh.T`` made once before the loop); a leaf read once
    among other values (an initial state that requires grad) is none. An op
    that reads only weights prepares one and is no step of the loop.
    """
    readers = {}
    for node in order:
        for p in preds.get(node, ()):
            readers.setdefault(p, []).append(node)
    weights = {node for node in order if _is_param(node, preds)
               and (len(readers.get(node, ())) > 1 or all(len(preds[r]) == 1 for r in readers.get(node, ())))}
    groups = {}
    memo = {}
    for node in order:
        _weights_read(node, preds, memo, weights)  # in creation order: a node's inputs are known before it
    for node in order:
        if node.kind == "tensor" or memo[node]:
            continue
        params = frozenset().union(*(memo[p] or () for p in preds.get(node, ())))
        if params:
            groups.setdefault((node.sig, params), []).append(node)
    best = []
    for members in groups.values():
        if len(members) > max(len(best), 1) and _chained(members, order, preds):
            best = members
    return best


def _chained(members, order, preds) -> bool:
    """Whether each member depends on the member before it (and the first on none)."""
    index = {m: k for k, m in enumerate(members)}
    last = {}
    for node in order:
        latest = max((last.get(p, -1) for p in preds.get(node, ())), default=-1)
        k = index.get(node)
        if k is not None:
            if latest != k - 1:
                return False
            latest = k
        if latest >= 0:
            last[node] = latest
    return True


def _assign(order, preds, succs, chain) -> dict:
    """node -> step for the ops and named results (leaves are placed later).

    Python runs the loop body step after step, so the ops of step t were
    recorded after those of step t-1 and before those of step t+1: each step
    is a window of the recording around its chained op. Where the window
    starts (how many ops of the step come before the chained op) is chosen
    so that a step hands the fewest values to the next (the state is
    narrow) and the first and last steps hold the same ops as their
    neighbours.
    """
    ops = [n for n in order if preds.get(n) and not n.root]
    at = {n: i for i, n in enumerate(ops)}
    marks = [at[m] for m in chain]
    gap = min(b - a for a, b in zip(marks, marks[1:]))
    best, best_score = None, None
    for lead in range(gap):
        step = _windows(ops, marks, lead)
        score = _crossings(step, preds, len(chain)) + _ragged(ops, step, len(chain))
        if best_score is None or score < best_score:
            best, best_score = step, score
    return best


def _windows(ops, marks, lead) -> dict:
    """Step t: the ops from ``lead`` ops before the t-th chained op up to the next step's start."""
    starts = [max(m - lead, 0) for m in marks]
    starts.append(min(marks[-1] - lead + (marks[-1] - marks[-2]), len(ops)))
    step = {}
    for t in range(len(marks)):
        for i in range(starts[t], starts[t + 1]):
            step[ops[i]] = t
    return step


def _crossings(step, preds, count) -> int:
    """How many values of a middle step the next one reads (the state handed over)."""
    t = count // 2 - 1 if count > 2 else 0
    return len({p for node, s in step.items() if s == t + 1 for p in preds.get(node, ()) if step.get(p) == t})


def _ragged(ops, step, count) -> int:
    """How many ops the first and last steps have more or fewer of than their neighbours."""
    def sigs(t):
        return Counter(n.sig for n in ops if step.get(n) == t)

    first, last = sigs(0), sigs(count - 1)
    second, before_last = sigs(1), sigs(count - 2)
    return sum(((first - second) + (second - first) + (last - before_last) + (before_last - last)).values())


def _trim_ends(order, step, count):
    """Leave out of the first (last) step the ops it has more of than the second (last but one)."""
    for edge, neighbour, latest in ((0, 1, False), (count - 1, count - 2, True)):
        extra = Counter(n.sig for n in order if step.get(n) == edge)
        extra.subtract(Counter(n.sig for n in order if step.get(n) == neighbour))
        members = [n for n in order if step.get(n) == edge]
        for node in reversed(members) if latest else members:
            if extra[node.sig] > 0:
                extra[node.sig] -= 1
                del step[node]


def _place(drawing, order, preds, succs, step, parent, count):
    """Make the step clusters under ``parent`` and move the nodes (and whole module calls) into them."""
    clusters = []
    for t in range(count):
        cluster = drawing.add_cluster(Cluster("step", f"t={t}", parent))
        cluster.time, cluster.block = t, ("steps", parent)
        clusters.append(cluster)
    calls = {}  # cluster directly under parent -> the steps of the nodes inside it
    for node in order:
        top = _child_of(node.cluster, parent)
        if top is not None and preds.get(node):
            calls.setdefault(top, set()).add(step.get(node))
    for node, t in step.items():
        if node.cluster is parent:
            node.cluster = clusters[t]
    for top, steps in calls.items():
        if len(steps) == 1 and None not in steps:
            top.parent = clusters[steps.pop()]
            top.block, top.time, top.word = None, None, "t"
    for node in order:
        if _is_param(node, preds) or (not preds.get(node) and not node.root):
            users = [s.cluster for s in succs.get(node, ())]
            if users:
                node.cluster = functools.reduce(common_cluster, users)


def _in_block(node) -> bool:
    """Whether ``node`` sits in a step-like cluster (a repeated module call)."""
    return node.cluster is not None and any(c.block is not None for c in node.cluster.chain())


def _child_of(cluster, parent):
    """The cluster directly under ``parent`` that holds ``cluster`` (None when there is none)."""
    while cluster is not None and cluster.parent is not parent:
        cluster = cluster.parent
    return cluster


# ------------------------------------------------------------------ naming what a hand-written loop carries
def name_loops(drawing) -> dict:
    """Name, from the structure alone, what each loop written with Tensor ops reads and carries.

    In a block of time steps where nothing is named as a state (a loop found
    by :func:`find_steps` or marked with ``tr.autograd.scope(step=t)``), a value
    a step hands to the next is a running sum when the next step only adds to
    it (``loss = loss + L_t``: its arrow is ``sum of L_t`` and each step's scalar
    addend is drawn as ``L_t``) and a state otherwise. One state is ``h``; of
    two, ``c`` is the one the other is computed from within the step and that
    feeds no weight in the next step (the cell of an LSTM): otherwise they are
    ``state 1`` and ``state 2``. Each step's state is drawn as a node ``h_t``
    after the op that makes it and its first value as ``initial h``; a step's
    unnamed input is ``x_t`` when the state depends on it and ``target_t`` when
    only a loss does, and a scalar a step hands out of the loop is ``L_t``.
    Given names (``name=``, ``params=``, library layers) are never replaced.
    Returns each new node -> the op node whose value it shows.
    """
    made = {}
    for steps in step_blocks(drawing):
        if len(steps) >= 2 and steps[0].kind == "step":
            made.update(_LoopNames(drawing, steps).apply())
    return made


def _scalar(node) -> bool:
    return node.shape is not None and all(n == 1 for n in node.shape)


class _LoopNames:
    """The analysis of one block of steps: each node's key (signature, occurrence) in its step, the values
    handed from step to step, and what they are."""

    def __init__(self, drawing, steps):
        self.drawing, self.steps = drawing, steps
        self.preds, self.succs = _adjacency(drawing)
        self.member = step_members(drawing, steps)
        time = {s: k for k, s in enumerate(steps)}
        self.time = {node: time[s] for node, s in self.member.items()}
        self.key_of = step_keys(drawing, self.member)
        self.keyed = [{} for _ in steps]
        for node, key in self.key_of.items():
            self.keyed[self.time[node]][key] = node
        self.readers = {}  # key of a value step k hands to step k+1 -> keys of its readers there
        for src, dst in drawing.edges:
            a, b = self.time.get(src), self.time.get(dst)
            if a is not None and b == a + 1 and self.preds.get(src):
                self.readers.setdefault(self.key_of[src], set()).add(self.key_of[dst])

    def nodes(self, key):
        """The node with ``key`` in each step that has one."""
        return [nodes[key] for nodes in self.keyed if key in nodes]

    def apply(self) -> dict:
        if any(n.role in ("hidden", "cell") and self.preds.get(n) for n in self.member):
            return {}  # states named by a layer or by the user: drawn as named
        order = {node: i for i, node in enumerate(self.drawing.nodes)}
        carried = sorted(self.readers, key=lambda key: order[self.nodes(key)[0]])
        sums = [key for key in carried if key[0] == "op:Add" and self.readers[key] == {key}
                and _scalar(self.nodes(key)[0])]
        states = [key for key in carried if key not in sums]
        names = self.state_names(states)
        losses = self.losses(sums)
        initial = self.initial_leaves()
        for leaf, key in initial.items():
            if key in names:
                title, role = names[key]
                leaf.title, leaf.role, leaf.sig, leaf.sub = f"initial {title}", role, f"leaf:initial {title}", False
        self.name_inputs(set(initial), set(states), set(losses) | set(sums))
        for key in sums:
            text = "sum of L<sub>t</sub>" if losses else "sum"
            for node in self.nodes(key):
                node.carried = text
            if losses:
                self.label_sums(key)
        made = {}
        for key, (title, role) in names.items():
            made.update(self.insert(key, title, role))
        for key in losses:
            made.update(self.insert(key, "L", "loss"))
        return made

    def within(self, start, k) -> set:
        """The nodes of step ``k`` reached from ``start`` (itself included) along arrows inside the step."""
        found, stack = set(), [start]
        while stack:
            node = stack.pop()
            if node not in found and self.time.get(node) == k:
                found.add(node)
                stack.extend(self.succs.get(node, ()))
        return found

    def state_names(self, states) -> dict:
        """key -> (title, role) of each state: ``h``; ``h`` and ``c``; or ``state 1``, ``state 2``, ..."""
        if len(states) == 1:
            return {states[0]: ("h", "hidden")}
        if len(states) == 2:
            k = max(len(self.steps) // 2 - 1, 0)
            here = [self.keyed[k].get(key) for key in states]
            if None not in here:
                for (h, c), (h_node, c_node) in ((states, here), (states[::-1], here[::-1])):
                    reach = self.within(c_node, k)
                    if h_node in reach and c_node not in self.within(h_node, k) and not self.feeds_weight(c, k + 1):
                        return {h: ("h", "hidden"), c: ("c", "cell")}
        return {key: (f"state {i + 1}", "hidden") for i, key in enumerate(states)}

    def feeds_weight(self, key, k) -> bool:
        """Whether the value with ``key`` of step k-1 is read in step ``k`` by an op that also reads a
        parameter, or by a concatenation (``cat([x_t, h])`` before the gates' weights)."""
        for reader in (self.keyed[k].get(r) for r in self.readers[key]):
            if reader is None:
                continue
            if reader.sig == "op:Cat" or any(p.role == "parameter" and not self.preds.get(p)
                                              for p in self.preds.get(reader, ())):
                return True
        return False

    def losses(self, sums) -> list:
        """Keys of each step's loss: the scalar op added to a running sum, or handed out of the loop."""
        found = []
        for key in sums:
            for node in self.nodes(key):
                for src in self.drawing.inputs.get(node, ()):
                    if (src is not None and src.kind == "op" and _scalar(src) and self.time.get(src) == self.time[node]
                            and self.key_of[src] not in found):
                        found.append(self.key_of[src])
        for key, node in self.keyed[-1].items():
            outs = self.succs.get(node, ())
            if (node.kind == "op" and _scalar(node) and key not in found and key not in self.readers and outs
                    and all(self.time.get(d) is None and not d.root for d in outs)
                    and all(key in nodes for nodes in self.keyed)):
                found.append(key)
        return found

    def initial_leaves(self) -> dict:
        """Unnamed leaves read in the first step where the second step reads a value the first handed on:
        leaf -> the key of that value."""
        found = {}
        if len(self.keyed) < 2:
            return found
        for key, node in self.keyed[0].items():
            twin = self.keyed[1].get(key)
            if twin is None or node not in self.drawing.inputs or twin not in self.drawing.inputs:
                continue
            for src, later in zip(self.drawing.inputs[node], self.drawing.inputs[twin]):
                if (src is not None and later is not None and not src.named and not self.preds.get(src)
                        and src.kind == "tensor" and self.time.get(later) == 0 and self.key_of[later] in self.readers):
                    found.setdefault(src, self.key_of[later])
        return found

    def name_inputs(self, initial, states, losses):
        """``x`` for an unnamed input the state depends on within its step, ``target`` for one only a loss does."""
        for leaf in list(self.drawing.nodes):
            if leaf.kind != "tensor" or leaf.named or leaf.role != "input" or self.preds.get(leaf) or leaf in initial:
                continue
            users = [(u, self.time[u]) for u in self.succs.get(leaf, ()) if u in self.time]
            if not users:
                continue
            reached = {self.key_of[n] for u, k in users for n in self.within(u, k)}
            title = "x" if reached & states else "target" if reached & losses else None
            if title is not None:
                leaf.title, leaf.sig, leaf.sub = title, f"leaf:{title}", True

    def label_sums(self, key):
        """In the unrolled drawing, the running sum handed to step k+1 reads ``L_0+…+L_k``."""
        for src, dst in self.drawing.edges:
            k = self.time.get(src)
            if k is not None and self.key_of[src] == key and self.time.get(dst) == k + 1:
                terms = [f"L<sub>{k}</sub>"] if k < 2 else ["…", f"L<sub>{k}</sub>"]
                terms = ["L<sub>0</sub>"] + terms if k > 0 else terms
                self.drawing.edges[(src, dst)].label = "<" + "+".join(terms) + ">"

    def insert(self, key, title, role) -> dict:
        """Draw the value of the op with ``key`` in every step as a tensor node ``title_t`` after it."""
        made = {}
        for node in self.nodes(key):
            if node.kind != "op":
                continue
            shown = [node.details[0]] if node.details and not node.details[0].startswith("const") else []
            value = Node("tensor", role, title, self.steps[self.time[node]], shown, sig=f"tensor:{title}_t")
            value.shape, value.sub, value.carried = node.shape, True, node.carried
            value.wants_grad, value.grad = node.wants_grad, node.grad
            made[value] = node
        if not made:
            return made
        by_op = {op: value for value, op in made.items()}
        edges = {}
        for (src, dst), edge in self.drawing.edges.items():
            value = by_op.get(src)
            if value is not None:
                edges.setdefault((src, value), Edge(src, value, "data", edge.grad))
                edge.src = value
            edges[(edge.src, dst)] = edge
        self.drawing.edges = edges
        for op, sources in self.drawing.inputs.items():
            self.drawing.inputs[op] = [by_op.get(s, s) for s in sources]
        nodes = []
        for node in self.drawing.nodes:
            nodes.append(node)
            if node in by_op:
                nodes.append(by_op[node])
        self.drawing.nodes = nodes
        return made
