"""Vanishing and exploding gradients: ||dL/dh_t|| over time for RNN, LSTM and GRU, and gradient clipping.

Backpropagation through time multiplies the gradient by the recurrent
Jacobian once per step, dL/dh_{t-1} = W_hh^T diag(f'(a_t)) dL/dh_t, so its
norm behaves like a power of the recurrent matrix. Experiments 1 to 3 use
the loss L = mean over the batch of sum(h_T) and read ||dL/dh_t|| (and
||dL/dc_t||) from ``h_t.grad`` (``retain_grad()`` on every step's state):

1. A tanh RNN whose W_hh is a random matrix scaled to spectral radius 0.5,
   1.0 and 1.5, against an LSTM and a GRU (PyTorch's initialisation, and with
   the forget gate / update gate biased open by +2 so the cell keeps its memory).
   Below 1 the gradient vanishes geometrically. Above 1, W_hh amplifies but
   the state saturates and tanh' shrinks it again: the gradient no longer
   vanishes, but tanh keeps it from exploding. The gated cells carry the
   gradient as far as their gates let them: at PyTorch's initialisation
   (gates near 0.5) it still vanishes, with the gates open it survives.
2. Why the LSTM's gradient does not vanish: on the same inputs and loss, one
   LSTM cell with its forget-gate bias b_if + b_hf (rows H..2H of bias_ih +
   bias_hh) set to 0, +1 and +3, ||dL/dc_t|| beside ||dL/dh_t||; then a GRU
   whose update-gate bias b_iz + b_hz is set likewise (z near 1 carries h
   through: h_t = (1 - z_t) n_t + z_t h_{t-1}). The cell state's path is
   additive, c_t = f_t c_{t-1} + i_t g_t, so dc_t/dc_{t-1} = diag(f_t): no
   weight matrix and no tanh' on the way, and with f near 1 (bias +3: f ~ 0.95)
   ||dL/dc_1|| is of the order of ||dL/dc_T||, while at f ~ 0.5 it is ~1e-8 of it;
   a tanh RNN's dh_t/dh_{t-1} = diag(1 - h_t^2) W_hh instead multiplies by a
   matrix of norm below 1 at every step. ||dL/dh_t|| of the LSTM reaches back
   through the cell state too, and the GRU's diag(z_t) term plays the same
   part as f_t.
3. The lecture's ReLU recurrence h_t = ReLU(W_hh h_{t-1} + W_xh x_t) with a
   random non-negative W_hh scaled so its largest eigenvalue is 0.8, 1.0, 1.2:
   every unit stays active, so the gradient is exactly (W_hh^T)^(T-t) times the
   last one and grows or shrinks like lambda_max^(T-t).
4. A ReLU RNN initialised with W_hh = I (the "IRNN") trained with SGD to
   output the normalised sum of its inputs. Without clipping, one exploding
   gradient (norm ~1e7) throws the weights so far that the loss jumps by
   orders of magnitude (or to inf/NaN, depending on the settings) and the
   network never gets below "predict the mean"; with clip_grad_norm_(1.0)
   the same run, from the same initial weights and batches, trains.
5. With ``--omega LAMBDA``: Pascanu, Mikolov and Bengio's (2013) regulariser

       Omega = sum_t ( ||dL/dh_{t+1} . dh_{t+1}/dh_t|| / ||dL/dh_{t+1}|| - 1 )^2

   which asks every step's Jacobian to keep the norm of the gradient it passes
   back, with dL/dh_{t+1} held constant as in the paper. It is a function of
   gradients, so it is trained with gradients of gradients (``create_graph``):
   a tanh RNN learns to recall its first input after T steps, from the same
   weights and batches with and without Omega, and the example prints the
   ratio ||dL/dh_1|| / ||dL/dh_T|| as training goes.
"""
from __future__ import annotations

import math

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import examples_support as support
from tinygrad_rnn.examples_gradients import set_carry_gate_bias, state_gradient_norms
from tinygrad_rnn import nn, optim
from tinygrad_rnn.nn import functional as F
from tinygrad_rnn.nn.utils import clip_grad_norm_

RADII = (0.5, 1.0, 1.5)
EIGENVALUES = (0.8, 1.0, 1.2)
GATE_BIAS = 2.0
CARRY_BIASES = (0.0, 1.0, 3.0)  # experiment 2: b_ih + b_hh of the LSTM's forget gate / the GRU's update gate


def build_parser():
    parser = support.example_parser(__file__, __doc__)
    parser.add_argument("--seq-len", type=support.positive_int, default=40, help="time steps T (default 40)")
    parser.add_argument("--hidden", type=support.positive_int, default=32, help="hidden units (default 32)")
    parser.add_argument("--train-steps", type=support.positive_int, default=None,
                        help="SGD steps of the clipping experiment (default 400 quick, 2000 full)")
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate of the clipping experiment")
    parser.add_argument("--max-norm", type=float, default=1.0, help="clip_grad_norm_ threshold (default 1.0)")
    parser.add_argument("--omega", type=support.finite_float, default=None, metavar="LAMBDA",
                        help="also train a tanh RNN with Pascanu et al.'s regulariser LAMBDA * Omega (experiment 4)")
    parser.add_argument("--omega-steps", type=support.positive_int, default=None,
                        help="training steps of experiment 4 (default 150 quick, 600 full)")
    return parser


# ------------------------------------------------------------------ measurements
def gradient_norms(cell, x):
    """||dL/dh_t|| for t = 1..T of ``cell`` run over x (T, B, I), with L = mean_b sum(h_T)."""
    return state_gradient_norms(cell, x)["h"]


def _set(param, array):
    """Overwrite a parameter's values (host array → the parameter's device and dtype)."""
    param.set_(tr.Tensor(np.asarray(array), dtype=param.dtype, device=param.device))


def vanilla_and_gated(run, x, H):
    """Experiment 1: tanh RNN at three spectral radii, LSTM and GRU (default and gates open)."""
    base = run.rng.standard_normal((H, H))
    base /= np.max(np.abs(np.linalg.eigvals(base)))
    curves = {}
    for radius in RADII:
        cell = nn.RNNCell(4, H).to(run.device)
        _set(cell.weight_hh, radius * base)
        curves[f"RNN tanh, radius {radius:g}"] = gradient_norms(cell, x)
    for name, cls, is_lstm in (("LSTM", nn.LSTMCell, True), ("GRU", nn.GRUCell, False)):
        cell = cls(4, H).to(run.device)
        curves[f"{name}, default init"] = gradient_norms(cell, x)
        cell = cls(4, H).to(run.device)
        bias = cell.bias_ih.numpy()
        bias[H:2 * H] += GATE_BIAS  # LSTM rows i, f, g, o: f; GRU rows r, z, n: z
        _set(cell.bias_ih, bias)
        gate = "forget" if is_lstm else "update"
        curves[f"{name}, {gate} gate bias +{GATE_BIAS:g}"] = gradient_norms(cell, x)
    return curves


def carry_paths(run, x, H):
    """Experiment 2: one LSTM cell and one GRU cell, their carry gate's bias (b_ih + b_hh) set to each of
    CARRY_BIASES, the other weights kept. Returns {"LSTM": {bias: norms}, "GRU": {bias: norms}} where norms
    are :func:`state_gradient_norms`'s ||dL/dh_t||, ||dL/dc_t|| (LSTM) and the gate's mean."""
    results = {}
    for name, cls in (("LSTM", nn.LSTMCell), ("GRU", nn.GRUCell)):
        cell = cls(x.shape[2], H).to(run.device)
        results[name] = {}
        for bias in CARRY_BIASES:
            set_carry_gate_bias(cell, bias)
            results[name][bias] = state_gradient_norms(cell, x)
    return results


def relu_recurrence(run, T, H):
    """Experiment 2: ReLU RNN with a non-negative random W_hh scaled to largest eigenvalue 0.8 / 1.0 / 1.2."""
    x = tr.tensor(run.rng.uniform(0, 1, (T, 16, 4)).astype(np.float32), device=run.device)
    base = run.rng.uniform(0, 1, (H, H))
    base /= np.max(np.abs(np.linalg.eigvals(base)))
    w_ih = run.rng.uniform(0, 1, (H, 4)) / math.sqrt(H)
    curves = {}
    for eigenvalue in EIGENVALUES:
        cell = nn.RNNCell(4, H, nonlinearity="relu").to(run.device)
        _set(cell.weight_hh, eigenvalue * base)
        _set(cell.weight_ih, w_ih)
        _set(cell.bias_ih, np.zeros(H))
        _set(cell.bias_hh, np.zeros(H))
        curves[eigenvalue] = gradient_norms(cell, x)
    return curves


# ---------------------------------------------------------------------- clipping
class SumRNN(nn.Module):
    """ReLU RNN with W_hh = I and zero biases (the IRNN initialisation), read out at the last step."""

    def __init__(self, hidden):
        super().__init__()
        self.rnn = nn.RNN(1, hidden, nonlinearity="relu", batch_first=True)
        self.readout = nn.Linear(hidden, 1)
        _set(self.rnn.weight_hh_l0, np.eye(hidden))
        _set(self.rnn.bias_ih_l0, np.zeros(hidden))
        _set(self.rnn.bias_hh_l0, np.zeros(hidden))

    def forward(self, x):
        states, _ = self.rnn(x)
        return self.readout(states[:, -1])


def sum_task(rng, batch, T):
    """Inputs u_t ~ U(0, 1); target the sum of the u_t, normalised to mean 0 and variance 1."""
    u = rng.uniform(0, 1, (batch, T, 1)).astype(np.float32)
    y = (u.sum(axis=1) - T / 2) / math.sqrt(T / 12)
    return u, y.astype(np.float32)


def train_sum(run, T, H, steps, lr, max_norm, label):
    """SGD on the sum task from a fixed seed; returns (losses, gradient norms, step of divergence or None)."""
    tr.manual_seed(run.seed)
    rng = np.random.default_rng(run.seed + 1)
    model = SumRNN(H).to(run.device)
    optimizer = optim.SGD(model.parameters(), lr=lr)
    losses, norms, diverged = [], [], None
    bar = run.progress(range(steps), desc=label)
    with np.errstate(over="ignore", invalid="ignore"):
        for step in bar:
            u, y = sum_task(rng, 32, T)
            loss = F.mse_loss(model(tr.tensor(u, device=run.device)), tr.tensor(y, device=run.device))
            optimizer.zero_grad()
            loss.backward()
            norm = clip_grad_norm_(model.parameters(), max_norm if max_norm is not None else math.inf)
            losses.append(float(loss.item()))
            norms.append(float(norm.item()))
            bar.set_postfix(loss=f"{losses[-1]:.4g}", grad_norm=f"{norms[-1]:.3g}")
            if not (math.isfinite(losses[-1]) and math.isfinite(norms[-1])):
                diverged = step + 1
                break
            optimizer.step()
    bar.close()
    return losses, norms, diverged


# ------------------------------------------------------------- the regulariser
def omega_penalty(states, grads):
    """Omega = sum_t (||v_{t+1} . dh_{t+1}/dh_t|| / ||v_{t+1}|| - 1)^2 with v_{t+1} = dL/dh_{t+1} held constant,
    averaged over the batch. One create_graph vjp per step: the result can be differentiated in the weights."""
    total = None
    for t in range(len(states) - 1):
        v = grads[t + 1]
        (u,) = tr.autograd.grad(states[t + 1], states[t], grad_outputs=v, create_graph=True)
        v_norm = (v * v).sum(1).sqrt() + 1e-12
        term = (((u * u).sum(1) + 1e-24).sqrt() / v_norm - 1) ** 2
        total = term.mean() if total is None else total + term.mean()
    return total


class RecallRNN(nn.Module):
    """A tanh RNN cell unrolled by hand (the states are needed one by one) and a linear readout."""

    def __init__(self, hidden):
        super().__init__()
        self.cell = nn.RNNCell(1, hidden)
        self.readout = nn.Linear(hidden, 1)

    def forward(self, x):
        h = x.new_zeros(x.shape[1], self.cell.hidden_size).requires_grad_(True)  # h_0 is a state too
        states = [h]
        for t in range(x.shape[0]):
            h = self.cell(x[t], h)
            states.append(h)
        return self.readout(h), states


def train_recall(run, T, H, steps, lam, max_norm, label):
    """SGD with clipping on "output x_1 after T steps"; returns losses, Omega values and the gradient ratio
    ||dL/dh_1|| / ||dL/dh_T|| at every step (the same weights and batches for every lam)."""
    tr.manual_seed(run.seed)
    rng = np.random.default_rng(run.seed + 2)
    model = RecallRNN(H).to(run.device)
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses, omegas, ratios = [], [], []
    bar = run.progress(range(steps), desc=label)
    for _ in bar:
        x = rng.standard_normal((T, 32, 1)).astype(np.float32)
        y, states = model(tr.tensor(x, device=run.device))
        loss = F.mse_loss(y, tr.tensor(x[0], device=run.device))
        grads = tr.autograd.grad(loss, states, retain_graph=True)
        ratios.append(float(grads[1].norm().item() / max(grads[-1].norm().item(), 1e-30)))
        grads = [g.detach() for g in grads]
        omega = omega_penalty(states, grads)
        objective = loss + lam * omega if lam else loss
        optimizer.zero_grad()
        objective.backward()
        clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        losses.append(run.check_loss(loss))
        omegas.append(float(omega.item()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}", omega=f"{omegas[-1]:.3g}", ratio=f"{ratios[-1]:.2e}")
    bar.close()
    return losses, omegas, ratios


def plot_omega(plain, regularised, lam, run):
    fig, (left, right) = support.figure(1, 2, figsize=(12, 4.0))
    for (losses, _, ratios), label in ((plain, "no Omega"), (regularised, f"lambda = {lam:g}")):
        left.plot(losses, label=label)
        right.semilogy(ratios, label=label)
    left.set_xlabel("SGD step")
    left.set_ylabel("MSE (recall x_1)")
    left.legend(fontsize=8)
    right.set_xlabel("SGD step")
    right.set_ylabel(r"$\|\partial L/\partial h_1\| / \|\partial L/\partial h_T\|$")
    right.set_title("the gradient ratio across time")
    right.legend(fontsize=8)
    run.save_figure(fig, "omega.png")


# ------------------------------------------------------------------------- output
def _ratio(curve):
    return float(curve[0] / curve[-1])


def _print_curves(curves, carry, relu, T):
    print(f"\n1. ||dL/dh_t|| for a tanh RNN, LSTM and GRU (T = {T}); ratio = ||dL/dh_1|| / ||dL/dh_T||")
    for name, curve in curves.items():
        print(f"   {name:<34} ||dL/dh_T|| = {curve[-1]:9.3e}   ||dL/dh_1|| = {curve[0]:9.3e}   ratio = {_ratio(curve):9.3e}")
    _print_carry(carry, T)
    print(f"\n3. ReLU recurrence, non-negative random W_hh: the ratio follows lambda_max^(T-1) (T - 1 = {T - 1})")
    for eigenvalue, curve in relu.items():
        print(f"   lambda_max = {eigenvalue:3.1f}: ratio = {_ratio(curve):9.3e}   lambda^(T-1) = {eigenvalue ** (T - 1):9.3e}")


def carry_table(paths, T):
    """Experiment 2's metrics: per cell and bias, the gate's mean, ratio ||dL/d._1|| / ||dL/d._T|| for each
    state, (mean gate)^(T-1) (what the carry path alone would pass on) and the norms themselves."""
    table = {}
    for name, gate, key in (("LSTM", "forget_gate", "lstm_forget_bias"), ("GRU", "update_gate", "gru_update_bias")):
        table[key] = {}
        for bias, norms in paths[name].items():
            row = {f"{gate}_mean": norms["carry_gate"], f"{gate}_power": norms["carry_gate"] ** (T - 1)}
            for state in ("c", "h"):
                if norms[state] is not None:
                    row[f"{state}_ratio_first_last"] = _ratio(norms[state])
            for state in ("c", "h"):
                if norms[state] is not None:
                    row[f"dL_d{state}"] = norms[state].tolist()
            table[key][f"{bias:g}"] = row
    return table


def _print_carry(table, T):
    print(f"\n2. The carry paths (T = {T}): one LSTM / GRU cell, the forget / update gate's bias b_ih + b_hh set to "
          f"{' / '.join(f'{b:g}' for b in CARRY_BIASES)}; ratio = ||dL/d._1|| / ||dL/d._T||")
    for bias, row in table["lstm_forget_bias"].items():
        print(f"   LSTM forget bias {bias:>2}: mean f = {row['forget_gate_mean']:.3f}   ratio dL/dc = "
              f"{row['c_ratio_first_last']:9.3e}   ratio dL/dh = {row['h_ratio_first_last']:9.3e}   "
              f"f^(T-1) = {row['forget_gate_power']:9.3e}")
    for bias, row in table["gru_update_bias"].items():
        print(f"   GRU  update bias {bias:>2}: mean z = {row['update_gate_mean']:.3f}   ratio dL/dh = "
              f"{row['h_ratio_first_last']:9.3e}   z^(T-1) = {row['update_gate_power']:9.3e}")


def plot_carry(table, T, run):
    """One panel per bias, log scale: the LSTM's ||dL/dc_t|| and ||dL/dh_t|| (top), the GRU's ||dL/dh_t||
    (bottom), each with the carry gate's path ||dL/d._T|| * (mean gate)^(T-t) dotted."""
    biases = list(table["lstm_forget_bias"])
    fig, axes = support.figure(2, len(biases), figsize=(4.2 * len(biases), 7.0), sharey="row", squeeze=False)
    steps = np.arange(1, T + 1)
    rows = (("lstm_forget_bias", "LSTM, forget", "forget_gate", "f", ("c", "h")),
            ("gru_update_bias", "GRU, update", "update_gate", "z", ("h",)))
    for axes_row, (key, title, gate, symbol, states) in zip(axes, rows):
        for ax, bias in zip(axes_row, biases):
            row = table[key][bias]
            for state, style in zip(states, ("-", "--")):
                curve = row[f"dL_d{state}"]
                ax.semilogy(steps, curve, style, lw=1.6, label=rf"$\|\partial L/\partial {state}_t\|$")
            last = row[f"dL_d{states[0]}"][-1]
            ax.semilogy(steps, last * row[f"{gate}_mean"] ** (T - steps), "k:", lw=0.9,
                        label=rf"$\|\partial L/\partial {states[0]}_T\| \, \bar{{{symbol}}}^{{T-t}}$")
            ax.set_title(f"{title} gate bias {bias}: mean {symbol} = {row[f'{gate}_mean']:.2f}", fontsize=10)
            ax.set_xlabel("time step t")
            ax.legend(fontsize=8)
        axes_row[0].set_ylabel("gradient norm")
    run.save_figure(fig, "carry_paths.png")


def plot_gradients(curves, relu, T, run):
    fig, (left, right) = support.figure(1, 2, figsize=(12, 4.4))
    steps = np.arange(1, T + 1)
    for name, curve in curves.items():
        style = "-" if name.startswith("RNN") else ("--" if "default" in name else ":")
        left.semilogy(steps, curve, style, lw=1.6, label=name)
    left.set_xlabel("time step t")
    left.set_ylabel(r"$\|\partial L / \partial h_t\|$")
    left.set_title("tanh RNN by spectral radius, LSTM and GRU")
    left.legend(fontsize=7)
    for eigenvalue, curve in relu.items():
        right.semilogy(steps, curve, lw=1.6, label=rf"$\lambda_{{max}}$ = {eigenvalue:g}")
        right.semilogy(steps, curve[-1] * eigenvalue ** (T - steps), "k:", lw=0.8)
    right.set_xlabel("time step t")
    right.set_title(r"ReLU recurrence: $\lambda_{max}^{T-t}$ (dotted)")
    right.legend(fontsize=8)
    run.save_figure(fig, "gradient_norms.png")


def plot_clipping(clipped, unclipped, run, max_norm):
    fig, (left, right) = support.figure(1, 2, figsize=(12, 4.0))
    for (losses, norms, diverged), label in ((unclipped, "no clipping"), (clipped, f"clip_grad_norm_({max_norm:g})")):
        steps = np.arange(1, len(losses) + 1)
        finite = np.isfinite(losses)
        left.semilogy(steps[finite], np.asarray(losses)[finite], label=label)
        right.semilogy(steps[np.isfinite(norms)], np.asarray(norms)[np.isfinite(norms)], label=label)
        if diverged is not None:
            left.axvline(diverged, color="red", ls="--", lw=0.8)
            left.annotate(f"loss = {losses[-1]:g} at step {diverged}", (diverged, left.get_ylim()[1]),
                          xytext=(5, -14), textcoords="offset points", color="red", fontsize=8)
    left.axhline(1.0, color="gray", ls=":", lw=0.8, label="predict the mean (loss 1)")
    left.set_xlabel("SGD step")
    left.set_ylabel("MSE")
    left.set_title("IRNN on the sum task")
    left.legend(fontsize=8)
    right.set_xlabel("SGD step")
    right.set_ylabel("gradient norm before clipping")
    right.legend(fontsize=8)
    run.save_figure(fig, "clipping.png")


def render_graph(run, H):
    """A short tanh RNN (radius 0.5) unrolled over 6 steps, shaded by gradient norm."""
    cell = nn.RNNCell(4, H).to(run.device)
    base = run.rng.standard_normal((H, H))
    _set(cell.weight_hh, 0.5 * base / np.max(np.abs(np.linalg.eigvals(base))))
    x = tr.tensor(run.rng.standard_normal((6, 2, 4)).astype(np.float32), device=run.device)
    with tr.retain_grads():
        h = None
        for t in range(6):
            h = cell(x[t], h)
        loss = h.sum() / 2
        loss.name = "L"
        loss.backward()
    run.graph(loss, "graph", show_grads=True, model=cell)


def main(argv=None) -> dict:
    run = support.start(build_parser(), argv)
    args = run.args
    T, H = args.seq_len, args.hidden

    x = tr.tensor(run.rng.standard_normal((T, 16, 4)).astype(np.float32), device=run.device)
    curves = vanilla_and_gated(run, x, H)
    carry = carry_table(carry_paths(run, x, H), T)
    relu = relu_recurrence(run, T, H)
    _print_curves(curves, carry, relu, T)
    plot_gradients(curves, relu, T, run)
    plot_carry(carry, T, run)
    render_graph(run, H)

    steps = args.train_steps or (400 if run.quick else 2000)
    print(f"\n4. IRNN (ReLU, W_hh = I) on the sum task, T = {T}, SGD lr = {args.lr:g}, {steps} steps")
    unclipped = train_sum(run, T, H, steps, args.lr, None, "no clipping")
    clipped = train_sum(run, T, H, steps, args.lr, args.max_norm, "clipping")
    if unclipped[2] is not None:
        print(f"   without clipping: the loss is {unclipped[0][-1]:g} at step {unclipped[2]} "
              f"(gradient norm {unclipped[1][-2] if len(unclipped[1]) > 1 else unclipped[1][-1]:.3g} the step before)")
    else:
        print(f"   without clipping: loss {unclipped[0][0]:.3g} -> {np.mean(unclipped[0][-50:]):.3g} "
              f"(largest gradient norm {max(unclipped[1]):.3g})")
    tail = float(np.mean(clipped[0][-50:]))
    print(f"   with clip_grad_norm_({args.max_norm:g}): loss {clipped[0][0]:.3g} -> {tail:.3g} (mean of the last 50 "
          f"steps; predicting the mean scores 1.0), largest gradient norm {max(clipped[1]):.3g}")
    plot_clipping(clipped, unclipped, run, args.max_norm)

    metrics = {}
    if args.omega is not None:
        omega_steps = args.omega_steps or (150 if run.quick else 600)
        T4 = min(T, 20) if run.quick else T
        print(f"\n5. Omega (Pascanu et al. 2013): tanh RNN recalls x_1 after T = {T4} steps, {omega_steps} SGD steps")
        plain = train_recall(run, T4, H, omega_steps, 0.0, args.max_norm, "no Omega")
        regularised = train_recall(run, T4, H, omega_steps, args.omega, args.max_norm, f"Omega x {args.omega:g}")
        for (losses, omegas, ratios), label in ((plain, "without Omega"), (regularised, f"lambda = {args.omega:g}")):
            print(f"   {label:<16} ratio ||dL/dh_1||/||dL/dh_T||: {ratios[0]:9.3e} -> {np.median(ratios[-20:]):9.3e}   "
                  f"Omega {omegas[0]:7.3g} -> {np.median(omegas[-20:]):7.3g}   loss {losses[0]:.3f} -> "
                  f"{np.mean(losses[-20:]):.3f}")
        plot_omega(plain, regularised, args.omega, run)
        metrics.update({
            "omega_lambda": args.omega,
            "omega_ratio_final": float(np.median(regularised[2][-20:])),
            "plain_ratio_final": float(np.median(plain[2][-20:])),
            "omega_final": float(np.median(regularised[1][-20:])),
            "plain_omega_final": float(np.median(plain[1][-20:])),
            "omega_loss_final": float(np.mean(regularised[0][-20:])),
            "plain_loss_final": float(np.mean(plain[0][-20:])),
        })

    return run.finish({
        **metrics,
        **carry,
        "ratio_first_last": {name: _ratio(curve) for name, curve in curves.items()},
        "relu_ratio_first_last": {f"{e:g}": _ratio(curve) for e, curve in relu.items()},
        "relu_expected_ratio": {f"{e:g}": e ** (T - 1) for e in EIGENVALUES},
        "no_clip_diverged_at_step": unclipped[2],
        "clip_final_loss": tail,
        "clip_initial_loss": clipped[0][0],
        "losses": clipped[0],
        "losses_no_clip": unclipped[0],
    })


if __name__ == "__main__":
    main()
