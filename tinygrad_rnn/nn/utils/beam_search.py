"""Beam search: decode the most likely sequences of any step-by-step model (``nn.utils.beam_search``).

The model is seen only through a step function ``step(tokens, state) -> (log_probs, state)``,
so the same search decodes an RNN decoder, a decoder with attention or a
transition table. The search keeps ``beam_size`` hypotheses per batch item; at
every step it extends each by every token of the vocabulary and keeps the
``beam_size`` best extensions. The bookkeeping (scores, chosen tokens: a few
numbers per hypothesis) is done on the host in float64; the model's state stays
on its device and is reordered there by gathering rows.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from ...autograd import no_grad
from ...checks import check_int
from ...tensor import Tensor

_OP = "beam_search"


class BeamSearchResult(NamedTuple):
    """What :func:`beam_search` returns, the best hypothesis of each batch item first.

    ``sequences`` (batch, beam_size, T) int64: the generated tokens (without
    the start token), T <= max_length the number of steps taken, padded with
    ``end_token`` after each hypothesis's end token; ``scores`` (batch,
    beam_size) float64: sum of log-probabilities / length ** length_penalty
    (-inf for a slot that never held a hypothesis); ``lengths`` (batch,
    beam_size) int64: the tokens counted in the length, the end token included.
    """

    sequences: Tensor
    scores: Tensor
    lengths: Tensor


def _tensors(state, path="state"):
    """The tensors of a nested tuple/list ``state`` (None allowed), with a clear error for anything else."""
    if state is None:
        return []
    if isinstance(state, Tensor):
        return [state]
    if isinstance(state, (tuple, list)):
        return [t for i, s in enumerate(state) for t in _tensors(s, f"{path}[{i}]")]
    raise TypeError(f"{_OP}: {path} must be a Tensor, None, or a (nested) tuple/list of them, "
                    f"got {type(state).__name__}")


def _map_state(state, fn):
    """``state`` with ``fn`` applied to each of its tensors; the structure (named tuples too) is kept."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    mapped = [_map_state(s, fn) for s in state]
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*mapped)
    return type(state)(mapped)


def _check_rows(state, rows, what):
    for t in _tensors(state):
        if t.ndim == 0 or t.shape[0] != rows:
            raise ValueError(f"{_OP}: {what} holds a tensor of shape {tuple(t.shape)}; every state tensor must "
                             f"have the {rows} rows (batch * beam_size) as its first dimension")


def _log_probs_array(log_probs, rows, vocab):
    """``log_probs`` checked to be a (rows, vocab) tensor without NaN, as a float64 host array."""
    if not isinstance(log_probs, Tensor):
        raise TypeError(f"{_OP}: step must return (log_probs, state) with log_probs a Tensor, "
                        f"got {type(log_probs).__name__}")
    expected = f"({rows}, {vocab if vocab is not None else 'vocab'})"
    if log_probs.ndim != 2 or log_probs.shape[0] != rows or (vocab is not None and log_probs.shape[1] != vocab):
        raise ValueError(f"{_OP}: step returned log_probs of shape {tuple(log_probs.shape)}, expected "
                         f"(batch * beam_size, vocab) = {expected}")
    if log_probs.shape[1] == 0:
        raise ValueError(f"{_OP}: step returned log_probs over an empty vocabulary (shape {tuple(log_probs.shape)})")
    array = np.asarray(log_probs.numpy(), dtype=np.float64)
    if np.isnan(array).any():
        raise ValueError(f"{_OP}: step returned NaN log-probabilities")
    return array


def beam_search(step, state, start_token, end_token, beam_size, max_length, length_penalty=1.0):
    """The ``beam_size`` most likely sequences of each batch item under a step-by-step model, best first.

    ``step(tokens, state) -> (log_probs, state)`` runs the model one step:
    ``tokens`` is a (batch * beam_size,) int64 tensor (the previous token of
    every hypothesis: ``start_token`` at the first step), ``log_probs`` must be
    (batch * beam_size, vocab) log-probabilities of the next token (e.g.
    ``F.log_softmax(logits, -1)``). Row ``b * beam_size + k`` is hypothesis
    ``k`` of batch item ``b``, always: the rows of item ``b`` never move to
    another item, so tensors the step closes over (an encoder's keys) are
    expanded once, ``x[np.repeat(np.arange(batch), beam_size)]``.

    ``state`` is a Tensor, None, or a nested tuple/list of them (an LSTM's
    ``(h, c)``), each with ``batch`` rows as its first dimension: the search
    repeats every row ``beam_size`` times before the first step and, after
    every step, gathers the rows of the state the step returned so that each
    hypothesis continues from its own parent's state. ``batch`` is the first
    dimension of the state's tensors (1 if it holds none; then the tokens are
    on the CPU, else on the state's device).

    A hypothesis is finished when it emits ``end_token``; it then stays
    finished with its score unchanged (it is padded with ``end_token``). The
    search stops after ``max_length`` tokens or when every hypothesis is
    finished. Hypotheses are ranked, at every step and at the end, by the
    Hugging Face ``generate`` convention: sum of log-probabilities divided by
    ``length ** length_penalty``, the length counting the generated tokens
    including the end token. ``length_penalty=0`` ranks by probability alone
    (which favours short sequences); 1.0 (the default, as Hugging Face's)
    ranks by the mean log-probability per token. (GNMT's ((5 + length) / 6) **
    alpha is a smoothed version of the same idea.)

    Runs under ``no_grad``. Returns a :class:`BeamSearchResult`
    ``(sequences, scores, lengths)``; ``beam_size=1`` is greedy decoding.
    """
    if not callable(step):
        raise TypeError(f"{_OP}: step must be a callable (tokens, state) -> (log_probs, state), "
                        f"got {type(step).__name__}")
    beam_size = check_int(_OP, "beam_size", beam_size, minimum=1)
    max_length = check_int(_OP, "max_length", max_length, minimum=1)
    start_token = check_int(_OP, "start_token", start_token, minimum=0)
    end_token = check_int(_OP, "end_token", end_token, minimum=0)
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, numbers.Real) \
            or not math.isfinite(length_penalty):
        raise ValueError(f"{_OP}: length_penalty must be a finite number, got {length_penalty!r}")
    alpha = float(length_penalty)
    tensors = _tensors(state)
    batch = tensors[0].shape[0] if tensors and tensors[0].ndim else 1
    _check_rows(state, batch, "the initial state")
    device = tensors[0].device if tensors else "cpu"
    B, K = batch, beam_size
    items = np.arange(B)[:, None]

    raw = np.full((B, K), -np.inf)  # sum of log-probabilities per hypothesis
    raw[:, 0] = 0.0  # one live hypothesis per item at first: the others would repeat it
    lengths = np.zeros((B, K), dtype=np.int64)
    finished = np.zeros((B, K), dtype=bool)
    history = np.zeros((B, K, 0), dtype=np.int64)
    tokens = np.full(B * K, start_token, dtype=np.int64)
    vocab = None
    with no_grad():
        state = _map_state(state, lambda t: t[np.repeat(np.arange(B), K)])
        for t in range(max_length):
            if (finished | np.isneginf(raw)).all():
                break
            result = step(Tensor(tokens, device=device), state)
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                raise TypeError(f"{_OP}: step must return a pair (log_probs, state), got {type(result).__name__}")
            log_probs, state = result
            log_probs = _log_probs_array(log_probs, B * K, vocab)
            if vocab is None:
                vocab = log_probs.shape[1]
                if end_token >= vocab:
                    raise ValueError(f"{_OP}: end_token {end_token} is out of range for a vocabulary of {vocab}")
            _check_rows(state, B * K, "the state returned by step")

            candidates = raw[:, :, None] + log_probs.reshape(B, K, vocab)
            # a finished hypothesis has one continuation: itself, padded with end_token, its score unchanged
            candidates[finished] = -np.inf
            candidates[..., end_token] = np.where(finished, raw, candidates[..., end_token])
            new_lengths = np.where(finished, lengths, t + 1)
            ranking = (candidates / (new_lengths[:, :, None] ** alpha)).reshape(B, K * vocab)
            best = np.argsort(-ranking, axis=1, kind="stable")[:, :K]
            parent, token = best // vocab, best % vocab

            raw = candidates[items, parent, token]
            lengths = new_lengths[items, parent]
            finished = finished[items, parent] | (token == end_token)
            history = np.concatenate([history[items, parent], token[:, :, None]], axis=2)
            rows = (items * K + parent).reshape(-1)
            state = _map_state(state, lambda s: s[rows])
            tokens = token.reshape(-1)
        scores = np.where(np.isneginf(raw), -np.inf, raw / np.maximum(lengths, 1) ** alpha)
        order = np.argsort(-scores, axis=1, kind="stable")
        return BeamSearchResult(
            Tensor(history[items, order], device=device),
            Tensor(scores[items, order], device=device),
            Tensor(lengths[items, order], device=device),
        )


__all__ = ["BeamSearchResult", "beam_search"]
