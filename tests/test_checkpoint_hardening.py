"""Checkpoints under attack: interrupted saves, damaged files, foreign files, pickles, and wrong models.

* A save that fails at any point (while encoding, after any number of bytes,
  at fsync, at the rename, or when the process is killed) leaves the previous
  checkpoint loadable and unchanged.
* Every truncation and every corrupted byte of a checkpoint gives a
  ``CheckpointError`` naming the path, or (for bytes the format does not
  depend on, e.g. a timestamp) the same content: never another exception,
  never different data.
* Loading never unpickles: a pickle tripwire stays untouched.
* Loading into a model of another shape names the keys and shapes.
"""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import CheckpointError, load, nn, optim, save
from tinygrad_rnn import serialization

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _checkpoint(version):
    tr.manual_seed(version)
    model = nn.LSTM(3, 4)
    return {"model": model.state_dict(), "step": version, "note": f"version {version}"}


def _assert_is_version(path, version):
    back = load(path)
    expected = _checkpoint(version)
    assert back["step"] == version and back["note"] == f"version {version}"
    for key, value in expected["model"].items():
        np.testing.assert_array_equal(back["model"][key].numpy(), value.numpy())


class _Crash(Exception):
    """Stands for whatever stops a save half way (a full disk, a dying process)."""


class _CrashingFile:
    """A file object that writes ``budget`` bytes and then fails."""

    def __init__(self, file, budget):
        self.file, self.budget = file, budget

    def write(self, data):
        data = bytes(data)
        if len(data) > self.budget:
            self.file.write(data[: self.budget])
            self.file.flush()
            raise _Crash(f"crashed after writing {self.budget} more bytes")
        self.budget -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


# --------------------------------------------------------------------------------- atomic saves
@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.05, 0.3, 0.5, 0.9, 0.999])
def test_a_save_interrupted_after_any_number_of_bytes_leaves_the_previous_file(tmp_path, monkeypatch, fraction):
    path = tmp_path / "model.npz"
    save(_checkpoint(1), path)
    before = path.read_bytes()
    budget = int(fraction * len(before))  # the next version has the same layout and size
    real_fdopen = os.fdopen
    monkeypatch.setattr(serialization.os, "fdopen", lambda fd, mode: _CrashingFile(real_fdopen(fd, mode), budget))
    with pytest.raises(_Crash):
        save(_checkpoint(2), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]  # the partial temporary file was removed
    _assert_is_version(path, 1)


@pytest.mark.parametrize("stage", ["encode", "fsync", "replace", "keyboard interrupt"])
def test_a_save_failing_at_each_stage_leaves_the_previous_file(tmp_path, monkeypatch, stage):
    path = tmp_path / "model.npz"
    save(_checkpoint(1), path)
    before = path.read_bytes()
    new = _checkpoint(2)
    if stage == "encode":
        new["extra"] = [1, 2, {"bad": object()}]
        expected = TypeError
    else:
        def fail(*args, **kwargs):
            raise KeyboardInterrupt() if stage == "keyboard interrupt" else OSError(28, "No space left on device")

        monkeypatch.setattr(serialization.os, "replace" if stage == "replace" else "fsync", fail)
        expected = KeyboardInterrupt if stage == "keyboard interrupt" else OSError
    with pytest.raises(expected):
        save(new, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]
    _assert_is_version(path, 1)


_WRITER = """
import sys
import numpy as np
import tinygrad_rnn as tr
path = sys.argv[1]
big = np.arange(2_000_000, dtype=np.float64)
version = 0
print("ready", flush=True)
while True:
    version += 1
    tr.save({"version": version, "a": big + version, "b": big - version}, path)
"""


def test_a_process_killed_while_saving_leaves_a_loadable_checkpoint(tmp_path):
    """SIGKILL a process that keeps overwriting a 32 MB checkpoint: what is on disk is always a whole version."""
    path = tmp_path / "model.npz"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    for delay in (0.15, 0.4):
        child = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, env=env)
        try:
            assert child.stdout.readline().strip() == b"ready"
            deadline = time.monotonic() + 30
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(delay)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        back = load(path)
        version = back["version"]
        assert version >= 1
        assert back["a"][0] == version and back["b"][0] == -version and back["a"][-1] == 1_999_999 + version
    # a killed process cannot clean up: at most its one temporary file is left next to the checkpoint
    assert all(name == "model.npz" or name.endswith(".tmp") for name in os.listdir(tmp_path))


# ------------------------------------------------------------------------------ damaged files
def _load_outcome(path, reference):
    """'error' (a CheckpointError naming the path) or 'same' (identical content); anything else fails."""
    try:
        back = load(path)
    except CheckpointError as exc:
        assert str(path) in str(exc), str(exc)
        return "error"
    assert back["step"] == reference["step"] and back["note"] == reference["note"]
    for key, value in reference["model"].items():
        np.testing.assert_array_equal(back["model"][key].numpy(), value.numpy())
    return "same"


def test_every_truncation_is_an_error_naming_the_path(tmp_path):
    good = tmp_path / "good.npz"
    save(_checkpoint(1), good)
    data = good.read_bytes()
    bad = tmp_path / "truncated.npz"
    outcomes = set()
    for cut in list(range(0, len(data), 5)) + [len(data) - 1]:
        bad.write_bytes(data[:cut])
        outcomes.add(_load_outcome(bad, _checkpoint(1)))
    assert outcomes == {"error"}


def test_every_corrupted_byte_is_an_error_or_harmless(tmp_path):
    good = tmp_path / "good.npz"
    reference = _checkpoint(1)
    save(reference, good)
    data = good.read_bytes()
    bad = tmp_path / "corrupted.npz"
    counts = {"error": 0, "same": 0}
    for position in range(0, len(data), 3):  # every third byte: each field of every header and entry
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        bad.write_bytes(bytes(damaged))
        counts[_load_outcome(bad, reference)] += 1
    # the array data, their headers and the structure are all checked (CRC-32, then the format)
    assert counts["error"] > 0.8 * sum(counts.values()), counts


@pytest.mark.parametrize("kind", ["text", "json", "zip of text", "npy", "plain npz", "npz of strings"])
def test_files_that_are_not_checkpoints_are_refused_naming_the_path(tmp_path, kind):
    path = tmp_path / f"not-a-checkpoint.{kind.replace(' ', '-')}"
    if kind == "text":
        path.write_text("epoch 3 loss 1.23\n")
    elif kind == "json":
        path.write_text('{"format": "tinygrad_rnn.checkpoint", "version": 1, "root": null}')
    elif kind == "zip of text":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("readme.txt", "hello")
    elif kind == "npy":
        with open(path, "wb") as file:
            np.save(file, np.ones(3))
    elif kind == "plain npz":
        with open(path, "wb") as file:
            np.savez(file, weight=np.ones((2, 2)))
    else:
        with open(path, "wb") as file:
            np.savez(file, __structure__=np.array(["not", "bytes"]))
    with pytest.raises(CheckpointError) as excinfo:
        load(path)
    assert str(path) in str(excinfo.value)
    assert str(excinfo.value).startswith("load: ")


# -------------------------------------------------------------------------------- never unpickle
class _Exploit:
    """Unpickling this creates a marker file."""

    marker = None

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def pickle_tripwire(monkeypatch):
    """Fail the test if anything calls the unpickler while the test runs."""
    calls = []

    def tripped(*args, **kwargs):
        calls.append(args)
        raise AssertionError("the unpickler was called")

    monkeypatch.setattr(pickle, "load", tripped)
    monkeypatch.setattr(pickle, "loads", tripped)
    monkeypatch.setattr(pickle, "Unpickler", tripped)
    yield calls
    assert calls == []


def test_loading_a_checkpoint_never_unpickles(tmp_path, pickle_tripwire):
    path = tmp_path / "model.npz"
    save(_checkpoint(1), path)
    _assert_is_version(path, 1)


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_pickled_files_are_refused_without_running_them(tmp_path, kind):
    marker = tmp_path / "pwned"
    _Exploit.marker = str(marker)
    path = tmp_path / "model.pt"
    if kind == "pickle":
        with open(path, "wb") as file:
            pickle.dump({"model": _Exploit()}, file)
    else:
        torch = pytest.importorskip("torch")
        torch.save({"model": _Exploit()}, path)  # a zip archive holding data.pkl
    with pytest.raises(CheckpointError) as excinfo:
        load(path)
    assert str(path) in str(excinfo.value)
    assert not marker.exists()


# ----------------------------------------------------------------------------- the wrong model
def test_loading_into_a_model_of_another_shape_names_every_key_and_shape(tmp_path):
    path = tmp_path / "model.npz"
    save(nn.GRU(3, 4, num_layers=2).state_dict(), path)
    bigger = nn.GRU(3, 8, num_layers=2)
    with pytest.raises(ValueError) as excinfo:
        bigger.load_state_dict(load(path))
    message = str(excinfo.value)
    assert message.startswith("load_state_dict for GRU: size mismatch for ")
    for key, (expected, got) in {
        "weight_ih_l0": ((24, 3), (12, 3)), "weight_hh_l0": ((24, 8), (12, 4)), "bias_ih_l0": ((24,), (12,)),
        "weight_ih_l1": ((24, 8), (12, 4)), "bias_hh_l1": ((24,), (12,)),
    }.items():
        assert f"{key}: expected shape {expected}, got {got}" in message
    before = [p.numpy().copy() for p in bigger.parameters()]
    for p, b in zip(bigger.parameters(), before):  # nothing was half-loaded
        np.testing.assert_array_equal(p.numpy(), b)

    shallower = nn.GRU(3, 4, num_layers=1)
    unexpected = r"unexpected keys \['weight_ih_l1', 'weight_hh_l1', 'bias_ih_l1', 'bias_hh_l1'\]"
    with pytest.raises(KeyError, match=unexpected):
        shallower.load_state_dict(load(path))


def test_optimizer_state_of_another_model_names_the_state_and_shapes(tmp_path):
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters())
    model(tr.randn(4, 3)).sum().backward()
    opt.step()
    path = tmp_path / "opt.npz"
    save(opt.state_dict(), path)
    other = optim.Adam(nn.Linear(3, 5).parameters())
    with pytest.raises(ValueError, match=r"^Adam\.load_state_dict: state 'exp_avg' of parameter 0 has shape \(2, 3\), "
                                         r"but the parameter has shape \(5, 3\)"):
        other.load_state_dict(load(path))
    fewer = optim.Adam([nn.Parameter(tr.zeros(2, 3))])
    with pytest.raises(ValueError, match=r"parameter group 0 has 2 parameter\(s\) in the state dict but 1"):
        fewer.load_state_dict(load(path))
