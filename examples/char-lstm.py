"""char-rnn: a stacked LSTM (or GRU / RNN) character language model with truncated BPTT, then sampling.

The model reads characters through an embedding and predicts the next one::

    e_t      = Embedding(c_t)                        (--embed)
    h_t      = LSTM/GRU/RNN layers(e_t, h_{t-1})     (--layers x --hidden, dropout between layers)
    logits_t = Linear(dropout(h_t))                  (vocab size)
    loss     = mean_t cross_entropy(logits_t, c_{t+1})   (nats/char; perplexity = e^loss)

The training text is cut into ``--batch-size`` long parallel streams; each
step reads the next ``--seq-len`` characters of every stream and carries the
hidden state over from the previous step, cut from its graph
(``detach_state``): truncated backpropagation through time. Gradients are
clipped by their global norm (``clip_grad_norm_``); the optimiser is Adam or
RMSprop. The last ``--val-fraction`` of the text (``tr.data.split_text(ids,
val_fraction=0.1)``) is the validation set; the best model so far is
checkpointed with its vocabulary after every evaluation. ``val_nats_per_char``
in metrics.json is the validation loss of the weights training ended with (no
choice made on the validation set; ``val_loss`` is the best evaluation's, the
checkpoint's), comparable with min-char-rnn's and an n-gram model's on the same
split. Samples are drawn from softmax(logits / --temperature), among the
``--top-k`` most probable characters when given.

Two modes::

    tinygrad-rnn run char-lstm [--corpus NAME | --data FILE] [options]   # train (or --resume CHECKPOINT)
    tinygrad-rnn run char-lstm sample --checkpoint FILE --prime "ROMEO:" --temperature 0.8 --top-k 5

Data: ``--corpus shakespeare`` (the default: tinyshakespeare, shipped with the
package, the lectures' corpus), ``--corpus stdlib`` (1,000,000 characters of
the Python standard library's source) or ``--data PATH`` (any UTF-8 text file;
not with ``--corpus``). The vocabulary and the validation set always come from
the whole text; ``--quick`` trains on the first 40,000 characters of the
training part only.

Interpretable cells (Karpathy, Johnson and Fei-Fei, "Visualizing and understanding recurrent
networks"): after training, the checkpointed model reads the first ``--cells-chars`` characters of
the validation text one at a time from a zero state, keeping its last layer's LSTM cell state
``c_t`` after each (``h_t`` for ``--cell gru/rnn``, which have no ``c``). For each feature of a
character -- inside quotes (``"`` in prose; ``"`` and ``'`` with Python's string and comment syntax
for ``--corpus stdlib`` or a ``--data`` file ending in ``.py``), its position in the line and the
indentation of its line (``tinygrad_rnn.examples_cells``) -- the unit with the largest |Pearson
correlation| is drawn with ``tr.viz.text_activations`` in ``cells.html`` (each unit scaled by its
largest |value|; red positive, blue negative) and its correlation goes to metrics.json (``cells``).
"""
from __future__ import annotations

import math
import time

import numpy as np

import tinygrad_rnn as tr
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn import examples_cells as cells
from tinygrad_rnn import examples_export as exporting
from tinygrad_rnn import examples_parallel as parallel
from tinygrad_rnn import examples_support as support
from tinygrad_rnn import examples_text as texts
from tinygrad_rnn import nn, optim
from tinygrad_rnn.data import CharVocab, batchify, split_text, tbptt_batches
from tinygrad_rnn.nn.utils import clip_grad_norm_, detach_state

QUICK_TRAIN_CHARS = 40_000  # --quick trains on this many characters of the training part
CELLS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def build_parser():
    parser = support.example_parser(__file__, __doc__)
    parser.add_argument("mode", nargs="?", choices=["train", "sample"], default="train",
                        help="train (default) or sample from a checkpoint")
    texts.add_corpus_flags(parser)
    model = parser.add_argument_group("model")
    model.add_argument("--cell", choices=sorted(CELLS), default="lstm", help="recurrent cell (default lstm)")
    model.add_argument("--layers", type=support.positive_int, default=None, help="stacked layers (default 2, --quick 1)")
    model.add_argument("--hidden", type=support.positive_int, default=None, help="hidden units (default 256, --quick 64)")
    model.add_argument("--embed", type=support.positive_int, default=None, help="embedding size (default 64, --quick 32)")
    model.add_argument("--dropout", type=float, default=None, help="dropout probability (default 0.1, --quick 0)")
    training = parser.add_argument_group("training")
    training.add_argument("--epochs", type=float, default=None,
                          help="passes over the training text, may be fractional (default 15, --quick 1)")
    training.add_argument("--batch-size", type=support.positive_int, default=None,
                          help="parallel text streams (default 32, --quick 16)")
    training.add_argument("--seq-len", type=support.positive_int, default=None,
                          help="characters per truncated-BPTT step (default 100, --quick 32)")
    training.add_argument("--optim", choices=["adam", "rmsprop"], default="adam", help="optimiser (default adam)")
    training.add_argument("--lr", type=float, default=None, help="learning rate (default 2e-3, --quick 1e-2)")
    training.add_argument("--lr-decay", type=float, default=0.9,
                          help="multiply the learning rate by this after every epoch (default 0.9)")
    training.add_argument("--clip", type=float, default=5.0, help="maximum global gradient norm (default 5)")
    training.add_argument("--val-fraction", type=float, default=0.1, help="validation fraction of the text (default 0.1)")
    training.add_argument("--eval-every", type=support.positive_int, default=None,
                          help="evaluate and checkpoint every N steps (default: 4 times per epoch)")
    training.add_argument("--time-limit", type=float, default=None,
                          help="stop training after this many minutes (evaluating and checkpointing first)")
    training.add_argument("--resume", type=support.checkpoint_file, default=None,
                          help="continue training from this checkpoint (its model settings and vocabulary win)")
    training.add_argument("--cells-chars", type=support.positive_int, default=3000,
                          help="validation characters read for cells.html (default 3000)")
    sampling = parser.add_argument_group("sampling")
    sampling.add_argument("--checkpoint", type=support.checkpoint_file, default=None,
                          help="checkpoint to sample from in sample mode (default OUT/checkpoint.npz)")
    sampling.add_argument("--prime", default=None, help="text the sample starts from (default: a newline)")
    texts.add_sampling_flags(sampling, temperature=0.8)
    sampling.add_argument("--sample-length", type=support.positive_int, default=None,
                          help="characters to sample (default 1000, --quick 200)")
    parallel.add_flag(parser)
    exporting.add_flag(parser)
    return parser


class CharModel(nn.Module):
    """Embedding → stacked recurrent layers → dropout → linear read-out (time-major, PyTorch layout)."""

    def __init__(self, vocab_size, cell="lstm", embed=64, hidden=256, layers=2, dropout=0.0):
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, embed)
        recurrent = getattr(nn, CELLS[cell])
        self.rnn = recurrent(embed, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, ids, state=None):
        """``ids`` (T, B) int64 → logits (T, B, vocab) and the new recurrent state."""
        out, state = self.rnn(self.embed(ids), state)
        return self.head(self.drop(out)), state


def model_config(args, quick) -> dict:
    """Model settings from the flags, with quick-mode or full-run defaults."""
    def pick(value, full, fast):
        return value if value is not None else (fast if quick else full)

    return {
        "cell": args.cell,
        "layers": pick(args.layers, 2, 1),
        "hidden": pick(args.hidden, 256, 64),
        "embed": pick(args.embed, 64, 32),
        "dropout": pick(args.dropout, 0.1, 0.0),
    }


def build_model(vocab_size, config, device) -> CharModel:
    return CharModel(vocab_size, config["cell"], config["embed"], config["hidden"], config["layers"],
                     config["dropout"]).to(device)


def load_checkpoint(run, path):
    """(model, vocab, checkpoint dict) from a file written by this example (another file ends the run)."""
    checkpoint = run.load_checkpoint(path, required=("model", "vocab", "config", "optim", "step"))
    vocab = CharVocab.from_dict(checkpoint["vocab"])
    model = build_model(len(vocab), checkpoint["config"], run.device)
    model.load_state_dict(checkpoint["model"])
    return model, vocab, checkpoint


@tr.no_grad()
def generate(model, vocab, prime, length, temperature, rng, device, top_k=None) -> str:
    """``prime`` followed by ``length`` sampled characters (softmax(logits / temperature), among the
    ``top_k`` most probable characters when given)."""
    if temperature <= 0:
        raise SystemExit(f"char-lstm: --temperature must be > 0, got {temperature}")
    if not prime:
        raise SystemExit("char-lstm: --prime must have at least one character")
    missing = sorted({ch for ch in prime if ch not in vocab})
    if missing:
        raise SystemExit(f"char-lstm: --prime has characters the model never saw: {''.join(missing)!r}")
    was_training = model.training
    model.eval()
    ids = vocab.encode(prime)
    logits, state = model(tr.tensor(ids.reshape(-1, 1), device=device))
    last = logits[-1, 0]
    out = []
    for _ in range(length):
        current = texts.sample_next(last, rng, temperature, top_k)
        out.append(current)
        logits, state = model(tr.tensor([[current]], device=device), state)
        last = logits[0, 0]
    model.train(was_training)
    return prime + vocab.decode(out)


def sample_mode(run) -> dict:
    args = run.args
    path = args.checkpoint or run.out / "checkpoint.npz"
    model, vocab, checkpoint = load_checkpoint(run, path)
    length = args.sample_length or (200 if run.quick else 1000)
    text = generate(model, vocab, args.prime if args.prime is not None else "\n", length, args.temperature, run.rng,
                    run.device, args.top_k)
    print(text)
    run.write_text("sample.txt", text)
    return run.finish({"mode": "sample", "checkpoint": str(path), "sample": text,
                       "val_loss": checkpoint.get("val_loss"), "vocab_size": len(vocab),
                       "temperature": args.temperature, "top_k": args.top_k})


def unigram_loss(train_ids, val_ids, vocab_size) -> float:
    """Cross-entropy of the validation text under the training text's character frequencies
    (add-one smoothed): the loss of a model that ignores context."""
    counts = np.bincount(train_ids, minlength=vocab_size) + 1.0
    logp = np.log(counts / counts.sum())
    return float(-logp[val_ids].mean())


def is_python_text(args, corpus) -> bool:
    """Whether the text is Python source (quotes then follow Python's syntax, ``'`` included)."""
    return corpus == "stdlib" or (args.data is not None and str(args.data).lower().endswith(".py"))


def interpretable_cells(run, model, vocab, val_ids, corpus) -> dict:
    """Write cells.html: the start of the validation text coloured by the unit most correlated with
    each feature (``examples_cells.FEATURES``); returns what metrics.json records under ``cells``."""
    ids = val_ids[:run.args.cells_chars]
    text = vocab.decode(ids)
    python = is_python_text(run.args, corpus)
    states = cells.recurrent_states(model.embed, model.rnn, ids, run.device)
    chosen = cells.best_units(states, cells.features(text, python))
    lstm = isinstance(model.rnn, nn.LSTM)
    kind = "cell state c_t" if lstm else "hidden state h_t"
    rows, labels = [], []
    for pick in chosen:
        if pick["unit"] is None:
            print(f"cells: {pick['feature']}: constant over these {len(text)} characters, no unit chosen")
            continue
        column = states[:, pick["unit"]]
        rows.append(column / max(float(np.abs(column).max()), 1e-12))
        labels.append(f"{pick['feature']}: unit {pick['unit']}, r = {pick['correlation']:+.3f}")
        print(f"cells: {labels[-1]}")
    title = (f"char-rnn {type(model.rnn).__name__} {model.rnn.hidden_size}: last layer's {kind}, the first "
             f"{len(text):,} validation characters; each unit scaled by its largest |value|")
    if rows and run.writes:  # rank 0 of a --distributed run writes, as for every other file
        tr.viz.text_activations(text, np.stack(rows), title=title, labels=labels).save(run.path("cells.html"))
    return {"state": "c" if lstm else "h", "chars": len(text),
            "quotes": "python" if python else "prose", "units": chosen}


def make_optimizer(name, params, lr):
    if name == "adam":
        return optim.Adam(params, lr=lr)
    return optim.RMSprop(params, lr=lr)


def train_mode(run) -> dict:
    args, device, quick = run.args, run.device, run.quick
    if not 0 < args.val_fraction < 1:
        raise SystemExit(f"char-lstm: --val-fraction must be in (0, 1), got {args.val_fraction}")
    text, corpus = texts.load_corpus(args)
    resumed = None
    if args.resume:
        model, vocab, resumed = load_checkpoint(run, args.resume)
        config = resumed["config"]
        unknown = sorted({ch for ch in text if ch not in vocab})
        if unknown:
            raise SystemExit(f"char-lstm: the text has characters the checkpoint's vocabulary lacks: "
                             f"{''.join(unknown)[:40]!r}")
    else:
        vocab = CharVocab.from_text(text)
        config = model_config(args, quick)
        model = build_model(len(vocab), config, device)
    V = len(vocab)
    train_ids, val_ids = split_text(vocab.encode(text), val_fraction=args.val_fraction)
    if quick:
        train_ids = train_ids[:QUICK_TRAIN_CHARS]
    batch_size = args.batch_size or (16 if quick else 32)
    seq_len = args.seq_len or (32 if quick else 100)
    lr = args.lr or (1e-2 if quick else 2e-3)
    epochs = args.epochs if args.epochs is not None else (1.0 if quick else 15.0)
    if len(train_ids) < 2 * batch_size or len(val_ids) < 4:
        raise SystemExit(f"char-lstm: the text has {len(text)} characters, too few: training needs 2 for each of "
                         f"--batch-size {batch_size} streams (it has {len(train_ids)}) and validation 4 "
                         f"(it has {len(val_ids)})")
    dp = parallel.start(run)  # --distributed: each process trains on its share of the streams
    streams = dp.global_batch(batch_size)
    if len(train_ids) < 2 * streams:
        raise SystemExit(f"char-lstm: the text has {len(train_ids)} training characters, too few for "
                         f"{streams} streams ({dp.world} processes x --batch-size {batch_size})")
    batched = batchify(train_ids, streams)
    mine = dp.shard(np.arange(streams))  # this process's streams (all of them in one process)
    steps_per_epoch = math.ceil((batched.shape[0] - 1) / seq_len)
    total_steps = max(1, int(round(epochs * steps_per_epoch)))
    eval_every = args.eval_every or max(1, steps_per_epoch // 4)
    n_params = sum(p.numel() for p in model.parameters())
    baseline = unigram_loss(train_ids, val_ids, V)
    print(f"data: {corpus}, {len(text):,} characters, {V} unique; train {len(train_ids):,}"
          f"{' (--quick)' if quick else ''}, validation {len(val_ids):,}; unigram baseline {baseline:.3f} nats/char")
    print(f"model: {config['layers']}-layer {config['cell'].upper()} {config['hidden']} hidden, "
          f"{n_params:,} parameters; {total_steps} steps of {batch_size}x{seq_len}")

    trained = dp.wrap(model)
    optimizer = make_optimizer(args.optim, trained.parameters(), lr)
    start_step = 0
    best_val = math.inf
    history = {"step": [], "train_loss": [], "val_loss": []}
    if resumed is not None:
        if resumed.get("optim") == args.optim and "optimizer" in resumed:
            optimizer.load_state_dict(resumed["optimizer"])  # its learning rate carries on from the checkpoint's
        start_step = int(resumed.get("step", 0))
        total_steps += start_step
    scheduler = optim.lr_scheduler.ExponentialLR(optimizer, gamma=args.lr_decay)  # stepped once per pass

    checkpoint_path = run.path("checkpoint.npz")

    def save_checkpoint(step, val_loss):
        if not dp.main:  # rank 0 writes for everyone
            return
        tr.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "vocab": vocab.to_dict(),
                 "config": config, "optim": args.optim, "step": step, "val_loss": val_loss}, checkpoint_path)

    # The graph of one short step (8 characters of 2 streams): the same model, small enough to read.
    # Drawn before training so that a problem with Graphviz shows up at once, not after hours.
    probe_inputs, probe_targets = next(tbptt_batches(batchify(val_ids, 2), 8))
    model.eval()  # no dropout: the probe draws no random numbers, so training is the same with or without it
    probe_logits, _ = model(tr.tensor(probe_inputs, device=device))
    run.graph(F.cross_entropy(probe_logits.reshape(-1, V), tr.tensor(probe_targets.reshape(-1), device=device)),
              "graph", mode="folded", model=model)

    model.train()
    state, chunks = None, iter(())
    recent = []
    bar = run.progress(range(start_step + 1, total_steps + 1), desc="train")
    started = time.perf_counter()
    for step in bar:
        try:
            inputs, targets = next(chunks)
        except StopIteration:  # a new pass over the text: fresh streams, fresh memory
            if step > start_step + 1:
                scheduler.step()
            chunks, state = tbptt_batches(batched, seq_len), None
            inputs, targets = next(chunks)
        logits, state = trained(tr.tensor(inputs[:, mine], device=device), detach_state(state))
        total = F.cross_entropy(logits.reshape(-1, V), tr.tensor(targets[:, mine].reshape(-1), device=device),
                                reduction="sum")
        loss = dp.mean(total, targets.size)  # the mean over every stream of every process
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        recent.append(run.check_loss(loss, step))
        bar.set_postfix(loss=f"{np.mean(recent[-50:]):.3f}")
        out_of_time = args.time_limit is not None and time.perf_counter() - started > 60 * args.time_limit
        if step % eval_every == 0 or step == total_steps or out_of_time:
            # 32 streams whatever --batch-size is: the same measurement as min-char-rnn's
            val_loss = support.char_model_loss(model, val_ids, device)
            history["step"].append(step)
            history["train_loss"].append(float(np.mean(recent[-eval_every:])))
            history["val_loss"].append(val_loss)
            bar.write(f"step {step}: train {history['train_loss'][-1]:.4f}, val {val_loss:.4f} nats/char "
                      f"(perplexity {math.exp(val_loss):.2f}), {time.perf_counter() - started:.0f} s")
            if val_loss < best_val:
                best_val = val_loss
                save_checkpoint(step, val_loss)
        if out_of_time:
            bar.write(f"--time-limit of {args.time_limit} minutes reached after {step} steps")
            break
    bar.close()
    train_seconds = time.perf_counter() - started
    steps_done = step
    dp.finish()  # every process waits for rank 0's last checkpoint


    fig, ax = support.figure()
    ax.plot(history["step"], history["train_loss"], "o-", label="training loss")
    ax.plot(history["step"], history["val_loss"], "o-", label="validation loss")
    ax.axhline(baseline, color="grey", linestyle=":", label="unigram baseline")
    ax.set_xlabel("step")
    ax.set_ylabel("nats per character")
    ax.set_title(f"char-rnn ({config['layers']}x{config['cell'].upper()} {config['hidden']})")
    ax.legend()
    run.save_figure(fig, "loss.png")

    best_model, _, _ = load_checkpoint(run, checkpoint_path)
    cell_report = interpretable_cells(run, best_model, vocab, val_ids, corpus)
    prime = args.prime if args.prime is not None else "\n"
    text_sample = generate(best_model, vocab, prime, args.sample_length or (200 if quick else 1000),
                           args.temperature, run.rng, device, args.top_k)
    run.write_text("sample.txt", text_sample)
    exporting.export(run, best_model, (tr.tensor(probe_inputs, device=device),), ["ids"])
    top_k = f", top-k {args.top_k}" if args.top_k else ""
    print(f"---- sample (temperature {args.temperature}{top_k}) ----\n{text_sample}\n----")

    return run.finish({
        "mode": "train",
        "val_nats_per_char": history["val_loss"][-1],
        "val_loss": best_val,
        "val_perplexity": math.exp(best_val),
        "final_val_loss": history["val_loss"][-1],
        "unigram_loss": baseline,
        "corpus": corpus,
        "corpus_chars": len(text),
        "vocab_size": V,
        "val_fraction": args.val_fraction,
        "train_chars": len(train_ids),
        "val_chars": len(val_ids),
        "train_losses": recent,
        "val_curve": history["val_loss"],
        "steps": steps_done,
        "parameters": n_params,
        "config": config,
        "train_seconds": train_seconds,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "sample": text_sample,
        "cells": cell_report,
    })


def main(argv=None) -> dict:
    run = support.start(build_parser(), argv)
    return sample_mode(run) if run.args.mode == "sample" else train_mode(run)


if __name__ == "__main__":
    main()
