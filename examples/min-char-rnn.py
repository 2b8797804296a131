"""Karpathy's min-char-rnn on the framework: a vanilla RNN reads text one character at a time.

The lecture's 112-line NumPy program, rebuilt from framework parts:

    x_t = one_hot(c_t)                                  (vocab_size)
    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)    (hidden 100)
    y_t = W_hy h_t + b_y,   p_t = softmax(y_t)           (next-character distribution)
    loss = -Σ_t log p_t[c_{t+1}]                         (summed over 25 characters)

Training walks through the text in windows of 25 characters with batch size
1, carries the hidden state from one window to the next (cut from the graph
between windows: truncated backpropagation through time), clips every
gradient element to [-5, 5] and takes an Adagrad step with learning rate 0.1.
As in the original, the smoothed loss is ``0.999 * smooth + 0.001 * loss``
and a 200-character sample is printed every 100 iterations (drawn from
softmax(logits / --temperature), 1 as in the original; ``--top-k K`` draws only
among the K most probable characters).

``--batch-size N`` trains N windows at once, each reading its own stretch of
the text with its own carried state (the loss is still that of one window:
summed over its characters, averaged over the windows). With N = 1, the
default, this is the original program; with N = 32 the same model sees 32
times as much text per step for little more time per step, which is how the
full run in EXAMPLES.md reaches its held-out target.

Unlike the original, the last 10% of the text (``tr.data.split_text(ids,
val_fraction=0.1)``) is held out and the trained model's per-character loss on
it is reported as ``val_nats_per_char`` (ln(vocab size) is chance), so the
number says how well the model predicts text it never trained on; char-lstm
and an n-gram model report theirs on the same split.

Data: ``--corpus shakespeare`` (the default: tinyshakespeare, shipped with the
package, the lectures' corpus), ``--corpus stdlib`` (1,000,000 characters of
the Python standard library's source, an analogue of the lecture's Linux
source) or ``--data PATH`` (any UTF-8 text file; not with ``--corpus``). The
vocabulary and the held-out part always come from the whole text; ``--quick``
trains on the first 60,000 characters of the training part only.
"""
from __future__ import annotations

import math

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn import examples_support as support
from tinygrad_rnn import examples_text as texts
from tinygrad_rnn import nn, optim
from tinygrad_rnn.data import CharVocab, batchify, split_text
from tinygrad_rnn.nn.utils import clip_grad_value_, detach_state

QUICK_TRAIN_CHARS = 60_000  # --quick trains on this many characters of the training part


def build_parser():
    parser = support.example_parser(__file__, __doc__)
    texts.add_corpus_flags(parser)
    parser.add_argument("--iters", type=support.positive_int, default=None,
                        help="training iterations (default 1000000, --quick 1500)")
    parser.add_argument("--hidden", type=support.positive_int, default=100, help="hidden units (default 100)")
    parser.add_argument("--seq-len", type=support.positive_int, default=25,
                        help="characters per training window (default 25)")
    parser.add_argument("--batch-size", type=support.positive_int, default=1,
                        help="parallel windows per step, each reading its own stretch of the text with its own "
                             "carried state (default 1, as in the original); the loss is summed over each "
                             "window's characters and averaged over the windows")
    parser.add_argument("--lr", type=float, default=0.1, help="Adagrad learning rate (default 0.1)")
    parser.add_argument("--clip", type=float, default=5.0, help="clip gradient elements to [-clip, clip] (default 5)")
    parser.add_argument("--sample-every", type=support.positive_int, default=100,
                        help="print a sample every N iterations (default 100)")
    parser.add_argument("--sample-length", type=support.positive_int, default=200,
                        help="characters per printed sample (default 200)")
    texts.add_sampling_flags(parser, temperature=1.0)
    parser.add_argument("--eval-every", type=support.positive_int, default=None,
                        help="measure the held-out loss every N iterations (default: 20 times per run)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="held-out fraction of the text (default 0.1)")
    return parser


class MinCharRNN(nn.Module):
    """One-hot characters → tanh RNN → linear read-out to next-character logits."""

    def __init__(self, vocab_size, hidden_size):
        super().__init__()
        self.vocab_size = vocab_size
        self.rnn = nn.RNN(vocab_size, hidden_size)
        self.head = nn.Linear(hidden_size, vocab_size)
        # min-char-rnn's initialisation: small Gaussian weights, zero biases.
        for name, p in self.named_parameters():
            if "weight" in name:
                nn.init.normal_(p, 0.0, 0.01)
            else:
                nn.init.zeros_(p)

    def forward(self, ids, h=None):
        """``ids`` (T, B) int → logits (T, B, vocab) and the last hidden state (1, B, hidden)."""
        x = F.one_hot(ids, self.vocab_size).float()
        out, h = self.rnn(x, h)
        return self.head(out), h


@tr.no_grad()
def sample(model, h, seed_id, length, rng, device, temperature=1.0, top_k=None) -> list[int]:
    """Draw ``length`` characters from the model, starting from state ``h`` and character ``seed_id``
    (each from softmax(logits / temperature), among the ``top_k`` most probable when given)."""
    ids, current = [], seed_id
    for _ in range(length):
        logits, h = model(tr.tensor([[current]], device=device), h)
        current = texts.sample_next(logits.reshape(-1), rng, temperature, top_k)
        ids.append(current)
    return ids


def main(argv=None) -> dict:
    run = support.start(build_parser(), argv)
    args, device = run.args, run.device
    iters = args.iters or (1_500 if run.quick else 1_000_000)
    eval_every = args.eval_every or max(1, iters // 20)
    if not 0 < args.val_fraction < 1:
        raise SystemExit(f"min-char-rnn: --val-fraction must be in (0, 1), got {args.val_fraction}")

    text, corpus = texts.load_corpus(args)
    vocab = CharVocab.from_text(text)
    train_ids, val_ids = split_text(vocab.encode(text), val_fraction=args.val_fraction)
    if run.quick:
        train_ids = train_ids[:QUICK_TRAIN_CHARS]
    V, T, B = len(vocab), args.seq_len, args.batch_size
    if len(train_ids) // B <= T + 1:
        raise SystemExit(f"min-char-rnn: the training text has {len(train_ids)} characters, too few for "
                         f"--batch-size {B} windows of --seq-len + 2 = {T + 2}")
    if len(val_ids) < 2:
        raise SystemExit(f"min-char-rnn: the held-out text has {len(val_ids)} character, too few to measure a loss "
                         "on (2 needed): use a longer text or a larger --val-fraction")
    streams = batchify(train_ids, B)  # (steps, B): column j is the j-th stretch of the text
    print(f"data: {corpus}, {len(text):,} characters, {V} unique; train {len(train_ids):,}"
          f"{' (--quick)' if run.quick else ''}, held out {len(val_ids):,}")

    model = MinCharRNN(V, args.hidden).to(device)
    optimizer = optim.Adagrad(model.parameters(), lr=args.lr)
    chance = math.log(V)
    smooth_loss = chance * T  # the loss of a uniform guess over one window
    smooth_curve, eval_curve = [], []
    samples = []
    position, h = 0, None
    graph_loss = None

    bar = run.progress(range(1, iters + 1), desc="train", unit="iter")
    for it in bar:
        if position + T + 1 >= len(streams):
            position, h = 0, None  # back to the start of the text with a fresh memory
        inputs = tr.tensor(streams[position:position + T], device=device)
        targets = tr.tensor(streams[position + 1:position + T + 1].reshape(-1), device=device)
        logits, h = model(inputs, detach_state(h))
        loss = F.cross_entropy(logits.reshape(T * B, V), targets, reduction="sum")
        if B > 1:
            loss = loss / B  # the loss of one window, as with batch size 1
        if graph_loss is None:
            graph_loss = loss
            run.graph(loss, "graph", mode="folded", model=model)
        optimizer.zero_grad()
        loss.backward()
        clip_grad_value_(model.parameters(), args.clip)
        optimizer.step()

        smooth_loss = smooth_loss * 0.999 + run.check_loss(loss, it) * 0.001
        position += T
        if it % 10 == 0 or it == iters:
            smooth_curve.append((it, smooth_loss / T))
            bar.set_postfix(loss=f"{smooth_loss:.2f}", per_char=f"{smooth_loss / T:.3f}")
        if it % args.sample_every == 0:
            first_window = h[:, :1]  # sample from the state of the first window
            text_sample = vocab.decode(sample(model, first_window, int(streams[position, 0]), args.sample_length,
                                              run.rng, device, args.temperature, args.top_k))
            samples.append(text_sample)
            bar.write(f"---- iter {it}, smoothed loss {smooth_loss:.2f} ----\n{text_sample}\n----")
        if it % eval_every == 0 or it == iters:
            eval_curve.append((it, support.char_model_loss(model, val_ids, device)))

    final_val = eval_curve[-1][1]
    checkpoint = run.path("checkpoint.npz")
    tr.save({"model": model.state_dict(), "vocab": vocab.to_dict(),
             "config": {"hidden": args.hidden, "seq_len": T, "batch_size": B, "iters": iters, "corpus": corpus}},
            checkpoint)

    fig, ax = support.figure()
    ax.plot(*zip(*smooth_curve), label="smoothed training loss")
    ax.plot(*zip(*eval_curve), "o-", label="held-out loss")
    ax.axhline(chance, color="grey", linestyle=":", label=f"chance ln({V})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("nats per character")
    ax.set_title("min-char-rnn")
    ax.legend()
    run.save_figure(fig, "loss.png")

    return run.finish({
        "val_nats_per_char": final_val,
        "held_out_loss": final_val,
        "chance_loss": chance,
        "smooth_loss_per_char": smooth_loss / T,
        "iters": iters,
        "vocab_size": V,
        "corpus": corpus,
        "corpus_chars": len(text),
        "val_fraction": args.val_fraction,
        "batch_size": B,
        "train_chars": len(train_ids),
        "held_out_chars": len(val_ids),
        "held_out_curve": [v for _, v in eval_curve],
        "loss_curve": [v for _, v in smooth_curve],
        "temperature": args.temperature,
        "top_k": args.top_k,
        "last_sample": samples[-1] if samples else "",
    })


if __name__ == "__main__":
    main()
