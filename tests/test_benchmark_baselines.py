"""Tests for the benchmark harness and the hand-written baselines.

The hand-derived BPTT gradients are checked against central finite
differences in float64; the torch baselines are checked against the NumPy
ones / for decreasing loss (skipped without torch).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.baselines import BatchedRNNNumpy, MinCharRNNNumpy, MinCharRNNStepwiseNumpy  # noqa: E402
from benchmarks.harness import compare, format_table, machine_info, peak_memory  # noqa: E402


def numerical_grad(loss_fn, param, indices, eps=1e-6):
    """Central finite differences of loss_fn() w.r.t. param[idx] for idx in indices."""
    out = []
    for idx in indices:
        old = param[idx]
        param[idx] = old + eps
        lp = loss_fn()
        param[idx] = old - eps
        lm = loss_fn()
        param[idx] = old
        out.append((lp - lm) / (2 * eps))
    return np.array(out)


def check_grads(loss_fn, params, grads, max_entries=None, seed=0, rtol=1e-6, atol=1e-8,
                eps=1e-6):
    """Assert |numeric - analytic| <= rtol * (|numeric| + |analytic|) + atol entrywise."""
    rng = np.random.default_rng(seed)
    for name, p in params.items():
        all_idx = list(np.ndindex(p.shape))
        if max_entries is not None and len(all_idx) > max_entries:
            pick = rng.choice(len(all_idx), size=max_entries, replace=False)
            all_idx = [all_idx[i] for i in pick]
        num = numerical_grad(loss_fn, p, all_idx, eps=eps)
        ana = np.array([grads[name][i] for i in all_idx])
        err = np.abs(num - ana)
        bound = rtol * (np.abs(num) + np.abs(ana)) + atol
        worst = np.argmax(err / bound)
        assert np.all(err <= bound), (
            f"{name}{all_idx[worst]}: numeric {num[worst]:.10g} vs analytic {ana[worst]:.10g}")


# ---------------------------------------------------------------- MinCharRNN


def _perturbed_minchar(**kw):
    m = MinCharRNNNumpy(seed=3, dtype=np.float64, **kw)
    rng = np.random.default_rng(7)
    for p in m.params.values():  # larger weights than the 0.01 init: stronger test
        p[...] = rng.standard_normal(p.shape) * 0.5
    return m, rng


def test_minchar_gradients_match_finite_differences_small():
    m, rng = _perturbed_minchar(vocab_size=7, hidden_size=5, seq_length=6)
    inputs, targets, _ = m.current_batch()
    hprev = rng.standard_normal(5)  # non-zero carried state
    loss, grads, _ = m.loss_and_grads(inputs, targets, hprev)
    check_grads(lambda: m.loss_and_grads(inputs, targets, hprev)[0], m.params, grads)


def test_minchar_gradients_match_finite_differences_default_size():
    m, rng = _perturbed_minchar()
    m.params["Whh"] *= 0.2  # keep the 100-unit recurrence out of saturation
    inputs, targets, _ = m.current_batch()
    hprev = np.tanh(rng.standard_normal(100))
    _, grads, _ = m.loss_and_grads(inputs, targets, hprev)
    check_grads(lambda: m.loss_and_grads(inputs, targets, hprev)[0], m.params, grads,
                max_entries=12, eps=1e-5, atol=1e-7)


def test_minchar_loss_and_grads_is_pure_and_step_applies_adagrad():
    m = MinCharRNNNumpy(seed=1, dtype=np.float64)
    m.step()  # non-trivial hidden state and Adagrad memory
    before = {k: v.copy() for k, v in m.params.items()}
    mem_before = {k: v.copy() for k, v in m.mem.items()}
    h_before, ptr_before = m.h.copy(), m.pointer
    loss, grads, h_last = m.loss_and_grads()
    for k in before:
        np.testing.assert_array_equal(m.params[k], before[k])
    np.testing.assert_array_equal(m.h, h_before)
    assert m.pointer == ptr_before

    assert m.step() == pytest.approx(loss)
    for k, p in m.params.items():
        g = np.clip(grads[k], -5, 5)
        mem = mem_before[k] + g * g
        np.testing.assert_allclose(m.mem[k], mem)
        np.testing.assert_allclose(p, before[k] - 0.1 * g / np.sqrt(mem + 1e-8))
    np.testing.assert_array_equal(m.h, h_last)
    assert m.pointer == ptr_before + 25


def test_minchar_stepwise_matches_finite_differences_and_the_vectorised_baseline():
    """The per-step (lecture-structured) baseline computes the same loss and gradients as the vectorised one."""
    kw = dict(vocab_size=7, hidden_size=5, seq_length=6)
    m, rng = _perturbed_minchar(**kw)
    stepwise = MinCharRNNStepwiseNumpy(seed=3, dtype=np.float64, **kw)
    for name, p in m.params.items():
        stepwise.params[name][...] = p
    inputs, targets, _ = m.current_batch()
    hprev = rng.standard_normal(5)
    loss, grads, h_last = stepwise.loss_and_grads(inputs, targets, hprev)
    check_grads(lambda: stepwise.loss_and_grads(inputs, targets, hprev)[0], stepwise.params, grads)
    ref_loss, ref_grads, ref_h = m.loss_and_grads(inputs, targets, hprev)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(h_last, ref_h, rtol=1e-12, atol=1e-14)
    for name in grads:
        assert grads[name].shape == ref_grads[name].shape
        np.testing.assert_allclose(grads[name], ref_grads[name], rtol=1e-10, atol=1e-13)


def test_minchar_stepwise_trains_like_the_vectorised_baseline_in_float32():
    a, b = MinCharRNNNumpy(seed=2), MinCharRNNStepwiseNumpy(seed=2)
    for _ in range(3):
        assert b.step() == pytest.approx(a.step(), rel=1e-4)
    assert all(p.dtype == np.float32 for p in b.params.values()) and b.h.dtype == np.float32


def test_minchar_wraps_and_resets_hidden_state():
    data = np.arange(60) % 65
    m = MinCharRNNNumpy(seed=0, dtype=np.float64, data=data)
    m.step()
    m.step()  # pointer 50: 50 + 25 + 1 >= 60, so the next step wraps
    assert m.pointer == 50
    inputs, targets, hprev = m.current_batch()
    np.testing.assert_array_equal(inputs, data[:25])
    assert not hprev.any()
    m.step()
    assert m.pointer == 25


def test_minchar_float32_stays_float32_and_is_deterministic():
    a, b = MinCharRNNNumpy(seed=5), MinCharRNNNumpy(seed=5)
    for _ in range(3):
        assert a.step() == b.step()
    for k, p in a.params.items():
        assert p.dtype == np.float32 and a.mem[k].dtype == np.float32
        np.testing.assert_array_equal(p, b.params[k])
    assert a.h.dtype == np.float32
    _, grads, h = a.loss_and_grads()
    assert h.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())


# ---------------------------------------------------------------- BatchedRNN


def test_batched_rnn_gradients_match_finite_differences():
    m = BatchedRNNNumpy(seed=2, dtype=np.float64, T=7, batch_size=3, input_size=4,
                        hidden_size=5, output_size=2)
    _, grads = m.loss_and_grads()
    check_grads(lambda: m.loss_and_grads()[0], m.params, grads)


def test_batched_rnn_gradients_long_sequence_sampled():
    m = BatchedRNNNumpy(seed=4, dtype=np.float64, T=200, batch_size=2, input_size=6,
                        hidden_size=8, output_size=3)
    m.Wh *= 3.0  # spectral radius > 1: long-range gradients matter
    _, grads = m.loss_and_grads()
    check_grads(lambda: m.loss_and_grads()[0], m.params, grads, max_entries=10, atol=1e-7)


def test_batched_rnn_step_is_sgd_and_lowers_loss():
    m = BatchedRNNNumpy(seed=0, dtype=np.float64, T=50)
    before = {k: v.copy() for k, v in m.params.items()}
    loss0, grads = m.loss_and_grads()
    assert m.step() == pytest.approx(loss0)
    for k, p in m.params.items():
        np.testing.assert_allclose(p, before[k] - m.learning_rate * grads[k])
    losses = [m.step() for _ in range(5)]
    assert losses[-1] < loss0


def test_batched_rnn_float32_and_activation_bytes():
    m = BatchedRNNNumpy(seed=0, T=300)
    m.step()
    assert all(p.dtype == np.float32 for p in m.params.values())
    _, grads = m.loss_and_grads()
    assert all(g.dtype == np.float32 for g in grads.values())
    assert m.hidden_state_bytes() == 301 * 8 * 64 * 4
    assert m.activation_bytes() == 301 * 8 * 64 * 4 + 300 * 8 * 8 * 4
    peak = peak_memory(m.step)
    assert m.activation_bytes() <= peak <= 4 * m.activation_bytes()


# ---------------------------------------------------------------- harness


def test_compare_interleaves_and_reports():
    calls = []
    impls = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    res = compare(impls, warmup=2, repeats=5)
    assert calls == ["a", "b"] * 7
    assert list(res) == ["a", "b"]
    for r in res.values():
        assert len(r["times"]) == 5 and r["median"] >= 0 and r["min"] <= r["median"]
    table = format_table(res, baseline="a")
    assert "a" in table and "b" in table and "1.00x" in table
    with pytest.raises(KeyError):
        format_table(res, baseline="zzz")


def test_peak_memory_sees_numpy_allocations():
    n = 2_000_000
    peak = peak_memory(lambda: np.ones(n // 8))  # n bytes of float64
    assert n <= peak < 2 * n


def test_machine_info_mentions_versions():
    info = machine_info()
    assert np.__version__ in info and "cpu:" in info


def test_pin_threads_in_fresh_process():
    code = (
        "from benchmarks.harness import pin_threads; pin_threads();"
        "import os, numpy; from threadpoolctl import threadpool_info;"
        "assert os.environ['OMP_NUM_THREADS'] == '1';"
        "assert all(l['num_threads'] == 1 for l in threadpool_info()), threadpool_info();"
        "print('ok')"
    )
    pytest.importorskip("threadpoolctl")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ---------------------------------------------------------------- torch


def test_minchar_torch_matches_numpy():
    pytest.importorskip("torch")
    from benchmarks.baselines import MinCharRNNTorch

    kw = dict(seed=11, dtype=np.float64, data=np.arange(80) % 65)
    ref, tm = MinCharRNNNumpy(**kw), MinCharRNNTorch(**kw)
    for _ in range(5):  # includes a wrap-around of the data stream
        assert tm.step() == pytest.approx(ref.step(), rel=1e-9)
    for k, p in ref.params.items():
        np.testing.assert_allclose(tm.params[k].detach().numpy(), p, rtol=1e-8, atol=1e-10)


def test_char_lstm_torch_lowers_loss_on_fixed_data():
    torch = pytest.importorskip("torch")
    from benchmarks.baselines import CharLSTMTorch

    m = CharLSTMTorch(seed=0, hidden_size=32, batch_size=4, seq_length=16)
    losses = [m.step() for _ in range(8)]
    assert losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in m.params.values())
    # deterministic weights regardless of global RNG state
    torch.manual_seed(123)
    a = CharLSTMTorch(seed=0, hidden_size=32, batch_size=4, seq_length=16).export_params()
    b = CharLSTMTorch(seed=0, hidden_size=32, batch_size=4, seq_length=16).export_params()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_char_lstm_torch_default_and_large_sizes():
    pytest.importorskip("torch")
    from benchmarks.baselines import CharLSTMTorch

    m = CharLSTMTorch(seed=0)
    assert (m.hidden_size, m.batch_size, m.seq_length) == (256, 32, 64)
    assert tuple(m.inputs.shape) == (1, 32, 64)
    assert np.isfinite(m.step())
    big = CharLSTMTorch(seed=0, large=True)
    assert (big.hidden_size, big.batch_size, big.seq_length) == (512, 64, 100)
