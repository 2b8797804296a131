"""``--export-onnx PATH`` for the examples with a model: the trained model written as an ONNX file.

An example adds the flag with :func:`add_flag` and calls :func:`export` with its
model and one real batch after training; :func:`tinygrad_rnn.onnx.export` does
the work (it needs ``pip install "tinygrad_rnn[onnx]"``). Only the process that
writes files exports (rank 0 of a ``--distributed`` run).
"""
from __future__ import annotations

import argparse
import os


def onnx_path(value: str) -> str:
    """argparse ``type=`` for ``--export-onnx``: a ``.onnx`` path in a folder that exists."""
    folder = os.path.dirname(os.path.abspath(value))
    if not value.endswith(".onnx"):
        raise argparse.ArgumentTypeError(f"expected a path ending in .onnx, got {value!r}")
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"the folder of {value!r} does not exist")
    return value


def add_flag(parser):
    """Add ``--export-onnx PATH`` to an example's parser."""
    parser.add_argument("--export-onnx", type=onnx_path, default=None, metavar="PATH",
                        help="after training, write the model as ONNX to PATH (needs tinygrad_rnn[onnx])")


def export(run, model, example_inputs, input_names=None, output_names=None):
    """Write ``model`` (run on ``example_inputs``, a tuple of tensors) to ``--export-onnx`` if it was given;
    an export the ONNX format cannot express ends the run with one line naming what (exit code 2)."""
    path = getattr(run.args, "export_onnx", None)
    if not path or not run.writes:
        return None
    import tinygrad_rnn as tr

    try:
        tr.onnx.export(model, tuple(example_inputs), path, input_names=input_names, output_names=output_names)
    except ImportError as exc:
        run.error(f"--export-onnx: {exc}")
    except ValueError as exc:  # tr.onnx.ExportError: a layer or op with no ONNX form
        run.error(f"--export-onnx: {exc}")
    print(f"{run.name}: wrote the model as ONNX to {path}")
    return path
