"""``DistributedSampler``: each rank's share of a dataset's indices, as in PyTorch.

The indices (shuffled with ``seed + epoch`` when ``shuffle``) are padded by repeating the first ones
until they divide evenly by the number of replicas (or cut, with ``drop_last``), and rank ``r`` takes
every ``num_replicas``-th index starting at ``r``: the shares are disjoint apart from the padding and
of equal length, so every rank runs the same number of steps. Call ``set_epoch(epoch)`` at the start of
each epoch for a new order (the same on every rank)::

    sampler = DistributedSampler(dataset)
    loader = DataLoader(dataset, batch_size=32, sampler=sampler)
    for epoch in range(10):
        sampler.set_epoch(epoch)
        for x, y in loader:
            ...
"""
from __future__ import annotations

import math

import numpy as np

from ..checks import check_int


class DistributedSampler:
    """The indices of ``dataset`` this rank reads; ``num_replicas`` and ``rank`` default to the process
    group's world size and rank (``tinygrad_rnn.distributed.init()`` first)."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if not hasattr(dataset, "__len__"):
            raise TypeError(f"DistributedSampler: dataset must have a length, got {type(dataset).__name__}")
        if num_replicas is None or rank is None:
            from .. import distributed  # needs mpi4py, only when the group is asked

            num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
            rank = distributed.get_rank() if rank is None else rank
        num_replicas = check_int("DistributedSampler", "num_replicas", num_replicas, minimum=1)
        rank = check_int("DistributedSampler", "rank", rank)
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank}, expected one in [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.seed = check_int("DistributedSampler", "seed", seed)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch) -> None:
        """Use the order of ``epoch`` (with ``shuffle``): call it with the same value on every rank."""
        self.epoch = check_int("DistributedSampler.set_epoch", "epoch", epoch)

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            indices = np.arange(n)
        if self.drop_last:
            indices = indices[:self.total_size]
        elif self.total_size > n:
            indices = np.resize(indices, self.total_size)  # repeats the indices from the start
        return iter(indices[self.rank:self.total_size:self.num_replicas].tolist())

    def __len__(self):
        return self.num_samples
