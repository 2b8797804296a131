"""Checkpoints: save/load round trips, atomic writes, and refusing broken, foreign or pickled files."""
import json
import math
import os
import zipfile

import numpy as np
import pytest

import tinygrad_rnn as tr
import tinygrad_rnn.nn as nn
from tinygrad_rnn import CheckpointError, load, save


def _nested():
    return {
        "weights": tr.tensor([[1.0, 2.0], [3.0, 4.0]]),
        "double": tr.tensor([1.5], dtype="float64"),
        "ids": tr.tensor([1, 2, 3]),
        "mask": tr.tensor([True, False]),
        "param": nn.Parameter(tr.zeros(3)),
        "array": np.arange(6, dtype=np.int32).reshape(2, 3),
        "scalar": np.float32(2.5),
        "config": {"hidden": 32, "lr": 1e-3, "name": "lstm", "bidirectional": False, "dropout": None, "nan": math.nan},
        "history": [1, [2.0, "three"], (4, tr.tensor([5.0]))],
        7: "int key",
        ("a", 1): "tuple key",
        "empty": {},
        "looks_like_a_tag": {"$tensor": "a0"},
    }


def test_round_trip_of_nested_structures(tmp_path):
    path = tmp_path / "ckpt.npz"
    obj = _nested()
    save(obj, path)
    back = load(path)
    assert list(back) == list(obj)
    np.testing.assert_array_equal(back["weights"].numpy(), [[1.0, 2.0], [3.0, 4.0]])
    assert isinstance(back["weights"], tr.Tensor) and back["weights"].device == "cpu"
    for key in ("weights", "double", "ids", "mask"):
        assert back[key].dtype == obj[key].dtype
        np.testing.assert_array_equal(back[key].numpy(), obj[key].numpy())
    assert isinstance(back["param"], nn.Parameter) and back["param"].requires_grad
    assert isinstance(back["array"], np.ndarray) and back["array"].dtype == np.int32
    np.testing.assert_array_equal(back["array"], obj["array"])
    assert isinstance(back["scalar"], np.float32) and back["scalar"] == 2.5
    config = back["config"]
    assert {k: v for k, v in config.items() if k != "nan"} == {k: v for k, v in obj["config"].items() if k != "nan"}
    assert math.isnan(config["nan"])
    assert back["history"][:2] == [1, [2.0, "three"]]
    assert isinstance(back["history"][2], tuple) and back["history"][2][0] == 4
    assert back[7] == "int key" and back[("a", 1)] == "tuple key"
    assert back["empty"] == {} and back["looks_like_a_tag"] == {"$tensor": "a0"}
    assert load(path)["ids"].dtype == np.int64  # loads are repeatable


def test_model_state_dict_round_trip(tmp_path):
    tr.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.LayerNorm(4), nn.Linear(4, 3))
    save(model.state_dict(), tmp_path / "model.ckpt")  # any file name: no ".npz" is appended
    assert os.listdir(tmp_path) == ["model.ckpt"]
    tr.manual_seed(1)
    other = nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.LayerNorm(4), nn.Linear(4, 3))
    other.load_state_dict(load(tmp_path / "model.ckpt"))
    idx = tr.tensor([[1, 0, 9]])
    np.testing.assert_array_equal(other(idx).numpy(), model(idx).numpy())


def test_loading_into_a_model_of_another_shape_names_the_key_and_shapes(tmp_path):
    save(nn.Linear(4, 3).state_dict(), tmp_path / "small.npz")
    with pytest.raises(ValueError, match=r"size mismatch for weight: expected shape \(5, 4\), got \(3, 4\)"):
        nn.Linear(4, 5).load_state_dict(load(tmp_path / "small.npz"))


def test_map_location(device, tmp_path):
    t = tr.tensor([1.0, 2.0], device=device)
    save({"t": t}, tmp_path / "c.npz")
    assert load(tmp_path / "c.npz")["t"].device == "cpu"
    assert load(tmp_path / "c.npz", map_location=None)["t"].device == device
    assert load(tmp_path / "c.npz", map_location=device)["t"].device == device


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    save({"step": 1, "w": tr.ones(3)}, path)
    original = path.read_bytes()

    def write_half_then_fail(file, **entries):
        file.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save({"step": 2, "w": tr.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert load(path)["step"] == 1


def test_unsupported_objects_are_refused_with_their_location(tmp_path):
    with pytest.raises(TypeError, match=r"save: obj\['layers'\]\[1\] is a set"):
        save({"layers": [1, {2}]}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match=r"dtype object"):
        save({"a": np.array([object()])}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


def test_missing_truncated_and_foreign_files_name_the_path(tmp_path):
    missing = tmp_path / "missing.npz"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        load(missing)

    good = tmp_path / "good.npz"
    save({"w": tr.ones(100)}, good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(CheckpointError, match=rf"{truncated}.*truncated or corrupted"):
        load(truncated)

    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match=rf"{text} is not a tinygrad_rnn checkpoint"):
        load(text)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=rf"{empty} is not a tinygrad_rnn checkpoint \(an empty file\)"):
        load(empty)

    plain_npz = tmp_path / "plain.npz"
    np.savez(plain_npz, x=np.ones(3))
    with pytest.raises(CheckpointError, match=rf"{plain_npz} is not a tinygrad_rnn checkpoint \(no __structure__ entry\)"):
        load(plain_npz)
    npy = tmp_path / "array.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(CheckpointError, match=rf"{npy} is not a tinygrad_rnn checkpoint"):
        load(npy)
    assert issubclass(CheckpointError, ValueError)


def _structure(document):
    return np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)


def test_corrupted_structure_and_newer_versions_are_refused(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, __structure__=np.frombuffer(b"{not json", dtype=np.uint8))
    with pytest.raises(CheckpointError, match="structure is not valid JSON"):
        load(path)
    np.savez(path, __structure__=_structure({"format": "tinygrad_rnn.checkpoint", "version": 99, "root": None}))
    with pytest.raises(CheckpointError, match="format version 99"):
        load(path)
    np.savez(path, __structure__=_structure({"format": "tinygrad_rnn.checkpoint", "version": 1, "root": {"$tensor": "a0"}}))
    with pytest.raises(CheckpointError, match=r"missing array entry 'a0'"):
        load(path)


class _Exploit:
    """Unpickling this would create a marker file: the test checks it never happens."""

    marker = None

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_inside_an_archive_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    _Exploit.marker = str(marker)
    path = tmp_path / "evil.npz"
    document = {"format": "tinygrad_rnn.checkpoint", "version": 1, "root": {"$array": "a0"}}
    np.savez(path, a0=np.array([_Exploit()], dtype=object), __structure__=_structure(document))
    with pytest.raises(CheckpointError, match=rf"{path} contains pickled data, which is refused"):
        load(path)
    assert not marker.exists()

    raw = tmp_path / "raw.npz"  # an entry that is a bare pickle stream rather than an .npy array
    with zipfile.ZipFile(raw, "w") as archive:
        import pickle

        archive.writestr("a0.npy", pickle.dumps(_Exploit()))
        archive.writestr("__structure__.npy", b"")
    with pytest.raises(CheckpointError, match=str(raw)):
        load(raw)
    assert not marker.exists()
