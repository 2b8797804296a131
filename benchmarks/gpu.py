"""GPU benchmark: char-LSTM training steps, tinygrad_rnn on CuPy against PyTorch's nn.LSTM (cuDNN).

Two models, both as in benchmark M (Embedding 65 -> 64, 2-layer LSTM,
Linear -> 65, mean cross-entropy, clip_grad_norm_ 5, Adam 2e-3, float32):

* ``M``: hidden 256, batch 32, sequence 64;
* ``large``: hidden 512, batch 64, sequence 100.

Both run on the same GPU; each step ends with ``loss.item()``, which waits
for the GPU. TF32 is switched off in torch (cuDNN and cuBLAS), so both sides
do full float32 math, as CuPy does by default. The framework's step is timed
as it is and captured as a CUDA graph (``tr.cuda.graphed``), all three
alternating. Targets: uncaptured <= 3x cuDNN's time, captured <= 1.5x, and on
M captured <= 1.0x. Each model's notes also say where the time goes:
``cupyx.profiler.benchmark``'s host (CPU) and device (GPU) time per step, which
tells launch-bound (host >= device) from compute-bound.
Needs CuPy (``pip install "tinygrad_rnn[cuda12]"``), torch with CUDA and a
GPU; otherwise it says so and is skipped.

Run from the repository root::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m benchmarks.gpu
"""

from benchmarks.harness import pin_threads

pin_threads()

from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.baselines import CharLSTMTorch  # noqa: E402
from benchmarks.char_lstm import FrameworkCharLSTM  # noqa: E402
from benchmarks.common import Result, Settings, cuda_available, median_ratio, step_both, weight_diff  # noqa: E402
from benchmarks.harness import compare, format_table  # noqa: E402
from benchmarks.runner import run_script  # noqa: E402

TARGET = 3.0
#: captured step vs cuDNN: every model, and M
TARGET_CAPTURED, TARGET_CAPTURED_M = 1.5, 1.0
#: model name -> CharLSTMTorch size arguments
CONFIGS = {"M": {"large": False}, "large": {"large": True}}


def full_float32_torch() -> None:
    """Make torch use full float32 on the GPU (no TF32 in cuDNN or cuBLAS), like CuPy's default."""
    import torch

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def build_pair(config: str, device: str, dtype=np.float32, seed: int = 0, **overrides):
    """The torch baseline and the framework model for ``config`` on ``device``, with the same weights
    and data. ``overrides`` (e.g. ``hidden_size=16``) shrink a model for tests."""
    sizes = dict(CONFIGS[config], **overrides)
    torch_device = device if device.startswith("cuda") else "cpu"  # the test suite's "hostless" is not torch's
    ref = CharLSTMTorch(seed=seed, dtype=dtype, device=torch_device, **sizes)
    fw = FrameworkCharLSTM(CharLSTMTorch(seed=seed, dtype=dtype, device=torch_device, **sizes), device=device)
    return ref, fw


def check(config: str, device: str = "cuda", steps: int = 3, dtype=np.float32, loss_tolerance=None,
          weight_tolerance=None, **overrides) -> dict:
    """Train both models of ``config`` side by side on ``device``; raise AssertionError unless every
    loss (relative) and the weights after the first step (absolute) agree within the tolerances
    (defaults: 1e-9 in float64, 1e-4 in float32, where GPU reductions run in a different order).
    Returns the largest differences."""
    dtype = np.dtype(dtype)
    default = 1e-9 if dtype == np.float64 else 1e-4
    loss_tolerance = default if loss_tolerance is None else loss_tolerance
    weight_tolerance = default if weight_tolerance is None else weight_tolerance
    ref, fw = build_pair(config, device, dtype, **overrides)
    worst_loss = worst_weight = 0.0
    for i in range(steps):
        label = f"gpu {config} step {i} ({dtype})"
        worst_loss = max(worst_loss, step_both(ref, fw, label, loss_tolerance))
        if i == 0:
            ours = {name: p.numpy() for name, p in fw.model.named_parameters()}
            worst_weight = weight_diff(label, ours, ref.export_params(), dtype, weight_tolerance)
    return {"loss_rel": worst_loss, "weight_abs": worst_weight}


def run(settings: Settings | None = None, configs=tuple(CONFIGS)) -> list[Result]:
    """For each model: check agreement on the GPU, then time both steps alternately.
    Returns no Result (and says why) without a usable GPU."""
    settings = settings or Settings.make(repeats=30, warmup=5)
    if not cuda_available():
        print("gpu: skipped, needs a CUDA GPU with CuPy and torch (CUDA build) installed")
        return []
    full_float32_torch()
    results = []
    for config in configs:
        exact = check(config, dtype=np.float64, hidden_size=32, batch_size=4, seq_length=8)
        single = check(config)
        note = (
            f"same result as torch on the GPU over 3 steps: float64 (H=32, B=4, S=8) loss rel. diff "
            f"{exact['loss_rel']:.1e}, weights {exact['weight_abs']:.1e}; float32 loss {single['loss_rel']:.1e}, "
            f"weights after step 1 {single['weight_abs']:.1e}"
        )
        captured = check_captured(config, "cuda")
        note_captured = (f"captured step: same losses as the uncaptured one over 4 replays to "
                         f"{captured['loss_rel']:.1e} (relative), weights to {captured['weight_abs']:.1e}")
        ref, fw = build_pair(config, "cuda")
        _, fw_graphed = build_pair(config, "cuda")
        fw_graphed.capture()
        steps = {"torch cuDNN": ref.step, "tinygrad_rnn": fw.step, "tinygrad_rnn graphed": fw_graphed.step_graphed}
        timings = compare(steps, warmup=settings.warmup, repeats=settings.repeats)
        notes = [note, note_captured, where_time_goes(steps)]
        sizes = f"H={ref.hidden_size}, B={ref.batch_size}, S={ref.seq_length}"
        table = format_table(timings, baseline="torch cuDNN")
        results.append(Result(f"GPU {config}", f"char-LSTM step ({sizes}), time vs torch cuDNN",
                              median_ratio(timings, "tinygrad_rnn", "torch cuDNN"), TARGET, "x", table, notes))
        captured_ratio = median_ratio(timings, "tinygrad_rnn graphed", "torch cuDNN")
        results.append(Result(f"GPU {config} graphed", "the same step captured (tr.cuda.graphed), vs torch cuDNN",
                              captured_ratio, TARGET_CAPTURED_M if config == "M" else TARGET_CAPTURED, "x",
                              "", []))
    return results


def check_captured(config: str, device: str, replays: int = 4, tolerance: float = 1e-4, **overrides) -> dict:
    """Train the framework model of ``config`` with and without capture from the same weights and
    batches; raise AssertionError unless losses (relative) and final weights (absolute) agree within
    ``tolerance``. Returns the largest differences."""
    _, plain = build_pair(config, device, **overrides)
    _, graphed = build_pair(config, device, **overrides)
    graphed.capture(warmup=2)
    for _ in range(3):  # the capture took 3 steps on the first batch
        plain.train_step(plain.inputs[0], plain.targets[0])
    plain.batch_index = graphed.batch_index
    replaying = SimpleNamespace(step=graphed.step_graphed)  # step_both calls .step() on each side
    worst_loss = max(step_both(plain, replaying, f"gpu {config} replay {i} (captured vs uncaptured)", tolerance)
                     for i in range(replays))
    ours = {name: p.numpy() for name, p in graphed.model.named_parameters()}
    theirs = {name: p.numpy() for name, p in plain.model.named_parameters()}
    worst_weight = weight_diff(f"gpu {config} captured vs uncaptured", ours, theirs, np.float32, tolerance)
    return {"loss_rel": worst_loss, "weight_abs": worst_weight}


def where_time_goes(steps, repeats: int = 10) -> str:
    """Host and device time per step of each implementation (``cupyx.profiler.benchmark``): a step whose
    host time is at least its device time is paced by launches and Python, not by the GPU's arithmetic."""
    from cupyx.profiler import benchmark

    parts = []
    for name, step in steps.items():
        report = benchmark(step, n_repeat=repeats, n_warmup=2)
        host, device = float(np.median(report.cpu_times)) * 1e3, float(np.median(report.gpu_times)) * 1e3
        parts.append(f"{name} host {host:.2f} ms / device {device:.2f} ms")
    return "where the time goes (cupyx.profiler.benchmark, medians): " + "; ".join(parts)


def main(argv=None) -> int:
    """``python -m benchmarks.gpu [--quick]``: run this benchmark alone and print its report."""
    return run_script("gpu", run, argv, module="benchmarks.gpu")


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
