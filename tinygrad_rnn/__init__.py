"""tinygrad_rnn: a small autodiff framework for learning, teaching and prototyping recurrent networks.

Read the core in this order:

1. ``tensor.py`` — the :class:`Tensor`: an array on a device and its core
   methods; more in ``tensor_shape.py`` (shapes, indexing), ``tensor_math.py``
   (math beyond arithmetic) and ``tensor_inplace.py`` (``add_``, ``x[i] = v``
   and PyTorch's in-place rules); dtypes in ``dtypes.py``;
2. ``autograd/`` — the tape: ``Function``, ``backward()`` and ``grad()``, the
   grad modes (what it records for the graph renderer is in ``recording.py``;
   how a backward runs on Tensors for ``create_graph=True`` in
   ``autograd/graph_mode.py`` and ``graph_backend.py``);
3. ``ops/`` — every differentiable op with its hand-written backward:
   ``elementwise``, ``reduce``, ``shape``, ``linalg`` first, then the rest
   (its docstring lists them), ending with the fused ones the layers use:
   ``layers``, ``losses`` and ``rnn`` (whole RNN/LSTM/GRU sequences and steps);
4. ``backends/`` — NumPy and CuPy behind one small interface, with the RNN
   gate kernels of each (``rnn_kernels_numpy.py``, ``rnn_kernels_cupy.py``);
5. ``nn/`` — modules and ``functional`` in the shape of ``torch.nn``;
6. ``viz/`` — the graph renderer (``draw_graph``) and ``text_activations``.

Around them: ``optim/`` (optimizers, ``lr_scheduler``), ``utils/data.py``
(``Dataset``, ``DataLoader``), ``data/`` (the examples' datasets),
``lecture_graphs.py`` (the lecture diagrams behind ``tinygrad-rnn graph``),
``cli.py``, ``serialization.py`` (``save``/``load``), ``gradcheck.py``,
``checks.py`` (argument checks shared by every module), and ``cuda_graphs.py``
with ``capture.py`` (``tr.cuda.graphed``: a training step captured as a CUDA graph).
"""
import warnings

from .autograd import (
    GraphReleasedError, detect_anomaly, enable_grad, inference_mode, is_grad_enabled, no_grad, retain_grads,
    set_grad_enabled,
)
from .backends import cuda_is_available, device
from .factories import (
    arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, linspace, manual_seed, ones, ones_like,
    rand, rand_like, randint, randn, randn_like, randperm, tensor, zeros, zeros_like,
)
from .functions import (
    abs, allclose, argmax, argmin, argsort, bmm, cat, chunk, clamp, cos, cumsum, einsum, equal, exp, flatten, flip,
    gather, get_default_dtype, is_tensor, isfinite, isnan, log, log1p, log_softmax, logsumexp, matmul, max, maximum,
    mean, min, minimum, mm, multinomial, nan_to_num, norm, permute, pow, relu, reshape, set_default_dtype, sigmoid,
    sign, sin, softmax, sort, split, sqrt, squeeze, stack, sum, t, tanh, topk, transpose, tril, triu, unbind,
    unsqueeze, var, where,
)
from .gradcheck import GradcheckError, gradcheck, gradcheck_directional, gradgradcheck
from .dtypes import as_dtype, bool_, float16, float32, float64, int32, int64
from .tensor import Tensor

from .serialization import CheckpointError, load, save
from . import graph_backend  # noqa: F401  (lets a create_graph backward run on Tensors)
from .autograd import functional as _autograd_functional  # noqa: F401  (tr.autograd.functional, as torch)
from . import autograd, cuda, data, nn, optim, utils, viz  # tr.nn, tr.optim, ... with no other import, as torch
from . import onnx  # tr.onnx.export; the onnx library itself is imported only when export runs
from .interop import from_torch, to_torch

__version__ = "0.1.0"

# NumPy's floating point warnings (log(0), exp overflow, 0/0) raised inside the framework are silenced,
# as PyTorch never warns about them: inf and NaN are values; ``detect_anomaly()`` finds where they appear.
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"tinygrad_rnn(\.|$)")



def __getattr__(name):
    """``tr.distributed`` on first use, as ``torch.distributed`` is there after ``import torch``: imported
    only then, because it needs mpi4py (an optional extra)."""
    if name == "distributed":
        import importlib

        return importlib.import_module(".distributed", __name__)
    raise AttributeError(f"module 'tinygrad_rnn' has no attribute {name!r}")


# PyTorch's short dtype names (torch.long, torch.float, ...), last: they shadow builtins in this module.
long, int, double, float, half, bool = int64, int32, float64, float32, float16, bool_  # noqa: A001
