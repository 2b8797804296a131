"""Binary addition bit by bit: an RNN learns to carry, and a hand-designed step-function RNN adds exactly.

The network reads two numbers least-significant bit first, one pair of bits
(a_t, b_t) per time step, and emits bit t of the sum. The only thing it must
remember between steps is the carry.

The hand-designed RNN (the lecture exercise) uses step activations
H(z) = [z > 0]. Its three hidden units count how many of a_t, b_t and the
incoming carry are 1: unit k fires when that count is at least k, i.e.

    s_t   = a_t + b_t + carry_{t-1},      carry_{t-1} = h2_{t-1}
    h_t   = H(W_xh x_t + W_hh h_{t-1} + b_h)   with h_k = [s_t >= k]
    y_t   = H(h1 - h2 + h3 - 0.5)              (= s_t mod 2)

so the carry is the second hidden unit and the sum bit is "1 or 3 of them".

The learned RNN is a tanh ``nn.RNN`` with a linear read-out trained with
binary cross-entropy on 70% of all pairs of 7-bit numbers and tested on the
other 30% (sums it never saw); an answer counts only if all 8 bits are right.
"""
from __future__ import annotations

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import examples_export as exporting
from tinygrad_rnn import examples_support as support
from tinygrad_rnn import nn, optim
from tinygrad_rnn.data import bits_to_int, int_to_bits
from tinygrad_rnn.nn import functional as F

N_BITS = 8


def build_parser():
    parser = support.example_parser(__file__, __doc__)
    parser.add_argument("--hidden", type=support.positive_int, default=16, help="hidden units of the learned RNN")
    parser.add_argument("--steps", type=support.positive_int, default=None, help="training steps (default 400 quick, 2000 full)")
    parser.add_argument("--batch-size", type=support.positive_int, default=64, help="sequences per step (default 64)")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam learning rate (default 0.01)")
    exporting.add_flag(parser)
    return parser


# ------------------------------------------------------------------ hand-designed
class HandDesignedAdder:
    """The lecture's step-function RNN: hidden unit k fires when a_t + b_t + carry >= k; carry = h2."""

    def __init__(self, device="cpu"):
        f = tr.float32
        self.W_xh = tr.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]], dtype=f, device=device)
        self.W_hh = tr.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], dtype=f, device=device)
        self.b_h = tr.tensor([-0.5, -1.5, -2.5], dtype=f, device=device)
        self.W_hy = tr.tensor([[1.0, -1.0, 1.0]], dtype=f, device=device)
        self.b_y = tr.tensor([-0.5], dtype=f, device=device)

    @staticmethod
    def step(z):
        """Heaviside step H(z) = 1 where z > 0, else 0 (as float)."""
        return (z > 0).float()

    @tr.no_grad()
    def __call__(self, x):
        """x: (B, T, 2) bits → (output bits (B, T), hidden states (B, T, 3))."""
        batch, steps, _ = x.shape
        h = tr.zeros(batch, 3, device=x.device)
        outputs, states = [], []
        for t in range(steps):
            h = self.step(x[:, t] @ self.W_xh.T + h @ self.W_hh.T + self.b_h)
            outputs.append(self.step(h @ self.W_hy.T + self.b_y)[:, 0])
            states.append(h)
        return tr.stack(outputs, dim=1), tr.stack(states, dim=1)

    def describe(self) -> str:
        def matrix(t):
            return "\n".join("      " + "  ".join(f"{v:5.1f}" for v in row) for row in np.atleast_2d(t.numpy()))

        return (
            "Hand-designed weights (hidden unit k fires when a + b + carry >= k):\n"
            f"  W_xh (3x2):\n{matrix(self.W_xh)}\n"
            f"  W_hh (3x3), column 2 feeds the carry h2 back to every unit:\n{matrix(self.W_hh)}\n"
            f"  b_h = {self.b_h.numpy().tolist()}   (thresholds 1, 2, 3)\n"
            f"  W_hy = {self.W_hy.numpy().tolist()[0]}, b_y = {self.b_y.numpy().tolist()}   (sum bit = h1 - h2 + h3)"
        )


def worked_example(adder, a, b, device):
    """A per-step table of the hand-designed RNN adding a + b."""
    x = np.stack([int_to_bits(a, N_BITS), int_to_bits(b, N_BITS)], axis=-1).astype(np.float32)[None]
    bits, states = adder(tr.tensor(x, device=device))
    bits, states = bits.numpy()[0], states.numpy()[0]
    lines = [f"Worked example: {a} + {b} = {a + b}  (bits least significant first)",
             "   t  a_t b_t carry_in | h1 h2 h3 | y_t carry_out"]
    carry = 0
    for t in range(N_BITS):
        h = states[t].astype(int)
        lines.append(f"  {t:2d}   {int(x[0, t, 0])}   {int(x[0, t, 1])}      {carry}    |  {h[0]}  {h[1]}  {h[2]} |  "
                     f"{int(bits[t])}      {h[1]}")
        carry = h[1]
    result = int(bits_to_int(bits.astype(np.int64)))
    lines.append(f"  read back (MSB first): {''.join(str(int(v)) for v in bits[::-1])} = {result}")
    return "\n".join(lines), result


# ---------------------------------------------------------------------- learned
class BitAdder(nn.Module):
    """h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh); logit_t = w·h_t + b (sum bit t)."""

    def __init__(self, hidden_size):
        super().__init__()
        self.rnn = nn.RNN(2, hidden_size, batch_first=True)
        self.readout = nn.Linear(hidden_size, 1)

    def forward(self, x):
        states, _ = self.rnn(x)
        return self.readout(states)[..., 0]


def all_pairs(rng):
    """Every pair of 7-bit operands (their sum fits in 8 bits), split 70/30 into train and test."""
    a, b = np.meshgrid(np.arange(2 ** (N_BITS - 1)), np.arange(2 ** (N_BITS - 1)), indexing="ij")
    a, b = a.ravel(), b.ravel()
    order = rng.permutation(len(a))
    cut = int(0.7 * len(a))
    return (a[order[:cut]], b[order[:cut]]), (a[order[cut:]], b[order[cut:]])


def encode(a, b):
    x = np.stack([int_to_bits(a, N_BITS), int_to_bits(b, N_BITS)], axis=-1).astype(np.float32)
    y = int_to_bits(a + b, N_BITS).astype(np.float32)
    return x, y


@tr.no_grad()
def evaluate(model, x, y, device):
    """(bitwise accuracy, exact-match accuracy) on the bits of x → y."""
    model.eval()
    logits = model(tr.tensor(x, device=device)).numpy()
    model.train()
    predicted = (logits > 0).astype(np.float32)
    return float((predicted == y).mean()), float((predicted == y).all(axis=1).mean())


def train(model, train_pairs, test_xy, run, steps, batch_size, lr):
    optimizer = optim.Adam(model.parameters(), lr=lr)
    a_train, b_train = train_pairs
    losses, curve = [], []
    bar = run.progress(range(steps), desc="train")
    for step in bar:
        rows = run.rng.integers(0, len(a_train), size=batch_size)
        x, y = encode(a_train[rows], b_train[rows])
        loss = F.binary_cross_entropy_with_logits(model(tr.tensor(x, device=run.device)), tr.tensor(y, device=run.device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(run.check_loss(loss))
        if step % 50 == 49 or step == steps - 1:
            bitwise, exact = evaluate(model, *test_xy, run.device)
            curve.append((step + 1, bitwise, exact))
            bar.set_postfix(loss=f"{losses[-1]:.4f}", test_exact=f"{exact:.3f}")
        else:
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    return losses, curve


def plot(losses, curve, run):
    fig, (left, right) = support.figure(1, 2, figsize=(10, 3.8))
    left.semilogy(np.arange(1, len(losses) + 1), losses)
    left.set_xlabel("step")
    left.set_ylabel("binary cross-entropy")
    left.set_title("training loss")
    steps, bitwise, exact = zip(*curve)
    right.plot(steps, bitwise, marker="o", ms=3, label="bitwise")
    right.plot(steps, exact, marker="o", ms=3, label="all 8 bits right")
    right.set_ylim(0, 1.02)
    right.set_xlabel("step")
    right.set_ylabel("test accuracy (unseen pairs)")
    right.legend(loc="lower right")
    run.save_figure(fig, "training.png")


def main(argv=None) -> dict:
    run = support.start(build_parser(), argv)
    args = run.args
    device = run.device

    adder = HandDesignedAdder(device)
    print(adder.describe())
    table, result = worked_example(adder, 45, 27, device)
    print(table)
    a = np.repeat(np.arange(2 ** (N_BITS - 1)), 2 ** (N_BITS - 1))
    b = np.tile(np.arange(2 ** (N_BITS - 1)), 2 ** (N_BITS - 1))
    x_all, y_all = encode(a, b)
    hand_bits, _ = adder(tr.tensor(x_all, device=device))
    hand_exact = float((hand_bits.numpy() == y_all).all(axis=1).mean())
    print(f"Hand-designed RNN: {hand_exact:.2%} exact on all {len(a)} pairs of 7-bit numbers\n")

    train_pairs, test_pairs = all_pairs(run.rng)
    test_xy = encode(*test_pairs)
    model = BitAdder(args.hidden).to(device)
    steps = args.steps or (400 if run.quick else 2000)
    losses, curve = train(model, train_pairs, test_xy, run, steps, args.batch_size, args.lr)
    bitwise, exact = evaluate(model, *test_xy, device)
    all_bitwise, all_exact = evaluate(model, x_all, y_all, device)
    print(f"Learned RNN ({args.hidden} tanh units, {steps} steps): test bitwise {bitwise:.2%}, "
          f"test exact {exact:.2%} on {len(test_pairs[0])} unseen pairs; all pairs exact {all_exact:.2%}")
    x_demo, _ = encode(np.array([45]), np.array([27]))
    with tr.no_grad():
        demo = (model(tr.tensor(x_demo, device=device)).numpy()[0] > 0).astype(np.int64)
    print(f"Learned RNN on 45 + 27: {int(bits_to_int(demo))}")

    plot(losses, curve, run)
    x_graph, y_graph = encode(np.array([45]), np.array([27]))
    loss = F.binary_cross_entropy_with_logits(model(tr.tensor(x_graph, device=device)), tr.tensor(y_graph, device=device))
    loss.name = "loss"
    run.graph(loss, "graph", model=model)
    tr.save(model.state_dict(), run.path("model.npz"))
    exporting.export(run, model, (tr.tensor(x_graph, device=device),), ["bits"], ["logits"])

    return run.finish({
        "hand_exact_all_pairs": hand_exact,
        "hand_worked_example": f"45 + 27 = {result}",
        "test_bitwise_accuracy": bitwise,
        "test_exact_match": exact,
        "all_pairs_exact_match": all_exact,
        "steps": steps,
        "final_loss": losses[-1],
        "losses": losses,
    })


if __name__ == "__main__":
    main()
