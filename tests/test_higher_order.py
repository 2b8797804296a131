"""Gradients of gradients: ``backward(create_graph=True)``, ``tr.autograd.grad``, ``autograd.functional``,
second derivatives of cells and layers, and against PyTorch where it has a twin."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from conftest import to_device
from tinygrad_rnn import nn
from tinygrad_rnn.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp

rng = np.random.default_rng(11)


def leaf(shape, device="cpu"):
    return to_device(rng.standard_normal(shape), device, requires_grad=True)


# --------------------------------------------------------------------------- grad and backward
def test_grad_returns_a_tuple_and_touches_no_grad():
    x, w = leaf((3,)), leaf((3,))
    y = (x * w).sum()
    gx, gw = tr.autograd.grad(y, [x, w])
    np.testing.assert_allclose(gx.numpy(), w.detach().numpy())
    np.testing.assert_allclose(gw.numpy(), x.detach().numpy())
    assert x.grad is None and w.grad is None
    assert not gx.requires_grad


def test_grad_of_a_non_leaf_input():
    x = leaf((3,))
    h = x.tanh()
    y = (h * h).sum()
    (gh,) = tr.autograd.grad(y, h)
    np.testing.assert_allclose(gh.numpy(), 2 * np.tanh(x.detach().numpy()))


def test_grad_of_an_input_used_twice_counts_only_its_own_paths():
    x = leaf((2,))
    a = x * 2
    y = (a * a).sum() + (x * 3).sum()
    (ga,) = tr.autograd.grad(y, a, retain_graph=True)
    np.testing.assert_allclose(ga.numpy(), 2 * a.detach().numpy())
    (gx,) = tr.autograd.grad(y, x)
    np.testing.assert_allclose(gx.numpy(), 8 * x.detach().numpy() + 3)


def test_second_derivative_of_a_cube_and_third():
    x = leaf((4,))
    (g,) = tr.autograd.grad((x**3).sum(), x, create_graph=True)
    assert g.requires_grad
    (h,) = tr.autograd.grad(g.sum(), x, create_graph=True)
    (t,) = tr.autograd.grad(h.sum(), x)
    v = x.detach().numpy()
    np.testing.assert_allclose(g.detach().numpy(), 3 * v**2)
    np.testing.assert_allclose(h.detach().numpy(), 6 * v)
    np.testing.assert_allclose(t.numpy(), np.full(4, 6.0))


def test_backward_create_graph_leaves_a_grad_that_can_be_differentiated():
    x = leaf((3,))
    y = (x.sin() * x).sum()
    y.backward(create_graph=True)
    assert x.grad.requires_grad and x.grad.grad_fn is not None
    first = x.grad
    x.grad = None
    first.sum().backward()
    v = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.cos(v) - v * np.sin(v), rtol=1e-12)


def test_backward_inputs_limits_which_tensors_get_grad():
    x, w = leaf((3,)), leaf((3,))
    h = x * w
    h.sum().backward(inputs=[w, h])
    assert x.grad is None
    np.testing.assert_allclose(w.grad.numpy(), x.detach().numpy())
    np.testing.assert_allclose(h.grad.numpy(), np.ones(3))


def test_create_graph_keeps_the_graph_by_default_and_retain_graph_false_releases_it():
    x = leaf((3,))
    y = (x.exp()).sum()
    (g,) = tr.autograd.grad(y, x, create_graph=True)
    (g2,) = tr.autograd.grad(y, x)  # the first call kept the graph
    np.testing.assert_allclose(g.detach().numpy(), g2.numpy())
    with pytest.raises(tr.GraphReleasedError):
        tr.autograd.grad(y, x)


def test_hooks_see_tensors_under_create_graph():
    x = leaf((3,))
    h = x * x
    seen = []
    h.register_hook(lambda g: seen.append(g.requires_grad) or g * 2)
    (g,) = tr.autograd.grad(h.sum(), x, create_graph=True)
    assert seen == [False]  # the seed of ones carries no graph; what flows after it does
    np.testing.assert_allclose(g.detach().numpy(), 4 * x.detach().numpy())
    (gg,) = tr.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), np.full(3, 4.0))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda x, y: tr.autograd.grad(y, [x, x * 1]), "input 1 .* was not used"),
        (lambda x, y: tr.autograd.grad(x * 2, x), "scalar output or an explicit gradient"),
        (lambda x, y: tr.autograd.grad(y, x, grad_outputs=[tr.ones(2)]), "does not match the output's shape"),
        (lambda x, y: tr.autograd.grad(y, tr.ones(3)), "input 0 does not require grad"),
        (lambda x, y: tr.autograd.grad(y.detach(), x), "output 0 does not require grad"),
        (lambda x, y: tr.autograd.grad(y, [x], grad_outputs=[None, None]), "2 grad_outputs for 1 outputs"),
        (lambda x, y: tr.autograd.grad(y, "x"), "inputs must be tensors"),
    ],
)
def test_grad_bad_input(call, message):
    x = leaf((3,))
    y = (x * x).sum()
    with pytest.raises((RuntimeError, ValueError, TypeError), match=message):
        call(x, y)


def test_allow_unused_gives_none():
    x, z = leaf((3,)), leaf((3,))
    gx, gz = tr.autograd.grad((x * x).sum(), [x, z], allow_unused=True)
    assert gz is None and gx is not None


def test_first_order_results_unchanged_by_create_graph():
    """The same numbers either way: the Tensor-side backward equals the array-side one."""
    lstm = nn.LSTM(3, 4, impl="composed").double()
    x = tr.tensor(rng.standard_normal((5, 2, 3)))
    loss = lstm(x)[0].pow(2).sum()
    plain = tr.autograd.grad(loss, list(lstm.parameters()), retain_graph=True)
    graph = tr.autograd.grad(loss, list(lstm.parameters()), create_graph=True)
    for a, b in zip(plain, graph):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-13, atol=1e-15)


# --------------------------------------------------------------------------- cells and layers
@pytest.mark.parametrize("impl", ["composed", "fused"])
@pytest.mark.parametrize("kind", ["rnn", "rnn_relu", "lstm", "gru", "lstm_peephole", "lstm_coupled"])
def test_cells_second_derivatives(kind, impl, device):
    base = kind.split("_")[0] if kind.startswith("lstm") else kind
    peephole, coupled = kind == "lstm_peephole", kind == "lstm_coupled"
    if base == "lstm":
        cell = nn.LSTMCell(3, 4, peephole=peephole, coupled=coupled, impl=impl).double().to(device)
    elif base == "gru":
        cell = nn.GRUCell(3, 4, impl=impl).double().to(device)
    else:
        cell = nn.RNNCell(3, 4, nonlinearity="relu" if kind == "rnn_relu" else "tanh", impl=impl).double().to(device)
    x, h = leaf((2, 3), device), leaf((2, 4), device)
    if kind == "rnn_relu":  # keep pre-activations away from the kink at 0
        with tr.no_grad():
            cell.bias_ih.add_(3.0)

    def fn(x, h):
        if base == "lstm":
            h2, c2 = cell(x, (h, h * 0.5))
            return h2 * c2
        return cell(x, h)

    assert tr.gradgradcheck(fn, [x, h])
    # and through the weights: d/dW of the gradient norm
    loss = fn(x, h).pow(2).sum()
    grads = tr.autograd.grad(loss, list(cell.parameters()), create_graph=True)
    penalty = sum((g * g).sum() for g in grads)
    second = tr.autograd.grad(penalty, list(cell.parameters()))
    assert all(np.isfinite(g.cpu().numpy()).all() for g in second)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_fused_cell_second_derivatives_equal_composed(kind):
    make = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind]
    tr.manual_seed(0)
    fused = make(3, 4, impl="fused").double()
    composed = make(3, 4, impl="composed").double()
    composed.load_state_dict(fused.state_dict())
    x = tr.tensor(rng.standard_normal((2, 3)))
    results = []
    for cell in (fused, composed):
        out = cell(x)
        out = out[0] * out[1] if kind == "lstm" else out
        grads = tr.autograd.grad(out.tanh().sum(), list(cell.parameters()), create_graph=True)
        second = tr.autograd.grad(sum((g * g).sum() for g in grads), list(cell.parameters()))
        results.append([g.numpy() for g in second])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("layer", ["RNN", "LSTM", "GRU"])
def test_whole_sequence_fused_layers_refuse_double_backward_naming_the_layer(layer):
    module = getattr(nn, layer)(3, 4, impl="fused").double()
    out, _ = module(tr.tensor(rng.standard_normal((5, 2, 3))))
    with pytest.raises(RuntimeError, match=rf"{layer}.*impl=\"composed\""):
        tr.autograd.grad(out.pow(2).sum(), list(module.parameters()), create_graph=True)


@pytest.mark.parametrize("layer", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("impl", ["composed", "fused_step"])
def test_layers_double_backward_with_per_step_impls(layer, impl):
    module = getattr(nn, layer)(2, 3, num_layers=2, bidirectional=True, impl=impl).double()
    x = leaf((4, 2, 2))
    assert tr.gradgradcheck(lambda x: module(x)[0], [x])


# --------------------------------------------------------------------------- autograd.functional
def test_hessian_of_a_quadratic_form_is_a_plus_a_transpose():
    a = rng.standard_normal((3, 3))
    A = tr.tensor(a)
    H = hessian(lambda x: x @ A @ x, tr.tensor(rng.standard_normal(3)))
    np.testing.assert_allclose(H.numpy(), a + a.T, rtol=1e-12)


def test_jacobian_of_elementwise_is_diagonal_and_strategies_agree():
    x = tr.tensor(rng.standard_normal(4))
    J = jacobian(lambda x: x.tanh(), x)
    np.testing.assert_allclose(J.numpy(), np.diag(1 - np.tanh(x.numpy()) ** 2), rtol=1e-12)
    np.testing.assert_allclose(jacobian(lambda x: x.tanh(), x, strategy="forward-mode").numpy(), J.numpy())


def test_products_agree_with_the_full_matrices():
    x = tr.tensor(rng.standard_normal(3))
    W = tr.tensor(rng.standard_normal((2, 3)))
    f = lambda x: (W @ x).sin()  # noqa: E731
    s = lambda x: ((W @ x) ** 3).sum()  # noqa: E731
    J = jacobian(f, x).numpy()
    H = hessian(s, x).numpy()
    u, v = rng.standard_normal(2), rng.standard_normal(3)
    np.testing.assert_allclose(vjp(f, x, tr.tensor(u))[1].numpy(), u @ J, rtol=1e-12)
    np.testing.assert_allclose(jvp(f, x, tr.tensor(v))[1].numpy(), J @ v, rtol=1e-12)
    np.testing.assert_allclose(hvp(s, x, tr.tensor(v))[1].numpy(), H @ v, rtol=1e-12)
    np.testing.assert_allclose(vhp(s, x, tr.tensor(v))[1].numpy(), v @ H, rtol=1e-12)


def test_newtons_method_with_hessian_converges_in_one_step_on_a_quadratic():
    a = rng.standard_normal((3, 3))
    A = tr.tensor(a @ a.T + 3 * np.eye(3))
    b = tr.tensor(rng.standard_normal(3))
    f = lambda x: 0.5 * (x @ A @ x) - (b * x).sum()  # noqa: E731
    x = tr.zeros(3, dtype=tr.float64)
    g = jacobian(f, x)
    H = hessian(f, x)
    x = x - tr.tensor(np.linalg.solve(H.numpy(), g.numpy()))
    np.testing.assert_allclose((A @ x).numpy(), b.numpy(), rtol=1e-10)


def test_functional_create_graph_results_stay_differentiable():
    x = leaf((3,))
    _, g = vjp(lambda x: (x**3).sum(), x, create_graph=True)
    (h,) = tr.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.detach().numpy())


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: vjp(lambda x: x * 2, tr.ones(3, dtype=tr.float64)), "v can be omitted only"),
        (lambda: jvp(lambda x: x * 2, tr.ones(3, dtype=tr.float64), tr.ones(2, dtype=tr.float64)), "v\\[0\\] has shape"),
        (lambda: hessian(lambda x: x * 2, tr.ones(3, dtype=tr.float64)), "single tensor with one element"),
        (lambda: jacobian(lambda x: x * 2, [1.0]), "must be a Tensor or a tuple of Tensors"),
        (lambda: jacobian(lambda x: x, tr.ones(3, dtype=tr.float64), strategy="sideways"), "strategy must be"),
        (lambda: jacobian(lambda x, y: x * 2, (tr.ones(2, dtype=tr.float64),) * 2, strict=True), "do not depend on input 1"),
        (lambda: jacobian(lambda x: x, tr.arange(3)), "only floating point inputs"),
    ],
)
def test_functional_bad_input(call, message):
    with pytest.raises((RuntimeError, TypeError, ValueError), match=message):
        call()


# --------------------------------------------------------------------------- against PyTorch
@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _both(fn_tr, fn_torch, arrays, torch):
    ours = [tr.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    results = []
    for lib, inputs, f in ((tr, ours, fn_tr), (torch, theirs, fn_torch)):
        out = f(*inputs)
        grads = lib.autograd.grad(out, inputs, create_graph=True)
        total = sum((g * g).sum() for g in grads)
        second = lib.autograd.grad(total, inputs)
        results.append([np.asarray(g.detach().numpy()) for g in second])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "name",
    ["softmax_ce", "logsumexp", "layer_norm", "gelu", "matmul_tanh", "var_std", "pad_gather", "einsum"],
)
def test_second_derivatives_match_pytorch(name, torch):
    import torch.nn.functional as TF

    import tinygrad_rnn.nn.functional as F

    target = [2, 0, 1]
    cases = {
        "softmax_ce": (lambda x, w: F.cross_entropy(x @ w, tr.tensor(target)),
                       lambda x, w: TF.cross_entropy(x @ w, torch.tensor(target)), [(3, 4), (4, 3)]),
        "logsumexp": (lambda x: x.logsumexp(1).exp().sum(), lambda x: x.logsumexp(1).exp().sum(), [(3, 4)]),
        "layer_norm": (lambda x, w: F.layer_norm(x, (4,), w).pow(3).sum(),
                       lambda x, w: TF.layer_norm(x, (4,), w).pow(3).sum(), [(3, 4), (4,)]),
        "gelu": (lambda x: F.gelu(x).pow(2).sum(), lambda x: TF.gelu(x).pow(2).sum(), [(3, 4)]),
        "matmul_tanh": (lambda a, b: (a @ b).tanh().sum(), lambda a, b: (a @ b).tanh().sum(), [(2, 3), (3, 2)]),
        "var_std": (lambda x: x.var(1).sum() * x.std(0).sum(), lambda x: x.var(1).sum() * x.std(0).sum(), [(3, 4)]),
        "pad_gather": (lambda x: F.pad(x * x, (1, 1), mode="reflect")[:, [0, 2, 2]].sum(),
                       lambda x: TF.pad((x * x)[None], (1, 1), mode="reflect")[0][:, [0, 2, 2]].sum(), [(2, 4)]),
        "einsum": (lambda a, b: tr.einsum("ij,jk->ik", a, b).sin().sum(),
                   lambda a, b: torch.einsum("ij,jk->ik", a, b).sin().sum(), [(2, 3), (3, 2)]),
    }
    fn_tr, fn_torch, shapes = cases[name]
    _both(fn_tr, fn_torch, [rng.standard_normal(s) for s in shapes], torch)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_cell_gradient_penalty_matches_pytorch(kind, torch):
    make_tr = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind]
    make_torch = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[kind]
    ours = make_tr(3, 4).double()
    theirs = make_torch(3, 4).double()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((2, 3))
    results = []
    for lib, cell in ((tr, ours), (torch, theirs)):
        out = cell(lib.tensor(x))
        out = out[0] * out[1] if kind == "lstm" else out
        params = list(cell.parameters())
        grads = lib.autograd.grad(out.tanh().sum(), params, create_graph=True)
        second = lib.autograd.grad(sum((g * g).sum() for g in grads), params)
        results.append([g.detach().numpy() for g in second])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_functional_matches_pytorch(torch):
    import torch.autograd.functional as TAF

    W = rng.standard_normal((2, 3))
    x = rng.standard_normal(3)
    f_tr = lambda x: (tr.tensor(W) @ x.tanh()).exp()  # noqa: E731
    f_torch = lambda x: (torch.tensor(W) @ x.tanh()).exp()  # noqa: E731
    s_tr = lambda x: (tr.tensor(W) @ x.sin()).pow(2).sum()  # noqa: E731
    s_torch = lambda x: (torch.tensor(W) @ x.sin()).pow(2).sum()  # noqa: E731
    np.testing.assert_allclose(jacobian(f_tr, tr.tensor(x)).numpy(), TAF.jacobian(f_torch, torch.tensor(x)).numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(hessian(s_tr, tr.tensor(x)).numpy(), TAF.hessian(s_torch, torch.tensor(x)).numpy(),
                               rtol=1e-12)


def _omega_objective(lib, cell, x, lam):
    """The loss of the last state plus lam * Pascanu's Omega, written once for both libraries."""
    h = lib.zeros(x.shape[1], cell.hidden_size, dtype=x.dtype).requires_grad_(True)
    states = [h]
    for t in range(x.shape[0]):
        h = cell(x[t], h)
        states.append(h)
    loss = (h.tanh() ** 2).sum()
    grads = [g.detach() for g in lib.autograd.grad(loss, states, retain_graph=True)]
    omega = 0
    for t in range(len(states) - 1):
        (u,) = lib.autograd.grad(states[t + 1], states[t], grad_outputs=grads[t + 1], create_graph=True)
        omega = omega + (((u * u).sum(1).sqrt() / (grads[t + 1] * grads[t + 1]).sum(1).sqrt() - 1) ** 2).mean()
    return loss + lam * omega


@pytest.mark.parametrize("impl", ["fused", "composed"])
def test_omega_training_objective_gradients_match_pytorch(impl, torch):
    ours = nn.RNNCell(3, 5, impl=impl).double()
    theirs = torch.nn.RNNCell(3, 5).double()
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((6, 2, 3))
    results = []
    for lib, cell in ((tr, ours), (torch, theirs)):
        objective = _omega_objective(lib, cell, lib.tensor(x), 0.7)
        results.append([g.detach().numpy() for g in lib.autograd.grad(objective, list(cell.parameters()))])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
