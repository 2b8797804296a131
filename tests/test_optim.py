"""Optimizers (hand-computed updates, PyTorch parity, state dicts), gradient clipping, detach_state."""
import math

import numpy as np
import pytest

import tinygrad_rnn as tr
import tinygrad_rnn.nn as nn
from tinygrad_rnn import optim
from tinygrad_rnn.nn.utils import (
    clip_grad_norm_, clip_grad_value_, detach_state, parameters_to_vector, vector_to_parameters,
)


def _param(values, device="cpu", dtype="float64"):
    return nn.Parameter(tr.tensor(values, dtype=dtype, device=device))


def _run(optimizer, param, steps):
    """Minimise 0.5·Σθ² (so the gradient is θ) for ``steps`` steps; return θ after each step."""
    history = []
    for _ in range(steps):
        optimizer.zero_grad()
        (0.5 * (param * param).sum()).backward()
        optimizer.step()
        history.append(param.numpy().copy())
    return history


# ------------------------------------------------------- hand-computed updates
# Each expected value below is worked out from the update rule with plain floats,
# for the loss 0.5·θ² whose gradient is θ itself.

def test_sgd_plain_weight_decay_and_momentum_by_hand():
    p = _param([1.0])
    history = _run(optim.SGD([p], lr=0.1), p, 2)
    assert history[0][0] == pytest.approx(0.9) and history[1][0] == pytest.approx(0.81)

    p = _param([1.0])
    history = _run(optim.SGD([p], lr=0.1, weight_decay=0.5), p, 2)  # g = θ + 0.5θ
    assert history[0][0] == pytest.approx(0.85) and history[1][0] == pytest.approx(0.85 * 0.85)

    p = _param([1.0])
    history = _run(optim.SGD([p], lr=0.1, momentum=0.9), p, 3)
    # b1 = 1 → θ = 0.9;  b2 = 0.9·1 + 0.9 = 1.8 → θ = 0.72;  b3 = 0.9·1.8 + 0.72 = 2.34 → θ = 0.486
    np.testing.assert_allclose([h[0] for h in history], [0.9, 0.72, 0.486], rtol=1e-12)

    p = _param([1.0])
    history = _run(optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5), p, 2)
    # b1 = 1 (no dampening on the first step) → 0.9;  b2 = 0.9 + 0.5·0.9 = 1.35 → 0.765
    np.testing.assert_allclose([h[0] for h in history], [0.9, 0.765], rtol=1e-12)

    p = _param([1.0])
    history = _run(optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True), p, 2)
    # b1 = 1, d = 1 + 0.9 = 1.9 → 0.81;  b2 = 0.9 + 0.81 = 1.71, d = 0.81 + 1.539 = 2.349 → 0.5751
    np.testing.assert_allclose([h[0] for h in history], [0.81, 0.5751], rtol=1e-12)


def test_adam_and_adamw_by_hand():
    p = _param([2.0])
    history = _run(optim.Adam([p], lr=0.1), p, 2)
    # step 1: m = 0.1·2, v = 0.001·4; m̂ = 2, v̂ = 4 → θ = 2 - 0.1·2/(2 + 1e-8)
    t1 = 2 - 0.1 * 2 / (2 + 1e-8)
    m, v = 0.1 * 2, 0.001 * 4
    m, v = 0.9 * m + 0.1 * t1, 0.999 * v + 0.001 * t1 * t1
    t2 = t1 - 0.1 / (1 - 0.9**2) * m / (math.sqrt(v) / math.sqrt(1 - 0.999**2) + 1e-8)
    np.testing.assert_allclose([history[0][0], history[1][0]], [t1, t2], rtol=1e-12)

    p = _param([2.0])
    history = _run(optim.AdamW([p], lr=0.1, weight_decay=0.5), p, 1)
    # decoupled: θ ← θ(1 - 0.05) = 1.9 first, then the Adam step on the gradient 2 (taken before the decay)
    assert history[0][0] == pytest.approx(1.9 - 0.1 * 2 / (2 + 1e-8), rel=1e-12)

    p = _param([2.0])
    history = _run(optim.Adam([p], lr=0.1, weight_decay=0.5), p, 1)
    # L2: g = 2 + 0.5·2 = 3; m̂ = 3, v̂ = 9 → θ = 2 - 0.1·3/3
    assert history[0][0] == pytest.approx(2 - 0.1 * 3 / (3 + 1e-8), rel=1e-12)


def test_adam_amsgrad_uses_the_running_maximum():
    p = _param([0.0])
    opt = optim.Adam([p], lr=0.1, amsgrad=True)
    m = v = v_max = 0.0
    theta = 0.0
    for step, grad in enumerate([3.0, 0.1, 0.1], start=1):
        p.grad = tr.tensor([grad], dtype="float64")
        opt.step()
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad * grad
        v_max = max(v_max, v)
        theta -= 0.1 / (1 - 0.9**step) * m / (math.sqrt(v_max) / math.sqrt(1 - 0.999**step) + 1e-8)
        assert p.numpy()[0] == pytest.approx(theta, rel=1e-12)
    assert opt.state[p]["max_exp_avg_sq"].numpy()[0] == pytest.approx(v_max)


def test_rmsprop_by_hand():
    p = _param([1.0])
    history = _run(optim.RMSprop([p], lr=0.01, alpha=0.9), p, 2)
    s1 = 0.1
    t1 = 1 - 0.01 * 1 / (math.sqrt(s1) + 1e-8)
    s2 = 0.9 * s1 + 0.1 * t1 * t1
    t2 = t1 - 0.01 * t1 / (math.sqrt(s2) + 1e-8)
    np.testing.assert_allclose([history[0][0], history[1][0]], [t1, t2], rtol=1e-12)

    p = _param([1.0])
    history = _run(optim.RMSprop([p], lr=0.01, alpha=0.9, momentum=0.5, centered=True), p, 2)
    s, gbar = 0.1, 0.1
    b = 1 / (math.sqrt(s - gbar**2) + 1e-8)
    t1 = 1 - 0.01 * b
    s, gbar = 0.9 * s + 0.1 * t1 * t1, 0.9 * gbar + 0.1 * t1
    b = 0.5 * b + t1 / (math.sqrt(s - gbar**2) + 1e-8)
    t2 = t1 - 0.01 * b
    np.testing.assert_allclose([history[0][0], history[1][0]], [t1, t2], rtol=1e-10)


def test_adagrad_by_hand():
    p = _param([1.0])
    history = _run(optim.Adagrad([p], lr=0.5, lr_decay=0.1, initial_accumulator_value=0.25), p, 3)
    theta, acc, expected = 1.0, 0.25, []
    for step in (1, 2, 3):
        clr = 0.5 / (1 + (step - 1) * 0.1)
        acc += theta * theta
        theta -= clr * theta / (math.sqrt(acc) + 1e-10)
        expected.append(theta)
    np.testing.assert_allclose([h[0] for h in history], expected, rtol=1e-12)


# ----------------------------------------------------------------- vs PyTorch
TORCH_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, weight_decay=0.3, amsgrad=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.1, momentum=0.7, centered=True)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3, eps=1e-8)),
]


@pytest.mark.parametrize("name,options", TORCH_CASES)
def test_matches_torch_optim(name, options):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0, b0 = rng.standard_normal((3, 4)), rng.standard_normal(3)
    x, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 3))
    ours = [nn.Parameter(tr.tensor(w0)), nn.Parameter(tr.tensor(b0))]
    theirs = [torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)]
    opt = getattr(optim, name)([{"params": [ours[0]]}, {"params": [ours[1]], "lr": 0.03}], **options)
    opt_t = getattr(torch.optim, name)([{"params": [theirs[0]]}, {"params": [theirs[1]], "lr": 0.03}], **options)
    for _ in range(5):
        for o, params, lib in ((opt, ours, tr), (opt_t, theirs, torch)):
            o.zero_grad()
            inputs, targets = lib.tensor(x), lib.tensor(y)
            out = inputs @ params[0].T + params[1]
            (((out - targets) ** 2).mean() + (out**3).mean()).backward()
            o.step()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_float32_parameters_and_state_stay_float32(device, name):
    options = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}
    p = nn.Parameter(tr.tensor([1.0, -2.0, 3.0], device=device))
    frozen = nn.Parameter(tr.tensor([5.0], device=device))
    opt = getattr(optim, name)([p, frozen], lr=0.1, weight_decay=0.01, **options)
    history = _run(opt, p, 3)
    assert p.dtype == np.float32 and p.device == device
    assert not np.allclose(history[-1], [1.0, -2.0, 3.0])
    for value in opt.state[p].values():
        if isinstance(value, tr.Tensor):
            assert value.dtype == np.float32 and value.device == device
    assert frozen.grad is None and frozen not in opt.state and frozen.numpy()[0] == 5.0  # no grad: skipped


def test_device_results_match_cpu(device):
    results = []
    for dev in ("cpu", device):
        p = nn.Parameter(tr.tensor([0.5, -1.5], dtype="float64", device=dev))
        results.append(_run(optim.Adam([p], lr=0.1, amsgrad=True), p, 3)[-1])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-14)


# ---------------------------------------------------------- groups, state dicts
def test_param_groups_and_zero_grad():
    a, b = _param([1.0]), _param([1.0])
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5] and opt.param_groups[1]["momentum"] == 0
    (a * 1.0 + b * 1.0).sum().backward()
    opt.step()
    assert a.numpy()[0] == pytest.approx(0.9) and b.numpy()[0] == pytest.approx(0.5)
    opt.zero_grad(set_to_none=False)
    assert a.grad is not None and a.grad.numpy()[0] == 0
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    opt.param_groups[0]["lr"] = 1.0  # schedulers change lr in place
    (a * 1.0).sum().backward()
    opt.step()
    assert a.numpy()[0] == pytest.approx(-0.1)


def test_state_dict_round_trip_continues_identically(tmp_path):
    def build():
        tr.manual_seed(0)
        return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()

    x = tr.tensor(np.random.default_rng(0).standard_normal((6, 3)))

    def train(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            (model(x) ** 2).mean().backward()
            opt.step()

    model = build()
    opt = optim.Adam(model.parameters(), lr=0.05, betas=(0.8, 0.9), amsgrad=True)
    train(model, opt, 3)
    state = opt.state_dict()
    assert sorted(state["state"]) == [0, 1, 2, 3]
    assert set(state["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"} and state["state"][0]["step"] == 3
    assert state["param_groups"][0]["params"] == [0, 1, 2, 3] and state["param_groups"][0]["betas"] == (0.8, 0.9)
    tr.save({"model": model.state_dict(), "optimizer": state}, tmp_path / "ckpt.npz")

    copy = build()
    copy_opt = optim.Adam(copy.parameters(), lr=1.0)
    loaded = tr.load(tmp_path / "ckpt.npz")
    copy.load_state_dict(loaded["model"])
    copy_opt.load_state_dict(loaded["optimizer"])
    assert copy_opt.param_groups[0]["lr"] == 0.05 and copy_opt.param_groups[0]["betas"] == (0.8, 0.9)
    train(model, opt, 2)
    train(copy, copy_opt, 2)
    for a, b in zip(model.parameters(), copy.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # the loaded state is a copy, not shared with the dict it came from
    first = next(copy.parameters())
    assert not np.shares_memory(copy_opt.state[first]["exp_avg"].array, loaded["optimizer"]["state"][0]["exp_avg"].array)


def test_load_state_dict_errors():
    a, b = _param([1.0]), _param([1.0, 2.0])
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
    (a.sum() + b.sum()).backward()
    opt.step()
    state = opt.state_dict()
    with pytest.raises(ValueError, match=r"SGD.load_state_dict: the state dict has 1 parameter group\(s\), this optimizer has 2"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match=r"parameter group 0 has 2 parameter\(s\) in the state dict but 1"):
        optim.SGD([a], lr=0.1).load_state_dict(state)
    expected = r"state 'momentum_buffer' of parameter 0 has shape \(1,\), but the parameter has shape \(2,\)"
    with pytest.raises(ValueError, match=expected):
        optim.SGD([b, a], lr=0.1, momentum=0.9).load_state_dict(state)


def test_constructor_errors():
    p = _param([1.0])
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match=r"Adam: params must be an iterable of Tensors, got a Linear; pass model.parameters\(\)"):
        optim.Adam(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="got a single Tensor"):
        optim.Adam(p)
    with pytest.raises(ValueError, match=r"Adam: invalid lr -1"):
        optim.Adam([p], lr=-1)
    with pytest.raises(ValueError, match=r"Adam: invalid beta2 1.0"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="appears more than once"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)


def test_defaults_are_pytorchs():
    p = _param([1.0])
    assert optim.SGD([p]).defaults == dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False)
    assert optim.Adam([p]).defaults == dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)
    assert optim.AdamW([p]).defaults["weight_decay"] == 1e-2
    assert optim.RMSprop([p]).defaults == dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False)
    assert optim.Adagrad([p]).defaults == dict(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10)


def test_step_closure_returns_loss():
    p = _param([3.0])
    opt = optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == pytest.approx(9.0)
    assert p.numpy()[0] == pytest.approx(3.0 - 0.1 * 6.0)


# ------------------------------------------------------------------- clipping
def test_clip_grad_norm_returns_the_pre_clip_norm_and_scales(device):
    a = nn.Parameter(tr.zeros(2, device=device))
    b = nn.Parameter(tr.zeros(1, device=device))
    unused = nn.Parameter(tr.zeros(3, device=device))
    a.grad, b.grad = tr.tensor([3.0, 0.0], device=device), tr.tensor([4.0], device=device)
    norm = clip_grad_norm_([a, b, unused], max_norm=1.0)
    assert isinstance(norm, tr.Tensor) and norm.device == device and norm.dtype == np.float32
    assert norm.item() == pytest.approx(5.0)
    np.testing.assert_allclose(a.grad.numpy(), [3 / (5 + 1e-6), 0.0], rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), [4 / (5 + 1e-6)], rtol=1e-6)
    assert a.grad.dtype == np.float32 and unused.grad is None
    assert clip_grad_norm_([a, b], max_norm=10.0).item() == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), [4 / (5 + 1e-6)], rtol=1e-6)  # under the limit: unchanged
    a.grad = tr.tensor([-3.0, 2.0], device=device)
    assert clip_grad_norm_(a, max_norm=1.5, norm_type=math.inf).item() == pytest.approx(3.0)
    np.testing.assert_allclose(a.grad.numpy(), np.array([-3.0, 2.0]) * 1.5 / (3 + 1e-6), rtol=1e-6)
    assert clip_grad_norm_([unused], 1.0).item() == 0.0


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    grads = [np.random.default_rng(i).standard_normal(s) for i, s in enumerate([(3, 4), (5,), (2, 2)])]
    for norm_type in (1.0, 2.0, 3.0, math.inf):
        ours = [nn.Parameter(tr.zeros(g.shape, dtype="float64")) for g in grads]
        theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = tr.tensor(g), torch.tensor(g)
        n_ours = clip_grad_norm_(ours, 0.7, norm_type=norm_type)
        n_theirs = torch.nn.utils.clip_grad_norm_(theirs, 0.7, norm_type=norm_type)
        assert n_ours.item() == pytest.approx(n_theirs.item(), rel=1e-12)
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_nonfinite_and_clip_grad_value(device):
    p = nn.Parameter(tr.zeros(2, device=device))
    p.grad = tr.tensor([np.inf, 1.0], device=device)
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    p.grad = tr.tensor([-3.0, 0.5], device=device)
    assert clip_grad_value_([p], 1.0) is None
    np.testing.assert_array_equal(p.grad.numpy(), [-1.0, 0.5])
    assert p.grad.dtype == np.float32


# ---------------------------------------------------------------- other utils
def test_detach_state_cuts_nested_states():
    x = tr.tensor([1.0, 2.0], requires_grad=True)
    h, c = x * 2, x * 3
    state = [(h, c), (h, None)]
    cut = detach_state(state)
    assert isinstance(cut, list) and isinstance(cut[0], tuple) and cut[1][1] is None
    for t in (cut[0][0], cut[0][1], cut[1][0]):
        assert t.is_leaf and not t.requires_grad
    np.testing.assert_array_equal(cut[0][1].numpy(), [3.0, 6.0])
    assert detach_state(h).grad_fn is None and h.grad_fn is not None
    loss = (cut[0][0] * x).sum()  # the gradient stops at the detached state
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    with pytest.raises(TypeError, match="detach_state: expected a Tensor"):
        detach_state({"h": h})


def test_parameters_to_vector_round_trip():
    model = nn.Linear(3, 2)
    vec = parameters_to_vector(model.parameters())
    assert vec.shape == (8,)
    vector_to_parameters(vec * 0 + 1, model.parameters())
    assert (model.weight.numpy() == 1).all() and (model.bias.numpy() == 1).all()
