"""Optimizers in the shape of ``torch.optim``: in-place updates with PyTorch's rules and defaults;
``lr_scheduler`` changes their learning rates over the run."""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD
