"""In-place changes as a learner writes them: manual SGD updates, ``x[i] = v``, ``add_``/``zero_``/...,
version counters, gradient hooks and the grad-mode switches, against PyTorch where it has a twin."""
import math

import numpy as np
import pytest

import tinygrad_rnn as tr
import tinygrad_rnn.nn as nn
import tinygrad_rnn.optim as optim
from conftest import to_device


def _loss(model, x):
    return (model(x) ** 2).mean()


# --------------------------------------------------------------------------- manual updates
@pytest.mark.parametrize("idiom", ["no_grad -=", "data -=", "sub_", "data = expression"])
def test_manual_sgd_update_changes_the_weights_and_keeps_the_parameter(idiom):
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    weight = model.weight
    x = tr.randn(4, 3)
    _loss(model, x).backward()
    expected = weight.numpy() - 0.1 * weight.grad.numpy()
    if idiom == "no_grad -=":
        with tr.no_grad():
            model.weight -= 0.1 * model.weight.grad
    elif idiom == "data -=":
        model.weight.data -= 0.1 * model.weight.grad.data
    elif idiom == "sub_":
        with tr.no_grad():
            model.weight.sub_(0.1 * model.weight.grad)
    else:
        model.weight.data = model.weight.data - 0.1 * model.weight.grad.data
    np.testing.assert_allclose(model.weight.numpy(), expected, rtol=1e-6)
    assert model.weight is weight and isinstance(model.weight, nn.Parameter)
    assert dict(model.named_parameters())["weight"] is weight and opt.param_groups[0]["params"][0] is weight
    assert weight.is_leaf and weight.requires_grad


def test_the_parameter_loop_under_no_grad_trains_and_outside_it_raises():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    x, y = tr.randn(16, 3), tr.randn(16, 1)
    losses = []
    for _ in range(30):
        loss = ((model(x) - y) ** 2).mean()
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with tr.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    assert losses[-1] < 0.8 * losses[0]
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    with pytest.raises(RuntimeError, match=r"^sub_: a leaf tensor that requires grad .*no_grad"):
        for p in model.parameters():
            p -= 0.1 * p.grad


def test_micrograds_loop_runs_unchanged():
    """micrograd's update, ``p.data -= learning_rate * p.grad``, with ``zero_grad`` by hand."""
    model = nn.Linear(2, 1)
    x, y = tr.randn(8, 2), tr.randn(8, 1)
    first = None
    for k in range(20):
        loss = ((model(x) - y) ** 2).sum()
        first = loss.item() if first is None else first
        for p in model.parameters():
            p.grad = None
        loss.backward()
        learning_rate = 0.05
        for p in model.parameters():
            p.data -= learning_rate * p.grad
    assert loss.item() < first


def test_what_is_torch_nn_really_first_loop_runs_with_tr_for_torch():
    """The loop of PyTorch's tutorial "What is torch.nn really?", with ``tr`` for ``torch`` (random data
    of MNIST's shape stands in for MNIST)."""
    rng = np.random.default_rng(0)
    x_train = tr.tensor(((rng.random((256, 784)) < 0.2) * rng.random((256, 784))).astype(np.float32))  # sparse, like digits
    y_train = tr.tensor(rng.integers(0, 10, 256))
    n, c = x_train.shape
    weights = tr.randn(784, 10) / math.sqrt(784)
    weights.requires_grad_()
    bias = tr.zeros(10, requires_grad=True)

    def log_softmax(x):
        return x - x.exp().sum(-1).log().unsqueeze(-1)

    def model(xb):
        return log_softmax(xb @ weights + bias)

    def nll(input, target):
        return -input[range(target.shape[0]), target].mean()

    loss_func = nll

    def accuracy(out, yb):
        preds = tr.argmax(out, dim=1)
        return (preds == yb).float().mean()

    bs, lr, epochs = 64, 0.5, 2
    start = loss_func(model(x_train), y_train).item()
    for epoch in range(epochs):
        for i in range((n - 1) // bs + 1):
            start_i = i * bs
            end_i = start_i + bs
            xb = x_train[start_i:end_i]
            yb = y_train[start_i:end_i]
            pred = model(xb)
            loss = loss_func(pred, yb)

            loss.backward()
            with tr.no_grad():
                weights -= weights.grad * lr
                bias -= bias.grad * lr
                weights.grad.zero_()
                bias.grad.zero_()
    assert loss_func(model(x_train), y_train).item() < start
    assert 0 <= accuracy(model(x_train), y_train).item() <= 1


# --------------------------------------------------------------------------- the in-place methods
def test_filling_methods(device):
    x = to_device(np.zeros((2, 3), np.float32), device)
    assert x.fill_(2.5) is x and np.all(x.numpy() == 2.5)
    assert x.zero_() is x and np.all(x.numpy() == 0)
    x.copy_(tr.tensor([1.0, 2.0, 3.0], device=device))
    np.testing.assert_array_equal(x.numpy(), [[1, 2, 3], [1, 2, 3]])
    ints = to_device(np.zeros(3, np.int64), device)
    ints.copy_(tr.tensor([1.7, 2.2, 3.9], device=device))
    np.testing.assert_array_equal(ints.numpy(), [1, 2, 3])  # truncated, as PyTorch's copy_
    tr.manual_seed(0)
    u = to_device(np.zeros(20000, np.float32), device).uniform_(-2, 3)
    assert u.numpy().min() >= -2 and u.numpy().max() < 3 and abs(u.numpy().mean() - 0.5) < 0.05
    g = to_device(np.zeros(20000, np.float64), device).normal_(1.0, 2.0)
    assert abs(g.numpy().mean() - 1.0) < 0.05 and abs(g.numpy().std() - 2.0) < 0.05
    assert g.dtype == np.float64


def test_arithmetic_methods_and_augmented_assignment(device):
    base = np.array([[1.0, -2.0], [3.0, 4.0]])
    x = to_device(base, device)
    same = x
    x += 1
    x -= to_device(np.array([0.5, 0.5]), device)
    x *= 2
    x /= 4
    assert x is same
    np.testing.assert_allclose(x.numpy(), (base + 1 - 0.5) * 2 / 4)
    x.add_(to_device(np.ones(2), device), alpha=3).sub_(1, alpha=2).mul_(2).div_(2).clamp_(min=0, max=5)
    np.testing.assert_allclose(x.numpy(), np.clip((base + 0.5) / 2 + 3 - 2, 0, 5))


def test_in_place_changes_are_seen_through_views_and_other_names():
    x = tr.zeros(2, 3)
    row = x[0]
    alias = x
    x[0, 1] = 7.0
    alias.add_(1)
    assert row.numpy().tolist() == [1.0, 8.0, 1.0]


@pytest.mark.parametrize("index, value", [
    (1, 5.0),
    (slice(0, 2), -1.0),
    ((Ellipsis, 1), 2.0),
    ((slice(None), None, 0), 3.0),
    ([0, 2], 4.0),
    (range(1, 3), 9.0),
])
def test_setitem_index_forms_match_numpy(device, index, value):
    expected = np.arange(12.0).reshape(3, 4)
    x = to_device(expected.copy(), device)
    x[index] = value
    expected[index] = value
    np.testing.assert_array_equal(x.numpy(), expected)


def test_setitem_with_tensor_indices_and_values(device):
    x = to_device(np.zeros((3, 4)), device)
    x[to_device(np.array([True, False, True]), device)] = to_device(np.arange(4.0), device)
    x[to_device(np.array([1]), device), 2] = 5
    np.testing.assert_array_equal(x.numpy(), [[0, 1, 2, 3], [0, 0, 5, 0], [0, 1, 2, 3]])


# --------------------------------------------------------------------------- differentiable in-place
def _run_both(torch, steps):
    """Apply ``steps(lib, x, w)`` to float64 leaves (3, 4) in tr and in torch; return, for each,
    (the result, x's gradient, w's gradient) after backward of Σ result²."""
    rng = np.random.default_rng(1)
    xa, wa = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    results = []
    for lib in (tr, torch):
        x, w = lib.tensor(xa, requires_grad=True), lib.tensor(wa, requires_grad=True)
        out = steps(lib, x, w)
        (out * out).sum().backward()
        results.append([np.asarray(t.detach().numpy()) for t in (out, x.grad, w.grad)])
    return results


def _add(lib, x, w):
    h = x * 2
    h.add_(w, alpha=0.5)
    return h


def _mul(lib, x, w):
    h = x * 1.0
    h.mul_(w)
    h += 1
    return h


def _setitem(lib, x, w):
    h = x * 1.5  # not tanh: Tanh saves its output, and overwriting it would make backward raise (in PyTorch too)
    h[1] = w[0] * 3
    return h


def _clamp(lib, x, w):
    h = x + w
    h.clamp_(-0.5, 0.5)
    return h


def _copy(lib, x, w):
    h = x * 2
    h[:, :2].copy_(w[:, 1:3]) if lib is not tr else None
    if lib is tr:  # a view of a view: tr writes through its own __setitem__
        h[:, :2] = w[:, 1:3]
    return h


def _augmented_slices(lib, x, w):
    """``h[0] += w[0]`` runs h[0].__iadd__ and then h.__setitem__(0, ...)."""
    h = x * 2
    h[0] += w[0]
    h[:, 1] *= 3
    return h


def _slice_methods(lib, x, w):
    h = x * 2
    h[0].add_(w[0])
    h[:, 1].mul_(3)
    h[1][0] = 7.0
    return h


def _through_views(lib, x, w):
    h = x * 2
    h.view(-1)[:4].add_(w[0])
    h.t()[2].mul_(w[:, 0])
    h.transpose(0, 1)[0, 1] = 9.0
    copied = h.t().reshape(-1)  # not contiguous: a copy, so changing it leaves h alone
    copied.zero_()
    return h


@pytest.mark.parametrize("steps", [_add, _mul, _setitem, _clamp, _copy, _augmented_slices, _slice_methods,
                                   _through_views])
def test_in_place_on_non_leaves_gives_pytorchs_values_and_gradients(steps):
    torch = pytest.importorskip("torch")
    for ours, theirs in zip(*_run_both(torch, steps)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("steps", [_add, _mul, _setitem, _clamp])
def test_in_place_on_non_leaves_gradcheck(steps):
    rng = np.random.default_rng(2)
    x = tr.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = tr.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    tr.gradcheck(lambda a, b: steps(tr, a, b), [x, w])


def test_a_leaf_that_needs_no_grad_becomes_part_of_the_graph():
    buffer = tr.zeros(3)
    w = tr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    buffer[1:] = w[:2] * 2
    assert buffer.requires_grad and not buffer.is_leaf
    buffer.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0, 0.0])


# --------------------------------------------------------------------------- version counters
def test_changing_a_saved_tensor_in_place_makes_backward_raise_naming_the_op():
    x = tr.randn(3, requires_grad=True)
    y = x.sigmoid()  # Sigmoid saves its output
    with tr.no_grad():
        y.mul_(2)
    with pytest.raises(RuntimeError, match=r"^Sigmoid\.backward: a tensor that Sigmoid saved .* modified in place"):
        y.sum().backward()


def test_a_weight_updated_before_backward_makes_backward_raise():
    w = tr.randn(3, 3, requires_grad=True)
    loss = (tr.randn(2, 3) @ w).sum()
    with tr.no_grad():
        w -= 0.1
    with pytest.raises(RuntimeError, match=r"^MatMul\.backward: .* modified in place after it was saved"):
        loss.backward()


def test_detach_shares_the_version_counter_and_data_does_not():
    x = tr.randn(3, requires_grad=True)
    y = x.exp()  # Exp saves its output
    y.detach().zero_()
    with pytest.raises(RuntimeError, match="modified in place"):
        y.sum().backward(retain_graph=True)
    z = x.exp()
    z.data.zero_()  # PyTorch's documented escape hatch: not tracked
    z.sum().backward()


def test_overwriting_an_output_that_its_op_saved_raises_as_in_pytorch():
    x = tr.randn(3, 4, requires_grad=True)
    h = x.tanh()
    h[1] = 0.0
    with pytest.raises(RuntimeError, match=r"^Tanh\.backward: .* modified in place"):
        h.sum().backward()


def test_in_place_ops_that_do_not_touch_saved_values_need_no_copy():
    x = tr.randn(3, requires_grad=True)
    h = x @ tr.eye(3)
    h += 1  # Add saves nothing; MatMul saved x and the identity, not h
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.ones(3))


# --------------------------------------------------------------------------- hooks
def test_register_hook_sees_and_replaces_gradients_like_pytorch():
    torch = pytest.importorskip("torch")
    seen = {}
    results = []
    for lib in (tr, torch):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        h = x * 2
        handle = h.register_hook(lambda g: g * 10)
        x.register_hook(lambda g, lib=lib: seen.__setitem__(lib.__name__, g.numpy().copy()))
        (h * h).sum().backward()
        results.append(x.grad.numpy().copy())
        handle.remove()
        x.grad = None
        (x * 2 * x * 2).sum().backward()
        results.append(x.grad.numpy().copy())
    np.testing.assert_allclose(results[0], results[2])
    np.testing.assert_allclose(results[1], results[3])
    np.testing.assert_allclose(seen["tinygrad_rnn"], seen["torch"])


def test_a_hook_returning_the_wrong_shape_is_an_error():
    x = tr.randn(3, requires_grad=True)
    x.register_hook(lambda g: g.sum())
    with pytest.raises(RuntimeError, match=r"^register_hook: a hook must return None or a tensor of shape \(3,\)"):
        (x * 2).sum().backward()


# --------------------------------------------------------------------------- grad modes
def test_grad_mode_switches():
    x = tr.randn(2, requires_grad=True)

    @tr.no_grad
    def bare(t):
        return t * 2

    @tr.no_grad()
    def called(t):
        return t * 2

    @tr.inference_mode
    def inferred(t):
        return t * 2

    assert not bare(x).requires_grad and not called(x).requires_grad and not inferred(x).requires_grad
    with tr.inference_mode():
        assert not (x * 2).requires_grad
    with tr.inference_mode(False):
        assert (x * 2).requires_grad
    with tr.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    tr.set_grad_enabled(False)
    try:
        assert not tr.is_grad_enabled()
    finally:
        tr.set_grad_enabled(True)
    assert tr.is_grad_enabled()


def test_relu_gives_positive_zero():
    out = tr.tensor([-3.0, -0.0, 0.0, 2.0]).relu().numpy()
    assert not np.signbit(out).any()


def test_writing_into_an_expanded_tensor_is_refused_with_the_fix():
    x = tr.zeros(3).expand(2, 3)
    with pytest.raises(RuntimeError, match=r"^add_: cannot write a value of shape \(2, 3\) .* \.clone\(\) it first"):
        x.add_(1)
    y = x.clone()
    y.add_(1)
    assert y.numpy().tolist() == [[1.0] * 3] * 2


def test_an_optimizer_step_before_backward_makes_that_backward_raise_as_in_pytorch():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    first = model(tr.randn(4, 3)).sum()
    first.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match=r"^Linear\.backward: .* modified in place"):
        first.backward()
    opt.zero_grad()
    model(tr.randn(4, 3)).sum().backward()  # a graph built after the step is fine
    opt.step()


def test_a_slice_of_a_parameter_is_refused_before_anything_is_written():
    p = nn.Parameter(tr.zeros(2, 2))
    with pytest.raises(RuntimeError, match=r"^add_: a slice of a leaf tensor that requires grad"):
        p[0].add_(1)
    assert p.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    with tr.no_grad():
        p[0].add_(1)
    assert p.tolist() == [[1.0, 1.0], [0.0, 0.0]]


def test_a_slice_written_under_no_grad_raises_the_version_of_what_it_was_sliced_from():
    x = tr.randn(2, 3, requires_grad=True)
    y = x.exp()  # Exp saves its output
    with tr.no_grad():
        y[0].zero_()
    with pytest.raises(RuntimeError, match=r"^Exp\.backward: .* modified in place"):
        y.sum().backward()
