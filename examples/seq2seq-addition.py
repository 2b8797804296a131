"""Sequence to sequence: an encoder-decoder (LSTM or GRU, with or without attention) learns "535+61" -> "596".

The encoder reads the question one character at a time; the decoder writes
the answer one character at a time, starting from a start token::

    encoder:  k_1..k_S, state = RNN(Embedding(question))
    decoder:  s_0 = state,  y_0 = "_"
              c_t = Attention(s_{t-1}, k_1..k_S)          (Bahdanau; --attention)
              s_t = Cell([Embedding(y_{t-1}); c_t], s_{t-1})
              p_t = softmax(Linear([s_t; c_t]))
    loss      = mean_t cross_entropy(p_t, answer_t)

Without attention the whole question must squeeze through the encoder's last
state and c_t is left out. The questions have different lengths ("5+3" is 3
characters, "535+61" 6): the encoder reads them *packed*
(``pack_padded_sequence``), so it computes no padding and its last state is
each question's state at its own last character; the keys come back padded
(``pad_packed_sequence``) and a mask made from the lengths keeps the
attention off the padding. During training the decoder is fed the true
previous character with probability ``--teacher-forcing`` and its own
(greedy) guess otherwise, a coin flipped per sum and character; with
``--scheduled-sampling`` that probability falls linearly over the training
steps from ``--teacher-forcing`` (default 1) at the first step to
``--teacher-forcing-floor`` (default 0) at the last, the linear decay of
Bengio et al. (2015). Evaluation decodes greedily from the decoder's own
guesses (an answer ends at its first space, the end token) and counts a sum
as right only if every character is (exact match), on sums whose operand
pairs never appeared in training; ``--beam K`` also decodes with a beam of K
hypotheses (``tr.nn.utils.beam_search``, ranked by probability: length
penalty 0 unless ``--length-penalty``) and reports both.

Exposure bias: a decoder trained only on true previous characters never sees
its own mistakes in training. metrics.json holds its per-character accuracy
when it reads the true previous characters (``teacher_forced_token_accuracy``)
and when it reads its own guesses (``free_running_token_accuracy``; the exact
match above is free-running too), overall and per answer position. (A
teacher-forced exact match would say nothing new: a decoder right at every
step under teacher forcing writes the same answer free-running.)

``--reverse`` (on by default) feeds the question backwards, as Sutskever et
al. (2014) did with sentences. Here it matters for a reason of its own:
reading "535+61" left to right, the encoder meets the first "5" before it can
know whether it is a hundreds or a tens digit, so the keys the attention
looks up do not say which digit is which; read from the end, every digit has
already seen the digits to its right and "knows" its place value. With
``--no-reverse`` the same model stays around 96-97 % exact match on held-out
sums. ``--bidirectional`` reads the question both ways (half the hidden
units each), so every key knows what lies on both sides of it, as in
Bahdanau et al. (2015).

Outputs: the model graph, the loss/accuracy curves, and an attention heatmap
(which question character each answer character looked at).
"""
from __future__ import annotations

import argparse
import math

import numpy as np

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn import autograd
from tinygrad_rnn import examples_parallel as parallel
from tinygrad_rnn import examples_support as support
from tinygrad_rnn import nn, optim
from tinygrad_rnn.data import make_addition_data, split_addition_data
from tinygrad_rnn.nn.utils import beam_search, clip_grad_norm_
from tinygrad_rnn.nn.utils.rnn import lengths_to_padding_mask, pack_padded_sequence, pad_packed_sequence


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def build_parser():
    parser = support.example_parser(__file__, __doc__)
    parser.add_argument("--cell", choices=["lstm", "gru"], default="lstm", help="recurrent cell (default lstm)")
    parser.add_argument("--attention", action=argparse.BooleanOptionalAction, default=True,
                        help="use additive (Bahdanau) attention (default: on)")
    parser.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=False,
                        help="read the question in both directions, as Bahdanau et al. do (default: off)")
    parser.add_argument("--reverse", action=argparse.BooleanOptionalAction, default=True,
                        help="feed the question to the encoder backwards (default: on; --no-reverse to turn off)")
    parser.add_argument("--teacher-forcing", type=_ratio, default=1.0,
                        help="probability of feeding the true previous character in training (default 1.0); "
                             "with --scheduled-sampling, the probability at the first step")
    parser.add_argument("--scheduled-sampling", action="store_true",
                        help="lower the teacher forcing probability linearly over training, from --teacher-forcing "
                             "to --teacher-forcing-floor (Bengio et al. 2015)")
    parser.add_argument("--teacher-forcing-floor", type=_ratio, default=None,
                        help="the probability at the last step with --scheduled-sampling (default 0)")
    parser.add_argument("--beam", type=support.positive_int, default=None,
                        help="also decode the held-out sums with a beam search of this width (default: greedy only)")
    parser.add_argument("--length-penalty", type=float, default=0.0,
                        help="beam search ranking: log-probability / length ** this (default 0: probability alone)")
    parser.add_argument("--digits", type=support.positive_int, default=None,
                        help="most digits per operand (default 3, --quick 2)")
    parser.add_argument("--examples", type=support.positive_int, default=None,
                        help="number of distinct sums, train + test (default 50000, --quick 2400)")
    parser.add_argument("--test-fraction", type=float, default=0.1, help="held-out fraction (default 0.1)")
    parser.add_argument("--hidden", type=support.positive_int, default=None, help="hidden units (default 128, --quick 64)")
    parser.add_argument("--embed", type=support.positive_int, default=16, help="embedding size (default 16)")
    parser.add_argument("--epochs", type=support.positive_int, default=None, help="training epochs (default 30, --quick 8)")
    parser.add_argument("--batch-size", type=support.positive_int, default=128, help="batch size (default 128)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 3e-3, --quick 1e-2)")
    parser.add_argument("--lr-decay", type=float, default=0.9,
                        help="multiply the learning rate by this after every epoch (default 0.9)")
    parser.add_argument("--clip", type=float, default=1.0, help="maximum global gradient norm (default 1)")
    parallel.add_flag(parser)
    return parser


class Seq2Seq(nn.Module):
    """An RNN encoder and a step-by-step RNN decoder, optionally with additive attention."""

    def __init__(self, vocab_size, cell="lstm", embed=16, hidden=128, attention=True, bidirectional=False):
        super().__init__()
        if bidirectional and hidden % 2:
            raise ValueError(f"Seq2Seq: a bidirectional encoder needs an even hidden size, got {hidden}")
        self.cell_type, self.use_attention, self.bidirectional = cell, attention, bidirectional
        self.embedding = nn.Embedding(vocab_size, embed)
        # Bidirectional: hidden/2 units per direction, so keys and the joined final state have `hidden` features.
        self.encoder = (nn.LSTM if cell == "lstm" else nn.GRU)(embed, hidden // 2 if bidirectional else hidden,
                                                              batch_first=True, bidirectional=bidirectional)
        context = hidden if attention else 0
        self.decoder = (nn.LSTMCell if cell == "lstm" else nn.GRUCell)(embed + context, hidden)
        if attention:
            self.attention = nn.AdditiveAttention(hidden, hidden, hidden)
        self.head = nn.Linear(hidden + context, vocab_size)

    def encode(self, question, lengths):
        """``question`` (B, S) ids, each question's characters first and then padding, and its ``lengths``
        (B,) → keys (B, S, H) (zero on the padding) and the decoder's first state (the encoder's state at
        each question's last character, both directions' joined when bidirectional)."""
        packed = pack_padded_sequence(self.embedding(question), lengths, batch_first=True, enforce_sorted=False)
        keys, state = self.encoder(packed)
        keys, _ = pad_packed_sequence(keys, batch_first=True, total_length=question.shape[1])
        states = state if self.cell_type == "lstm" else (state,)
        first = tuple(tr.cat([s[0], s[1]], dim=1) if self.bidirectional else s[0] for s in states)
        return keys, (first if self.cell_type == "lstm" else first[0])

    def step(self, previous, state, keys, mask=None):
        """One decoder step: previous ids (B,) → logits (B, vocab), new state, attention weights (B, S) or None.
        ``mask`` (B, S) is True at the keys of real characters (the attention ignores the others)."""
        x = self.embedding(previous)
        h = state[0] if self.cell_type == "lstm" else state
        weights = None
        if self.use_attention:
            context, weights = self.attention(h, keys, mask=mask)
            x = tr.cat([x, context], dim=1)
        state = self.decoder(x, state)
        h = state[0] if self.cell_type == "lstm" else state
        out = tr.cat([h, context], dim=1) if self.use_attention else h
        return self.head(out), state, weights


def packed_questions(data):
    """The encoder's input with the padding moved to the end: (ids (n, S), lengths (n,)). Questions are
    left-aligned and padded with spaces, so a reversed one (``data.x`` with ``--reverse``) starts with
    its padding; here every row holds its characters first, as ``pack_padded_sequence`` expects."""
    lengths = np.array([len(q.rstrip()) for q in data.questions], dtype=np.int64)
    width = data.x.shape[1]
    start = width - lengths if data.reverse_input else np.zeros_like(lengths)
    columns = (np.arange(width)[None, :] + start[:, None]) % width  # rotate the padding to the end
    return np.take_along_axis(data.x, columns, axis=1), lengths


def decode(model, question, lengths, first_input, steps, device, targets=None, teacher_forcing=1.0, rng=None):
    """Run the decoder for ``steps`` steps on questions (B, S) of ``lengths`` (B,) (see
    :func:`packed_questions`). With ``targets``, feed the true previous character with probability
    ``teacher_forcing`` (else the greedy guess); without, decode greedily.
    Returns the logits per step, the guessed ids (B, steps) and the attention weights (B, steps, S) or None."""
    keys, state = model.encode(tr.tensor(question, device=device), lengths)
    # the attention's mask: True at each question's characters, False on its padding
    mask = ~lengths_to_padding_mask(lengths, max_len=question.shape[1], device=device)
    previous = np.full(len(question), first_input, dtype=np.int64)
    logits, guesses, weights = [], [], []
    for t in range(steps):
        with autograd.scope(step=t):  # lets the graph renderer fold the decoder's steps into one
            step_logits, state, step_weights = model.step(tr.tensor(previous, device=device), state, keys, mask)
        guess = step_logits.argmax(-1).numpy()
        logits.append(step_logits)
        guesses.append(guess)
        if step_weights is not None:
            weights.append(step_weights.detach().numpy())
        if targets is not None and teacher_forcing >= 1.0:
            previous = targets[:, t]
        elif targets is not None and teacher_forcing > 0.0:
            previous = np.where(rng.random(len(question)) < teacher_forcing, targets[:, t], guess)
        else:
            previous = guess
    attention = np.stack(weights, axis=1) if weights else None
    return logits, np.stack(guesses, axis=1), attention


def teacher_forcing_schedule(start, floor, total_steps):
    """The probability of feeding the true previous character at each training step: falling linearly from
    ``start`` to ``floor`` (scheduled sampling); constant when ``floor`` is None."""
    if floor is None:
        return np.full(total_steps, start)
    return np.linspace(start, floor, total_steps) if total_steps > 1 else np.array([start])


def end_id(data):
    """The id of the space that ends (and pads) every answer: the decoders' end token."""
    return int(data.vocab.encode(" ")[0])


def stop_at_end(guesses, end):
    """``guesses`` (n, steps) with everything after each row's first end token replaced by the end token: an
    answer ends there, as in the beam search (so a beam of width 1 decodes exactly as greedy decoding)."""
    ended = np.cumsum(guesses == end, axis=1) > 0
    return np.where(ended, end, guesses)


@tr.no_grad()
def evaluate(model, data, device, batch_size=1000):
    """(exact-match accuracy, per-character accuracy, guesses, attention) with greedy decoding, each answer
    ending at its first space."""
    model.eval()
    guesses, attention = [], []
    question, lengths = packed_questions(data)
    for lo in range(0, len(data), batch_size):
        rows = slice(lo, lo + batch_size)
        _, guess, weights = decode(model, question[rows], lengths[rows], data.start_id, data.y.shape[1], device)
        guesses.append(guess)
        if weights is not None:
            attention.append(weights)
    model.train()
    guesses = stop_at_end(np.concatenate(guesses), end_id(data))
    correct = guesses == data.y
    return (float(correct.all(axis=1).mean()), float(correct.mean()), guesses,
            np.concatenate(attention) if attention else None)


@tr.no_grad()
def teacher_forced_accuracy(model, data, device, batch_size=1000):
    """Per-character accuracy, overall and per answer position, when the decoder reads the true previous
    characters (as in training with full teacher forcing) instead of its own guesses."""
    model.eval()
    question, lengths = packed_questions(data)
    guesses = np.concatenate([
        decode(model, question[lo:lo + batch_size], lengths[lo:lo + batch_size], data.start_id, data.y.shape[1],
               device, targets=data.y[lo:lo + batch_size])[1]
        for lo in range(0, len(data), batch_size)])
    model.train()
    correct = guesses == data.y
    return float(correct.mean()), correct.mean(axis=0).tolist()


@tr.no_grad()
def beam_decode(model, data, device, beam_size, length_penalty=0.0, batch_size=500):
    """The best answer of a beam search of width ``beam_size`` for every sum (n, steps): the space that pads
    the answers is the end token, so a finished answer comes back padded as in ``data.y``."""
    model.eval()
    question, lengths = packed_questions(data)
    steps, end = data.y.shape[1], end_id(data)
    answers = np.full(data.y.shape, end, dtype=np.int64)
    for lo in range(0, len(data), batch_size):
        q, n = question[lo:lo + batch_size], lengths[lo:lo + batch_size]
        keys, state = model.encode(tr.tensor(q, device=device), n)
        mask = ~lengths_to_padding_mask(n, max_len=q.shape[1], device=device)
        rows = np.repeat(np.arange(len(q)), beam_size)  # the search's row b * beam_size + k belongs to sum b
        keys, mask = keys[rows], mask[rows]

        def step(previous, state):
            logits, state, _ = model.step(previous, state, keys, mask)
            return F.log_softmax(logits, dim=-1), state

        best = beam_search(step, state, data.start_id, end, beam_size, steps, length_penalty)
        sequences = best.sequences.numpy()[:, 0]
        answers[lo:lo + len(q), :sequences.shape[1]] = sequences
    model.train()
    return answers


def plot_attention(run, data, guesses, attention, count=4):
    """A heatmap per example: rows are answer characters, columns question characters as the encoder read them."""
    count = min(count, len(data))
    fig, axes = support.figure(1, count, figsize=(3.2 * count, 3.0), squeeze=False)
    question, lengths = packed_questions(data)
    for i, ax in enumerate(axes[0]):
        source = data.vocab.decode(question[i, :lengths[i]])
        answer = data.vocab.decode(guesses[i])
        ax.imshow(attention[i][:, :lengths[i]], cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(source)), [repr(ch)[1:-1] if ch != " " else "␣" for ch in source])
        ax.set_yticks(range(len(answer)), [ch if ch != " " else "␣" for ch in answer])
        ax.set_title(f"{data.questions[i].strip()} = {answer.strip()}", fontsize=10)
        ax.set_xlabel("question as the encoder read it" + (" (reversed)" if data.reverse_input else ""))
    axes[0][0].set_ylabel("answer (decoder output)")
    return run.save_figure(fig, "attention.png")


def main(argv=None) -> dict:
    run = support.start(build_parser(), argv)
    args, device, quick = run.args, run.device, run.quick
    digits = args.digits or (2 if quick else 3)
    n_examples = args.examples or (2400 if quick else 50000)
    hidden = args.hidden or (64 if quick else 128)
    epochs = args.epochs or (8 if quick else 30)
    lr = args.lr or (1e-2 if quick else 3e-3)
    floor = None
    if args.scheduled_sampling:
        floor = 0.0 if args.teacher_forcing_floor is None else args.teacher_forcing_floor
        if floor > args.teacher_forcing:
            run.error(f"--teacher-forcing-floor ({floor}) must not exceed --teacher-forcing "
                      f"({args.teacher_forcing}): scheduled sampling lowers the probability from one to the other")
    elif args.teacher_forcing_floor is not None:
        run.error("--teacher-forcing-floor only applies with --scheduled-sampling")
    if not 0 < args.test_fraction < 1:
        raise SystemExit(f"seq2seq-addition: --test-fraction must be in (0, 1), got {args.test_fraction}")
    try:
        data = make_addition_data(n_examples, max_digits=digits, seed=run.seed, reverse_input=args.reverse)
    except ValueError as exc:
        raise SystemExit(f"seq2seq-addition: {exc}") from None
    train, test = split_addition_data(data, test_fraction=args.test_fraction)
    V, steps = len(data.vocab), data.y.shape[1]
    print(f"data: {len(train)} training sums, {len(test)} held-out sums of up to {digits}-digit numbers, "
          f"e.g. {train.questions[0]!r} -> {train.answers[0]!r}")

    if args.bidirectional and hidden % 2:
        raise SystemExit(f"seq2seq-addition: --bidirectional needs an even --hidden, got {hidden}")
    model = Seq2Seq(V, args.cell, args.embed, hidden, args.attention, args.bidirectional).to(device)
    dp = parallel.start(run)  # --distributed: each process trains on its share of every batch
    optimizer = optim.Adam(dp.wrap(model).parameters(), lr=lr)  # DDP averages the gradients in backward()
    scheduler = optim.lr_scheduler.ExponentialLR(optimizer, gamma=args.lr_decay)  # stepped after every epoch
    n_params = sum(p.numel() for p in model.parameters())
    batch_size = dp.global_batch(args.batch_size)
    batches = math.ceil(len(train) / batch_size)
    losses, test_curve, forced_curve = [], [], []
    forcing = teacher_forcing_schedule(args.teacher_forcing, floor, epochs * batches)
    train_question, train_lengths = packed_questions(train)
    bar = run.progress(range(epochs * batches), desc="train")
    graph_done = False
    for step in bar:
        epoch, b = divmod(step, batches)
        if b == 0:
            order = run.rng.permutation(len(train))
        rows = order[b * batch_size:(b + 1) * batch_size]
        mine = dp.shard(rows)
        targets = train.y[mine]
        logits, _, _ = decode(model, train_question[mine], train_lengths[mine], train.start_id, steps, device,
                              targets=targets, teacher_forcing=float(forcing[step]), rng=run.rng)
        total = F.cross_entropy(tr.stack(logits, dim=1).reshape(-1, V), tr.tensor(targets.reshape(-1), device=device),
                                reduction="sum")
        loss = dp.mean(total, len(rows) * steps)  # the mean over the whole batch, whatever this process's share
        if not graph_done:
            run.graph(loss, "graph", mode="folded", model=model)
            graph_done = True
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        losses.append(run.check_loss(loss))
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", epoch=epoch + 1)
        if b == batches - 1:
            exact, per_char, _, _ = evaluate(model, test, device)
            test_curve.append(exact)
            forced_curve.append(teacher_forced_accuracy(model, test, device)[0])
            bar.write(f"epoch {epoch + 1}: loss {np.mean(losses[-batches:]):.4f}, "
                      f"held-out exact match {exact:.2%}, per character {per_char:.2%} "
                      f"(teacher-forced {forced_curve[-1]:.2%}), teacher forcing {forcing[step]:.2f}")
            scheduler.step()
    dp.finish()

    exact, per_char, guesses, attention = evaluate(model, test, device)
    train_exact, _, _, _ = evaluate(model, train.subset(slice(0, min(len(train), 5000))), device)
    forced_accuracy, forced_by_position = teacher_forced_accuracy(model, test, device)
    free_by_position = (guesses == test.y).mean(axis=0).tolist()
    print(f"exposure bias: per-character accuracy {forced_accuracy:.2%} reading the true previous characters, "
          f"{per_char:.2%} reading its own guesses (exact match {exact:.2%})")
    beam = {}
    if args.beam is not None:
        beam_answers = beam_decode(model, test, device, args.beam, args.length_penalty)
        beam_correct = beam_answers == test.y
        beam = {"beam_size": args.beam, "length_penalty": args.length_penalty,
                "beam_exact_match": float(beam_correct.all(axis=1).mean()),
                "beam_per_char_accuracy": float(beam_correct.mean())}
        print(f"held-out exact match: greedy {exact:.2%}, beam search (width {args.beam}) "
              f"{beam['beam_exact_match']:.2%}")
    examples = [f"{test.questions[i].strip()} = {test.vocab.decode(guesses[i]).strip()} "
                f"({'ok' if (guesses[i] == test.y[i]).all() else 'expected ' + test.answers[i].strip()})"
                for i in range(min(8, len(test)))]
    print("held-out examples:\n  " + "\n  ".join(examples))

    fig, (ax_loss, ax_acc) = support.figure(1, 2, figsize=(10, 3.6))
    ax_loss.plot(losses)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("cross-entropy (nats/char)")
    ax_loss.set_yscale("log")
    ax_loss.set_title("training loss")
    ax_acc.plot(range(1, len(test_curve) + 1), test_curve, "o-", label="exact match, greedy (free-running)")
    ax_acc.plot(range(1, len(forced_curve) + 1), forced_curve, "s--", label="per character, teacher-forced")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("held-out accuracy")
    ax_acc.set_ylim(0, 1)
    ax_acc.legend(loc="lower right", fontsize=8)
    ax_acc.set_title("unseen sums")
    run.save_figure(fig, "training.png")
    if attention is not None:
        plot_attention(run, test, guesses, attention)
    checkpoint = run.path("checkpoint.npz")
    if dp.main:
        tr.save({"model": model.state_dict(), "vocab": data.vocab.to_dict(),
                 "config": {"cell": args.cell, "attention": args.attention, "reverse": args.reverse,
                            "bidirectional": args.bidirectional,
                            "hidden": hidden, "embed": args.embed, "digits": digits}}, checkpoint)

    return run.finish({
        "exact_match": exact,
        "per_char_accuracy": per_char,
        **beam,
        "teacher_forced_token_accuracy": forced_accuracy,
        "free_running_token_accuracy": per_char,
        "exposure_bias_gap": forced_accuracy - per_char,
        "teacher_forced_accuracy_by_position": forced_by_position,
        "free_running_accuracy_by_position": free_by_position,
        "teacher_forced_curve": forced_curve,
        "train_exact_match": train_exact,
        "chance_per_char": 1.0 / V,
        "test_curve": test_curve,
        "losses": losses,
        "final_loss": float(np.mean(losses[-batches:])),
        "parameters": n_params,
        "cell": args.cell,
        "attention": args.attention,
        "reverse": args.reverse,
        "bidirectional": args.bidirectional,
        "teacher_forcing": args.teacher_forcing,
        "scheduled_sampling": args.scheduled_sampling,
        "teacher_forcing_final": float(forcing[-1]),
        "digits": digits,
        "train_size": len(train),
        "test_size": len(test),
        "examples": examples,
    })


if __name__ == "__main__":
    main()
