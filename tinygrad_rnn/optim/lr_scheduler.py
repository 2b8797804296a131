"""Learning-rate schedulers in the shape of ``torch.optim.lr_scheduler``.

A scheduler wraps an optimizer and rewrites ``group["lr"]`` of each of its
parameter groups every time ``scheduler.step()`` is called (after
``optimizer.step()``: once per epoch or once per batch, as the schedule is
meant). The formulas (in PyTorch's floating-point order) and the bookkeeping
(``last_epoch``, ``base_lrs``, ``initial_lr`` in the groups, ``get_last_lr()``,
``state_dict()``) are PyTorch's: the learning rates agree step for step::

    optimizer = optim.SGD(model.parameters(), lr=0.1)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=30, gamma=0.1)
    for epoch in range(100):
        train_one_epoch(model, optimizer)   # calls optimizer.step() per batch
        scheduler.step()

``ReduceLROnPlateau`` is stepped with the metric it watches:
``scheduler.step(val_loss)``. State dicts hold plain data only (numbers,
lists, dicts, strings), so ``tinygrad_rnn.save`` can write them; a
``LambdaLR``'s functions are not saved (only the attributes of callable
objects, as in PyTorch).
"""
from __future__ import annotations

import copy
import math
import numbers
import types
import warnings
from bisect import bisect_right
from collections import Counter

from ..checks import check_int
from .optimizer import Optimizer

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being deprecated where possible. "
    "Please use `scheduler.step()` to step the scheduler. During the deprecation, if epoch is different from None, "
    "the closed form is used instead of the new chainable form, where available."
)


def _check_optimizer(owner, optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"{owner}: optimizer must be a tinygrad_rnn.optim.Optimizer (e.g. optim.SGD(model.parameters())), "
            f"got {type(optimizer).__name__}"
        )


def _check_real(owner, name, value, minimum=None, below=None) -> float:
    """``value`` as a float, or a ValueError naming ``owner`` unless ``minimum <= value`` (``< below``)."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if ok:
        value = float(value)
        ok = (minimum is None or value >= minimum) and (below is None or value < below)
    if not ok:
        bounds = [f">= {minimum}" if minimum is not None else "", f"< {below}" if below is not None else ""]
        expected = "a number" + (" " + " and ".join(b for b in bounds if b) if any(bounds) else "")
        raise ValueError(f"{owner}: {name} must be {expected}, got {value!r}")
    return value


def _per_group(owner, name, optimizer, value, minimum=None) -> list:
    """One value per parameter group: a list/tuple of exactly that many, or one number repeated."""
    groups = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != groups:
            raise ValueError(
                f"{owner}: {name} must have one value per parameter group: the optimizer has {groups} group(s), "
                f"{name} has {len(value)} value(s)"
            )
        return [_check_real(owner, f"{name}[{i}]", v, minimum) for i, v in enumerate(value)]
    return [_check_real(owner, name, value, minimum)] * groups


def _choice(owner, name, value, choices):
    if value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


class LRScheduler:
    """Base class of the schedulers: subclasses implement :meth:`get_lr` (the learning rates of the
    step ``last_epoch``), the base class keeps the books. Creating a scheduler with ``last_epoch=-1`` (a fresh run) stores each group's current ``lr`` as
    ``group["initial_lr"]`` (the ``base_lrs``) and performs step 0. ``last_epoch=k`` resumes a run
    whose optimizer state (with ``initial_lr``) was loaded first.
    """

    _get_lr_called_within_step = False
    _is_initial = False

    def __init__(self, optimizer, last_epoch=-1):
        name = type(self).__name__
        _check_optimizer(name, optimizer)
        last_epoch = check_int(name, "last_epoch", last_epoch, minimum=-1)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{name}: param 'initial_lr' is not specified in param_groups[{i}] when resuming with "
                        f"last_epoch={last_epoch}; load the optimizer's state dict first, or use last_epoch=-1 "
                        "for a fresh run"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        """Step 0: set the starting learning rates (called by ``__init__``)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list:
        """The learning rates of step ``last_epoch``, one per parameter group (used by :meth:`step`;
        read the current ones with :meth:`get_last_lr`)."""
        raise NotImplementedError(
            f"{type(self).__name__}.get_lr: LRScheduler is a base class; a scheduler must implement get_lr()"
        )

    def get_last_lr(self) -> list:
        """The learning rates the last :meth:`step` set, one float per parameter group."""
        return list(self._last_lr)

    def step(self, epoch=None):
        """Advance the schedule by one step and write the new ``lr`` into every parameter group.
        Call it after ``optimizer.step()``. ``epoch`` (deprecated, as in PyTorch) jumps to that step
        with the closed-form formula where there is one."""
        if self._step_count == 1 and not getattr(self.optimizer, "_opt_called", False):
            warnings.warn("Detected call of `lr_scheduler.step()` before `optimizer.step()`. You should call them "
                          "in this order: `optimizer.step()` before `lr_scheduler.step()`. Otherwise the first value "
                          "of the learning rate schedule is skipped.", UserWarning, stacklevel=2)
        self._step_count += 1
        if epoch is not None:
            epoch = check_int(f"{type(self).__name__}.step", "epoch", epoch, minimum=0)
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch):
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                closed_form = getattr(self, "_get_closed_form_lr", None)
                values = closed_form() if closed_form is not None else self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        groups = self.optimizer.param_groups
        if len(values) != len(groups):
            raise ValueError(
                f"{type(self).__name__}.step: the optimizer has {len(groups)} parameter group(s), but the scheduler "
                f"was made for {len(values)}; create the scheduler after adding every parameter group"
            )
        for group, lr in zip(groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in groups]

    def _warn_if_called_directly(self):
        if not self._get_lr_called_within_step:
            warnings.warn("To get the last learning rate computed by the scheduler, please use `get_last_lr()`.",
                          UserWarning, stacklevel=3)

    # ------------------------------------------------------------- state dicts
    def state_dict(self) -> dict:
        """Every attribute but the optimizer, as plain data (a copy): save it next to the optimizer's."""
        return {key: copy.deepcopy(value) for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore the attributes saved by :meth:`state_dict` (of a scheduler of the same kind)."""
        self._check_state_keys(state_dict)
        self.__dict__.update(copy.deepcopy(state_dict))

    def _check_state_keys(self, state_dict):
        name = type(self).__name__
        if not isinstance(state_dict, dict):
            raise TypeError(f"{name}.load_state_dict: expected a dict from {name}.state_dict(), got "
                            f"{type(state_dict).__name__}")
        own = set(self.state_dict())
        missing, unexpected = sorted(own - set(state_dict)), sorted(set(state_dict) - own, key=str)
        if missing or unexpected:
            raise ValueError(
                f"{name}.load_state_dict: the state dict does not come from a {name}: missing entries {missing}, "
                f"unexpected entries {unexpected}"
            )


class LambdaLR(LRScheduler):
    """``lr = initial_lr * lr_lambda(last_epoch)``: any schedule given as a function of the step count
    (one function, or a list with one per parameter group)."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer("LambdaLR", optimizer)
        groups = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != groups:
                raise ValueError(f"LambdaLR: expected {groups} lr_lambdas (one per parameter group), "
                                 f"got {len(lr_lambda)}")
            lambdas = list(lr_lambda)
        else:
            lambdas = [lr_lambda] * groups
        for i, fn in enumerate(lambdas):
            if not callable(fn):
                raise TypeError(f"LambdaLR: lr_lambda must be a function of the step count (or a list of them), "
                                f"got {type(fn).__name__} for group {i}")
        self.optimizer = optimizer
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """``base_lr * lr_lambda(last_epoch)`` for each group."""
        self._warn_if_called_directly()
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self):
        """Plain state; each function is saved as None, a callable object as a copy of its ``__dict__``."""
        state = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [
            None if isinstance(fn, types.FunctionType) else copy.deepcopy(getattr(fn, "__dict__", {}))
            for fn in self.lr_lambdas
        ]
        return state

    def load_state_dict(self, state_dict):
        """Restore the state; the functions stay those given to the constructor (objects get their
        saved attributes back)."""
        self._check_state_keys(state_dict)
        saved = state_dict["lr_lambdas"]
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self.lr_lambdas):
            raise ValueError(f"LambdaLR.load_state_dict: lr_lambdas must list {len(self.lr_lambdas)} entries, "
                             f"got {saved!r}")
        self.__dict__.update({k: copy.deepcopy(v) for k, v in state_dict.items() if k != "lr_lambdas"})
        for fn, attributes in zip(self.lr_lambdas, saved):
            if attributes is not None:
                fn.__dict__.update(copy.deepcopy(attributes))


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = check_int("StepLR", "step_size", step_size, minimum=1)
        self.gamma = _check_real("StepLR", "gamma", gamma, minimum=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The current lr, times ``gamma`` when ``last_epoch`` is a non-zero multiple of ``step_size``."""
        self._warn_if_called_directly()
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each of the ``milestones`` (step counts; a milestone
    listed twice multiplies by ``gamma²``)."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        try:
            milestones = list(milestones)
        except TypeError:
            raise TypeError(f"MultiStepLR: milestones must be a list of step counts, got "
                            f"{type(milestones).__name__}") from None
        self.milestones = Counter(check_int("MultiStepLR", "a milestone", m, minimum=0) for m in milestones)
        self.gamma = _check_real("MultiStepLR", "gamma", gamma, minimum=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The current lr, times ``gamma`` (per listing) when ``last_epoch`` is a milestone."""
        self._warn_if_called_directly()
        if self.last_epoch not in self.milestones:
            return [group["lr"] for group in self.optimizer.param_groups]
        factor = self.gamma ** self.milestones[self.last_epoch]
        return [group["lr"] * factor for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch) for base_lr in self.base_lrs]

    def load_state_dict(self, state_dict):
        """Restore the state (milestones come back as a Counter even from a plain dict)."""
        super().load_state_dict(state_dict)
        self.milestones = Counter({int(k): int(v) for k, v in dict(self.milestones).items()})


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at every step."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = _check_real("ExponentialLR", "gamma", gamma, minimum=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The current lr times ``gamma`` (unchanged at construction, also when resuming)."""
        self._warn_if_called_directly()
        if self._is_initial:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Anneal the learning rate from its initial value to ``eta_min`` along half a cosine over
    ``T_max`` steps: ``eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``.

    As in PyTorch the value is updated recursively from the current lr (so a change made to it from
    outside carries on), and past ``T_max`` the cosine goes back up (no restarts)."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if isinstance(T_max, bool) or not isinstance(T_max, numbers.Real) or not T_max > 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive number of steps, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = _check_real("CosineAnnealingLR", "eta_min", eta_min, minimum=0.0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """PyTorch's recursive form of the cosine schedule at ``last_epoch``."""
        self._warn_if_called_directly()
        groups = self.optimizer.param_groups
        if self._is_initial:
            return [group["lr"] for group in groups]
        if self._step_count == 1 and self.last_epoch > 0:
            return [
                self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(self.last_epoch * math.pi / self.T_max)) / 2
                for base_lr in self.base_lrs
            ]
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [
                group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                for base_lr, group in zip(self.base_lrs, groups)
            ]
        return [
            (1 + math.cos(math.pi * self.last_epoch / self.T_max))
            / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
            * (group["lr"] - self.eta_min)
            + self.eta_min
            for group in groups
        ]

    def _get_closed_form_lr(self):
        return [
            self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
            for base_lr in self.base_lrs
        ]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2017), stepped once per batch: the learning rate climbs from
    ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start`` of ``total_steps`` steps, then
    anneals to ``initial_lr / final_div_factor``; momentum (SGD, RMSprop) or beta1 (Adam) moves the
    other way between ``max_momentum`` and ``base_momentum``. ``three_phase=True`` comes back down to
    ``initial_lr`` symmetrically before the final anneal. Give ``total_steps``, or ``epochs`` and
    ``steps_per_epoch``. Stepping more than ``total_steps`` times is an error."""

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        _check_optimizer("OneCycleLR", optimizer)
        self.optimizer = optimizer
        if total_steps is not None:
            self.total_steps = check_int("OneCycleLR", "total_steps", total_steps, minimum=1)
        elif epochs is not None and steps_per_epoch is not None:
            epochs = check_int("OneCycleLR", "epochs", epochs, minimum=1)
            steps_per_epoch = check_int("OneCycleLR", "steps_per_epoch", steps_per_epoch, minimum=1)
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError(
                "OneCycleLR: you must define either total_steps OR (epochs AND steps_per_epoch), got "
                f"total_steps={total_steps!r}, epochs={epochs!r}, steps_per_epoch={steps_per_epoch!r}"
            )
        pct_start = _check_real("OneCycleLR", "pct_start", pct_start, minimum=0.0)
        if pct_start > 1:
            raise ValueError(f"OneCycleLR: pct_start must be a number between 0 and 1, got {pct_start!r}")
        self._anneal_func_type = _choice("OneCycleLR", "anneal_strategy", anneal_strategy, ("cos", "linear"))
        div_factor = _check_real("OneCycleLR", "div_factor", div_factor)
        final_div_factor = _check_real("OneCycleLR", "final_div_factor", final_div_factor)
        if div_factor == 0 or final_div_factor == 0:
            raise ValueError(f"OneCycleLR: div_factor and final_div_factor must be non-zero, got {div_factor!r} "
                             f"and {final_div_factor!r}")
        total = self.total_steps
        up = ("initial_lr", "max_lr", "max_momentum", "base_momentum")
        if three_phase:  # up, back down to initial_lr, then the final anneal
            ends = [float(pct_start * total) - 1, float(2 * pct_start * total) - 2, total - 1]
            phases = [up, ("max_lr", "initial_lr", "base_momentum", "max_momentum"),
                      ("initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:  # up, then the anneal to min_lr
            ends = [float(pct_start * total) - 1, total - 1]
            phases = [up, ("max_lr", "min_lr", "base_momentum", "max_momentum")]
        self._schedule_phases = [
            {"end_step": end, "start_lr": a, "end_lr": b, "start_momentum": c, "end_momentum": d}
            for end, (a, b, c, d) in zip(ends, phases)
        ]
        max_lrs = _per_group("OneCycleLR", "max_lr", optimizer, max_lr, minimum=0.0)
        if last_epoch == -1:
            for group, group_max_lr in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = group_max_lr / div_factor
                group["max_lr"] = group_max_lr
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(
                    f"OneCycleLR: cycle_momentum=True needs an optimizer with momentum or betas (SGD, RMSprop, Adam, "
                    f"AdamW), but {type(optimizer).__name__} has neither; pass cycle_momentum=False"
                )
            self.use_beta1 = "betas" in optimizer.defaults
            max_momentums = _per_group("OneCycleLR", "max_momentum", optimizer, max_momentum, minimum=0.0)
            base_momentums = _per_group("OneCycleLR", "base_momentum", optimizer, base_momentum, minimum=0.0)
            if last_epoch == -1:
                for top, base, group in zip(max_momentums, base_momentums, optimizer.param_groups):
                    if self.use_beta1:
                        group["betas"] = (top, *group["betas"][1:])
                    else:
                        group["momentum"] = top
                    group["max_momentum"] = top
                    group["base_momentum"] = base
        if check_int("OneCycleLR", "last_epoch", last_epoch, minimum=-1) != -1:
            needed = ["max_lr", "min_lr"] + (["max_momentum", "base_momentum"] if self.cycle_momentum else [])
            for i, group in enumerate(optimizer.param_groups):
                missing = [key for key in needed if key not in group]
                if missing:
                    raise KeyError(
                        f"OneCycleLR: param_groups[{i}] lacks {missing} when resuming with last_epoch={last_epoch}; "
                        "load the optimizer's state dict saved during the run first, or use last_epoch=-1"
                    )
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, pct):
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        """The learning rate of step ``last_epoch`` in its phase (and, with ``cycle_momentum``, set the
        matching momentum or beta1 in each group)."""
        self._warn_if_called_directly()
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(
                f"OneCycleLR.step: tried to step {step_num} times; the specified number of total steps is "
                f"{self.total_steps} (give a larger total_steps, or epochs and steps_per_epoch, to train longer)"
            )
        lrs = []
        last = len(self._schedule_phases) - 1
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step_num <= end_step or i == last:
                    if end_step == start_step:
                        raise ValueError(
                            f"OneCycleLR.step: phase {i + 1} of the schedule has no steps at step {step_num} "
                            f"(total_steps={self.total_steps} with this pct_start); change pct_start or total_steps"
                        )
                    pct = (step_num - start_step) / (end_step - start_step)
                    lr = self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct)
                    if self.cycle_momentum:
                        momentum = self._anneal(group[phase["start_momentum"]], group[phase["end_momentum"]], pct)
                    break
                start_step = phase["end_step"]
            lrs.append(lr)
            if self.cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return lrs


class ReduceLROnPlateau(LRScheduler):
    """Multiply the learning rate by ``factor`` when a watched metric (``step(metric)``) has not improved
    for more than ``patience`` steps, then wait ``cooldown`` steps; never below ``min_lr``.

    Improvement means ``metric < best * (1 - threshold)`` (mode ``"min"``, threshold_mode ``"rel"``),
    ``metric < best - threshold`` (``"abs"``), or the same upwards in mode ``"max"``. A reduction
    smaller than ``eps`` is skipped."""

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0, eps=1e-8):
        name = "ReduceLROnPlateau"
        self.factor = _check_real(name, "factor", factor, minimum=0.0, below=1.0)
        _check_optimizer(name, optimizer)
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr = None
            self.min_lrs = _per_group(name, "min_lr", optimizer, min_lr, minimum=0.0)
        else:
            self.default_min_lr = _check_real(name, "min_lr", min_lr, minimum=0.0)
            self.min_lrs = [self.default_min_lr] * len(optimizer.param_groups)
        self.patience = check_int(name, "patience", patience, minimum=0)
        self.cooldown = check_int(name, "cooldown", cooldown, minimum=0)
        self.eps = _check_real(name, "eps", eps, minimum=0.0)
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self._init_is_better(mode=mode, threshold=threshold, threshold_mode=threshold_mode)
        self._reset()

    def _reset(self):
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics, epoch=None):
        """Record one value of the watched metric (e.g. the validation loss) and reduce the learning
        rates if it has stopped improving."""
        try:
            current = float(metrics)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"ReduceLROnPlateau.step: metrics must be one number (e.g. the validation loss), got "
                            f"{type(metrics).__name__}: {exc}") from None
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            epoch = check_int("ReduceLROnPlateau.step", "epoch", epoch, minimum=0)
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self.last_epoch = epoch
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"ReduceLROnPlateau.step: the optimizer has {len(groups)} parameter group(s), but min_lr lists "
                    f"{len(self.min_lrs)} (a group was added after the scheduler was made); set min_lrs to match"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    @property
    def in_cooldown(self) -> bool:
        """Whether the scheduler is waiting out its cooldown after a reduction."""
        return self.cooldown_counter > 0

    def _is_better(self, a, best):
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def _init_is_better(self, mode, threshold, threshold_mode):
        name = "ReduceLROnPlateau"
        self.mode = _choice(name, "mode", mode, ("min", "max"))
        self.threshold_mode = _choice(name, "threshold_mode", threshold_mode, ("rel", "abs"))
        self.threshold = _check_real(name, "threshold", threshold, minimum=0.0)
        self.mode_worse = math.inf if mode == "min" else -math.inf

    def load_state_dict(self, state_dict):
        """Restore the state saved by :meth:`state_dict`."""
        super().load_state_dict(state_dict)
        self._init_is_better(mode=self.mode, threshold=self.threshold, threshold_mode=self.threshold_mode)


__all__ = [
    "LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "OneCycleLR",
    "ReduceLROnPlateau",
]
