"""ONNX nodes for the primitive ops: arithmetic, activations, shapes, indexing, reductions, softmax, matmul.

Each converter takes ``(graph, fn, ins)`` — the :class:`GraphBuilder`, the
recorded function (its attributes and ``in_meta``/``trace.out_meta`` give the
op's parameters and shapes) and the ONNX names of its inputs — and returns
the names of its outputs.
"""
from __future__ import annotations

import math

import numpy as np

from ..ops import activations, elementwise, indexing, linalg, pointwise, reduce, shape
from .graph import ExportError

_INT64_MIN = -(2**63)


def _out_shape(fn, j=0):
    return tuple(fn.trace.out_meta[j][0])


def _out_dtype(fn, j=0):
    return fn.trace.out_meta[j][1]


def _matching(graph, fn, ins):
    """The inputs, each cast to the output's dtype where it differs (NumPy promotes, ONNX does not)."""
    dtype = _out_dtype(fn)
    return [name if fn.in_meta[i][1] == dtype else graph.cast(name, dtype) for i, name in enumerate(ins)]


def _binary(op):
    def convert(graph, fn, ins):
        return [graph.node(op, _matching(graph, fn, ins))]
    return convert


def _unary(op):
    def convert(graph, fn, ins):
        return [graph.node(op, ins)]
    return convert


def _scalar(graph, fn, value):
    return graph.const(np.asarray(value, dtype=_out_dtype(fn)))


def _pow_scalar(graph, fn, ins):
    return [graph.node("Pow", [ins[0], _scalar(graph, fn, fn.exponent)])]


def _log1p(graph, fn, ins):
    return [graph.node("Log", [graph.node("Add", [ins[0], _scalar(graph, fn, 1)])])]


def _where(graph, fn, ins):
    a, b = _matching(graph, fn, ins[1:])
    return [graph.node("Where", [ins[0], a, b])]


def _cast(graph, fn, ins):
    return [graph.cast(ins[0], _out_dtype(fn))]


def _identity(graph, fn, ins):
    return [graph.node("Identity", ins)]


def _gelu(graph, fn, ins):
    x = ins[0]
    half = graph.node("Mul", [x, _scalar(graph, fn, 0.5)])
    if fn.approximate == "tanh":
        cube = graph.node("Mul", [graph.node("Mul", [x, x]), x])
        inner = graph.node("Add", [x, graph.node("Mul", [cube, _scalar(graph, fn, 0.044715)])])
        core = graph.node("Tanh", [graph.node("Mul", [inner, _scalar(graph, fn, math.sqrt(2 / math.pi))])])
    else:
        core = graph.node("Erf", [graph.node("Mul", [x, _scalar(graph, fn, 1 / math.sqrt(2))])])
    return [graph.node("Mul", [half, graph.node("Add", [core, _scalar(graph, fn, 1)])])]


def _silu(graph, fn, ins):
    return [graph.node("Mul", [ins[0], graph.node("Sigmoid", ins)])]


def _leaky_relu(graph, fn, ins):
    return [graph.node("LeakyRelu", ins, alpha=float(fn.negative_slope))]


def _reshape(graph, fn, ins):
    return [graph.node("Reshape", [ins[0], graph.const(list(_out_shape(fn)))])]


def _permute(graph, fn, ins):
    dims = sorted(range(len(fn.inverse)), key=fn.inverse.__getitem__)
    return [graph.node("Transpose", ins, perm=dims)]


def _expand(graph, fn, ins):
    return [graph.node("Expand", [ins[0], graph.const(list(_out_shape(fn)))])]


def _basic_items(index, ndim):
    """``index`` as a list of int/slice/None items covering every input dim (Ellipsis expanded)."""
    items = list(index) if type(index) is tuple else [index]
    if not all(i is None or i is Ellipsis or type(i) in (int, slice) for i in items):
        raise ExportError(
            f"onnx.export: indexing with {index!r} (arrays or tensors as indices) has no ONNX conversion here; "
            "use ints, slices, None and ... (or gather/index_select)"
        )
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at : at + 1] = [slice(None)] * (ndim - used)
    return items + [slice(None)] * (ndim - len([i for i in items if i is not None]))


def _getitem(graph, fn, ins):
    in_shape = fn.in_meta[0][0]
    items = _basic_items(fn.index, len(in_shape))
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    axis = out_position = 0
    for item in items:
        if item is None:
            unsqueeze.append(out_position)
            out_position += 1
            continue
        size = in_shape[axis]
        if type(item) is int:
            start = item + size if item < 0 else item
            starts, ends, axes, steps = starts + [start], ends + [start + 1], axes + [axis], steps + [1]
            squeeze.append(axis)
        elif item != slice(None):
            start, stop, step = item.indices(size)
            if step < 0 and stop < 0:
                stop = _INT64_MIN
            starts, ends, axes, steps = starts + [start], ends + [stop], axes + [axis], steps + [step]
            out_position += 1
        else:
            out_position += 1
        axis += 1
    value = ins[0]
    if axes:
        value = graph.node("Slice", [value, graph.const(starts), graph.const(ends), graph.const(axes), graph.const(steps)])
    if squeeze:
        value = graph.squeeze(value, squeeze)
    if unsqueeze:
        value = graph.unsqueeze(value, unsqueeze)
    if value == ins[0]:
        value = graph.node("Identity", [value])
    return [value]


def _cat(graph, fn, ins):
    return [graph.node("Concat", _matching(graph, fn, ins), axis=fn.axis)]


def _stack(graph, fn, ins):
    return [graph.node("Concat", [graph.unsqueeze(v, [fn.axis]) for v in _matching(graph, fn, ins)], axis=fn.axis)]


def _unbind(graph, fn, ins):
    count = fn.outputs
    parts = graph.node("Split", [ins[0], graph.const([1] * count)], outputs=count, axis=fn.axis)
    parts = parts if count > 1 else [parts]
    return [graph.squeeze(p, [fn.axis]) for p in parts]


def _flip(graph, fn, ins):
    axes = list(fn.axes) if isinstance(fn.axes, (tuple, list)) else [fn.axes]
    n = len(axes)
    return [graph.node("Slice", [ins[0], graph.const([-1] * n), graph.const([_INT64_MIN] * n),
                                 graph.const(axes), graph.const([-1] * n)])]


def _repeat(graph, fn, ins):
    value = graph.node("Reshape", [ins[0], graph.const(list(fn.padded))])
    return [graph.node("Tile", [value, graph.const(list(fn.sizes))])]


def _axes_and_keepdims(fn):
    in_rank = len(fn.in_meta[0][0])
    axes = list(range(in_rank)) if fn.axis is None else list(fn.axis)
    return axes, len(_out_shape(fn)) == in_rank


def _reduction(op):
    def convert(graph, fn, ins):
        axes, keepdims = _axes_and_keepdims(fn)
        return [graph.reduce(op, ins[0], axes, keepdims)]
    return convert


def _var(graph, fn, ins):
    axes, keepdims = _axes_and_keepdims(fn)
    centred = graph.node("Sub", [ins[0], graph.reduce("ReduceMean", ins[0], axes, True)])
    total = graph.reduce("ReduceSum", graph.node("Mul", [centred, centred]), axes, keepdims)
    return [graph.node("Div", [total, _scalar(graph, fn, fn.denominator)])]


def _softmax(op):
    def convert(graph, fn, ins):
        return [graph.node(op, ins, axis=fn.axis)]
    return convert


def _logsumexp(graph, fn, ins):
    axes, keepdims = _axes_and_keepdims(fn)
    return [graph.reduce("ReduceLogSumExp", ins[0], axes, keepdims)]


def _cumsum(graph, fn, ins):
    return [graph.node("CumSum", [ins[0], graph.const(fn.axis)])]


def _gather(graph, fn, ins):
    """``torch.gather``: GatherElements, on the leading part of ``x`` where ``index`` is shorter (as PyTorch)."""
    in_shape, index_shape = fn.in_meta[0][0], fn.in_meta[1][0]
    axes = [d for d, n in enumerate(index_shape) if d != fn.axis and n != in_shape[d]]
    x = ins[0]
    if axes:
        ends = [index_shape[d] for d in axes]
        x = graph.node("Slice", [x, graph.const([0] * len(axes)), graph.const(ends), graph.const(axes)])
    return [graph.node("GatherElements", [x, ins[1]], axis=fn.axis)]


def _triangle(graph, fn, ins):
    keep = graph.const(np.asarray(fn.saved[0], dtype=bool))
    return [graph.node("Where", [keep, ins[0], _scalar(graph, fn, 0)])]


BASIC = {
    elementwise.Add: _binary("Add"), elementwise.Sub: _binary("Sub"), elementwise.Mul: _binary("Mul"),
    elementwise.Div: _binary("Div"), elementwise.Pow: _binary("Pow"), elementwise.Maximum: _binary("Max"),
    elementwise.Minimum: _binary("Min"), elementwise.PowScalar: _pow_scalar,
    elementwise.Neg: _unary("Neg"), elementwise.Exp: _unary("Exp"), elementwise.Log: _unary("Log"),
    elementwise.Sqrt: _unary("Sqrt"), elementwise.Abs: _unary("Abs"), elementwise.Tanh: _unary("Tanh"),
    elementwise.Sigmoid: _unary("Sigmoid"), elementwise.Relu: _unary("Relu"), elementwise.Where: _where,
    elementwise.Cast: _cast, elementwise.Clone: _identity, elementwise.ToDevice: _identity,
    pointwise.Sin: _unary("Sin"), pointwise.Cos: _unary("Cos"), pointwise.Sign: _unary("Sign"),
    pointwise.Log1p: _log1p, activations.Erf: _unary("Erf"), activations.GELUFn: _gelu,
    activations.SiLUFn: _silu, activations.LeakyReLUFn: _leaky_relu,
    shape.Reshape: _reshape, shape.Permute: _permute, shape.Expand: _expand, shape.GetItem: _getitem,
    shape.Cat: _cat, shape.Stack: _stack, shape.Unbind: _unbind, shape.Flip: _flip, shape.Repeat: _repeat,
    reduce.Sum: _reduction("ReduceSum"), reduce.Mean: _reduction("ReduceMean"), reduce.Max: _reduction("ReduceMax"),
    reduce.Min: _reduction("ReduceMin"), reduce.Var: _var, reduce.Softmax: _softmax("Softmax"),
    reduce.LogSoftmax: _softmax("LogSoftmax"), reduce.LogSumExp: _logsumexp, reduce.CumSum: _cumsum,
    linalg.MatMul: _binary("MatMul"), indexing.Gather: _gather, indexing.Tril: _triangle, indexing.Triu: _triangle,
}
