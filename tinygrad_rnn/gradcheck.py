"""Check analytic gradients against central finite differences in float64.

``gradcheck`` perturbs every element of every input that requires grad;
``gradcheck_directional`` checks one random direction per try, which is cheap
enough for large tensors (as Chainer's ``check_backward`` does);
``gradgradcheck`` checks second derivatives: the gradient of the first-order
gradient (computed with ``create_graph=True``) against its central differences.
"""
from __future__ import annotations

import numpy as np

from .autograd import enable_grad, no_grad
from .autograd import grad as grad_of
from .tensor import Tensor, float64


class GradcheckError(AssertionError):
    """Raised when an analytic gradient disagrees with finite differences."""


def _scalar_objective(fn, inputs, seed):
    """fn's outputs folded into one scalar with fixed random weights, so every output element counts."""
    rng = np.random.default_rng(seed)
    weights = []

    def objective():
        outs = fn(*inputs)
        outs = outs if isinstance(outs, (tuple, list)) else (outs,)
        total = None
        for k, out in enumerate(o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"):
            if len(weights) <= k:
                weights.append(Tensor(rng.standard_normal(out.shape), device=out.device))
            term = (out * weights[k]).sum()
            total = term if total is None else total + term
        if total is None:
            raise GradcheckError("gradcheck: fn returned no floating point tensor")
        return total

    return objective


def _checked_inputs(inputs):
    inputs = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != float64:
            raise TypeError(f"gradcheck: input {i} is {t.dtype}; finite differences need float64 inputs")
    return inputs


def _analytic(objective, inputs, targets):
    for t in targets:
        t.grad = None
    objective().backward()
    return [t.grad.numpy() if t.grad is not None else np.zeros(t.shape) for t in targets]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0) -> bool:
    """Compare ``fn``'s backward with central differences for every input that requires grad.

    ``fn(*inputs)`` may return a tensor or a tuple of tensors; each is weighted
    with fixed random numbers and summed, so all output elements are checked.
    Raises :class:`GradcheckError` naming the input, the worst element and both
    values; returns True otherwise.
    """
    inputs = _checked_inputs(inputs)
    objective = _scalar_objective(fn, inputs, seed)
    positions = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    targets = [inputs[i] for i in positions]
    if not targets:
        raise GradcheckError("gradcheck: no input requires grad")
    analytic = _analytic(objective, inputs, targets)
    with no_grad():
        for position, t, grad in zip(positions, targets, analytic):
            numeric = np.zeros(t.shape)
            flat = t.array.reshape(-1)  # a view: perturbing it perturbs the input
            for j in range(flat.size):
                original = flat[j].item()
                flat[j] = original + eps
                plus = objective().item()
                flat[j] = original - eps
                minus = objective().item()
                flat[j] = original
                numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
            _compare(grad, numeric, atol, rtol, f"input {position} of shape {t.shape}")
    return True


def gradcheck_directional(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0, tries=3) -> bool:
    """Check the gradient along random directions: ⟨∇f, d⟩ against (f(x+εd) − f(x−εd)) / 2ε."""
    inputs = _checked_inputs(inputs)
    objective = _scalar_objective(fn, inputs, seed)
    targets = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    analytic = _analytic(objective, inputs, targets)
    rng = np.random.default_rng(seed + 1)
    with no_grad():
        originals = [t.array.copy() for t in targets]
        for attempt in range(tries):
            directions = [rng.standard_normal(t.shape) for t in targets]
            predicted = sum(float((g * d).sum()) for g, d in zip(analytic, directions))
            values = []
            for sign in (1, -1):
                for t, d, x0 in zip(targets, directions, originals):
                    t.array[...] = x0 + sign * eps * t._backend.asarray(d)
                values.append(objective().item())
            for t, x0 in zip(targets, originals):
                t.array[...] = x0
            numeric = (values[0] - values[1]) / (2 * eps)
            _compare(np.array([predicted]), np.array([numeric]), atol, rtol, f"random direction {attempt}")
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0) -> bool:
    """Check second derivatives: :func:`gradcheck` of the function that maps ``(*inputs, *grad_outputs)``
    to the vector-Jacobian products ``grad(fn(*inputs), inputs, grad_outputs, create_graph=True)``.

    ``grad_outputs`` (one per floating point output of ``fn``) default to fixed
    random float64 tensors that require grad, so the derivative of the backward
    in its incoming gradient is checked too (as PyTorch's ``gradgradcheck``).
    Raises :class:`GradcheckError` on a mismatch; returns True otherwise.
    """
    inputs = _checked_inputs(inputs)
    positions = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not positions:
        raise GradcheckError("gradgradcheck: no input requires grad")
    with enable_grad():
        outs = fn(*inputs)
    outs = [o for o in (outs if isinstance(outs, (tuple, list)) else (outs,))
            if isinstance(o, Tensor) and o.dtype.kind == "f" and o.requires_grad]
    if not outs:
        raise GradcheckError("gradgradcheck: fn returned no floating point tensor that depends on the inputs")
    if grad_outputs is None:
        rng = np.random.default_rng(seed + 7)
        grad_outputs = [Tensor(rng.standard_normal(o.shape), device=o.device, requires_grad=True) for o in outs]
    else:
        grad_outputs = _checked_inputs(grad_outputs)
        if len(grad_outputs) != len(outs):
            raise GradcheckError(f"gradgradcheck: got {len(grad_outputs)} grad_outputs for {len(outs)} outputs")
    count = len(inputs)

    def first_order(*args):
        with enable_grad():
            values = args[:count]
            outs = fn(*values)
            outs = [o for o in (outs if isinstance(outs, (tuple, list)) else (outs,))
                    if isinstance(o, Tensor) and o.dtype.kind == "f" and o.requires_grad]
            wanted = [values[i] for i in positions]
            grads = grad_of(outs, wanted, list(args[count:]), create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_order, list(inputs) + list(grad_outputs), eps=eps, atol=atol, rtol=rtol, seed=seed)


def _compare(analytic, numeric, atol, rtol, what):
    error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    if (error > 0).any() or not np.isfinite(analytic).all():
        worst = np.unravel_index(np.nanargmax(np.where(np.isfinite(error), error, np.inf)), error.shape)
        raise GradcheckError(
            f"gradcheck: {what}: gradient mismatch at element {tuple(int(i) for i in worst)}: "
            f"analytic {analytic[worst]:.8g}, numeric {numeric[worst]:.8g} (atol={atol}, rtol={rtol})"
        )
