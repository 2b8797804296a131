"""``tr.cuda.graphed``: a fixed-shape training step captured once as a CUDA graph, then replayed.

On a GPU, one training step of a small recurrent model is hundreds of short
kernels, each launched by Python; the launches, not the arithmetic, can set
the pace. A CUDA graph records the kernels of one step once and replays them
all with a single launch. What a replay repeats is exactly what was recorded:
the same kernels on the same memory. Hence the rules, each enforced here
with a clear error rather than a silently stale result:

* shapes are fixed: new inputs are copied into the captured ones, and must
  have their shape, dtype and device;
* the host takes no part inside the step: no ``.item()``, no ``bool(t)``, no
  branching on a value, no random draws (dropout); argument checks that read
  indices back are done on the device and tested after each replay;
* what the host baked in stays baked in: an optimizer's learning rate or
  betas changed after the capture, or a parameter array replaced, is refused.

``capture.py`` holds the phase the rest of the package consults; the backend
records and replays (``CupyBackend.begin_capture``; on a machine without a
GPU, the test suite's ``hostless`` backend records its array calls the same way).
"""
from __future__ import annotations

from . import capture
from .capture import CaptureError
from .tensor import Tensor


def graphed(step_fn, *static_inputs, warmup: int = 3, check: bool = True) -> "GraphedStep":
    """Capture ``step_fn(*static_inputs)`` (forward, backward, clipping, optimizer step) as one CUDA graph.

    Runs the step ``warmup`` times as ordinary training steps on copies of ``static_inputs`` (so kernels
    are compiled and optimizer state exists), then captures one more call and replays it once: on return,
    ``warmup + 1`` steps have been taken. Call the result with new input tensors of the same shapes to
    train on: each call copies them into the graph's inputs, replays the graph, and returns the step's
    outputs (the tensors ``step_fn`` returned, e.g. the loss, overwritten by every replay; read them
    with ``.item()`` outside the step). ``check`` (default True) tests, after each replay, the argument
    checks that need a look at the data (an index out of range): one small device-to-host copy per
    step; ``check=False`` skips it.
    """
    return GraphedStep(step_fn, static_inputs, warmup=warmup, check=check)


class GraphedStep:
    """A captured training step; see :func:`graphed`. ``outputs`` holds what the step returned."""

    def __init__(self, step_fn, static_inputs, warmup=3, check=True):
        if not callable(step_fn):
            raise TypeError(f"tr.cuda.graphed: step_fn must be callable, got {type(step_fn).__name__}")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
            raise ValueError(f"tr.cuda.graphed: warmup must be an int >= 1 (kernels compile before the capture), "
                             f"got {warmup!r}")
        self.backend = _common_backend(static_inputs)
        self.inputs = tuple(t.detach().clone() for t in static_inputs)  # the graph's own input buffers
        self.check = bool(check)
        self.replays = 0
        state = capture.STATE
        state.reset("warmup")
        try:
            for _ in range(warmup):
                step_fn(*self.inputs)
            self.backend.synchronize()
            state.reset("capture")
            self.backend.begin_capture()
            try:
                outputs = step_fn(*self.inputs)
                self.outputs = _checked_outputs(outputs)
                self._flags = self._stack_checks(state.checks)
            except BaseException:
                self.backend.abort_capture()
                raise
            self.graph = self.backend.end_capture()
            self._messages = [message for _, message in state.checks]
            self._baked = [_baked_values(opt) for opt in state.optimizers]
        finally:
            state.reset(None)
        if not self.graph.executed:  # CUDA records without running: run the captured step once
            self.graph.replay()
        self._raise_failed_checks()

    def __call__(self, *inputs):
        """Copy ``inputs`` into the captured inputs, replay the step, return its outputs."""
        if len(inputs) != len(self.inputs):
            raise TypeError(f"graphed step: expected {len(self.inputs)} input tensors (as captured), got {len(inputs)}")
        for k, (new, static) in enumerate(zip(inputs, self.inputs)):
            if not isinstance(new, Tensor):
                raise TypeError(f"graphed step: input {k} must be a Tensor, got {type(new).__name__}")
            if (new.shape, new.dtype, new.device) != (static.shape, static.dtype, static.device):
                raise CaptureError(
                    f"graphed step: input {k} has shape {new.shape}, dtype {new.dtype} on {new.device}, but the "
                    f"step was captured for shape {static.shape}, dtype {static.dtype} on {static.device}; a "
                    "captured graph replays fixed shapes: capture the step again (tr.cuda.graphed) for these"
                )
        for opt, before in self._baked:
            _refuse_changes(opt, before)
        for new, static in zip(inputs, self.inputs):
            static.array[...] = new.array
        self.graph.replay()
        self.replays += 1
        self._raise_failed_checks()
        return self.outputs

    def _stack_checks(self, checks):
        if not checks:
            return None
        xp = self.backend.xp
        return xp.stack([xp.reshape(failed, ()) for failed, _ in checks])

    def _raise_failed_checks(self):
        if not self.check or self._flags is None:
            return
        failed = self.backend.to_host(self._flags)
        for flag, message in zip(failed.tolist(), self._messages):
            if flag:
                raise IndexError(f"{message} (found after replay {self.replays} of the captured step, whose "
                                 "updates are already applied)")


def _common_backend(inputs):
    if not inputs:
        raise TypeError("tr.cuda.graphed: pass the step's input tensors after step_fn (at least one), "
                        "e.g. tr.cuda.graphed(step, tokens, targets)")
    for k, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"tr.cuda.graphed: static input {k} must be a Tensor, got {type(t).__name__}")
    devices = sorted({t.device for t in inputs})
    if len(devices) > 1:
        raise CaptureError(f"tr.cuda.graphed: the inputs are on several devices ({', '.join(devices)}); "
                           "a graph records one device")
    backend = inputs[0].backend
    if not getattr(backend, "can_capture", False):
        raise CaptureError(f"tr.cuda.graphed: device {devices[0]!r} cannot capture a step as a graph; that needs "
                           "a CUDA GPU (tensors on device='cuda'); on the CPU, call the step function directly")
    return backend


def _checked_outputs(outputs):
    items = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    for item in items:
        if item is not None and not isinstance(item, Tensor):
            raise CaptureError(
                f"tr.cuda.graphed: the step returned a {type(item).__name__}; return tensors (e.g. the loss, not "
                "loss.item()): a replay can only refresh device memory"
            )
    return outputs


def _baked_values(optimizer):
    """What a replay repeats of ``optimizer``: each group's hyperparameters and the parameter arrays."""
    groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    arrays = [[p.array for p in g["params"]] for g in optimizer.param_groups]
    return optimizer, (groups, arrays)


def _refuse_changes(optimizer, before):
    groups, arrays = before
    name = type(optimizer).__name__
    for i, group in enumerate(optimizer.param_groups):
        for key, old in groups[i].items():
            if group.get(key) != old:
                raise CaptureError(
                    f"graphed step: {name} param_groups[{i}][{key!r}] changed from {old!r} to {group.get(key)!r} "
                    "since the capture (a learning-rate scheduler?); a replay repeats the captured value: "
                    "capture the step again (tr.cuda.graphed) after the change"
                )
        for p, array in zip(group["params"], arrays[i]):
            if p.array is not array:
                raise CaptureError(
                    f"graphed step: a parameter of {name} (shape {p.shape}) was given a new array since the capture; "
                    "a replay updates the captured memory: copy values in place (p.data.copy_(...), "
                    "load_state_dict) or capture again"
                )


__all__ = ["graphed", "GraphedStep", "CaptureError"]
