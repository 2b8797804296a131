"""The Tensor methods and free functions courses use (max/min with indices, sort, topk, norm, logsumexp,
cumsum, mm/bmm, gather, tril, einsum, ...): one table of cases, each checked three ways on every device:
float64 central differences (``tr.gradcheck``), PyTorch's values, dtypes, named-tuple fields and gradients
(skipped without torch), and bad input answered with a clear error naming the call."""
from __future__ import annotations

import os

import numpy as np
import pytest

import tinygrad_rnn as tr
from conftest import to_device

INF = float("inf")


def normal(*shape, low=None, seed=0):
    data = np.random.default_rng(seed + 7 * len(shape)).standard_normal(shape)
    return np.abs(data) + low if low is not None else data


def ints(values):
    return np.array(values, dtype=np.int64)


class Case:
    """``fn(lib, *inputs)`` runs with ``lib`` = tinygrad_rnn or torch on tensors made from ``make()``'s arrays
    (float64 arrays require grad). ``smooth=False`` skips finite differences (ties, kinks)."""

    def __init__(self, name, make, fn, smooth=True):
        self.name, self.make, self.fn, self.smooth = name, make, fn, smooth

    def __repr__(self):
        return self.name


TIES = lambda: [np.array([[1.0, 3.0, 3.0, 0.5], [2.0, 2.0, -1.0, 2.0]])]  # noqa: E731
SPECIALS = lambda: [np.array([0.5, np.nan, INF, -INF, -2.0, 5.0])]  # noqa: E731

CASES = [
    # max / min with indices
    Case("max_dim", lambda: [normal(3, 4)], lambda lib, x: x.max(1)),
    Case("max_dim_keepdim", lambda: [normal(3, 4)], lambda lib, x: x.max(dim=0, keepdim=True)),
    Case("min_dim_negative", lambda: [normal(2, 3, 4)], lambda lib, x: x.min(-1)),
    Case("max_dim_ties_first_index", TIES, lambda lib, x: x.max(1), smooth=False),
    Case("min_dim_ties_first_index", TIES, lambda lib, x: lib.min(x, 1), smooth=False),
    Case("max_all_ties_share", TIES, lambda lib, x: x.max(), smooth=False),
    Case("max_0d", lambda: [np.array(1.5)], lambda lib, x: x.max(0)),
    # sorting
    Case("sort", lambda: [normal(3, 5)], lambda lib, x: x.sort()),
    Case("sort_dim0_descending", lambda: [normal(4, 3)], lambda lib, x: x.sort(dim=0, descending=True)),
    Case("sort_ties_stable", TIES, lambda lib, x: lib.sort(x, dim=1, stable=True), smooth=False),
    Case("sort_ties_stable_descending", TIES, lambda lib, x: x.sort(descending=True, stable=True), smooth=False),
    Case("sort_nan_last", lambda: [np.array([3.0, np.nan, 1.0, -INF])], lambda lib, x: x.sort().indices),
    Case("sort_nan_first_descending", lambda: [np.array([3.0, np.nan, 1.0])], lambda lib, x: x.sort(descending=True).indices),
    Case("argsort", lambda: [normal(3, 4)], lambda lib, x: x.argsort(dim=0)),
    Case("argsort_descending_ties", TIES, lambda lib, x: lib.argsort(x, descending=True, stable=True)),
    Case("sort_ints", lambda: [ints([[3, 1, 2], [0, 0, -1]])], lambda lib, x: x.sort(stable=True)),
    Case("topk", lambda: [normal(3, 5)], lambda lib, x: x.topk(2)),
    Case("topk_smallest_dim0", lambda: [normal(4, 3)], lambda lib, x: x.topk(3, dim=0, largest=False)),
    Case("topk_function_all", lambda: [normal(6)], lambda lib, x: lib.topk(x, 6)),
    # elementwise
    Case("sin", lambda: [normal(3, 4)], lambda lib, x: x.sin()),
    Case("cos", lambda: [normal(3, 4)], lambda lib, x: lib.cos(x)),
    Case("log1p", lambda: [normal(3, 4, low=0.1)], lambda lib, x: x.log1p()),
    Case("log1p_tiny", lambda: [np.array([1e-18, -1e-17])], lambda lib, x: lib.log1p(x)),
    Case("sin_of_ints", lambda: [ints([0, 1, 2])], lambda lib, x: x.sin()),
    Case("sign", lambda: [np.array([-2.0, 0.5, 3.0])], lambda lib, x: x.sign()),
    Case("sign_at_zero", lambda: [np.array([-2.0, 0.0, 3.0])], lambda lib, x: x.sign(), smooth=False),
    Case("sign_ints", lambda: [ints([-2, 0, 3])], lambda lib, x: lib.sign(x)),
    Case("pow_number", lambda: [normal(3, 4)], lambda lib, x: x.pow(3)),
    Case("pow_tensor", lambda: [normal(3, 4, low=0.5), normal(4, seed=1)], lambda lib, a, b: a.pow(b)),
    Case("pow_scalar_base", lambda: [normal(3)], lambda lib, x: lib.pow(2.0, x)),
    Case("nan_to_num", SPECIALS, lambda lib, x: x.nan_to_num(), smooth=False),  # ±1.8e308 swamp differences
    Case("nan_to_num_values", SPECIALS, lambda lib, x: lib.nan_to_num(x, nan=1.0, posinf=7.0, neginf=-7.0)),
    Case("isnan", SPECIALS, lambda lib, x: x.isnan()),
    Case("isfinite", SPECIALS, lambda lib, x: lib.isfinite(x)),
    # norms, logsumexp, cumsum
    Case("norm", lambda: [normal(3, 4)], lambda lib, x: x.norm()),
    Case("norm_fro_dims", lambda: [normal(2, 3, 4)], lambda lib, x: x.norm("fro", dim=(1, 2))),
    Case("norm_2_dim_keepdim", lambda: [normal(3, 4)], lambda lib, x: x.norm(2, dim=1, keepdim=True)),
    Case("norm_1", lambda: [normal(3, 4)], lambda lib, x: x.norm(p=1, dim=0)),
    Case("norm_inf", lambda: [normal(3, 4)], lambda lib, x: x.norm(p=INF, dim=1)),
    Case("norm_minus_inf", lambda: [normal(3, 4)], lambda lib, x: lib.norm(x, p=-INF)),
    Case("norm_0", lambda: [np.array([[0.0, 1.5, -2.0], [0.0, 0.0, 3.0]])], lambda lib, x: x.norm(0, dim=1)),
    Case("norm_3", lambda: [normal(3, 4)], lambda lib, x: x.norm(3, dim=-1)),
    Case("norm_half", lambda: [normal(3, 4, low=0.2)], lambda lib, x: x.norm(0.5)),
    Case("norm_of_zeros", lambda: [np.zeros((2, 3))], lambda lib, x: x.norm(dim=1), smooth=False),
    Case("norm_inf_ties", lambda: [np.array([[1.0, -3.0, 3.0]])], lambda lib, x: x.norm(INF), smooth=False),
    Case("logsumexp", lambda: [normal(3, 4)], lambda lib, x: x.logsumexp(1)),
    Case("logsumexp_dims_keepdim", lambda: [normal(2, 3, 4)], lambda lib, x: lib.logsumexp(x, (0, 2), keepdim=True)),
    Case("logsumexp_large", lambda: [normal(3, 4) * 400 + 1000], lambda lib, x: x.logsumexp(-1)),
    Case("logsumexp_minus_inf_row", lambda: [np.array([[-INF, -INF], [0.0, -INF]])], lambda lib, x: x.logsumexp(1),
         smooth=False),
    Case("logsumexp_ints", lambda: [ints([[1, 2], [3, 4]])], lambda lib, x: x.logsumexp(0)),
    Case("cumsum", lambda: [normal(3, 4)], lambda lib, x: x.cumsum(1)),
    Case("cumsum_dim0", lambda: [normal(3, 4)], lambda lib, x: lib.cumsum(x, dim=0)),
    Case("cumsum_ints", lambda: [ints([[1, 2], [3, 4]])], lambda lib, x: x.cumsum(0)),
    # matrices
    Case("t", lambda: [normal(3, 4)], lambda lib, x: x.t()),
    Case("t_1d", lambda: [normal(3)], lambda lib, x: lib.t(x)),
    Case("mT", lambda: [normal(2, 3, 4)], lambda lib, x: x.mT),
    Case("mm", lambda: [normal(2, 3), normal(3, 4, seed=1)], lambda lib, a, b: a.mm(b)),
    Case("bmm", lambda: [normal(2, 2, 3), normal(2, 3, 4, seed=1)], lambda lib, a, b: lib.bmm(a, b)),
    Case("tril", lambda: [normal(3, 4)], lambda lib, x: x.tril()),
    Case("tril_below", lambda: [normal(2, 4, 3)], lambda lib, x: x.tril(-1)),
    Case("triu", lambda: [normal(4, 3)], lambda lib, x: lib.triu(x, 1)),
    Case("triu_batched", lambda: [normal(2, 3, 3)], lambda lib, x: x.triu()),
    Case("tril_of_inf", lambda: [np.full((2, 2), INF)], lambda lib, x: x.tril(), smooth=False),
    # copying and indexing
    Case("repeat", lambda: [normal(2, 3)], lambda lib, x: x.repeat(2, 1, 3)),
    Case("repeat_tuple", lambda: [normal(3)], lambda lib, x: x.repeat((2, 2))),
    Case("repeat_zero", lambda: [normal(2, 3)], lambda lib, x: x.repeat(0, 1)),
    Case("unbind", lambda: [normal(3, 4)], lambda lib, x: x.unbind()),
    Case("unbind_dim1", lambda: [normal(2, 3)], lambda lib, x: lib.unbind(x, 1)),
    Case("unbind_partly_used", lambda: [normal(3, 2)], lambda lib, x: x.unbind(0)[1] * 2),
    Case("flip", lambda: [normal(2, 3)], lambda lib, x: x.flip(0)),
    Case("flip_two_dims", lambda: [normal(2, 3, 2)], lambda lib, x: x.flip(0, -1)),
    Case("flip_list", lambda: [normal(2, 3)], lambda lib, x: lib.flip(x, [0, 1])),
    Case("gather", lambda: [normal(3, 4), ints([[0, 3], [1, 1], [2, 0]])], lambda lib, x, i: x.gather(1, i)),
    Case("gather_dim0_repeats", lambda: [normal(3, 4), ints([[2, 2, 0, 1]])], lambda lib, x, i: lib.gather(x, 0, i)),
    Case("gather_smaller_index", lambda: [normal(3, 4), ints([[1], [0]])], lambda lib, x, i: x.gather(1, i)),
    Case("gather_3d", lambda: [normal(2, 3, 4), ints(np.arange(12).reshape(2, 3, 2) % 4)], lambda lib, x, i: x.gather(-1, i)),
    Case("view_as", lambda: [normal(2, 6), normal(3, 4)], lambda lib, x, y: x.view_as(y) + y),
    Case("type_as", lambda: [normal(2, 3), ints([1])], lambda lib, x, i: i.type_as(x) + x),
    Case("expand_as", lambda: [normal(3, 1), normal(3, 4)], lambda lib, x, y: x.expand_as(y) * y),
    # einsum
    Case("einsum_matmul", lambda: [normal(2, 3), normal(3, 4, seed=1)], lambda lib, a, b: lib.einsum("ij,jk->ik", a, b)),
    Case("einsum_implicit", lambda: [normal(2, 3), normal(3, 4, seed=1)], lambda lib, a, b: lib.einsum("ij,jk", a, b)),
    Case("einsum_implicit_order", lambda: [normal(2, 3), normal(4, 3, seed=1)], lambda lib, a, b: lib.einsum("jb,Ab", a, b)),
    Case("einsum_spaces_list", lambda: [normal(2, 3), normal(2, 3, seed=1)], lambda lib, a, b: lib.einsum("ij, ij -> i", [a, b])),
    Case("einsum_batched", lambda: [normal(2, 2, 3), normal(2, 3, 4, seed=1)], lambda lib, a, b: lib.einsum("bij,bjk->bik", a, b)),
    Case("einsum_outer", lambda: [normal(3), normal(4, seed=1)], lambda lib, a, b: lib.einsum("i,j->ij", a, b)),
    Case("einsum_dot_scalar", lambda: [normal(5), normal(5, seed=1)], lambda lib, a, b: lib.einsum("i,i->", a, b)),
    Case("einsum_transpose", lambda: [normal(2, 3)], lambda lib, a: lib.einsum("ij->ji", a)),
    Case("einsum_row_sum", lambda: [normal(2, 3)], lambda lib, a: lib.einsum("ij->i", a)),
    Case("einsum_total", lambda: [normal(2, 3)], lambda lib, a: lib.einsum("ij->", a)),
    Case("einsum_trace", lambda: [normal(3, 3)], lambda lib, a: lib.einsum("ii", a)),
    Case("einsum_diagonal", lambda: [normal(3, 3)], lambda lib, a: lib.einsum("ii->i", a)),
    Case("einsum_partial_diagonal", lambda: [normal(3, 3, 2)], lambda lib, a: lib.einsum("iij->ji", a)),
    Case("einsum_diagonal_times", lambda: [normal(3, 3), normal(3, seed=1)], lambda lib, a, b: lib.einsum("ii,i->i", a, b)),
    Case("einsum_bilinear", lambda: [normal(2, 3), normal(4, 3, 5, seed=1), normal(2, 5, seed=2)],
         lambda lib, x, w, y: lib.einsum("bn,anm,bm->ba", x, w, y)),
    Case("einsum_ellipsis", lambda: [normal(2, 2, 3)], lambda lib, a: lib.einsum("...ij->...ji", a)),
    Case("einsum_ellipsis_broadcast", lambda: [normal(3, 1, 2, 3), normal(4, 3, 2, seed=1)],
         lambda lib, a, b: lib.einsum("...ij,...jk->...ik", a, b)),
    Case("einsum_ellipsis_implicit", lambda: [normal(5, 1, 3), normal(4, 3, seed=1)], lambda lib, a, b: lib.einsum("...i,...i", a, b)),
    Case("einsum_ellipsis_summed", lambda: [normal(4, 2, 3)], lambda lib, a: lib.einsum("...ij->ij", a)),
    Case("einsum_label_broadcast", lambda: [normal(1, 3), normal(2, 3, seed=1)], lambda lib, a, b: lib.einsum("ij,ij->ij", a, b)),
]


def _parts(out):
    """A result as a flat list of tensors (named tuples and tuples opened)."""
    if isinstance(out, tuple) and hasattr(out, "indices"):  # a named tuple (torch.Tensor has an .indices method)
        return [out.values, out.indices]
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _make(case, device):
    arrays = case.make()
    ours = [to_device(a, device, requires_grad=a.dtype == np.float64) for a in arrays]
    return arrays, ours


@pytest.mark.parametrize("case", [c for c in CASES if c.smooth], ids=repr)
def test_gradcheck(case, device):
    arrays, ours = _make(case, device)
    if not any(t.requires_grad for t in ours):
        pytest.skip("no floating point input")
    if not any(p.requires_grad for p in _parts(case.fn(tr, *ours)) if isinstance(p, tr.Tensor)):
        pytest.skip("the output is not differentiable")
    assert tr.gradcheck(lambda *xs: tuple(_parts(case.fn(tr, *xs))), ours)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_matches_torch(case, device):
    torch = pytest.importorskip("torch")
    arrays, ours = _make(case, device)
    theirs = [torch.tensor(a, requires_grad=a.dtype == np.float64) for a in arrays]
    out_ours, out_theirs = case.fn(tr, *ours), case.fn(torch, *theirs)
    if type(out_theirs).__module__ == "torch.return_types":  # torch.return_types.X: ours is the same named tuple
        assert type(out_ours).__name__ == type(out_theirs).__name__
        assert out_ours._fields == ("values", "indices")
        values, indices = out_ours
        assert values is out_ours.values and indices is out_ours.indices
    parts_ours, parts_theirs = _parts(out_ours), _parts(out_theirs)
    assert len(parts_ours) == len(parts_theirs)
    rng = np.random.default_rng(3)
    loss_ours = loss_theirs = 0
    for a, b in zip(parts_ours, parts_theirs):
        assert str(a.dtype) == str(b.dtype).replace("torch.", ""), f"dtype {a.dtype} vs torch {b.dtype}"
        assert a.shape == tuple(b.shape)
        if a.dtype.kind == "f":
            tol = 1e-12 if a.dtype == tr.float64 else 1e-6
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=tol, atol=tol)
        else:
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        if b.requires_grad:
            assert a.requires_grad
            weight = rng.standard_normal(a.shape)
            loss_ours = loss_ours + (a * to_device(weight, device)).sum()
            loss_theirs = loss_theirs + (b * torch.tensor(weight)).sum()
    if isinstance(loss_theirs, int):
        return
    loss_ours.backward()
    loss_theirs.backward()
    for x, xt in zip(ours, theirs):
        if xt.requires_grad:
            expected = np.zeros(x.shape) if xt.grad is None else xt.grad.numpy()
            np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------- behaviour torch has too


def test_max_min_named_tuples_unpack_and_index(device):
    x = to_device(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]), device)
    result = x.max(1)
    values, indices = result
    assert result[0] is values and result.indices is indices
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0] and indices.dtype == tr.int64
    assert repr(result).startswith("tinygrad_rnn.return_types.max(\nvalues=tensor(")
    assert isinstance(result, tr.return_types.max) and isinstance(result, tuple)
    assert x.min(dim=0).values.tolist() == [1.0, 0.0, 2.0]
    assert x.max().item() == 7.0 and x.max().shape == ()
    assert tr.max(x, 1, keepdim=True).values.shape == (2, 1)


def test_named_tuple_types_pickle_by_name():
    import pickle

    back = pickle.loads(pickle.dumps(tr.return_types.sort([1.0], [0])))
    assert type(back) is tr.return_types.sort and back.values == [1.0] and back.indices == [0]


def test_sort_and_topk_values_follow_indices(device):
    x = to_device(normal(4, 6), device, requires_grad=True)
    values, indices = x.topk(3, dim=1)
    expected = np.take_along_axis(x.numpy(), indices.numpy(), axis=1)
    np.testing.assert_array_equal(values.numpy(), expected)
    assert (values.numpy()[:, :-1] >= values.numpy()[:, 1:]).all()
    values.sum().backward()
    chosen = np.zeros((4, 6))
    np.put_along_axis(chosen, indices.numpy(), 1.0, axis=1)
    np.testing.assert_array_equal(x.grad.numpy(), chosen)


def test_format_follows_torch(device):
    loss = to_device(np.array(0.123456), device)
    assert f"{loss:.3f}" == "0.123" and f"{loss:>8.2e}" == "1.23e-01"
    assert f"{loss}" == "0.123456"  # a 0-d tensor formats as its number, as in PyTorch
    assert f"epoch 1 loss {tr.tensor([1.5, 2.0]).sum():.1f}" == "epoch 1 loss 3.5"
    assert f"{tr.tensor(3)}" == "3" and f"{tr.tensor(3):03d}" == "003"
    x = to_device(np.array([1.5, 2.0]), device)
    assert f"{x}" == str(x) and format(x) == str(x)


def test_t_and_mT_are_views_of_the_graph(device):
    x = to_device(normal(2, 3), device, requires_grad=True)
    assert x.t().shape == (3, 2) and x.t().t().tolist() == x.tolist()
    assert x.mT.tolist() == x.t().tolist()
    v = to_device(normal(3), device)
    assert v.t() is v


def test_unbind_and_flip_return_what_torch_returns(device):
    x = to_device(np.arange(6.0).reshape(2, 3), device)
    rows = x.unbind()
    assert isinstance(rows, tuple) and [r.tolist() for r in rows] == [[0, 1, 2], [3, 4, 5]]
    assert to_device(np.zeros((0, 2)), device).unbind() == ()
    flipped = x.flip(1)
    assert flipped.tolist() == [[2, 1, 0], [5, 4, 3]]
    assert not np.shares_memory(flipped.numpy(), x.numpy())


def test_new_tensor_copies_onto_the_same_device(device):
    x = to_device(np.zeros(2), device, requires_grad=True)  # float64
    source = np.array([1.0, 2.0])
    y = x.new_tensor(source)
    assert y.device == x.device and y.dtype == tr.float64 and not y.requires_grad and y.is_leaf
    source[0] = 9.0
    assert y.tolist() == [1.0, 2.0]
    assert x.new_tensor([1, 2]).dtype == tr.float64  # self's dtype, as in PyTorch
    assert x.new_tensor([1, 2], dtype=tr.int64).dtype == tr.int64
    z = x.new_tensor(x)
    assert z.array is not x.array and not z.requires_grad
    assert x.new_tensor([1.0], requires_grad=True).requires_grad


def test_gather_index_int32_is_accepted(device):
    x = to_device(np.arange(6.0).reshape(2, 3), device)
    index = tr.tensor([[2], [0]], dtype=tr.int32, device=device)
    assert x.gather(1, index).tolist() == [[2.0], [3.0]]


def test_einsum_gradients_through_repeated_use(device):
    a = to_device(normal(3, 3), device, requires_grad=True)
    assert tr.gradcheck(lambda a: tr.einsum("ij,jk,kl->il", a, a, a), [a])
    assert tr.gradcheck(lambda a: tr.einsum("ij,ji->", a, a), [a])


def test_logsumexp_is_stable():
    x = tr.tensor([1000.0, 1000.0])
    assert x.logsumexp(0).item() == pytest.approx(1000.0 + np.log(2.0))
    assert np.isfinite(tr.tensor([-1000.0, -1000.0]).logsumexp(0).item())


def test_cumsum_backward_is_a_reversed_cumsum(device):
    x = to_device(normal(4), device, requires_grad=True)
    (x.cumsum(0) * to_device(np.array([1.0, 2.0, 3.0, 4.0]), device)).sum().backward()
    assert x.grad.tolist() == [10.0, 9.0, 7.0, 4.0]


def test_free_functions_are_exported():
    for name in ("sin", "cos", "sign", "log1p", "norm", "logsumexp", "cumsum", "sort", "argsort", "topk", "t", "mm",
                 "bmm", "tril", "triu", "flip", "gather", "unbind", "isnan", "isfinite", "nan_to_num", "pow", "einsum"):
        assert callable(getattr(tr, name)), name
    with pytest.raises(TypeError, match=r"^sin: expected a Tensor, got list"):
        tr.sin([1.0])


# ----------------------------------------------------------------------------------- bad input


def R(d, *shape):
    return tr.randn(*shape, device=d)


BAD = [
    ("format spec on a vector", lambda d: f"{R(d, 2):.3f}", TypeError,
     r"^unsupported format string '\.3f' passed to Tensor\.__format__: only a 0-d tensor formats as a number, "
     r"this one has shape \(2,\)"),
    ("min of two tensors with keepdim", lambda d: R(d, 2).min(R(d, 2), keepdim=True), TypeError,
     r"^min: keepdim has no meaning for the elementwise min of two tensors"),
    ("max dim tuple", lambda d: R(d, 2, 3).max(dim=(0, 1)), TypeError, r"^max: dim must be an int, got \(0, 1\)"),
    ("max over an empty dim", lambda d: tr.zeros(0, 3, device=d).max(0), ValueError,
     r"^max: cannot reduce an empty tensor of shape \(0, 3\) along dim 0 \(of size 0\)"),
    ("sort dim out of range", lambda d: R(d, 2, 3).sort(2), IndexError, r"^sort: dim 2 is out of range"),
    ("topk k too large", lambda d: R(d, 3).topk(4), ValueError,
     r"^topk: k \(4\) is out of range for dim -1 of size 3"),
    ("topk k negative", lambda d: R(d, 3).topk(-1), ValueError, r"^topk: k must be a non-negative integer, got -1"),
    ("norm of ints", lambda d: tr.tensor([1, 2], device=d).norm(), TypeError,
     r"^norm: expected a floating point tensor, got int64"),
    ("norm nuclear", lambda d: R(d, 2, 2).norm("nuc"), ValueError, r"^norm: p='nuc' is not supported"),
    ("norm fro of 3 dims", lambda d: R(d, 2, 2, 2).norm("fro", dim=(0, 1, 2)), ValueError,
     r"^norm: p='fro' takes at most 2 dims, got dim=\(0, 1, 2\)"),
    ("norm p string", lambda d: R(d, 2).norm(p=[2]), TypeError, r"^norm: p must be 'fro' or a number, got \[2\]"),
    ("norm inf of empty", lambda d: tr.zeros(0, device=d).norm(INF), ValueError,
     r"^norm: p=inf of an empty set of elements is undefined"),
    ("logsumexp repeated dim", lambda d: R(d, 2, 3).logsumexp((1, 1)), ValueError,
     r"^logsumexp: dim \(1, 1\) repeats a dimension"),
    ("cumsum without dim", lambda d: R(d, 3).cumsum(None), TypeError, r"^cumsum: dim must be an int, got None"),
    ("t of 3 dims", lambda d: R(d, 2, 3, 4).t(), ValueError,
     r"^t: expects a tensor with <= 2 dimensions, got shape \(2, 3, 4\)"),
    ("mT of a vector", lambda d: R(d, 3).mT, ValueError,
     r"^mT: needs a matrix or a batch of matrices \(2 or more dims\), got shape \(3,\)"),
    ("mm shapes", lambda d: R(d, 2, 3).mm(R(d, 4, 5)), ValueError, r"^mm: cannot multiply 2x3 by 4x5"),
    ("mm of a vector", lambda d: R(d, 2, 3).mm(R(d, 3)), ValueError,
     r"^mm: expected two matrices, got shapes \(2, 3\) and \(3,\)"),
    ("mm dtypes", lambda d: R(d, 2, 3).mm(R(d, 3, 2).double()), TypeError,
     r"^mm: expected both operands to have the same dtype, got float32 and float64"),
    ("mm of a list", lambda d: R(d, 2, 3).mm([[1.0]]), TypeError,
     r"^mm: expected a Tensor as the second operand, got list"),
    ("bmm batch sizes", lambda d: R(d, 2, 2, 3).bmm(R(d, 3, 3, 5)), ValueError,
     r"^bmm: cannot multiply batches \(2, 2, 3\) and \(3, 3, 5\): expected the second to have shape \(2, 3, p\)"),
    ("bmm of matrices", lambda d: R(d, 2, 3).bmm(R(d, 3, 2)), ValueError, r"^bmm: expected two 3-d tensors"),
    ("tril of a vector", lambda d: R(d, 3).tril(), ValueError,
     r"^tril: input must have at least 2 dimensions, got shape \(3,\)"),
    ("triu float diagonal", lambda d: R(d, 3, 3).triu(0.5), ValueError, r"^triu: diagonal must be an integer, got 0\.5"),
    ("repeat too few sizes", lambda d: R(d, 2, 3).repeat(2), ValueError,
     r"^repeat: got 1 size\(s\) \(2,\) for a tensor with 2 dimensions"),
    ("repeat negative", lambda d: R(d, 2).repeat(-1), ValueError, r"^repeat: sizes must be non-negative, got \(-1,\)"),
    ("unbind a 0-d tensor", lambda d: R(d).unbind(), ValueError, r"^unbind: a 0-d tensor has no dimension to unbind"),
    ("flip without dims", lambda d: R(d, 2).flip(), TypeError, r"^flip: missing dims"),
    ("flip repeated dims", lambda d: R(d, 2, 2).flip(0, 0), ValueError, r"^flip: dim \(0, 0\) repeats a dimension"),
    ("gather float index", lambda d: R(d, 2, 3).gather(1, R(d, 2, 1)), TypeError,
     r"^gather: index must be an int64 tensor, got float32"),
    ("gather list index", lambda d: R(d, 2, 3).gather(1, [[0]]), TypeError,
     r"^gather: index must be an int64 tensor, got list"),
    ("gather index dims", lambda d: R(d, 2, 3).gather(1, tr.tensor([0], device=d)), ValueError,
     r"^gather: index must have as many dimensions as the input \(2\), got 1"),
    ("gather index too long", lambda d: R(d, 2, 3).gather(1, tr.zeros(3, 1, dtype=tr.int64, device=d)), ValueError,
     r"^gather: index has size 3 in dim 0 but the input only 2"),
    ("gather index out of bounds", lambda d: R(d, 2, 3).gather(1, tr.tensor([[3]], device=d)), IndexError,
     r"^gather: index 3 is out of bounds for dim 1 with size 3 \(expected 0 <= index < 3\)"),
    ("gather negative index", lambda d: R(d, 2, 3).gather(1, tr.tensor([[-1]], device=d)), IndexError,
     r"^gather: index -1 is out of bounds for dim 1 with size 3"),
    ("nan_to_num string", lambda d: R(d, 2).nan_to_num(nan="0"), TypeError,
     r"^nan_to_num: nan must be a number or None, got '0'"),
    ("view_as a shape", lambda d: R(d, 2, 3).view_as((3, 2)), TypeError, r"^view_as: expected a Tensor, got tuple"),
    ("new_tensor of text", lambda d: R(d, 2).new_tensor(["a"]), TypeError,
     r"^new_tensor: cannot make a tensor from non-numeric data"),
    ("new_tensor ragged", lambda d: R(d, 2).new_tensor([[1.0], [1.0, 2.0]]), TypeError,
     r"^new_tensor: cannot make a tensor from list"),
    ("einsum operand count", lambda d: tr.einsum("ij,jk->ik", R(d, 2, 3)), ValueError,
     r"^einsum: 'ij,jk->ik' gives subscripts for 2 operand\(s\), but 1 tensor\(s\) were given"),
    ("einsum bad character", lambda d: tr.einsum("i1->i", R(d, 2, 3)), ValueError,
     r"^einsum: invalid subscript '1' in operand 0 of 'i1->i'"),
    ("einsum dims", lambda d: tr.einsum("ij->i", R(d, 2, 3, 4)), ValueError,
     r"^einsum: operand 0 has 3 dimension\(s\) but its subscripts 'ij' name 2"),
    ("einsum ellipsis dims", lambda d: tr.einsum("...ijk->i", R(d, 2, 3)), ValueError,
     r"^einsum: operand 0 has 2 dimension\(s\) but its subscripts '\.\.\.ijk' name 3 and '\.\.\.'"),
    ("einsum sizes", lambda d: tr.einsum("ij,jk->ik", R(d, 2, 3), R(d, 4, 5)), ValueError,
     r"^einsum: subscript 'j' has size 3 in an earlier operand but 4 in operand 1"),
    ("einsum diagonal sizes", lambda d: tr.einsum("ii->i", R(d, 2, 3)), ValueError,
     r"^einsum: subscript 'i' is repeated in operand 0 with different sizes 2 and 3"),
    ("einsum repeated output", lambda d: tr.einsum("ij->ii", R(d, 2, 2)), ValueError,
     r"^einsum: output subscript 'i' appears more than once in 'ij->ii'"),
    ("einsum unknown output", lambda d: tr.einsum("ij->k", R(d, 2, 2)), ValueError,
     r"^einsum: output subscript 'k' of 'ij->k' appears in no operand"),
    ("einsum two arrows", lambda d: tr.einsum("i->i->i", R(d, 2)), ValueError, r"^einsum: 'i->i->i' has more than one '->'"),
    ("einsum two ellipses", lambda d: tr.einsum("...i...->i", R(d, 2)), ValueError,
     r"^einsum: operand 0 of '\.\.\.i\.\.\.->i' has more than one '\.\.\.'"),
    ("einsum dtypes", lambda d: tr.einsum("i,i", R(d, 2), R(d, 2).double()), TypeError,
     r"^einsum: expected operands of one dtype, got float32 \(operand 0\) and float64 \(operand 1\)"),
    ("einsum array operand", lambda d: tr.einsum("i,i", R(d, 2), np.ones(2)), TypeError,
     r"^einsum: operand 1 is a ndarray, expected a Tensor"),
    ("einsum equation type", lambda d: tr.einsum(R(d, 2)), TypeError,
     r"^einsum: the equation must be a string such as 'ij,jk->ik', got Tensor"),
    ("einsum no operands", lambda d: tr.einsum("i"), ValueError, r"^einsum: expected at least one operand"),
]


def _raised_inside_numpy(excinfo):
    innermost = str(excinfo.traceback[-1].path)
    return f"{os.sep}numpy{os.sep}" in innermost or f"{os.sep}cupy{os.sep}" in innermost


@pytest.mark.parametrize("name,call,error,pattern", BAD, ids=[row[0] for row in BAD])
def test_bad_input_gets_a_clear_error(device, name, call, error, pattern):
    with pytest.raises(error) as excinfo:
        call(device)
    assert excinfo.match(pattern), f"{name}: {excinfo.value}"
    assert not _raised_inside_numpy(excinfo), f"{name}: the error comes straight out of NumPy: {excinfo.value}"
