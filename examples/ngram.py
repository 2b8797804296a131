"""Count-based language models: character and word n-grams, the baseline for the character RNNs.

No network and no gradients: each model counts which token follows which
``n - 1`` tokens in the training text (``tr.data.NGramLM``) and predicts::

    add-k:         P(w | h) = (c(h, w) + k) / (c(h) + k V)            (h: the n - 1 tokens before w)
    interpolated:  P(w | h) = sum_m lambda_m P_m(w | last m - 1 tokens of h),  lambda fitted by EM

Character models predict the next character; word models the next word token
(a word or a punctuation mark with the space before it, or a newline), a rare
word as ``<unk>`` followed by its spelling, so both cover every character and
report held-out cross-entropy in **nats per character**, the character RNNs'
loss. The text is split as theirs is: ``ids = CharVocab.from_text(text).encode(text)``,
``tr.data.split_text(ids, val_fraction=0.1)``, the last 10 % held out (word
models cut the text at the same character). Each model's ``k`` is chosen from a
grid by the loss on the last 10 % of the training text (``--k`` fixes it), the
interpolation weights by EM on that same part; the held-out text is only scored.

Data: tinyshakespeare (shipped with the package; ``--corpus stdlib`` for Python
standard-library source, as the character models take it) or ``--data PATH``
(any UTF-8 text); ``--quick`` uses the first 100,000 characters. ``--score "TEXT"``
scores sentences with every model, ``--generate N`` samples N characters from
the best character model into sample.txt; nats_per_char.png plots the table.
"""
from __future__ import annotations

import argparse
import math

import numpy as np

from tinygrad_rnn import examples_support as support
from tinygrad_rnn import examples_text
from tinygrad_rnn.data import CharVocab, NGramLM, split_text, word_tokens

QUICK_CORPUS_CHARS = 100_000
MIN_TRAIN_CHARS = 100
K_GRID = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)


def _non_negative_float(value: str) -> float:
    """argparse ``type=`` for ``--k``: a finite number >= 0."""
    number = support.finite_float(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value!r}")
    return number


def build_parser():
    parser = support.example_parser(__file__, __doc__)
    parser.description += (" The models are counts in NumPy: --device is accepted, as by every example, "
                           "but changes nothing.")
    examples_text.add_corpus_flags(parser)
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="held-out fraction at the end of the text (default 0.1, as the character RNNs)")
    parser.add_argument("--char-order", type=support.positive_int, default=3,
                        help="highest order of the character models (default 3: 1-, 2- and 3-grams)")
    parser.add_argument("--word-order", type=support.positive_int, default=3,
                        help="highest order of the word models (default 3)")
    parser.add_argument("--k", type=_non_negative_float, default=None,
                        help="add-k pseudo-count of every model (default: each model's best of "
                             f"{', '.join(f'{k:g}' for k in K_GRID)} on the last 10%% of the training text)")
    parser.add_argument("--min-count", type=support.positive_int, default=2,
                        help="word models know the words seen this often; rarer ones are <unk> + spelling "
                             "(default 2)")
    parser.add_argument("--score", action="append", default=[], metavar="TEXT",
                        help="score this text with every model (repeatable)")
    parser.add_argument("--generate", type=support.positive_int, default=None, metavar="N",
                        help="characters to sample from the best character model into sample.txt "
                             "(default 1000, --quick 200)")
    parser.add_argument("--prime", default="\n", help="text the sample starts from (default: a newline)")
    return parser


def model_specs(char_order, word_order) -> list[tuple[str, dict]]:
    """(name, NGramLM arguments) of every model of the table: add-k for orders 1..N, interpolated for 2..N."""
    specs = []
    for level, top in (("char", char_order), ("word", word_order)):
        for n in range(1, top + 1):
            specs.append((f"{level} {n}-gram add-k", dict(order=n, level=level)))
        for n in range(2, top + 1):
            specs.append((f"{level} {n}-gram interpolated", dict(order=n, level=level, interpolation="em")))
    return specs


def fit_model(spec, train_text, chars, min_count, k=None):
    """The model of ``spec`` fitted on ``train_text``, its k the given one or the grid's best on the last
    10 % of ``train_text`` (fitted on the rest); returns (model, k)."""
    if k is None:
        cut = int(round(len(train_text) * 0.9))
        losses = [NGramLM(k=c, min_count=min_count, **spec).fit(train_text[:cut], chars).nats_per_char(
            train_text[cut:]) for c in K_GRID]
        k = K_GRID[int(np.argmin(losses))]
    return NGramLM(k=k, min_count=min_count, **spec).fit(train_text, chars), k


def load(run):
    """(text, train part, held-out part, character vocabulary, corpus name), split as the character RNNs
    split it."""
    args = run.args
    text, name = examples_text.load_corpus(args)
    if run.quick:
        text = text[:QUICK_CORPUS_CHARS]
    vocab = CharVocab.from_text(text)
    train_ids, val_ids = split_text(vocab.encode(text), val_fraction=args.val_fraction)
    if len(train_ids) < MIN_TRAIN_CHARS:
        run.error(f"the text has {len(text)} characters, too few: the models need {MIN_TRAIN_CHARS} training "
                  f"characters, it has {len(train_ids)} (use a longer text or a smaller --val-fraction)")
    for flag, values in (("--score", args.score), ("--prime", [args.prime])):
        for value in values:
            unknown = sorted(set(value) - set(vocab.chars))
            if unknown:
                run.error(f"{flag}: {value!r:.60} has characters the text lacks: {''.join(unknown)[:20]!r}")
    if any(not value for value in args.score):
        run.error("--score: expected a non-empty text, got ''")
    return text, text[:len(train_ids)], text[len(train_ids):], vocab, name


def plot(run, names, train, val, uniform):
    fig, ax = support.figure(figsize=(7.5, 0.4 * len(names) + 1.5))
    y = np.arange(len(names))
    ax.barh(y - 0.2, val, height=0.4, label="held-out")
    ax.barh(y + 0.2, train, height=0.4, label="training text", alpha=0.6)
    for i, value in enumerate(val):
        ax.text(value, i - 0.2, f" {value:.3f}", va="center", fontsize=8)
    ax.axvline(uniform, color="grey", linestyle=":", label=f"uniform ln(V) = {uniform:.2f}")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("nats per character")
    ax.set_title("n-gram language models")
    ax.legend(loc="lower right", fontsize=8)
    run.save_figure(fig, "nats_per_char.png")


def main(argv=None) -> dict:
    run = support.start(build_parser(), argv)
    args = run.args
    text, train_text, val_text, vocab, corpus = load(run)
    print(f"data: {corpus}, {len(text):,} characters"
          f"{' (--quick prefix)' if run.quick else ''}, {len(vocab)} unique; train {len(train_text):,}, "
          f"held out {len(val_text):,}")

    models, rows = {}, []
    for name, spec in run.progress(model_specs(args.char_order, args.word_order), desc="fit", unit="model"):
        try:
            model, k = fit_model(spec, train_text, vocab.chars, args.min_count, args.k)
        except ValueError as exc:
            run.error(f"{name}: {exc}")
        models[name] = model
        rows.append((name, k, model.nats_per_char(train_text), model.nats_per_char(val_text)))
    uniform = math.log(len(vocab))
    print(f"\n{'model':<26} {'k':>6} {'train':>7} {'held-out':>9}   (nats per character; uniform {uniform:.3f})")
    for name, k, train_loss, val_loss in rows:
        print(f"{name:<26} {k:>6g} {train_loss:>7.4f} {val_loss:>9.4f}")

    val_loss = {name: v for name, _, _, v in rows}
    char_names = [name for name in models if name.startswith("char")]
    best_char = min(char_names, key=val_loss.get)
    scores = []
    for sentence in args.score:
        results = {name: model.score(sentence) for name, model in models.items()}
        scores.append({"text": sentence, "log_prob": {n: s.log_prob for n, s in results.items()},
                       "nats_per_char": {n: s.nats_per_char for n, s in results.items()}})
        print(f"\nscore {sentence!r} ({len(sentence)} characters): log-probability (nats) / nats per character")
        for name, result in results.items():
            print(f"  {name:<26} {result.log_prob:>10.2f} {result.nats_per_char:>8.4f}")
    length = args.generate or (200 if run.quick else 1000)
    sample = models[best_char].generate(length, rng=run.rng, prime=args.prime)
    run.write_text("sample.txt", sample)
    print(f"\nsample from {best_char}:\n{sample}")
    plot(run, [r[0] for r in rows], [r[2] for r in rows], [r[3] for r in rows], uniform)

    word = next((m for m in models.values() if m.level == "word"), None)
    known = set(word.vocab) if word is not None else set()
    val_tokens = word_tokens(val_text)
    return run.finish({
        "corpus": corpus,
        "val_loss": val_loss,
        "train_loss": {name: t for name, _, t, _ in rows},
        "k": {name: k for name, k, _, _ in rows},
        "weights": {name: m.weights.tolist() for name, m in models.items() if m.weights is not None},
        "best_model": min(val_loss, key=val_loss.get),
        "best_char_model": best_char,
        "uniform_loss": uniform,
        "vocab_size": {"char": len(vocab), "word": word.vocab_size if word is not None else None},
        "held_out_unknown_word_rate": (sum(t not in known for t in val_tokens) / max(len(val_tokens), 1)
                                       if word is not None else None),
        "scores": scores,
        "sample": sample,
        "train_chars": len(train_text),
        "val_chars": len(val_text),
    })


if __name__ == "__main__":
    main()
