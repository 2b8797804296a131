"""A learner's mistakes on the command line end with one line on stderr and exit code 2, never a traceback.

Every place the CLI takes a path is tried with a missing file, a folder,
``/dev/null``, an unreadable file, the wrong kind of file, and an output that
cannot be written; every float flag with NaN, infinity and out-of-range
values. Training that diverges stops at the first non-finite loss (exit 1).
Most cases run ``cli.main`` in-process; the reported ones also run in a
subprocess to show the user sees no traceback.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import cli
from tinygrad_rnn import examples_support as support

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(support.available_examples())
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
TEXT = "def add(a, b):\n    return a + b\n\n" * 40


def _error(capsys, *argv, code=2, after_progress=False) -> str:
    """Run ``tinygrad-rnn ARGV`` in-process; check the exit code, one stderr line (after the progress bars
    when ``after_progress``), no traceback; return the line."""
    try:
        result = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        result = exc.code
    err = capsys.readouterr().err
    assert result == code, f"exit code {result!r}, stderr:\n{err}"
    assert "Traceback" not in err, err
    lines = err.splitlines()
    if after_progress:
        lines = lines[-1:]
    assert len(lines) == 1 and err.endswith("\n"), f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("tinygrad-rnn"), lines[0]
    return lines[0]


def _assert_says(line, *fragments):
    for fragment in fragments:
        assert str(fragment) in line, f"{fragment!r} not in {line!r}"


def _subprocess(*argv, cwd):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "tinygrad_rnn.cli", *map(str, argv)], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A text to train on, a text that is not a checkpoint, a folder, and other examples' checkpoints."""
    root = tmp_path_factory.mktemp("cli-errors")
    (root / "corpus.txt").write_text(TEXT, encoding="utf-8")
    (root / "notes.txt").write_text("not a checkpoint\n", encoding="utf-8")
    (root / "one.txt").write_text("x", encoding="utf-8")
    (root / "folder").mkdir()
    support.load_example("min-char-rnn").main(
        ["--quick", "--iters", "2", "--hidden", "4", "--sample-every", "1000", "--data", str(root / "corpus.txt"),
         "--out", str(root / "min-char-rnn")])
    tr.save({"model": {"w": np.zeros(2, np.float32)}, "vocab": {"chars": ["a", "b"]},
             "config": {"cell": "lstm", "hidden": 4, "embed": 2, "digits": 2}}, root / "seq2seq.npz")
    tr.save([1, 2, 3], root / "list.npz")
    return root


# ------------------------------------------------------------------------------ commands and flags
def test_there_is_no_sample_command(capsys, files):
    line = _error(capsys, "sample", "--checkpoint", files / "notes.txt")
    _assert_says(line, "invalid choice: 'sample'", "run")


@pytest.mark.parametrize("argv", [["list", "--bogus"], ["version", "extra"], ["bench", "--bogus"],
                                  ["graph", "stacked", "-o", "x.dot", "--bogus"], ["nope"]])
def test_a_bad_command_line_of_each_command(capsys, argv):
    _error(capsys, *argv)


@pytest.mark.parametrize("name", EXAMPLES)
def test_a_bad_flag_of_each_example(capsys, name):
    _assert_says(_error(capsys, "run", name, "--no-such-flag"), f"tinygrad-rnn run {name}: error:", "--no-such-flag")


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("value, expected", [("nan", "finite"), ("inf", "finite"), ("-inf", "finite"),
                                             ("0", "> 0"), ("-0.1", "> 0"), ("fast", "expected a number")])
def test_every_learning_rate_is_checked_when_parsed(capsys, tmp_path, name, value, expected):
    if "--lr" not in support.load_example(name).build_parser().format_help():
        pytest.skip(f"{name} has no --lr")
    line = _error(capsys, "run", name, "--out", tmp_path / "out", f"--lr={value}")
    _assert_says(line, "argument --lr", expected, value if value != "0" else "0.0")
    assert not (tmp_path / "out").exists()  # refused before anything ran


@pytest.mark.parametrize("name, flag, value, expected", [
    ("min-char-rnn", "--clip", "0", "> 0"),
    ("min-char-rnn", "--val-fraction", "1", "in (0, 1)"),
    ("min-char-rnn", "--val-fraction", "nan", "finite"),
    ("char-lstm", "--dropout", "1", "in [0, 1)"),
    ("char-lstm", "--dropout", "-0.5", "in [0, 1)"),
    ("char-lstm", "--epochs", "0", "> 0"),
    ("char-lstm", "--lr-decay", "0", "> 0"),
    ("char-lstm", "--time-limit", "-1", "> 0"),
    ("char-lstm", "--temperature", "0", "> 0"),
    ("char-lstm", "--temperature", "inf", "finite"),
    ("seq2seq-addition", "--test-fraction", "0", "in (0, 1)"),
    ("seq2seq-addition", "--teacher-forcing", "nan", "[0, 1]"),
    ("vanishing-gradients", "--max-norm", "nan", "finite"),
    ("vanishing-gradients", "--omega", "inf", "finite"),
    ("time-series", "--max-gap-hours", "inf", "finite"),
    ("time-series", "--max-gap-hours", "-1", ">= 0"),
    ("bptt-by-hand", "--h0", "nan", "finite"),
    ("bptt-by-hand", "--y", "inf", "finite"),
    ("bptt-by-hand", "--x", "1,nan,2", "finite"),
    ("bptt-by-hand", "--w", "inf", "finite"),
])
def test_float_flags_refuse_non_finite_and_out_of_range_values(capsys, tmp_path, name, flag, value, expected):
    _assert_says(_error(capsys, "run", name, "--out", tmp_path, f"{flag}={value}"), f"argument {flag}", expected)


def test_a_float_flag_in_range_is_accepted(tmp_path):
    parser = support.load_example("char-lstm").build_parser()
    args = parser.parse_args(["--dropout", "0", "--lr", "1e-3", "--val-fraction", "0.5", "--temperature", "2"])
    assert (args.dropout, args.lr, args.val_fraction, args.temperature) == (0.0, 1e-3, 0.5, 2.0)


# ------------------------------------------------------------------------------------- --data
@pytest.mark.parametrize("name", ["min-char-rnn", "char-lstm"])
@pytest.mark.parametrize("which, expected", [
    ("missing.txt", "no such file"),
    ("folder", "is a folder: expected a file"),
    ("/dev/null", "is not a regular file"),
    ("one.txt", "at least 2 characters"),
])
def test_data_that_is_not_a_text_file(capsys, files, tmp_path, name, which, expected):
    if which == "/dev/null" and not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null")
    path = which if which.startswith("/") else files / which
    _assert_says(_error(capsys, "run", name, "--out", tmp_path, "--data", path), "argument --data", expected, path)


def test_an_unreadable_data_file(capsys, files, tmp_path, monkeypatch):
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(support, "open", refuse, raising=False)
    line = _error(capsys, "run", "min-char-rnn", "--out", tmp_path, "--data", files / "corpus.txt")
    _assert_says(line, "argument --data", "cannot read", "Permission denied")


@pytest.mark.skipif(AS_ROOT or os.name != "posix", reason="root reads any file whatever its mode")
def test_a_data_file_without_read_permission(capsys, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(TEXT)
    secret.chmod(0)
    _assert_says(_error(capsys, "run", "char-lstm", "--out", tmp_path, "--data", secret), "cannot read")


@pytest.mark.parametrize("chars, name, expected", [
    (2, "char-lstm", "too few"),
    (20, "char-lstm", "too few"),
    (20, "min-char-rnn", "too few"),
])
def test_a_text_too_short_to_train_on(capsys, tmp_path, chars, name, expected):
    short = tmp_path / "short.txt"
    short.write_text(TEXT[:chars])
    _assert_says(_error(capsys, "run", name, "--quick", "--out", tmp_path / "out", "--data", short), expected)


def test_a_text_too_short_to_hold_out_any(capsys, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text(TEXT[:40])
    line = _error(capsys, "run", "min-char-rnn", "--quick", "--out", tmp_path / "out", "--data", short,
                  "--seq-len", "5", "--val-fraction", "0.01")
    _assert_says(line, "held-out text has 1 character", "--val-fraction")


# ------------------------------------------------------------------------ checkpoints to read
@pytest.mark.parametrize("flag", [["--resume"], ["sample", "--checkpoint"]])
@pytest.mark.parametrize("which, expected", [
    ("missing.npz", "no such file"),
    ("folder", "is a folder"),
    ("/dev/null", "not a regular file"),
    ("notes.txt", "is not a tinygrad_rnn checkpoint"),
    ("min-char-rnn/checkpoint.npz", "is not a char-lstm checkpoint: it has no 'optim' entry"),
    ("seq2seq.npz", "is not a char-lstm checkpoint"),
    ("list.npz", "is not a char-lstm checkpoint"),
])
def test_char_lstm_refuses_what_is_not_its_checkpoint(capsys, files, tmp_path, flag, which, expected):
    if which == "/dev/null" and not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null")
    path = which if which.startswith("/") else files / which
    line = _error(capsys, "run", "char-lstm", *flag, path, "--quick", "--data", files / "corpus.txt",
                  "--out", tmp_path)
    _assert_says(line, "tinygrad-rnn run char-lstm: error:", expected, path)


def test_an_unreadable_checkpoint(capsys, files, tmp_path, monkeypatch):
    real_load = tr.load

    def refuse(path, *args, **kwargs):
        if str(path).endswith("checkpoint.npz"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(tr, "load", refuse)
    line = _error(capsys, "run", "char-lstm", "sample", "--checkpoint", files / "min-char-rnn" / "checkpoint.npz",
                  "--out", tmp_path)
    _assert_says(line, "argument --checkpoint", "Permission denied")


def test_sample_mode_without_a_checkpoint_in_out(capsys, tmp_path):
    line = _error(capsys, "run", "char-lstm", "sample", "--out", tmp_path)
    _assert_says(line, f"no checkpoint at {tmp_path / 'checkpoint.npz'}", "tinygrad-rnn run char-lstm")


@pytest.mark.parametrize("content, expected", [(b"", "not a tinygrad_rnn checkpoint"),
                                               (b"PK\x03\x04 truncated", "truncated or corrupted")])
def test_sample_mode_with_a_damaged_checkpoint_in_out(capsys, tmp_path, content, expected):
    (tmp_path / "checkpoint.npz").write_bytes(content)
    line = _error(capsys, "run", "char-lstm", "sample", "--out", tmp_path)
    _assert_says(line, "cannot read the checkpoint", expected)


def test_sample_mode_with_another_examples_checkpoint_in_out(capsys, files, tmp_path):
    (tmp_path / "checkpoint.npz").write_bytes((files / "min-char-rnn" / "checkpoint.npz").read_bytes())
    _assert_says(_error(capsys, "run", "char-lstm", "sample", "--out", tmp_path), "is not a char-lstm checkpoint")


# ----------------------------------------------------------------------------------- outputs
@pytest.mark.parametrize("name", ["hello", "min-char-rnn", "char-lstm"])
@pytest.mark.parametrize("which, expected", [
    ("notes.txt", "is not a folder"),
    ("/dev/null", "is not a folder"),
    ("notes.txt/sub", "cannot create the folder"),
])
def test_out_that_cannot_be_a_folder(capsys, files, name, which, expected):
    if which == "/dev/null" and not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null")
    path = which if which.startswith("/") else files / which
    _assert_says(_error(capsys, "run", name, "--out", path), "--out", expected, path)


def test_out_folder_that_cannot_be_written(capsys, tmp_path, monkeypatch):
    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", dir)

    monkeypatch.setattr(support.tempfile, "TemporaryFile", refuse)
    line = _error(capsys, "run", "hello", "--out", tmp_path)
    _assert_says(line, "--out", "cannot write in the folder", "Permission denied")


@pytest.mark.skipif(AS_ROOT or os.name != "posix", reason="root writes in any folder whatever its mode")
def test_out_folder_without_write_permission(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        _assert_says(_error(capsys, "run", "hello", "--out", locked), "cannot write in the folder")
    finally:
        locked.chmod(0o755)


def test_a_write_failing_during_a_run(capsys, tmp_path, monkeypatch):
    """A file problem met half way (a full disk) is one line too, naming the file."""
    import tinygrad_rnn.files

    def full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tinygrad_rnn.files.os, "fsync", full)
    line = _error(capsys, "run", "hello", "--quick", "--steps", "2", "--out", tmp_path, after_progress=True)
    _assert_says(line, "tinygrad-rnn run hello: error: --out: cannot write", str(tmp_path), "No space left on device")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no half-written file is left


@pytest.mark.parametrize("output, expected", [
    ("folder/x.svg", None),
    ("notes.txt/x.dot", "is not a folder"),
    ("missing/x.dot", "does not exist"),
    ("folder", "expected a .svg, .png, .pdf or .dot file"),
    ("x.dot", "is a folder"),
])
def test_graph_output_paths(capsys, files, tmp_path, output, expected):
    (tmp_path / "folder").mkdir()
    (tmp_path / "x.dot").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    if expected is None:  # a good path works
        assert cli.main(["graph", "many-to-one", "-o", str(tmp_path / "folder" / "x.dot")]) == 0
        capsys.readouterr()
        return
    _assert_says(_error(capsys, "graph", "many-to-one", "-o", tmp_path / output), "tinygrad-rnn graph", expected)


def test_graph_output_that_cannot_be_written(capsys, tmp_path, monkeypatch):
    import tinygrad_rnn.files

    def refuse(descriptor):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tinygrad_rnn.files.os, "fsync", refuse)  # fails half way through the write
    line = _error(capsys, "graph", "many-to-one", "-o", tmp_path / "x.dot")
    _assert_says(line, f"-o: cannot write {tmp_path / 'x.dot'}: Permission denied")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(AS_ROOT or os.name != "posix", reason="root writes in any folder whatever its mode")
def test_graph_into_a_folder_without_write_permission(capsys, tmp_path):
    tmp_path.chmod(0o555)
    try:
        _assert_says(_error(capsys, "graph", "many-to-one", "-o", tmp_path / "x.dot"), "-o: cannot write")
    finally:
        tmp_path.chmod(0o755)


@pytest.mark.parametrize("value, expected", [("0", "positive integer"), ("-3", "positive integer"),
                                             ("many", "positive integer")])
def test_graph_max_nodes(capsys, tmp_path, value, expected):
    _assert_says(_error(capsys, "graph", "many-to-one", "--max-nodes", value, "-o", tmp_path / "x.dot"),
                 "argument --max-nodes", expected)


def test_list_without_an_examples_folder(capsys, monkeypatch):
    def missing():
        raise FileNotFoundError("cannot find the examples: reinstall with pip install .")

    monkeypatch.setattr(support, "examples_dir", missing)
    _assert_says(_error(capsys, "list"), "tinygrad-rnn list: error: cannot find the examples")


def test_an_examples_own_message_becomes_one_line_with_exit_2(capsys, tmp_path):
    line = _error(capsys, "run", "seq2seq-addition", "--quick", "--bidirectional", "--hidden", "3", "--out", tmp_path)
    assert line == "tinygrad-rnn run seq2seq-addition: error: --bidirectional needs an even --hidden, got 3"


# --------------------------------------------------------------------------- diverging training
def test_training_stops_at_the_first_non_finite_loss(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "hello", "--quick", "--lr", "3e38", "--out", str(tmp_path)])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("tinygrad-rnn run hello: error: the training loss is nan at step 2"), last
    assert "--lr" in last
    assert not (tmp_path / "metrics.json").exists()


def test_check_loss_names_the_step(capsys, tmp_path):
    run = support.start(support.example_parser(str(tmp_path / "demo.py"), "Demo."), ["--out", str(tmp_path)])
    assert run.check_loss(tr.tensor(1.5)) == 1.5
    assert run.check_loss(2.5, step=7) == 2.5
    for bad in (float("nan"), float("inf"), tr.tensor(float("-inf"))):
        with pytest.raises(SystemExit) as info:
            run.check_loss(bad)
        assert info.value.code == 1
        line = capsys.readouterr().err.strip()
        assert line.startswith("tinygrad-rnn run demo: error: the training loss is") and "at step" in line
    with pytest.raises(SystemExit):
        run.check_loss(float("nan"), step=41)
    assert "at step 41" in capsys.readouterr().err


# ------------------------------------------------------------------ what the user sees (subprocess)
@pytest.mark.parametrize("case", ["resume another example", "sample a text file", "lr nan", "max-nodes 0",
                                  "one character", "data folder"])
def test_the_reported_cases_show_no_traceback(files, tmp_path, case):
    argv = {
        "resume another example": ["run", "char-lstm", "--quick", "--data", files / "corpus.txt",
                                   "--resume", files / "min-char-rnn" / "checkpoint.npz", "--out", tmp_path],
        "sample a text file": ["run", "char-lstm", "sample", "--checkpoint", files / "notes.txt", "--out", tmp_path],
        "lr nan": ["run", "min-char-rnn", "--lr", "nan", "--out", tmp_path],
        "max-nodes 0": ["graph", "many-to-one", "--max-nodes", "0", "-o", tmp_path / "x.svg"],
        "one character": ["run", "min-char-rnn", "--data", files / "one.txt", "--out", tmp_path],
        "data folder": ["run", "char-lstm", "--data", files / "folder", "--out", tmp_path],
    }[case]
    result = _subprocess(*argv, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("tinygrad-rnn"), result.stderr


def test_diverging_training_in_a_subprocess(tmp_path):
    result = _subprocess("run", "min-char-rnn", "--quick", "--lr", "3e38", "--data", REPO / "README.md",
                         "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("tinygrad-rnn run min-char-rnn: error: the training loss is") and "at step" in last
    assert not (tmp_path / "metrics.json").exists()


def _run_without(package, *argv):
    """Run the CLI in a fresh interpreter where importing ``package`` fails as if it were not installed."""
    code = (
        "import builtins, sys\n"
        "real = builtins.__import__\n"
        "def fake(name, *a, **k):\n"
        f"    if name.split('.')[0] == {package!r}:\n"
        f"        raise ModuleNotFoundError('No module named ' + repr(name), name=name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = fake\n"
        "from tinygrad_rnn import cli\n"
        f"sys.exit(cli.main({list(argv)!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("package, example, fragment", [
    ("sklearn", "sequential-digits", "scikit-learn"),
    ("matplotlib", "hello", "matplotlib, which is not installed"),
])
def test_a_missing_optional_package_is_one_line(tmp_path, package, example, fragment):
    result = _run_without(package, "run", example, "--quick", "--out", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr and f"tinygrad-rnn run {example}: error:" in result.stderr


def test_graph_output_is_written_like_save(tmp_path):
    """``graph -o`` writes through a symbolic link, refuses a read-only file and leaves no temporary file."""
    target = tmp_path / "real.svg"
    target.write_text("old")
    link = tmp_path / "link.svg"
    link.symlink_to(target)
    assert cli.main(["graph", "many-to-one", "--steps", "2", "-o", str(link)]) == 0
    assert link.is_symlink() and target.read_text().lstrip().startswith(("<?xml", "<svg"))
    target.chmod(0o444)
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["graph", "many-to-one", "--steps", "2", "-o", str(target)])
    assert excinfo.value.code == 2 and target.read_text().lstrip().startswith(("<?xml", "<svg"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.svg", "real.svg"]
