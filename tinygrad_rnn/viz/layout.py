"""The lecture layout of an unrolled drawing: time steps left to right in one row.

Lecture figures draw an unrolled RNN with time running left to right, the
inputs x_t in a row at the bottom, the hidden states h_t in a row in the
middle and the outputs y_t and losses L_t above them. ``dot`` (drawing
bottom to top) puts each node in a row by what feeds it; this plan adds what
it cannot know:

- rows: the nodes at one depth inside their step (x_t; the cell or the first
  ops; h_t and c_t; ...; y_t; L_t) in one rank, chained by invisible arrows
  in time order, so the steps stand side by side from t=0 on the left (a
  block that runs backwards in time included);
- arrows from one step to another do not set rows (or the steps would climb
  as a staircase), and one inside a row that runs right to left is drawn
  the other way round (``dir=back``), as ``dot`` orders a row by its arrows;
- the boxes around those rows are not drawn: ``dot`` does not keep the order
  of a rank inside a box;
- a block that continues another (a decoder after its encoder) shares its
  rows and carries the time order on; other blocks get rows of their
  own (a stacked layer above the one it reads, the per-step losses above
  their steps; the two directions of a bidirectional layer may stand side by
  side, each in time order).
"""
from __future__ import annotations

from .ir import step_blocks, step_members

#: node roles that hold a recurrent state (a per-step loss is kept above the state of its step)
STATE_ROLES = ("hidden", "cell")


class LecturePlan:
    """What the emitter adds for the lecture layout.

    ``rows``       lists of nodes drawn in one rank each (``rank=same``)
    ``order``      invisible arrows (tail, head) that put steps in time order within a row
    ``align``      invisible arrows (lower, upper) that keep each per-step loss above its step
    ``stack``      invisible arrows (top of a forward step, bottom of the same reverse step) that put a
                   bidirectional layer's reverse direction above its forward one
    ``loose``      arrows (tail, head) that must not set rows: from one step to another of unrelated rows
    ``backward``   arrows (tail, head) that run right to left inside a row (drawn head to tail, ``dir=back``)
    """

    def __init__(self):
        self.rows = []
        self.row_of = {}
        self.order = []
        self.align = []
        self.stack = []
        self.loose = set()
        self.backward = set()


def lecture_plan(drawing):
    """The lecture layout's additions for ``drawing``, or None when it has no time steps to lay out."""
    blocks = [sorted(steps, key=lambda s: s.time) for steps in step_blocks(drawing)
              if len(steps) > 1 and all(s.time is not None for s in steps)]
    if not blocks:
        return None
    plan = LecturePlan()
    members = {}
    for steps in blocks:
        members.update(step_members(drawing, steps))
    for edge in drawing.edges.values():
        a, b = members.get(edge.src), members.get(edge.dst)
        if (a is not None and b is not None and a is not b) or "summary" in (edge.src.kind, edge.dst.kind):
            plan.loose.add((edge.src, edge.dst))  # from step to step (or through the collapsed middle ones)
    per_step = [_per_step(drawing, steps, members) for steps in blocks]
    anchors = []
    for k, steps in enumerate(blocks):
        state = [[n for n in nodes if _is_state(n)] for nodes in per_step[k]]
        anchors.append(state if any(state) else [[n for n in nodes if n.role == "loss"][-1:] or nodes[-1:]
                                                 for nodes in per_step[k]])
    groups = _groups(drawing, blocks, members)
    within = {}
    for edge in drawing.edges.values():
        step = members.get(edge.src)
        if step is not None and members.get(edge.dst) is step and (edge.src, edge.dst) not in plan.loose:
            within.setdefault(edge.dst, []).append(edge.src)
    level = {}
    for g, group in enumerate(groups):
        for depth, depth_row in enumerate(_depth_rows([nodes for k in group for nodes in per_step[k]], within)):
            for step_nodes in depth_row:
                level.update((n, (g, depth)) for n in step_nodes)
            _add_row(plan, drawing, depth_row)
    _settle_crossings(plan, level)
    stateless = {k for k in range(len(blocks)) if not any(_is_state(n) for nodes in per_step[k] for n in nodes)}
    _align(plan, drawing, blocks, anchors, groups, stateless)
    _stack(plan, drawing, blocks, per_step, groups, level)
    return plan


def _settle_crossings(plan, level):
    """An arrow from one step to another that reaches a lower row of the same rows (h_{t-1} into
    step t's first product) is written the other way round, drawn back (``dir=back``): it then
    agrees with the rows instead of being left out of the ranking, which would let ``dot`` drop
    the rows' order. Only arrows between unrelated rows stay out of the ranking."""
    for src, dst in list(plan.loose):
        a, b = level.get(src), level.get(dst)
        if a is None or b is None or a[0] != b[0]:
            continue
        plan.loose.discard((src, dst))
        if b[1] < a[1]:
            plan.backward.add((src, dst))


def _is_state(node) -> bool:
    """Whether ``node`` is a state (h_t, c_t) a step made: what lines a step up with the ones of the
    block beside it."""
    return node.kind == "tensor" and node.role in STATE_ROLES and not node.sig.startswith("leaf:")


def _per_step(drawing, steps, members):
    """The nodes of each step of a block, in time order."""
    by_step = {s: [] for s in steps}
    for node in drawing.nodes:
        step = members.get(node)
        if step in by_step:
            by_step[step].append(node)
    return [by_step[s] for s in steps]


def _depth_rows(per_step, within):
    """Per depth inside a step (0: what the step reads first, such as x_t; then each node one past
    the deepest node of the same step it reads): the nodes at that depth, per step in time order.
    A step's initial state, made in the first step only, is not part of any row."""
    rows = {}
    for k, nodes in enumerate(per_step):
        depth = {}
        for node in nodes:  # in creation order: every node after the nodes it reads
            if node.sig.startswith("leaf:initial"):
                continue
            depth[node] = 1 + max((depth[p] for p in within.get(node, ()) if p in depth), default=-1)
            rows.setdefault(depth[node], {}).setdefault(k, []).append(node)
    return [[by_step.get(k, []) for k in range(len(per_step))] for _, by_step in sorted(rows.items())]


def _add_row(plan, drawing, chain):
    """One rank for the nodes of ``chain`` (a list of per-step node lists, in time order)."""
    nodes = [n for step_nodes in chain for n in step_nodes if n not in plan.row_of]
    if len(nodes) < 2:
        return
    place = {n: i for i, n in enumerate(nodes)}
    for n in nodes:
        plan.row_of[n] = len(plan.rows)
    plan.rows.append(nodes)
    for src, dst in plan.loose:
        if src in place and dst in place and place[src] > place[dst]:
            plan.backward.add((src, dst))
    for prev, nxt in zip(nodes, nodes[1:]):
        if not _linked(drawing, prev, nxt):
            plan.order.append((prev, nxt))


def _linked(drawing, a, b) -> bool:
    return (a, b) in drawing.edges or (b, a) in drawing.edges


def _groups(drawing, blocks, members):
    """Blocks grouped into rows: a block whose first step reads the last step of another block
    continues that block's rows; every other block starts rows of its own."""
    index = {}
    for k, steps in enumerate(blocks):
        for s in steps:
            index[s] = k
    follows = {}
    for edge in drawing.edges.values():
        a, b = members.get(edge.src), members.get(edge.dst)
        if a is None or b is None or index[a] == index[b]:
            continue
        ka, kb = index[a], index[b]
        first_b = min(s.time for s in blocks[kb])
        last_a = max(s.time for s in blocks[ka])
        if b.time == first_b and a.time == last_a and kb not in follows:
            follows[kb] = ka
    groups, group_of = [], {}
    for k in range(len(blocks)):
        lead = follows.get(k)
        if lead is not None and lead in group_of and groups[group_of[lead]][-1] == lead:
            group_of[k] = group_of[lead]
            groups[group_of[k]].append(k)
        else:
            group_of[k] = len(groups)
            groups.append([k])
    return groups


def _align(plan, drawing, blocks, anchors, groups, stateless):
    """Keep step t of a block without a state (the per-step losses) above step t of the block
    before it with the same times."""
    singles = [group[0] for group in groups if len(group) == 1]
    for lower, upper in zip(singles, singles[1:]):
        if upper not in stateless:
            continue
        if [s.time for s in blocks[lower]] != [s.time for s in blocks[upper]]:
            continue
        for a, b in zip(anchors[lower], anchors[upper]):
            if a and b and not _linked(drawing, a[-1], b[0]):
                plan.align.append((a[-1], b[0]))


def _stack(plan, drawing, blocks, per_step, groups, level):
    """Put the reverse direction of a bidirectional layer above its forward direction, as the
    lectures draw it: step t's lowest node above the forward step t's highest."""
    singles = [group[0] for group in groups if len(group) == 1]
    for lower, upper in zip(singles, singles[1:]):
        if not _directions_of_one_layer(blocks[lower][0].parent, blocks[upper][0].parent):
            continue
        for below, above in zip(per_step[lower], per_step[upper]):
            below = [n for n in below if n in level]
            above = [n for n in above if n in level]
            if below and above:
                top = max(below, key=lambda n: level[n][1])
                bottom = min(above, key=lambda n: level[n][1])
                if not _linked(drawing, top, bottom):
                    plan.stack.append((top, bottom))


def _directions_of_one_layer(a, b) -> bool:
    """Whether clusters ``a`` and ``b`` are the two directions of one layer of a recurrent module."""
    return (a is not None and b is not None and a.kind == b.kind == "layers" and a.parent is b.parent
            and a.layer == b.layer and a.direction != b.direction)
