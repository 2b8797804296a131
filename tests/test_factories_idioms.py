"""The factories and helpers of a learner's first hour, as in PyTorch: the default dtype, float16 random
tensors, randint/randperm/multinomial, linspace, empty and the *_like factories, from_numpy/as_tensor memory
sharing, allclose/equal/is_tensor; with PyTorch's answers where they are deterministic (skipped without
torch), and bad input answered with a clear error naming the call."""
from __future__ import annotations

import os

import numpy as np
import pytest

import tinygrad_rnn as tr
from conftest import to_device


@pytest.fixture
def default_float64():
    """Run a test with float64 as the default dtype, restoring float32 afterwards whatever happens."""
    tr.set_default_dtype(tr.float64)
    try:
        yield
    finally:
        tr.set_default_dtype(tr.float32)


# ------------------------------------------------------------------------------------------ default dtype


def test_default_dtype_is_float32():
    assert tr.get_default_dtype() == tr.float32
    assert tr.tensor(1.5).dtype == tr.float32 and tr.zeros(2).dtype == tr.float32


FLOAT_FACTORIES = {
    "tensor": lambda lib: lib.tensor([1.5, 2.0]),
    "tensor_scalar": lambda lib: lib.tensor(2.5),
    "zeros": lambda lib: lib.zeros(2),
    "ones": lambda lib: lib.ones(2, 3),
    "full": lambda lib: lib.full((2,), 0.5),
    "arange_float": lambda lib: lib.arange(0.0, 1.0, 0.25),
    "eye": lambda lib: lib.eye(2),
    "randn": lambda lib: lib.randn(3),
    "rand": lambda lib: lib.rand(3),
    "empty": lambda lib: lib.empty(2),
    "linspace": lambda lib: lib.linspace(0, 1, 3),
    "int_times_float": lambda lib: lib.tensor([1, 2]) * 1.5,
    "as_tensor_list": lambda lib: lib.as_tensor([0.5]),
}
INT_FACTORIES = {
    "tensor_ints": lambda lib: lib.tensor([1, 2]),
    "full_int": lambda lib: lib.full((2,), 3),
    "arange_int": lambda lib: lib.arange(3),
    "randint": lambda lib: lib.randint(0, 5, (2,)),
    "randperm": lambda lib: lib.randperm(3),
}


@pytest.mark.parametrize("name", sorted(FLOAT_FACTORIES))
def test_float_factories_follow_the_default_dtype(name, default_float64):
    assert FLOAT_FACTORIES[name](tr).dtype == tr.float64
    tr.set_default_dtype(tr.float16)
    assert FLOAT_FACTORIES[name](tr).dtype == tr.float16


@pytest.mark.parametrize("name", sorted(INT_FACTORIES))
def test_integer_factories_ignore_the_default_dtype(name, default_float64):
    assert INT_FACTORIES[name](tr).dtype == tr.int64


@pytest.mark.parametrize("name", sorted(FLOAT_FACTORIES) + sorted(INT_FACTORIES))
@pytest.mark.parametrize("default", ["float32", "float64"])
def test_factory_dtypes_match_torch(name, default):
    torch = pytest.importorskip("torch")
    make = FLOAT_FACTORIES.get(name) or INT_FACTORIES[name]
    tr.set_default_dtype(default)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, default))
    try:
        ours, theirs = make(tr), make(torch)
    finally:
        tr.set_default_dtype(tr.float32)
        torch.set_default_dtype(previous)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "") and ours.shape == tuple(theirs.shape)


def test_set_default_dtype_accepts_names_and_returns_none(default_float64):
    assert tr.set_default_dtype("float32") is None
    assert tr.get_default_dtype() == tr.float32
    tr.set_default_dtype("double")
    assert tr.tensor([0.1]).dtype == tr.float64 and tr.tensor([0.1]).item() == 0.1


# ---------------------------------------------------------------------------------------- random tensors


@pytest.mark.parametrize("factory", ["randn", "rand"])
def test_float16_random_tensors(factory, device):
    x = getattr(tr, factory)(4, 5, dtype=tr.float16, device=device)
    assert x.dtype == tr.float16 and x.shape == (4, 5) and x.device == device
    assert np.isfinite(x.numpy()).all()
    like = getattr(tr, factory + "_like")(x)
    assert like.dtype == tr.float16 and like.device == device


def test_float16_rand_stays_below_one():
    x = tr.rand(200_000, dtype=tr.float16).numpy()
    assert x.min() >= 0 and x.max() < 1


def test_random_like_factories(device):
    x = to_device(np.zeros((2, 3)), device)  # float64
    y = tr.randn_like(x)
    assert y.shape == (2, 3) and y.dtype == tr.float64 and y.device == device
    assert tr.rand_like(x, dtype=tr.float32).dtype == tr.float32
    z = tr.rand_like(x, requires_grad=True)
    assert z.requires_grad and 0 <= z.numpy().min() and z.numpy().max() < 1


def test_empty_and_like_factories(device):
    assert tr.empty(2, 3, device=device).shape == (2, 3)
    assert tr.empty((4,), dtype=tr.int64).dtype == tr.int64
    x = to_device(np.zeros((2, 3)), device)
    assert tr.empty_like(x).shape == (2, 3) and tr.empty_like(x).dtype == tr.float64
    full = tr.full_like(x, 7)
    assert full.tolist() == [[7.0] * 3] * 2 and full.dtype == tr.float64 and full.device == device


def test_randint_signatures_and_range(device):
    tr.manual_seed(3)
    a = tr.randint(10, (1000,), device=device)
    assert a.dtype == tr.int64 and a.device == device and 0 <= a.numpy().min() and a.numpy().max() == 9
    b = tr.randint(-3, 2, (4, 500), device=device).numpy()
    assert b.shape == (4, 500) and b.min() == -3 and b.max() == 1
    c = tr.randint(0, 5, size=(3,))
    assert c.shape == (3,)
    assert tr.randint(5, size=(2, 2), dtype=tr.float32).dtype == tr.float32
    tr.manual_seed(3)
    assert tr.randint(10, (1000,), device=device).tolist() == a.tolist()


def test_randperm_is_a_permutation(device):
    p = tr.randperm(50, device=device)
    assert p.dtype == tr.int64 and p.device == device and sorted(p.tolist()) == list(range(50))
    assert tr.randperm(0).shape == (0,)
    assert tr.randperm(4, dtype=tr.float32).dtype == tr.float32


def test_multinomial_with_replacement_follows_the_weights(device):
    weights = to_device(np.array([1.0, 0.0, 3.0]), device)
    draws = tr.multinomial(weights, 20_000, replacement=True)
    assert draws.dtype == tr.int64 and draws.shape == (20_000,) and draws.device == device
    counts = np.bincount(draws.numpy(), minlength=3)
    assert counts[1] == 0
    assert abs(counts[2] / 20_000 - 0.75) < 0.02


def test_multinomial_without_replacement(device):
    weights = to_device(np.array([[1.0, 0.0, 3.0, 2.0], [1.0, 1.0, 1.0, 1.0]]), device)
    for _ in range(20):
        draws = tr.multinomial(weights, 3)
        assert draws.shape == (2, 3)
        rows = draws.tolist()
        assert sorted(rows[0]) == [0, 2, 3] and len(set(rows[1])) == 3
    firsts = [tr.multinomial(weights[0], 1).item() for _ in range(3000)]
    assert abs(firsts.count(2) / 3000 - 0.5) < 0.04  # the first draw takes category 2 with probability 3/6


def test_multinomial_last_category_of_zero_weight_is_never_drawn():
    weights = tr.tensor([0.1, 0.2, 0.7, 0.0], dtype=tr.float64)
    assert 3 not in tr.multinomial(weights, 50_000, replacement=True).tolist()


def test_linspace_matches_torch():
    torch = pytest.importorskip("torch")
    for args, kwargs in [((0, 1, 5), {}), ((-2.5, 3.0, 7), {}), ((1, 1, 1), {}), ((0, 1, 0), {}),
                         ((0, 10, 5), {"dtype": "int64"}), ((3.0, -1.0, 4), {"dtype": "float64"})]:
        ours = tr.linspace(*args, **kwargs)
        theirs = torch.linspace(*args, **{k: getattr(torch, v) for k, v in kwargs.items()})
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)
    assert tr.linspace(tr.tensor(0.0), tr.tensor(2.0), 3).tolist() == [0.0, 1.0, 2.0]


# --------------------------------------------------------------------------------------- memory sharing


def test_from_numpy_shares_memory_both_ways():
    array = np.arange(4, dtype=np.float64)
    t = tr.from_numpy(array)
    assert t.dtype == tr.float64 and t.device == "cpu" and not t.requires_grad
    array[0] = 10.0
    assert t.tolist()[0] == 10.0
    t.array[1] = 20.0
    assert array[1] == 20.0
    assert tr.from_numpy(np.array([True])).dtype == tr.bool_


def test_as_tensor_avoids_copies_when_it_can(device):
    array = np.array([1.0, 2.0])
    shared = tr.as_tensor(array)
    array[0] = 5.0
    assert shared.tolist() == [5.0, 2.0] and shared.dtype == tr.float64
    converted = tr.as_tensor(array, dtype=tr.float32)
    array[1] = 7.0
    assert converted.tolist() == [5.0, 2.0] and converted.dtype == tr.float32
    x = to_device(np.ones(2), device, requires_grad=True)
    assert tr.as_tensor(x) is x and tr.as_tensor(x, device=device) is x
    y = tr.as_tensor(x, dtype=tr.float32)
    assert y.dtype == tr.float32 and y.grad_fn is not None  # as x.to(float32): still in the graph
    moved = tr.as_tensor([1.5, 2.5], device=device)
    assert moved.device == device and moved.dtype == tr.float32


# ------------------------------------------------------------------------------------ comparisons, checks


def test_allclose_equal_is_tensor(device):
    a = to_device(np.array([1.0, 2.0, np.nan]), device)
    b = to_device(np.array([1.0 + 1e-9, 2.0, np.nan]), device)
    assert not tr.allclose(a, b) and tr.allclose(a, b, equal_nan=True)
    assert tr.allclose(a[:2], to_device(np.array([1.1, 2.0]), device), atol=0.2)
    assert tr.allclose(a[:2], to_device(np.array([2.0]), device), rtol=1.0)  # broadcasts
    assert tr.equal(a[:2], to_device(np.array([1.0, 2.0]), device))
    assert not tr.equal(a, a)  # NaN equals nothing
    assert not tr.equal(a[:2], a[:1])  # shapes differ: no broadcasting
    assert tr.equal(tr.tensor([1, 2], device=device), tr.tensor([1.0, 2.0], device=device))
    assert tr.is_tensor(a) and tr.is_tensor(tr.nn.Parameter(tr.zeros(1))) and not tr.is_tensor(np.zeros(1))


def test_allclose_and_equal_match_torch():
    torch = pytest.importorskip("torch")
    pairs = [([1.0, 2.0], [1.0, 2.0 + 1e-6]), ([1.0, 2.0], [1.0, 2.1]), ([0.0], [1e-9]), ([1.0, 2.0], [1.0])]
    for x, y in pairs:
        for fn in ("allclose", "equal"):
            ours = getattr(tr, fn)(tr.tensor(x, dtype=tr.float64), tr.tensor(y, dtype=tr.float64))
            theirs = getattr(torch, fn)(torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64))
            assert ours is theirs, (fn, x, y)


# ------------------------------------------------------------------------------------------- bad input


def W(d, values):
    return tr.tensor(values, device=d)


BAD = [
    ("set_default_dtype of ints", lambda d: tr.set_default_dtype(tr.int64), TypeError,
     r"^set_default_dtype: only floating point dtypes \(float16, float32, float64\) can be the default, got int64"),
    ("randn of ints", lambda d: tr.randn(2, dtype=tr.int64, device=d), TypeError,
     r"^randn: cannot draw samples of dtype int64; expected float16, float32 or float64"),
    ("rand of bools", lambda d: tr.rand(2, dtype="bool", device=d), TypeError,
     r"^rand: cannot draw samples of dtype bool; expected float16, float32 or float64"),
    ("randn_like of ints", lambda d: tr.randn_like(W(d, [1, 2])), TypeError,
     r"^randn_like: cannot draw samples of dtype int64"),
    ("rand_like of an array", lambda d: tr.rand_like(np.zeros(2)), TypeError,
     r"^rand_like: input must be a Tensor, got ndarray"),
    ("randint low >= high", lambda d: tr.randint(5, 3, (2,), device=d), ValueError,
     r"^randint: low \(5\) must be less than high \(3\)"),
    ("randint without size", lambda d: tr.randint(5), TypeError,
     r"^randint: expected randint\(high, size\) or randint\(low, high, size\)"),
    ("randint int size", lambda d: tr.randint(0, 5, 3), TypeError,
     r"^randint: size must be a tuple of ints such as \(3,\) or \(2, 4\), got 3"),
    ("randint float bound", lambda d: tr.randint(0.5, 5, (2,)), ValueError,
     r"^randint: low must be an integer, got 0\.5"),
    ("randint negative size", lambda d: tr.randint(0, 5, (-1,)), ValueError,
     r"^randint: sizes must be non-negative integers"),
    ("randperm negative", lambda d: tr.randperm(-1), ValueError, r"^randperm: n must be a non-negative integer, got -1"),
    ("linspace negative steps", lambda d: tr.linspace(0, 1, -1), ValueError,
     r"^linspace: steps must be a non-negative integer, got -1"),
    ("linspace float steps", lambda d: tr.linspace(0, 1, 2.5), ValueError,
     r"^linspace: steps must be a non-negative integer, got 2\.5"),
    ("linspace text bound", lambda d: tr.linspace("0", 1, 3), TypeError, r"^linspace: start must be a number, got '0'"),
    ("linspace tensor bound", lambda d: tr.linspace(W(d, [0.0, 1.0]), 1, 3), ValueError,
     r"^linspace: start must be a number or a one-element tensor, got shape \(2,\)"),
    ("from_numpy of a list", lambda d: tr.from_numpy([1.0, 2.0]), TypeError,
     r"^from_numpy: expected a numpy\.ndarray, got list"),
    ("from_numpy of objects", lambda d: tr.from_numpy(np.array(["a"], dtype=object)), TypeError,
     r"^from_numpy: unsupported dtype object; expected bool, integer or floating point data"),
    ("multinomial of ints", lambda d: tr.multinomial(W(d, [1, 2]), 1), TypeError,
     r"^multinomial: expected floating point weights, got int64"),
    ("multinomial of a list", lambda d: tr.multinomial([0.5, 0.5], 1), TypeError,
     r"^multinomial: input must be a Tensor of weights, got list"),
    ("multinomial negative weight", lambda d: tr.multinomial(W(d, [1.0, -2.0]), 1), ValueError,
     r"^multinomial: weights must be finite and non-negative"),
    ("multinomial NaN weight", lambda d: tr.multinomial(W(d, [1.0, float("nan")]), 1), ValueError,
     r"^multinomial: weights must be finite and non-negative"),
    ("multinomial 3-d", lambda d: tr.multinomial(tr.ones(2, 2, 2, device=d), 1), ValueError,
     r"^multinomial: input must be 1-d or 2-d with at least one category, got shape \(2, 2, 2\)"),
    ("multinomial zero row", lambda d: tr.multinomial(W(d, [[1.0, 1.0], [0.0, 0.0]]), 1), ValueError,
     r"^multinomial: every distribution needs a positive total weight"),
    ("multinomial too many", lambda d: tr.multinomial(W(d, [1.0, 2.0, 3.0]), 4), ValueError,
     r"^multinomial: cannot draw 4 samples without replacement from 3 categories"),
    ("multinomial too few non-zero", lambda d: tr.multinomial(W(d, [1.0, 0.0, 0.0]), 2), ValueError,
     r"^multinomial: cannot draw 2 samples without replacement from a row with only 1 categories of non-zero weight"),
    ("multinomial zero samples", lambda d: tr.multinomial(W(d, [1.0]), 0), ValueError,
     r"^multinomial: num_samples must be a positive integer, got 0"),
    ("allclose dtypes", lambda d: tr.allclose(W(d, [1.0]), W(d, [1.0]).double()), TypeError,
     r"^allclose: expected both tensors to have the same dtype, got float32 and float64"),
    ("allclose shapes", lambda d: tr.allclose(W(d, [1.0, 2.0]), W(d, [1.0, 2.0, 3.0])), ValueError,
     r"^allclose: cannot broadcast shapes \(2,\) and \(3,\)"),
    ("allclose of a list", lambda d: tr.allclose(W(d, [1.0]), [1.0]), TypeError,
     r"^allclose: other must be a Tensor, got list"),
    ("equal of a number", lambda d: tr.equal(1.0, W(d, [1.0])), TypeError, r"^equal: input must be a Tensor, got float"),
    ("pow of two numbers", lambda d: tr.pow(2.0, 3.0), TypeError, r"^pow: expected a Tensor as input or exponent"),
]


def _raised_inside_numpy(excinfo):
    innermost = str(excinfo.traceback[-1].path)
    return f"{os.sep}numpy{os.sep}" in innermost or f"{os.sep}cupy{os.sep}" in innermost


@pytest.mark.parametrize("name,call,error,pattern", BAD, ids=[row[0] for row in BAD])
def test_bad_input_gets_a_clear_error(device, name, call, error, pattern):
    try:
        with pytest.raises(error) as excinfo:
            call(device)
    finally:
        tr.set_default_dtype(tr.float32)
    assert excinfo.match(pattern), f"{name}: {excinfo.value}"
    assert not _raised_inside_numpy(excinfo), f"{name}: the error comes straight out of NumPy: {excinfo.value}"
