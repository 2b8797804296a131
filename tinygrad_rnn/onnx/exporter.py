"""Trace a model on example inputs and write the recorded ops as an ONNX graph (``export_model``)."""
from __future__ import annotations

from ..autograd import enable_grad
from ..files import write_atomically
from ..nn.module import Module
from ..tensor import Tensor
from ..viz.walk import collect_functions
from .convert_basic import BASIC
from .convert_layers import LAYERS
from .graph import INSTALL_HINT, ExportError, GraphBuilder

CONVERTERS = {**BASIC, **LAYERS}
_FIRST_OPSET = 17  # LayerNormalization


def _library():
    try:
        import onnx
    except ImportError:
        raise ImportError(f"onnx.export: writing ONNX needs the onnx package: {INSTALL_HINT}") from None
    return onnx


def _as_inputs(example_inputs):
    if isinstance(example_inputs, Tensor):
        return (example_inputs,)
    if isinstance(example_inputs, (tuple, list)) and all(isinstance(t, Tensor) for t in example_inputs):
        return tuple(example_inputs)
    raise TypeError(
        "onnx.export: example_inputs must be a Tensor or a tuple of Tensors (the model's positional arguments), "
        f"got {type(example_inputs).__name__}"
    )


def _flatten_outputs(result):
    """The Tensors of the model's result (a Tensor or nested tuples/lists of them; None entries skipped)."""
    found, stack = [], [result]
    while stack:
        item = stack.pop()
        if isinstance(item, Tensor):
            found.append(item)
        elif isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
        elif item is not None:
            raise ExportError(
                f"onnx.export: the model returned a {type(item).__name__}; only Tensors (or tuples/lists of them) "
                "can be graph outputs"
            )
    if not found:
        raise ExportError("onnx.export: the model returned no Tensor")
    return found


def _names(given, count, prefix, what):
    if given is None:
        return [f"{prefix}{k}" for k in range(count)]
    given = list(given)
    if len(given) != count or not all(isinstance(n, str) and n for n in given) or len(set(given)) != count:
        raise ValueError(f"onnx.export: {what} must be {count} distinct non-empty strings, got {given!r}")
    return given


def _run(model, inputs):
    """The model's result on ``inputs`` in eval mode with the tape recording (each module's mode restored)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with enable_grad():
            return model(*inputs)
    finally:
        for module, training in modes:
            module.training = training


class _Values:
    """The ONNX value name of every tensor the graph reads: inputs, parameters, constants, op outputs."""

    def __init__(self, graph, inputs, input_names, model):
        self.graph = graph
        self.by_tensor = {id(t): n for t, n in zip(inputs, input_names)}
        self.by_array = {id(t.array): n for t, n in zip(inputs, input_names)}
        self.parameters = {id(p.array): (name, p) for name, p in model.named_parameters()}
        if hasattr(model, "named_buffers"):
            for name, b in model.named_buffers():
                self.parameters.setdefault(id(b.array), (name, b))
        self.made = {}
        self.outputs = {}
        self.used_inputs = set()

    def leaf(self, tensor):
        name = self.by_tensor.get(id(tensor)) or self.by_array.get(id(tensor.array))
        if name is not None:
            self.used_inputs.add(name)
            return name
        key = id(tensor.array)
        if key not in self.made:
            if key in self.parameters:
                name, owner = self.parameters[key]
                self.made[key] = self.graph.initializer(owner.numpy(), name)
            else:
                self.made[key] = self.graph.initializer(tensor.numpy(), "const")
        return self.made[key]

    def input(self, fn, index):
        link = fn.next[index]
        if type(link) is tuple:
            return self.outputs[id(link[0]), link[1]]
        tensor = link if link is not None else fn.trace.constant(index)
        if tensor is None:
            raise ExportError(f"onnx.export: input {index} of op {fn.name} is no longer held (was backward run?)")
        return self.leaf(tensor)

    def of(self, tensor):
        creator = tensor._creator
        return self.leaf(tensor) if creator is None else self.outputs[id(creator), tensor._index]


def _op_name(cls):
    return cls.__name__[:-2] if cls.__name__.endswith("Fn") else cls.__name__


def _where(fn):
    scope = fn.trace.scope if fn.trace is not None else None
    modules = [type(s.module).__name__ for s in scope.chain() if s.module is not None] if scope else []
    return f" (inside {'/'.join(modules)})" if modules else ""


def _value_info(onnx, name, array):
    return onnx.helper.make_tensor_value_info(
        name, onnx.helper.np_dtype_to_tensor_dtype(array.dtype), list(array.shape)
    )


def export_model(model, example_inputs, path, input_names=None, output_names=None, opset_version=17):
    onnx = _library()
    if not isinstance(model, Module):
        raise TypeError(f"onnx.export: expected a tinygrad_rnn.nn.Module, got {type(model).__name__}")
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset_version, int) or not _FIRST_OPSET <= opset_version <= newest:
        raise ValueError(f"onnx.export: opset_version must be an int from {_FIRST_OPSET} to {newest}, got {opset_version!r}")
    given = _as_inputs(example_inputs)
    inputs = tuple(t.detach().requires_grad_(True) if t.dtype.kind == "f" else t.detach() for t in given)
    input_names = _names(input_names, len(inputs), "input", "input_names")
    outputs = _flatten_outputs(_run(model, inputs))
    output_names = _names(output_names, len(outputs), "output", "output_names")
    graph = GraphBuilder(onnx, opset_version)
    graph.used.update(input_names + output_names)
    values = _Values(graph, inputs, input_names, model)
    for fn in collect_functions(outputs):
        convert = CONVERTERS.get(type(fn))
        if convert is None:
            raise ExportError(
                f"onnx.export: op {fn.name}{_where(fn)} has no ONNX conversion; ops that can be exported: "
                f"{', '.join(sorted({_op_name(c) for c in CONVERTERS}))}"
            )
        ins = [values.input(fn, i) for i in range(len(fn.next))]
        outs = convert(graph, fn, ins)
        for j, name in enumerate(outs):
            values.outputs[id(fn), j] = name
    for tensor, name in zip(outputs, output_names):
        graph.nodes.append(onnx.helper.make_node("Identity", [values.of(tensor)], [name], name=f"{name}_identity"))
    for tensor, name in zip(inputs, input_names):
        if tensor.dtype.kind != "f" and name not in values.used_inputs:
            raise ExportError(
                f"onnx.export: input {name!r} ({tensor.dtype}) does not reach the traced graph as itself (a copy "
                "of it, e.g. from .long(), would be baked in as a constant); pass it in the dtype the model uses"
            )
    model_proto = onnx.helper.make_model(
        onnx.helper.make_graph(
            graph.nodes, "tinygrad_rnn",
            [_value_info(onnx, n, t.array) for t, n in zip(inputs, input_names)],
            [_value_info(onnx, n, t.array) for t, n in zip(outputs, output_names)],
            initializer=graph.initializers,
        ),
        opset_imports=[onnx.helper.make_opsetid("", opset_version)],
        producer_name="tinygrad_rnn",
    )
    onnx.checker.check_model(model_proto, full_check=True)
    data = model_proto.SerializeToString()
    write_atomically(path, lambda file: file.write(data), "onnx.export")
    return model_proto


__all__ = ["export_model", "ExportError", "CONVERTERS"]
