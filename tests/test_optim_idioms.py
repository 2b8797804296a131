"""Optimizer idioms a learner meets early: a state dict of another optimizer kind (or of other
parameter groups) is refused with a clear error, a PyTorch state dict loads, and float16 parameters
train without NumPy floating-point warnings (as PyTorch, silently)."""
import itertools
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn, optim

KINDS = {
    "SGD": dict(lr=0.1, momentum=0.9),
    "Adam": dict(lr=0.01, amsgrad=True),
    "AdamW": dict(lr=0.01),
    "RMSprop": dict(lr=0.01, momentum=0.5, centered=True),
    "Adagrad": dict(lr=0.1),
}
# Adam and AdamW have the same options and state, and load each other's state dicts as in PyTorch.
INCOMPATIBLE = [(a, b) for a, b in itertools.permutations(KINDS, 2) if {a, b} != {"Adam", "AdamW"}]


def _trained(kind, device="cpu", steps=2, **options):
    tr.manual_seed(0)
    params = [nn.Parameter(tr.randn(3, 2, device=device)), nn.Parameter(tr.randn(2, device=device))]
    opt = getattr(optim, kind)(params, **{**KINDS[kind], **options})
    for _ in range(steps):
        opt.zero_grad()
        ((params[0] ** 2).sum() + params[1].sum()).backward()
        opt.step()
    return params, opt


@pytest.mark.parametrize("source,target", INCOMPATIBLE, ids=[f"{a}-into-{b}" for a, b in INCOMPATIBLE])
def test_a_state_dict_of_another_kind_is_refused_naming_both(source, target):
    _, saved = _trained(source)
    params, opt = _trained(target)
    before = [p.numpy().copy() for p in params]
    state, groups = dict(opt.state), [dict(g) for g in opt.param_groups]
    origin = "Adam or AdamW" if source in ("Adam", "AdamW") else source
    expected = (rf"^{target}\.load_state_dict: the state dict comes from {origin}, not {target}: its parameter "
                rf"group 0 has options \[.*\], but {target} needs \[.*\] \(missing ")
    with pytest.raises(ValueError, match=expected):
        opt.load_state_dict(saved.state_dict())
    assert opt.state == state and opt.param_groups == groups  # nothing was changed
    opt.step()  # and the optimizer still works
    assert not np.array_equal(params[0].numpy(), before[0])


def test_sgd_state_into_adam_was_a_bare_key_error_at_step():
    params, sgd = _trained("SGD")
    adam = optim.Adam(params)
    with pytest.raises(ValueError, match=r"^Adam\.load_state_dict: the state dict comes from SGD, not Adam: .*"
                                         r"\(missing \['amsgrad', 'betas', 'eps'\]\); load it into the same kind of "
                                         r"optimizer, or start Adam afresh"):
        adam.load_state_dict(sgd.state_dict())


def test_adam_and_adamw_load_each_others_state_as_in_pytorch():
    _, adam = _trained("Adam", amsgrad=False)
    params, adamw = _trained("AdamW")
    adamw.load_state_dict(adam.state_dict())
    assert adamw.state[params[0]]["step"] == 2
    adamw.step()


def test_state_with_other_entries_than_the_options_keep_is_refused():
    _, opt = _trained("Adam")  # amsgrad=True: keeps max_exp_avg_sq
    state = opt.state_dict()
    del state["state"][0]["max_exp_avg_sq"]
    params, other = _trained("Adam")
    with pytest.raises(ValueError, match=r"^Adam\.load_state_dict: the state of parameter 0 has entries "
                                         r"\['exp_avg', 'exp_avg_sq', 'step'\], but Adam with these options keeps "
                                         r"\['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'step'\]"):
        other.load_state_dict(state)
    state = opt.state_dict()
    state["state"][1]["momentum_buffer"] = state["state"][1]["exp_avg"]
    with pytest.raises(ValueError, match=r"^Adam\.load_state_dict: the state of parameter 1 has entries \['exp_avg', "
                                         r"'exp_avg_sq', 'max_exp_avg_sq', 'momentum_buffer', 'step'\]"):
        other.load_state_dict(state)
    # the saved options decide what the state must hold: amsgrad=True state loads into amsgrad=False Adam
    plain = optim.Adam(params, amsgrad=False)
    plain.load_state_dict(opt.state_dict())
    assert plain.param_groups[0]["amsgrad"] is True


def test_sgd_momentum_buffer_is_optional_as_in_pytorch():
    params, opt = _trained("SGD", momentum=0.0)
    assert opt.state_dict()["state"][0] == {}
    with_momentum = optim.SGD(params, lr=0.1, momentum=0.9)
    with_momentum.load_state_dict(opt.state_dict())  # momentum 0 state: no buffer
    _, other = _trained("SGD")
    with_momentum.load_state_dict(other.state_dict())


@pytest.mark.parametrize("bad,message", [
    ({"state": {}, "param_groups": {"params": [0]}}, r"'param_groups' must be a list of dicts with a 'params' list"),
    ({"state": {}, "param_groups": [{"lr": 0.1}]}, r"'param_groups' must be a list of dicts with a 'params' list"),
    ({"state": [1], "param_groups": [{"params": [0, 1]}]}, r"'state' must map parameter indices to dicts of state"),
    ({"state": {0: 1.0}, "param_groups": [{"params": [0, 1]}]}, r"'state' must map parameter indices to dicts"),
])
def test_malformed_state_dicts_are_refused(bad, message):
    _, opt = _trained("SGD")
    with pytest.raises(ValueError, match=r"^SGD\.load_state_dict: " + message):
        opt.load_state_dict(bad)


def test_mismatched_param_groups_are_refused():
    _, opt = _trained("Adam")
    state = opt.state_dict()
    a, b = nn.Parameter(tr.zeros(3, 2)), nn.Parameter(tr.zeros(2))
    with pytest.raises(ValueError, match=r"^Adam\.load_state_dict: the state dict has 1 parameter group\(s\), this "
                                         r"optimizer has 2"):
        optim.Adam([{"params": [a]}, {"params": [b]}]).load_state_dict(state)
    with pytest.raises(ValueError, match=r"^Adam\.load_state_dict: parameter group 0 has 2 parameter\(s\) in the "
                                         r"state dict but 1 in this optimizer"):
        optim.Adam([a]).load_state_dict(state)


@pytest.mark.parametrize("kind", ["SGD", "Adam", "RMSprop", "Adagrad"])
def test_a_pytorch_state_dict_loads_and_continues_as_pytorch(kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, 2))
    theirs = torch.nn.Parameter(torch.tensor(start))
    torch_opt = getattr(torch.optim, kind)([theirs], **KINDS[kind])

    def torch_step():
        torch_opt.zero_grad()
        (theirs ** 3).sum().backward()
        torch_opt.step()

    for _ in range(3):
        torch_step()
    ours = nn.Parameter(tr.tensor(theirs.detach().numpy().copy()))
    opt = getattr(optim, kind)([ours], lr=1.0)
    opt.load_state_dict(torch_opt.state_dict())
    for _ in range(2):
        torch_step()
        opt.zero_grad()
        (ours ** 3).sum().backward()
        opt.step()
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("kind", list(KINDS))
def test_float16_parameters_train_without_numpy_warnings(kind, device):
    """Gradients whose square overflows float16, tiny ones whose update divides by an eps that rounds to
    zero, and zeros: inf and nan appear, as in PyTorch, but no RuntimeWarning."""
    grad = np.array([300.0, 1e-4, -2.0, 0.0, 60000.0], dtype=np.float16)
    p = nn.Parameter(tr.tensor(np.ones(5, np.float16), device=device))
    opt = getattr(optim, kind)([p], **KINDS[kind], weight_decay=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            p.grad = tr.tensor(grad.copy(), device=device)
            opt.step()
    assert p.dtype == tr.float16 and opt.state[p] and p.numpy()[2] != 1.0


def test_float16_finite_updates_match_pytorch():
    torch = pytest.importorskip("torch")
    grad = np.array([0.5, -2.0, 3.0], dtype=np.float16)
    for kind in KINDS:
        ours = nn.Parameter(tr.tensor(np.ones(3, np.float16)))
        theirs = torch.nn.Parameter(torch.ones(3, dtype=torch.float16))
        opt = getattr(optim, kind)([ours], **KINDS[kind])
        torch_opt = getattr(torch.optim, kind)([theirs], **KINDS[kind])
        for _ in range(3):
            ours.grad, theirs.grad = tr.tensor(grad.copy()), torch.tensor(grad.copy())
            opt.step()
            torch_opt.step()
        np.testing.assert_allclose(ours.numpy().astype(np.float32), theirs.detach().numpy().astype(np.float32),
                                   atol=2e-3, err_msg=kind)
