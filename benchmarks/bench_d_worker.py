"""One process of benchmark D, started by ``bench_d.py`` as ``mpiexec -n K python -m benchmarks.bench_d_worker``.

``time STEPS WARMUP BATCH``: DistributedDataParallel char-LSTM training steps with BATCH sequences per
process (the global batch is K·BATCH); rank 0 prints one JSON line with the median step time.
``check BATCH OUT.npz``: two float64 steps of a small model from fixed weights; rank 0 writes the
weights, so one process with batch 2B and two with batch B can be compared.
"""

from benchmarks.harness import pin_threads

pin_threads()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import tinygrad_rnn as tr  # noqa: E402
import tinygrad_rnn.distributed as dist  # noqa: E402
import tinygrad_rnn.nn.functional as F  # noqa: E402
from benchmarks.char_lstm import CharLSTM  # noqa: E402
from tinygrad_rnn import optim  # noqa: E402
from tinygrad_rnn.nn.parallel import DistributedDataParallel  # noqa: E402
from tinygrad_rnn.nn.utils import clip_grad_norm_  # noqa: E402

#: benchmark M's model: embedding 64, 2 x LSTM 256, vocabulary 65, sequences of 64
SIZES = dict(vocab_size=65, embed_size=64, hidden_size=256, num_layers=2)
SEQ_LEN = 64


def build(sizes, dtype, seed=0):
    tr.manual_seed(seed)
    model = CharLSTM(**sizes).to(dtype=dtype)
    return DistributedDataParallel(model)


def batches(global_batch, seq_len, vocab, count, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, size=(global_batch, seq_len + 1)) for _ in range(count)]


def step(ddp, optimizer, tokens, vocab, global_count):
    """One step on this process's share ``tokens`` (B, S+1); the loss is its part of the global mean."""
    inputs, targets = tr.tensor(tokens[:, :-1]), tr.tensor(tokens[:, 1:].reshape(-1))
    logits = ddp(inputs)
    loss = F.cross_entropy(logits.reshape(-1, vocab), targets, reduction="sum") * (dist.get_world_size() / global_count)
    optimizer.zero_grad()
    loss.backward()
    clip_grad_norm_(ddp.parameters(), 1.0)
    optimizer.step()
    return loss


def main(argv):
    dist.init()
    rank, world = dist.get_rank(), dist.get_world_size()
    mode = argv[0]
    if mode == "check":
        batch, out = int(argv[1]), argv[2]
        sizes = dict(vocab_size=11, embed_size=4, hidden_size=6, num_layers=2)
        ddp = build(sizes, tr.float64)
        optimizer = optim.Adam(ddp.parameters(), lr=0.01)
        for tokens in batches(batch * world, 7, sizes["vocab_size"], 2):
            mine = np.array_split(tokens, world)[rank]
            step(ddp, optimizer, mine, sizes["vocab_size"], tokens[:, 1:].size)
        if rank == 0:
            np.savez(out, **{k: v.numpy() for k, v in ddp.module.state_dict().items()})
    else:
        steps, warmup, batch = int(argv[1]), int(argv[2]), int(argv[3])
        ddp = build(SIZES, tr.float32)
        optimizer = optim.Adam(ddp.parameters(), lr=0.002)
        data = batches(batch * world, SEQ_LEN, SIZES["vocab_size"], 4)
        times = []
        for k in range(warmup + steps):
            tokens = data[k % len(data)]
            dist.barrier()
            start = time.perf_counter()
            step(ddp, optimizer, np.array_split(tokens, world)[rank], SIZES["vocab_size"], tokens[:, 1:].size).item()
            dist.barrier()
            if k >= warmup:
                times.append(time.perf_counter() - start)
        if rank == 0:
            print(json.dumps({"world": world, "batch_per_process": batch, "median_s": float(np.median(times)),
                              "min_s": float(np.min(times))}))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
