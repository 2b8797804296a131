"""Second derivatives of every differentiable op: ``gradgradcheck`` in float64, on every backend.

Each case names the op classes whose backward it differentiates; a wrapper
around the create_graph walk records which op classes really ran their
backward on Tensors, and ``test_every_op_is_covered`` checks that every
Function subclass under ``tinygrad_rnn/ops`` has a case (the whole-sequence
fused ops refuse double backward by design: tested in ``test_higher_order.py``).
"""
import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F
from conftest import to_device
from test_ops_gradcheck import UNARY, leaf  # noqa: F401  (leaf: also for test_gradgrad_losses_layers)
from tinygrad_rnn import ops
from tinygrad_rnn.autograd import Function, graph_mode





def const(data, device):
    return to_device(np.asarray(data), device)


def _setitem(x, v):
    y = x * 1.0
    y[1:3, 0] = v
    return y * y


def _fill(x, v):
    y = x * 1.0
    y[0].copy_(v[0])
    return (y * x).sum(1)


def _pack_pad(x):
    """Pack a (T, B, *) batch of lengths 4, 2, 1 and pad it back (zeros past each length)."""
    from tinygrad_rnn.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    packed = pack_padded_sequence(x, [4, 2, 1])
    return pad_packed_sequence(packed, total_length=x.shape[0])[0]


def _other(x):
    """A device other than ``x``'s (the test backends are all on the host)."""
    return "hostless" if x.device == "cpu" else "cpu"


def _gru_variant_cells(x, h, w_ih, w_hh, b_ih, b_hh):
    """One fused step of every lecture GRU variant (input size = hidden size, as MUT1/MUT2 need)."""
    from tinygrad_rnn.nn.rnn_cells import gru_cell

    variants = ("reset_before", "no_reset", "mgu", "mut1", "mut2", "mut3")
    return tuple(gru_cell(x, h, w_ih, w_hh, b_ih, b_hh, impl="fused", variant=v) for v in variants)


#: name -> (op classes it checks, fn, input shapes or a builder taking the device)
CASES = {
    "gelu": (["GELUFn"], lambda x: F.gelu(x), [(3, 4)]),
    "erf": (["Erf"], None, None),  # third order through GELU: test_third_order_through_gelu
    "gelu_tanh": (["GELUFn"], lambda x: F.gelu(x, approximate="tanh"), [(3, 4)]),
    "silu": (["SiLUFn"], lambda x: F.silu(x), [(3, 4)]),
    "leaky_relu": (["LeakyReLUFn"], lambda x: F.leaky_relu(x, 0.1) * x, [(3, 4)]),
    "setitem": (["SetItem"], _setitem, [(4, 3), (2,)]),
    "copy_": (["Fill"], _fill, [(2, 3), (2, 3)]),
    "einsum": (["Einsum"], lambda a, b: tr.einsum("ij,jk->ik", a, b) ** 2, [(2, 3), (3, 4)]),
    "einsum_trace": (["Einsum"], lambda a: tr.einsum("ii", a * a), [(3, 3)]),
    "einsum_broadcast": (["Einsum"], lambda a, b: tr.einsum("bij,bjk->bik", a, b).sin(), [(1, 2, 3), (4, 3, 2)]),
    "gather": (["Gather"], lambda x: tr.gather(x * x, 1, const([[0, 2, 2], [1, 0, 1]], x.device)), [(2, 3)]),
    "tril_triu": (["Tril", "Triu"], lambda x: tr.tril(x * x, -1) + tr.triu(x.exp(), 1), [(3, 4)]),
    "linear": (["LinearFn"], lambda x, w, b: F.linear(x, w, b).tanh(), [(2, 3), (4, 3), (4,)]),
    "embedding": (["EmbeddingFn"], lambda w: F.embedding(const([0, 2, 2], w.device), w) ** 2, [(3, 4)]),
    "dropout": (["DropoutFn"], lambda x: (tr.manual_seed(0), F.dropout(x * x, 0.3, True))[1], [(3, 4)]),
    "layer_norm": (["LayerNormFn"], lambda x, w, b: F.layer_norm(x, (4,), w, b), [(3, 4), (4,), (4,)]),
    "layer_norm_plain": (["LayerNormFn"], lambda x: F.layer_norm(x, (2, 4)), [(3, 2, 4)]),
    "cross_entropy": (["CrossEntropy"], lambda x: F.cross_entropy(x, const([0, 3, 1], x.device)), [(3, 4)]),
    "cross_entropy_smooth_ignore": (
        ["CrossEntropy"],
        lambda x, w: F.cross_entropy(x, const([0, 3, 1], x.device), (w * w), ignore_index=3, label_smoothing=0.2),
        [(3, 4), (4,)],
    ),
    "nll": (["NLL"], lambda x: F.nll_loss((x * x).log_softmax(1), const([0, 3, 1], x.device), reduction="sum"), [(3, 4)]),
    "bce_logits": (
        ["BCEWithLogits"],
        lambda x, t: F.binary_cross_entropy_with_logits(x, t.sigmoid(), pos_weight=const([1.5, 0.5, 2.0, 1.0], x.device)),
        [(3, 4), (3, 4)],
    ),
    "bce": (["BinaryCrossEntropy"], lambda x, t: F.binary_cross_entropy(x.sigmoid(), t.sigmoid()), [(3, 4), (3, 4)]),
    "kl_div": (["KLDiv"], lambda x, t: F.kl_div(x.log_softmax(1), t.softmax(1), reduction="batchmean"), [(3, 4), (3, 4)]),
    "kl_div_log": (["KLDiv"], lambda x, t: F.kl_div(x, t, reduction="sum", log_target=True), [(3, 4), (3, 4)]),
    "smooth_l1": (["SmoothL1"], lambda x, t: F.smooth_l1_loss(x * x, t, beta=0.5), [(3, 4), (3, 4)]),
    "norm": (["VectorNorm"], lambda x: x.norm(dim=1) + x.norm(p=3) + x.norm(p=1), [(3, 4)]),
    "cosine_similarity": (["CosineSimilarityFn"], lambda a, b: F.cosine_similarity(a, b), [(3, 4), (3, 4)]),
    "pad_constant": (["ConstantPad"], lambda x: F.pad(x * x, (1, 2), value=0.5), [(2, 3)]),
    "pad_reflect": (["IndexPad"], lambda x: F.pad(x * x, (2, 1), mode="reflect"), [(2, 2, 4)]),
    "pad_replicate": (["IndexPad"], lambda x: F.pad(x.exp(), (1, 2), mode="replicate"), [(2, 2, 3)]),
    "sin_cos": (["Sin", "Cos"], lambda x: x.sin() * x.cos(), [(3, 4)]),
    "log1p": (["Log1p"], lambda x: (x * x).log1p(), [(3, 4)]),
    "sign": (["Sign"], lambda x: x.sign() * x * x, [(3, 4)]),
    "nan_to_num": (["NanToNum"], lambda x: (x * x).nan_to_num(), [(3, 4)]),
    "logsumexp": (["LogSumExp"], lambda x: x.logsumexp(1) + x.logsumexp((0, 1), keepdim=True).sum(), [(3, 4)]),
    "cumsum": (["CumSum"], lambda x: (x * x).cumsum(1), [(3, 4)]),
    "cat_stack": (["Cat", "Stack"], lambda a, b: tr.cat([a * b, b], 1) * tr.stack([a, b], 1).sum(1).repeat(1, 2), [(2, 3), (2, 3)]),
    "repeat": (["Repeat"], lambda x: (x * x).repeat(2, 1, 3), [(2, 3)]),
    "flip": (["Flip"], lambda x: (x * x).flip(1), [(2, 3)]),
    "unbind": (["Unbind"], lambda x: (x * x).unbind(1)[2] * x[:, 0], [(2, 3)]),
    "expand": (["Expand"], lambda x: (x * x).expand(3, 2, 3), [(2, 3)]),
    "cast": (["Cast"], lambda x: (x * x).float().double() * x, [(2, 3)], dict(eps=1e-3, atol=1e-3, rtol=1e-2)),
    "to_device": (["ToDevice"], lambda x: ((x * x).to(_other(x)) * x.to(_other(x))).to(x.device), [(2, 3)]),
    "clone": (["Clone"], lambda x: (x * x).clone() * x, [(2, 3)]),
    "clamp_abs_relu": (["Clamp", "Abs", "Relu"], lambda x: (x * x).clamp(0.1, 0.9) + (x * x.abs()) + x.relu() * x, [(3, 4)]),
    "div_pow": (["Div", "Pow", "PowScalar"], lambda a, b: a / b + a**b + (a * b) ** 3, ["positive(3,)", "positive(3,)"]),
    "maximum_minimum": (["Maximum", "Minimum"], lambda a, b: tr.maximum(a * a, b) * tr.minimum(a, b * b), [(3, 4), (3, 4)]),
    "neg_exp_log_sqrt": (["Neg", "Exp", "Log", "Sqrt"], lambda x: -(x.exp() + (x * x + 1).log() + (x * x + 1).sqrt()), [(3,)]),
    "tanh_sigmoid": (["Tanh", "Sigmoid"], lambda x: x.tanh() * x.sigmoid(), [(3,)]),
    "add_sub_mul": (["Add", "Sub", "Mul"], lambda a, b: (a + b) * (a - b) * a, [(3,), (3,)]),
    "where": (["Where"], lambda a, b: tr.where(a > 0, a * b, b * b), [(3, 4), (3, 4)]),
    "matmul": (["MatMul"], lambda a, b: (a @ b) ** 2, [(2, 3), (3, 4)]),
    "matmul_batched": (["MatMul"], lambda a, b: (a @ b).tanh(), [(2, 2, 3), (3,)]),
    "reductions": (
        ["Sum", "Mean", "Max", "Min", "Var", "Softmax", "LogSoftmax"],
        lambda x: (x * x).sum(1) * x.mean(1) + x.amax(1) * x.amin(1) + x.var(1) + x.softmax(1)[:, 0] + x.log_softmax(1)[:, 1],
        [(3, 4)],
    ),
    "shapes": (["Reshape", "Permute", "GetItem"], lambda x: (x * x).reshape(4, 3).permute(1, 0)[[0, 2, 2]], [(3, 4)]),
    "pack_pad": (["TakeRows", "PutRows"], lambda x: _pack_pad(x * x) * x, [(4, 3, 2)]),
    "scatter_add": (["ScatterAdd"], None, None),  # third order through GetItem: test_third_order_through_indexing
    "gru_variant_cells": (["GRUVariantCellFn"], _gru_variant_cells, [(2, 2), (2, 2), (6, 2), (6, 2), (6,), (6,)]),
    "conv2d": (["Conv2dFn"], lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2).tanh(),
               [(2, 4, 5, 4), (4, 2, 3, 2), (4,)]),
    "pools": (
        ["MaxPool2dFn", "AvgPool2dFn", "AdaptiveAvgPool2dFn"],
        lambda x: F.max_pool2d(x * x, 3, 2, 1) + F.avg_pool2d(x * x, 3, 2, 1) + F.adaptive_avg_pool2d(x * x, 3),
        [(1, 2, 5, 6)],
    ),
    "im2col_col2im": (  # third order of conv2d: its create_graph backward records Unfold and Fold
        ["Unfold", "Fold"],
        lambda x, w: tr.autograd.grad((F.conv2d(x, w, padding=1) ** 3).sum(), [x, w], create_graph=True),
        [(1, 2, 4, 4), (2, 2, 2, 2)],
    ),
}


@pytest.fixture
def ran_on_tensors(monkeypatch):
    """The names of the op classes whose backward ran on Tensors during the test."""
    seen = set()
    original = graph_mode.run_backward

    def recording(fn, grads_out):
        seen.add(type(fn).__name__)
        return original(fn, grads_out)

    monkeypatch.setattr(graph_mode, "run_backward", recording)
    return seen


@pytest.mark.parametrize("name", sorted(n for n, case in CASES.items() if case[1] is not None))
def test_op_second_derivatives(name, device, ran_on_tensors):
    expected, fn, shapes, *options = CASES[name]
    inputs = [leaf(eval(shape[8:]), device, low=0.5) if isinstance(shape, str) else leaf(shape, device) for shape in shapes]
    assert tr.gradgradcheck(fn, inputs, **(options[0] if options else {}))
    missing = set(expected) - ran_on_tensors
    assert not missing, f"{name}: these ops never ran a create_graph backward: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_table_second_derivatives(name, device):
    assert tr.gradgradcheck(UNARY[name], [leaf((2, 3, 4), device)])


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
def test_broadcasting_second_derivatives(op, device):
    a = leaf((2, 1, 4), device, low=0.5)
    b = leaf((3, 1), device, low=0.5)
    fn = {"add": lambda a, b: (a + b) ** 2, "sub": lambda a, b: (a - b) ** 2, "mul": lambda a, b: a * b * a,
          "div": lambda a, b: a / b, "pow": lambda a, b: a**b, "maximum": lambda a, b: tr.maximum(a, b) ** 2,
          "minimum": lambda a, b: tr.minimum(a, b) ** 2}[op]
    assert tr.gradgradcheck(fn, [a, b])


def test_third_order_through_indexing(device, ran_on_tensors):
    """d³/dx³ of sum(x[idx]³) with a repeated index: GetItem's backward (ScatterAdd) differentiated again."""
    x = leaf((4,), device)
    index = [0, 2, 2]
    y = (x[index] ** 3).sum()
    (g,) = tr.autograd.grad(y, x, create_graph=True)
    (h,) = tr.autograd.grad(g.sum(), x, create_graph=True)
    (t,) = tr.autograd.grad(h.sum(), x)
    counts = np.array([1, 0, 2, 0])
    np.testing.assert_allclose(t.cpu().numpy(), 6 * counts, rtol=1e-12)
    assert "ScatterAdd" in ran_on_tensors


def test_third_order_through_gelu(device, ran_on_tensors):
    """GELU'''(x) = φ(x)(x³ - 4x): the exact GELU's Φ is recorded through Erf, and Erf's backward runs on Tensors."""
    x = leaf((5,), device)
    y = F.gelu(x).sum()
    (g,) = tr.autograd.grad(y, x, create_graph=True)
    (h,) = tr.autograd.grad(g.sum(), x, create_graph=True)
    (t,) = tr.autograd.grad(h.sum(), x)
    v = x.detach().cpu().numpy()
    pdf = np.exp(-v * v / 2) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(t.cpu().numpy(), pdf * (v**3 - 4 * v), rtol=1e-10, atol=1e-12)
    assert "Erf" in ran_on_tensors


def _function_classes():
    """Every Function subclass defined under tinygrad_rnn/ops with a backward of its own, by name."""
    found = {}
    for info in pkgutil.iter_modules(ops.__path__):
        module = importlib.import_module(f"tinygrad_rnn.ops.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Function) and cls.__module__ == module.__name__ and "backward" in cls.__dict__:
                found[name] = cls
    return found


#: whole-sequence fused ops: they refuse double backward by design (as cuDNN's RNNs in PyTorch)
REFUSING = {"FusedSequence", "GRUVariantSequenceFn"}
#: ops whose second derivatives are checked in test_higher_order.py (cells and their fused steps)
ELSEWHERE = {"FusedCell", "RNNCellFn", "LSTMCellFn", "GRUCellFn"}


def test_every_op_is_covered():
    covered = {op for case in CASES.values() for op in case[0]}
    missing = sorted(set(_function_classes()) - covered - REFUSING - ELSEWHERE)
    assert not missing, f"ops without a gradgradcheck case: {missing}"


def test_gru_variant_sequence_refuses_double_backward_clearly(device):
    """The fused whole-sequence GRU variants refuse create_graph with a message naming the way out."""
    model = tr.nn.GRU(3, 2, num_layers=2, variant="mgu").double().to(device)
    x = leaf((3, 2, 3), device)
    out, _ = model(x)
    message = r"GRU\(variant='mgu'\) layer 1 \(direction 0\) ran as one fused whole-sequence op.*impl=\"composed\""
    with pytest.raises(RuntimeError, match=message):
        tr.autograd.grad(out.sum(), x, create_graph=True)
