"""nn.GRUCell / nn.GRU ``variant=``: the lecture GRUs, composed and fused, against their equations and each other."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn
from tinygrad_rnn.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from tinygrad_rnn.ops.rnn import GRUCellFn, GRUSequenceFn
from tinygrad_rnn.ops.rnn_gru_variants import GRUVariantCellFn, GRUVariantSequenceFn

VARIANTS = ["reset_before", "no_reset", "mgu", "mut1", "mut2", "mut3"]
ADDS_X = ("mut1", "mut2")  # they need input_size == hidden_size
#: (parameter, row block) that each variant leaves unused: blocks are r, z, n (0, 1, 2) of the 3H rows
UNUSED = {
    "pytorch": [],
    "reset_before": [],
    "no_reset": [("weight_ih", 0), ("weight_hh", 0), ("bias_ih", 0), ("bias_hh", 0)],
    "mgu": [("weight_ih", 1), ("weight_hh", 1), ("bias_ih", 1), ("bias_hh", 1)],
    "mut1": [("weight_hh", 1), ("weight_ih", 2)],
    "mut2": [("weight_ih", 0)],
    "mut3": [],
}


def sizes(variant, input_size=3, hidden_size=4):
    return (hidden_size if variant in ADDS_X else input_size), hidden_size


def cell(variant, impl, bias=True, H=4, device="cpu"):
    return nn.GRUCell(*sizes(variant, hidden_size=H), bias=bias, variant=variant, impl=impl).double().to(device)


def layer(variant, impl, H=4, device="cpu", **options):
    return nn.GRU(*sizes(variant, hidden_size=H), variant=variant, impl=impl, **options).double().to(device)


# ------------------------------------------------------------------ the equations, in NumPy
def sig(a):
    return 1 / (1 + np.exp(-a))


def reference_step(variant, x, h, w_ih, w_hh, b_ih, b_hh):
    """One step of ``variant`` written from its equations (nn.GRUCell's docstring), blocks r, z, n."""
    H = h.shape[1]
    Wr, Wz, Wn = w_ih[:H], w_ih[H : 2 * H], w_ih[2 * H :]
    Ur, Uz, Un = w_hh[:H], w_hh[H : 2 * H], w_hh[2 * H :]
    bir, biz, bin_ = b_ih[:H], b_ih[H : 2 * H], b_ih[2 * H :]
    bhr, bhz, bhn = b_hh[:H], b_hh[H : 2 * H], b_hh[2 * H :]
    if variant == "pytorch":
        r, z = sig(x @ Wr.T + bir + h @ Ur.T + bhr), sig(x @ Wz.T + biz + h @ Uz.T + bhz)
        return (1 - z) * np.tanh(x @ Wn.T + bin_ + r * (h @ Un.T + bhn)) + z * h
    if variant == "reset_before":
        r, z = sig(x @ Wr.T + bir + h @ Ur.T + bhr), sig(x @ Wz.T + biz + h @ Uz.T + bhz)
        return (1 - z) * np.tanh(x @ Wn.T + bin_ + (r * h) @ Un.T + bhn) + z * h
    if variant == "no_reset":
        z = sig(x @ Wz.T + biz + h @ Uz.T + bhz)
        return (1 - z) * np.tanh(x @ Wn.T + bin_ + h @ Un.T + bhn) + z * h
    if variant == "mgu":
        f = sig(x @ Wr.T + h @ Ur.T + bir + bhr)
        return (1 - f) * h + f * np.tanh(x @ Wn.T + (f * h) @ Un.T + bin_ + bhn)
    if variant == "mut1":
        z = sig(x @ Wz.T + biz + bhz)
        r = sig(x @ Wr.T + h @ Ur.T + bir + bhr)
        return np.tanh((r * h) @ Un.T + np.tanh(x) + bin_ + bhn) * z + h * (1 - z)
    if variant == "mut2":
        z = sig(x @ Wz.T + h @ Uz.T + biz + bhz)
        r = sig(x + h @ Ur.T + bir + bhr)
        return np.tanh((r * h) @ Un.T + x @ Wn.T + bin_ + bhn) * z + h * (1 - z)
    assert variant == "mut3"
    z = sig(x @ Wz.T + np.tanh(h) @ Uz.T + biz + bhz)
    r = sig(x @ Wr.T + h @ Ur.T + bir + bhr)
    return np.tanh((r * h) @ Un.T + x @ Wn.T + bin_ + bhn) * z + h * (1 - z)


@pytest.mark.parametrize("impl", ["composed", "fused"])
@pytest.mark.parametrize("variant", ["pytorch"] + VARIANTS)
def test_cell_follows_its_equations(variant, impl):
    rng = np.random.default_rng(0)
    m = cell(variant, impl)
    x, h = rng.standard_normal((3, m.input_size)), rng.standard_normal((3, 4))
    p = {n: q.numpy() for n, q in m.named_parameters()}
    expected = reference_step(variant, x, h, p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
    np.testing.assert_allclose(m(tr.Tensor(x), tr.Tensor(h)).numpy(), expected, rtol=0, atol=1e-12)
    plain = cell(variant, impl, bias=False)  # the same equations with zero biases
    plain.load_state_dict({"weight_ih": m.weight_ih, "weight_hh": m.weight_hh})
    zeros = np.zeros(12)
    expected = reference_step(variant, x, h, p["weight_ih"], p["weight_hh"], zeros, zeros)
    np.testing.assert_allclose(plain(tr.Tensor(x), tr.Tensor(h)).numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_layer_is_the_cell_unrolled(variant):
    """A 1-layer GRU over T steps = the reference step applied T times (forward), h_n its last state."""
    rng = np.random.default_rng(1)
    m = layer(variant, "fused")
    x, h0 = rng.standard_normal((5, 2, m.input_size)), rng.standard_normal((1, 2, 4))
    p = [q.numpy() for q in m.parameters()]
    out, h_n = m(tr.Tensor(x), tr.Tensor(h0))
    h = h0[0]
    for t in range(5):
        h = reference_step(variant, x[t], h, *p)
        np.testing.assert_allclose(out.numpy()[t], h, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_n.numpy()[0], h, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("impl", ["composed", "fused"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_gradcheck_cell(variant, impl, device):
    m = cell(variant, impl, H=2, device=device)
    rng = np.random.default_rng(2)
    x = tr.Tensor(rng.standard_normal((2, m.input_size)), device=device, requires_grad=True)
    h = tr.Tensor(rng.standard_normal((2, 2)), device=device, requires_grad=True)
    assert tr.gradcheck(lambda x, h, *params: m(x, h), [x, h, *m.parameters()])


@pytest.mark.parametrize("impl", ["composed", "fused"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_gradcheck_two_layer_bidirectional(variant, impl, device):
    # MUT1/MUT2 cannot stack bidirectional layers (layer 2 reads 2H features): 2 layers, then bidirectional
    shapes = [dict(num_layers=2), dict(bidirectional=True)] if variant in ADDS_X else [
        dict(num_layers=2, bidirectional=True)]
    for options in shapes:
        m = layer(variant, impl, H=2, device=device, **options)
        rng = np.random.default_rng(3)
        x = tr.Tensor(rng.standard_normal((3, 2, m.input_size)), device=device, requires_grad=True)
        depth = m.num_layers * m.num_directions
        h0 = tr.Tensor(rng.standard_normal((depth, 2, 2)), device=device, requires_grad=True)
        assert tr.gradcheck(lambda x, h0, *params: m(x, h0), [x, h0, *m.parameters()])


def _unused_rows_are_zero(module, variant, H):
    unused = UNUSED[variant]
    for name, p in module.named_parameters():
        base = name.split("_l")[0]
        grad = p.grad.numpy()
        for block in range(3):
            rows = grad[block * H : (block + 1) * H]
            if (base, block) in unused:
                assert np.all(rows == 0), (variant, name, block)
            else:
                assert np.abs(rows).sum() > 0, (variant, name, block)


@pytest.mark.parametrize("impl", ["composed", "fused"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_unused_rows_get_zero_gradients(variant, impl):
    rng = np.random.default_rng(4)
    m = cell(variant, impl)
    (m(tr.Tensor(rng.standard_normal((2, m.input_size))), tr.Tensor(rng.standard_normal((2, 4)))) ** 2).sum().backward()
    _unused_rows_are_zero(m, variant, 4)
    options = dict(num_layers=2) if variant in ADDS_X else dict(num_layers=2, bidirectional=True)
    m = layer(variant, impl if impl == "composed" else "fused", **options)
    out, h_n = m(tr.Tensor(rng.standard_normal((3, 2, m.input_size))))
    ((out ** 2).sum() + h_n.sum()).backward()
    _unused_rows_are_zero(m, variant, 4)


# ------------------------------------------------------------------ fused == composed
def values_and_grads(module, x_np, h_np, device, packed_lengths=None, seed=5):
    """Forward and backward of a random weighting of every output: every value and gradient, on the host."""
    x = tr.Tensor(x_np, device=device, requires_grad=True)
    h = None if h_np is None else tr.Tensor(h_np, device=device, requires_grad=True)
    module.zero_grad()
    if packed_lengths is not None:
        out, h_n = module(pack_padded_sequence(x, packed_lengths, enforce_sorted=False), h)
        out = pad_packed_sequence(out)[0]
    elif isinstance(module, nn.GRUCell):
        out = h_n = module(x, h)
    else:
        out, h_n = module(x, h)
    rng = np.random.default_rng(seed)
    weights = [tr.Tensor(rng.standard_normal(t.shape), device=device) for t in (out, h_n)]
    ((out * weights[0]).sum() + (h_n * weights[1]).sum()).backward()
    result = {"out": out.numpy(), "h_n": h_n.numpy(), "x.grad": x.grad.numpy()}
    if h is not None:
        result["h.grad"] = h.grad.numpy()
    result.update({n + ".grad": p.grad.numpy() for n, p in module.named_parameters()})
    return result


def assert_same(a, b, atol=1e-12):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].shape == b[key].shape, key
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=atol, err_msg=key)


# (options, T, B, unbatched, initial state, packed lengths)
LAYER_CASES = [
    (dict(), 4, 2, False, True, None),
    (dict(num_layers=2, bidirectional=True), 3, 2, False, True, None),
    (dict(bidirectional=True, batch_first=True), 3, 2, False, False, None),
    (dict(num_layers=2, bias=False), 3, 1, False, True, None),
    (dict(num_layers=2, bidirectional=True), 3, None, True, True, None),
    (dict(bidirectional=True), 5, 3, False, True, [3, 5, 1]),
    (dict(num_layers=2), 4, 3, False, False, [4, 2, 2]),
]


@pytest.mark.parametrize("case", range(len(LAYER_CASES)))
@pytest.mark.parametrize("variant", VARIANTS)
def test_fused_equals_composed_layers(variant, case, device):
    options, T, B, unbatched, with_state, lengths = LAYER_CASES[case]
    if variant in ADDS_X and options.get("bidirectional") and options.get("num_layers", 1) > 1:
        options = dict(options, bidirectional=False)
    rng = np.random.default_rng(case)
    m = layer(variant, "composed", device=device, **options).eval()
    I, depth = m.input_size, m.num_layers * m.num_directions
    shape = (T, I) if unbatched else ((B, T, I) if m.batch_first else (T, B, I))
    x = rng.standard_normal(shape)
    h0 = rng.standard_normal((depth, 4) if unbatched else (depth, B, 4)) if with_state else None
    results = {}
    for impl in ("composed", "fused", "fused_step"):
        m.impl = impl
        results[impl] = values_and_grads(m, x, h0, device, lengths)
    assert_same(results["fused"], results["composed"])
    assert_same(results["fused_step"], results["composed"])


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("variant", VARIANTS)
def test_fused_equals_composed_cells(variant, bias, device):
    rng = np.random.default_rng(6)
    m = cell(variant, "composed", bias=bias, device=device)
    for x, h in ((rng.standard_normal((3, m.input_size)), rng.standard_normal((3, 4))),
                 (rng.standard_normal(m.input_size), None)):
        m.impl = "composed"
        composed = values_and_grads(m, x, h, device)
        m.impl = "fused"
        assert_same(values_and_grads(m, x, h, device), composed)


def test_dropout_between_layers_is_the_same_in_every_implementation():
    rng = np.random.default_rng(7)
    m = layer("mgu", "composed", num_layers=3, dropout=0.4).train()
    x = rng.standard_normal((4, 2, 3))
    results = {}
    for impl in ("composed", "fused", "fused_step"):
        m.impl = impl
        tr.manual_seed(11)
        results[impl] = values_and_grads(m, x, None, "cpu")
    assert_same(results["fused"], results["composed"])
    assert_same(results["fused_step"], results["composed"])
    m.eval()
    assert not np.allclose(values_and_grads(m, x, None, "cpu")["out"], results["fused"]["out"])


def test_step_grad_norms_are_the_state_gradients():
    """Inside retain_grads() the fused op records ‖dL/dh_t‖, as a loop of cells with retained h_t shows."""
    rng = np.random.default_rng(8)
    m = layer("mut3", "fused")
    c = cell("mut3", "composed")
    c.load_state_dict({k.replace("_l0", ""): v for k, v in m.state_dict().items()})
    x = rng.standard_normal((4, 2, 3))
    w = rng.standard_normal((4, 2, 4))
    with tr.retain_grads():
        out, _ = m(tr.Tensor(x))
        (out * tr.Tensor(w)).sum().backward()
    hs, h = [], None
    for t in range(4):
        h = c(tr.Tensor(x[t]), h)
        h.retain_grad()
        hs.append(h)
    sum((h * tr.Tensor(w[t])).sum() for t, h in enumerate(hs)).backward()
    expected = [np.linalg.norm(h.grad.numpy()) for h in hs]
    np.testing.assert_allclose(out.grad_fn.trace.step_grad_norms, expected, rtol=1e-12)


# ------------------------------------------------------------------ the ops, names and graphs
def test_each_implementation_runs_its_ops():
    x = tr.randn(3, 2, 3, requires_grad=True)
    out, _ = nn.GRU(3, 4, variant="mgu")(x)
    assert isinstance(out.grad_fn, GRUVariantSequenceFn) and out.grad_fn.cell == "gru_mgu"
    out, _ = nn.GRU(3, 4)(x)
    assert isinstance(out.grad_fn, GRUSequenceFn)
    assert isinstance(nn.GRUCell(3, 4, variant="mut3")(x[0]).grad_fn, GRUVariantCellFn)
    assert isinstance(nn.GRUCell(3, 4, variant="pytorch")(x[0]).grad_fn, GRUCellFn)
    h = nn.GRUCell(3, 4, variant="mgu", impl="composed")(x[0])
    names = set()
    stack = [h.grad_fn]
    while stack:
        fn = stack.pop()
        names.update((fn.trace.names or {}).values())
        stack.extend(link[0] for link in fn.next if type(link) is tuple)
    assert h.name == "h" and {"f", "n"} <= names and not {"r", "z"} & names


def test_graph_draws_a_variant_step_without_pytorchs_gates():
    """The renderer's expanded GRU template is PyTorch's equations: a variant's fused steps stay one node each."""
    from tinygrad_rnn.viz import draw_graph

    out, _ = nn.GRU(3, 4, variant="mgu")(tr.randn(3, 2, 3))
    source = draw_graph(out.sum(), expand_fused=True).source
    assert source.count("label=<GRUCell(mgu)>") == 3
    assert "n = tanh(·)" not in source and "r = σ(·)" not in source


def test_pytorch_variant_is_bit_for_bit_the_default():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 2, 3))
    for impl in ("fused", "fused_step", "composed"):
        tr.manual_seed(0)
        default = nn.GRU(3, 4, num_layers=2, impl=impl)
        tr.manual_seed(0)
        explicit = nn.GRU(3, 4, num_layers=2, variant="pytorch", impl=impl)
        assert np.array_equal(default(tr.Tensor(x, dtype=tr.float32))[0].numpy(),
                              explicit(tr.Tensor(x, dtype=tr.float32))[0].numpy())
        assert repr(explicit) == repr(default)


def test_repr_shows_a_variant():
    assert repr(nn.GRUCell(3, 4, variant="mgu")) == "GRUCell(3, 4, variant='mgu')"
    assert repr(nn.GRU(4, 4, num_layers=2, variant="mut1")) == "GRU(4, 4, num_layers=2, variant='mut1')"
    assert repr(nn.GRU(3, 4)) == "GRU(3, 4)"


def test_variants_keep_pytorchs_parameters_and_init():
    for variant in VARIANTS:
        I, H = sizes(variant, 5, 5)
        tr.manual_seed(0)
        plain = nn.GRU(I, H, num_layers=2)
        tr.manual_seed(0)
        other = nn.GRU(I, H, num_layers=2, variant=variant)
        a, b = plain.state_dict(), other.state_dict()
        assert list(a) == list(b) and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_round_trip_keeps_the_behaviour(variant, tmp_path):
    rng = np.random.default_rng(10)
    m = layer(variant, "fused", num_layers=2)
    x = tr.Tensor(rng.standard_normal((3, 2, m.input_size)))
    tr.save(m.state_dict(), tmp_path / "gru.ckpt")
    fresh = layer(variant, "fused", num_layers=2)
    assert not np.allclose(fresh(x)[0].numpy(), m(x)[0].numpy())
    fresh.load_state_dict(tr.load(tmp_path / "gru.ckpt"))
    np.testing.assert_array_equal(fresh(x)[0].numpy(), m(x)[0].numpy())
    assert fresh.variant == variant


# ------------------------------------------------------------------ refusals
def test_bad_variant_is_refused_with_the_choices():
    choices = "'pytorch', 'reset_before', 'no_reset', 'mgu', 'mut1', 'mut2', 'mut3'"
    for make in (lambda: nn.GRU(3, 4, variant="slides"), lambda: nn.GRUCell(3, 4, variant=None)):
        with pytest.raises(ValueError, match=f"variant must be one of {choices}, got"):
            make()
    with pytest.raises(ValueError, match="gru_cell: variant must be one of"):
        nn.rnn_cells.gru_cell(tr.randn(2, 3), tr.randn(2, 4), tr.randn(12, 3), tr.randn(12, 4), variant="MGU")


@pytest.mark.parametrize("variant", ADDS_X)
def test_mut1_mut2_need_input_size_equal_to_hidden_size(variant):
    with pytest.raises(ValueError, match=f"GRUCell: variant='{variant}' adds the input x itself.*input_size=3"):
        nn.GRUCell(3, 4, variant=variant)
    with pytest.raises(ValueError, match=f"GRU: variant='{variant}'.*input_size=5 and hidden_size=4"):
        nn.GRU(5, 4, variant=variant)
    with pytest.raises(ValueError, match=f"GRU: variant='{variant}'.*bidirectional=True"):
        nn.GRU(4, 4, num_layers=2, bidirectional=True, variant=variant)
    with pytest.raises(ValueError, match=f"gru_cell: variant='{variant}'"):
        nn.rnn_cells.gru_cell(tr.randn(2, 3), tr.randn(2, 4), tr.randn(12, 3), tr.randn(12, 4), impl="composed",
                              variant=variant)
    with pytest.raises(ValueError, match=f"GRUVariantSequenceFn: variant='{variant}'"):
        GRUVariantSequenceFn.apply(tr.randn(2, 1, 3), tr.randn(1, 4), tr.randn(12, 3), tr.randn(12, 4),
                                   bias=False, variant=variant)
    assert nn.GRU(4, 4, num_layers=2, variant=variant) and nn.GRU(4, 4, bidirectional=True, variant=variant)


def test_whole_sequence_op_refuses_double_backward_naming_the_variant():
    m = layer("no_reset", "fused")
    x = tr.randn(3, 2, 3, dtype=tr.float64, requires_grad=True)
    out, _ = m(x)
    with pytest.raises(RuntimeError, match=r"GRU\(variant='no_reset'\) layer 0.*impl=\"composed\""):
        tr.autograd.grad(out.sum(), x, create_graph=True)
    m.impl = "fused_step"  # the per-step op differentiates its composed equations
    assert tr.gradgradcheck(lambda x: m(x)[0], [tr.randn(2, 1, 3, dtype=tr.float64, requires_grad=True)])


@pytest.mark.parametrize("make", [lambda: nn.GRU(3, 4, variant="mgu"), lambda: nn.GRUCell(4, 4, variant="mut2")])
def test_to_torch_refuses_a_variant(make):
    pytest.importorskip("torch")
    module = make()
    with pytest.raises(ValueError, match=f"variant='{module.variant}' has no twin in PyTorch's GRU"):
        tr.to_torch(module)


def _onnx_agrees(model, inputs, path):
    """Export ``model``, run the file in onnxruntime, compare every output with ours."""
    ort = pytest.importorskip("onnxruntime")
    tr.onnx.export(model, inputs, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)})
    with tr.no_grad():
        ours = model(*inputs)
    ours = [t.numpy() for t in (ours if isinstance(ours, tuple) else (ours,))]
    assert len(theirs) == len(ours)
    for a, b in zip(theirs, ours):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("impl", ["fused", "fused_step"])
@pytest.mark.parametrize("variant", ["no_reset", "mgu", "mut3"])
@pytest.mark.parametrize("kind", ["GRU", "GRUCell"])
def test_onnx_export_refuses_a_fused_variant_without_an_onnx_node(kind, variant, impl, tmp_path):
    pytest.importorskip("onnx")
    module, x = (nn.GRU(3, 4, variant=variant, impl=impl), tr.randn(4, 2, 3)) if kind == "GRU" else (
        nn.GRUCell(3, 4, variant=variant, impl=impl), tr.randn(2, 3))
    with pytest.raises(ValueError, match=f"variant='{variant}' has no twin in PyTorch's GRU.*impl=\"composed\""):
        tr.onnx.export(module, (x,), tmp_path / "gru.onnx")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("impl", ["fused", "fused_step"])
def test_onnx_export_of_reset_before_is_onnxs_gru(impl, tmp_path):
    """ONNX's GRU node with linear_before_reset=0 is the slides' GRU: the fused ops export as that node."""
    onnx = pytest.importorskip("onnx")
    model = nn.GRU(3, 4, num_layers=2, bidirectional=True, variant="reset_before", impl=impl).eval()
    _onnx_agrees(model, (tr.randn(5, 2, 3), tr.randn(4, 2, 4)), tmp_path / "gru.onnx")
    nodes = [n for n in onnx.load(str(tmp_path / "gru.onnx")).graph.node if n.op_type == "GRU"]
    assert len(nodes) == (4 if impl == "fused" else 20)
    assert all(a.i == 0 for n in nodes for a in n.attribute if a.name == "linear_before_reset")
    _onnx_agrees(nn.GRUCell(3, 4, variant="reset_before").eval(), (tr.randn(2, 3), tr.randn(2, 4)),
                 tmp_path / "cell.onnx")


def test_onnx_export_of_a_composed_variant_runs_its_equations(tmp_path):
    """What the refusal suggests works: the composed cells export as elementary ops, and onnxruntime agrees."""
    pytest.importorskip("onnx")
    _onnx_agrees(nn.GRU(4, 4, num_layers=2, variant="mut1", impl="composed").eval(), (tr.randn(3, 2, 4),),
                 tmp_path / "mut1.onnx")


# ------------------------------------------------------------------ PyTorch's GRU is unchanged
@pytest.mark.parametrize("impl", ["fused", "fused_step", "composed"])
def test_pytorch_variant_equals_torch(impl):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    x, h0 = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 5))
    theirs = torch.nn.GRU(3, 5, num_layers=2, bidirectional=True).double()
    ours = nn.GRU(3, 5, num_layers=2, bidirectional=True, variant="pytorch", impl=impl).double()
    ours.load_state_dict({k: tr.Tensor(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()})
    tx, th = torch.tensor(x, requires_grad=True), torch.tensor(h0, requires_grad=True)
    t_out, t_hn = theirs(tx, th)
    (t_out.sum() + (t_hn * 2).sum()).backward()
    ox, oh = tr.Tensor(x, requires_grad=True), tr.Tensor(h0, requires_grad=True)
    o_out, o_hn = ours(ox, oh)
    (o_out.sum() + (o_hn * 2).sum()).backward()
    np.testing.assert_allclose(o_out.numpy(), t_out.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(o_hn.numpy(), t_hn.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(oh.grad.numpy(), th.grad.numpy(), atol=1e-12)
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), atol=1e-12, err_msg=name)
    cell_t = torch.nn.GRUCell(3, 5).double()
    cell_o = nn.GRUCell(3, 5, variant="pytorch", impl=impl).double()
    cell_o.load_state_dict({k: tr.Tensor(v.detach().numpy().copy()) for k, v in cell_t.state_dict().items()})
    np.testing.assert_allclose(cell_o(tr.Tensor(x[0]), tr.Tensor(h0[0])).numpy(),
                               cell_t(torch.tensor(x[0]), torch.tensor(h0[0])).detach().numpy(), atol=1e-12)
