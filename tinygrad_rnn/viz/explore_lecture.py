"""The lecture's architectures as explorer pages (``tinygrad-rnn graph KIND --html FILE``).

The same tiny real models ``lecture_graphs.build_lecture_graph`` draws, run
forward and backward with every gradient kept and the backward order
recorded, so the page's stepper replays the gradient flowing back through time.
"""
from __future__ import annotations

from .. import autograd
from ..checks import check_int
from ..factories import manual_seed, randint, randn
from ..lecture_graphs import CELLS, KINDS, OUTPUT, _model_and_inputs, per_step_loss
from ..nn import MSELoss
from ..recording import record_backward
from .explore import explore


def lecture_explorer(kind, steps=4, cell="rnn", mode="unrolled", *, impl=None, seed=0):
    """The :class:`~tinygrad_rnn.viz.explore.Explorer` page of the lecture's ``kind`` (see ``KINDS``),
    built and backpropagated as ``build_lecture_graph(kind, steps, cell, grads=True)`` does."""
    if kind not in KINDS:
        raise ValueError(f"lecture_explorer: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if cell not in CELLS:
        raise ValueError(f"lecture_explorer: cell must be one of {', '.join(CELLS)}, got {cell!r}")
    check_int("lecture_explorer", "steps", steps, minimum=1)
    manual_seed(seed)
    model, inputs = _model_and_inputs(kind, cell, steps, impl)
    with autograd.retain_grads():
        prediction = model(*inputs)
        if kind == "many-to-many":
            loss = per_step_loss(prediction, randint(0, OUTPUT, prediction.shape[:2]))
        else:
            loss = MSELoss()(prediction, randn(*prediction.shape))
        with record_backward() as record:
            loss.backward()
    return explore(loss, model=model, mode=mode, record=record, title=f"{kind} ({cell}, {steps} steps)")


__all__ = ["lecture_explorer"]
