"""Layers, losses and utilities in the shape of ``torch.nn``."""
from .module import Module, ModuleList, Parameter, Sequential
from .containers import ModuleDict, ParameterList
from .layers import (
    GELU, Dropout, Embedding, Flatten, Identity, LayerNorm, LeakyReLU, Linear, LogSoftmax, ReLU, Sigmoid, SiLU, Softmax,
    Tanh,
)
from .losses import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss,
)
from . import functional, init, utils
from . import parallel  # DistributedDataParallel; imports tinygrad_rnn.distributed (mpi4py) only when built
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, get_rnn_impl, rnn_impl, set_rnn_impl
from .attention import AdditiveAttention, DotProductAttention, MultiheadAttention
from .functional import scaled_dot_product_attention
from .transformer import PositionalEncoding, TransformerEncoder, TransformerEncoderLayer
from .conv import AdaptiveAvgPool2d, AvgPool2d, Conv2d, MaxPool2d
