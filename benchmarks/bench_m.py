"""Benchmark M: a char-rnn LSTM, tinygrad_rnn against PyTorch's nn.LSTM on the CPU.

Model (both sides): Embedding 65 -> 64, 2-layer LSTM with hidden 256
(batch_first), Linear 256 -> 65, batch 32, sequence 64, mean cross-entropy,
``clip_grad_norm_`` 5, Adam lr 2e-3, float32, zero initial state every step.
Target: the framework's step takes <= 1.25x PyTorch's. Needs torch (an
optional benchmark dependency); without it the benchmark is skipped.
``FrameworkCharLSTM`` also serves the GPU benchmark (``benchmarks/gpu.py``).

Run from the repository root::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m benchmarks.bench_m
"""

from benchmarks.harness import pin_threads

pin_threads()

import numpy as np  # noqa: E402

import tinygrad_rnn.nn.functional as F  # noqa: E402
from benchmarks.baselines import CharLSTMTorch, torch_available  # noqa: E402
from benchmarks.common import Result, Settings, cpu_time_note, median_ratio, step_both, weight_diff  # noqa: E402
from benchmarks.harness import compare, format_table  # noqa: E402
from tinygrad_rnn import Tensor, nn, optim  # noqa: E402

TARGET = 1.25


class CharLSTM(nn.Module):
    """Embedding -> stacked LSTM (batch_first) -> Linear, with the torch baseline's parameter names
    (``embedding.weight``, ``lstm.weight_ih_l0``, ..., ``head.bias``) so state dicts map one to one."""

    def __init__(self, vocab_size, embed_size, hidden_size, num_layers):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.lstm = nn.LSTM(embed_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens):
        """Logits (B, S, V) for integer tokens (B, S), from zero initial state."""
        output, _ = self.lstm(self.embedding(tokens))
        return self.head(output)


class FrameworkCharLSTM:
    """The ``CharLSTMTorch`` baseline's model, data and training step in tinygrad_rnn.

    Weights are copied from ``ref.export_params()`` (same names and layouts),
    the batches from ``ref.inputs`` / ``ref.targets``; ``device`` is
    ``"cpu"`` or ``"cuda"``. ``step()`` ends with ``loss.item()``, which
    waits for a GPU to finish, so it can be timed directly.
    """

    def __init__(self, ref: CharLSTMTorch, device: str = "cpu"):
        self.vocab_size = ref.vocab_size
        weights = ref.export_params()
        self.model = CharLSTM(ref.vocab_size, ref.embed_size, ref.hidden_size, ref.num_layers)
        self.model.to(dtype=weights["head.weight"].dtype)
        self.model.load_state_dict({k: v.copy() for k, v in weights.items()})
        self.model.to(device)
        self.params = list(self.model.parameters())
        self.optimizer = optim.Adam(self.params, lr=ref.learning_rate)
        self.clip_norm = ref.clip_norm
        self.inputs = [Tensor(b, device=device) for b in ref.inputs.cpu().numpy()]
        self.targets = [Tensor(b.reshape(-1), device=device) for b in ref.targets.cpu().numpy()]
        self.batch_index = 0
        self.loss = None

    def step(self) -> float:
        """One training step: forward, backward, clip_grad_norm_, Adam."""
        i = self.batch_index
        logits = self.model(self.inputs[i])
        loss = F.cross_entropy(logits.reshape(-1, self.vocab_size), self.targets[i])
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, self.clip_norm)
        self.optimizer.step()
        self.loss = loss.item()
        self.batch_index = (i + 1) % len(self.inputs)
        return self.loss


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
    from benchmarks.run_all import main as run_all_main

    return run_all_main(["M", *(argv or [])])


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
