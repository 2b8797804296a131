"""The lecture examples min-char-rnn, char-lstm and seq2seq-addition, in quick mode (time-series:
tests/test_time_series.py).

Each test runs an example in-process (``main(argv)``) and checks that it
learned (a metric against a baseline), that it wrote its graph, plots and
checkpoint, and that a second run with the same seed repeats the loss
trajectory bit for bit.
"""
import math
import shutil

import numpy as np
import pytest

from tinygrad_rnn import examples_support as support
from tinygrad_rnn.data import CharVocab, stdlib_corpus

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def small_text(tmp_path_factory):
    """30,000 characters of Python source in a temporary file (a small --data corpus)."""
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    path.write_text(stdlib_corpus(max_chars=30_000), encoding="utf-8")
    return path


def run_example(name, *argv):
    return support.load_example(name).main([str(a) for a in argv])


def assert_graph(out):
    assert (out / "graph.dot").is_file()
    if shutil.which("dot"):
        assert (out / "graph.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")


def assert_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_min_char_rnn_learns_and_repeats(tmp_path, small_text):
    out = tmp_path / "a"
    metrics = run_example("min-char-rnn", "--quick", "--data", small_text, "--out", out, "--iters", 800)
    chance = math.log(metrics["vocab_size"])
    assert metrics["chance_loss"] == pytest.approx(chance)
    assert metrics["held_out_loss"] < chance - 1.0
    assert metrics["held_out_curve"][-1] < metrics["held_out_curve"][0]
    assert_graph(out)
    assert_png(out / "loss.png")
    assert (out / "checkpoint.npz").is_file()
    assert (out / "metrics.json").is_file()

    again = run_example("min-char-rnn", "--quick", "--data", small_text, "--out", tmp_path / "b", "--iters", 300)
    first = run_example("min-char-rnn", "--quick", "--data", small_text, "--out", tmp_path / "c", "--iters", 300)
    assert again["loss_curve"] == first["loss_curve"]
    assert again["held_out_loss"] == first["held_out_loss"]
    assert again["last_sample"] == first["last_sample"]


def test_min_char_rnn_with_parallel_windows_learns(tmp_path, small_text):
    metrics = run_example("min-char-rnn", "--quick", "--data", small_text, "--out", tmp_path, "--iters", 300,
                          "--batch-size", 8, "--eval-every", 150)
    assert metrics["batch_size"] == 8
    assert metrics["held_out_loss"] < metrics["chance_loss"] - 1.0
    assert metrics["held_out_curve"][-1] < metrics["held_out_curve"][0]
    assert 0 < metrics["smooth_loss_per_char"] < metrics["chance_loss"]


def test_min_char_rnn_rejects_more_windows_than_the_text_holds(tmp_path, small_text):
    with pytest.raises(SystemExit, match="too few for --batch-size 5000"):
        run_example("min-char-rnn", "--quick", "--data", small_text, "--out", tmp_path, "--batch-size", 5000)


def test_char_lstm_learns_checkpoints_and_samples(tmp_path, small_text):
    out = tmp_path / "train"
    metrics = run_example("char-lstm", "--quick", "--data", small_text, "--out", out)
    assert metrics["val_loss"] < metrics["unigram_loss"] - 0.3
    assert metrics["val_perplexity"] == pytest.approx(math.exp(metrics["val_loss"]))
    assert np.mean(metrics["train_losses"][-5:]) < np.mean(metrics["train_losses"][:5]) - 1.0
    assert_graph(out)
    assert_png(out / "loss.png")
    checkpoint = out / "checkpoint.npz"
    assert checkpoint.is_file()

    vocab = CharVocab.from_text(small_text.read_text(encoding="utf-8"))
    sampled = run_example("char-lstm", "sample", "--checkpoint", checkpoint, "--prime", "def ",
                          "--sample-length", 60, "--out", tmp_path / "sample")
    text = sampled["sample"]
    assert text.startswith("def ") and len(text) == 64
    assert set(text) <= set(vocab.chars)
    assert sampled["vocab_size"] == len(vocab)
    assert sampled["val_loss"] == pytest.approx(metrics["val_loss"])
    assert (tmp_path / "sample" / "sample.txt").read_text(encoding="utf-8") == text

    with pytest.raises(SystemExit, match="never saw"):
        run_example("char-lstm", "sample", "--checkpoint", checkpoint, "--prime", "\u00e9",
                    "--out", tmp_path / "bad")

    resumed = run_example("char-lstm", "--quick", "--data", small_text, "--resume", checkpoint, "--epochs", 0.25,
                          "--sample-length", 10, "--out", tmp_path / "resumed")
    assert resumed["steps"] > metrics["steps"]
    assert resumed["config"] == metrics["config"]
    assert resumed["train_losses"][0] < metrics["train_losses"][0] - 1.0  # it starts from the trained weights


def test_char_lstm_same_seed_same_losses(tmp_path, small_text):
    argv = ["--quick", "--data", small_text, "--epochs", 0.3, "--cell", "gru", "--sample-length", 20]
    first = run_example("char-lstm", *argv, "--out", tmp_path / "a")
    second = run_example("char-lstm", *argv, "--out", tmp_path / "b")
    assert first["train_losses"] == second["train_losses"]
    assert first["sample"] == second["sample"]
    third = run_example("char-lstm", *argv, "--seed", 1, "--out", tmp_path / "c")
    assert third["train_losses"] != first["train_losses"]


def test_seq2seq_addition_learns_with_attention(tmp_path):
    out = tmp_path / "run"
    metrics = run_example("seq2seq-addition", "--quick", "--out", out)
    chance = metrics["chance_per_char"]
    assert metrics["per_char_accuracy"] > 0.4 > 4 * chance
    assert metrics["final_loss"] < metrics["losses"][0] / 2
    assert metrics["train_size"] + metrics["test_size"] == 2400
    assert_graph(out)
    assert_png(out / "training.png")
    assert_png(out / "attention.png")
    assert (out / "checkpoint.npz").is_file()


def test_seq2seq_addition_same_seed_same_losses(tmp_path):
    argv = ["--quick", "--epochs", 1, "--no-attention", "--cell", "gru", "--teacher-forcing", 0.5, "--no-reverse"]
    first = run_example("seq2seq-addition", *argv, "--out", tmp_path / "a")
    second = run_example("seq2seq-addition", *argv, "--out", tmp_path / "b")
    assert first["losses"] == second["losses"]
    assert first["exact_match"] == second["exact_match"]
    assert not (tmp_path / "a" / "attention.png").exists()
