"""What the package asks while ``tr.cuda.graphed`` warms up and captures a training step.

A captured step (``cuda_graphs.py``) is recorded once and replayed: the
device repeats the recorded kernels on the same memory, and nothing the host
did at capture time happens again. So, while a step is prepared (warm-up) or
captured, code that would read a device value on the host, or keep state on
the host, asks this module what to do instead:

* argument checks that read an index range back (embedding, gather,
  cross-entropy) compute their verdict on the device and hand it to
  :func:`check_later`; the replay checks every verdict with one transfer;
* Adam keeps its step count on the device (:func:`preparing`), so each replay
  counts on;
* reading a value (``.item()``, ``bool(t)``, ``.numpy()``) and drawing
  random numbers are refused inside a capture (:func:`refuse`), with the
  op's name, instead of failing inside CUDA or replaying stale values.
"""
from __future__ import annotations


class CaptureError(RuntimeError):
    """A step cannot be captured or replayed as it is (a host read, a shape change, a changed learning rate)."""


class _CaptureState:
    """The phase of the capture in progress (None, "warmup" or "capture") and what it collected."""

    def __init__(self):
        self.phase = None
        self.checks = []       # (device 0-d bool array, message): true means the check failed
        self.optimizers = []   # optimizers stepped inside the step, to watch their hyperparameters

    def reset(self, phase=None):
        self.phase = phase
        self.checks = []
        self.optimizers = []


STATE = _CaptureState()


def capturing() -> bool:
    """True while a step is being captured: device work is recorded, and host reads are refused."""
    return STATE.phase == "capture"


def preparing() -> bool:
    """True during the warm-up before a capture and during the capture: keep step state on the device."""
    return STATE.phase is not None


_HOST_HINT = ("a captured step runs on the device without the host: read values (loss.item()) and branch on "
              "them outside the step function")


def refuse(what: str, hint: str = _HOST_HINT) -> None:
    """Raise :class:`CaptureError` naming ``what`` when called inside a capture; nothing otherwise."""
    if STATE.phase == "capture":
        raise CaptureError(f"tr.cuda.graphed: {what} inside the captured step; {hint}")


def check_later(failed, message: str) -> None:
    """Inside a capture, keep a device-side verdict (a 0-d bool array, true = the check failed) for the
    replay to test; ``message`` is the error raised then."""
    STATE.checks.append((failed, message))


def out_of_range(array, limit: int, message: str):
    """The value of the integer ``array`` that falls outside [0, ``limit``) (its minimum if negative, else
    its maximum), or None when none does, for the caller's error. Inside a capture the device tests the
    range instead (``message`` is raised after the replay) and this returns None."""
    if array.size == 0:
        return None
    if STATE.phase == "capture":
        check_later((array.min() < 0) | (array.max() >= limit), message)
        return None
    low, high = int(array.min()), int(array.max())
    return low if low < 0 else high if high >= limit else None


def note_optimizer(optimizer) -> None:
    """Remember an optimizer stepped inside the captured step (its hyperparameters are baked into the graph)."""
    if STATE.phase == "capture" and all(o is not optimizer for o in STATE.optimizers):
        STATE.optimizers.append(optimizer)


__all__ = ["CaptureError", "capturing", "preparing", "refuse", "check_later", "out_of_range", "note_optimizer"]
