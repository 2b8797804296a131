"""Property tests: gradients of broadcasting, reductions, indexing and reshapes over random shapes."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_rnn as tr

SETTINGS = settings(max_examples=25, deadline=None)


def leaf(draw_array):
    return tr.Tensor(np.asarray(draw_array, dtype=np.float64), requires_grad=True)


def arrays(shape):
    return hnp.arrays(np.float64, shape, elements=st.floats(-2, 2, allow_nan=False, width=64))


@SETTINGS
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       op=st.sampled_from(["add", "sub", "mul", "div", "maximum"]), data=st.data())
def test_broadcasting_arithmetic(shapes, op, data):
    a = leaf(data.draw(arrays(shapes.input_shapes[0])))
    b_values = data.draw(arrays(shapes.input_shapes[1]))
    if op == "div":
        b_values = np.abs(b_values) + 0.5
    b = leaf(b_values)
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b, "maximum": tr.maximum}[op]
    out = fn(a, b)
    assert out.shape == np.broadcast_shapes(a.shape, b.shape)
    if op == "maximum" and np.any(np.isclose(*np.broadcast_arrays(a.numpy(), b.numpy()), atol=1e-5)):
        return  # a kink: finite differences straddle it
    assert tr.gradcheck(fn, [a, b])


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), data=st.data(),
       op=st.sampled_from(["sum", "mean", "var", "softmax", "log_softmax"]), keepdim=st.booleans())
def test_reductions(shape, data, op, keepdim):
    x = leaf(data.draw(arrays(shape)))
    dims = data.draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True))
    if op in ("softmax", "log_softmax"):
        fn = lambda x: getattr(x, op)(dims[0])  # noqa: E731
    elif op == "var":
        count = int(np.prod([shape[d] for d in dims]))
        if count < 2:
            return
        fn = lambda x: x.var(dim=tuple(dims), keepdim=keepdim)  # noqa: E731
    else:
        fn = lambda x: getattr(x, op)(dim=tuple(dims), keepdim=keepdim)  # noqa: E731
    expected = {"sum": np.sum, "mean": np.mean}.get(op)
    if expected is not None:
        np.testing.assert_allclose(fn(x).numpy(), expected(x.numpy(), axis=tuple(dims), keepdims=keepdim))
    assert tr.gradcheck(fn, [x])


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5), data=st.data())
def test_basic_and_advanced_indexing(shape, data):
    x = leaf(data.draw(arrays(shape)))
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    np.testing.assert_array_equal(x[index].numpy(), x.numpy()[index])
    assert tr.gradcheck(lambda x: x[index] * 1.5, [x])
    rows = data.draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=6))
    np.testing.assert_array_equal(x[rows].numpy(), x.numpy()[rows])
    assert tr.gradcheck(lambda x: x[rows], [x])
    mask = data.draw(hnp.arrays(np.bool_, shape))
    assert tr.gradcheck(lambda x: x[tr.Tensor(mask)] * 2.0, [x]) if mask.any() else True


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=4), data=st.data())
def test_reshapes_and_permutes(shape, data):
    x = leaf(data.draw(arrays(shape)))
    flat = x.reshape(-1)
    assert flat.shape == (int(np.prod(shape)),)
    perm = data.draw(st.permutations(range(len(shape))))
    np.testing.assert_array_equal(x.permute(*perm).numpy(), np.transpose(x.numpy(), perm))
    assert tr.gradcheck(lambda x: x.permute(*perm).reshape(-1)[::2], [x])
    assert tr.gradcheck(lambda x: x.unsqueeze(0).flatten(0, 1).squeeze(), [x])


def distinct(values):
    """The same shape with well-separated values, so max/min have no ties for finite differences to straddle."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    order = np.argsort(flat, kind="stable")
    spaced = np.empty_like(flat)
    spaced[order] = np.arange(flat.size) * 0.1 - flat.size * 0.05
    return spaced.reshape(np.shape(values))


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), data=st.data(),
       op=st.sampled_from(["max", "min", "amax", "amin"]), keepdim=st.booleans())
def test_max_and_min_reductions(shape, data, op, keepdim):
    x = leaf(distinct(data.draw(arrays(shape))))
    dims = tuple(data.draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True)))
    if op in ("max", "min"):
        dim = dims[0]
        values, indices = getattr(x, op)(dim, keepdim=keepdim)
        np.testing.assert_array_equal(values.numpy(), getattr(np, op)(x.numpy(), axis=dim, keepdims=keepdim))
        np.testing.assert_array_equal(indices.numpy(), getattr(np, "arg" + op)(x.numpy(), axis=dim, keepdims=keepdim))
        fn = lambda x: getattr(x, op)(dim, keepdim=keepdim)[0]  # noqa: E731
    else:
        fn = lambda x: getattr(x, op)(dim=dims, keepdim=keepdim)  # noqa: E731
        np.testing.assert_array_equal(fn(x).numpy(), getattr(np, op)(x.numpy(), axis=dims, keepdims=keepdim))
    assert tr.gradcheck(fn, [x])


@SETTINGS
@given(batch=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3),
       sizes=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)), data=st.data())
def test_broadcast_batched_matmul(batch, sizes, data):
    n, k, m = sizes
    a = leaf(data.draw(arrays(batch.input_shapes[0] + (n, k))))
    b = leaf(data.draw(arrays(batch.input_shapes[1] + (k, m))))
    np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy())
    assert tr.gradcheck(lambda a, b: a @ b, [a, b])


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), data=st.data())
def test_expand_transpose_cat_stack_split(shape, data):
    x = leaf(data.draw(arrays(shape)))
    y = leaf(data.draw(arrays(shape)))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    np.testing.assert_array_equal(tr.cat([x, y], dim).numpy(), np.concatenate([x.numpy(), y.numpy()], dim))
    assert tr.gradcheck(lambda x, y: tr.cat([x, y * 2.0], dim), [x, y])
    assert tr.gradcheck(lambda x, y: tr.stack([x, y], dim), [x, y])
    size = data.draw(st.integers(1, shape[dim]))
    assert tr.gradcheck(lambda x: tr.stack([p.sum() * (i + 1) for i, p in enumerate(x.split(size, dim))]), [x])
    other = data.draw(st.integers(-len(shape), len(shape) - 1))
    np.testing.assert_array_equal(x.transpose(dim, other).numpy(), np.swapaxes(x.numpy(), dim, other))
    assert tr.gradcheck(lambda x: x.transpose(dim, other), [x])
    lead = data.draw(st.integers(1, 3))
    assert tr.gradcheck(lambda x: x.unsqueeze(0).expand((lead,) + tuple(shape)) * 1.5, [x])


@SETTINGS
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3), data=st.data())
def test_broadcasting_power_and_where(shapes, data):
    base = leaf(np.abs(data.draw(arrays(shapes.input_shapes[0]))) + 0.5)
    exponent = leaf(data.draw(arrays(shapes.input_shapes[1])))
    assert tr.gradcheck(lambda a, b: a**b, [base, exponent])
    condition = tr.Tensor(data.draw(hnp.arrays(np.bool_, shapes.result_shape)))
    assert tr.gradcheck(lambda a, b: tr.where(condition, a, b), [base, exponent])
