"""The program ``tests/test_distributed.py`` starts under ``mpiexec -n 2``: ``python distributed_worker.py
MODE OUT_DIR``. Each rank writes what it saw to ``OUT_DIR/rank<R>.json``; the crash and timeout modes
end in an uncaught exception on purpose. ``train_replica`` is also the single-process reference."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time

import numpy as np

import tinygrad_rnn as tr

STEPS, BATCH, SEQ, FEATURES = 4, 5, 3, 3


class TinyRNN(tr.nn.Module):
    """A GRU cell run over a short sequence (its weights get a gradient at every step), then a linear head."""

    def __init__(self, hidden=4):
        super().__init__()
        self.cell = tr.nn.GRUCell(FEATURES, hidden)
        self.head = tr.nn.Linear(hidden, 2)

    def forward(self, x):
        h = None
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
        return self.head(h)


def data(world_batch):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((world_batch, SEQ, FEATURES))
    y = rng.standard_normal((world_batch, 2))
    return tr.tensor(x, dtype=tr.float64), tr.tensor(y, dtype=tr.float64)


def make_optimizer(name, params):
    if name == "sgd":
        return tr.optim.SGD(params, lr=0.1, momentum=0.9)
    return tr.optim.Adam(params, lr=0.05)


def train_replica(model, x, y, optimizer_name):
    """STEPS optimizer steps on the mean squared error of ``model(x)``; the weights after, by name."""
    optimizer = make_optimizer(optimizer_name, model.parameters())
    for _ in range(STEPS):
        optimizer.zero_grad()
        tr.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    inner = getattr(model, "module", model)
    return {name: p.numpy().tolist() for name, p in inner.named_parameters()}


def reference(optimizer_name, world_size):
    """One process with the whole batch of ``world_size`` ranks."""
    tr.manual_seed(100)
    x, y = data(world_size * BATCH)
    return train_replica(TinyRNN().double(), x, y, optimizer_name)


def collectives(dist, rank):
    out = {}
    for op in ("SUM", "AVG", "MAX", "MIN"):
        t = tr.tensor([rank + 1.0, -2.0 * (rank + 1), 3.0], dtype=tr.float64)
        dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
        out[op] = t.numpy().tolist()
    t = tr.tensor([[rank * 10 + 1, rank * 10 + 2]])
    dist.broadcast(t, src=1)
    out["broadcast"] = t.numpy().tolist()
    strided = tr.arange(6, dtype=tr.float64).reshape(2, 3).t()  # not contiguous: goes through a copy
    dist.all_reduce(strided)
    out["strided"] = strided.numpy().tolist()
    dist.barrier()
    objects = [None] * dist.get_world_size()
    dist.all_gather_object(objects, {"rank": rank})
    out["objects"] = objects
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from hostless_backend import register

    register()
    for cuda_aware in (False, True):  # a device tensor staged through host memory, then passed as it is
        dist.process_group.current("test").cuda_aware = cuda_aware
        t = tr.tensor([rank + 1.0, 2.0], device="hostless")
        dist.all_reduce(t, op=dist.ReduceOp.AVG)
        out[f"hostless_cuda_aware_{cuda_aware}"] = [type(t.array).__name__, t.numpy().tolist()]
    return out


def samplers(rank, world):
    from tinygrad_rnn.utils.data import DistributedSampler

    out = {}
    for n in (10, 11, 3):
        for shuffle in (False, True):
            for drop_last in (False, True):
                sampler = DistributedSampler(range(n), shuffle=shuffle, drop_last=drop_last, seed=7)
                key = f"{n}-{shuffle}-{drop_last}"
                out[key] = [list(sampler)]
                sampler.set_epoch(1)
                out[key].append(list(sampler))
    return out


def micro_batch_grads(model, x, y):
    """Gradients after a backward on each half of ``x`` (the first one inside ``no_sync`` when
    ``model`` is a DistributedDataParallel)."""
    half = x.shape[0] // 2
    sync = model.no_sync() if hasattr(model, "no_sync") else contextlib.nullcontext()
    with sync:
        tr.nn.functional.mse_loss(model(x[:half]), y[:half]).backward()
    tr.nn.functional.mse_loss(model(x[half:]), y[half:]).backward()
    inner = getattr(model, "module", model)
    return {name: p.grad.numpy().tolist() for name, p in inner.named_parameters()}


def unused_parameter(dist, x, y):
    """A parameter outside the loss: the next forward names it; ``sync_gradients()`` finishes instead."""
    model = tr.nn.ModuleDict({"used": tr.nn.Linear(FEATURES, 2), "unused": tr.nn.Linear(FEATURES, 2)}).double()
    model.forward = lambda inputs: model["used"](inputs)
    ddp = tr.nn.parallel.DistributedDataParallel(model)
    tr.nn.functional.mse_loss(ddp(x[:, 0]), y).backward()
    try:
        ddp(x[:, 0])
        message = None
    except RuntimeError as exc:
        message = str(exc)
    ddp.sync_gradients()
    return {"message": message, "unused_grad": model["unused"].weight.grad.numpy().tolist(),
            "used_grad": model["used"].weight.grad.numpy().tolist()}


def train(dist, rank, world):
    out = {"collectives": collectives(dist, rank), "samplers": samplers(rank, world)}
    x, y = data(world * BATCH)
    mine = slice(rank * BATCH, (rank + 1) * BATCH)
    for name in ("sgd", "adam"):
        tr.manual_seed(100 + rank)  # different starting weights: DistributedDataParallel copies rank 0's
        ddp = tr.nn.parallel.DistributedDataParallel(TinyRNN().double(), bucket_cap_mb=0.0002)
        out[f"buckets_{name}"] = len(ddp._buckets)
        out[f"keys_{name}"] = list(ddp.state_dict())[:2]
        out[name] = train_replica(ddp, x[mine], y[mine], name)
    tr.manual_seed(100)
    ddp = tr.nn.parallel.DistributedDataParallel(TinyRNN().double(), bucket_cap_mb=0.0002)
    out["no_sync"] = micro_batch_grads(ddp, x[mine], y[mine])
    out["unused"] = unused_parameter(dist, x[mine], y[mine])
    return out


def main(mode, out_dir):
    import tinygrad_rnn.distributed as dist

    dist.init(timeout=float(os.environ.get("WORKER_TIMEOUT", "20")))
    rank, world = dist.get_rank(), dist.get_world_size()
    out = {"rank": rank, "world": world, "main": dist.is_main_process()}
    if mode == "train":
        out.update(train(dist, rank, world))
    elif mode == "mismatch":
        tr.manual_seed(0)
        model = tr.nn.Sequential(tr.nn.Linear(3, 4), tr.nn.Linear(4 + rank, 2))
        try:
            tr.nn.parallel.DistributedDataParallel(model)
        except RuntimeError as exc:
            out["error"] = str(exc)
    elif mode == "crash":
        if rank == 1:
            raise ValueError("boom on purpose")
        dist.barrier()  # rank 0 waits here until the abort ends it
    elif mode == "timeout":
        if rank == 0:
            dist.all_reduce(tr.ones(3))  # rank 1 never joins: times out, then the hook aborts the job
        else:
            time.sleep(30)
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(out, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
