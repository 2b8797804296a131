"""Variable-length sequences, packed and padded exactly as ``torch.nn.utils.rnn`` does.

A batch of sequences of different lengths is either *padded* — one tensor
``(T, B, *)`` (``(B, T, *)`` with ``batch_first``) plus the lengths — or
*packed*: a :class:`PackedSequence` whose ``data`` holds only the real time
steps, time step by time step, the sequences sorted by decreasing length, so
that step ``t`` is the ``batch_sizes[t]`` consecutive rows of the sequences
still running. ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` take a PackedSequence
and compute nothing for the padding; each sequence's final state is the one
at its own length.

Every function here is differentiable (one indexing op forward and backward).
``lengths`` may be a list, a NumPy array or a CPU int64 tensor; as in PyTorch,
a tensor of lengths on a GPU is refused.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ...dtypes import int64
from ...functions import cat
from ...ops.packing import PutRows, TakeRows
from ...tensor import Tensor

_Fields = namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])


class PackedSequence(_Fields):
    """A packed batch of variable-length sequences (a named tuple, as in PyTorch).

    * ``data`` ``(sum(lengths), *)``: the real steps, step by step, each step's
      rows in order of decreasing sequence length;
    * ``batch_sizes``: int64 CPU tensor, how many sequences are still running
      at each step (non-increasing);
    * ``sorted_indices``: for each packed column, the sequence's index in the
      original batch (None when the input was already sorted);
    * ``unsorted_indices``: the inverse permutation (None likewise).

    Build one with :func:`pack_padded_sequence` or :func:`pack_sequence`, not by hand.
    """

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:  # PackedSequence((data, batch_sizes)), as PyTorch accepts
            if not (isinstance(data, (tuple, list)) and len(data) == 2):
                raise TypeError("PackedSequence: expected data and batch_sizes, got data only")
            data, batch_sizes = data
        if not isinstance(data, Tensor):
            raise TypeError(f"PackedSequence: data must be a Tensor, got {type(data).__name__}")
        if not isinstance(batch_sizes, Tensor):
            batch_sizes = Tensor(np.asarray(batch_sizes, dtype=np.int64))
        if batch_sizes.device != "cpu" or batch_sizes.dtype != int64 or batch_sizes.ndim != 1:
            raise TypeError(
                f"PackedSequence: batch_sizes must be a 1-D int64 CPU tensor, got {batch_sizes.ndim}-D "
                f"{batch_sizes.dtype} on {batch_sizes.device}"
            )
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = _inverse(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        """The sequence with ``data`` (and the indices) moved/cast as ``Tensor.to`` does; ``batch_sizes``
        stays on the CPU. Returns ``self`` when nothing changes, as PyTorch does."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        move = (lambda t: None if t is None else t.to(data.device))
        return type(self)(data, self.batch_sizes, move(self.sorted_indices), move(self.unsorted_indices))

    def cpu(self):
        """The sequence on the CPU."""
        return self.to("cpu")

    def cuda(self, device=None):
        """The sequence on a CUDA device."""
        return self.to("cuda" if device is None else (f"cuda:{device}" if isinstance(device, int) else device))

    def double(self):
        """``data`` as float64."""
        return self.to(dtype="float64")

    def float(self):
        """``data`` as float32."""
        return self.to(dtype="float32")

    @property
    def is_cuda(self) -> bool:
        """Whether ``data`` is on a CUDA device."""
        return str(self.data.device).startswith("cuda")

    def is_pinned(self) -> bool:
        """Always False: there is no pinned host memory here."""
        return False


# --------------------------------------------------------------------------- checks
def _inverse(permutation):
    """The inverse of a permutation tensor, on its device."""
    order = permutation.numpy()
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size, dtype=order.dtype)
    return Tensor(inverse, device=permutation.device)


def _check_tensor(op, what, value, min_dims):
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: expected {what} to be a Tensor, got {type(value).__name__}")
    if value.ndim < min_dims:
        raise ValueError(f"{op}: expected {what} with at least {min_dims} dimensions, got shape {value.shape}")


def _integers(op, what, values):
    """``values`` (list, NumPy array or CPU tensor) as a 1-D int64 NumPy array; clear errors otherwise."""
    if isinstance(values, Tensor):
        if values.device != "cpu":
            raise ValueError(
                f"{op}: {what} must be a list, a NumPy array or a CPU int64 tensor (as in PyTorch), got a tensor "
                f"on {values.device}; pass {what}.cpu()"
            )
        array = values.numpy()
    else:
        try:
            array = np.asarray(values)
        except (TypeError, ValueError):
            array = np.asarray([], dtype=object)
        if array.dtype == object:
            raise TypeError(f"{op}: {what} must be a list of integers, a NumPy array or a CPU tensor, got {values!r:.80}")
    if array.ndim != 1:
        raise ValueError(f"{op}: {what} must be 1-D (one length per sequence), got shape {tuple(array.shape)}")
    if array.dtype.kind == "f" and np.all(array == np.floor(array)):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{op}: {what} must hold integers, got {array.dtype} values {array.tolist()!r:.80}")
    return array.astype(np.int64)


def _lengths(op, lengths, batch, limit, shape):
    """Checked sequence lengths: ``batch`` of them, each in 1..limit (the padded time dimension)."""
    lens = _integers(op, "lengths", lengths)
    if lens.size != batch:
        raise ValueError(
            f"{op}: expected {batch} lengths, one per sequence of the batch of input {tuple(shape)}, got {lens.size}"
        )
    for i, n in enumerate(lens.tolist()):
        if n <= 0:
            raise ValueError(f"{op}: every length must be at least 1, got lengths[{i}] = {n}")
        if n > limit:
            raise ValueError(
                f"{op}: lengths[{i}] = {n} is larger than the padded time dimension {limit} of input {tuple(shape)}"
            )
    return lens


def _order(op, lens, enforce_sorted):
    """Sequence indices by decreasing length (None when ``enforce_sorted`` and already sorted)."""
    if enforce_sorted:
        if np.any(lens[1:] > lens[:-1]):
            raise ValueError(
                f"{op}: lengths must be sorted in decreasing order when enforce_sorted=True, got "
                f"{lens.tolist()!r:.120}; pass enforce_sorted=False to pack unsorted sequences"
            )
        return None
    return np.argsort(-lens, kind="stable")


def _batch_sizes(sorted_lens):
    """How many sequences run at each step, from lengths sorted decreasing."""
    return (sorted_lens[None, :] > np.arange(int(sorted_lens[0]))[:, None]).sum(axis=1).astype(np.int64)


def _packed_rows(batch_sizes):
    """(time step, column in the sorted batch) of each packed row."""
    steps = np.repeat(np.arange(batch_sizes.size), batch_sizes)
    starts = np.cumsum(batch_sizes) - batch_sizes
    return steps, np.arange(steps.size) - np.repeat(starts, batch_sizes)


def _positions(positions, like):
    """Row positions as an int64 array on ``like``'s device (what TakeRows / PutRows index with)."""
    return like.backend.asarray(np.ascontiguousarray(positions, dtype=np.int64))


def _packed(data, batch_sizes, order):
    if order is None:
        return PackedSequence(data, Tensor(batch_sizes), None, None)
    return PackedSequence(data, Tensor(batch_sizes), Tensor(order.astype(np.int64), device=data.device), None)


# --------------------------------------------------------------------------- pack / pad
def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True) -> PackedSequence:
    """Pack a padded batch ``(T, B, *)`` (``(B, T, *)`` with ``batch_first``) of sequences of ``lengths``.

    With ``enforce_sorted=True`` the lengths must be decreasing; otherwise the
    sequences are sorted here and ``sorted_indices`` remembers the order.
    """
    op = "pack_padded_sequence"
    _check_tensor(op, "input", input, 2)
    B, T = (input.shape[0], input.shape[1]) if batch_first else (input.shape[1], input.shape[0])
    lens = _lengths(op, lengths, B, T, input.shape)
    order = _order(op, lens, enforce_sorted)
    columns = np.arange(B) if order is None else order
    batch_sizes = _batch_sizes(lens[columns])
    steps, column = _packed_rows(batch_sizes)
    sequence = columns[column]
    positions = sequence * T + steps if batch_first else steps * B + sequence
    rows = input.reshape(T * B, *input.shape[2:])
    return _packed(TakeRows.apply(rows, index=_positions(positions, input)), batch_sizes, order)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Undo :func:`pack_padded_sequence`: ``(padded (T, B, *), lengths)``, in the original batch order.

    ``T`` is the longest length, or ``total_length`` when given (it must not be
    shorter); ``lengths`` is an int64 CPU tensor; padding is ``padding_value``.
    """
    op = "pad_packed_sequence"
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"{op}: expected a PackedSequence, got {type(sequence).__name__}")
    data, batch_sizes, sorted_indices, _ = sequence
    sizes = batch_sizes.numpy()
    T, B = sizes.size, int(sizes[0])
    if total_length is not None:
        if isinstance(total_length, bool) or not isinstance(total_length, (int, np.integer)):
            raise TypeError(f"{op}: total_length must be an int, got {total_length!r}")
        if total_length < T:
            raise ValueError(
                f"{op}: total_length={total_length} is shorter than the longest sequence ({T} steps); "
                f"pass total_length >= {T} or None"
            )
        T = int(total_length)
    columns = np.arange(B) if sorted_indices is None else sorted_indices.numpy()
    steps, column = _packed_rows(sizes)
    seq = columns[column]
    positions = seq * T + steps if batch_first else steps * B + seq
    rows = PutRows.apply(data, index=_positions(positions, data), size=T * B, fill=padding_value)
    padded = rows.reshape((B, T) + data.shape[1:] if batch_first else (T, B) + data.shape[1:])
    lengths = np.empty(B, dtype=np.int64)
    lengths[columns] = (sizes[None, :] > np.arange(B)[:, None]).sum(axis=1)
    return padded, Tensor(lengths)


def _sequence_list(op, sequences):
    if isinstance(sequences, Tensor):
        sequences = list(sequences)
    if not isinstance(sequences, (list, tuple)) or not sequences:
        raise TypeError(f"{op}: expected a non-empty list of Tensors, got {type(sequences).__name__}")
    for i, s in enumerate(sequences):
        _check_tensor(op, f"sequences[{i}]", s, 1)
        if s.shape[1:] != sequences[0].shape[1:] or s.device != sequences[0].device:
            raise ValueError(
                f"{op}: every sequence needs the trailing shape and device of sequences[0], "
                f"{sequences[0].shape[1:]} on {sequences[0].device}; sequences[{i}] is {s.shape[1:]} on {s.device}"
            )
    return list(sequences)


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right") -> Tensor:
    """Stack sequences ``(L_i, *)`` into one padded tensor ``(max L, B, *)`` (``(B, max L, *)`` with
    ``batch_first``), padding each at the end (``padding_side="left"``: at the start)."""
    op = "pad_sequence"
    sequences = _sequence_list(op, sequences)
    if padding_side not in ("right", "left"):
        raise ValueError(f"{op}: padding_side must be 'right' or 'left', got {padding_side!r}")
    lens = np.array([s.shape[0] for s in sequences], dtype=np.int64)
    B, T = lens.size, int(lens.max())
    seq = np.repeat(np.arange(B), lens)
    steps = np.arange(seq.size) - np.repeat(np.cumsum(lens) - lens, lens)
    if padding_side == "left":
        steps = steps + (T - lens)[seq]
    positions = seq * T + steps if batch_first else steps * B + seq
    data = sequences[0] if B == 1 else cat(sequences)
    trailing = tuple(sequences[0].shape[1:])
    rows = PutRows.apply(data, index=_positions(positions, data), size=T * B, fill=padding_value)
    return rows.reshape((B, T) + trailing if batch_first else (T, B) + trailing)


def pack_sequence(sequences, enforce_sorted=True) -> PackedSequence:
    """Pack a list of sequences ``(L_i, *)`` (each at least one step long) into a PackedSequence."""
    op = "pack_sequence"
    sequences = _sequence_list(op, sequences)
    lens = np.array([s.shape[0] for s in sequences], dtype=np.int64)
    for i, n in enumerate(lens.tolist()):
        if n == 0:
            raise ValueError(f"{op}: every sequence must have at least one step, sequences[{i}] has none")
    order = _order(op, lens, enforce_sorted)
    columns = np.arange(lens.size) if order is None else order
    batch_sizes = _batch_sizes(lens[columns])
    steps, column = _packed_rows(batch_sizes)
    starts = np.cumsum(lens) - lens
    positions = starts[columns[column]] + steps
    data = sequences[0] if lens.size == 1 else cat(sequences)
    return _packed(TakeRows.apply(data, index=_positions(positions, data)), batch_sizes, order)


def unpad_sequence(padded_sequences, lengths, batch_first=False) -> list:
    """The list of sequences ``(L_i, *)`` in a padded batch (the inverse of :func:`pad_sequence`)."""
    op = "unpad_sequence"
    _check_tensor(op, "padded_sequences", padded_sequences, 2)
    shape = padded_sequences.shape
    B, T = (shape[0], shape[1]) if batch_first else (shape[1], shape[0])
    lens = _lengths(op, lengths, B, T, shape)
    if batch_first:
        return [padded_sequences[i, :n] for i, n in enumerate(lens.tolist())]
    return [padded_sequences[:n, i] for i, n in enumerate(lens.tolist())]


def unpack_sequence(packed_sequences) -> list:
    """The list of sequences ``(L_i, *)`` in a PackedSequence (the inverse of :func:`pack_sequence`)."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


# --------------------------------------------------------------------------- masks
def lengths_to_padding_mask(lengths, max_len=None, batch_first=True, device=None) -> Tensor:
    """A boolean padding mask from sequence lengths: True where a position is padding.

    Shape ``(B, S)`` (``(S, B)`` with ``batch_first=False``), ``S = max_len`` or
    the longest length. It is the ``key_padding_mask`` of
    :class:`~tinygrad_rnn.nn.MultiheadAttention` (True = this key is ignored),
    so attention over a padded batch never looks at the padding. ``device``
    defaults to the CPU; a length may be 0 (a sequence that is all padding).
    """
    op = "lengths_to_padding_mask"
    lens = _integers(op, "lengths", lengths)
    if np.any(lens < 0):
        raise ValueError(f"{op}: lengths must be non-negative, got {lens.tolist()!r:.120}")
    longest = int(lens.max()) if lens.size else 0
    if max_len is None:
        max_len = longest
    elif isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)):
        raise TypeError(f"{op}: max_len must be an int, got {max_len!r}")
    elif max_len < longest:
        raise ValueError(f"{op}: max_len={max_len} is shorter than the longest length {longest}")
    mask = np.arange(int(max_len))[None, :] >= lens[:, None]
    return Tensor(mask if batch_first else mask.T.copy(), device=device or "cpu")


__all__ = [
    "PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence", "pack_sequence",
    "unpad_sequence", "unpack_sequence", "lengths_to_padding_mask",
]
