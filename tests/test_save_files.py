"""``tr.save`` treats the file system like ``open(path, "wb")`` would, and stays atomic.

* A new file's mode is 0o666 less the umask; a replaced file keeps its mode (and owner, for root).
* A symbolic link is written through: the link stays, its target gets the new checkpoint.
* A read-only file, a FIFO, a folder or a link loop is refused with an error naming the path.
* Whatever fails, the previous file is left whole and no temporary file is left behind.
"""
from __future__ import annotations

import errno
import os
import stat

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import serialization

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes, umask and FIFOs are POSIX features")


def _version(n):
    return {"step": n, "weights": np.full((3, 2), float(n), dtype=np.float32)}


def _assert_version(path, n):
    back = tr.load(path)
    assert back["step"] == n
    np.testing.assert_array_equal(back["weights"], np.full((3, 2), float(n), dtype=np.float32))


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test: ``umask(0o022)``; the old one is restored afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


# ----------------------------------------------------------------------------------------- modes
@posix_only
@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664), (0o000, 0o666)])
def test_a_new_file_honours_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    path = tmp_path / "model.npz"
    tr.save(_version(1), path)
    with open(tmp_path / "plain.bin", "wb"):
        pass
    assert _mode(path) == expected == _mode(tmp_path / "plain.bin")
    _assert_version(path, 1)


@posix_only
def test_replacing_a_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "model.npz"
    tr.save(_version(1), path)
    os.chmod(path, 0o640)
    tr.save(_version(2), path)
    assert _mode(path) == 0o640
    _assert_version(path, 2)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root can give a file away")
def test_root_replacing_a_users_file_keeps_its_owner(tmp_path):
    path = tmp_path / "model.npz"
    tr.save(_version(1), path)
    os.chown(path, 65534, 65534)
    tr.save(_version(2), path)
    info = os.stat(path)
    assert (info.st_uid, info.st_gid) == (65534, 65534)
    _assert_version(path, 2)


# ------------------------------------------------------------------------------------- symlinks
@posix_only
def test_saving_through_a_symbolic_link_writes_its_target(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "links").mkdir()
    target = tmp_path / "runs" / "model.npz"
    link = tmp_path / "links" / "latest.npz"
    tr.save(_version(1), target)
    os.chmod(target, 0o640)
    link.symlink_to(os.path.join("..", "runs", "model.npz"))
    tr.save(_version(2), link)
    assert link.is_symlink() and os.readlink(link) == os.path.join("..", "runs", "model.npz")
    _assert_version(target, 2)
    _assert_version(link, 2)
    assert _mode(target) == 0o640
    assert sorted(os.listdir(tmp_path / "runs")) == ["model.npz"]  # the temporary file was in the target's folder
    assert sorted(os.listdir(tmp_path / "links")) == ["latest.npz"]


@posix_only
def test_a_chain_of_links_and_a_dangling_link(tmp_path):
    target = tmp_path / "model.npz"
    (tmp_path / "b.npz").symlink_to("model.npz")
    (tmp_path / "a.npz").symlink_to("b.npz")
    tr.save(_version(1), tmp_path / "a.npz")  # the link chain ends at a file that does not exist yet
    assert (tmp_path / "a.npz").is_symlink() and (tmp_path / "b.npz").is_symlink() and not target.is_symlink()
    _assert_version(target, 1)
    tr.save(_version(2), tmp_path / "a.npz")
    _assert_version(target, 2)
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "b.npz", "model.npz"]


@posix_only
def test_a_link_into_a_missing_folder_names_the_folder(tmp_path):
    link = tmp_path / "model.npz"
    link.symlink_to(tmp_path / "gone" / "model.npz")
    with pytest.raises(FileNotFoundError, match=r"^save: cannot write .*model\.npz: the directory .*gone does not"):
        tr.save(_version(1), link)
    assert link.is_symlink()


@posix_only
def test_a_symbolic_link_loop_is_refused(tmp_path):
    (tmp_path / "a.npz").symlink_to("b.npz")
    (tmp_path / "b.npz").symlink_to("a.npz")
    with pytest.raises(OSError, match=r"^save: cannot write .*a\.npz: its symbolic links form a loop") as info:
        tr.save(_version(1), tmp_path / "a.npz")
    assert info.value.errno == errno.ELOOP
    assert (tmp_path / "a.npz").is_symlink() and (tmp_path / "b.npz").is_symlink()


# ------------------------------------------------------------------------------ refused targets
@posix_only
@pytest.mark.parametrize("through_link", [False, True])
def test_a_read_only_file_is_refused_and_left_alone(tmp_path, through_link):
    path = tmp_path / "model.npz"
    tr.save(_version(1), path)
    os.chmod(path, 0o444)
    before = path.read_bytes()
    named = path
    if through_link:
        named = tmp_path / "link.npz"
        named.symlink_to("model.npz")
    with pytest.raises(PermissionError, match=rf"^save: cannot write {named}: the file is read-only \(mode 0444\)") \
            as info:
        tr.save(_version(2), named)
    assert info.value.errno == errno.EACCES
    assert path.read_bytes() == before and _mode(path) == 0o444
    assert sorted(os.listdir(tmp_path)) == sorted(["model.npz"] + (["link.npz"] if through_link else []))


@posix_only
def test_a_fifo_is_refused_without_touching_it(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match=r"^save: cannot write .*pipe\.npz: it is not a regular file"):
        tr.save(_version(1), fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["pipe.npz"]


def test_a_folder_and_a_link_to_a_folder_are_refused(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError, match=r"^save: cannot write .*folder: it is a directory"):
        tr.save(_version(1), tmp_path / "folder")
    if os.name == "posix":
        (tmp_path / "link").symlink_to("folder")
        with pytest.raises(IsADirectoryError, match=r"^save: cannot write .*link: it is a directory"):
            tr.save(_version(1), tmp_path / "link")


# ------------------------------------------------------------------------------------ atomicity
@pytest.mark.parametrize("stage", ["fchmod", "fsync", "replace"])
def test_a_failure_at_any_stage_keeps_the_old_file_and_its_mode(tmp_path, monkeypatch, stage):
    path = tmp_path / "model.npz"
    tr.save(_version(1), path)
    if os.name == "posix":
        os.chmod(path, 0o640)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if stage == "fchmod" and not hasattr(os, "fchmod"):
        pytest.skip("no os.fchmod on this platform")
    monkeypatch.setattr(serialization.os, stage, fail)
    with pytest.raises(OSError, match="No space left"):
        tr.save(_version(2), path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.npz"]
    if os.name == "posix":
        assert _mode(path) == 0o640
    _assert_version(path, 1)


def test_the_temporary_file_is_complete_before_it_replaces_the_target(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    tr.save(_version(1), path)
    seen = []
    real_replace = os.replace

    def checking_replace(source, destination):
        seen.append((os.path.dirname(source), os.path.basename(source), os.fspath(destination)))
        _assert_version(source, 2)  # whole and loadable before it takes the target's name
        _assert_version(destination, 1)
        real_replace(source, destination)

    monkeypatch.setattr(serialization.os, "replace", checking_replace)
    tr.save(_version(2), path)
    (folder, name, destination), = seen
    assert folder == str(tmp_path) and name.startswith(".model.npz.") and name.endswith(".tmp")
    assert destination == str(path)
    _assert_version(path, 2)
    assert os.listdir(tmp_path) == ["model.npz"]


def test_an_unwritable_folder_is_reported_with_the_path(tmp_path, monkeypatch):
    real_open = os.open

    def refuse(path, flags, mode=0o777, **kwargs):
        if os.path.dirname(path) == str(tmp_path) and flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(serialization.os, "open", refuse)
    with pytest.raises(PermissionError, match=rf"^save: cannot write {tmp_path / 'model.npz'}: Permission denied"):
        tr.save(_version(1), tmp_path / "model.npz")
    assert os.listdir(tmp_path) == []
