"""``GraphBuilder``: the nodes, initializers and unique value names of the ONNX graph being built."""
from __future__ import annotations

import numpy as np

DEFAULT_OPSET = 17
INSTALL_HINT = 'pip install "tinygrad_rnn[onnx]" (or pip install onnx)'


class ExportError(ValueError):
    """A model, op or layer variant that cannot be written as ONNX (the message names it)."""


class GraphBuilder:
    """Collects ONNX nodes and initializers; every value gets a fresh, unique name."""

    def __init__(self, onnx, opset):
        self.onnx = onnx
        self.opset = opset
        self.nodes = []
        self.initializers = []
        self.used = set()
        self.counter = 0

    def fresh(self, prefix):
        """A value name not used yet, starting with ``prefix``."""
        name = prefix
        while name in self.used:
            self.counter += 1
            name = f"{prefix}_{self.counter}"
        self.used.add(name)
        return name

    def node(self, op, inputs, outputs=1, **attributes):
        """Add an ``op`` node; returns its output name (or a list of ``outputs`` names when ``outputs`` > 1)."""
        names = [self.fresh(f"{op}_out") for _ in range(outputs)]
        node_name = self.fresh(f"{op}_node")
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), names, name=node_name, **attributes))
        return names[0] if outputs == 1 else names

    def initializer(self, array, name):
        """Add ``array`` as an initializer called ``name`` (made unique); returns the name."""
        name = self.fresh(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def const(self, value, dtype=None):
        """A constant initializer holding ``value`` (an int64 vector for shapes, axes and the like)."""
        array = np.asarray(value, dtype=dtype if dtype is not None else None)
        if dtype is None and array.dtype.kind == "i":
            array = array.astype(np.int64)
        return self.initializer(array, "const")

    # ---------------------------------------------------------------- small shared patterns
    def unsqueeze(self, value, axes):
        return self.node("Unsqueeze", [value, self.const(list(axes))])

    def squeeze(self, value, axes):
        return self.node("Squeeze", [value, self.const(list(axes))])

    def reduce(self, op, value, axes, keepdims):
        """``op`` (ReduceMean, ReduceMax, ...) over ``axes``: an attribute before opset 18, an input from
        18 on (ReduceSum takes an input from 13)."""
        if op == "ReduceSum" or self.opset >= 18:
            return self.node(op, [value, self.const(list(axes))], keepdims=int(keepdims))
        return self.node(op, [value], axes=list(axes), keepdims=int(keepdims))

    def cast(self, value, dtype):
        return self.node("Cast", [value], to=self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
