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
"""
from __future__ import annotations

import functools
import heapq
from collections import Counter

from .ir import Cluster, common_cluster


def find_steps(drawing) -> bool:
    """Cut ``drawing`` into time-step clusters when it holds a recurrence; return whether it did."""
    preds, succs = {}, {}
    for src, dst in drawing.edges:
        preds.setdefault(dst, []).append(src)
        succs.setdefault(src, []).append(dst)
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


def _weights_read(node, preds, memo) -> frozenset:
    """The parameter leaves ``node`` reads: directly, or through ops that read nothing else (``W_hh.T``)."""
    if node not in memo:
        memo[node] = None  # not a weight while it is being looked at (no cycles in a tape, but be safe)
        sources = preds.get(node, ())
        if _is_param(node, preds):
            memo[node] = frozenset((node,))
        elif sources and all(_weights_read(p, preds, memo) for p in sources):
            memo[node] = frozenset().union(*(memo[p] for p in sources))
    return memo[node] or frozenset()


def _recurrence(order, preds) -> list:
    """The longest group of same ops on the same parameter leaves, each depending on the one before."""
    groups = {}
    memo = {}
    for node in order:
        _weights_read(node, preds, memo)  # in creation order: a node's inputs are known before it
    for node in order:
        if node.kind == "tensor":
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
