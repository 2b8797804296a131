"""Jacobians, Hessians and their products of a whole function, as ``torch.autograd.functional``.

Each is built on :func:`tinygrad_rnn.autograd.grad`: ``vjp`` is one backward
pass; ``jacobian`` one backward pass per output element (``"reverse-mode"``)
or one ``jvp`` per input element (``"forward-mode"``); ``jvp`` is the
derivative of a vjp with respect to its (dummy) incoming gradient, so it
needs ``create_graph``; ``hvp`` and ``vhp`` differentiate a gradient again;
``hessian`` is the Jacobian of the gradient.

``inputs`` is a Tensor or a tuple of Tensors, and the results mirror it, as
in PyTorch: a Tensor for a Tensor, a tuple for a tuple. The function is run
on copies of the inputs that require grad; its outputs and the results are
cut from the graph unless ``create_graph=True`` (then they can be
differentiated again, through the inputs too).
"""
from __future__ import annotations

import numpy as np

from ..functions import stack
from ..tensor import Tensor
from .engine import grad
from .grad_mode import enable_grad


def _as_tuple(value, what, where):
    """(tuple of Tensors, was it a tuple) with a clear error for anything else."""
    is_tuple = isinstance(value, (tuple, list))
    items = tuple(value) if is_tuple else (value,)
    for k, item in enumerate(items):
        if not isinstance(item, Tensor):
            raise TypeError(f"{where}: {what} must be a Tensor or a tuple of Tensors, got {type(item).__name__}"
                            + (f" at position {k}" if is_tuple else ""))
    return items, is_tuple


def _prepare_inputs(inputs, create_graph, where):
    """Inputs the function runs on: still in the caller's graph when ``create_graph`` (an identity op),
    otherwise fresh leaves; all require grad. Only floating point inputs can."""
    items, is_tuple = _as_tuple(inputs, "inputs", where)
    prepared = []
    for k, x in enumerate(items):
        if x.dtype.kind not in "fc":
            raise TypeError(f"{where}: input {k} is {x.dtype}; only floating point inputs can be differentiated")
        if create_graph and x.requires_grad:
            prepared.append(x.clone())
        else:
            prepared.append(x.detach().requires_grad_(True))
    return tuple(prepared), is_tuple


def _run(func, inputs, where):
    with enable_grad():
        outputs = func(*inputs)
    items, is_tuple = _as_tuple(outputs, "the outputs of func", where)
    return items, is_tuple


def _check_v(v, like, what, where):
    """``v`` as a tuple of Tensors shaped like ``like`` (a tuple); None only where ``like`` is one element."""
    if v is None:
        if len(like) != 1 or like[0].numel() != 1:
            raise RuntimeError(f"{where}: v can be omitted only when {what} is a single tensor with one element")
        return (like[0].new_ones(like[0].shape),)
    items, _ = _as_tuple(v, "v", where)
    if len(items) != len(like):
        raise RuntimeError(f"{where}: v has {len(items)} tensor(s) but {what} has {len(like)}")
    for k, (a, b) in enumerate(zip(items, like)):
        if a.shape != b.shape:
            raise RuntimeError(f"{where}: v[{k}] has shape {a.shape}, expected {b.shape} (the shape of {what}[{k}])")
    return items


def _fill(grads, like, strict, where, what="the outputs"):
    """Missing gradients as zeros, or, with ``strict``, an error naming the independent input."""
    out = []
    for k, (g, x) in enumerate(zip(grads, like)):
        if g is None:
            if strict:
                raise RuntimeError(f"{where}: {what} do not depend on input {k} (strict=True)")
            g = x.new_zeros(x.shape)
        out.append(g)
    return tuple(out)


def _vjp_pieces(outputs, inputs, vs, create_graph, retain_graph=True):
    """Σ vᵀ d(output)/d(inputs) over the outputs that carry a graph (None or constant ones count 0);
    a tuple with None for each input nothing reaches."""
    needed = [(o, v) for o, v in zip(outputs, vs) if o is not None and o.requires_grad]
    if not needed:
        return (None,) * len(inputs)
    return grad([o for o, _ in needed], list(inputs), [v for _, v in needed],
                retain_graph=retain_graph, create_graph=create_graph, allow_unused=True)


def _finish(values, is_tuple, create_graph):
    values = tuple(v if create_graph else v.detach() for v in values)
    return values if is_tuple else values[0]


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), vᵀ J)``: the vector-Jacobian product, one backward pass."""
    where = "vjp"
    xs, inputs_tuple = _prepare_inputs(inputs, create_graph, where)
    outs, outputs_tuple = _run(func, xs, where)
    vs = _check_v(v, outs, "the output of func", where)
    grads = _fill(_vjp_pieces(outs, xs, vs, create_graph), xs, strict, where)
    return _finish(outs, outputs_tuple, create_graph), _finish(grads, inputs_tuple, create_graph)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), J v)``: the Jacobian-vector product, as the derivative of ``uᵀ J`` in ``u``
    (two backward passes: the "double-vjp trick")."""
    where = "jvp"
    xs, inputs_tuple = _prepare_inputs(inputs, create_graph, where)
    vs = _check_v(v, xs, "inputs", where)
    outs, outputs_tuple = _run(func, xs, where)
    dummies = tuple(o.new_zeros(o.shape).requires_grad_(True) for o in outs)
    pieces = _vjp_pieces(outs, xs, dummies, create_graph=True)
    found = _vjp_pieces(pieces, dummies, vs, create_graph)
    results = _fill(found, outs, strict, where, what="the inputs' directions")
    return _finish(outs, outputs_tuple, create_graph), _finish(results, outputs_tuple, create_graph)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``: for a Tensor in and a Tensor out, a Tensor of shape
    ``output.shape + input.shape``; tuples give tuples (outputs first, then inputs), as in PyTorch.
    ``strategy="reverse-mode"`` takes one backward pass per output element, ``"forward-mode"`` one
    jvp per input element (choose the smaller side). ``vectorize`` is accepted for PyTorch's
    signature; the passes run one after another either way."""
    where = "jacobian"
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f"jacobian: strategy must be 'reverse-mode' or 'forward-mode', got {strategy!r}")
    xs, inputs_tuple = _prepare_inputs(inputs, create_graph, where)
    outs, outputs_tuple = _run(func, xs, where)
    blocks = [[None] * len(xs) for _ in outs]
    if strategy == "reverse-mode":
        for i, out in enumerate(outs):
            rows = [[] for _ in xs]
            for j in range(out.numel()):
                seed = np.zeros(out.numel(), dtype=out.dtype)
                seed[j] = 1
                one_hot = Tensor(seed.reshape(out.shape), device=out.device)
                grads = _fill(_vjp_pieces((out,), xs, (one_hot,), create_graph), xs, strict, where)
                for k, g in enumerate(grads):
                    rows[k].append(g)
            for k, x in enumerate(xs):
                blocks[i][k] = _stack_rows(rows[k], out.shape, x.shape, x)
    else:
        for k, x in enumerate(xs):
            columns = [[] for _ in outs]
            for j in range(x.numel()):
                seed = np.zeros(x.numel(), dtype=x.dtype)
                seed[j] = 1
                directions = tuple(
                    Tensor(seed.reshape(x.shape), device=x.device) if m == k else y.new_zeros(y.shape)
                    for m, y in enumerate(xs)
                )
                _, products = jvp(func, tuple(xs), directions, create_graph=create_graph, strict=strict)
                for i, p in enumerate(products if outputs_tuple else (products,)):
                    columns[i].append(p)
            for i, out in enumerate(outs):
                blocks[i][k] = _stack_columns(columns[i], out.shape, x.shape, out)
    blocks = [[b if create_graph else b.detach() for b in row] for row in blocks]
    per_output = [tuple(row) if inputs_tuple else row[0] for row in blocks]
    return tuple(per_output) if outputs_tuple else per_output[0]


def _stack_rows(rows, out_shape, in_shape, like):
    """d out[j] / d input for every j, as one tensor of shape out_shape + in_shape."""
    if not rows:
        return like.new_zeros(tuple(out_shape) + tuple(in_shape))
    return stack(rows, 0).reshape(tuple(out_shape) + tuple(in_shape))


def _stack_columns(columns, out_shape, in_shape, like):
    """d output / d input[j] for every j, as one tensor of shape out_shape + in_shape."""
    if not columns:
        return like.new_zeros(tuple(out_shape) + tuple(in_shape))
    return stack(columns, -1).reshape(tuple(out_shape) + tuple(in_shape))


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """The Hessian of the scalar function ``func`` at ``inputs``: a Tensor of shape
    ``input.shape + input.shape`` for one input, a tuple of tuples for several (as in PyTorch)."""
    where = "hessian"
    xs, inputs_tuple = _as_tuple(inputs, "inputs", where)

    def gradient(*values):
        outs, _ = _run(func, values, where)
        if len(outs) != 1 or outs[0].numel() != 1:
            raise RuntimeError(f"hessian: func must return a single tensor with one element, got {len(outs)} "
                               f"tensor(s) of shape {outs[0].shape}")
        pieces = _vjp_pieces(outs, values, (outs[0].new_ones(outs[0].shape),), create_graph=True)
        return _fill(pieces, values, strict, where)

    if inputs_tuple:
        return jacobian(gradient, xs, create_graph=create_graph, strict=strict, strategy=outer_jacobian_strategy)
    return jacobian(lambda x: gradient(x)[0], xs[0], create_graph=create_graph, strict=strict,
                    strategy=outer_jacobian_strategy)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), vᵀ H)``: the vector-Hessian product of a scalar function (two backward passes)."""
    where = "vhp"
    xs, inputs_tuple = _prepare_inputs(inputs, create_graph, where)
    outs, _ = _run(func, xs, where)
    if len(outs) != 1 or outs[0].numel() != 1:
        raise RuntimeError(f"{where}: func must return a single tensor with one element")
    vs = _check_v(v, xs, "inputs", where)
    first = _vjp_pieces(outs, xs, (outs[0].new_ones(outs[0].shape),), create_graph=True)
    results = _fill(_vjp_pieces(first, xs, vs, create_graph), xs, strict, where)
    return _finish(outs, False, create_graph), _finish(results, inputs_tuple, create_graph)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), H v)``: the Hessian-vector product of a scalar function. The Hessian of a
    twice-differentiable function is symmetric, so H v = (vᵀ H)ᵀ: the same two backward passes as
    :func:`vhp` (PyTorch says the same of its ``hvp``)."""
    output, product = vhp(func, inputs, v, create_graph=create_graph, strict=strict)
    return output, product


__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]
