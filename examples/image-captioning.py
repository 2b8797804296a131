"""Image captioning: a CNN reads a scene of 2-4 handwritten digits and an LSTM writes "seven two nine".

The scenes are scikit-learn's scanned 8x8 digits composed on a 12 x 40
canvas (``tinygrad_rnn.data.digit_scenes``: digit j in the j-th of four
10-column slots, at a random offset inside it and a random height; training and test
scenes are built from disjoint pools of scans, so every test digit is a scan
the model never saw). The caption is the digits in words, left to right::

    encoder:  F = CNN(scene) + position       (B, N = 3 x 10 regions, C)
    Show and Tell (default):
              h_0, c_0 = tanh(Linear(flatten(F)))
              h_t = LSTMCell(Embedding(y_{t-1}), h_{t-1})
              p_t = softmax(Linear(h_t))
    Show, Attend and Tell (--attention):
              h_0, c_0 = tanh(Linear(mean_regions(F)))
              a_t, z_t = AdditiveAttention(h_{t-1}, F)    (weights over the regions, context)
              h_t = LSTMCell([Embedding(y_{t-1}); z_t], h_{t-1})
              p_t = softmax(Linear([h_t; z_t]))
    loss      = mean over the caption's words and <end> of cross_entropy(p_t, y_t)

Training uses teacher forcing (y_{t-1} is the true previous word, ``<start>``
first). The captions are then written greedily (the most likely word at each
step, until ``<end>``) and, with ``--beam K``, also with a beam search of
width K (``tr.nn.utils.beam_search``, ranked by probability unless
``--length-penalty``). A caption is counted right only if it is the exact
caption, word for word, of the right length (exact match); the per-word
accuracy counts the caption's words written right at their place. Both are
reported overall and by the number of digits in the scene (2, 3, 4), on the
test scenes. Without attention the whole scene must squeeze through the
decoder's first state; with it, the decoder looks at one digit per word,
which the attention plot shows (one panel per generated word).

Outputs: metrics.json, the model graph, training.png (loss and test exact
match per epoch), captions.png (test scenes and their captions) and, with
``--attention``, attention.png.

Test exact match, seed 0 (``OPENBLAS_NUM_THREADS=1 tinygrad-rnn run image-captioning [--attention] --beam 3``:
20,000 training and 3,000 test scenes, 10 epochs; 3.0 and 1.7 min on a shared 2-core VM, 2026-12-05):
with attention 95.1 % (2 / 3 / 4 digits: 97.4 / 93.7 / 94.1 %; per word 98.3 %), without
89.0 % (95.2 / 89.7 / 81.8 %; per word 96.1 %). A beam of 3 changes little: 95.1 % and 89.0 %
(the decoder is sure of its words). Use ``OPENBLAS_NUM_THREADS=1`` on a small busy machine: the
matrices are small, and OpenBLAS threads waiting for a core slowed training here up to 25 times.
"""
from __future__ import annotations

import argparse

import numpy as np

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn import autograd
from tinygrad_rnn import examples_support as support
from tinygrad_rnn import examples_vision as vision
from tinygrad_rnn import nn, optim
from tinygrad_rnn.data.digit_scenes import make_digit_scenes
from tinygrad_rnn.nn.utils import beam_search, clip_grad_norm_


def build_parser():
    parser = support.example_parser(__file__, __doc__)
    parser.add_argument("--attention", action=argparse.BooleanOptionalAction, default=False,
                        help="soft attention over the CNN's regions, Show, Attend and Tell (default: off)")
    parser.add_argument("--beam", type=support.positive_int, default=None,
                        help="also caption the test scenes with a beam search of this width (default: greedy only)")
    parser.add_argument("--length-penalty", type=float, default=0.0,
                        help="beam search ranking: log-probability / length ** this (default 0: probability alone)")
    parser.add_argument("--train-scenes", type=support.positive_int, default=None,
                        help="training scenes (default 20000, --quick 3200)")
    parser.add_argument("--test-scenes", type=support.positive_int, default=None,
                        help="test scenes (default 3000, --quick 400)")
    parser.add_argument("--hidden", type=support.positive_int, default=128,
                        help="LSTM hidden units (default 128)")
    parser.add_argument("--embed", type=support.positive_int, default=32, help="word embedding size (default 32)")
    parser.add_argument("--epochs", type=support.positive_int, default=None,
                        help="training epochs (default 10, --quick 4)")
    parser.add_argument("--batch-size", type=support.positive_int, default=32, help="batch size (default 32)")
    parser.add_argument("--lr", type=float, default=None,
                        help="Adam learning rate (default 2e-3 with --attention, 1e-3 without)")
    parser.add_argument("--lr-decay", type=float, default=0.8,
                        help="multiply the learning rate by this after every epoch (default 0.8)")
    parser.add_argument("--clip", type=float, default=5.0, help="maximum global gradient norm (default 5)")
    return parser


class Captioner(nn.Module):
    """The CNN encoder and a step-by-step LSTM decoder, with or without attention over the regions."""

    def __init__(self, vocab_size, height, width, hidden=128, embed=32, attention=False):
        super().__init__()
        self.use_attention = attention
        self.encoder = vision.ConvEncoder(height, width)
        C, N = self.encoder.channels, self.encoder.regions
        summary = C if attention else N * C
        self.embedding = nn.Embedding(vocab_size, embed)
        self.init_h = nn.Linear(summary, hidden)
        self.init_c = nn.Linear(summary, hidden)
        context = C if attention else 0
        if attention:
            self.attention = nn.AdditiveAttention(hidden, C, hidden)
        self.decoder = nn.LSTMCell(embed + context, hidden)
        self.head = nn.Linear(hidden + context, vocab_size)

    def encode(self, images):
        """Scenes (B, H, W) → region features (B, N, C) and the decoder's first state (h_0, c_0)."""
        features = self.encoder(images)
        summary = features.mean(dim=1) if self.use_attention else features.reshape(features.shape[0], -1)
        return features, (self.init_h(summary).tanh(), self.init_c(summary).tanh())

    def step(self, previous, state, features):
        """One word: previous ids (B,) → logits (B, V), the new state, attention weights (B, N) or None."""
        x = self.embedding(previous)
        weights = None
        if self.use_attention:
            context, weights = self.attention(state[0], features)
            x = tr.cat([x, context], dim=1)
        state = self.decoder(x, state)
        out = tr.cat([state[0], context], dim=1) if self.use_attention else state[0]
        return self.head(out), state, weights


def decode(model, images, start_id, steps, device, inputs=None):
    """Run the decoder ``steps`` steps over scenes (B, H, W): fed ``inputs`` (B, steps) (teacher forcing) when
    given, else its own greedy guesses. Returns the logits per step, the guesses (B, steps) and the attention
    weights (B, steps, N) or None."""
    features, state = model.encode(vision.images_tensor(images, device))
    previous = np.full(len(images), start_id, dtype=np.int64)
    logits, guesses, weights = [], [], []
    for t in range(steps):
        with autograd.scope(step=t):  # lets the graph renderer fold the decoder's steps into one
            step_logits, state, step_weights = model.step(tr.tensor(previous, device=device), state, features)
        guess = step_logits.argmax(-1).numpy()
        logits.append(step_logits)
        guesses.append(guess)
        if step_weights is not None:
            weights.append(step_weights.detach().numpy())
        previous = inputs[:, t + 1] if inputs is not None and t + 1 < steps else guess
    return logits, np.stack(guesses, axis=1), (np.stack(weights, axis=1) if weights else None)


@tr.no_grad()
def caption_greedy(model, scenes, device, batch_size=500):
    """Greedy captions (n, T) of every scene and the attention weights (n, T, N) or None."""
    model.eval()
    steps = scenes.targets.shape[1]
    guesses, attention = [], []
    for lo in range(0, len(scenes), batch_size):
        _, guess, weights = decode(model, scenes.images[lo:lo + batch_size], scenes.start_id, steps, device)
        guesses.append(guess)
        if weights is not None:
            attention.append(weights)
    model.train()
    return np.concatenate(guesses), (np.concatenate(attention) if attention else None)


@tr.no_grad()
def caption_beam(model, scenes, device, beam_size, length_penalty=0.0, batch_size=250):
    """The best caption of a beam search of width ``beam_size`` for every scene (n, T)."""
    model.eval()
    steps = scenes.targets.shape[1]
    captions = np.full(scenes.targets.shape, scenes.pad_id, dtype=np.int64)
    for lo in range(0, len(scenes), batch_size):
        images = scenes.images[lo:lo + batch_size]
        features, state = model.encode(vision.images_tensor(images, device))
        features = features[np.repeat(np.arange(len(images)), beam_size)]  # row b * K + k belongs to scene b

        def step(previous, state):
            logits, state, _ = model.step(previous, state, features)
            return F.log_softmax(logits, dim=-1), state

        best = beam_search(step, state, scenes.start_id, scenes.end_id, beam_size, steps, length_penalty)
        sequences = best.sequences.numpy()[:, 0]
        captions[lo:lo + len(images), :sequences.shape[1]] = sequences
    model.train()
    return captions


def words_of(scenes, ids):
    """The generated words up to and including the first ``<end>``."""
    words = []
    for word in scenes.vocab.decode(np.asarray(ids)):
        words.append(word)
        if word == "<end>":
            break
    return words


def caption_text(scenes, ids):
    """A generated caption as text: its words before ``<end>``."""
    return " ".join(w for w in words_of(scenes, ids) if w != "<end>")


def showcase_rows(scenes, count=4):
    """Test scenes to draw: the first ones of 4, 3 and 2 digits, then the next 4-digit ones."""
    rows = [int(np.flatnonzero(scenes.lengths == k)[0]) for k in (4, 3, 2) if (scenes.lengths == k).any()]
    rows += [int(i) for i in np.flatnonzero(scenes.lengths == scenes.lengths.max()) if i not in rows]
    return rows[:count]


def main(argv=None) -> dict:
    run = support.start(build_parser(), argv)
    args, device, quick = run.args, run.device, run.quick
    n_train = args.train_scenes or (3200 if quick else 20000)
    n_test = args.test_scenes or (400 if quick else 3000)
    hidden = args.hidden
    epochs = args.epochs or (4 if quick else 10)
    lr = args.lr or (2e-3 if args.attention else 1e-3)
    if args.length_penalty and args.beam is None:
        run.error("--length-penalty only applies with --beam")
    train, test = make_digit_scenes(n_train, n_test, seed=run.seed)
    V, steps = len(train.vocab), train.targets.shape[1]
    height, width = train.images.shape[1:]
    print(f"data: {len(train)} training scenes, {len(test)} test scenes ({height} x {width} pixels, 2-4 digits), "
          f"e.g. {train.captions[0]!r}")

    model = Captioner(V, height, width, hidden, args.embed, args.attention).to(device)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    scheduler = optim.lr_scheduler.ExponentialLR(optimizer, gamma=args.lr_decay)
    n_params = sum(p.numel() for p in model.parameters())
    batches = vision.scene_batches(len(train), args.batch_size, None)
    losses, test_curve = [], []
    bar = run.progress(range(epochs * len(batches)), desc="train")
    for step in bar:
        epoch, b = divmod(step, len(batches))
        if b == 0:
            batches = vision.scene_batches(len(train), args.batch_size, run.rng)
        rows = batches[b]
        targets = train.targets[rows]
        logits, _, _ = decode(model, train.images[rows], train.start_id, steps, device,
                              inputs=train.decoder_inputs[rows])
        loss = F.cross_entropy(tr.stack(logits, dim=1).reshape(-1, V), tr.tensor(targets.reshape(-1), device=device),
                               ignore_index=train.pad_id)
        if step == 0:
            run.graph(loss, "graph", mode="folded", model=model)
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        losses.append(run.check_loss(loss))
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", epoch=epoch + 1)
        if b == len(batches) - 1:
            guesses, _ = caption_greedy(model, test, device)
            test_curve.append(vision.caption_metrics(guesses, test)["exact_match"])
            bar.write(f"epoch {epoch + 1}: loss {np.mean(losses[-len(batches):]):.4f}, "
                      f"test exact match {test_curve[-1]:.2%}")
            scheduler.step()

    guesses, attention = caption_greedy(model, test, device)
    metrics = vision.caption_metrics(guesses, test)
    train_part = train.subset(slice(0, min(len(train), 3000)))
    train_exact = vision.caption_metrics(caption_greedy(model, train_part, device)[0], train_part)["exact_match"]
    by_digits = ", ".join(f"{k} digits {v:.2%}" for k, v in metrics["exact_match_by_digits"].items())
    print(f"test exact match (greedy): {metrics['exact_match']:.2%} ({by_digits}); "
          f"per word {metrics['word_accuracy']:.2%}")
    if args.beam is not None:
        beam = caption_beam(model, test, device, args.beam, args.length_penalty)
        metrics.update(vision.caption_metrics(beam, test, prefix="beam_"),
                       beam_size=args.beam, length_penalty=args.length_penalty)
        print(f"test exact match: greedy {metrics['exact_match']:.2%}, beam search (width {args.beam}) "
              f"{metrics['beam_exact_match']:.2%}")
    examples = []
    right = vision.clean_captions(guesses, test.end_id, test.pad_id) == test.targets
    for i in range(min(8, len(test))):
        verdict = "ok" if right[i].all() else "expected " + test.captions[i]
        examples.append(f"{caption_text(test, guesses[i])} ({verdict})")
    print("test examples:\n  " + "\n  ".join(examples))

    vision.plot_training(run, losses, {"exact match, greedy": test_curve}, "test exact match")
    shown = showcase_rows(test, count=6)
    vision.plot_attention_rows(run, "captions.png", test.images[shown], [[] for _ in shown], [[] for _ in shown],
                               model.encoder.grid, [caption_text(test, guesses[i]) for i in shown])
    if attention is not None:
        shown = showcase_rows(test, count=4)
        steps_shown = [words_of(test, guesses[i]) for i in shown]
        vision.plot_attention_rows(run, "attention.png", test.images[shown],
                                   [attention[i][:len(words)] for i, words in zip(shown, steps_shown)],
                                   steps_shown, model.encoder.grid, [f"truth: {test.captions[i]}" for i in shown])
    return run.finish({
        **metrics,
        "train_exact_match": train_exact,
        "chance_word_accuracy": 0.1,  # one digit word in ten, guessed at random
        "test_curve": test_curve,
        "losses": losses,
        "final_loss": float(np.mean(losses[-len(batches):])),
        "parameters": n_params,
        "attention": args.attention,
        "train_size": len(train),
        "test_size": len(test),
        "examples": examples,
    })


if __name__ == "__main__":
    main()
