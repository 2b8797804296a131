"""``DistributedDataParallel``: one model replica per process, gradients averaged across processes.

Every rank runs the same model on its own share of each batch. At construction the replicas are
checked to have the same parameters and rank 0's weights and buffers are copied to all; during
``backward()`` each parameter's gradient, once complete, joins a bucket (a flat buffer of at most
``bucket_cap_mb``, filled in reverse parameter order, as PyTorch does); a full bucket is averaged
across ranks with one non-blocking all-reduce, and the results are written back into ``.grad``
before ``backward()`` returns. So the optimizer steps every replica identically, and B samples on
each of N ranks train like one process with N·B samples (for a loss that is a mean over the batch).
Needs ``tinygrad_rnn.distributed.init()`` first; see ``docs/distributed.md``.
"""
from __future__ import annotations

import contextlib

from ..autograd import no_grad
from ..functions import cat
from .module import Module


def _dist():
    from .. import distributed  # needs mpi4py: imported when a DistributedDataParallel is built

    return distributed


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over the process group (PyTorch's class and names).

    ``ddp(x)`` runs ``module(x)``; ``backward()`` leaves the gradients averaged over all ranks.
    ``bucket_cap_mb`` caps each all-reduce's buffer; ``broadcast_buffers`` copies rank 0's buffers
    to every rank before each forward. ``device_ids``/``output_device`` are accepted for PyTorch
    compatibility (put the module on its device before wrapping). Every parameter that requires grad
    must take part in each backward (PyTorch's default); :meth:`no_sync` accumulates gradients locally.
    ``state_dict()`` keys carry the ``module.`` prefix, as in PyTorch: save ``ddp.module.state_dict()``.
    """

    def __init__(self, module, device_ids=None, output_device=None, broadcast_buffers=True, bucket_cap_mb=25.0):
        super().__init__()
        dist = _dist()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be an nn.Module, got {type(module).__name__}")
        if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) or not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be a positive number, got {bucket_cap_mb!r}")
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: the process group is not initialized; call "
                               "tinygrad_rnn.distributed.init() first")
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_cap_mb = bucket_cap_mb
        _check_same_parameters(module, dist)
        with no_grad():
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor, src=0)
        params = [p for p in module.parameters() if p.requires_grad]
        self._buckets = _make_buckets(params[::-1], bucket_cap_mb * 2 ** 20)
        self._bucket_of = {id(p): k for k, bucket in enumerate(self._buckets) for p in bucket}
        self._ready = [set() for _ in self._buckets]
        self._launched = []
        self._sync = True
        self._handles = [p.register_post_accumulate_grad_hook(self._on_grad_ready) for p in params]

    def forward(self, *args, **kwargs):
        self._check_previous_reduction()
        if self.broadcast_buffers:
            with no_grad():
                for buffer in self.module.buffers():
                    _dist().broadcast(buffer, src=0)
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Inside, ``backward()`` only accumulates gradients locally; the first backward after it
        averages the accumulated gradients (gradient accumulation over several micro-batches)."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    def sync_gradients(self):
        """Average now every gradient not yet averaged in this backward (a parameter without a
        ``.grad`` counts as zeros and gets the average); needed only when some parameters took no
        part in the loss. Every rank must call it."""
        for k, bucket in enumerate(self._buckets):
            for p in bucket:
                if id(p) not in self._ready[k]:
                    if p.grad is None:
                        p.grad = p.detach() * 0
                    self._ready[k].add(id(p))
        self._launch_ready()

    # ------------------------------------------------------------------ the reduction
    def _on_grad_ready(self, param):
        if not self._sync:
            return
        k = self._bucket_of[id(param)]
        self._ready[k].add(id(param))
        self._launch_ready()

    def _launch_ready(self):
        """All-reduce the full buckets in bucket order (every rank must start them in the same order);
        after the last one, wait for all and write the averages back into ``.grad``."""
        dist = _dist()
        k = len(self._launched)
        while k < len(self._buckets) and len(self._ready[k]) == len(self._buckets[k]):
            with no_grad():
                flat = cat([p.grad.reshape(-1) for p in self._buckets[k]])
            self._launched.append((flat, dist.all_reduce(flat, op=dist.ReduceOp.AVG, async_op=True)))
            k += 1
        if k < len(self._buckets):
            return
        with no_grad():
            for bucket, (flat, work) in zip(self._buckets, self._launched):
                work.wait()
                start = 0
                for p in bucket:
                    p.grad.copy_(flat[start:start + p.numel()].reshape(p.shape))
                    start += p.numel()
        self._ready = [set() for _ in self._buckets]
        self._launched = []

    def _check_previous_reduction(self):
        if any(self._ready):
            missing = [n for n, p in self.module.named_parameters()
                       if id(p) in self._bucket_of and id(p) not in self._ready[self._bucket_of[id(p)]]]
            raise RuntimeError(
                f"DistributedDataParallel: the previous backward() left parameters {missing[:5]} without a "
                f"gradient ({len(missing)} in all), so the gradients were not averaged across ranks. Every "
                "parameter that requires grad must take part in the loss; otherwise call ddp.sync_gradients() "
                "after backward() on every rank, or set requires_grad=False on the unused ones"
            )

    def extra_repr(self) -> str:
        return f"buckets={len(self._buckets)}, bucket_cap_mb={self.bucket_cap_mb}"


def _make_buckets(params, cap_bytes):
    """Consecutive parameters grouped into buckets of at most ``cap_bytes`` (a larger parameter gets a
    bucket of its own); a bucket holds one dtype and one device, so its gradients flatten into one buffer."""
    buckets, size, kind = [], 0, None
    for p in params:
        nbytes = p.numel() * p.dtype.itemsize
        if not buckets or (p.dtype, p.device) != kind or size + nbytes > cap_bytes:
            buckets.append([])
            size, kind = 0, (p.dtype, p.device)
        buckets[-1].append(p)
        size += nbytes
    return buckets


def _check_same_parameters(module, dist):
    """Every rank must hold the same parameters and buffers (names, shapes, dtypes): gather each rank's
    list and name the first difference, on every rank (so all raise, none waits)."""
    mine = [("parameter", n, tuple(t.shape), str(t.dtype)) for n, t in module.named_parameters()]
    mine += [("buffer", n, tuple(t.shape), str(t.dtype)) for n, t in module.named_buffers()]
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    for rank, theirs in enumerate(everyone):
        if theirs == everyone[0]:
            continue
        for i in range(max(len(theirs), len(everyone[0]))):
            a = everyone[0][i] if i < len(everyone[0]) else None
            b = theirs[i] if i < len(theirs) else None
            if a != b:
                kind, name = (a or b)[:2]
                raise RuntimeError(
                    f"DistributedDataParallel: the model differs across ranks at {kind} {name!r}: rank 0 has "
                    f"{_describe(a, name)}, rank {rank} has {_describe(b, name)}; every rank must build the same model"
                )


def _describe(entry, name):
    if entry is None:
        return "nothing there"
    kind, own, shape, dtype = entry
    what = f"shape {shape} and dtype {dtype}"
    return what if own == name else f"{kind} {own!r} of {what}"
