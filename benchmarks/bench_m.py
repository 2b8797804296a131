"""Benchmark M: a char-rnn LSTM, tinygrad_rnn against PyTorch's nn.LSTM on the CPU.

Model (both sides): Embedding 65 -> 64, 2-layer LSTM with hidden 256
(batch_first), Linear 256 -> 65, batch 32, sequence 64, mean cross-entropy,
``clip_grad_norm_`` 5, Adam lr 2e-3, float32, zero initial state every step.
Target: the framework's step takes <= 1.0x PyTorch's (issue 17; it was 1.25x). Needs torch (an
optional benchmark dependency); without it the benchmark is skipped.
The framework model, ``FrameworkCharLSTM``, lives in ``char_lstm.py`` (shared with ``gpu.py``).

Run from the repository root::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m benchmarks.bench_m
"""

from benchmarks.harness import pin_threads

pin_threads()

import numpy as np  # noqa: E402

from benchmarks.baselines import CharLSTMTorch, torch_available  # noqa: E402
from benchmarks.char_lstm import FrameworkCharLSTM  # noqa: E402
from benchmarks.common import Result, Settings, cpu_time_note, median_ratio, step_both, weight_diff  # noqa: E402
from benchmarks.harness import compare, format_table  # noqa: E402
from benchmarks.runner import run_script  # noqa: E402

TARGET = 1.0


def check(steps: int = 3, seed: int = 0, dtype=np.float32, device: str = "cpu", **sizes) -> dict:
    """Train the torch baseline and the framework side by side from the same weights and data; raise
    AssertionError unless every loss and updated weight agree: to 1e-9 in float64 (the same math),
    and in float32 losses to 1e-5 (relative) and weights to 1e-5 (absolute, after the first step
    only: Adam's m / sqrt(v) amplifies the rounding of tiny gradients later on).
    Returns the largest differences."""
    dtype = np.dtype(dtype)
    ref = CharLSTMTorch(seed=seed, dtype=dtype, device=device, **sizes)
    fw = FrameworkCharLSTM(CharLSTMTorch(seed=seed, dtype=dtype, device=device, **sizes), device=device)
    exact = dtype == np.float64
    loss_tolerance, weight_tolerance = (1e-9, 1e-9) if exact else (1e-5, 1e-5)
    worst_loss = worst_weight = 0.0
    for i in range(steps):
        worst_loss = max(worst_loss, step_both(ref, fw, f"M step {i} ({dtype})", loss_tolerance))
        if not exact and i > 0:
            continue
        ours = {name: p.numpy() for name, p in fw.model.named_parameters()}
        worst_weight = max(worst_weight, weight_diff(f"M step {i} ({dtype})", ours, ref.export_params(),
                                                     dtype, weight_tolerance))
    return {"loss_rel": worst_loss, "weight_abs": worst_weight}


def agreement_note(steps: int = 3, device: str = "cpu", **sizes) -> str:
    """Check in float64 (small sizes; agreement to rounding) and in float32 at the benchmarked sizes."""
    small = dict(hidden_size=32, batch_size=4, seq_length=8)
    exact = check(steps, dtype=np.float64, device=device, **small)
    single = check(steps, dtype=np.float32, device=device, **sizes)
    return (
        f"same result as torch over {steps} steps: float64 (H=32, B=4, S=8) loss rel. diff "
        f"{exact['loss_rel']:.1e}, weights {exact['weight_abs']:.1e}; float32 loss {single['loss_rel']:.1e}, "
        f"weights after step 1 {single['weight_abs']:.1e}"
    )


def run(settings: Settings | None = None) -> list[Result]:
    """Check agreement with torch, then time both steps alternately; one Result (the time ratio).
    Returns no Result (and says so) when torch is not installed."""
    settings = settings or Settings.make(repeats=20, warmup=3)
    if not torch_available():
        print("M: skipped, PyTorch is not installed (pip install torch)")
        return []
    note = agreement_note()
    ref = CharLSTMTorch(seed=0)
    fw = FrameworkCharLSTM(CharLSTMTorch(seed=0))
    pin_threads()  # torch is imported now: pin its intra-op pool too
    timings = compare({"torch": ref.step, "tinygrad_rnn": fw.step}, warmup=settings.warmup,
                      repeats=settings.repeats)
    cpu = cpu_time_note({"torch": ref.step, "tinygrad_rnn": fw.step}, 2 if settings.quick else 10, "torch")
    return [Result("M", "char-LSTM step (H=256, B=32, S=64), time vs torch CPU",
                   median_ratio(timings, "tinygrad_rnn", "torch"), TARGET, "x",
                   format_table(timings, baseline="torch"), [note, cpu])]


def main(argv=None) -> int:
    """``python -m benchmarks.bench_m [--quick]``: run this benchmark alone and print its report."""
    return run_script("M", run, argv, module="benchmarks.bench_m")


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
