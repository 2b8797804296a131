"""Optimizers in the shape of ``torch.optim``: in-place updates with PyTorch's rules and defaults."""
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD
