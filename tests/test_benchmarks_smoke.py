"""Smoke tests of the benchmarks: every benchmark's framework model computes what its baseline computes
(at reduced sizes), the fast paths added for them equal the simple paths, and ``tinygrad-rnn bench``
runs. No timing is asserted anywhere.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import tinygrad_rnn as tr  # noqa: E402
from benchmarks import bench_l, bench_overhead, bench_s  # noqa: E402
from benchmarks.baselines import MinCharRNNNumpy, MinCharRNNStepwiseNumpy  # noqa: E402
from benchmarks.common import Result, summary_table  # noqa: E402
from tinygrad_rnn import cli, nn  # noqa: E402
from tinygrad_rnn.ops import losses as loss_ops  # noqa: E402
from tinygrad_rnn.ops import rnn as fused_rnn  # noqa: E402


# ------------------------------------------------------------------ each benchmark computes its baseline's math
@pytest.mark.parametrize("baseline", [MinCharRNNNumpy, MinCharRNNStepwiseNumpy])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_s_framework_model_matches_min_char_rnn(dtype, baseline):
    # data_length=20 with seq_length=6 wraps the stream (and resets the hidden state) at the 4th step
    diffs = bench_s.check(steps=5, dtype=dtype, baseline=baseline, hidden_size=16, seq_length=6, data_length=20)
    assert diffs["loss_rel"] <= (1e-10 if dtype == np.float64 else 1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_l_framework_model_matches_batched_numpy_bptt(dtype):
    diffs = bench_l.check(steps=2, dtype=dtype, T=30, batch_size=3)
    assert diffs["weight_abs"] <= (1e-10 if dtype == np.float64 else 1e-5)


def test_l_matches_baseline_when_bptt_runs_in_blocks(monkeypatch):
    monkeypatch.setattr(fused_rnn, "_block_steps", lambda T, B, H: 4)  # 30 steps -> 8 blocks, the last short
    diffs = bench_l.check(steps=2, dtype=np.float64, T=30, batch_size=3)
    assert diffs["loss_rel"] <= 1e-10 and diffs["weight_abs"] <= 1e-10


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_m_framework_model_matches_torch(dtype):
    pytest.importorskip("torch")
    from benchmarks import bench_m

    diffs = bench_m.check(steps=2, dtype=dtype, hidden_size=12, batch_size=3, seq_length=5)
    assert diffs["loss_rel"] <= (1e-9 if dtype == np.float64 else 1e-5)


def test_gpu_models_build_and_agree_on_the_cpu():
    pytest.importorskip("torch")
    from benchmarks import gpu

    diffs = gpu.check("large", device="cpu", steps=2, dtype=np.float64, hidden_size=8, batch_size=2, seq_length=4)
    assert diffs["loss_rel"] <= 1e-9
    ref, fw = gpu.build_pair("M", "cpu", hidden_size=8, batch_size=2, seq_length=4)
    assert (ref.hidden_size, ref.batch_size, ref.seq_length) == (8, 2, 4)
    assert fw.model.lstm.hidden_size == 8 and fw.model.lstm.num_layers == 2
    if not gpu.cuda_available():
        assert gpu.run() == []


def test_overhead_ops_match_numpy():
    bench_overhead.check()
    loops = bench_overhead.loops("matmul", n=3)
    assert set(loops) == {"numpy", "no_grad", "recording"}
    for loop in loops.values():
        loop()


# ------------------------------------------------------------------ fast paths equal the simple paths
def _rnn_grads(kind, impl, frozen=(), block_steps=None, monkeypatch=None, **options):
    """Values and gradients of a bidirectional float64 layer after a weighted-sum backward."""
    if block_steps is not None:
        monkeypatch.setattr(fused_rnn, "_block_steps", lambda T, B, H: block_steps)
    tr.manual_seed(3)
    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](
        3, 4, num_layers=2, bidirectional=True, impl=impl, **options
    ).double()
    for name in frozen:
        getattr(layer, name).requires_grad_(False)
    rng = np.random.default_rng(0)
    x = tr.Tensor(rng.standard_normal((7, 2, 3)), requires_grad=True)
    out, _ = layer(x)
    weights = tr.Tensor(rng.standard_normal(out.shape))
    (out * weights).sum().backward()
    grads = {name: p.grad.numpy() for name, p in layer.named_parameters() if p.grad is not None}
    grads["x"] = x.grad.numpy()
    return out.numpy(), grads


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_backward_in_blocks_equals_composed(monkeypatch, nonlinearity):
    expected_out, expected = _rnn_grads("rnn", "composed", nonlinearity=nonlinearity)
    out, grads = _rnn_grads("rnn", "fused", block_steps=3, monkeypatch=monkeypatch, nonlinearity=nonlinearity)
    np.testing.assert_allclose(out, expected_out, rtol=1e-12, atol=1e-12)
    assert grads.keys() == expected.keys()
    for name in expected:
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("frozen", [("bias_hh_l0",), ("bias_ih_l1_reverse",), ("weight_ih_l0", "bias_ih_l0")])
def test_fused_gradients_with_frozen_parameters_equal_composed(kind, frozen):
    _, expected = _rnn_grads(kind, "composed", frozen)
    _, grads = _rnn_grads(kind, "fused", frozen)
    assert grads.keys() == expected.keys()
    assert not set(frozen) & grads.keys()
    for name in expected:
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2)])
def test_cross_entropy_fast_path_equals_general_path(reduction, weighted, smoothing, shape):
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal(shape)
    t_np = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    g_np = rng.standard_normal((shape[0],) + shape[2:])
    results = []
    for all_counted in (False, True):
        x = tr.Tensor(x_np, requires_grad=True)
        extra = [tr.Tensor(np.array([0.2, 1.0, 3.0, 0.7]))] if weighted else []
        loss = loss_ops.CrossEntropy.apply(
            x, tr.Tensor(t_np), *extra, ignore_index=-100, reduction=reduction, label_smoothing=smoothing,
            all_counted=all_counted,
        )
        loss.backward(tr.Tensor(g_np) if reduction == "none" else None)
        results.append((loss.numpy(), x.grad.numpy()))
    (loss_a, grad_a), (loss_b, grad_b) = results
    np.testing.assert_allclose(loss_b, loss_a, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad_b, grad_a, rtol=1e-12, atol=1e-14)


def _skips_ignore_mask(x, labels, **options):
    """Run F.cross_entropy; True when its op took the fast path (no ignore mask saved)."""
    loss = nn.functional.cross_entropy(x, tr.Tensor(np.array(labels)), **options)
    return loss.grad_fn.saved[3] is None


def test_cross_entropy_takes_the_fast_path_only_when_no_target_is_ignored():
    x = tr.Tensor(np.zeros((3, 4)), requires_grad=True)
    assert _skips_ignore_mask(x, [0, 3, 1])
    assert not _skips_ignore_mask(x, [0, -100, 1])
    assert not _skips_ignore_mask(x, [0, 3, 1], ignore_index=2)
    with pytest.raises(IndexError, match="target value 4 is out of range"):
        _skips_ignore_mask(x, [0, 4, 1])


# ------------------------------------------------------------------ reporting and the command line
def test_result_verdicts_and_summary():
    ok = Result("S", "time", 0.75, 0.8, "x", "table", ["note"])
    miss = Result("overhead add", "us", 6.5, 5.0, "us")
    assert ok.passed and ok.verdict == "PASS" and "0.75x (target <= 0.8x)" in ok.report()
    assert not miss.passed and miss.verdict == "MISS" and miss.figure() == "+6.50 us (target <= 5 us)"
    summary = summary_table([ok, miss]).splitlines()
    assert summary[2] == "| S | time | 0.75x | <= 0.8x | PASS |"
    assert summary[3] == "| overhead add | us | +6.50 us | <= 5 us | MISS |"


def test_cli_bench_quick_runs_overhead_and_s():
    code = (
        "import sys; from tinygrad_rnn.cli import main; "
        "sys.exit(main(['bench', 'overhead', 's', '--quick']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1" in out
    assert "== S: min-char-rnn step" in out and "same result as the baseline" in out
    assert "CPU time per step (thread_time medians of 3 interleaved rounds): numpy" in out
    for op in ("add", "mul", "matmul", "tanh"):
        assert f"== overhead {op}:" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and line.endswith(("| PASS |", "| MISS |"))]
    assert len(rows) == 5


def test_cli_bench_rejects_an_unknown_benchmark(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "XL"])
    assert exit_info.value.code == 2
    assert "unknown benchmark 'XL'" in capsys.readouterr().err


def test_cli_bench_without_a_checkout_says_so(monkeypatch, capsys):
    monkeypatch.setattr(Path, "is_file", lambda self: False)
    assert cli.main(["bench", "S"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no benchmarks/ folder" in err[0]


def test_captured_char_lstm_trains_like_the_uncaptured_one():
    """benchmarks.gpu's captured step (tr.cuda.graphed) on the hostless backend, whose capture is emulated."""
    pytest.importorskip("torch")
    from benchmarks import gpu

    diffs = gpu.check_captured("M", "hostless", replays=3, tolerance=1e-5, hidden_size=8, batch_size=2, seq_length=4)
    assert diffs["loss_rel"] <= 1e-5 and diffs["weight_abs"] <= 1e-5


def _choose_in_child(**env):
    import os

    code = ("import os; from benchmarks.blas_kernels import choose_openblas_kernels as c; "
            "print(c()); print(os.environ.get('OPENBLAS_CORETYPE', ''))")
    full = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "TINYGRAD_RNN_BENCH_BLAS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(full, **env), cwd=str(REPO_ROOT))
    note, chosen = out.stdout.splitlines()
    return note, chosen


def test_openblas_kernels_are_chosen_by_measurement_before_numpy_loads():
    from benchmarks import blas_kernels

    assert "NumPy was already loaded" in blas_kernels.choose_openblas_kernels()  # this process has numpy
    assert blas_kernels.probe("") > 0
    note, chosen = _choose_in_child(OPENBLAS_CORETYPE="Haswell")
    assert note.endswith("(OPENBLAS_CORETYPE set by the caller)") and chosen == "Haswell"
    note, chosen = _choose_in_child(TINYGRAD_RNN_BENCH_BLAS="default")
    assert "own choice (TINYGRAD_RNN_BENCH_BLAS=default)" in note and chosen == ""
    note, chosen = _choose_in_child()
    assert note.startswith("OpenBLAS kernels: ")
    assert (chosen == "Haswell") == note.startswith("OpenBLAS kernels: Haswell, faster")
