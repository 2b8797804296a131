"""Learning-rate schedulers: the learning rates (and cycled momenta) equal PyTorch's step for step,
state dicts resume a run identically, and bad arguments get clear errors."""
import math
import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn, optim
from tinygrad_rnn.optim import lr_scheduler

STEPS = 50


def _params(module, n_groups, device="cpu"):
    """Parameter groups (the second with its own lr) on ``module``'s tensors: ours or torch's."""
    if module is tr:
        ps = [nn.Parameter(tr.zeros(3, device=device)) for _ in range(n_groups)]
    else:
        ps = [module.nn.Parameter(module.zeros(3)) for _ in range(n_groups)]
    if n_groups == 1:
        return ps
    return [{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.01}]


def _optimizer(module, kind, n_groups):
    space = optim if module is tr else module.optim
    params = _params(module, n_groups)
    if kind == "sgd":
        return space.SGD(params, lr=0.1, momentum=0.9)
    if kind == "adam":
        return space.Adam(params, lr=0.1, betas=(0.9, 0.99))
    if kind == "rmsprop":
        return space.RMSprop(params, lr=0.1, momentum=0.5)
    return space.Adagrad(params, lr=0.1)


def _decay(epoch):
    return 0.95 ** epoch


def _warmup(epoch):
    return min(1.0, (epoch + 1) / 10)


CASES = [
    ("StepLR", dict(step_size=7, gamma=0.5), "sgd"),
    ("StepLR", dict(step_size=1), "adam"),
    ("MultiStepLR", dict(milestones=[5, 12, 12, 30], gamma=0.3), "sgd"),
    ("ExponentialLR", dict(gamma=0.93), "adam"),
    ("CosineAnnealingLR", dict(T_max=20, eta_min=0.001), "sgd"),
    ("CosineAnnealingLR", dict(T_max=STEPS), "adam"),
    ("CosineAnnealingLR", dict(T_max=7.5), "sgd"),
    ("LambdaLR", dict(lr_lambda=_decay), "sgd"),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=STEPS), "sgd"),
    ("OneCycleLR", dict(max_lr=0.5, epochs=5, steps_per_epoch=10, anneal_strategy="linear"), "adam"),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=STEPS, three_phase=True, pct_start=0.25, div_factor=10.0,
                        final_div_factor=100.0, base_momentum=0.8, max_momentum=0.9), "rmsprop"),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=STEPS + 10, cycle_momentum=False), "adagrad"),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]


def _trajectory(module, name, options, kind, n_groups, steps=STEPS):
    """Per step: the lrs from get_last_lr(), the groups' lrs, and their momentum / betas."""
    opt = _optimizer(module, kind, n_groups)
    space = lr_scheduler if module is tr else module.optim.lr_scheduler
    if name == "OneCycleLR" and n_groups == 2:
        options = {**options, "max_lr": [options["max_lr"], options["max_lr"] / 10]}
    scheduler = getattr(space, name)(opt, **options)
    history = []
    for _ in range(steps + 1):
        history.append((
            scheduler.get_last_lr(),
            [g["lr"] for g in opt.param_groups],
            [g.get("momentum") for g in opt.param_groups],
            [g.get("betas") and tuple(g["betas"]) for g in opt.param_groups],
            scheduler.last_epoch,
        ))
        if len(history) <= steps:
            opt.step()
            scheduler.step()
    return history, opt


@pytest.mark.parametrize("n_groups", [1, 2])
@pytest.mark.parametrize("name,options,kind", CASES, ids=IDS)
def test_learning_rates_equal_torchs_step_for_step(name, options, kind, n_groups):
    torch = pytest.importorskip("torch")
    ours, opt = _trajectory(tr, name, options, kind, n_groups)
    theirs, torch_opt = _trajectory(torch, name, options, kind, n_groups)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        assert a == b, f"step {step}: ours {a} != torch's {b}"
    for group, torch_group in zip(opt.param_groups, torch_opt.param_groups):
        for key in ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"):
            assert group.get(key) == torch_group.get(key), key


def test_lambda_lr_with_one_function_per_group_equals_torchs():
    torch = pytest.importorskip("torch")
    ours, _ = _trajectory(tr, "LambdaLR", dict(lr_lambda=[_decay, _warmup]), "sgd", 2)
    theirs, _ = _trajectory(torch, "LambdaLR", dict(lr_lambda=[_decay, _warmup]), "sgd", 2)
    assert ours == theirs


@pytest.mark.parametrize("options", [
    dict(),
    dict(mode="max", factor=0.5, patience=2, threshold=0.01, threshold_mode="abs", cooldown=3, min_lr=[0.02, 0.001]),
    dict(mode="min", factor=0.5, patience=0, threshold_mode="abs", eps=0.01, min_lr=0.004),
    dict(mode="max", patience=1, cooldown=1),
])
def test_reduce_lr_on_plateau_equals_torchs(options):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    metrics = np.concatenate([np.linspace(1.0, 0.5, 10), 0.5 + 0.01 * rng.standard_normal(40)])
    metrics[20] = np.nan
    runs = []
    for module in (tr, torch):
        opt = _optimizer(module, "sgd", 2)
        space = lr_scheduler if module is tr else torch.optim.lr_scheduler
        scheduler = space.ReduceLROnPlateau(opt, **options)
        trace = []
        for value in metrics:
            opt.step()
            scheduler.step(float(value))
            trace.append((scheduler.get_last_lr(), scheduler.num_bad_epochs, scheduler.cooldown_counter,
                          scheduler.last_epoch, scheduler.in_cooldown))
        runs.append(trace)
    assert runs[0] == runs[1]
    assert "initial_lr" not in opt.param_groups[0]  # as in PyTorch, this scheduler sets no initial_lr


def test_reduce_lr_on_plateau_reads_a_tensor_metric():
    opt = _optimizer(tr, "sgd", 1)
    scheduler = lr_scheduler.ReduceLROnPlateau(opt, patience=0)
    scheduler.step(tr.tensor(1.0))
    scheduler.step(tr.tensor(2.0))
    assert scheduler.get_last_lr() == pytest.approx([0.01])


def test_initial_lr_base_lrs_and_resuming_with_last_epoch_as_torch():
    torch = pytest.importorskip("torch")
    traces = []
    for module in (tr, torch):
        space = lr_scheduler if module is tr else torch.optim.lr_scheduler
        opt = _optimizer(module, "sgd", 2)
        first = space.CosineAnnealingLR(opt, T_max=10)
        assert [g["initial_lr"] for g in opt.param_groups] == first.base_lrs == [0.1, 0.01]
        for _ in range(4):
            opt.step()
            first.step()
        saved = [dict(g) for g in opt.param_groups]
        fresh = _optimizer(module, "sgd", 2)
        for group, old in zip(fresh.param_groups, saved):
            group.update({k: v for k, v in old.items() if k != "params"})
        trace = []
        for name, options in (("CosineAnnealingLR", dict(T_max=10)), ("StepLR", dict(step_size=3)),
                              ("ExponentialLR", dict(gamma=0.5))):
            resumed = getattr(space, name)(fresh, last_epoch=first.last_epoch, **options)
            for _ in range(3):
                fresh.step()
                resumed.step()
                trace.append(resumed.get_last_lr())
        traces.append(trace)
    assert traces[0] == traces[1]


def test_step_with_an_epoch_uses_the_closed_form_as_torch():
    torch = pytest.importorskip("torch")
    results = []
    for module in (tr, torch):
        space = lr_scheduler if module is tr else torch.optim.lr_scheduler
        trace = []
        for name, options in (("StepLR", dict(step_size=3)), ("MultiStepLR", dict(milestones=[2, 5])),
                              ("ExponentialLR", dict(gamma=0.9)), ("CosineAnnealingLR", dict(T_max=10)),
                              ("LambdaLR", dict(lr_lambda=_decay))):
            opt = _optimizer(module, "sgd", 2)
            scheduler = getattr(space, name)(opt, **options)
            opt.step()
            with pytest.warns(UserWarning, match="epoch parameter"):
                scheduler.step(7)
            trace.append((scheduler.get_last_lr(), scheduler.last_epoch))
        results.append(trace)
    assert results[0] == results[1]


def _make(name, opt):
    options = {
        "StepLR": dict(step_size=4, gamma=0.5), "MultiStepLR": dict(milestones=[3, 9, 9, 25]),
        "ExponentialLR": dict(gamma=0.9), "CosineAnnealingLR": dict(T_max=12, eta_min=1e-3),
        "LambdaLR": dict(lr_lambda=_decay), "OneCycleLR": dict(max_lr=0.5, total_steps=STEPS),
        "ReduceLROnPlateau": dict(patience=1, cooldown=1),
    }[name]
    return getattr(lr_scheduler, name)(opt, **options)


SCHEDULERS = ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR", "OneCycleLR",
              "ReduceLROnPlateau"]


@pytest.mark.parametrize("name", SCHEDULERS)
def test_state_dict_round_trip_through_a_checkpoint_resumes_identically(name, tmp_path):
    def metric(step):
        return 1.0 / (1 + step) if step < 10 else 0.1 + 0.01 * (step % 3)

    def run(opt, scheduler, steps, start=0):
        trace = []
        for step in range(start, start + steps):
            opt.step()
            scheduler.step(metric(step)) if name == "ReduceLROnPlateau" else scheduler.step()
            trace.append((scheduler.get_last_lr(), [tuple(g["betas"]) for g in opt.param_groups]))
        return trace

    opt = _optimizer(tr, "adam", 2)
    scheduler = _make(name, opt)
    run(opt, scheduler, 20)
    state = scheduler.state_dict()
    tr.save({"optimizer": opt.state_dict(), "scheduler": state}, tmp_path / "ckpt.npz")
    state["last_epoch"] = -100  # state_dict() is a copy: changing it changes nothing
    expected = run(opt, scheduler, 29, start=20)

    checkpoint = tr.load(tmp_path / "ckpt.npz")
    fresh_opt = _optimizer(tr, "adam", 2)
    fresh = _make(name, fresh_opt)  # the scheduler first, then the states (PyTorch's order)
    fresh_opt.load_state_dict(checkpoint["optimizer"])
    fresh.load_state_dict(checkpoint["scheduler"])
    assert run(fresh_opt, fresh, 29, start=20) == expected


def test_state_dicts_hold_plain_data_with_torchs_keys():
    torch = pytest.importorskip("torch")
    for name in SCHEDULERS:
        ours = _make(name, _optimizer(tr, "sgd", 1)).state_dict()
        options = {"lr_lambda": _decay} if name == "LambdaLR" else {}
        reference = {
            "StepLR": dict(step_size=4), "MultiStepLR": dict(milestones=[3]), "ExponentialLR": dict(gamma=0.9),
            "CosineAnnealingLR": dict(T_max=12), "LambdaLR": options, "OneCycleLR": dict(max_lr=0.5, total_steps=9),
            "ReduceLROnPlateau": {},
        }[name]
        theirs = getattr(torch.optim.lr_scheduler, name)(_optimizer(torch, "sgd", 1), **reference).state_dict()
        assert set(ours) == set(theirs), name
    lam = _make("LambdaLR", _optimizer(tr, "sgd", 1)).state_dict()
    assert lam["lr_lambdas"] == [None]  # functions are not saved


def test_lambda_lr_saves_the_attributes_of_callable_objects():
    class Warmup:
        def __init__(self, steps):
            self.steps = steps

        def __call__(self, epoch):
            return min(1.0, (epoch + 1) / self.steps)

    opt = _optimizer(tr, "sgd", 1)
    scheduler = lr_scheduler.LambdaLR(opt, Warmup(4))
    state = scheduler.state_dict()
    assert state["lr_lambdas"] == [{"steps": 4}]
    other = lr_scheduler.LambdaLR(_optimizer(tr, "sgd", 1), Warmup(100))
    other.load_state_dict(state)
    assert other.lr_lambdas[0].steps == 4


def test_schedulers_drive_training_on_every_device(device):
    """A real run: the parameter after ten SGD steps under OneCycleLR is the same on every backend."""
    results = {}
    for where in ("cpu", device):
        tr.manual_seed(0)
        w = nn.Parameter(tr.randn(4, 3, device=where))
        opt = optim.SGD([w], lr=0.1, momentum=0.9)
        scheduler = lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=10)
        for _ in range(10):
            opt.zero_grad()
            (w * w).sum().backward()
            opt.step()
            scheduler.step()
        results[where] = w.numpy()
    np.testing.assert_allclose(results[device], results["cpu"], rtol=1e-6)


def test_importable_as_torch_spells_it():
    from tinygrad_rnn.optim.lr_scheduler import StepLR

    assert optim.lr_scheduler is lr_scheduler and StepLR is lr_scheduler.StepLR
    assert isinstance(_make("ReduceLROnPlateau", _optimizer(tr, "sgd", 1)), lr_scheduler.LRScheduler)


# ------------------------------------------------------------------------------------------- misuse


def test_stepping_past_total_steps_raises_as_torch():
    torch = pytest.importorskip("torch")
    for module in (tr, torch):
        space = lr_scheduler if module is tr else torch.optim.lr_scheduler
        opt = _optimizer(module, "sgd", 1)
        scheduler = space.OneCycleLR(opt, max_lr=0.1, total_steps=10)
        for _ in range(10):
            opt.step()
            scheduler.step()
        with pytest.raises(ValueError, match=r"(?i)tried to step 11 times.*total steps is 10"):
            scheduler.step()
    with pytest.raises(ValueError, match=r"^OneCycleLR\.step: tried to step 11 times; the specified number of total"):
        opt = _optimizer(tr, "sgd", 1)
        scheduler = lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=2, steps_per_epoch=5)
        for _ in range(11):
            opt.step()
            scheduler.step()


def test_stepping_before_the_optimizer_warns_as_torch():
    torch = pytest.importorskip("torch")
    for module in (tr, torch):
        space = lr_scheduler if module is tr else torch.optim.lr_scheduler
        opt = _optimizer(module, "sgd", 1)
        scheduler = space.StepLR(opt, step_size=2)
        with pytest.warns(UserWarning, match=r"`lr_scheduler\.step\(\)` before `optimizer\.step\(\)`"):
            scheduler.step()
        opt = _optimizer(module, "sgd", 1)
        scheduler = space.StepLR(opt, step_size=2)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            opt.step()
            scheduler.step()
            scheduler.get_last_lr()
        with pytest.warns(UserWarning, match="please use `get_last_lr\\(\\)`"):
            scheduler.get_lr()


def _adagrad():
    return _optimizer(tr, "adagrad", 1)


def _sgd(n_groups=1):
    return _optimizer(tr, "sgd", n_groups)


def _past_its_groups():
    opt = _sgd()
    scheduler = lr_scheduler.LambdaLR(opt, _decay)
    opt.add_param_group({"params": [nn.Parameter(tr.zeros(2))]})
    opt.step()
    scheduler.step()


def _state_of_another_scheduler():
    lr_scheduler.StepLR(_sgd(), step_size=2).load_state_dict(lr_scheduler.CosineAnnealingLR(_sgd(), 5).state_dict())


@pytest.mark.parametrize("make,error,message", [
    (lambda: lr_scheduler.StepLR("sgd", step_size=2), TypeError,
     r"^StepLR: optimizer must be a tinygrad_rnn\.optim\.Optimizer .*got str"),
    (lambda: lr_scheduler.StepLR(_sgd(), step_size=0), ValueError, r"^StepLR: step_size must be a positive integer"),
    (lambda: lr_scheduler.StepLR(_sgd(), step_size=2.5), ValueError, r"^StepLR: step_size must be a positive integer"),
    (lambda: lr_scheduler.MultiStepLR(_sgd(), milestones=5), TypeError,
     r"^MultiStepLR: milestones must be a list of step counts, got int"),
    (lambda: lr_scheduler.MultiStepLR(_sgd(), milestones=[2, -1]), ValueError,
     r"^MultiStepLR: a milestone must be a non-negative integer, got -1"),
    (lambda: lr_scheduler.ExponentialLR(_sgd(), gamma="0.9"), ValueError,
     r"^ExponentialLR: gamma must be a number >= 0\.0, got '0\.9'"),
    (lambda: lr_scheduler.CosineAnnealingLR(_sgd(), T_max=0), ValueError,
     r"^CosineAnnealingLR: T_max must be a positive number of steps, got 0"),
    (lambda: lr_scheduler.LambdaLR(_sgd(), lr_lambda=0.5), TypeError,
     r"^LambdaLR: lr_lambda must be a function of the step count .*got float"),
    (lambda: lr_scheduler.LambdaLR(_sgd(2), lr_lambda=[_decay]), ValueError,
     r"^LambdaLR: expected 2 lr_lambdas \(one per parameter group\), got 1"),
    (lambda: lr_scheduler.StepLR(_sgd(), step_size=2, last_epoch=3), KeyError,
     r"StepLR: param 'initial_lr' is not specified in param_groups\[0\] when resuming"),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1, total_steps=9, last_epoch=2), KeyError,
     r"OneCycleLR: param_groups\[0\] lacks \['max_lr', 'min_lr', 'max_momentum', 'base_momentum'\] when resuming"),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1), ValueError,
     r"^OneCycleLR: you must define either total_steps OR \(epochs AND steps_per_epoch\), got total_steps=None, "
     r"epochs=None, steps_per_epoch=None"),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1, epochs=3), ValueError,
     r"^OneCycleLR: you must define either total_steps OR"),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1, total_steps=0), ValueError,
     r"^OneCycleLR: total_steps must be a positive integer, got 0"),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1, epochs=2, steps_per_epoch=1.5), ValueError,
     r"^OneCycleLR: steps_per_epoch must be a positive integer, got 1\.5"),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1, total_steps=10, pct_start=1.5), ValueError,
     r"^OneCycleLR: pct_start must be a number between 0 and 1, got 1\.5"),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1, total_steps=10, anneal_strategy="exp"), ValueError,
     r"^OneCycleLR: anneal_strategy must be one of 'cos', 'linear', got 'exp'"),
    (lambda: lr_scheduler.OneCycleLR(_sgd(2), max_lr=[0.1, 0.2, 0.3], total_steps=10), ValueError,
     r"^OneCycleLR: max_lr must have one value per parameter group: the optimizer has 2 group\(s\), max_lr has 3"),
    (lambda: lr_scheduler.OneCycleLR(_adagrad(), max_lr=0.1, total_steps=10), ValueError,
     r"^OneCycleLR: cycle_momentum=True needs an optimizer with momentum or betas .*but Adagrad has neither; "
     r"pass cycle_momentum=False"),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1, total_steps=10, pct_start=0.1), ValueError,
     r"^OneCycleLR\.step: phase 1 of the schedule has no steps at step 0"),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), factor=1.0), ValueError,
     r"^ReduceLROnPlateau: factor must be a number >= 0\.0 and < 1\.0, got 1\.0"),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), mode="minimum"), ValueError,
     r"^ReduceLROnPlateau: mode must be one of 'min', 'max', got 'minimum'"),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), threshold_mode="relative"), ValueError,
     r"^ReduceLROnPlateau: threshold_mode must be one of 'rel', 'abs', got 'relative'"),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd(), patience=-1), ValueError,
     r"^ReduceLROnPlateau: patience must be a non-negative integer, got -1"),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd(2), min_lr=[0.1]), ValueError,
     r"^ReduceLROnPlateau: min_lr must have one value per parameter group: the optimizer has 2 group\(s\)"),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd()).step("low"), TypeError,
     r"^ReduceLROnPlateau\.step: metrics must be one number \(e\.g\. the validation loss\), got str"),
    (lambda: lr_scheduler.ReduceLROnPlateau(_sgd()).step(tr.zeros(3)), TypeError,
     r"^ReduceLROnPlateau\.step: metrics must be one number"),
    (lambda: lr_scheduler.LRScheduler(_sgd()), NotImplementedError,
     r"^LRScheduler\.get_lr: LRScheduler is a base class; a scheduler must implement get_lr\(\)"),
    (_past_its_groups, ValueError,
     r"^LambdaLR\.step: the optimizer has 2 parameter group\(s\), but the scheduler was made for 1"),
    (_state_of_another_scheduler, ValueError,
     r"^StepLR\.load_state_dict: the state dict does not come from a StepLR: missing entries \['gamma', "
     r"'step_size'\], unexpected entries \['T_max', 'eta_min'\]"),
    (lambda: lr_scheduler.StepLR(_sgd(), step_size=2).load_state_dict([1, 2]), TypeError,
     r"^StepLR\.load_state_dict: expected a dict from StepLR\.state_dict\(\), got list"),
], ids=lambda value: None)
def test_bad_arguments_get_clear_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_one_cycle_lr_cycles_beta1_of_adam_against_the_learning_rate():
    adam = _optimizer(tr, "adam", 1)
    scheduler = lr_scheduler.OneCycleLR(adam, max_lr=1.0, total_steps=10, pct_start=0.5)
    assert adam.param_groups[0]["betas"] == (0.95, 0.99) and adam.param_groups[0]["lr"] == pytest.approx(0.04)
    for _ in range(4):
        adam.step()
        scheduler.step()
    group = adam.param_groups[0]
    assert group["lr"] == pytest.approx(1.0) and group["betas"] == (pytest.approx(0.85), 0.99)
    for _ in range(5):  # to step 9, the last of the 10: down to min_lr = max_lr / div_factor / final_div_factor
        adam.step()
        scheduler.step()
    assert math.isclose(group["min_lr"], 1.0 / 25 / 1e4)
    assert group["lr"] == pytest.approx(group["min_lr"]) and group["betas"] == (pytest.approx(0.95), 0.99)
