"""Backpropagation through time by hand: a 1-unit linear RNN, the framework's dL/dw against the closed form.

The lecture exercise. A linear RNN with one weight w reads three inputs:

    h_t = w * (x_t + h_{t-1}),   y_hat = h_3,   L = (y_hat - y)^2

Unrolled, y_hat = w x_3 + w^2 x_2 + w^3 (x_1 + h_0), so

    dL/dw = 2 (y_hat - y) * (x_3 + 2 w x_2 + 3 w^2 (x_1 + h_0))

The three terms are what reaches w from step 3, step 2 and step 1: an input k
steps back contributes through w^k, so for |w| < 1 the early steps fade away
(vanishing gradient) and for |w| > 1 they dominate (exploding gradient).
Differentiating once more (``tr.autograd.grad(..., create_graph=True)`` twice),

    d2L/dw2 = 2 (dy_hat/dw)^2 + 2 (y_hat - y) * (2 x_2 + 6 w (x_1 + h_0))

The example prints the framework's first and second derivatives next to these closed forms for several w,
repeats the point with a T = 20 sequence (dL/dh_t = 2 (y_hat - y) w^(T-t)),
and finally fits w by gradient descent with the framework's gradients.
"""
from __future__ import annotations

import argparse

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import examples_support as support


def _floats(text: str) -> list[float]:
    try:
        return [support.finite_float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _three_floats(text: str) -> list[float]:
    values = _floats(text)
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three inputs x_1,x_2,x_3, got {len(values)}: {text!r}")
    return values


def _some_floats(text: str) -> list[float]:
    values = _floats(text)
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def build_parser():
    parser = support.example_parser(__file__, __doc__)
    parser.add_argument("--x", type=_three_floats, default=[1.0, 1.0, 1.0], help="the three inputs x_1,x_2,x_3 (default 1,1,1)")
    parser.add_argument("--h0", type=float, default=0.0, help="initial state h_0 (default 0)")
    parser.add_argument("--y", type=float, default=1.0, help="target y (default 1)")
    parser.add_argument("--w", type=_some_floats, default=[0.5, 1.0, 1.5], help="weights to compare (default 0.5,1.0,1.5)")
    parser.add_argument("--long-steps", type=support.positive_int, default=20, help="length T of the long variant")
    parser.add_argument("--fit-steps", type=support.positive_int, default=None, help="gradient-descent steps on w")
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate of the fit (default 0.01)")
    return parser


def unroll(w, xs, h0):
    """h_t = w (x_t + h_{t-1}) for every input; returns the list of states h_1..h_T (tensors)."""
    h = h0
    states = []
    for t, x in enumerate(xs, start=1):
        h = w * (x + h)
        h.name = f"h{t}"
        states.append(h)
    return states


def closed_form_second(w, xs, h0, y):
    """d2L/dw2 for T = 3: 2 (dy_hat/dw)^2 + 2 (y_hat - y) d2y_hat/dw2."""
    x1, x2, x3 = xs
    y_hat = w * x3 + w**2 * x2 + w**3 * (x1 + h0)
    first = x3 + 2 * w * x2 + 3 * w**2 * (x1 + h0)
    return 2 * first**2 + 2 * (y_hat - y) * (2 * x2 + 6 * w * (x1 + h0))


def closed_form_terms(w, xs, h0):
    """The three terms of dy_hat/dw for T = 3: (x_3, 2 w x_2, 3 w^2 (x_1 + h_0))."""
    x1, x2, x3 = xs
    return x3, 2 * w * x2, 3 * w**2 * (x1 + h0)


def _scalar(value, device, requires_grad=False):
    return tr.tensor(float(value), dtype=tr.float64, device=device, requires_grad=requires_grad)


def three_step_table(ws, xs, h0, y, device):
    """Framework gradient vs closed form for each w; returns the rows and the last loss tensor."""
    rows, last_loss = [], None
    for w_value in ws:
        w = _scalar(w_value, device, requires_grad=True)
        w.name = "w"
        with tr.retain_grads():  # keep every intermediate gradient for the shaded graph
            states = unroll(w, [_scalar(x, device) for x in xs], _scalar(h0, device))
            y_hat = states[-1]
            loss = (y_hat - y) ** 2
            loss.name = "L"
            loss.backward(retain_graph=True)
        (dw,) = tr.autograd.grad(loss, w, create_graph=True)  # dL/dw, itself a function of w
        (d2w,) = tr.autograd.grad(dw, w)
        terms = closed_form_terms(w_value, xs, h0)
        y_hat_value = float(y_hat.item())
        closed = 2 * (y_hat_value - y) * sum(terms)
        rows.append(dict(w=w_value, y_hat=y_hat_value, loss=float(loss.item()), framework=float(w.grad.item()),
                         closed_form=closed, terms=list(terms), second=float(d2w.item()),
                         second_closed_form=closed_form_second(w_value, xs, h0, y)))
        last_loss = loss
    return rows, last_loss


def long_sequence(ws, xs, h0, y, device):
    """dL/dh_t for every t of a long sequence (retain_grad on each h_t) and the closed form 2 (y_hat - y) w^(T-t)."""
    T = len(xs)
    results = []
    for w_value in ws:
        w = _scalar(w_value, device, requires_grad=True)
        states = unroll(w, [_scalar(x, device) for x in xs], _scalar(h0, device))
        for h in states:
            h.retain_grad()
        y_hat = states[-1]
        loss = (y_hat - y) ** 2
        loss.backward()
        framework = np.array([abs(float(h.grad.item())) for h in states])
        scale = 2 * (float(y_hat.item()) - y)
        closed = np.abs(scale * w_value ** (T - np.arange(1, T + 1, dtype=np.float64)))
        results.append(dict(w=w_value, y_hat=float(y_hat.item()), dL_dh=framework, closed_form=closed))
    return results


def fit_w(xs, h0, y, steps, lr, run):
    """Gradient descent on w from w = 1 using the framework's dL/dw; returns (w, losses)."""
    w = _scalar(1.0, run.device, requires_grad=True)
    x_tensors = [_scalar(x, run.device) for x in xs]
    h0_tensor = _scalar(h0, run.device)
    losses = []
    bar = run.progress(range(steps), desc="fit w")
    for _ in bar:
        loss = (unroll(w, x_tensors, h0_tensor)[-1] - y) ** 2
        w.grad = None
        loss.backward()
        with tr.no_grad():
            w.data = w.data - lr * w.grad.data
        losses.append(run.check_loss(loss))
        bar.set_postfix(loss=f"{losses[-1]:.3e}", w=f"{float(w.item()):.4f}")
    return float(w.item()), losses


def _print_three_step(rows, xs, h0, y):
    x1, x2, x3 = xs
    print(f"\nThree steps: x = ({x1:g}, {x2:g}, {x3:g}), h_0 = {h0:g}, y = {y:g}")
    print("dL/dw = 2 (y_hat - y) * [ x_3  +  2 w x_2  +  3 w^2 (x_1 + h_0) ]")
    print(f"{'w':>5} {'y_hat':>9} {'x_3':>8} {'2w x_2':>8} {'3w^2(x_1+h_0)':>14} {'framework':>12} {'closed form':>12} {'|diff|':>9}")
    for r in rows:
        t3, t2, t1 = r["terms"]
        diff = abs(r["framework"] - r["closed_form"])
        print(f"{r['w']:>5g} {r['y_hat']:>9.4f} {t3:>8.3f} {t2:>8.3f} {t1:>14.3f} {r['framework']:>12.6f} "
              f"{r['closed_form']:>12.6f} {diff:>9.1e}")
    print("The term from step 1 carries w^2: it shrinks for w < 1 and dominates for w > 1.")
    print("\nSecond derivative: d2L/dw2 = 2 (dy_hat/dw)^2 + 2 (y_hat - y) (2 x_2 + 6 w (x_1 + h_0))")
    print(f"{'w':>5} {'framework':>12} {'closed form':>12} {'|diff|':>9}")
    for r in rows:
        print(f"{r['w']:>5g} {r['second']:>12.6f} {r['second_closed_form']:>12.6f} "
              f"{abs(r['second'] - r['second_closed_form']):>9.1e}")


def _print_long(results, T):
    print(f"\nLong sequence, T = {T}: |dL/dh_t| = |2 (y_hat - y)| |w|^(T-t)")
    print(f"{'w':>5} {'|dL/dh_T|':>12} {'|dL/dh_1|':>12} {'ratio h_1/h_T':>14} {'max |framework - closed|':>25}")
    for r in results:
        ratio = r["dL_dh"][0] / r["dL_dh"][-1]
        err = np.max(np.abs(r["dL_dh"] - r["closed_form"]))
        print(f"{r['w']:>5g} {r['dL_dh'][-1]:>12.4e} {r['dL_dh'][0]:>12.4e} {ratio:>14.4e} {err:>25.2e}")


def _plot(results, T, run):
    fig, ax = support.figure()
    steps = np.arange(1, T + 1)
    for r in results:
        ax.semilogy(steps, r["dL_dh"], marker="o", ms=3, label=f"w = {r['w']:g}")
    ax.set_xlabel("time step t")
    ax.set_ylabel(r"$|\partial L / \partial h_t|$")
    ax.set_title(f"Linear RNN, T = {T}: the gradient scales as $w^{{T-t}}$")
    ax.legend()
    run.save_figure(fig, "gradient_vs_t.png")


def main(argv=None) -> dict:
    run = support.start(build_parser(), argv)
    args = run.args

    rows, loss = three_step_table(args.w, args.x, args.h0, args.y, run.device)
    _print_three_step(rows, args.x, args.h0, args.y)
    run.graph(loss, "graph", show_grads=True)

    T = args.long_steps
    long_inputs = run.rng.uniform(0.5, 1.5, size=T).tolist()
    results = long_sequence(args.w, long_inputs, args.h0, args.y, run.device)
    _print_long(results, T)
    _plot(results, T, run)

    steps = args.fit_steps or (60 if run.quick else 300)
    w_fit, losses = fit_w(args.x, args.h0, args.y, steps, args.lr, run)
    print(f"\nFitted w = {w_fit:.6f} (loss {losses[0]:.4f} -> {losses[-1]:.2e})")

    errors = [abs(r["framework"] - r["closed_form"]) for r in rows]
    long_errors = [float(np.max(np.abs(r["dL_dh"] - r["closed_form"]) / np.maximum(r["closed_form"], 1e-300)))
                   for r in results]
    metrics = {
        "max_abs_error": max(errors),
        "max_abs_error_second": max(abs(r["second"] - r["second_closed_form"]) for r in rows),
        "long_max_rel_error": max(long_errors),
        "three_step": [{k: r[k] for k in ("w", "y_hat", "framework", "closed_form", "second", "second_closed_form")}
                       for r in rows],
        "long_ratio_first_last": {f"{r['w']:g}": float(r["dL_dh"][0] / r["dL_dh"][-1]) for r in results},
        "fitted_w": w_fit,
        "final_loss": losses[-1],
        "losses": losses,
    }
    return run.finish(metrics)


if __name__ == "__main__":
    main()
