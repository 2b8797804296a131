"""Layers, losses and utilities in the shape of ``torch.nn``."""
from .module import Module, ModuleList, Parameter, Sequential
from .layers import Dropout, Embedding, Flatten, Identity, LayerNorm, Linear, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from . import functional, init, utils
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, get_rnn_impl, rnn_impl, set_rnn_impl
from .attention import AdditiveAttention, DotProductAttention, MultiheadAttention
from .functional import scaled_dot_product_attention
from .transformer import PositionalEncoding, TransformerEncoderLayer
