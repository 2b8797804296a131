"""seq2seq-addition's decoding flags: --beam K, --teacher-forcing RATIO, --scheduled-sampling, and the
exposure-bias metrics (teacher-forced vs free-running accuracy), in quick runs; bad values end in one line.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import example_cli_error

from tinygrad_rnn import examples_support as support

pytest.importorskip("matplotlib")

EXAMPLE = "seq2seq-addition"


def run_example(*argv):
    return support.load_example(EXAMPLE).main([str(a) for a in argv])


def assert_learned(metrics):
    assert metrics["per_char_accuracy"] > 0.4 > 4 * metrics["chance_per_char"]
    assert metrics["final_loss"] < metrics["losses"][0] / 2


def assert_exposure_metrics(metrics):
    steps = metrics["digits"] + 1
    forced, free = metrics["teacher_forced_accuracy_by_position"], metrics["free_running_accuracy_by_position"]
    assert len(forced) == len(free) == steps
    assert metrics["free_running_token_accuracy"] == metrics["per_char_accuracy"]
    assert np.mean(free) == pytest.approx(metrics["free_running_token_accuracy"])
    assert np.mean(forced) == pytest.approx(metrics["teacher_forced_token_accuracy"])
    assert forced[0] == free[0]  # the first character reads the start token either way
    assert metrics["exposure_bias_gap"] == pytest.approx(
        metrics["teacher_forced_token_accuracy"] - metrics["free_running_token_accuracy"])
    assert 4 * metrics["chance_per_char"] < metrics["teacher_forced_token_accuracy"] <= 1
    assert len(metrics["teacher_forced_curve"]) == len(metrics["test_curve"])


def test_beam_search_decodes_the_held_out_sums(tmp_path):
    metrics = run_example("--quick", "--beam", 3, "--out", tmp_path)
    assert_learned(metrics)
    assert_exposure_metrics(metrics)
    assert metrics["beam_size"] == 3 and metrics["length_penalty"] == 0.0
    assert 0 <= metrics["beam_exact_match"] <= metrics["beam_per_char_accuracy"] <= 1
    assert metrics["beam_per_char_accuracy"] > 4 * metrics["chance_per_char"]
    assert metrics["teacher_forcing"] == metrics["teacher_forcing_final"] == 1.0
    assert not metrics["scheduled_sampling"]
    assert (tmp_path / "training.png").is_file()


def test_a_beam_of_one_is_greedy_decoding_with_half_teacher_forcing(tmp_path):
    metrics = run_example("--quick", "--beam", 1, "--teacher-forcing", 0.5, "--out", tmp_path)
    assert_learned(metrics)
    assert_exposure_metrics(metrics)
    assert metrics["teacher_forcing"] == metrics["teacher_forcing_final"] == 0.5
    assert metrics["beam_exact_match"] == metrics["exact_match"]
    assert metrics["beam_per_char_accuracy"] == metrics["per_char_accuracy"]


def test_greedy_only_without_beam(tmp_path):
    metrics = run_example("--quick", "--epochs", 1, "--examples", 600, "--out", tmp_path)
    assert "beam_exact_match" not in metrics and "beam_size" not in metrics
    assert_exposure_metrics(metrics)


def test_scheduled_sampling_lowers_teacher_forcing_to_the_floor(tmp_path):
    metrics = run_example("--quick", "--scheduled-sampling", "--teacher-forcing-floor", 0.25, "--out", tmp_path)
    assert_learned(metrics)
    assert_exposure_metrics(metrics)
    assert metrics["scheduled_sampling"]
    assert metrics["teacher_forcing"] == 1.0 and metrics["teacher_forcing_final"] == 0.25
    # a different training from full teacher forcing (the coin flips feed the decoder's own guesses)
    full = run_example("--quick", "--epochs", 1, "--out", tmp_path / "full")
    assert metrics["losses"][:len(full["losses"])] != full["losses"]
    assert metrics["losses"][0] == full["losses"][0]  # the first step still feeds only true characters


def test_the_teacher_forcing_schedule():
    schedule = support.load_example(EXAMPLE).teacher_forcing_schedule
    np.testing.assert_allclose(schedule(1.0, 0.0, 5), [1.0, 0.75, 0.5, 0.25, 0.0])
    np.testing.assert_allclose(schedule(0.8, 0.2, 4), [0.8, 0.6, 0.4, 0.2])
    np.testing.assert_array_equal(schedule(0.5, None, 3), [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(schedule(0.9, 0.1, 1), [0.9])


def test_answers_end_at_the_first_end_token():
    stop_at_end = support.load_example(EXAMPLE).stop_at_end
    guesses = np.array([[3, 0, 4, 0], [1, 2, 3, 4], [0, 5, 5, 5]])
    np.testing.assert_array_equal(stop_at_end(guesses, 0), [[3, 0, 0, 0], [1, 2, 3, 4], [0, 0, 0, 0]])


def _error(capsys, *argv) -> str:
    return example_cli_error(capsys, EXAMPLE, *argv)


@pytest.mark.parametrize("argv, fragments", [
    (["--beam", "0"], ["argument --beam", "positive integer", "'0'"]),
    (["--beam", "-3"], ["argument --beam", "positive integer"]),
    (["--beam", "2.5"], ["argument --beam", "'2.5'"]),
    (["--teacher-forcing", "1.5"], ["argument --teacher-forcing", "[0, 1]", "'1.5'"]),
    (["--teacher-forcing", "-0.1"], ["argument --teacher-forcing", "[0, 1]"]),
    (["--teacher-forcing-floor", "2", "--scheduled-sampling"], ["argument --teacher-forcing-floor", "[0, 1]"]),
    (["--teacher-forcing-floor", "0.5"], ["--teacher-forcing-floor only applies with --scheduled-sampling"]),
    (["--scheduled-sampling", "--teacher-forcing", "0.3", "--teacher-forcing-floor", "0.6"],
     ["--teacher-forcing-floor (0.6) must not exceed --teacher-forcing (0.3)"]),
    (["--length-penalty", "nan"], ["argument --length-penalty", "finite"]),
])
def test_bad_decoding_flags_are_one_line_errors(capsys, tmp_path, argv, fragments):
    line = _error(capsys, "--quick", "--out", tmp_path / "out", *argv)
    for fragment in fragments:
        assert fragment in line, line
