"""The grad modes: whether ops record the tape (``no_grad`` and friends), ``detect_anomaly`` and
``retain_grads``."""
from __future__ import annotations

from contextlib import contextmanager

from .function import STATE

class _GradMode:
    """Context manager and decorator that sets whether ops record the tape."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        self.previous = STATE.grad_enabled
        STATE.grad_enabled = self.enabled

    def __exit__(self, *exc):
        STATE.grad_enabled = self.previous

    def __call__(self, func):
        mode = self.enabled

        def wrapper(*args, **kwargs):
            with _GradMode(mode):
                return func(*args, **kwargs)

        wrapper.__name__ = getattr(func, "__name__", "wrapper")
        wrapper.__doc__ = getattr(func, "__doc__", None)
        wrapper.__wrapped__ = func
        return wrapper


def no_grad(func=None):
    """Context manager / decorator: ops inside record no tape (inference, updates).

    ``with no_grad():``, ``@no_grad()`` and ``@no_grad`` all work, as in PyTorch."""
    return _GradMode(False) if func is None else _GradMode(False)(func)


def enable_grad(func=None):
    """Context manager / decorator: turn tape recording back on inside a ``no_grad`` block."""
    return _GradMode(True) if func is None else _GradMode(True)(func)


def inference_mode(mode=True):
    """``no_grad`` under PyTorch's other name (``mode=False`` records as usual); also ``@inference_mode``."""
    if callable(mode):
        return _GradMode(False)(mode)
    return _GradMode(not mode)


class set_grad_enabled:  # noqa: N801  (PyTorch's name: a function-like class)
    """Switch recording on or off: at once when called (``set_grad_enabled(False)``), or for a block
    (``with set_grad_enabled(is_training):``), restoring the previous mode at its end."""

    def __init__(self, mode: bool):
        self.previous = STATE.grad_enabled
        STATE.grad_enabled = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        STATE.grad_enabled = self.previous


def is_grad_enabled() -> bool:
    """Whether ops record the tape right now."""
    return STATE.grad_enabled


@contextmanager
def detect_anomaly():
    """Raise at the first op whose forward output or backward gradient holds NaN or inf, naming it."""
    previous = STATE.anomaly
    STATE.anomaly = True
    try:
        yield
    finally:
        STATE.anomaly = previous


@contextmanager
def retain_grads():
    """Ops created inside keep their output gradients after ``backward()``.

    ``draw_graph(show_grads=True)`` reads them to shade the graph by gradient
    norm; ``Tensor.retain_grad()`` does the same for a single tensor.
    """
    previous = STATE.keep_grads
    STATE.keep_grads = True
    try:
        yield
    finally:
        STATE.keep_grads = previous
