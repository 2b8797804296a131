"""Names and roles: dotted parameter and module names, state names, and label text.

Parameters are named as ``named_parameters()`` names them (``encoder.weight_ih_l0``),
found from the outermost module recorded in the ops' scopes or from an explicit
``model=``. A tensor's own ``name`` (``Tensor(..., name="W_hh")``) wins over its
dotted name, and ``draw_graph(params={"W_hh": W_hh})`` wins over both (the
most explicit naming wins). Tensors named ``h``/``c`` (by the layer, by an op's
``Function.output_names``, or by the user) are recurrent state.
"""
from __future__ import annotations

import functools
import re

import numpy as np

_HIDDEN = re.compile(r"^h(\d+|_\w+|n|x)?$")
_CELL = re.compile(r"^c(\d+|_\w+|n|x)?$")
CELL_CLASSES = {"rnn_tanh": "RNNCell", "rnn_relu": "RNNCell", "lstm": "LSTMCell", "gru": "GRUCell"}
CELL_CLASSES.update({f"gru_{v}": f"GRUCell({v})" for v in ("reset_before", "no_reset", "mgu", "mut1", "mut2", "mut3")})


def state_role(name):
    """``"hidden"`` for names like ``h``, ``h0``, ``h_n``; ``"cell"`` for ``c``...; else None."""
    if not name:
        return None
    if _HIDDEN.match(name):
        return "hidden"
    if _CELL.match(name):
        return "cell"
    return None


def is_reverse(direction) -> bool:
    """Whether a direction tag means right-to-left (``1``, ``"reverse"``, ``"backward"``)."""
    return direction in (1, "reverse", "backward")


def cell_class(kind) -> str:
    """The cell class a fused op stands for (``"lstm"`` → ``LSTMCell``)."""
    return CELL_CLASSES.get(kind, str(kind))


class Names:
    """Dotted names of the modules and parameters behind a graph, and the names given by ``params=``."""

    def __init__(self, functions, model=None, params=None):
        self.modules = {}
        self.params = {}
        self.explicit = {id(tensor): name for name, tensor in (params or {}).items()}
        roots = [model] if model is not None else []
        for fn in functions:
            for scope in fn.trace.scope.chain() if fn.trace.scope is not None else ():
                if scope.module is not None:
                    if all(scope.module is not r for r in roots):
                        roots.append(scope.module)
                    break
        covered = set()
        tops = []
        for root in roots:
            if id(root) in covered:
                continue
            for _, module in root.named_modules():
                covered.add(id(module))
            tops.append(root)
        prefixes = _prefixes(tops, model)
        for root, prefix in zip(tops, prefixes):
            for name, module in root.named_modules(prefix):
                self.modules.setdefault(id(module), name)
            for name, param in root.named_parameters(prefix):
                self.params.setdefault(id(param), name)

    def module_label(self, module) -> str:
        """``name: Type`` (just ``Type`` for the outermost module)."""
        name = self.modules.get(id(module), "")
        kind = type(module).__name__
        return f"{name}: {kind}" if name and name != kind else kind

    def param_name(self, tensor):
        """The name a leaf is drawn with as a parameter, or None when it is not one.

        ``params=`` first, then the tensor's own name (for a module's
        parameter), then its dotted ``named_parameters()`` name.
        """
        explicit = self.explicit.get(id(tensor))
        if explicit is not None:
            return explicit
        dotted = self.params.get(id(tensor))
        if dotted is not None and tensor.name:
            return tensor.name
        return dotted


def _prefixes(tops, model):
    """No prefix for a single outermost module (or ``model``); class names when several are drawn."""
    if len(tops) <= 1:
        return [""] * len(tops)
    prefixes, used = [], {}
    for root in tops:
        if root is model:
            prefixes.append("")
            continue
        base = type(root).__name__
        count = used.get(base, 0)
        used[base] = count + 1
        prefixes.append(base if count == 0 else f"{base}_{count}")
    return prefixes


@functools.lru_cache(maxsize=4096)
def shape_text(shape, dtype) -> str:
    """``(2, 8)``, with the dtype appended when it is not float32."""
    text = "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"
    if np.dtype(dtype) != np.float32:
        text += f" {np.dtype(dtype).name}"
    return text


def grad_text(norm) -> str:
    """``‖g‖=3.2e-04``, or the 'not kept' marker for ``None``."""
    return "‖g‖ not kept" if norm is None else f"‖g‖={norm:.1e}"


def step_range_text(first, last, count, ops, what="t") -> str:
    """The summary of collapsed steps: ``t=3..996: 994 steps, 10,934 ops``."""
    unit = "steps" if what == "t" else "calls"
    return f"{what}={first}..{last}: {count:,} {unit}, {ops:,} ops"


def scalar_text(tensor) -> str:
    """A 0-d constant's value, as an op label annotation (``× 0.5`` style values)."""
    value = tensor._backend.to_host(tensor.array).item()
    return f"{value:g}" if isinstance(value, float) else str(value)
