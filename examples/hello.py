"""The lecture's character model: 3 tanh hidden units learn to spell "hello" over the vocabulary h, e, l, o.

The training sequence is "hello": the inputs are "hell" (one-hot vectors over
the vocabulary [h, e, l, o]) and the targets are the next characters "ello".
At each time step the RNN computes

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)      (3 hidden units)
    y_t = W_hy h_t + b_y                                   (4 output scores)

and the loss is the cross-entropy of the scores against the next character.
The example prints, as on the slide, the hidden state, the output scores and
the predicted character at every step before and after training, then samples
greedily from "h": the model must produce "hello" (the second "l" needs the
hidden state: after "l" comes "l" once and "o" once). The unrolled graph shows
every op of the four steps (the composed cell implementation).
"""
from __future__ import annotations

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import examples_support as support
from tinygrad_rnn import nn, optim
from tinygrad_rnn.data import CharVocab
from tinygrad_rnn.nn import functional as F

VOCAB = CharVocab("helo")
WORD = "hello"


def build_parser():
    parser = support.example_parser(__file__, __doc__)
    parser.add_argument("--hidden", type=support.positive_int, default=3, help="hidden units (default 3, as on the slide)")
    parser.add_argument("--steps", type=support.positive_int, default=None, help="training steps (default 150 quick, 500 full)")
    parser.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (default 0.05)")
    return parser


class CharRNN(nn.Module):
    """One-hot characters → tanh RNN (composed cells, so the graph shows every op) → linear scores."""

    def __init__(self, vocab_size, hidden_size):
        super().__init__()
        self.rnn = nn.RNN(vocab_size, hidden_size, impl="composed")
        self.decoder = nn.Linear(hidden_size, vocab_size)

    def forward(self, x, h=None):
        """x: (T, vocab) one-hot → (scores (T, vocab), hidden states (T, H), last state (1, H))."""
        states, h_last = self.rnn(x, h)
        return self.decoder(states), states, h_last


def one_hot(text, device):
    ids = VOCAB.encode(text)
    return tr.tensor(np.eye(len(VOCAB), dtype=np.float32)[ids], device=device), ids


def _print_table(model, device, title):
    x, ids = one_hot(WORD[:-1], device)
    with tr.no_grad():
        scores, states, _ = model(x)
    scores, states = scores.numpy(), states.numpy()
    targets = WORD[1:]
    print(f"\n{title}")
    hidden_width = 8 * states.shape[1] - 1
    scores_header = "  ".join(f"{'y_' + c:>6}" for c in VOCAB.chars)
    print(f"  t  input  one-hot  {'hidden h_t':^{hidden_width}}  {scores_header}  predicted  target")
    correct = 0
    for t in range(len(ids)):
        one = "".join(str(int(v)) for v in x.numpy()[t])
        hidden = " ".join(f"{v:7.3f}" for v in states[t])
        row = "  ".join(f"{v:6.2f}" for v in scores[t])
        predicted = VOCAB.chars[int(scores[t].argmax())]
        correct += predicted == targets[t]
        mark = "ok" if predicted == targets[t] else "x"
        print(f"  {t + 1}    {WORD[t]!r}    {one}   {hidden}  {row}  {predicted!r:>9}  {targets[t]!r:>6} {mark}")
    return correct


@tr.no_grad()
def sample(model, first, length, device):
    """Greedy sampling: feed ``first``, then always the most likely next character."""
    text, h = first, None
    for _ in range(length):
        x, _ = one_hot(text[-1], device)
        scores, _, h = model(x, h)
        text += VOCAB.chars[int(scores.numpy()[0].argmax())]
    return text


def plot(losses, run):
    fig, ax = support.figure()
    ax.plot(np.arange(1, len(losses) + 1), losses)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (mean over 4 steps)")
    ax.set_title('"hell" → "ello"')
    run.save_figure(fig, "loss.png")


def main(argv=None) -> dict:
    run = support.start(build_parser(), argv)
    args = run.args
    device = run.device
    model = CharRNN(len(VOCAB), args.hidden).to(device)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    x, _ = one_hot(WORD[:-1], device)
    _, target_ids = one_hot(WORD[1:], device)
    targets = tr.tensor(target_ids, device=device)

    _print_table(model, device, "Before training (random weights):")
    steps = args.steps or (150 if run.quick else 500)
    losses = []
    bar = run.progress(range(steps), desc="train")
    for _ in bar:
        scores, _, _ = model(x)
        loss = F.cross_entropy(scores, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(run.check_loss(loss))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    bar.close()

    correct = _print_table(model, device, f"After {steps} steps:")
    text = sample(model, "h", len(WORD) - 1, device)
    print(f'\nGreedy sample from "h": {text!r}  ({"matches" if text == WORD else "differs from"} {WORD!r})')

    plot(losses, run)
    scores, _, _ = model(x)
    loss = F.cross_entropy(scores, targets)
    loss.name = "loss"
    run.graph(loss, "graph", model=model)

    return run.finish({
        "sample": text,
        "step_accuracy": correct / (len(WORD) - 1),
        "initial_loss": losses[0],
        "final_loss": losses[-1],
        "losses": losses,
    })


if __name__ == "__main__":
    main()
