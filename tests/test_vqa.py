"""The vqa example: CNN region features and an LSTM question encoder answer questions about digit scenes."""
import shutil

import numpy as np
import pytest

from conftest import example_cli_error

from tinygrad_rnn import examples_support as support
from tinygrad_rnn.data.digit_scenes import QUESTION_TYPES, make_digit_questions, make_digit_scenes

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

EXAMPLE = "vqa"


def run_example(*argv):
    return support.load_example(EXAMPLE).main([str(a) for a in argv])


def assert_learned(metrics):
    assert metrics["accuracy"] > metrics["type_majority_baseline"] + 0.15
    assert metrics["accuracy"] > 3 * metrics["majority_baseline"]
    assert metrics["final_loss"] < 0.75 * metrics["losses"][0]
    assert set(metrics["accuracy_by_type"]) == set(QUESTION_TYPES) == set(metrics["majority_baseline_by_type"])
    assert metrics["accuracy_by_type"]["total"] > 0.9  # "how many digits?" is the easiest question


@pytest.mark.parametrize("attention", [True, False])
def test_quick_run_answers_far_above_the_most_frequent_answer(tmp_path, attention):
    metrics = run_example("--quick", "--attention" if attention else "--no-attention", "--out", tmp_path)
    assert_learned(metrics)
    assert metrics["attention"] is attention and metrics["hops"] == (2 if attention else 0)
    assert metrics["test_size"] == 1600 and metrics["train_size"] == 12800
    assert (tmp_path / "attention.png").is_file() is attention
    for name in ("graph.dot", "training.png", "metrics.json"):
        assert (tmp_path / name).is_file(), name
    if shutil.which("dot"):
        assert (tmp_path / "graph.svg").is_file()


def test_the_baselines_are_the_most_frequent_training_answers():
    vqa = support.load_example(EXAMPLE)
    train_scenes, test_scenes = make_digit_scenes(n_train=300, n_test=200, seed=2)
    train = make_digit_questions(train_scenes, per_scene=3, seed=0)
    test = make_digit_questions(test_scenes, per_scene=3, seed=1)
    overall, per_type = vqa.majority_baselines(train, test)
    common = max(set(train.answers), key=train.answers.count)
    np.testing.assert_array_equal(overall, np.array(test.answers) == common)
    total = QUESTION_TYPES.index("total")
    counts = [a for a, t in zip(train.answers, train.types) if t == total]
    common_total = max(set(counts), key=counts.count)
    rows = test.types == total
    np.testing.assert_array_equal(per_type[rows], np.array(test.answers)[rows] == common_total)
    by_type = vqa.by_type(per_type, test)
    assert by_type["total"] == pytest.approx(np.mean(np.array(test.answers)[rows] == common_total))
    assert by_type["exists"] == pytest.approx(0.5, abs=0.15)  # yes and no are equally common


def test_questions_are_batched_with_their_scenes():
    vqa = support.load_example(EXAMPLE)
    _, scenes = make_digit_scenes(n_train=4, n_test=10, seed=0)
    questions = make_digit_questions(scenes, per_scene=3, seed=0)
    starts = vqa.question_rows(questions, len(scenes))
    rows, (images, scene, tokens, lengths) = vqa.batch_inputs(scenes, questions, starts, np.array([7, 2]), "cpu")
    np.testing.assert_array_equal(rows, [21, 22, 23, 6, 7, 8])
    np.testing.assert_array_equal(scene, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(images.numpy(), scenes.images[[7, 2]])
    np.testing.assert_array_equal(tokens.numpy(), questions.tokens[rows])


def test_bad_flags_are_one_line(capsys, tmp_path):
    out = ["--out", tmp_path]
    assert "--hops only applies with --attention" in example_cli_error(capsys, EXAMPLE, "--hops", 3, *out)
    assert "positive integer" in example_cli_error(capsys, EXAMPLE, "--questions", 0, *out)
    assert "positive integer" in example_cli_error(capsys, EXAMPLE, "--attention", "--hops", "two", *out)
