"""The examples' ``--distributed`` (real ``mpiexec -n 2`` jobs) and ``--export-onnx PATH``.

N processes with batch B each must end with the weights of one process with batch N·B (float32
tolerance), only rank 0 writes, and an exported model must give onnxruntime our outputs.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_rnn as tr
from test_distributed import _mpiexec, _skip_reason
from tinygrad_rnn import examples_support as support

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_mpi = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
needs_onnx = pytest.mark.skipif(
    importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None,
    reason='needs onnx and onnxruntime: pip install "tinygrad_rnn[onnx]"',
)

#: example -> (flags of a short run, the per-process batch flag, the checkpoint it writes)
RUNS = {
    "sequential-digits": (["--quick", "--epochs", "1"], "--batch-size", "model.npz"),
    "char-lstm": (["--quick", "--epochs", "0.1", "--eval-every", "1000", "--sample-length", "10"], "--batch-size",
                  "checkpoint.npz"),
    "seq2seq-addition": (["--quick", "--epochs", "1", "--examples", "600"], "--batch-size", "checkpoint.npz"),
}


def _run(name, out, batch, ranks=None, extra=()):
    flags, batch_flag, _ = RUNS[name]
    command = [sys.executable, os.path.join(REPO, "examples", f"{name}.py"), *flags, batch_flag, str(batch),
               "--out", str(out), *extra]
    if ranks is not None:
        command = [_mpiexec(), "-n", str(ranks), *command, "--distributed"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=REPO)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def _weights(out, name):
    checkpoint = tr.load(os.path.join(out, RUNS[name][2]))
    state = checkpoint["model"]
    return {k: v.numpy() for k, v in state.items()}


@needs_mpi
@pytest.mark.parametrize("name, tolerance", [("sequential-digits", 1e-4), ("char-lstm", 1e-4), ("seq2seq-addition", 2e-3)])
def test_two_processes_with_batch_b_train_like_one_with_batch_2b(name, tolerance, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    _run(name, one, 16)
    done = _run(name, two, 8, ranks=2)
    assert "data-parallel over 2 process(es)" in done.stdout
    assert done.stdout.count("data-parallel over") == 1  # rank 1 prints nothing
    a, b = _weights(one, name), _weights(two, name)
    assert a.keys() == b.keys()
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    assert worst < tolerance, f"{name}: weights differ by {worst:.3g}"
    metrics = json.loads((two / "metrics.json").read_text())
    assert sorted(metrics["outputs"]) == sorted(p.name for p in two.iterdir() if p.is_file())


def test_distributed_flag_in_a_single_process_is_a_world_of_one(tmp_path):
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip('needs mpi4py: pip install "tinygrad_rnn[distributed]"')
    metrics = support.load_example("sequential-digits").main(
        ["--quick", "--epochs", "1", "--distributed", "--out", str(tmp_path / "d")])
    plain = support.load_example("sequential-digits").main(["--quick", "--epochs", "1", "--out", str(tmp_path / "p")])
    assert metrics["losses"] == pytest.approx(plain["losses"], rel=1e-6)


@needs_onnx
@pytest.mark.parametrize("name, flags", [
    ("binary-addition", ["--quick", "--steps", "20"]),
    ("char-lstm", ["--quick", "--epochs", "0.05", "--sample-length", "10"]),
])
def test_export_onnx_writes_a_model_onnxruntime_runs(name, flags, tmp_path):
    import onnxruntime

    path = tmp_path / f"{name}.onnx"
    support.load_example(name).main([*flags, "--out", str(tmp_path / "out"), "--export-onnx", str(path)])
    session = onnxruntime.InferenceSession(str(path))
    feeds = {}
    for spec in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in spec.shape]
        dtype = np.int64 if "int64" in spec.type else np.float32
        feeds[spec.name] = np.ones(shape, dtype=dtype)
    outputs = session.run(None, feeds)
    assert outputs and all(np.isfinite(o).all() for o in outputs)


@needs_onnx
def test_exported_sequential_digits_model_gives_our_scores(tmp_path):
    import onnxruntime

    module = support.load_example("sequential-digits")
    path, out = tmp_path / "digits.onnx", tmp_path / "out"
    module.main(["--quick", "--epochs", "1", "--out", str(out), "--export-onnx", str(path)])
    checkpoint = tr.load(out / "model.npz")
    args = checkpoint["args"]
    model = module.RowReader(args["cell"], args["hidden"], args["layers"], args["bidirectional"])
    model.load_state_dict(checkpoint["model"])
    model.eval()
    images = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    with tr.no_grad():
        ours = model(tr.tensor(images)).numpy()
    (theirs,) = onnxruntime.InferenceSession(str(path)).run(None, {"images": images})
    np.testing.assert_allclose(theirs, ours, atol=1e-5)


@pytest.mark.parametrize("value, message", [("model.txt", "ending in .onnx"), ("/no/such/folder/m.onnx", "does not exist")])
def test_export_onnx_bad_path_is_one_line_exit_2(value, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        support.load_example("sequential-digits").main(["--quick", "--out", str(tmp_path), "--export-onnx", value])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
