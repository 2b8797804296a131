"""tinygrad_rnn: a small autodiff framework for learning, teaching and prototyping recurrent networks.

Start with :class:`Tensor` (``tensor.py``), the tape (``autograd.py``), the
backends (``backends/``), the layers (``nn/``) and the graph renderer (``viz/``).
"""
from .autograd import GraphReleasedError, detect_anomaly, enable_grad, is_grad_enabled, no_grad, retain_grads
from .backends import cuda_is_available
from .factories import arange, eye, full, manual_seed, ones, ones_like, rand, randn, tensor, zeros, zeros_like
from .functions import (
    abs, argmax, argmin, cat, chunk, clamp, exp, flatten, log, log_softmax, matmul, max, maximum, mean, min,
    minimum, permute, relu, reshape, sigmoid, softmax, split, sqrt, squeeze, stack, sum, tanh, transpose,
    unsqueeze, var, where,
)
from .gradcheck import GradcheckError, gradcheck, gradcheck_directional
from .tensor import Tensor, as_dtype, bool_, float16, float32, float64, int32, int64

__version__ = "0.1.0"
from .serialization import CheckpointError, load, save
