"""The who-speaks example and the speech parser it reads the play with."""
import sys

import numpy as np
import pytest

from conftest import example_cli_error

import tinygrad_rnn as tr
from tinygrad_rnn import examples_support as support
from tinygrad_rnn.data import Speech, WordVocab, parse_speeches, save_word_vectors

pytest.importorskip("matplotlib")

PLAY = """THE TRAGEDY OF TESTS
Act one, a stage direction without a speaker

First Citizen:
Before we proceed any further,
hear me speak.

All:
Speak, speak.
  \t
KING RICHARD III:
Now is the winter
of our discontent: made glorious summer.

Nobody:

ROMEO:\r
But soft! what light?\r
"""


def run_example(*argv):
    return support.load_example("who-speaks").main([str(a) for a in argv])


def _error(capsys, *argv) -> str:
    return example_cli_error(capsys, "who-speaks", *argv)


# ------------------------------------------------------------------------------------------------- speeches
def test_speeches_and_their_speakers():
    speeches = parse_speeches(PLAY)
    assert speeches == [
        Speech("First Citizen", "Before we proceed any further,\nhear me speak.", 4),
        Speech("All", "Speak, speak.", 8),
        Speech("KING RICHARD III", "Now is the winter\nof our discontent: made glorious summer.", 11),
        Speech("ROMEO", "But soft! what light?", 17),
    ]  # the title block, the direction and the empty speech of "Nobody" are skipped; a colon inside a line is text


def test_the_bundled_play_has_the_expected_busiest_speakers(tmp_path):
    module = support.load_example("who-speaks")
    args = module.build_parser().parse_args(["--out", str(tmp_path)])
    tokens, labels, names = module.load_speeches(None, args)
    assert names[:3] == ["GLOUCESTER", "DUKE VINCENTIO", "MENENIUS"] and len(names) == 10
    assert len(tokens) == len(labels) > 1500 and all(0 < len(t) <= 200 for t in tokens)
    assert np.bincount(labels).tolist() == sorted(np.bincount(labels).tolist(), reverse=True)


def test_the_split_is_by_speech_stratified_and_does_not_depend_on_the_seed():
    module = support.load_example("who-speaks")
    labels = np.repeat(np.arange(4), [50, 20, 7, 1])
    train, test = module.split_by_speech(labels, 0.2, np.random.default_rng(module.SPLIT_SEED))
    assert not set(train) & set(test) and sorted([*train, *test]) == list(range(len(labels)))
    assert np.bincount(labels[test], minlength=4).tolist() == [10, 4, 1, 0]  # a lone speech stays in training
    again = module.split_by_speech(labels, 0.2, np.random.default_rng(module.SPLIT_SEED))
    np.testing.assert_array_equal(again[1], test)


# -------------------------------------------------------------------------------------------------- the example
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("who-speaks")
    return run_example("--quick", "--out", out), out


def test_quick_run_learns_and_reports_its_baselines(quick_run):
    metrics, out = quick_run
    assert len(metrics["speakers"]) == 10 and metrics["train_size"] + metrics["test_size"] > 1500
    assert sum(map(sum, metrics["confusion"])) == metrics["test_size"]
    losses = metrics["losses"]
    assert losses[-1] < losses[0] - 0.1  # the training loss falls
    assert metrics["train_accuracy"] > metrics["majority_accuracy"] + 0.1
    assert metrics["majority_accuracy"] == pytest.approx(0.137, abs=0.01)  # GLOUCESTER's share of the test speeches
    assert metrics["logreg_accuracy"] > metrics["majority_accuracy"] + 0.15
    assert metrics["embedding"] == "trained" and metrics["trainable_parameters"] == metrics["parameters"]
    for name in ("graph.dot", "training.png", "metrics.json"):
        assert (out / name).is_file()


def test_frozen_pretrained_vectors(tmp_path, quick_run):
    """--vectors: the file's words are the vocabulary (plus <unk>), the embedding is frozen and unchanged."""
    vocab = WordVocab.from_tokens(tr.data.tokenize(tr.data.load_tinyshakespeare()), min_count=20, unk_token=None)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(vocab), 8)).astype(np.float32)
    path = save_word_vectors(tmp_path / "vectors.txt", vocab.words, vectors)
    module = support.load_example("who-speaks")
    embedding, words, coverage = module.pretrained_embedding(None, path, [["the", "king", "zzz"]], fine_tune=False)
    assert not embedding.weight.requires_grad and words.words[1:] == vocab.words and coverage == pytest.approx(2 / 3)
    np.testing.assert_array_equal(embedding.weight.numpy()[0], 0)  # <unk>: a zero vector
    metrics = run_example("--quick", "--epochs", 1, "--vectors", path, "--out", tmp_path / "frozen")
    assert metrics["embedding"] == "frozen" and metrics["vocab_size"] == len(vocab) + 1
    assert metrics["trainable_parameters"] == metrics["parameters"] - (len(vocab) + 1) * 8
    assert 0.5 < metrics["vector_coverage"] < 1
    tuned = run_example("--quick", "--epochs", 1, "--vectors", path, "--fine-tune", "--out", tmp_path / "tuned")
    assert tuned["embedding"] == "fine-tuned" and tuned["trainable_parameters"] == tuned["parameters"]


def test_without_scikit_learn_the_baseline_is_skipped(monkeypatch):
    module = support.load_example("who-speaks")
    monkeypatch.setitem(sys.modules, "sklearn.feature_extraction.text", None)  # import fails as if not installed
    assert module.logistic_regression_accuracy([["a"]], np.array([0]), np.array([0]), np.array([0])) == (None, None)


def test_bad_flags_are_one_line(capsys, tmp_path):
    out = ["--out", tmp_path / "out"]
    assert "--fine-tune: needs --vectors" in _error(capsys, "--fine-tune", *out)
    (tmp_path / "good.txt").write_text("king 1 2\nqueen 1 3\n", encoding="utf-8")
    assert "--embed: not used with --vectors" in _error(capsys, "--vectors", tmp_path / "good.txt", "--embed", 8, *out)
    (tmp_path / "ragged.txt").write_text("king 1 2\nqueen 1\n", encoding="utf-8")
    line = _error(capsys, "--vectors", tmp_path / "ragged.txt", *out)
    assert "--vectors: load_word_vectors:" in line and "ragged.txt line 2: expected a word and 2 numbers" in line
    assert "no such file" in _error(capsys, "--vectors", tmp_path / "missing.txt", *out)
    assert "expected a number in (0, 1)" in _error(capsys, "--test-fraction", "1", *out)
    assert "invalid choice: 'avg'" in _error(capsys, "--pool", "avg", *out)
    (tmp_path / "prose.txt").write_text("No speakers here.\nJust prose.\n", encoding="utf-8")
    assert "found speeches of 0 speaker(s)" in _error(capsys, "--data", tmp_path / "prose.txt", *out)
