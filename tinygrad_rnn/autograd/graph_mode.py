"""Running a backward on Tensors (``create_graph=True``), so that it records its own graph.

Every backward is written once, with operators and ``self.xp`` calls that
work on arrays and on Tensors alike. For a first-order backward ``fn.xp`` is
NumPy or CuPy and everything is an array. For a ``create_graph`` backward
:func:`run_backward` hands the same method Tensors: the output gradients,
the saved arrays as the tensors they were (an input keeps its place in the
graph, an output becomes a tensor made by ``fn`` itself), and a backend whose
``xp`` is a NumPy-like namespace over Tensor ops (``tinygrad_rnn/graph_backend.py``
registers it here, so this package imports no Tensor code). Each Tensor op
the backward calls is recorded, and the gradient it returns can be
differentiated again.

A saved float array that is neither an input nor an output (something
forward computed from them) would be a constant here, and its second
derivative silently wrong: ``run_backward`` refuses it, unless the op lists
it in ``constant_saved`` (values that do not depend on the inputs, like a
dropout mask) or defines ``graph_saved(saved)``, which gets the saved tuple
as Tensors with ``None`` in those places and returns it with them recomputed
from the others by Tensor ops. An op whose backward cannot run this way
defines its own ``graph_backward``.
"""
from __future__ import annotations

from .function import STATE

_TENSOR_TYPES = []
_GRAPH_BACKEND = []


def register(tensor_type=None, graph_backend=None):
    """Tell this module the Tensor class (``tensor.py``) and the factory of graph backends
    (``graph_backend.py``); called once each at import."""
    if tensor_type is not None:
        _TENSOR_TYPES.append(tensor_type)
    if graph_backend is not None:
        _GRAPH_BACKEND.append(graph_backend)


def is_tensor(obj) -> bool:
    return bool(_TENSOR_TYPES) and isinstance(obj, _TENSOR_TYPES[0])


def run_backward(fn, grads_out):
    """``fn``'s backward on Tensors, recorded: returns a tuple of Tensors (or None)."""
    previous = STATE.grad_enabled
    STATE.grad_enabled = True
    try:
        own = getattr(fn, "graph_backward", None)
        if own is not None:
            result = own(*grads_out)
        else:
            saved, backend = fn.saved, fn.backend
            fn.backend = _GRAPH_BACKEND[0](backend)  # first: a graph_saved computes with self.xp too
            try:
                fn.saved = saved_tensors(fn, saved, backend)
                result = fn.backward(*grads_out)
            finally:
                fn.saved, fn.backend = saved, backend
    finally:
        STATE.grad_enabled = previous
    results = result if type(result) is tuple else (result,)
    for g in results:
        if g is not None and not is_tensor(g):
            raise RuntimeError(
                f"{fn.name}.backward returned a {type(g).__name__} in a create_graph backward; it must build its "
                "gradients from its Tensor arguments and self.xp (or define graph_backward)"
            )
    return result


def saved_tensors(fn, saved=None, backend=None):
    """``fn.saved`` (or ``saved``, arrays of ``backend``) as Tensors in the graph: an input's array as that input (a leaf itself, or a tensor
    made by the input's creator), an output's as a tensor made by ``fn``, anything else as a constant
    (bool and int arrays, or the float arrays ``constant_saved`` lists)."""
    make = _TENSOR_TYPES[0]._make
    backend = backend or fn.backend
    saved = fn.saved if saved is None else saved
    sources = fn.saved_from
    recompute = getattr(fn, "graph_saved", None)
    tensors = []
    for k, array in enumerate(saved):
        source = sources[k] if sources is not None else None
        if array is None or not hasattr(array, "dtype"):
            tensors.append(array)
        elif source is None:
            if array.dtype.kind in "fc" and k not in fn.constant_saved:
                if recompute is not None:
                    tensors.append(None)  # graph_saved fills it in
                    continue
                raise NotImplementedError(
                    f"{fn.name}: double backward (create_graph=True) is not supported: its backward uses a value "
                    "computed in forward that is neither an input nor an output"
                )
            tensors.append(make(array, backend))
        elif source >= 0:
            link = fn.next[source]
            if link is None:
                tensors.append(make(array, backend))
            elif type(link) is tuple:
                tensors.append(make(array, backend, True, link[0], link[1]))
            else:
                tensors.append(link)
        else:
            tensors.append(make(array, fn.out_backend or backend, True, fn, -1 - source))
    if recompute is not None:
        return tuple(recompute(tuple(tensors)))
    return tuple(tensors)
