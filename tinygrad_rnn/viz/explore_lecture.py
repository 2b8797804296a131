"""The lecture's architectures as explorer pages (``tinygrad-rnn graph KIND --html FILE``).

The same tiny real models ``lecture_graphs.build_lecture_graph`` draws, run
forward and backward with every value and gradient kept and the backward
order recorded, so the page's stepper replays the gradient flowing back through time.
"""
from __future__ import annotations

from .. import autograd
from ..lecture_graphs import run_lecture_model
from ..recording import record_backward
from .explore import explore


def lecture_explorer(kind, steps=4, cell="rnn", mode="unrolled", *, impl=None, seed=0):
    """The :class:`~tinygrad_rnn.viz.explore.Explorer` page of the lecture's ``kind`` (see ``KINDS``),
    built and backpropagated as ``build_lecture_graph(kind, steps, cell, grads=True)`` does."""
    with autograd.retain_grads(), record_backward() as record:  # the forward too: every op keeps its value
        model, loss = run_lecture_model("lecture_explorer", kind, steps, cell, impl=impl, seed=seed)
        loss.backward()
    return explore(loss, model=model, mode=mode, record=record, title=f"{kind} ({cell}, {steps} steps)")


__all__ = ["lecture_explorer"]
