"""tr.cuda.graphed: a training step captured once and replayed.

On the ``hostless`` backend the capture is emulated (``capture_emulator``: every array call recorded,
then replayed on the same arrays), so the capture logic runs without a GPU; on ``cuda`` the same tests
capture real CUDA graphs (skipped without a GPU).
"""
from __future__ import annotations

import types

import numpy as np
import pytest

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F
from capture_emulator import Recorder
from conftest import SELECTED, _cuda_skip_reason
from tinygrad_rnn import nn, optim
from tinygrad_rnn.capture import STATE, CaptureError

VOCAB, BATCH, STEPS = 11, 4, 6


@pytest.fixture(params=[d for d in ("hostless", "cuda") if d in SELECTED])
def gpu(request):
    if request.param == "cuda" and _cuda_skip_reason():
        pytest.skip(_cuda_skip_reason())
    return request.param


class CharModel(nn.Module):
    def __init__(self, cell="lstm"):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 8)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(8, 16, num_layers=2, batch_first=True)
        self.head = nn.Linear(16, VOCAB)

    def forward(self, tokens):
        return self.head(self.rnn(self.embedding(tokens))[0])


def make_step(device, cell="lstm", optimizer="adam", seed=0):
    """A char-model training step (forward, cross-entropy, backward, clipping, optimizer) and its parts."""
    tr.manual_seed(seed)
    model = CharModel(cell).to(device)
    if optimizer == "adam":
        opt = optim.Adam(model.parameters(), lr=1e-2)
    elif optimizer == "adamw":
        opt = optim.AdamW(model.parameters(), lr=1e-2, amsgrad=True)
    else:
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)

    def step(tokens, targets):
        logits = model(tokens)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    return model, opt, step


def batches(device, n, seed=1):
    rng = np.random.default_rng(seed)
    return [(tr.tensor(rng.integers(0, VOCAB, (BATCH, STEPS)), device=device),
             tr.tensor(rng.integers(0, VOCAB, (BATCH, STEPS)), device=device)) for _ in range(n)]


def weights(model):
    return {name: p.numpy() for name, p in model.named_parameters()}


@pytest.mark.parametrize("cell, optimizer", [("lstm", "adam"), ("gru", "sgd"), ("lstm", "adamw")])
def test_replays_train_like_the_uncaptured_step(gpu, cell, optimizer):
    data = batches(gpu, 6)
    plain_model, _, plain_step = make_step(gpu, cell, optimizer)
    model, opt, step = make_step(gpu, cell, optimizer)
    warmup = 2
    for _ in range(warmup + 1):  # graphed() takes warmup + 1 steps on its static inputs
        plain_step(*data[0])
    graphed = tr.cuda.graphed(step, *data[0], warmup=warmup)
    losses, plain_losses = [], []
    for tokens, targets in data[1:]:
        plain_losses.append(plain_step(tokens, targets).item())
        losses.append(graphed(tokens, targets).item())
    np.testing.assert_allclose(losses, plain_losses, rtol=1e-5)
    for name, value in weights(plain_model).items():
        np.testing.assert_allclose(weights(model)[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    assert graphed.replays == len(data) - 1
    if optimizer == "adam":  # the step count lives on the device and counts every replay
        counts = {int(state["step"].item()) for state in opt.state.values()}
        assert counts == {warmup + 1 + len(data) - 1}


def test_outputs_are_refreshed_by_each_replay(gpu):
    data = batches(gpu, 3)
    _, _, step = make_step(gpu)
    graphed = tr.cuda.graphed(step, *data[0], warmup=1)
    loss = graphed.outputs
    first = loss.item()
    assert graphed(*data[1]) is loss and loss.item() != first


def test_adam_state_with_a_device_step_saves_and_loads(gpu):
    data = batches(gpu, 2)
    model, opt, step = make_step(gpu)
    tr.cuda.graphed(step, *data[0], warmup=1)
    saved = opt.state_dict()
    fresh = optim.Adam(model.parameters(), lr=1e-2)
    fresh.load_state_dict(saved)
    assert {s["step"] for s in fresh.state.values()} == {2}


# ------------------------------------------------------------------ what a capture refuses
def _capture_refused(gpu, body, match):
    data = batches(gpu, 1)
    model, opt, _ = make_step(gpu)

    def step(tokens, targets):
        loss = F.cross_entropy(model(tokens).reshape(-1, VOCAB), targets.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return body(loss)

    with pytest.raises(CaptureError, match=match):
        tr.cuda.graphed(step, *data[0], warmup=1)
    assert STATE.phase is None and Recorder.active is None  # nothing left half-captured
    assert model(data[0][0]).sum().item() == model(data[0][0]).sum().item()  # host reads work again


def test_item_inside_the_step_is_refused(gpu):
    _capture_refused(gpu, lambda loss: loss.item(), r"Tensor\.item\(\).*outside the step")


def test_branching_on_a_value_is_refused(gpu):
    _capture_refused(gpu, lambda loss: loss if loss > 1 else loss * 2, r"bool\(t\)")


def test_numpy_inside_the_step_is_refused(gpu):
    _capture_refused(gpu, lambda loss: loss.numpy(), r"Tensor\.numpy\(\)")


def test_returning_a_number_is_refused(gpu):
    data = batches(gpu, 1)
    with pytest.raises(CaptureError, match="return tensors"):
        tr.cuda.graphed(lambda tokens, targets: 1.5, *data[0], warmup=1)


def test_dropout_is_refused(gpu):
    data = batches(gpu, 1)
    embedding = nn.Embedding(VOCAB, 8).to(gpu)

    def step(tokens, targets):
        return F.dropout(embedding(tokens), 0.5).sum()

    with pytest.raises(CaptureError, match="dropout draws new random numbers"):
        tr.cuda.graphed(step, *data[0], warmup=1)


def test_adagrad_lr_decay_is_refused(gpu):
    data = batches(gpu, 1)
    model = CharModel().to(gpu)
    opt = optim.Adagrad(model.parameters(), lr=0.1, lr_decay=0.01)

    def step(tokens, targets):
        loss = F.cross_entropy(model(tokens).reshape(-1, VOCAB), targets.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    with pytest.raises(CaptureError, match="lr_decay"):
        tr.cuda.graphed(step, *data[0], warmup=1)


def test_a_shape_change_is_refused_before_anything_runs(gpu):
    data = batches(gpu, 1)
    model, _, step = make_step(gpu)
    graphed = tr.cuda.graphed(step, *data[0], warmup=1)
    before = weights(model)
    longer = tr.tensor(np.zeros((BATCH, STEPS + 1), dtype=np.int64), device=gpu)
    with pytest.raises(CaptureError, match=r"input 0 has shape \(4, 7\).*captured for shape \(4, 6\)"):
        graphed(longer, longer)
    with pytest.raises(CaptureError, match="dtype"):
        graphed(data[0][0].to(dtype=tr.int32), data[0][1])
    with pytest.raises(TypeError, match="expected 2 input tensors"):
        graphed(data[0][0])
    with pytest.raises(TypeError, match="input 1 must be a Tensor"):
        graphed(data[0][0], np.zeros((BATCH, STEPS)))
    for name, value in before.items():
        np.testing.assert_array_equal(weights(model)[name], value)


def test_a_changed_learning_rate_is_refused(gpu):
    data = batches(gpu, 2)
    _, opt, step = make_step(gpu)
    graphed = tr.cuda.graphed(step, *data[0], warmup=1)
    opt.param_groups[0]["lr"] = 5e-3
    with pytest.raises(CaptureError, match=r"param_groups\[0\]\['lr'\] changed from 0.01 to 0.005"):
        graphed(*data[1])


def test_a_replaced_parameter_array_is_refused(gpu):
    data = batches(gpu, 2)
    model, _, step = make_step(gpu)
    graphed = tr.cuda.graphed(step, *data[0], warmup=1)
    model.head.bias.data = tr.zeros(VOCAB, device=gpu)
    with pytest.raises(CaptureError, match="given a new array since the capture"):
        graphed(*data[1])


def test_bad_indices_are_found_after_the_replay(gpu):
    data = batches(gpu, 1)
    _, _, step = make_step(gpu)
    graphed = tr.cuda.graphed(step, *data[0], warmup=1)
    bad_tokens = tr.tensor(np.full((BATCH, STEPS), VOCAB), device=gpu)
    with pytest.raises(IndexError, match=r"embedding: an index is out of range for num_embeddings=11.*replay 1"):
        graphed(bad_tokens, data[0][1])
    bad_targets = tr.tensor(np.full((BATCH, STEPS), -3), device=gpu)
    with pytest.raises(IndexError, match="cross_entropy: a target value is out of range for 11 classes"):
        graphed(data[0][0], bad_targets)


def test_check_false_skips_the_checks(gpu):
    data = batches(gpu, 1)
    _, _, step = make_step(gpu)
    graphed = tr.cuda.graphed(step, *data[0], warmup=1, check=False)
    ignored = tr.tensor(np.full((BATCH, STEPS), -100), device=gpu)  # every target ignored: not an error
    graphed(data[0][0], ignored)


# ------------------------------------------------------------------ bad arguments
def test_the_cpu_cannot_capture():
    data = batches("cpu", 1)
    _, _, step = make_step("cpu")
    with pytest.raises(CaptureError, match="device 'cpu' cannot capture a step as a graph; that needs a CUDA GPU"):
        tr.cuda.graphed(step, *data[0])


@pytest.mark.parametrize("args, kwargs, error, match", [
    (("not callable",), {}, TypeError, "step_fn must be callable"),
    ((lambda: None,), {}, TypeError, "pass the step's input tensors"),
    ((lambda x: x, np.zeros(3)), {}, TypeError, "static input 0 must be a Tensor"),
    ((lambda x: x, None), {"warmup": 0}, ValueError, "warmup must be an int >= 1"),
])
def test_bad_arguments(args, kwargs, error, match):
    if len(args) > 1 and args[1] is None:
        args = (args[0], tr.zeros(2, device="hostless"))
    with pytest.raises(error, match=match):
        tr.cuda.graphed(*args, **kwargs)


def test_inputs_on_two_devices_are_refused():
    with pytest.raises(CaptureError, match="several devices"):
        tr.cuda.graphed(lambda a, b: a, tr.zeros(2, device="hostless"), tr.zeros(2))


# ------------------------------------------------------------------ the CuPy side, with a stand-in cupy
class _Context:
    def __init__(self, log, name):
        self.log, self.name = log, name

    def __enter__(self):
        self.log.append(f"enter {self.name}")

    def __exit__(self, *exc):
        self.log.append(f"exit {self.name}")


def _fake_cupy_backend(log, fail_end=False):
    """A CupyBackend whose ``cupy`` records what capture does with streams, pools and allocators."""
    from tinygrad_rnn.backends.cupy_backend import CupyBackend

    class Stream(_Context):
        def __init__(self, non_blocking):
            super().__init__(log, "stream")
            assert non_blocking  # the legacy default stream cannot capture

        def begin_capture(self):
            log.append("begin_capture")

        def end_capture(self):
            log.append("end_capture")
            if fail_end:
                raise RuntimeError("capture invalidated")
            return types.SimpleNamespace(launch=lambda: log.append("launch"))

    class Pool:
        def malloc(self, size):
            raise AssertionError("not called here")

    cuda = types.SimpleNamespace(MemoryPool=Pool, Stream=Stream,
                                 using_allocator=lambda malloc: _Context(log, "private pool"))
    device = _Context(log, "device")
    device.synchronize = lambda: log.append("synchronize")
    backend = object.__new__(CupyBackend)
    backend.xp, backend._cuda_device = types.SimpleNamespace(cuda=cuda), device
    return backend


def test_cupy_capture_uses_a_private_pool_on_a_side_stream():
    log = []
    backend = _fake_cupy_backend(log)
    backend.begin_capture()
    assert log == ["synchronize", "enter device", "enter private pool", "enter stream", "begin_capture"]
    graph = backend.end_capture()
    assert log[5:] == ["end_capture", "exit stream", "exit private pool", "exit device"]
    assert graph.executed is False and graph.pool is not None
    graph.replay()
    assert log[-3:] == ["enter device", "launch", "exit device"]


def test_cupy_abort_leaves_every_context():
    log = []
    backend = _fake_cupy_backend(log, fail_end=True)
    backend.begin_capture()
    backend.abort_capture()
    assert log[-3:] == ["exit stream", "exit private pool", "exit device"]
    backend.abort_capture()  # a second abort is a no-op
    assert backend._capture is None
