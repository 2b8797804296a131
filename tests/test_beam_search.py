"""tr.nn.utils.beam_search against exhaustive search, greedy decoding, and itself run item by item.

The step functions are fixed random tables of log-probabilities, so the score
of any sequence can be recomputed from the sequence alone (the oracle): a
search that gathered the wrong state rows, or kept the wrong scores, returns
scores that do not match its own sequences.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn import nn
from tinygrad_rnn.nn.utils import beam_search
from tinygrad_rnn.nn.utils.beam_search import BeamSearchResult

END = 0


class Table:
    """Next-token log-probabilities depending on the item, the position, how many times token 1 was emitted
    so far (capped at 2) and the previous token (``V`` is the start token)."""

    def __init__(self, vocab, length, items=1, seed=0):
        rng = np.random.default_rng(seed)
        logits = rng.normal(scale=2.0, size=(items, length, 3, vocab + 1, vocab))
        self.log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        self.vocab, self.length = vocab, length

    def state(self, items):
        """(item, (position, count)) for the given item ids: nested, every tensor one row per item."""
        n = len(items)
        return (tr.tensor(np.asarray(items, dtype=np.int64)),
                [tr.zeros(n, dtype=tr.int64), tr.zeros((n, 1), dtype=tr.float32)])

    def step(self, tokens, state):
        assert not tr.is_grad_enabled()
        item, (position, count) = state
        count = count + (tokens == 1).float().unsqueeze(1)  # this hypothesis's 1s, the token read now included
        prev, i, t = tokens.numpy(), item.numpy(), position.numpy()
        c = np.minimum(count.numpy()[:, 0], 2).astype(np.int64)
        log_probs = tr.tensor(self.log_probs[i, t, c, prev].astype(np.float32))
        return log_probs, (item, [position + 1, count])

    def score(self, sequence, item=0, length_penalty=0.0):
        """The oracle: the length-normalised log-probability of ``sequence`` (ending at its end token)."""
        total, count, prev = 0.0, 0, self.vocab
        for t, token in enumerate(sequence):
            total += float(self.log_probs[item, t, min(count, 2), prev, token].astype(np.float32))
            count += token == 1
            prev = token
        return total / len(sequence) ** length_penalty

    def hypotheses(self, max_length, item=0, length_penalty=0.0):
        """Every distinct hypothesis (cut after its first end token) with its score, best first."""
        found = set()
        for seq in itertools.product(range(self.vocab), repeat=max_length):
            cut = seq.index(END) + 1 if END in seq else max_length
            found.add(seq[:cut])
        scored = [(self.score(s, item, length_penalty), s) for s in found]
        return sorted(scored, key=lambda pair: -pair[0])


def hypotheses_of(result, item=0):
    """(score, sequence cut at its length) for each finite-scored slot of ``item``, in the returned order."""
    seqs, scores, lengths = (x.numpy()[item] for x in result)
    return [(float(s), tuple(int(v) for v in seq[:n])) for seq, s, n in zip(seqs, scores, lengths) if np.isfinite(s)]


@pytest.mark.parametrize("vocab, length", [(3, 3), (3, 4), (4, 3)])
@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_a_beam_as_wide_as_every_sequence_is_exhaustive_search(vocab, length, length_penalty):
    table = Table(vocab, length, seed=vocab * 10 + length)
    result = beam_search(table.step, table.state([0]), vocab, END, vocab ** length, length, length_penalty)
    assert isinstance(result, BeamSearchResult)
    found = hypotheses_of(result)
    expected = table.hypotheses(length, length_penalty=length_penalty)
    assert [s for _, s in found] == [s for _, s in expected]
    np.testing.assert_allclose([v for v, _ in found], [v for v, _ in expected], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("beam_size", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_narrow_beams_return_true_scores_and_never_beat_exhaustive_search(beam_size, length_penalty):
    vocab, length = 4, 4
    table = Table(vocab, length, seed=beam_size)
    result = beam_search(table.step, table.state([0]), vocab, END, beam_size, length, length_penalty)
    seqs, scores, lengths = (x.numpy() for x in result)
    assert seqs.shape[:2] == scores.shape == lengths.shape == (1, beam_size)
    assert seqs.dtype == np.int64 and lengths.dtype == np.int64
    found = hypotheses_of(result)
    assert len(found) == min(beam_size, len(table.hypotheses(length)))
    assert len({s for _, s in found}) == len(found)  # no hypothesis twice
    assert [v for v, _ in found] == sorted((v for v, _ in found), reverse=True)
    for value, sequence in found:  # each score is its own sequence's (the state followed the right parent)
        assert value == pytest.approx(table.score(sequence, length_penalty=length_penalty), abs=1e-6)
        assert sequence[-1] == END or len(sequence) == length
        assert END not in sequence[:-1]
    for row, n in zip(seqs[0], lengths[0]):
        assert (row[n:] == END).all()  # padded with the end token
    assert found[0][0] <= table.hypotheses(length, length_penalty=length_penalty)[0][0] + 1e-6


def test_beam_size_one_is_greedy_decoding():
    table = Table(vocab=5, length=6, seed=3)
    greedy, prev, count = [], table.vocab, 0
    for t in range(6):
        token = int(np.argmax(table.log_probs[0, t, min(count, 2), prev]))
        greedy.append(token)
        count, prev = count + (token == 1), token
        if token == END:
            break
    result = beam_search(table.step, table.state([0]), table.vocab, END, 1, 6, length_penalty=0.7)
    assert hypotheses_of(result)[0][1] == tuple(greedy)


def test_beam_size_one_is_greedy_decoding_of_an_lstm_decoder():
    tr.manual_seed(0)
    embedding, cell, head = nn.Embedding(7, 5), nn.LSTMCell(5, 8), nn.Linear(8, 6)
    h0 = (tr.randn(4, 8), tr.randn(4, 8))

    def step(tokens, state):
        state = cell(embedding(tokens), state)
        return F.log_softmax(head(state[0]), dim=-1), state

    with tr.no_grad():
        state, prev, greedy = h0, tr.full((4,), 6, dtype=tr.int64), []
        for _ in range(5):
            log_probs, state = step(prev, state)
            prev = log_probs.argmax(-1)
            greedy.append(prev.numpy())
    greedy = np.stack(greedy, axis=1)
    # what greedy decoding writes after the end token does not count: the search pads with it
    finished = np.cumsum(np.cumsum(greedy == END, axis=1), axis=1) > 1
    greedy[finished] = END
    result = beam_search(step, h0, 6, END, 1, 5)
    np.testing.assert_array_equal(result.sequences.numpy()[:, 0, :], greedy[:, :result.sequences.shape[2]])
    assert not result.scores.requires_grad


def test_a_batch_gives_what_each_item_gives_alone():
    table = Table(vocab=4, length=4, items=3, seed=7)
    batched = beam_search(table.step, table.state([0, 1, 2]), 4, END, 3, 4, length_penalty=0.5)
    assert batched.sequences.shape[:2] == (3, 3)
    for item in range(3):
        alone = beam_search(table.step, table.state([item]), 4, END, 3, 4, length_penalty=0.5)
        assert hypotheses_of(batched, item) == hypotheses_of(alone)
    assert hypotheses_of(batched, 0) != hypotheses_of(batched, 1)


def test_the_length_penalty_changes_the_choice():
    # first token: end or 1, half and half; after 1, end with probability 0.9. Probability alone prefers the
    # one-token [end] (log 0.5); the mean log-probability per token prefers [1, end] ((log 0.5 + log 0.9) / 2).
    table = np.log(np.array([[1 / 3] * 3, [0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.5, 0.5, 1e-9]]))  # row 3: start

    def step(tokens, state):
        return tr.tensor(table[tokens.numpy()]), state

    by_probability = beam_search(step, None, 3, END, 2, 2, length_penalty=0.0)
    by_mean = beam_search(step, None, 3, END, 2, 2, length_penalty=1.0)
    assert hypotheses_of(by_probability)[0][1] == (END,)
    assert hypotheses_of(by_probability)[0][0] == pytest.approx(np.log(0.5))
    assert hypotheses_of(by_mean)[0][1] == (1, END)
    assert hypotheses_of(by_mean)[0][0] == pytest.approx((np.log(0.5) + np.log(0.9)) / 2)


def test_each_hypothesis_continues_from_its_own_state():
    """The state holds each hypothesis's whole history and the log-probabilities depend on all of it: a
    row gathered from the wrong parent would score another sequence than the one returned."""
    vocab, length = 4, 5
    rng = np.random.default_rng(11)
    logits = rng.normal(scale=2.0, size=(97, vocab))
    table = logits - np.log(np.exp(logits).sum(-1, keepdims=True))

    def row_of(history):
        return hash(tuple(int(v) for v in history)) % 97

    def step(tokens, history):
        history = tr.cat([history, tokens.unsqueeze(1)], dim=1)
        return tr.tensor(np.stack([table[row_of(h)] for h in history.numpy()])), history

    start = tr.tensor(np.array([[9], [8]], dtype=np.int64))  # two items with different first histories
    result = beam_search(step, start, 5, END, 4, length, length_penalty=0.0)
    for item in range(2):
        for value, sequence in hypotheses_of(result, item):
            history, expected = [9 - item, 5], 0.0
            for token in sequence:
                expected += table[row_of(history), token]
                history.append(token)
            assert value == pytest.approx(expected, abs=1e-9)


def test_finished_hypotheses_stay_finished_and_the_search_stops_early():
    calls = []

    def step(tokens, state):  # the end token is certain after the first step
        calls.append(1)
        log_probs = np.full((tokens.shape[0], 3), -50.0)
        log_probs[:, END] = 0.0
        if len(calls) == 1:
            log_probs[:] = np.log([0.2, 0.5, 0.3])
        return tr.tensor(log_probs), state

    result = beam_search(step, tr.zeros((2, 1)), 3, END, 3, 10, length_penalty=0.0)
    assert len(calls) == 2  # stopped once every hypothesis had ended
    assert result.sequences.shape == (2, 3, 2)
    np.testing.assert_array_equal(result.sequences.numpy()[0], [[1, END], [2, END], [END, END]])
    np.testing.assert_array_equal(result.lengths.numpy()[0], [2, 2, 1])
    np.testing.assert_allclose(result.scores.numpy()[0], np.log([0.5, 0.3, 0.2]), rtol=1e-6)


def test_the_search_does_not_record_a_graph():
    tr.manual_seed(1)
    layer = nn.Linear(3, 4)

    def step(tokens, state):
        assert not tr.is_grad_enabled()
        out = layer(state)
        assert not out.requires_grad
        return F.log_softmax(out, dim=-1), state

    beam_search(step, tr.randn(2, 3), 0, END, 2, 3)
    assert tr.is_grad_enabled()


def _constant_step(tokens, state):
    return tr.zeros((tokens.shape[0], 3)) - np.log(3.0), state


@pytest.mark.parametrize("kwargs, error, fragments", [
    (dict(beam_size=0), ValueError, ["beam_search", "beam_size", "positive"]),
    (dict(beam_size=-2), ValueError, ["beam_search", "beam_size"]),
    (dict(beam_size=2.0), ValueError, ["beam_search", "beam_size", "float"]),
    (dict(beam_size=True), ValueError, ["beam_search", "beam_size", "bool"]),
    (dict(max_length=0), ValueError, ["beam_search", "max_length", "positive"]),
    (dict(max_length="3"), ValueError, ["beam_search", "max_length"]),
    (dict(end_token=3), ValueError, ["beam_search", "end_token 3", "vocabulary of 3"]),
    (dict(end_token=-1), ValueError, ["beam_search", "end_token"]),
    (dict(start_token=None), ValueError, ["beam_search", "start_token"]),
    (dict(length_penalty=float("nan")), ValueError, ["beam_search", "length_penalty", "finite"]),
    (dict(step="not a function"), TypeError, ["beam_search", "step must be a callable"]),
    (dict(state=np.zeros((2, 3))), TypeError, ["beam_search", "state", "ndarray"]),
    (dict(state=(tr.zeros(2), [tr.zeros(3)])), ValueError, ["beam_search", "initial state", "(3,)", "2 rows"]),
])
def test_bad_arguments_are_named(kwargs, error, fragments):
    arguments = dict(step=_constant_step, state=tr.zeros((2, 1)), start_token=0, end_token=END, beam_size=2,
                     max_length=3)
    arguments.update(kwargs)
    with pytest.raises(error) as info:
        beam_search(**arguments)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


@pytest.mark.parametrize("returned, error, fragments", [
    (lambda tokens, state: (tr.zeros((tokens.shape[0], 1, 3)), state), ValueError,
     ["beam_search", "log_probs of shape (6, 1, 3)", "(batch * beam_size, vocab) = (6, vocab)"]),
    (lambda tokens, state: (tr.zeros((2, 3)), state), ValueError, ["beam_search", "(2, 3)", "(6, vocab)"]),
    (lambda tokens, state: (tr.zeros((6, 3)), state[:2]), ValueError,
     ["beam_search", "returned by step", "(2, 1)", "6 rows"]),
    (lambda tokens, state: (tr.full((6, 3), float("nan")), state), ValueError, ["beam_search", "NaN"]),
    (lambda tokens, state: (np.zeros((6, 3)), state), TypeError, ["beam_search", "log_probs a Tensor", "ndarray"]),
    (lambda tokens, state: tr.zeros((6, 3)), TypeError, ["beam_search", "pair (log_probs, state)"]),
])
def test_a_step_that_returns_the_wrong_thing_is_named(returned, error, fragments):
    with pytest.raises(error) as info:
        beam_search(returned, tr.zeros((2, 1)), 0, END, 3, 3)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_the_vocabulary_must_not_change_between_steps():
    def step(tokens, state):
        state = state + 1
        return tr.zeros((tokens.shape[0], 3 + int(state.numpy()[0, 0]))), state

    expected = r"beam_search: step returned log_probs of shape \(2, 5\), expected .* \(2, 4\)"
    with pytest.raises(ValueError, match=expected):
        beam_search(step, tr.zeros((1, 1)), 0, END, 2, 3)
