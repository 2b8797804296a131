"""Tests for tinygrad_rnn.data: the NumPy data utilities of the examples."""

import json
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tinygrad_rnn.data import (
    START_TOKEN, AdditionData, CharVocab, Normalizer, batchify, bits_to_int, int_to_bits,
    load_text, make_addition_data, make_binary_addition, make_windows, naive_forecast_mae,
    split_addition_data, split_series, split_text, stdlib_corpus, tbptt_batches,
)

# --------------------------------------------------------------------------- vocab


def test_vocab_is_sorted_unique_chars_and_round_trips():
    vocab = CharVocab.from_text("hello world")
    assert vocab.chars == [" ", "d", "e", "h", "l", "o", "r", "w"]
    assert len(vocab) == 8
    ids = vocab.encode("hello")
    assert ids.dtype == np.int64
    assert ids.tolist() == [3, 2, 4, 4, 5]
    assert vocab.decode(ids) == "hello"
    assert vocab.decode([7, 5, 6, 4, 1]) == "world"
    assert vocab.encode("").shape == (0,)
    assert vocab.decode([]) == ""


def test_vocab_dict_round_trip_through_json():
    vocab = CharVocab.from_text("ab\n\tc\u00e9")
    restored = CharVocab.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert restored == vocab
    assert restored.decode(restored.encode("c\u00e9\n")) == "c\u00e9\n"


def test_vocab_errors():
    vocab = CharVocab.from_text("abc")
    with pytest.raises(ValueError, match=r"CharVocab.encode: character 'z' is not in"):
        vocab.encode("abz")
    with pytest.raises(ValueError, match=r"CharVocab.decode: ids must be in \[0, 2\], got 3"):
        vocab.decode([0, 3])
    with pytest.raises(ValueError, match="CharVocab.from_text: text must not be empty"):
        CharVocab.from_text("")
    with pytest.raises(ValueError, match="CharVocab: chars must be unique"):
        CharVocab(["a", "a"])
    with pytest.raises(ValueError, match="CharVocab.from_dict: d must be a dict"):
        CharVocab.from_dict({"letters": ["a"]})


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=50))
def test_vocab_round_trips_any_text(text):
    vocab = CharVocab.from_text(text)
    assert vocab.decode(vocab.encode(text)) == text
    assert CharVocab.from_dict(json.loads(json.dumps(vocab.to_dict()))) == vocab


# --------------------------------------------------------------------------- text files


def test_load_text(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("h\u00e9llo\n", encoding="utf-8")
    assert load_text(path) == "h\u00e9llo\n"
    missing = tmp_path / "missing.txt"
    with pytest.raises(FileNotFoundError, match="load_text: no such file: .*missing.txt"):
        load_text(missing)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="load_text: file is empty"):
        load_text(empty)


def test_stdlib_corpus_is_deterministic_python_source():
    corpus = stdlib_corpus(max_chars=50_000)
    assert len(corpus) == 50_000
    assert corpus == stdlib_corpus(max_chars=50_000)
    assert stdlib_corpus(max_chars=1000) == corpus[:1000]
    assert "def " in corpus and "import " in corpus
    with pytest.raises(ValueError, match="stdlib_corpus: max_chars must be a positive integer, got 0"):
        stdlib_corpus(max_chars=0)


# --------------------------------------------------------------------------- split / batch


def test_split_text_is_contiguous():
    data = np.arange(100)
    train, val = split_text(data, val_fraction=0.1)
    assert train.tolist() == list(range(90))
    assert val.tolist() == list(range(90, 100))
    train, val = split_text(np.arange(3), val_fraction=0.01)  # val is never empty
    assert len(train) == 2 and len(val) == 1
    with pytest.raises(ValueError, match=r"split_text: val_fraction must be strictly between "
                                         r"0 and 1, got 1.0"):
        split_text(data, val_fraction=1.0)
    with pytest.raises(ValueError, match=r"split_text: data must be a 1-D array, got shape"):
        split_text(np.zeros((2, 2)))


def test_batchify_columns_are_contiguous_slices():
    data = np.arange(23)
    batched = batchify(data, batch_size=4)
    n_steps = 23 // 4
    assert batched.shape == (n_steps, 4)
    assert batched.dtype == data.dtype
    for j in range(4):
        np.testing.assert_array_equal(batched[:, j], data[j * n_steps:(j + 1) * n_steps])
    with pytest.raises(ValueError, match="batchify: batch_size must be a positive integer, got 0"):
        batchify(data, 0)
    with pytest.raises(ValueError, match="batchify: data must have at least batch_size=30"):
        batchify(data, 30)


def test_tbptt_targets_are_inputs_shifted_across_chunks():
    batched = batchify(np.arange(43), batch_size=3)  # 14 steps -> 13 input/target pairs
    chunks = list(tbptt_batches(batched, seq_len=5))
    assert [inputs.shape for inputs, _ in chunks] == [(5, 3), (5, 3), (3, 3)]
    for inputs, targets in chunks:
        assert inputs.dtype == np.int64 and targets.dtype == np.int64
        assert inputs.shape == targets.shape
    all_inputs = np.concatenate([inputs for inputs, _ in chunks])
    all_targets = np.concatenate([targets for _, targets in chunks])
    np.testing.assert_array_equal(all_inputs, batched[:-1])
    np.testing.assert_array_equal(all_targets, batched[1:])
    # Each chunk picks up exactly where the previous one stopped.
    for (_, prev_targets), (next_inputs, _) in zip(chunks, chunks[1:]):
        np.testing.assert_array_equal(prev_targets[-1], next_inputs[0])
    # A remainder of exactly zero pairs yields no empty chunk.
    chunks = list(tbptt_batches(batchify(np.arange(11), 1), seq_len=5))
    assert [len(inputs) for inputs, _ in chunks] == [5, 5]


@settings(max_examples=50, deadline=None)
@given(length=st.integers(2, 200), batch_size=st.integers(1, 8), seq_len=st.integers(1, 20))
def test_batchify_and_tbptt_cover_every_column_in_order(length, batch_size, seq_len):
    data = np.arange(length, dtype=np.int64)
    assume(length // batch_size >= 2)  # tbptt_batches needs 2 time steps
    batched = batchify(data, batch_size)
    chunks = list(tbptt_batches(batched, seq_len))
    assert all(1 <= len(inputs) <= seq_len for inputs, _ in chunks)
    np.testing.assert_array_equal(np.concatenate([i for i, _ in chunks]), batched[:-1])
    np.testing.assert_array_equal(np.concatenate([t for _, t in chunks]), batched[1:])


def test_tbptt_errors_are_raised_eagerly():
    with pytest.raises(ValueError, match="tbptt_batches: seq_len must be a positive integer, got 0"):
        tbptt_batches(np.zeros((5, 2), dtype=np.int64), seq_len=0)
    with pytest.raises(ValueError, match="tbptt_batches: batched must be a 2-D"):
        tbptt_batches(np.arange(5), seq_len=2)
    with pytest.raises(ValueError, match="tbptt_batches: batched must hold integer token ids"):
        tbptt_batches(np.zeros((5, 2)), seq_len=2)
    with pytest.raises(ValueError, match="seq_len must be a positive integer, got 2.5"):
        tbptt_batches(np.zeros((5, 2), dtype=np.int64), seq_len=2.5)


# --------------------------------------------------------------------------- addition


def test_addition_strings_are_correct_padded_sums():
    data = make_addition_data(200, max_digits=3, seed=1)
    assert isinstance(data, AdditionData) and len(data) == 200
    assert data.x.shape == (200, 7) and data.y.shape == (200, 4)
    assert data.decoder_inputs.shape == (200, 4)
    for q, ans, a, b in zip(data.questions, data.answers, data.a, data.b):
        assert len(q) == 7 and len(ans) == 4
        left, right = q.strip().split("+")
        assert (int(left), int(right)) == (a, b)
        assert int(ans) == int(left) + int(right)
        assert ans == ans.strip().ljust(4)
        assert 0 <= a < 1000 and 0 <= b < 1000
    assert [data.vocab.decode(row) for row in data.x] == data.questions
    assert [data.vocab.decode(row) for row in data.y] == data.answers
    assert (data.decoder_inputs[:, 0] == data.start_id).all()
    assert data.vocab.decode([data.start_id]) == START_TOKEN
    np.testing.assert_array_equal(data.decoder_inputs[:, 1:], data.y[:, :-1])


def test_addition_is_deterministic_and_reverse_input_reverses_x():
    plain = make_addition_data(50, seed=3)
    assert plain.questions == make_addition_data(50, seed=3).questions
    assert plain.questions != make_addition_data(50, seed=4).questions
    rev = make_addition_data(50, seed=3, reverse_input=True)
    assert rev.questions == plain.questions
    np.testing.assert_array_equal(rev.x, plain.x[:, ::-1])
    np.testing.assert_array_equal(rev.y, plain.y)


def test_addition_train_test_pairs_are_disjoint():
    data = make_addition_data(400, max_digits=2, seed=0)
    train, test = split_addition_data(data, test_fraction=0.25)
    assert len(train) == 300 and len(test) == 100
    train_pairs = {frozenset((a, b)) for a, b in zip(train.a.tolist(), train.b.tolist())}
    test_pairs = {frozenset((a, b)) for a, b in zip(test.a.tolist(), test.b.tolist())}
    assert not train_pairs & test_pairs
    assert len(train_pairs) == 300 and len(test_pairs) == 100  # no duplicates either
    assert test.questions == data.questions[300:]
    np.testing.assert_array_equal(test.x, data.x[300:])


def test_addition_errors():
    with pytest.raises(ValueError, match="make_addition_data: n must be a positive integer, got 0"):
        make_addition_data(0)
    with pytest.raises(ValueError, match=r"make_addition_data: max_digits must be an integer in "
                                         r"\[1, 18\], got 0"):
        make_addition_data(10, max_digits=0)
    with pytest.raises(ValueError, match="make_addition_data: n must be <= 27"):
        make_addition_data(28, max_digits=1)
    with pytest.raises(ValueError, match="split_addition_data: test_fraction must be"):
        split_addition_data(make_addition_data(10), test_fraction=0)


# --------------------------------------------------------------------------- binary


def test_bits_round_trip():
    assert int_to_bits(6, 4).tolist() == [0, 1, 1, 0]
    values = np.arange(256)
    bits = int_to_bits(values, 8)
    assert bits.shape == (256, 8)
    np.testing.assert_array_equal(bits_to_int(bits), values)
    np.testing.assert_array_equal(bits_to_int(bits.astype(np.float32)), values)
    with pytest.raises(ValueError, match=r"int_to_bits: values must be in \[0, 2\*\*4\), got 16"):
        int_to_bits([3, 16], 4)
    with pytest.raises(ValueError, match="bits_to_int: bits must be 0 or 1, got 0.7"):
        bits_to_int([0.0, 0.7])


def test_binary_addition_targets_are_sum_bits():
    x, y = make_binary_addition(500, n_bits=8, seed=2)
    assert x.shape == (500, 8, 2) and y.shape == (500, 8)
    assert x.dtype == np.float32 and y.dtype == np.float32
    a, b = bits_to_int(x[..., 0]), bits_to_int(x[..., 1])
    assert a.max() < 128 and b.max() < 128
    np.testing.assert_array_equal(bits_to_int(y), a + b)
    x2, y2 = make_binary_addition(500, n_bits=8, seed=2)
    np.testing.assert_array_equal(x, x2)
    with pytest.raises(ValueError, match="make_binary_addition: n_bits must be an integer in "):
        make_binary_addition(10, n_bits=1)


# --------------------------------------------------------------------------- time series


def test_windows_alignment():
    series = np.arange(10, dtype=np.float32) * 10
    X, y = make_windows(series, lookback=3, horizon=2)
    assert X.shape == (6, 3, 1) and y.shape == (6,)
    assert X.dtype == np.float32 and y.dtype == np.float32
    for i in range(6):
        np.testing.assert_array_equal(X[i, :, 0], series[i:i + 3])
        assert y[i] == series[i + 3 - 1 + 2]
    with pytest.raises(ValueError, match="make_windows: series must have at least "
                                         "lookback \\+ horizon = 12 values, got 10"):
        make_windows(series, lookback=10, horizon=2)
    with pytest.raises(ValueError, match="make_windows: horizon must be a positive integer, got 0"):
        make_windows(series, lookback=3, horizon=0)


def test_naive_forecast_mae_on_hand_series():
    series = np.array([1.0, 3.0, 2.0, 6.0, 5.0])
    # lookback 2, horizon 1: windows end at 3.0, 2.0, 6.0; targets 2.0, 6.0, 5.0
    assert naive_forecast_mae(series, lookback=2, horizon=1) == pytest.approx((1 + 4 + 1) / 3)
    # lookback 1, horizon 2: pairs (1,2), (3,6), (2,5)
    assert naive_forecast_mae(series, lookback=1, horizon=2) == pytest.approx((1 + 3 + 3) / 3)


def test_split_series_and_normalizer():
    series = np.arange(10, dtype=np.float64)
    train, test = split_series(series, train_fraction=0.7)
    assert train.tolist() == list(range(7)) and test.tolist() == [7, 8, 9]
    norm = Normalizer.fit(train)
    assert norm.mean == pytest.approx(3.0) and norm.scale == pytest.approx(train.std())
    z = norm.transform(train)
    assert z.mean() == pytest.approx(0.0, abs=1e-6) and z.std() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(norm.inverse_transform(norm.transform(test)), test, rtol=1e-6)
    # An MAE in normalised units times scale is the MAE in original units.
    mae_normalised = naive_forecast_mae(norm.transform(series), lookback=2, horizon=1)
    assert mae_normalised * norm.scale == pytest.approx(naive_forecast_mae(series, 2, 1))
    restored = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert (restored.mean, restored.std) == (norm.mean, norm.std)
    with pytest.raises(ValueError, match="Normalizer.fit: data must not be constant"):
        Normalizer.fit(np.ones(4))
    with pytest.raises(ValueError, match="split_series: train_fraction must be strictly"):
        split_series(series, train_fraction=0.0)


def test_missing_optional_packages_give_install_hint(monkeypatch):
    from tinygrad_rnn.data import load_digits_sequences
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"load_digits_sequences: .*tinygrad_rnn\[examples\]"):
        load_digits_sequences()


# --------------------------------------------------------------------------- digits


def test_digits_sequences():
    pytest.importorskip("sklearn")
    from tinygrad_rnn.data import load_digits_sequences
    x_train, y_train, x_test, y_test = load_digits_sequences(test_fraction=0.2, seed=0)
    assert x_train.shape[1:] == (8, 8) and x_test.shape[1:] == (8, 8)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert len(x_train) == len(y_train) and len(x_test) == len(y_test)
    assert len(x_train) + len(x_test) == 1797
    assert len(x_test) == pytest.approx(0.2 * 1797, abs=10)
    assert x_train.min() >= 0.0 and x_train.max() == 1.0
    assert set(y_train.tolist()) == set(range(10)) == set(y_test.tolist())
    again = load_digits_sequences(test_fraction=0.2, seed=0)
    np.testing.assert_array_equal(again.x_test, x_test)
    np.testing.assert_array_equal(again.y_train, y_train)
    with pytest.raises(ValueError, match="load_digits_sequences: test_fraction must be"):
        load_digits_sequences(test_fraction=1.5)


def test_tinyshakespeare_ships_with_the_package():
    import hashlib

    import tinygrad_rnn as tr

    text = tr.data.load_tinyshakespeare()
    assert len(text) == 1_115_394 and len(set(text)) == 65
    assert text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")
    assert hashlib.sha256(text.encode()).hexdigest() == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"  # the char-rnn file, unchanged
