"""Benchmark L: long sequences, full BPTT, tinygrad_rnn against a hand-written batched NumPy BPTT.

Model (both sides): tanh RNN, input 32, hidden 64, batch 8, linear readout to
8 at every step, mean squared error, SGD lr 0.05, float32, zero initial
state, T = 2,000 and T = 10,000 steps backpropagated in full. Targets: the
framework's step takes <= 1.5x the NumPy step's time, and its peak memory is
<= 2x the activations BPTT must keep (the T+1 hidden states and the T read-out
outputs the loss gradient reads: ``BatchedRNNNumpy.activation_bytes``); the
NumPy baseline's own peak, and both peaks against the hidden states alone,
are reported next to it.

Run from the repository root::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m benchmarks.bench_l
"""

from benchmarks.harness import pin_threads

pin_threads()

import numpy as np  # noqa: E402

import tinygrad_rnn.nn.functional as F  # noqa: E402
from benchmarks.baselines import BatchedRNNNumpy  # noqa: E402
from benchmarks.common import Result, Settings, cpu_time_note, median_ratio, step_both, weight_diff  # noqa: E402
from benchmarks.harness import compare, format_table, peak_memory  # noqa: E402
from benchmarks.runner import run_script  # noqa: E402
from tinygrad_rnn import Tensor, nn, optim  # noqa: E402

TIME_TARGET = 1.5
MEMORY_TARGET = 2.0
LENGTHS = (2000, 10000)


class FrameworkBatchedRNN:
    """The baseline's model with tinygrad_rnn's public API, from its weights and data.

    ``nn.RNN(I, H)`` (one fused op for the whole sequence) -> ``nn.Linear(H, O)``
    on every step -> ``F.mse_loss`` -> ``optim.SGD``. The baseline uses row
    vectors (``x @ Wx``), PyTorch's layout stores the transposes
    (``weight_ih = Wxᵀ``). It has one hidden bias, so ``bias_ih`` takes ``b``
    and ``bias_hh`` is frozen at zero (not trained), which keeps the model and
    its trainable parameters identical.
    """

    def __init__(self, ref: BatchedRNNNumpy):
        I, H, O = ref.input_size, ref.hidden_size, ref.output_size
        self.rnn = nn.RNN(I, H)
        self.head = nn.Linear(H, O)
        P = ref.params
        self.rnn.weight_ih_l0.array = np.ascontiguousarray(P["Wx"].T)
        self.rnn.weight_hh_l0.array = np.ascontiguousarray(P["Wh"].T)
        self.rnn.bias_ih_l0.array = P["b"].copy()
        self.rnn.bias_hh_l0.array = np.zeros_like(P["b"])
        self.rnn.bias_hh_l0.requires_grad_(False)
        self.head.weight.array = np.ascontiguousarray(P["Wy"].T)
        self.head.bias.array = P["by"].copy()
        self.params = [
            self.rnn.weight_ih_l0, self.rnn.weight_hh_l0, self.rnn.bias_ih_l0, self.head.weight, self.head.bias,
        ]
        self.optimizer = optim.SGD(self.params, lr=ref.learning_rate)
        self.x = Tensor(ref.x)
        self.targets = Tensor(ref.targets)
        self.loss = None

    def named_arrays(self) -> dict:
        """The trainable weights in the baseline's layout and names (for checking)."""
        w_ih, w_hh, b, w_y, b_y = (p.array for p in self.params)
        return {"Wx": w_ih.T, "Wh": w_hh.T, "b": b, "Wy": w_y.T, "by": b_y}

    def step(self) -> float:
        """One training step: forward over all T steps, full BPTT, SGD."""
        output, _ = self.rnn(self.x)
        loss = F.mse_loss(self.head(output), self.targets)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.loss = loss.item()
        return self.loss


def check(steps: int = 2, seed: int = 0, dtype=np.float32, **sizes) -> dict:
    """Train baseline and framework side by side from the same weights and data; raise AssertionError
    unless every loss and updated weight agree: to 1e-10 in float64 (the same math), to 1e-5
    (loss: relative, weights: absolute) in float32. Returns the largest differences."""
    dtype = np.dtype(dtype)
    ref = BatchedRNNNumpy(seed=seed, dtype=dtype, **sizes)
    fw = FrameworkBatchedRNN(BatchedRNNNumpy(seed=seed, dtype=dtype, **sizes))
    tolerance = 1e-10 if dtype == np.float64 else 1e-5
    worst_loss = worst_weight = 0.0
    for i in range(steps):
        worst_loss = max(worst_loss, step_both(ref, fw, f"L step {i} ({dtype})", tolerance))
        worst_weight = max(worst_weight, weight_diff(f"L step {i} ({dtype})", fw.named_arrays(), ref.params,
                                                     dtype, tolerance))
    return {"loss_rel": worst_loss, "weight_abs": worst_weight}


def agreement_note(T: int, steps: int = 2) -> str:
    """Check in float64 on a short sequence (same math: agreement to rounding) and in float32 at T."""
    exact = check(steps, dtype=np.float64, T=min(T, 200))
    single = check(steps, dtype=np.float32, T=T)
    return (
        f"same result as the baseline over {steps} steps: float64 (T={min(T, 200)}) loss rel. diff "
        f"{exact['loss_rel']:.1e}, weights {exact['weight_abs']:.1e}; float32 (T={T}) loss "
        f"{single['loss_rel']:.1e}, weights {single['weight_abs']:.1e}"
    )


def run(settings: Settings | None = None, lengths=LENGTHS) -> list[Result]:
    """For each T: check agreement, time both steps alternately, then measure peak memory.
    Two Results per T: the time ratio and peak memory / activation bytes."""
    settings = settings or Settings.make(repeats=10, warmup=2)
    results = []
    for T in lengths:
        note = agreement_note(T)
        ref = BatchedRNNNumpy(seed=0, T=T)
        fw = FrameworkBatchedRNN(BatchedRNNNumpy(seed=0, T=T))
        timings = compare({"numpy": ref.step, "tinygrad_rnn": fw.step}, warmup=settings.warmup,
                          repeats=settings.repeats)
        activations, states = ref.activation_bytes(), ref.hidden_state_bytes()
        peak_fw = peak_memory(fw.step)
        peak_np = peak_memory(ref.step)
        mib = 2.0**20
        memory_notes = [
            f"activations BPTT must keep ((T+1)*B*H + T*B*O floats): {activations / mib:.2f} MiB, "
            f"of which hidden states {states / mib:.2f} MiB",
            f"peak memory of one step (tracemalloc): tinygrad_rnn {peak_fw / mib:.2f} MiB "
            f"({peak_fw / activations:.2f}x activations), numpy {peak_np / mib:.2f} MiB "
            f"({peak_np / activations:.2f}x)",
            f"against the hidden states alone: tinygrad_rnn {peak_fw / states:.2f}x, numpy {peak_np / states:.2f}x "
            f"(both hold the whole (T, B, H) output gradient beside the states during backward)",
        ]
        cpu = cpu_time_note({"numpy": ref.step, "tinygrad_rnn": fw.step}, 2 if settings.quick else 5, "numpy")
        results.append(Result(f"L T={T}", "RNN full-BPTT step, time vs batched NumPy",
                              median_ratio(timings, "tinygrad_rnn", "numpy"), TIME_TARGET, "x",
                              format_table(timings, baseline="numpy"), [note, cpu]))
        results.append(Result(f"L T={T}", "peak memory / activations", peak_fw / activations, MEMORY_TARGET,
                              "x", "", memory_notes))
    return results


def main(argv=None) -> int:
    """``python -m benchmarks.bench_l [--quick]``: run this benchmark alone and print its report."""
    return run_script("L", run, argv, module="benchmarks.bench_l")


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
