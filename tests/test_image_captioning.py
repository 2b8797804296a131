"""The image-captioning example: a CNN encoder and an LSTM decoder caption scenes of handwritten digits."""
import shutil

import numpy as np
import pytest

from conftest import example_cli_error

from tinygrad_rnn import examples_support as support
from tinygrad_rnn import examples_vision as vision
from tinygrad_rnn.data.digit_scenes import make_digit_scenes

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

EXAMPLE = "image-captioning"
TINY = ["--quick", "--epochs", 1, "--train-scenes", 320, "--test-scenes", 60, "--hidden", 32]


def run_example(*argv):
    return support.load_example(EXAMPLE).main([str(a) for a in argv])


def assert_metrics_are_consistent(metrics, prefix=""):
    by_digits = metrics[f"{prefix}exact_match_by_digits"]
    assert sorted(by_digits) == [2, 3, 4]
    assert 0 <= metrics[f"{prefix}exact_match"] <= metrics[f"{prefix}word_accuracy"] <= 1
    assert min(by_digits.values()) <= metrics[f"{prefix}exact_match"] <= max(by_digits.values())


def test_attention_quick_run_learns_to_caption_unseen_scans(tmp_path):
    metrics = run_example("--quick", "--attention", "--beam", 3, "--out", tmp_path)
    assert metrics["attention"] and metrics["test_size"] == 400
    assert metrics["word_accuracy"] > 0.6 > 5 * metrics["chance_word_accuracy"]
    assert metrics["exact_match"] > 0.35
    assert metrics["final_loss"] < metrics["losses"][0] / 3
    assert_metrics_are_consistent(metrics)
    assert_metrics_are_consistent(metrics, "beam_")
    assert metrics["beam_size"] == 3 and metrics["beam_exact_match"] > 0.35
    for name in ("graph.dot", "training.png", "captions.png", "attention.png", "metrics.json"):
        assert (tmp_path / name).is_file(), name
    if shutil.which("dot"):
        assert (tmp_path / "graph.svg").is_file()


def test_show_and_tell_quick_run_learns_without_attention(tmp_path):
    metrics = run_example("--quick", "--out", tmp_path)
    assert not metrics["attention"]
    assert metrics["word_accuracy"] > 2 * metrics["chance_word_accuracy"]
    assert metrics["final_loss"] < 0.8 * metrics["losses"][0]
    assert not (tmp_path / "attention.png").exists() and (tmp_path / "captions.png").is_file()


def test_a_beam_of_one_is_greedy_decoding(tmp_path):
    metrics = run_example(*TINY, "--attention", "--beam", 1, "--out", tmp_path)
    for key in ("exact_match", "word_accuracy", "exact_match_by_digits", "word_accuracy_by_digits"):
        assert metrics[f"beam_{key}"] == metrics[key], key


def test_caption_metrics_count_words_and_the_end():
    _, test = make_digit_scenes(n_train=4, n_test=30, seed=1)
    perfect = vision.caption_metrics(test.targets, test)
    assert perfect["exact_match"] == perfect["word_accuracy"] == 1.0
    wrong_last = test.targets.copy()
    four = np.flatnonzero(test.lengths == 4)
    wrong_last[four, 3] = (wrong_last[four, 3] - 3 + 1) % 10 + 3  # another digit word
    metrics = vision.caption_metrics(wrong_last, test)
    assert metrics["exact_match_by_digits"] == {2: 1.0, 3: 1.0, 4: 0.0}
    assert metrics["word_accuracy_by_digits"][4] == pytest.approx(0.75)
    no_end = test.targets.copy()
    no_end[no_end == test.end_id] = test.start_id  # the right words, but the caption never ends
    assert vision.caption_metrics(no_end, test)["exact_match"] == 0.0
    assert vision.caption_metrics(no_end, test)["word_accuracy"] == 1.0
    # after the first <end> nothing counts: a decoder may write anything there
    babble = test.targets.copy()
    babble[test.lengths == 2, 3:] = 5
    assert vision.caption_metrics(babble, test)["exact_match"] == 1.0


def test_clean_captions_pads_after_the_first_end():
    tokens = np.array([[5, 2, 7, 2], [2, 5, 5, 5], [5, 6, 7, 8]])
    np.testing.assert_array_equal(vision.clean_captions(tokens, end_id=2, pad_id=0),
                                  [[5, 2, 0, 0], [2, 0, 0, 0], [5, 6, 7, 8]])


def test_bad_flags_are_one_line(capsys, tmp_path):
    out = ["--out", tmp_path]
    assert "--length-penalty only applies with --beam" in example_cli_error(
        capsys, EXAMPLE, "--length-penalty", 1, *out)
    assert "positive integer" in example_cli_error(capsys, EXAMPLE, "--beam", 0, *out)
    assert "positive integer" in example_cli_error(capsys, EXAMPLE, "--train-scenes", -5, *out)
    assert "expected a finite number" in example_cli_error(capsys, EXAMPLE, "--length-penalty", "nan", *out)
