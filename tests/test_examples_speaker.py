"""The speaker-id example: a packed LSTM/GRU names the speaker of a Japanese Vowels utterance."""
import gzip
import shutil
from importlib import resources

import pytest

from conftest import example_cli_error

from tinygrad_rnn import examples_support as support

pytest.importorskip("matplotlib")


def run_example(*argv):
    return support.load_example("speaker-id").main([str(a) for a in argv])


def _error(capsys, *argv) -> str:
    return example_cli_error(capsys, "speaker-id", *argv)


def test_tiny_run_writes_its_outputs_and_repeats(tmp_path):
    argv = ["--quick", "--epochs", 2, "--hidden", 8, "--cell", "gru", "--no-bidirectional"]
    first = run_example(*argv, "--out", tmp_path / "a")
    assert (first["train_size"], first["test_size"], len(first["classes"])) == (270, 370, 9)
    assert len(first["losses"]) == len(first["test_curve"]) == 2
    assert sum(map(sum, first["confusion"])) == 370
    for name in ("graph.dot", "training.png", "metrics.json"):
        assert (tmp_path / "a" / name).is_file()
    if shutil.which("dot"):
        assert (tmp_path / "a" / "graph.svg").is_file()
    second = run_example(*argv, "--out", tmp_path / "b")
    assert second["losses"] == first["losses"] and second["test_accuracy"] == first["test_accuracy"]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_short_run_is_far_above_chance(tmp_path, cell):
    metrics = run_example("--quick", "--cell", cell, "--out", tmp_path)  # 8 epochs, 32 units per direction
    assert metrics["chance_accuracy"] == pytest.approx(88 / 370)  # the most frequent test speaker
    assert metrics["test_accuracy"] > 0.9
    assert metrics["losses"][-1] < metrics["losses"][0] / 5


@pytest.fixture
def own_files(tmp_path):
    """The packaged splits written out as a user's own folder (test gzip-compressed, train plain)."""
    folder = tmp_path / "mine"
    folder.mkdir()
    for split, name in (("train", "Vowels_TRAIN.ts"), ("test", "Vowels_TEST.ts.gz")):
        data = (resources.files("tinygrad_rnn.data") / "files" / f"japanese_vowels_{split}.ts.gz").read_bytes()
        (folder / name).write_bytes(data if name.endswith(".gz") else gzip.decompress(data))
    return folder


def test_data_from_a_folder_or_two_files(tmp_path, own_files):
    argv = ["--quick", "--epochs", 1, "--hidden", 4]
    folder = run_example(*argv, "--data", own_files, "--out", tmp_path / "a")
    files = run_example(*argv, "--data", own_files / "Vowels_TRAIN.ts", own_files / "Vowels_TEST.ts.gz",
                        "--out", tmp_path / "b")
    packaged = run_example(*argv, "--out", tmp_path / "c")
    assert folder["losses"] == files["losses"] == packaged["losses"]


def test_bad_data_is_one_line(capsys, tmp_path, own_files):
    out = ["--out", tmp_path / "out"]
    assert "expected a folder or two files" in _error(capsys, "--data", own_files, own_files, own_files, *out)
    assert "is a file: give the folder" in _error(capsys, "--data", own_files / "Vowels_TRAIN.ts", *out)
    assert "no such file" in _error(capsys, "--data", tmp_path / "missing", *out)
    (own_files / "Vowels_TRAIN.ts").write_text("@data\n1,2:3,4:1\n")
    assert "Vowels_TRAIN.ts line 2: expected 12 dimensions" in _error(capsys, "--data", own_files, *out)
    (own_files / "Vowels_TRAIN.ts").write_text("@data\n" + "1:" * 12 + "speaker1\n")
    assert "label '1' is not one of the classes speaker1" in _error(capsys, "--data", own_files, *out)
    assert "expected a finite number >= 0" in _error(capsys, "--noise", "-1", *out)
