"""``draw_graph``: the autodiff graph behind a tensor, as a graphviz diagram."""
from __future__ import annotations

import gc
from contextlib import contextmanager

from ..checks import check_int
from .budget import collapse
from .emit import to_digraph
from .folded import fold
from .labels import Names
from .unrolled import build
from .walk import collect_functions, flatten_roots

_MODES = ("unrolled", "folded")
_RANKDIRS = ("LR", "RL", "TB", "BT")


def draw_graph(
    root,
    *,
    mode="unrolled",
    show_shapes=True,
    show_grads=False,
    expand_fused=False,
    max_nodes=300,
    rankdir="LR",
    model=None,
):
    """Draw the recorded graph that produced ``root`` (a tensor, or a list/tuple such as ``(output, (h, c))``).

    ``mode="unrolled"`` draws every op, clustered by module (``encoder: LSTM``)
    and by time step (``t=0``, ``t=1``, ...); ``mode="folded"`` draws each
    recurrent layer once with its recurrence as an arrow labelled
    ``h(t-1) ×T`` (the folded network of the lecture). Parameters carry their
    ``named_parameters()`` names, found from the modules that ran (or from
    ``model``). Fused cells are one node each unless ``expand_fused=True``,
    which draws their gates. Beyond ``max_nodes`` nodes, the middle of long
    runs of steps collapses into one summary node. With ``show_grads=True``,
    after a ``backward()`` run inside ``tinygrad_rnn.retain_grads()``, every
    tensor shows its gradient norm and nodes and arrows are shaded on a log
    scale, so vanishing or exploding gradients over time are visible.

    Returns a ``graphviz.Digraph``: it displays inline in Jupyter, and
    ``.render(path, format="svg")`` or ``.pipe(format="png")`` run ``dot``.
    """
    if mode not in _MODES:
        raise ValueError(f"draw_graph: mode must be 'unrolled' or 'folded', got {mode!r}")
    if rankdir not in _RANKDIRS:
        raise ValueError(f"draw_graph: rankdir must be one of {', '.join(_RANKDIRS)}, got {rankdir!r}")
    check_int("draw_graph", "max_nodes", max_nodes, minimum=1)
    if model is not None and not hasattr(model, "named_parameters"):
        raise TypeError(f"draw_graph: model must be a Module, got {type(model).__name__}")
    roots = flatten_roots(root)
    with _gc_paused():
        functions = collect_functions(roots)
        names = Names(functions, model)
        drawing = build(roots, functions, names, show_shapes=show_shapes, show_grads=show_grads,
                        expand_fused=expand_fused)
        if mode == "folded":
            fold(drawing)
        else:
            collapse(drawing, max_nodes)
        return to_digraph(drawing, rankdir=rankdir, show_grads=show_grads)


@contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector while the drawing is built.

    A drawing of a long unrolled graph allocates hundreds of thousands of small
    objects and no garbage cycles; the collector's repeated passes over them
    would take about as long as the drawing itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
