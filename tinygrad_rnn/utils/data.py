"""Datasets and mini-batches in the shape of ``torch.utils.data``.

A :class:`Dataset` is anything with ``__getitem__(i)`` and ``__len__()``;
:class:`TensorDataset` pairs up tensors along their first dimension. A
:class:`DataLoader` walks a dataset in mini-batches, optionally in a new
random order every pass, and joins each batch's samples with
:func:`default_collate` (tensors stacked along a new first dimension)::

    dataset = TensorDataset(inputs, targets)
    loader = DataLoader(dataset, batch_size=32, shuffle=True)
    for epoch in range(10):
        for x, y in loader:
            ...

Everything runs in this process (there are no worker processes, so no
``num_workers``). The random order comes from the framework's CPU random
generator, so ``tinygrad_rnn.manual_seed(s)`` makes it repeatable; a
``numpy.random.Generator`` given as ``generator`` is used instead (PyTorch
takes a ``torch.Generator`` there).
"""
from __future__ import annotations

import collections.abc
import numbers

import numpy as np

from ..checks import check_int
from ..dtypes import float64, int64
from ..factories import rand, tensor
from ..functions import stack
from ..tensor import Tensor
from . import distributed_sampler as distributed  # tr.utils.data.distributed.DistributedSampler, as torch
from .distributed_sampler import DistributedSampler


class Dataset:
    """Base class of map-style datasets: a subclass returns sample ``index`` from ``__getitem__`` and
    the number of samples from ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__}: a Dataset subclass must implement __getitem__(index)")


class TensorDataset(Dataset):
    """Samples made of the rows of several tensors: sample ``i`` is ``(t[i] for t in tensors)``. All the
    tensors must have the same size in their first dimension."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor, got none")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {i} is a {type(t).__name__}, expected a Tensor "
                                "(make one with tinygrad_rnn.tensor(...))")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: argument {i} is a 0-dimensional tensor; each tensor needs a first "
                                 "dimension that counts the samples")
        sizes = [t.shape[0] for t in tensors]
        if len(set(sizes)) != 1:
            raise ValueError(f"TensorDataset: size mismatch between tensors: their first dimensions are {sizes}, "
                             "expected all equal (one row per sample)")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


# ---------------------------------------------------------------------------------- collation
_COLLATE_TYPES = "tensors, numpy arrays, numbers, dicts or lists"


def default_collate(batch):
    """Join a list of samples into one batch, as PyTorch's ``default_collate``: tensors (and NumPy
    arrays) are stacked along a new first dimension; Python floats become a float64 tensor, ints an
    int64 tensor (bools a bool tensor); strings stay a list; dicts, tuples and lists are collated
    field by field (a tuple or list of fields comes back as a list, a named tuple as a named tuple)."""
    if not isinstance(batch, collections.abc.Sequence) or isinstance(batch, (str, bytes)) or not batch:
        raise TypeError(f"default_collate: expected a non-empty list of samples, got {batch!r:.80}")
    elem = batch[0]
    if isinstance(elem, Tensor):
        _check_same(batch, Tensor, "tensors")
        for i, t in enumerate(batch):
            if t.shape != elem.shape:
                raise ValueError(
                    f"default_collate: the samples' tensors have different shapes: {elem.shape} at entry 0 and "
                    f"{t.shape} at entry {i}; pad them to one shape, or pass DataLoader a collate_fn"
                )
        return stack(batch, 0)
    if isinstance(elem, (np.ndarray, np.generic)) and not isinstance(elem, (np.str_, np.bytes_)):
        if elem.dtype.kind not in "biufc":
            raise TypeError(f"default_collate: batch must contain {_COLLATE_TYPES}; found a NumPy array of dtype "
                            f"{elem.dtype}")
        _check_same(batch, (np.ndarray, np.generic), "NumPy arrays")
        shapes = {np.shape(b) for b in batch}
        if len(shapes) != 1:
            raise ValueError(f"default_collate: the samples' arrays have different shapes {sorted(shapes)}; pad them "
                             "to one shape, or pass DataLoader a collate_fn")
        return tensor(np.stack([np.asarray(b) for b in batch]))
    if isinstance(elem, bool):
        _check_same(batch, bool, "bools")
        return tensor(list(batch))
    if isinstance(elem, numbers.Integral):
        _check_same(batch, numbers.Integral, "integers")
        return tensor([int(b) for b in batch], dtype=int64)
    if isinstance(elem, numbers.Real):
        _check_same(batch, numbers.Real, "numbers")
        return tensor([float(b) for b in batch], dtype=float64)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        _check_same(batch, collections.abc.Mapping, "dicts")
        for i, sample in enumerate(batch):
            if set(sample) != set(elem):
                raise ValueError(f"default_collate: sample {i} has keys {sorted(map(str, sample))}, but sample 0 has "
                                 f"{sorted(map(str, elem))}")
        return {key: default_collate([sample[key] for sample in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a named tuple keeps its type
        _check_lengths(batch)
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, (tuple, list)):
        _check_same(batch, (tuple, list), "tuples or lists")
        _check_lengths(batch)
        return [default_collate(list(field)) for field in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain {_COLLATE_TYPES}; found {type(elem).__name__}")


def _check_same(batch, kinds, what):
    for i, sample in enumerate(batch):
        if not isinstance(sample, kinds):
            raise TypeError(f"default_collate: sample 0 is one of the {what}, but sample {i} is a "
                            f"{type(sample).__name__}; every sample must have the same structure")


def _check_lengths(batch):
    size = len(batch[0])
    for i, sample in enumerate(batch):
        if len(sample) != size:
            raise ValueError(f"default_collate: each element in list of batch should be of equal size: sample 0 has "
                             f"{size} fields, sample {i} has {len(sample)}")


# ----------------------------------------------------------------------------------- loader
class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size`` samples, joined by ``collate_fn``
    (default :func:`default_collate`).

    ``shuffle=True`` draws a new order at the start of every pass (from the framework's random
    generator, or from ``generator``, a ``numpy.random.Generator``); ``sampler`` (an iterable of
    indices with a length, such as :class:`DistributedSampler`) gives the order instead, as in
    PyTorch, and excludes ``shuffle``; ``drop_last=True`` leaves out a
    last batch smaller than ``batch_size``. A DataLoader can be iterated any number of times;
    ``len(loader)`` is the number of batches of one pass.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, *, drop_last=False, collate_fn=None,
                 generator=None):
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(f"DataLoader: dataset must be indexable and have a length (a Dataset with __getitem__ and "
                            f"__len__, e.g. a TensorDataset or a list), got {type(dataset).__name__}")
        if shuffle is None:
            shuffle = False
        for name, value in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"DataLoader: {name} must be True or False, got {value!r}")
        if sampler is not None and (shuffle or not (hasattr(sampler, "__iter__") and hasattr(sampler, "__len__"))):
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle" if shuffle else
                             f"DataLoader: sampler must be an iterable of indices with a length, got "
                             f"{type(sampler).__name__}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be a function of a list of samples, got "
                            f"{type(collate_fn).__name__}")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError(f"DataLoader: generator must be a numpy.random.Generator (e.g. "
                            f"numpy.random.default_rng(0)) or None for the framework's generator (seeded by "
                            f"tinygrad_rnn.manual_seed), got {type(generator).__name__}")
        self.dataset = dataset
        self.batch_size = check_int("DataLoader", "batch_size", batch_size, minimum=1)
        self.shuffle = bool(shuffle)
        self.sampler = sampler
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn if collate_fn is not None else default_collate
        self.generator = generator

    def _order(self, n) -> np.ndarray:
        """The sample indices of one pass: the sampler's, 0..n-1, or a fresh random permutation of them."""
        if self.sampler is not None:
            return np.fromiter(iter(self.sampler), dtype=np.int64)
        if not self.shuffle:
            return np.arange(n)
        if self.generator is not None:
            return self.generator.permutation(n)
        return rand(n, dtype=float64).numpy().argsort(kind="stable")

    def __iter__(self):
        order = self._order(len(self.dataset))
        n = len(order)
        stop = n - n % self.batch_size if self.drop_last else n
        # A plain TensorDataset with the default collation: one indexing per tensor gives the same batch
        # as stacking its rows one by one, without a Python loop over the samples.
        whole = type(self.dataset) is TensorDataset and self.collate_fn is default_collate
        for start in range(0, stop, self.batch_size):
            indices = order[start:start + self.batch_size]
            if whole:
                yield [t[indices] for t in self.dataset.tensors]
            else:
                yield self.collate_fn([self.dataset[int(i)] for i in indices])

    def __len__(self):
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


__all__ = ["Dataset", "TensorDataset", "DataLoader", "DistributedSampler", "default_collate", "distributed"]
