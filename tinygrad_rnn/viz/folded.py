"""The folded view: each recurrent layer drawn once, with its recurrence as an arrow back in time.

The steps of a block (the time steps of one layer and direction, or the
repeated calls of one module) compute the same thing, so one of them (the
last) stands for all: every node of another step is merged into the node of
the kept step with the same signature and occurrence number (a node with
no counterpart, such as the initial state made in step 0, stays, outside the
kept step). An arrow that went from step t-1 to step t becomes a recurrent
arrow labelled with its delay and the number of steps (``h(t-1) ×50``; a
running sum, ``sum of L_t ×50``); the
initial state's arrow is labelled with the first step, the final state's
with the last. The folded drawing's size does not depend on the sequence length.
"""
from __future__ import annotations

from collections import Counter

from .ir import step_blocks, step_keys, step_members


def fold(drawing) -> None:
    """Fold every block of steps into its last step, in place (outer blocks first)."""
    for steps in step_blocks(drawing):
        alive = set(drawing.clusters)
        steps = [s for s in steps if s in alive]
        if steps:
            _fold_block(drawing, steps)


def _fold_block(drawing, steps):
    kept = steps[-1]
    count = len(steps)
    kept.folded = count
    if count == 1:
        return
    member = step_members(drawing, steps)
    in_kept, others = {}, []
    for node, key in step_keys(drawing, member).items():
        if member[node] is kept:
            in_kept[key] = node
        else:
            others.append((node, key))
    mapping = {}
    for node, key in others:
        image = in_kept.get(key)
        if image is None:
            node.cluster = kept.parent
            del member[node]
        else:
            mapping[node] = image

    def describe(edge, src, dst):
        a, b = member.get(edge.src), member.get(edge.dst)
        if a is None and b is None:
            return None
        if a is not None and b is not None:
            return None if a is b else ("recurrent", b.time - a.time)
        return ("in", b.time) if b is not None else ("out", a.time)

    _note_step_grads(mapping, count)
    tags = drawing.merge(mapping, describe)
    first, last = steps[0].time, kept.time
    for key, found in tags.items():
        edge = drawing.edges[key]
        recurrent = [delay for kind, delay in found if kind == "recurrent"]
        times = {t for kind, t in found if kind != "recurrent"}
        if recurrent:
            delay = Counter(recurrent).most_common(1)[0][0]
            name = edge.src.title if edge.src.kind == "tensor" else "state"
            shift = f"t-{delay}" if delay > 0 else f"t+{-delay}"
            label = f"<{edge.src.carried} ×{count}>" if edge.src.carried else f"{name}({shift}) ×{count}"
            edge.kind, edge.label = "recurrent", label
        elif all(kind == "in" for kind, _ in found) and times == {first}:
            edge.label = f"{steps[0].word}={first}"
        elif all(kind == "out" for kind, _ in found):
            if times == {last}:
                edge.label = f"{kept.word}={last}"
            elif len(times) == count:
                edge.label = f"×{count}"
    dropped = set(steps[:-1])
    drawing.drop_clusters({c for c in drawing.clusters if any(a in dropped for a in c.chain())})


def _note_step_grads(mapping, count):
    """Give each kept tensor the range of gradient norms over all the steps it stands for."""
    norms = {}
    for node, image in mapping.items():
        if image.kind == "tensor" and image.wants_grad and node.grad is not None:
            norms.setdefault(image, [] if image.grad is None else [image.grad]).append(node.grad)
    for image, values in norms.items():
        image.details.append(f"‖g‖ {min(values):.1e} … {max(values):.1e} over {count} steps")
