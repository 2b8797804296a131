"""CUDA-graph capture, emulated on the ``hostless`` test backend: record every array call of a step, replay it.

A CUDA graph replays the kernels recorded during capture on the same memory,
reading whatever that memory holds at replay time; the host takes no part.
:class:`Recorder` does the same with the hostless backend's NumPy arrays:
while it is active, every call that computes array data (ufuncs and array
functions, ``xp.*`` calls, copying and mutating array methods, the emulated
CUDA gate kernels, ``scatter_add``) is kept as a thunk together with the array
it produced; :meth:`Recorder.replay` runs the thunks again in order and
copies each fresh result into the array produced at capture, so later thunks
read it there, as kernels read a buffer's fixed address. Like CUDA, the
recorder refuses what a capture cannot contain: reading a value on the host,
copying host data to the device, and drawing random numbers.

So the capture logic of ``tr.cuda.graphed`` (warm-up, refusals, replays that
match the uncaptured step) is tested without a GPU; a call kind this module
missed would show as a replay that differs from the uncaptured step.
"""
from __future__ import annotations

import numpy as np


class CaptureViolation(RuntimeError):
    """What CUDA would refuse during stream capture (a host read, a host-to-device copy, cuRAND)."""


class Recorder:
    """The calls recorded during one capture, replayed by :meth:`replay` (the emulated graph)."""

    active = None  # the recorder of the capture in progress, if any

    def __init__(self):
        self.calls = []
        self.executed = True  # NumPy runs the step while recording it (CUDA only records)

    def add(self, thunk, result, source=None):
        """Keep ``thunk`` (recomputes the call) and ``result`` (the array(s) it produced, filled on replay).
        A result that is a view of ``source`` is no new data: only calls that also write are kept."""
        if isinstance(result, np.ndarray) and source is not None and _shares(result, source):
            return
        self.calls.append((thunk, result))

    def replay(self):
        """Run every recorded call again, writing each result where the capture's result lives."""
        previous, Recorder.active = Recorder.active, None
        try:
            for thunk, result in self.calls:
                try:
                    fresh = thunk()
                except IndexError:  # a GPU gather does not raise on a bad index: it reads some other element
                    continue
                _copy_into(result, fresh)
        finally:
            Recorder.active = previous


def _copy_into(target, fresh):
    if isinstance(target, (tuple, list)):
        for t, f in zip(target, fresh):
            _copy_into(t, f)
    elif isinstance(target, np.ndarray) and not _shares(target, fresh):
        np.copyto(target.view(np.ndarray), np.asarray(fresh).view(np.ndarray), casting="unsafe")


def _shares(a, b):
    """Whether two arrays may overlap in memory (compared as plain ndarrays: no dispatch, no recording)."""
    if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
        return False
    return np.may_share_memory(a.view(np.ndarray), b.view(np.ndarray))


def recording() -> bool:
    return Recorder.active is not None


def record(thunk, result, source=None):
    if Recorder.active is not None:
        Recorder.active.add(thunk, result, source)


def refuse(what):
    if Recorder.active is not None:
        raise CaptureViolation(f"{what} during stream capture (CUDA: operation not permitted when stream is capturing)")


def recorded_kernel(kernel):
    """An emulated CUDA kernel whose launches are recorded (they write their outputs in place)."""

    def launch(*args):
        recorder, Recorder.active = Recorder.active, None  # one launch is one recorded call, whatever it does inside
        try:
            result = kernel(*args)
        finally:
            Recorder.active = recorder
        record(lambda: kernel(*args), None)
        return result

    return launch


# ndarray methods that compute data without going through a ufunc or an array function
_COPYING = ("copy", "astype", "reshape", "ravel", "flatten", "take", "repeat", "argmax", "argmin", "argsort",
            "dot", "nonzero", "cumsum", "cumprod")
_MUTATING = ("fill", "sort", "put", "__setitem__")
_HOST_READS = ("item", "tolist", "__int__", "__float__", "__bool__", "__index__", "__complex__", "tobytes")


def install(array_class):
    """Give ``array_class`` (an ndarray subclass) recorded copying/mutating methods and refused host reads."""
    for name in _COPYING + _MUTATING:
        setattr(array_class, name, _recorded_method(name, name in _MUTATING))
    for name in _HOST_READS:
        setattr(array_class, name, _refused_method(name))


def _recorded_method(name, mutating):
    base = getattr(np.ndarray, name)

    def method(self, *args, **kwargs):
        result = base(self, *args, **kwargs)
        if Recorder.active is not None:
            if mutating:
                record(lambda: base(self, *args, **kwargs), None)
            else:
                record(lambda: base(self, *args, **kwargs), result, source=self)
        return result

    method.__name__ = name
    return method


def _refused_method(name):
    base = getattr(np.ndarray, name)

    def method(self, *args, **kwargs):
        refuse(f"reading a device array on the host (ndarray.{name})")
        return base(self, *args, **kwargs)

    method.__name__ = name
    return method


def getitem(array, key, base_getitem):
    """``array[key]``, recorded when it copies (advanced indexing); a scalar element comes back as a 0-d
    array while recording, as CuPy returns one, so that replays can refresh it."""
    result = base_getitem(array, key)
    if Recorder.active is not None:
        if isinstance(result, np.generic):
            result = np.asarray(result).view(type(array))
            record(lambda: base_getitem(array, key), result)
        else:
            record(lambda: base_getitem(array, key), result, source=array)
    return result


__all__ = ["Recorder", "CaptureViolation", "install", "record", "recording", "refuse", "recorded_kernel", "getitem"]
