"""``draw_graph``: the autodiff graph behind a tensor, as a graphviz diagram."""
from __future__ import annotations

import gc
import warnings
from collections.abc import Mapping
from contextlib import contextmanager

from ..checks import check_int
from ..tensor import Tensor
from .budget import collapse
from .emit import to_digraph
from .folded import fold
from .labels import Names
from .ir import step_blocks
from .recurrence import name_loops
from .unrolled import build, find_hand_loop
from .walk import collect_functions, flatten_roots

_MODES = ("unrolled", "folded")
_RANKDIRS = ("LR", "RL", "TB", "BT")

#: what the drawing says when ``show_grads=True`` finds no gradient at all
NO_GRADS_NOTE = ("no gradients recorded yet: call backward() before drawing with show_grads=True "
                 "(run the forward pass and backward() inside tr.retain_grads() to keep every tensor's gradient)")

#: what the drawing says when ``mode="folded"`` finds no loop to fold
NO_LOOP_NOTE = ("no recurrence found: mode=\"folded\" draws this graph unrolled. A loop is found when the same ops "
                "read the same weights once per step, each step reading the state the step before left; "
                "to mark the steps yourself, run step t inside `with tr.autograd.scope(step=t):`")


def draw_graph(
    root,
    *,
    mode="unrolled",
    show_shapes=True,
    show_grads=False,
    expand_fused=False,
    max_nodes=300,
    rankdir=None,
    model=None,
    params=None,
):
    """Draw the recorded graph that produced ``root`` (a tensor, or a list/tuple such as ``(output, (h, c))``).

    ``mode="unrolled"`` draws every op, clustered by module (``encoder: LSTM``)
    and by time step (``t=0``, ``t=1``, ...); ``mode="folded"`` draws each
    recurrent layer once with its recurrence as an arrow labelled
    ``h(t-1) ×T`` (the folded network of the lecture); a loop written by hand
    with Tensor ops is found in the graph (the same ops reading the same
    weights once per step, with a state handed from step to step) or marked
    by running step ``t`` inside ``tr.autograd.scope(step=t)`` (in both modes:
    unrolled draws its steps as ``t=0``, ``t=1``, ...), and where there is none
    the folded picture says so in a note (and warns). What such a loop reads and
    carries is named from the structure where you gave no name: its state ``h_t``
    (``c_t`` too for an LSTM), ``initial h``, the step's input ``x_t`` and
    ``target_t``, the per-step loss ``L_t`` and a running sum of them. Parameters carry their
    ``named_parameters()`` names, found from the modules that ran (or from
    ``model``). Tensors of your own are named by ``params``, a dict name →
    tensor as torchviz's ``make_dot`` takes (``params={"W_hh": W_hh}``;
    entries not in the graph are ignored), or by their own ``name``
    (``tr.tensor(..., name="W_hh")``, ``t.name = "W_hh"``); ``params`` wins
    over a tensor's own name, which wins over its dotted module name. Fused
    cells, and each call of a seq2seq attention module (``AdditiveAttention``,
    ``DotProductAttention``), are one node each unless ``expand_fused=True``,
    which draws their gates and the attention's ops. Beyond ``max_nodes``
    nodes, the middle of long runs of steps collapses into one summary node.
    With ``show_grads=True``, after a ``backward()`` run inside
    ``tinygrad_rnn.retain_grads()``, every
    tensor shows its gradient norm and nodes and arrows are shaded on a log
    scale, so vanishing or exploding gradients over time are visible; drawn
    before any ``backward()``, the picture says so in a note (and warns).

    The unrolled view of a graph with time steps is laid out as the lectures
    draw it: bottom to top, the steps side by side from t=0 on the left, the
    inputs x_t below, the states h_t in a row, outputs and losses above; a
    ``rankdir`` ("LR", "TB", "BT", "RL") asks for a plain layered layout in
    that direction instead, with a box per module, time step and expanded
    cell (the folded view and graphs without steps: "LR").

    Returns a ``graphviz.Digraph``: it displays inline in Jupyter, and
    ``.render(path, format="svg")`` or ``.pipe(format="png")`` run ``dot``.
    """
    if mode not in _MODES:
        raise ValueError(f"draw_graph: mode must be 'unrolled' or 'folded', got {mode!r}")
    if rankdir is not None and rankdir not in _RANKDIRS:
        raise ValueError(f"draw_graph: rankdir must be one of {', '.join(_RANKDIRS)}, got {rankdir!r}")
    check_int("draw_graph", "max_nodes", max_nodes, minimum=1)
    if model is not None and not hasattr(model, "named_parameters"):
        raise TypeError(f"draw_graph: model must be a Module, got {type(model).__name__}")
    params = _check_params(params)
    roots = flatten_roots(root)
    with _gc_paused():
        functions = collect_functions(roots)
        names = Names(functions, model, params)
        drawing = build(roots, functions, names, show_shapes=show_shapes, show_grads=show_grads,
                        expand_fused=expand_fused)
        notes = []
        if show_grads and not _has_grads(drawing):
            notes.append(NO_GRADS_NOTE)
            warnings.warn(f"draw_graph: {NO_GRADS_NOTE}", UserWarning, stacklevel=2)
        find_hand_loop(drawing)
        name_loops(drawing)
        if mode == "folded":
            if not step_blocks(drawing):
                notes.append(NO_LOOP_NOTE)
                warnings.warn(f"draw_graph: {NO_LOOP_NOTE}", UserWarning, stacklevel=2)
            fold(drawing)
        else:
            collapse(drawing, max_nodes)
        lecture = rankdir is None and mode == "unrolled"
        return to_digraph(drawing, rankdir=rankdir or "LR", show_grads=show_grads, note=notes, lecture=lecture)


def _type_name(value) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _check_params(params) -> dict:
    """``params`` as a dict name → leaf tensor, or a clear error saying what is wrong with it."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        hint = (" (for a module's parameters pass model=..., or params=dict(model.named_parameters()))"
                if hasattr(params, "named_parameters") else "")
        raise TypeError(f"draw_graph: params must be a dict of name -> tensor, got {_type_name(params)}{hint}")
    named = {}
    for key, value in params.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"draw_graph: params keys must be non-empty strings (the names), got {key!r}")
        if not isinstance(value, Tensor):
            raise TypeError(f"draw_graph: params[{key!r}] must be a tinygrad_rnn Tensor, got {_type_name(value)}")
        if not value.is_leaf:
            raise ValueError(
                f"draw_graph: params[{key!r}] is not a leaf tensor (an op made it: {value.grad_fn.name}); "
                f"params names leaves such as weights; name an op's result with .name = {key!r} instead"
            )
        if id(value) in named:
            raise ValueError(f"draw_graph: params names one tensor twice: {named[id(value)]!r} and {key!r}")
        named[id(value)] = key
    return dict(params)


def _has_grads(drawing) -> bool:
    """Whether any gradient was found for the drawing (False before the first ``backward()``;
    True when nothing in it could have one)."""
    if not any(node.wants_grad for node in drawing.nodes):
        return True
    return (any(node.grad is not None for node in drawing.nodes)
            or any(edge.grad is not None for edge in drawing.edges.values()))


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
