"""The Japanese Vowels data shipped in the package, and the ``.ts`` reader's errors on malformed files."""
import gzip
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from tinygrad_rnn.data import VOWELS_FEATURES, load_japanese_vowels, parse_ts, read_ts

SHARED = Path("/work/shared/data")
HEADER = "# a comment\n@problemName Tiny\n@dimensions 2\n@classLabel true a b\n@data\n"


@pytest.fixture(scope="module")
def vowels():
    return {split: load_japanese_vowels(split) for split in ("train", "test")}


def test_counts_lengths_features_and_classes(vowels):
    train, test = vowels["train"], vowels["test"]
    assert (len(train.sequences), len(test.sequences)) == (270, 370)
    assert (len(train.labels), len(test.labels)) == (270, 370)
    lengths = [len(s) for split in vowels.values() for s in split.sequences]
    assert min(lengths) == 7 and max(lengths) == 29
    for split in vowels.values():
        assert split.classes == tuple("123456789")
        assert split.labels.dtype == np.int64
        for s in split.sequences:
            assert s.dtype == np.float32 and s.ndim == 2 and s.shape[1] == VOWELS_FEATURES == 12
            assert np.isfinite(s).all()
    assert set(train.labels) == set(test.labels) == set(range(9))
    assert np.bincount(train.labels).tolist() == [30] * 9  # 30 utterances per speaker
    assert np.bincount(test.labels).tolist() == [31, 35, 88, 44, 29, 24, 40, 50, 29]
    assert train.labels[:30].tolist() == [0] * 30  # the file lists the speakers in order


@pytest.mark.parametrize("split", ["train", "test"])
def test_packaged_files_equal_the_shared_originals(split):
    original = SHARED / f"JapaneseVowels_{split.upper()}.ts"
    if not original.is_file():
        pytest.skip(f"{original} is not on this machine")
    packaged = resources.files("tinygrad_rnn.data") / "files" / f"japanese_vowels_{split}.ts.gz"
    assert gzip.decompress(packaged.read_bytes()) == original.read_bytes()
    ours, theirs = load_japanese_vowels(split), load_japanese_vowels(split, path=original)
    assert np.array_equal(ours.labels, theirs.labels)
    assert all(np.array_equal(a, b) for a, b in zip(ours.sequences, theirs.sequences))
    first = original.read_text().split("@data\n")[1].splitlines()[0].split(":")
    assert ours.sequences[0][:, 0].tolist() == pytest.approx([float(v) for v in first[0].split(",")], rel=1e-6)


def test_a_folder_of_users_files_compressed_or_not(tmp_path, vowels):
    text = gzip.decompress((resources.files("tinygrad_rnn.data") / "files" / "japanese_vowels_test.ts.gz")
                           .read_bytes())
    (tmp_path / "Mine_TEST.ts.gz").write_bytes(gzip.compress(text))
    (tmp_path / "Mine_TRAIN.ts").write_bytes(b"@classLabel true 1 2 3 4 5 6 7 8 9\n@data\n"
                                             + b"1,2:" * 11 + b"3,4:9\n")
    test = load_japanese_vowels("test", path=tmp_path)
    assert np.array_equal(test.labels, vowels["test"].labels)
    train = load_japanese_vowels("train", path=tmp_path)
    assert train.labels.tolist() == [8] and train.sequences[0].tolist() == [[1.0] * 11 + [3.0], [2.0] * 11 + [4.0]]
    (tmp_path / "other_train.ts").write_text("")
    with pytest.raises(FileNotFoundError, match=r"one file named \*_TRAIN.ts .* found Mine_TRAIN.ts, other_train.ts"):
        load_japanese_vowels("train", path=tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_japanese_vowels("train", path=tmp_path / "missing.ts")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_japanese_vowels("validation")


def test_classes_from_the_header_from_an_argument_or_sorted():
    data = parse_ts(HEADER + "1,2:3,4:b\n5:6:a\n")
    assert data.classes == ("a", "b") and data.labels.tolist() == [1, 0]
    assert data.sequences[0].tolist() == [[1, 3], [2, 4]]
    assert parse_ts("@data\n1:2:10\n1:2:9\n").classes == ("9", "10")  # numeric order
    assert parse_ts("@data\n1:2:b\n", classes=["b", "c"]).labels.tolist() == [0]


@pytest.mark.parametrize("line, expected", [
    ("1,2:3,4:5,6:a", "line 6: expected 2 dimensions separated by ':' before the label, got 3"),
    ("1,2:a", "line 6: expected 2 dimensions separated by ':' before the label, got 1"),
    ("1,2,3:4,5:a", "line 6: dimension 2 has 2 values but dimension 1 has 3"),
    ("1,2:3,x:a", "line 6: dimension 2, value 2: expected a finite number, got 'x'"),
    ("1,2:3,nan:a", "line 6: dimension 2, value 2: expected a finite number, got 'nan'"),
    ("1,2:3,?:a", "line 6: dimension 2, value 2: expected a finite number, got '?'"),
    ("1,2::a", "line 6: dimension 2, value 1: expected a finite number, got ''"),
    ("1,2:3,4", "line 6: missing label"),
    ("1,2:3,4:", "line 6: missing label"),
    ("1,2:3,4:c", "line 6: label 'c' is not one of the classes a b"),
])
def test_malformed_lines_name_the_file_and_line(tmp_path, line, expected):
    path = tmp_path / "bad.ts"
    path.write_text(HEADER + line + "\n")
    with pytest.raises(ValueError, match=re.escape(f"read_ts: {path} {expected}")):
        read_ts(path)


@pytest.mark.parametrize("text, expected", [
    ("", "has no @data line"),
    ("@data\n\n", "holds no sequences after @data"),
    ("1,2:a\n", "line 1: expected a '#' comment, an '@' header line or @data"),
    ("@classLabel false\n@data\n1:2\n", "has no class labels"),
    ("@dimensions two\n@data\n1:a\n", "@dimensions must be a positive integer"),
])
def test_malformed_headers(text, expected):
    with pytest.raises(ValueError, match=expected):
        parse_ts(text, source="mine.ts")


def test_the_vowels_loader_wants_12_features_and_readable_files(tmp_path):
    (tmp_path / "three.ts").write_text("@dimensions 3\n@data\n1:2:3:a\n")
    with pytest.raises(ValueError, match="declares @dimensions 3, expected 12"):
        load_japanese_vowels("train", path=tmp_path / "three.ts")
    (tmp_path / "short.ts").write_text("@data\n1:2:3:1\n")
    with pytest.raises(ValueError, match="short.ts line 2: expected 12 dimensions"):
        load_japanese_vowels("train", path=tmp_path / "short.ts")
    (tmp_path / "x_TRAIN.ts.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="cannot decompress"):
        load_japanese_vowels("train", path=tmp_path)
    (tmp_path / "latin.ts").write_bytes(b"@data\n\xe9:1\n")
    with pytest.raises(ValueError, match="is not UTF-8 text"):
        read_ts(tmp_path / "latin.ts")
