"""Benchmark P: a training step on a packed batch of sequences of different lengths.

Model: a 1-layer LSTM, input 32, hidden 128, batch 64, lengths drawn uniformly
from 16..128 (seed 0; 56 % of the padded batch is real), float32, zero initial
state. One step: pack the padded batch (``pack_padded_sequence``,
``enforce_sorted=False``), the LSTM, the mean squared error of the outputs at
the real steps against fixed targets, backward, SGD (lr 0.01). The padded step
runs the LSTM on all 128 steps of every sequence and masks the padding out of
the same loss (so both compute the same loss and gradients). Targets: our
packed step takes <= 0.75x our padded step, and <= 1.0x PyTorch's packed step
(when torch is installed; its padded step is timed too).

Run from the repository root::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m benchmarks.bench_p
"""

from benchmarks.harness import pin_threads

pin_threads()

import numpy as np  # noqa: E402

import tinygrad_rnn as tr  # noqa: E402
import tinygrad_rnn.nn.functional as F  # noqa: E402
from benchmarks.baselines import torch_available  # noqa: E402
from benchmarks.common import Result, Settings, cpu_time_note, median_ratio, weight_diff  # noqa: E402
from benchmarks.harness import compare, format_table  # noqa: E402
from benchmarks.runner import run_script  # noqa: E402
from tinygrad_rnn import nn, optim  # noqa: E402
from tinygrad_rnn.nn.utils.rnn import pack_padded_sequence  # noqa: E402

PADDED_TARGET = 0.75
TORCH_TARGET = 1.0
SIZES = dict(input_size=32, hidden_size=128, batch_size=64, min_length=16, max_length=128)
LR = 0.01


def make_batch(input_size, hidden_size, batch_size, min_length, max_length, seed=0, dtype=np.float32):
    """Inputs (B, T_max, I) (zero after each length), targets (B, T_max, H), lengths (B,), weights
    (PyTorch's names and layouts, uniform in ±1/sqrt(H) as PyTorch initialises them)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_length, max_length + 1, size=batch_size)
    lengths[0] = max_length  # the padded batch is max_length long
    real = np.arange(max_length)[None, :] < lengths[:, None]
    inputs = rng.standard_normal((batch_size, max_length, input_size)) * real[:, :, None]
    targets = rng.standard_normal((batch_size, max_length, hidden_size)) * 0.5 * real[:, :, None]
    bound = 1.0 / np.sqrt(hidden_size)
    shapes = {"weight_ih_l0": (4 * hidden_size, input_size), "weight_hh_l0": (4 * hidden_size, hidden_size),
              "bias_ih_l0": (4 * hidden_size,), "bias_hh_l0": (4 * hidden_size,)}
    weights = {name: rng.uniform(-bound, bound, shape).astype(dtype) for name, shape in shapes.items()}
    return inputs.astype(dtype), targets.astype(dtype), lengths.astype(np.int64), weights


class OursStep:
    """The step in tinygrad_rnn: ``packed=True`` packs the batch, else the LSTM runs on the padding too."""

    def __init__(self, batch, packed: bool):
        inputs, targets, lengths, weights = batch
        self.packed, self.lengths = packed, lengths
        self.lstm = nn.LSTM(inputs.shape[2], targets.shape[2], batch_first=True).to(dtype=inputs.dtype)
        self.lstm.load_state_dict({k: v.copy() for k, v in weights.items()})
        self.optimizer = optim.SGD(self.lstm.parameters(), lr=LR)
        self.inputs = tr.tensor(inputs)
        real = np.arange(inputs.shape[1])[None, :] < lengths[:, None]
        self.count = float(real.sum() * targets.shape[2])
        if packed:  # the targets of the real steps, in the packed order (packed once, outside the step)
            self.targets = pack_padded_sequence(tr.tensor(targets), lengths, batch_first=True,
                                                enforce_sorted=False).data
        else:
            self.targets, self.mask = tr.tensor(targets), tr.tensor(real[:, :, None].astype(inputs.dtype))

    def step(self) -> float:
        if self.packed:
            packed = pack_padded_sequence(self.inputs, self.lengths, batch_first=True, enforce_sorted=False)
            output, _ = self.lstm(packed)
            loss = F.mse_loss(output.data, self.targets)
        else:
            output, _ = self.lstm(self.inputs)
            loss = (((output - self.targets) ** 2) * self.mask).sum() / self.count
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def weights(self) -> dict:
        return {name: p.numpy() for name, p in self.lstm.named_parameters()}


class TorchStep:
    """The same step in PyTorch (``torch.nn.LSTM``, ``torch.nn.utils.rnn.pack_padded_sequence``)."""

    def __init__(self, batch, packed: bool):
        import torch

        self.torch = torch
        inputs, targets, lengths, weights = batch
        self.packed = packed
        self.lstm = torch.nn.LSTM(inputs.shape[2], targets.shape[2], batch_first=True).to(
            torch.float64 if inputs.dtype == np.float64 else torch.float32)
        self.lstm.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
        self.optimizer = torch.optim.SGD(self.lstm.parameters(), lr=LR)
        self.inputs = torch.from_numpy(inputs)
        self.lengths = torch.from_numpy(lengths)
        real = np.arange(inputs.shape[1])[None, :] < lengths[:, None]
        self.count = float(real.sum() * targets.shape[2])
        pack = torch.nn.utils.rnn.pack_padded_sequence
        if packed:
            self.targets = pack(torch.from_numpy(targets), self.lengths, batch_first=True, enforce_sorted=False).data
        else:
            self.targets = torch.from_numpy(targets)
            self.mask = torch.from_numpy(real[:, :, None].astype(inputs.dtype))

    def step(self) -> float:
        torch = self.torch
        if self.packed:
            packed = torch.nn.utils.rnn.pack_padded_sequence(self.inputs, self.lengths, batch_first=True,
                                                             enforce_sorted=False)
            output, _ = self.lstm(packed)
            loss = torch.nn.functional.mse_loss(output.data, self.targets)
        else:
            output, _ = self.lstm(self.inputs)
            loss = (((output - self.targets) ** 2) * self.mask).sum() / self.count
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def weights(self) -> dict:
        return {name: p.detach().numpy() for name, p in self.lstm.named_parameters()}


def check(steps: int = 2, dtype=np.float32, with_torch: bool = True, **sizes) -> dict:
    """Run every step side by side from the same weights and batch; raise AssertionError unless the
    losses and updated weights agree (1e-9 in float64; in float32 losses to 1e-5 relative and weights
    to 1e-5). Our packed and padded steps compute the same loss, so they are compared too, and
    PyTorch's packed step when ``with_torch``. Returns the largest differences."""
    dtype = np.dtype(dtype)
    batch = make_batch(**{**SIZES, **sizes}, dtype=dtype)
    tolerance = 1e-9 if dtype == np.float64 else 1e-5
    impls = {"packed": OursStep(batch, True), "padded": OursStep(batch, False)}
    if with_torch:
        impls["torch packed"] = TorchStep(batch, True)
    worst_loss = worst_weight = 0.0
    for i in range(steps):
        losses = {name: impl.step() for name, impl in impls.items()}
        for name, impl in impls.items():
            rel = abs(losses[name] - losses["packed"]) / max(abs(losses[name]), 1e-12)
            assert rel <= tolerance, f"P step {i} ({dtype}): {name} loss {losses[name]} != packed {losses['packed']}"
            worst_loss = max(worst_loss, rel)
            if name != "packed":
                worst_weight = max(worst_weight, weight_diff(f"P step {i} ({dtype}) {name}", impls["packed"].weights(),
                                                             impl.weights(), dtype, tolerance))
    return {"loss_rel": worst_loss, "weight_abs": worst_weight}


def run(settings: Settings | None = None) -> list[Result]:
    """Check agreement, then time the steps alternately; one Result against our padded step and,
    with torch installed, one against PyTorch's packed step."""
    settings = settings or Settings.make(repeats=20, warmup=3)
    with_torch = torch_available()
    small = dict(input_size=4, hidden_size=8, batch_size=5, min_length=2, max_length=9)
    exact = check(dtype=np.float64, with_torch=with_torch, **small)
    single = check(dtype=np.float32, with_torch=with_torch)
    note = (f"same result {'(ours packed, ours padded, torch packed) ' if with_torch else '(packed, padded) '}"
            f"over 2 steps: float64 (H=8, B=5) loss rel. diff {exact['loss_rel']:.1e}, weights "
            f"{exact['weight_abs']:.1e}; float32 loss {single['loss_rel']:.1e}, weights {single['weight_abs']:.1e}")
    batch = make_batch(**SIZES)
    lengths = batch[2]
    shape = (f"lengths {lengths.min()}..{lengths.max()} (mean {lengths.mean():.1f}): {lengths.sum()} real steps "
             f"of {lengths.size * lengths.max()} padded ({lengths.sum() / (lengths.size * lengths.max()):.0%})")
    impls = {"tinygrad_rnn packed": OursStep(batch, True).step, "tinygrad_rnn padded": OursStep(batch, False).step}
    if with_torch:
        impls["torch packed"] = TorchStep(batch, True).step
        impls["torch padded"] = TorchStep(batch, False).step
        pin_threads()  # torch is imported now: pin its intra-op pool too
    timings = compare(impls, warmup=settings.warmup, repeats=settings.repeats)
    cpu = cpu_time_note(impls, 2 if settings.quick else 10, "tinygrad_rnn padded", name="tinygrad_rnn packed")
    measure = "packed LSTM step (H=128, B=64, T=16..128)"
    results = [Result("P", f"{measure}, time vs our padded step", median_ratio(
        timings, "tinygrad_rnn packed", "tinygrad_rnn padded"), PADDED_TARGET, "x",
        format_table(timings, baseline="tinygrad_rnn padded"), [shape, note, cpu])]
    if with_torch:
        torch_ratio = median_ratio(timings, "torch packed", "torch padded")
        results.append(Result("P", f"{measure}, time vs torch's packed step (CPU)", median_ratio(
            timings, "tinygrad_rnn packed", "torch packed"), TORCH_TARGET, "x",
            notes=[f"torch's own packed / padded ratio: {torch_ratio:.2f}x"]))
    else:
        print("P: the comparison with PyTorch is skipped, PyTorch is not installed (pip install torch)")
    return results


def main(argv=None) -> int:
    """``python -m benchmarks.bench_p [--quick]``: run this benchmark alone and print its report."""
    return run_script("P", run, argv, module="benchmarks.bench_p")


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
