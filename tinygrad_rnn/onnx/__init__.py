"""Export a model to an ONNX file: ``tr.onnx.export(model, example_inputs, path)``.

The model runs once on the example inputs with the tape recording; every
recorded op becomes one or a few ONNX nodes (``convert_basic.py``,
``convert_layers.py``), the parameters become initializers named as in
``model.named_parameters()``. The ``onnx`` library is imported only when
:func:`export` runs, so ``import tinygrad_rnn`` works without it.
"""
from __future__ import annotations

from .graph import DEFAULT_OPSET, INSTALL_HINT, ExportError


def export(model, example_inputs, path, input_names=None, output_names=None, opset_version=DEFAULT_OPSET):
    """Trace ``model`` on ``example_inputs`` (a Tensor or a tuple of Tensors, as ``torch.onnx.export``
    takes) and write the ONNX model to ``path`` atomically; returns the ``onnx.ModelProto``.

    Shapes are those of the example inputs (no dynamic axes). The model runs in eval mode (its
    mode is restored after). An op or layer variant with no ONNX form is refused with an error naming it.
    """
    from .exporter import export_model

    return export_model(model, example_inputs, path, input_names, output_names, opset_version)


__all__ = ["export", "ExportError", "DEFAULT_OPSET", "INSTALL_HINT"]
