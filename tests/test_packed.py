"""Packed variable-length sequences (``nn.utils.rnn``) and the recurrent layers on them.

PyTorch is the oracle where it is installed (each such test skips without
it); every other check — packed vs one sequence at a time, the fused
padding-skipping op vs the composed loop, gradients through pack/pad, error
messages, the emulated-CUDA backend vs NumPy — runs without it.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn
from tinygrad_rnn.gradcheck import gradcheck
from tinygrad_rnn.nn.utils.rnn import (
    PackedSequence, lengths_to_padding_mask, pack_padded_sequence, pack_sequence, pad_packed_sequence, pad_sequence,
    unpack_sequence, unpad_sequence,
)
from tinygrad_rnn.ops.rnn import GRUSequenceFn, LSTMSequenceFn, RNNSequenceFn

I, H = 3, 4
LENGTHS = [4, 6, 1, 6, 3]  # unsorted, with a tie, the longest twice
T = max(LENGTHS)
IMPLS = ["fused", "fused_step", "composed"]
KINDS = ["RNN", "LSTM", "GRU"]
LAYOUTS = [(1, False), (2, False), (1, True), (2, True)]  # (num_layers, bidirectional)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def make_layer(kind, layers=1, bidirectional=False, impl="fused", **kw):
    tr.manual_seed(0)
    return getattr(nn, kind)(I, H, num_layers=layers, bidirectional=bidirectional, impl=impl, **kw).double()


def states(kind, layer, seed=1, batch=len(LENGTHS)):
    """Random initial states for ``layer`` as NumPy arrays (h0,) or (h0, c0)."""
    shape = (layer.num_layers * layer.num_directions, batch, H)
    return [rand(*shape, seed=seed + k) for k in range(2 if kind == "LSTM" else 1)]


def as_hx(arrays):
    tensors = [tr.Tensor(a, requires_grad=True) for a in arrays]
    return tensors, (tensors[0] if len(tensors) == 1 else tuple(tensors))


def finals_tuple(f):
    return f if isinstance(f, tuple) else (f,)


def run_packed(layer, x_np, lengths, hx_np, weights):
    """Output data, finals, and the gradients of input, states and parameters, for a fixed random loss."""
    x = tr.Tensor(x_np, requires_grad=True)
    hx_t, hx = as_hx(hx_np) if hx_np is not None else ([], None)
    out, finals = layer(pack_padded_sequence(x, lengths, enforce_sorted=False), hx)
    finals = finals_tuple(finals)
    loss = (out.data * tr.Tensor(weights)).sum() + sum((f * (k + 1.5)).sum() for k, f in enumerate(finals))
    layer.zero_grad()
    loss.backward()
    grads = [x.grad.numpy()] + [h.grad.numpy() for h in hx_t] + [p.grad.numpy() for p in layer.parameters()]
    return [out.data.numpy()] + [f.numpy() for f in finals], grads


# --------------------------------------------------------------------------- pack / pad vs PyTorch
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths_as", ["list", "numpy", "tensor"])
def test_pack_and_pad_match_torch(torch, batch_first, lengths_as):
    x_np = rand(5, T, 2) if batch_first else rand(T, 5, 2)
    lengths = {"list": LENGTHS, "numpy": np.array(LENGTHS), "tensor": tr.tensor(LENGTHS)}[lengths_as]
    ours = pack_padded_sequence(tr.Tensor(x_np), lengths, batch_first=batch_first, enforce_sorted=False)
    theirs = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x_np), LENGTHS, batch_first, enforce_sorted=False)
    np.testing.assert_array_equal(ours.data.numpy(), theirs.data.numpy())
    for field in ("batch_sizes", "sorted_indices", "unsorted_indices"):
        np.testing.assert_array_equal(getattr(ours, field).numpy(), getattr(theirs, field).numpy())
    assert ours.batch_sizes.dtype == tr.int64 and ours.batch_sizes.device == "cpu"
    for total in (None, T + 2):
        padded, lens = pad_packed_sequence(ours, batch_first, padding_value=-7.0, total_length=total)
        t_padded, t_lens = torch.nn.utils.rnn.pad_packed_sequence(theirs, batch_first, -7.0, total)
        np.testing.assert_array_equal(padded.numpy(), t_padded.numpy())
        np.testing.assert_array_equal(lens.numpy(), t_lens.numpy())
        assert lens.dtype == tr.int64 and lens.device == "cpu"


def test_sorted_packing_matches_torch(torch):
    lengths = sorted(LENGTHS, reverse=True)
    x_np = rand(T, 5, 2)
    ours = pack_padded_sequence(tr.Tensor(x_np), lengths)
    theirs = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x_np), lengths)
    np.testing.assert_array_equal(ours.data.numpy(), theirs.data.numpy())
    np.testing.assert_array_equal(ours.batch_sizes.numpy(), theirs.batch_sizes.numpy())
    assert ours.sorted_indices is None and ours.unsorted_indices is None


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence_and_pack_sequence_match_torch(torch, batch_first, padding_side):
    seqs = [rand(n, 2, seed=n) for n in LENGTHS]
    ours = pad_sequence([tr.Tensor(s) for s in seqs], batch_first, 3.5, padding_side=padding_side)
    theirs = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first, 3.5, padding_side)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    packed = pack_sequence([tr.Tensor(s) for s in seqs], enforce_sorted=False)
    t_packed = torch.nn.utils.rnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    np.testing.assert_array_equal(packed.data.numpy(), t_packed.data.numpy())
    np.testing.assert_array_equal(packed.sorted_indices.numpy(), t_packed.sorted_indices.numpy())


# --------------------------------------------------------------------------- pack / pad without PyTorch
def test_pack_then_pad_gives_the_input_back_with_padding():
    x_np = rand(T, 5, 2)
    packed = pack_padded_sequence(tr.Tensor(x_np), LENGTHS, enforce_sorted=False)
    assert packed.batch_sizes.tolist() == [5, 4, 4, 3, 2, 2]
    assert packed.sorted_indices.tolist() == [1, 3, 0, 4, 2] and packed.unsorted_indices.tolist() == [2, 0, 4, 1, 3]
    padded, lens = pad_packed_sequence(packed, padding_value=9.0)
    assert lens.tolist() == LENGTHS
    for b, n in enumerate(LENGTHS):
        np.testing.assert_array_equal(padded.numpy()[:n, b], x_np[:n, b])
        assert np.all(padded.numpy()[n:, b] == 9.0)
    for seq, n, b in zip(unpack_sequence(packed), LENGTHS, range(5)):
        np.testing.assert_array_equal(seq.numpy(), x_np[:n, b])
    for seq, n, b in zip(unpad_sequence(padded, lens), LENGTHS, range(5)):
        np.testing.assert_array_equal(seq.numpy(), x_np[:n, b])


def test_gradients_flow_through_pack_and_pad():
    x = tr.Tensor(rand(T, 5, 2), requires_grad=True)
    w = rand(T + 1, 5, 2, seed=3)
    padded, _ = pad_packed_sequence(pack_padded_sequence(x, LENGTHS, enforce_sorted=False), total_length=T + 1)
    (padded * tr.Tensor(w)).sum().backward()
    mask = np.arange(T)[:, None] < np.array(LENGTHS)[None, :]
    np.testing.assert_array_equal(x.grad.numpy(), np.where(mask[..., None], w[:T], 0.0))
    seqs = [tr.Tensor(rand(n, 2, seed=n), requires_grad=True) for n in LENGTHS]
    (pad_sequence(seqs, batch_first=True) * tr.Tensor(w[:T].transpose(1, 0, 2))).sum().backward()
    for b, s in enumerate(seqs):
        np.testing.assert_array_equal(s.grad.numpy(), w[: LENGTHS[b], b])


def test_packed_sequence_is_a_named_tuple_and_moves_between_devices():
    packed = pack_sequence([tr.randn(3, 2), tr.randn(1, 2), tr.randn(2, 2)], enforce_sorted=False)
    data, batch_sizes, sorted_indices, unsorted_indices = packed
    assert packed._fields == ("data", "batch_sizes", "sorted_indices", "unsorted_indices")
    assert data is packed.data and batch_sizes.tolist() == [3, 2, 1] and not packed.is_cuda
    assert packed.to("cpu") is packed
    moved = packed.to("hostless")
    assert isinstance(moved, PackedSequence) and moved.data.device == "hostless"
    assert moved.sorted_indices.device == "hostless" and moved.batch_sizes.device == "cpu"
    assert packed.double().data.dtype == tr.float64
    rebuilt = PackedSequence(data, batch_sizes, sorted_indices)
    assert rebuilt.unsorted_indices.tolist() == unsorted_indices.tolist()


def test_the_module_is_reachable_and_the_old_utils_still_import():
    from tinygrad_rnn.nn.utils import clip_grad_norm_, detach_state  # noqa: F401

    assert tr.nn.utils.rnn.pack_padded_sequence is pack_padded_sequence


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("lengths, kwargs, match", [
    ([4, 6, 1, 6, 3], {}, r"pack_padded_sequence: lengths must be sorted in decreasing order.*enforce_sorted=False"),
    ([6, 4, 0, 3, 1], {}, r"pack_padded_sequence: every length must be at least 1, got lengths\[2\] = 0"),
    ([6, 4, -1, 3, 1], {}, r"at least 1, got lengths\[2\] = -1"),
    ([7, 4, 2, 2, 1], {}, r"lengths\[0\] = 7 is larger than the padded time dimension 6"),
    ([6, 4, 3], {}, r"expected 5 lengths, one per sequence of the batch of input \(6, 5, 2\), got 3"),
    ([6.5, 4, 3, 2, 1], {"enforce_sorted": False}, r"lengths must hold integers"),
])
def test_bad_lengths_raise_clear_errors(lengths, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        pack_padded_sequence(tr.randn(T, 5, 2), lengths, **kwargs)


def test_lengths_on_a_device_and_a_short_total_length_are_refused():
    with pytest.raises(ValueError, match=r"pack_padded_sequence: lengths must be .* CPU .*got a tensor on hostless"):
        pack_padded_sequence(tr.randn(T, 5, 2), tr.tensor(LENGTHS, device="hostless"), enforce_sorted=False)
    packed = pack_padded_sequence(tr.randn(T, 5, 2), LENGTHS, enforce_sorted=False)
    with pytest.raises(ValueError, match=r"pad_packed_sequence: total_length=4 is shorter than the longest .*6 steps"):
        pad_packed_sequence(packed, total_length=4)
    with pytest.raises(TypeError, match=r"pad_packed_sequence: expected a PackedSequence, got Tensor"):
        pad_packed_sequence(tr.randn(3, 2))
    with pytest.raises(ValueError, match=r"pack_sequence: lengths must be sorted"):
        pack_sequence([tr.randn(1, 2), tr.randn(2, 2)])
    with pytest.raises(ValueError, match=r"LSTM: expected packed data of shape \(sum\(batch_sizes\), 3\)"):
        nn.LSTM(3, 4)(pack_sequence([tr.randn(2, 5)]))


# --------------------------------------------------------------------------- layers vs PyTorch
@pytest.mark.parametrize("layers, bidirectional", LAYOUTS)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", KINDS)
def test_packed_layers_match_torch(torch, kind, impl, layers, bidirectional):
    layer = make_layer(kind, layers, bidirectional, impl)
    reference = getattr(torch.nn, kind)(I, H, num_layers=layers, bidirectional=bidirectional).double()
    reference.load_state_dict({k: torch.tensor(v.numpy()) for k, v in layer.state_dict().items()})
    x_np, hx_np, w = rand(T, 5, I), states(kind, layer), rand(sum(LENGTHS), layer.num_directions * H, seed=9)
    values, grads = run_packed(layer, x_np, LENGTHS, hx_np, w)

    x = torch.tensor(x_np, requires_grad=True)
    hx_t = [torch.tensor(a, requires_grad=True) for a in hx_np]
    out, finals = reference(torch.nn.utils.rnn.pack_padded_sequence(x, LENGTHS, enforce_sorted=False),
                            hx_t[0] if len(hx_t) == 1 else tuple(hx_t))
    finals = finals_tuple(finals)
    (( out.data * torch.tensor(w)).sum() + sum((f * (k + 1.5)).sum() for k, f in enumerate(finals))).backward()
    t_values = [out.data.detach().numpy()] + [f.detach().numpy() for f in finals]
    t_grads = [x.grad.numpy()] + [h.grad.numpy() for h in hx_t] + [p.grad.numpy() for p in reference.parameters()]
    for ours, theirs in zip(values + grads, t_values + t_grads):
        np.testing.assert_allclose(ours, theirs, atol=1e-10, rtol=0)


def test_relu_rnn_without_hx_matches_torch(torch):
    layer = make_layer("RNN", 2, True, nonlinearity="relu")
    reference = torch.nn.RNN(I, H, 2, nonlinearity="relu", bidirectional=True).double()
    reference.load_state_dict({k: torch.tensor(v.numpy()) for k, v in layer.state_dict().items()})
    x_np = rand(T, 5, I)
    out, h = layer(pack_padded_sequence(tr.Tensor(x_np), LENGTHS, enforce_sorted=False))
    t_out, t_h = reference(torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x_np), LENGTHS, enforce_sorted=False))
    np.testing.assert_allclose(out.data.numpy(), t_out.data.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(h.numpy(), t_h.detach().numpy(), atol=1e-12)


# --------------------------------------------------------------------------- layers without PyTorch
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", KINDS)
def test_packed_equals_one_sequence_at_a_time(kind, impl):
    layer = make_layer(kind, 2, True, impl)
    x_np, hx_np = rand(T, 5, I), states(kind, layer)
    out, finals = layer(pack_padded_sequence(tr.Tensor(x_np), LENGTHS, enforce_sorted=False),
                        as_hx(hx_np)[1])
    padded, _ = pad_packed_sequence(out)
    finals = finals_tuple(finals)
    for b, n in enumerate(LENGTHS):
        alone_hx = [tr.Tensor(a[:, b : b + 1]) for a in hx_np]
        alone_out, alone_finals = layer(tr.Tensor(x_np[:n, b : b + 1]), alone_hx[0] if len(alone_hx) == 1 else tuple(alone_hx))
        np.testing.assert_allclose(padded.numpy()[:n, b : b + 1], alone_out.numpy(), atol=1e-12)
        assert np.all(padded.numpy()[n:, b] == 0)
        for f, g in zip(finals, finals_tuple(alone_finals)):
            np.testing.assert_allclose(f.numpy()[:, b : b + 1], g.numpy(), atol=1e-12)


@pytest.mark.parametrize("variant", [{}, {"peephole": True}, {"coupled": True}, {"peephole": True, "coupled": True}])
@pytest.mark.parametrize("kind", KINDS)
def test_fused_padding_skip_equals_the_composed_loop(kind, variant):
    if variant and kind != "LSTM":
        pytest.skip("peephole/coupled are LSTM options")
    results = []
    for impl in ("fused", "composed"):
        layer = make_layer(kind, 2, True, impl, **variant)
        results.append(run_packed(layer, rand(T, 5, I), LENGTHS, states(kind, layer), rand(sum(LENGTHS), 2 * H, seed=9)))
    for ours, reference in zip(results[0][0] + results[0][1], results[1][0] + results[1][1]):
        np.testing.assert_allclose(ours, reference, atol=1e-12)


def test_the_fused_op_runs_only_the_active_rows():
    """Steps of a packed batch see only their running sequences: the op records batch_sizes and its
    dx is in the packed layout (no (T, B, I) padding anywhere)."""
    layer = make_layer("GRU")
    packed = pack_padded_sequence(tr.Tensor(rand(T, 5, I), requires_grad=True), LENGTHS, enforce_sorted=False)
    out, _ = layer(packed)
    fn = out.data.grad_fn
    assert isinstance(fn, GRUSequenceFn) and fn.active == (5, 4, 4, 3, 2, 2) and fn.steps == T
    assert out.data.shape == (sum(LENGTHS), H)


def test_dropout_with_packed_input_is_deterministic_under_a_seed():
    layer = make_layer("LSTM", 3, True, dropout=0.5)
    layer.train()
    packed = pack_padded_sequence(tr.Tensor(rand(T, 5, I)), LENGTHS, enforce_sorted=False)
    runs = []
    for _ in range(2):
        tr.manual_seed(123)
        out, (h, c) = layer(packed)
        runs.append((out.data.numpy(), h.numpy(), c.numpy()))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    layer.eval()
    evaluated, _ = layer(packed)
    assert not np.allclose(evaluated.data.numpy(), runs[0][0])


@pytest.mark.parametrize("direction", [0, 1])
def test_packed_lstm_op_gradcheck(direction):
    tr.manual_seed(0)
    sizes, N = (3, 2, 2, 1), 8
    leaf = lambda *shape: tr.randn(*shape, dtype=tr.float64, requires_grad=True)  # noqa: E731
    inputs = [leaf(N, 2), leaf(3, H), leaf(3, H), leaf(4 * H, 2), leaf(4 * H, H), leaf(4 * H), leaf(4 * H), leaf(3 * H)]

    def fn(*args):
        return LSTMSequenceFn.apply(*args, bias=True, peephole=True, direction=direction, batch_sizes=sizes)

    assert gradcheck(fn, inputs, atol=1e-7)


def test_packed_rnn_and_gru_ops_gradcheck():
    tr.manual_seed(1)
    sizes, N = (3, 3, 1), 7
    leaf = lambda *shape: tr.randn(*shape, dtype=tr.float64, requires_grad=True)  # noqa: E731
    for op, G in ((RNNSequenceFn, 1), (GRUSequenceFn, 3)):
        inputs = [leaf(N, 2), leaf(3, H), leaf(G * H, 2), leaf(G * H, H), leaf(G * H), leaf(G * H)]
        for direction in (0, 1):
            assert gradcheck(lambda *a: op.apply(*a, direction=direction, batch_sizes=sizes), inputs, atol=1e-7)


def test_bad_batch_sizes_are_refused_by_the_op():
    args = [tr.randn(5, 2), tr.randn(3, H), tr.randn(H, 2), tr.randn(H, H)]
    with pytest.raises(ValueError, match=r"RNNSequenceFn: batch_sizes must be positive and non-increasing"):
        RNNSequenceFn.apply(*args, bias=False, batch_sizes=(2, 3))
    with pytest.raises(ValueError, match=r"RNNSequenceFn: batch_sizes \[3, 1\] describe 4 rows"):
        RNNSequenceFn.apply(*args, bias=False, batch_sizes=(3, 1))


@pytest.mark.parametrize("kind", KINDS)
def test_packed_fused_op_on_the_device_backend_equals_numpy(device, kind):
    """On ``hostless`` the fused ops run CuPy's CUDA gate kernels compiled for the CPU (when a C++
    compiler is there), on prefix views of the packed buffers; on ``cuda`` the real kernels."""
    layer = make_layer(kind, 2, True)
    x_np, hx_np, w = rand(T, 5, I), states(kind, layer), rand(sum(LENGTHS), 2 * H, seed=9)
    reference = run_packed(layer, x_np, LENGTHS, hx_np, w)
    layer.to(device)
    x = tr.Tensor(x_np, device=device, requires_grad=True)
    hx_t = [tr.Tensor(a, device=device, requires_grad=True) for a in hx_np]
    out, finals = layer(pack_padded_sequence(x, LENGTHS, enforce_sorted=False),
                        hx_t[0] if len(hx_t) == 1 else tuple(hx_t))
    assert out.data.device == device and out.batch_sizes.device == "cpu"
    finals = finals_tuple(finals)
    layer.zero_grad()
    ((out.data * tr.Tensor(w, device=device)).sum() + sum((f * (k + 1.5)).sum() for k, f in enumerate(finals))).backward()
    values = [out.data.numpy()] + [f.numpy() for f in finals]
    grads = [x.grad.numpy()] + [h.grad.numpy() for h in hx_t] + [p.grad.numpy() for p in layer.parameters()]
    for ours, expected in zip(values + grads, reference[0] + reference[1]):
        np.testing.assert_allclose(ours, expected, atol=1e-12)


def test_the_graph_shows_how_many_sequences_each_step_runs():
    from tinygrad_rnn.viz import draw_graph

    out, h = make_layer("RNN")(pack_padded_sequence(tr.Tensor(rand(T, 5, I)), LENGTHS, enforce_sorted=False))
    boxed = draw_graph(out.data.sum() + h.sum(), rankdir="LR").source  # a box per step, labelled
    lecture = draw_graph(out.data.sum() + h.sum()).source  # no step boxes: each x_t says it
    for t, n in enumerate((5, 4, 4, 3, 2, 2)):
        assert f"t={t} ({n} active)" in boxed
        assert f'label=<x<sub>{t}</sub><br/><font point-size="3"> </font><br/><font point-size="9">({n}, {I})' in lecture
    assert [int(n) for n in re.findall(r'point-size="9">(\d) active<', lecture)] == [5, 4, 4, 3, 2, 2]


# --------------------------------------------------------------------------- masks and attention
def test_lengths_to_padding_mask():
    mask = lengths_to_padding_mask([3, 1, 0], max_len=4)
    assert mask.dtype == tr.bool_ and mask.shape == (3, 4)
    assert mask.tolist() == [[False, False, False, True], [False, True, True, True], [True, True, True, True]]
    assert lengths_to_padding_mask(tr.tensor([2, 1]), batch_first=False).tolist() == [[False, False], [False, True]]
    with pytest.raises(ValueError, match=r"lengths_to_padding_mask: max_len=2 is shorter than the longest length 3"):
        lengths_to_padding_mask([3, 1], max_len=2)


@pytest.mark.parametrize("as_float", [False, True])
def test_multihead_attention_key_padding_mask_matches_torch(torch, as_float):
    tr.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).double()
    reference = torch.nn.MultiheadAttention(8, 2, batch_first=True).double()
    reference.load_state_dict({k: torch.tensor(v.numpy()) for k, v in mha.state_dict().items()})
    q, kv = rand(3, 4, 8), rand(3, 5, 8, seed=2)
    mask = lengths_to_padding_mask([5, 2, 3])
    t_mask = torch.tensor(mask.numpy())
    if as_float:
        mask = tr.Tensor(np.where(mask.numpy(), -1e9, 0.0))
        t_mask = torch.tensor(np.where(t_mask.numpy(), -1e9, 0.0))
    out, weights = mha(tr.Tensor(q), tr.Tensor(kv), tr.Tensor(kv), key_padding_mask=mask)
    t_out, t_weights = reference(torch.tensor(q), torch.tensor(kv), torch.tensor(kv), key_padding_mask=t_mask)
    np.testing.assert_allclose(out.numpy(), t_out.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(weights.numpy(), t_weights.detach().numpy(), atol=1e-10)
    assert np.all(weights.numpy()[1, :, 2:] == 0)
