"""The node budget: collapse the middle of long runs of time steps into one summary node.

When the unrolled drawing has more than ``max_nodes`` nodes, every block of
steps keeps its first ``k`` and last ``k`` steps and the steps between become
one node, ``t=3..996: 994 steps, 10,934 ops``; ``k`` is the largest number
that fits the budget (at least 1, so the first and last steps always stay
visible, and at most :data:`MAX_KEPT`: ``dot`` lays out a long staircase of
steps slowly, and a few steps at each end show the pattern). Blocks nested
inside kept steps are collapsed in a second round if the drawing is still too large.
"""
from __future__ import annotations

import statistics

from .ir import Node, step_blocks, step_members
from .labels import step_range_text

#: the most steps kept visible at each end of a collapsed block
MAX_KEPT = 8


def collapse(drawing, max_nodes) -> None:
    """Collapse runs of steps, in place, until the drawing has at most ``max_nodes`` nodes (if it can)."""
    levels = {}
    for steps in step_blocks(drawing):
        levels.setdefault(len(steps[0].chain()), []).append(steps)
    for depth in sorted(levels):
        if len(drawing.nodes) <= max_nodes:
            return
        alive = set(drawing.clusters)
        blocks = [[s for s in steps if s in alive] for steps in levels[depth]]
        blocks = [steps for steps in blocks if len(steps) > 2]
        if blocks:
            _collapse_level(drawing, blocks, max_nodes)


def _collapse_level(drawing, blocks, max_nodes):
    member = step_members(drawing, [s for steps in blocks for s in steps])
    weight = {}
    for node in member.values():
        weight[node] = weight.get(node, 0) + 1
    prefix = []
    for steps in blocks:
        sums = [0]
        for s in steps:
            sums.append(sums[-1] + weight.get(s, 0))
        prefix.append(sums)
    total = len(drawing.nodes)

    def size_with(keep):
        size = total
        for steps, sums in zip(blocks, prefix):
            middle = len(steps) - 2 * keep
            if middle >= 2:
                size -= sums[len(steps) - keep] - sums[keep] - 1
        return size

    keep = min(MAX_KEPT, max((len(steps) - 1) // 2 for steps in blocks))
    while keep > 1 and size_with(keep) > max_nodes:
        keep -= 1
    nodes_in = {}
    for node, step in member.items():
        nodes_in.setdefault(step, []).append(node)
    mapping, gone = {}, set()
    for steps in blocks:
        middle = steps[keep : len(steps) - keep]
        if len(middle) < 2:
            continue
        inside = [n for s in middle for n in nodes_in.get(s, ())]
        times = [s.time for s in middle]
        text = step_range_text(min(times), max(times), len(middle), sum(n.ops for n in inside), middle[0].word)
        summary = drawing.add_node(Node("summary", "summary", text, middle[0].parent, sig="summary"))
        norms = [n.grad for n in inside if n.kind == "tensor" and n.wants_grad and n.grad is not None]
        if norms:
            summary.details.append(f"‖g‖ {min(norms):.1e} … {max(norms):.1e}")
            summary.grad = statistics.median(norms)
        for node in inside:
            mapping[node] = summary
        gone.update(middle)
    drawing.merge(mapping)
    drawing.drop_clusters({c for c in drawing.clusters if any(a in gone for a in c.chain())})
