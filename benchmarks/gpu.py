"""GPU benchmark: char-LSTM training steps, tinygrad_rnn on CuPy against PyTorch's nn.LSTM (cuDNN).

Two models, both as in benchmark M (Embedding 65 -> 64, 2-layer LSTM,
Linear -> 65, mean cross-entropy, clip_grad_norm_ 5, Adam 2e-3, float32):

* ``M``: hidden 256, batch 32, sequence 64;
* ``large``: hidden 512, batch 64, sequence 100.

Both run on the same GPU; each step ends with ``loss.item()``, which waits
for the GPU. TF32 is switched off in torch (cuDNN and cuBLAS), so both sides
do full float32 math, as CuPy does by default. Target: <= 3x cuDNN's time.
Needs CuPy (``pip install "tinygrad_rnn[cuda12]"``), torch with CUDA and a
GPU; otherwise it says so and is skipped.

Run from the repository root::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m benchmarks.gpu
"""

from benchmarks.harness import pin_threads

pin_threads()

import numpy as np  # noqa: E402

from benchmarks.baselines import CharLSTMTorch  # noqa: E402
from benchmarks.char_lstm import FrameworkCharLSTM  # noqa: E402
from benchmarks.common import Result, Settings, cuda_available, median_ratio  # noqa: E402
from benchmarks.harness import compare, format_table  # noqa: E402
from benchmarks.runner import run_script  # noqa: E402

TARGET = 3.0
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
    ref = CharLSTMTorch(seed=seed, dtype=dtype, device=device, **sizes)
    fw = FrameworkCharLSTM(CharLSTMTorch(seed=seed, dtype=dtype, device=device, **sizes), device=device)
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
        expected, got = ref.step(), fw.step()
        rel = abs(got - expected) / max(abs(expected), 1e-12)
        worst_loss = max(worst_loss, rel)
        assert rel <= loss_tolerance, f"gpu {config} step {i} ({dtype}): loss {got} != torch {expected}"
        if i > 0:
            continue
        torch_weights = ref.export_params()
        for name, p in fw.model.named_parameters():
            diff = float(np.abs(p.numpy() - torch_weights[name]).max())
            worst_weight = max(worst_weight, diff)
            assert diff <= weight_tolerance, f"gpu {config} step {i} ({dtype}): {name} differs from torch by {diff}"
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
        ref, fw = build_pair(config, "cuda")
        timings = compare({"torch cuDNN": ref.step, "tinygrad_rnn": fw.step}, warmup=settings.warmup,
                          repeats=settings.repeats)
        sizes = f"H={ref.hidden_size}, B={ref.batch_size}, S={ref.seq_length}"
        results.append(Result(f"GPU {config}", f"char-LSTM step ({sizes}), time vs torch cuDNN",
                              median_ratio(timings, "tinygrad_rnn", "torch cuDNN"), TARGET, "x",
                              format_table(timings, baseline="torch cuDNN"), [note]))
    return results


def main(argv=None) -> int:
    """``python -m benchmarks.gpu [--quick]``: run this benchmark alone and print its report."""
    return run_script("gpu", run, argv, module="benchmarks.gpu")


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
