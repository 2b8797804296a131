"""The tape: differentiable functions and the backward walk.

Every differentiable op is a subclass of :class:`Function` (``function.py``)
with a ``forward`` and a ``backward`` on raw backend arrays.
``Function.apply`` runs ``forward`` and, when a gradient is needed, records
the function as the creator of its outputs. :func:`backward` and :func:`grad`
(``engine.py``) walk the recorded functions from the newest to the oldest,
so a graph of any depth (an RNN unrolled over 10,000 steps) is walked
without recursion.

What a function keeps for its backward is exactly what it passes to
:meth:`Function.save_for_backward`; it is released after ``backward()``
unless ``retain_graph=True``. A function does not hold its input tensors,
only the functions that created them (or the leaf tensors themselves), so an
intermediate array lives only as long as some backward step needs it. What
the graph renderer wants is in one slot, ``fn.trace`` (``recording.py``).

With ``create_graph=True`` the backward methods run on Tensors and record
their own graph (``graph_mode.py``), so gradients can be differentiated
again; ``tinygrad_rnn.autograd.functional`` builds Jacobians, Hessians and
their products on that.

Then: the grad modes (``no_grad``, ``enable_grad``, ``detect_anomaly``,
``retain_grads``: ``grad_mode.py``) and the warning about graphs carried
over from an earlier batch (``carried.py``).
"""
from ..recording import scope  # noqa: F401  (``autograd.scope``: where users open a scope)
from .carried import graph_depth_warning, user_stacklevel
from .engine import GraphReleasedError, backward, grad, sum_to_shape
from .function import STATE, Function
from .grad_mode import (
    detect_anomaly, enable_grad, inference_mode, is_grad_enabled, no_grad, retain_grads, set_grad_enabled,
)

__all__ = [
    "Function",
    "backward",
    "grad",
    "sum_to_shape",
    "GraphReleasedError",
    "scope",
    "no_grad",
    "enable_grad",
    "inference_mode",
    "set_grad_enabled",
    "is_grad_enabled",
    "detect_anomaly",
    "retain_grads",
    "graph_depth_warning",
    "user_stacklevel",
    "STATE",
]
