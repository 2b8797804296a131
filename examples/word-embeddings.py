"""word2vec: skip-gram (or CBOW) word vectors with negative sampling, their nearest neighbours and analogies.

Two embedding tables, the word vectors ``v`` and the context vectors ``u``,
both (vocabulary, --dim), are trained so that a word's vector scores its real
neighbours in the text above random "noise" words::

    skip-gram:  score(w, c) = u_c · v_w    for a word w and each context word c within --window of it
    CBOW:       score(w, c) = u_w · mean(v_c over the window)   (--cbow: the context predicts the word)
    loss = -log σ(score(positive)) - Σ_k log σ(-score(noise_k))      (F.binary_cross_entropy_with_logits)

with --negatives noise words per pair drawn from the unigram distribution
raised to the power 0.75. As in word2vec's C code: words seen fewer than
--min-count times are dropped, frequent words are subsampled (each occurrence
kept with probability (√(f/t) + 1)·t/f, t = --subsample), every center word
gets its own window size drawn from 1..--window, ``v`` starts uniform in
±0.5/dim and ``u`` at zero, and the learning rate falls linearly to zero.
The optimiser is Adam on mini-batches of pairs (the gradients are dense: the
whole table is updated each step); ``--scale-grad-by-freq`` divides each
row's gradient by the number of times the word occurs in the batch
(``nn.Embedding(scale_grad_by_freq=True)``).

After training it prints the 5 nearest neighbours (cosine similarity of
``v``) of the --words, solves the --analogy queries a:b:c:d as
"v_a − v_b + v_c ≈ ?" (unit vectors, a, b and c themselves excluded, as
word2vec's compute-accuracy does) with the rank of the expected d among all
words, draws the loss curve and a 2-D PCA (NumPy SVD) of the chosen words and
their neighbours, and writes the vectors in word2vec's text format to
``OUT/vectors.txt`` (``tr.data.load_word_vectors`` reads it back, and
``who-speaks --vectors`` uses it).

Data: the bundled tiny-shakespeare without its ``NAME:`` speaker lines
(194k words, 3,251 of them seen at least 5 times; the speaker lines would
put each speech's first words next to its speaker's name, which leaks the
labels of ``who-speaks``), or ``--data PATH``, any UTF-8 text.

What to expect on a corpus this small (word2vec was made for billions of
words), from ``tinygrad-rnn run word-embeddings`` (10 epochs, seed 0, 102 s
on a shared 2-core VM): the neighbours are mostly sensible, by topic and role
in the plays more than by dictionary meaning (blood: purple, shed, stain'd;
night: noon, storms, morrow; king: henry, vi, regal, throne; lord: dorset,
hastings, catesby), with cosine similarities of only ~0.5. Analogies of form
work (his:he:she:her and thee:thou:i:me rank 1; brother:him:her:sister 2,
father:he:she:mother 3, son:he:she:daughter 4), the classic
king:man:woman:queen does not (rank 32 of 3,251), nor lord:man:woman:lady
(197) or art:thou:you:are (272). ``--quick`` (one epoch, 50 dimensions, ~4 s)
shows the loss falling; its neighbours are rougher (king: plantagenet, vi,
henry; lord: buckingham, william, catesby; but love: sooner, much, thyself).
"""
from __future__ import annotations

import numpy as np

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn import examples_support as support
from tinygrad_rnn import nn, optim
from tinygrad_rnn.data import (WordVocab, cbow_windows, load_text, load_tinyshakespeare,
                               negative_sampling_distribution, parse_speeches, sample_negatives, save_word_vectors,
                               skipgram_pairs, subsample, subsample_keep_probability, tokenize)

DEFAULT_WORDS = ["king", "love", "lord", "good", "night", "death", "father", "sword", "heaven", "blood"]
#: a − b + c should be d
DEFAULT_ANALOGIES = ["king:man:woman:queen", "lord:man:woman:lady", "father:he:she:mother", "son:he:she:daughter",
                     "brother:him:her:sister", "his:he:she:her", "thee:thou:i:me", "art:thou:you:are"]
NEIGHBOURS = 5


def build_parser():
    parser = support.example_parser(__file__, __doc__)
    parser.add_argument("--data", type=support.text_file, default=None,
                        help="a UTF-8 text file to train on (default: the bundled tiny-shakespeare)")
    parser.add_argument("--cbow", action="store_true", help="train CBOW (the context predicts the word) "
                        "instead of skip-gram (the word predicts its context)")
    model = parser.add_argument_group("model")
    model.add_argument("--dim", type=support.positive_int, default=None, help="vector size (default 100, --quick 50)")
    model.add_argument("--window", type=support.positive_int, default=5,
                       help="largest distance of a context word (default 5)")
    model.add_argument("--negatives", type=support.positive_int, default=5, help="noise words per pair (default 5)")
    model.add_argument("--min-count", type=support.positive_int, default=5,
                       help="drop words seen fewer times than this (default 5)")
    model.add_argument("--subsample", type=float, default=1e-3,
                       help="word2vec's subsampling threshold t in (0, 1), or 0 for none (default 1e-3)")
    training = parser.add_argument_group("training")
    training.add_argument("--epochs", type=support.positive_int, default=None,
                          help="passes over the text (default 10, --quick 1)")
    training.add_argument("--batch-size", type=support.positive_int, default=None,
                          help="pairs (CBOW: windows) per step (default 512, --quick 1024)")
    training.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 3e-3, --quick 1e-2)")
    training.add_argument("--scale-grad-by-freq", action="store_true",
                          help="divide each embedding row's gradient by its word's count in the batch")
    training.add_argument("--max-words", type=support.positive_int, default=None,
                          help="train on the first N words of the text only (default: all)")
    report = parser.add_argument_group("report")
    report.add_argument("--words", nargs="+", default=None, metavar="WORD",
                        help=f"words whose nearest neighbours are shown (default: {' '.join(DEFAULT_WORDS)})")
    report.add_argument("--analogy", nargs="+", default=None, metavar="A:B:C[:D]",
                        help="analogy queries a - b + c (= d, whose rank is reported) "
                             f"(default: {' '.join(DEFAULT_ANALOGIES)})")
    return parser


class Word2Vec(nn.Module):
    """The word vectors ``v`` (``self.words``) and context vectors ``u`` (``self.contexts``) of word2vec.

    ``forward(inputs, candidates, mask)`` scores each row's candidates (the true word first, then the noise
    words): skip-gram's inputs are center words (B,), CBOW's are windows (B, 2·window) averaged over ``mask``.
    """

    def __init__(self, vocab_size, dim, scale_grad_by_freq=False):
        super().__init__()
        self.words = nn.Embedding(vocab_size, dim, scale_grad_by_freq=scale_grad_by_freq)
        self.contexts = nn.Embedding(vocab_size, dim, scale_grad_by_freq=scale_grad_by_freq)
        nn.init.uniform_(self.words.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.contexts.weight)

    def forward(self, inputs, candidates, mask=None):
        v = self.words(inputs)  # (B, dim) or, for CBOW, (B, 2·window, dim)
        if mask is not None:
            v = (v * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        return (self.contexts(candidates) * v.unsqueeze(1)).sum(-1)  # (B, 1 + negatives)


def parse_analogy(run, text):
    """'a:b:c' or 'a:b:c:d' → the list of its words (lower-cased, as the tokenizer makes them)."""
    parts = text.lower().split(":")
    if len(parts) not in (3, 4) or not all(parts):
        run.error(f"--analogy: expected A:B:C or A:B:C:D (a - b + c = d), got {text!r}")
    return parts


def choose_queries(run, vocab, args):
    """The words and analogies to report: given ones must be in the vocabulary (else a one-line error);
    of the defaults, those whose words are."""
    where = f"the vocabulary ({len(vocab)} words seen at least --min-count={args.min_count} times)"
    if args.words is not None:
        words = [w.lower() for w in args.words]
        for word in words:
            if word not in vocab or word == vocab.unk_token:
                run.error(f"--words: {word!r} is not in {where}")
    else:
        words = [w for w in DEFAULT_WORDS if w in vocab] or [vocab.words[i] for i in range(20, min(26, len(vocab)))]
    if args.analogy is not None:
        analogies = [parse_analogy(run, text) for text in args.analogy]
        for parts in analogies:
            missing = [w for w in parts if w not in vocab or w == vocab.unk_token]
            if missing:
                run.error(f"--analogy: {missing[0]!r} of {':'.join(parts)!r} is not in {where}")
    else:
        analogies = [q.split(":") for q in DEFAULT_ANALOGIES if all(w in vocab for w in q.split(":"))]
    return words, analogies


def load_corpus(run, args):
    """Tokens of the text, the vocabulary, and the text as ids of known words (rare words dropped)."""
    if args.data:
        text = load_text(args.data)
    else:  # the speeches without their "NAME:" lines: who-speaks --vectors must not get the speakers from them
        text = "\n\n".join(speech.text for speech in parse_speeches(load_tinyshakespeare()))
    tokens = tokenize(text)
    tokens = tokens[:args.max_words] if args.max_words else tokens
    try:
        vocab = WordVocab.from_tokens(tokens, min_count=args.min_count)
    except ValueError as exc:
        run.error(f"--min-count: {exc}")
    ids = vocab.encode(tokens)
    ids = ids[ids != vocab.unk_index]
    if len(vocab) < 3 or len(ids) < 2 * args.window + 2:
        run.error(f"the text has {len(ids)} words seen at least --min-count={args.min_count} times, {len(vocab) - 1} "
                  f"distinct: too few to train on (expected at least {2 * args.window + 2} words and 2 distinct)")
    return tokens, vocab, ids


def epoch_examples(ids, keep, args, rng):
    """One epoch's training examples, shuffled: (inputs, true words, mask or None), subsampled afresh."""
    kept = subsample(ids, keep, rng) if keep is not None else ids
    if len(kept) < 2:
        kept = ids
    if args.cbow:
        contexts, mask, centers = cbow_windows(kept, args.window, rng)
        order = rng.permutation(len(centers))
        return contexts[order], centers[order], mask[order].astype(np.float32)
    centers, targets = skipgram_pairs(kept, args.window, rng)
    order = rng.permutation(len(centers))
    return centers[order], targets[order], None


def unit_rows(matrix):
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def nearest(unit, vocab, query, exclude, k=NEIGHBOURS):
    """The k words whose unit vectors have the largest cosine with ``query``, without ``exclude`` and
    the unknown token; returns (words, similarities) and the similarity of every word."""
    scores = unit @ (query / max(np.linalg.norm(query), 1e-12))
    scores[[vocab.unk_index, *exclude]] = -np.inf
    best = [i for i in np.argsort(-scores, kind="stable")[:k] if np.isfinite(scores[i])]
    return [(vocab.words[i], float(scores[i])) for i in best], scores


def analogy(unit, vocab, parts):
    """a − b + c over unit vectors: the top 5 answers and, for a:b:c:d, the rank of d (1 = best)."""
    a, b, c = (vocab.index(w) for w in parts[:3])
    top, scores = nearest(unit, vocab, unit[a] - unit[b] + unit[c], exclude=[a, b, c])
    result = {"query": f"{parts[0]} - {parts[1]} + {parts[2]}", "top": [w for w, _ in top]}
    if len(parts) == 4:
        d = vocab.index(parts[3])
        result.update(expected=parts[3], rank=int((scores > scores[d]).sum()) + 1 if np.isfinite(scores[d]) else None)
    return result


def pca_2d(matrix):
    """Rows of ``matrix`` projected on their first two principal components (NumPy SVD of the centred rows)."""
    centred = matrix - matrix.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    explained = singular[:2] ** 2 / max(float((singular ** 2).sum()), 1e-12)
    return centred @ vt[:2].T, explained


def plot(run, losses, steps_per_epoch, unit, vocab, words, neighbours):
    fig, (ax_loss, ax_pca) = support.figure(1, 2, figsize=(13, 5.2))
    ax_loss.plot(np.arange(1, len(losses) + 1), losses, lw=0.6, alpha=0.5, label="per step")
    window = max(1, min(50, len(losses) // 10))
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    ax_loss.plot(np.arange(window, len(losses) + 1), smooth, label=f"mean of {window} steps")
    for epoch in range(1, len(losses) // steps_per_epoch):
        ax_loss.axvline(epoch * steps_per_epoch, color="grey", lw=0.5, ls=":")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("negative-sampling loss (nats per example)")
    ax_loss.legend()
    groups = [[w] + [n for n, _ in neighbours[w] if n not in words] for w in words]
    labels = list(dict.fromkeys(w for group in groups for w in group))
    points, explained = pca_2d(unit[[vocab.index(w) for w in labels]])
    position = dict(zip(labels, points))
    colours = [f"C{i % 10}" for i in range(len(groups))]
    for group, colour in zip(groups, colours):
        for rank, word in enumerate(group):
            x, y = position[word]
            ax_pca.scatter(x, y, color=colour, s=40 if rank == 0 else 12)
            ax_pca.annotate(word, (x, y), fontsize=10 if rank == 0 else 7, color=colour,
                            fontweight="bold" if rank == 0 else "normal", xytext=(3, 3), textcoords="offset points")
    ax_pca.set_xlabel(f"PC 1 ({explained[0]:.0%} of the variance)")
    ax_pca.set_ylabel(f"PC 2 ({explained[1]:.0%})")
    ax_pca.set_title("the chosen words (bold) and their nearest neighbours")
    run.save_figure(fig, "embeddings.png")


def main(argv=None) -> dict:
    run = support.start(build_parser(), argv)
    args, device, quick, rng = run.args, run.device, run.quick, run.rng
    if not (args.subsample == 0 or 0 < args.subsample < 1):
        run.error(f"argument --subsample: expected a threshold in (0, 1) or 0 for none, got {args.subsample!r}")
    dim = args.dim or (50 if quick else 100)
    epochs = args.epochs or (1 if quick else 10)
    batch_size = args.batch_size or (1024 if quick else 512)
    lr = args.lr or (1e-2 if quick else 3e-3)
    tokens, vocab, ids = load_corpus(run, args)
    words, analogies = choose_queries(run, vocab, args)
    counts = vocab.counts.copy()
    counts[vocab.unk_index] = 0  # the dropped rare words are never noise
    noise = negative_sampling_distribution(counts)
    keep = subsample_keep_probability(counts, args.subsample) if args.subsample else None
    print(f"data: {len(tokens)} words, {len(ids)} of the {len(vocab) - 1} words seen at least {args.min_count} times; "
          f"{'CBOW' if args.cbow else 'skip-gram'}, window {args.window}, {args.negatives} negatives, dim {dim}")

    model = Word2Vec(len(vocab), dim, args.scale_grad_by_freq).to(device)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    # the number of steps per epoch varies a little with subsampling: estimated from the expected pair count
    expected_words = float(keep[ids].sum()) if keep is not None else float(len(ids))
    pairs_per_word = 1 if args.cbow else (args.window + 1)  # 2 sides x mean window (window + 1) / 2
    total_steps = max(1, int(epochs * expected_words * pairs_per_word / batch_size))
    scheduler = optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(1e-4, 1 - step / total_steps))
    labels = np.zeros((batch_size, 1 + args.negatives), dtype=np.float32)
    labels[:, 0] = 1
    losses, epoch_losses, graph_done, examples_seen = [], [], False, 0
    for epoch in range(epochs):
        inputs, targets, mask = epoch_examples(ids, keep, args, rng)
        steps = max(1, len(targets) // batch_size)  # the last partial batch is dropped
        bar = run.progress(range(steps), desc=f"epoch {epoch + 1}/{epochs}")
        for step in bar:
            rows = slice(step * batch_size, (step + 1) * batch_size)
            true = targets[rows]
            candidates = np.concatenate([true[:, None], sample_negatives(noise, (len(true), args.negatives), rng)], 1)
            scores = model(tr.tensor(inputs[rows], device=device), tr.tensor(candidates, device=device),
                           None if mask is None else tr.tensor(mask[rows], device=device))
            target = tr.tensor(labels[:len(true)], device=device)
            loss = F.binary_cross_entropy_with_logits(scores, target, reduction="sum") / len(true)
            if not graph_done:
                run.graph(loss, "graph", model=model)
                graph_done = True
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(run.check_loss(loss))
            examples_seen += len(true)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        bar.close()
        epoch_losses.append(float(np.mean(losses[-steps:])))

    vectors = model.words.weight.numpy()
    unit = unit_rows(vectors)
    neighbours = {w: nearest(unit, vocab, unit[vocab.index(w)], exclude=[vocab.index(w)])[0] for w in words}
    print(f"\n{NEIGHBOURS} nearest neighbours (cosine similarity):")
    for word, found in neighbours.items():
        print(f"  {word:>10}: " + ", ".join(f"{n} {s:.2f}" for n, s in found))
    results = [analogy(unit, vocab, parts) for parts in analogies]
    if results:
        print("analogies (a - b + c; rank of the expected word among all words):")
    for result in results:
        rank = f"  {result['expected']}: rank {result['rank']}" if "expected" in result else ""
        print(f"  {result['query']:>26} = {', '.join(result['top'][:3])}{rank}")
    plot(run, losses, steps, unit, vocab, words, neighbours)
    words_out = [w for w in vocab.words if w != vocab.unk_token]
    save_word_vectors(run.path("vectors.txt"), words_out, vectors[[vocab.index(w) for w in words_out]])
    ranks = [r["rank"] for r in results if r.get("rank") is not None]
    return run.finish({
        "final_loss": float(np.mean(losses[-max(1, min(50, len(losses))):])),
        "epoch_losses": epoch_losses,
        "losses": losses,
        "neighbours": {w: [[n, round(s, 4)] for n, s in found] for w, found in neighbours.items()},
        "analogies": results,
        "analogies_top1": sum(r == 1 for r in ranks),
        "analogies_top10": sum(r <= 10 for r in ranks),
        "model": "cbow" if args.cbow else "skipgram",
        "vocab_size": len(vocab) - 1,
        "corpus_words": len(tokens),
        "training_words": int(len(ids)),
        "examples_seen": examples_seen,
        "dim": dim,
        "window": args.window,
        "negatives": args.negatives,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "scale_grad_by_freq": args.scale_grad_by_freq,
    })


if __name__ == "__main__":
    main()
