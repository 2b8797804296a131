"""A small Vision Transformer classifies scikit-learn's 8x8 digits from patches, class token and positions.

The ViT recipe (Dosovitskiy et al. 2020) at toy scale. Each 8x8 image is cut
into (8 / --patch)² square patches (default --patch 2: 16 patches of 2x2
pixels, read row by row); each flattened patch is projected linearly to
--dim features, a learned class token is put in front, and a position code
is added to every token: a learned table (``--pos learned``, as in ViT) or
the fixed sinusoidal table of "Attention is all you need" (``--pos
sinusoidal``, ``nn.PositionalEncoding``; class token at position 0)::

    patches = unfold(image)                                (B, 16, 4) for --patch 2
    tokens  = [cls; Linear(4, 64)(patches)] + P            (B, 17, 64)
    z       = pre-LN encoder layers (--depth 2, --heads 4, GELU MLP of --mlp 128)
    logits  = Linear(64, 10)(LayerNorm(z[:, 0]))           the class token's final state

Training: AdamW (--lr 3e-3, weight decay 0.01) with a one-cycle schedule
(10 % warm-up) stepped per batch, batches of 32, dropout 0.1, 60 epochs
(--quick: 10), on the 80/20 stratified split of
``tinygrad_rnn.data.load_digits_sequences`` (the split follows --seed).

Test accuracy on the 359 test images after the last epoch, seeds 0 / 1 / 2
(``tinygrad-rnn run vit-digits --pos P --seed S``, 40-100 s each on a shared
2-core VM): learned positions 96.38 / 98.05 / 97.49 %, sinusoidal 96.94 /
96.94 / 97.49 % (training accuracy 100 %). Why 2x2 patches (seed 0, learned):
4x4 patches (4 tokens) score as well (97.77 %) at a third of the time per
epoch, but the class token's attention over a 2x2 grid shows little; 1x1
patches (64 tokens) take ~5 times as long per epoch and score 93.87 %.
Quick mode: 94-96 % for seed 0, 87-88 % for seed 1.

Outputs: ``training.png`` (loss, test accuracy, confusion matrix),
``attention.png`` (ten test digits and the class token's attention over
their patches in the last layer, averaged over heads: the attention weights
of ``self_attn`` called on ``norm1`` of the last layer's input, as the
pre-LN layer does), ``sinusoidal.png`` and the ``sinusoidal`` entry of
``metrics.json``: the homework's property of the sinusoidal table, whatever
--pos. With PE(t)[2i] = sin(t ω_i), PE(t)[2i+1] = cos(t ω_i),
ω_i = 10000^(-2i/d), the code of position t + k is a fixed rotation of the
code of t: P_{t+k} = T_k P_t, T_k block-diagonal with 2x2 rotations by k ω_i,
so orthogonal and independent of t (and P_t·P_{t+k} = Σ_i cos(k ω_i) depends
on k only). Checked on ``nn.PositionalEncoding``'s own (float32) table:
T_k built from the formula, and T_k fitted by least squares, one 2x2 block
per frequency, from the pairs (P_t, P_{t+k}) of t in [0, 20) and of t in
[30, 50) (a whole d x d fit from 20 positions would be underdetermined: 20
equations per row for d unknowns). For d = 64: |P_{t+k} - T_k P_t| ≤ 6e-8
(the table's float32 rounding), |T_kᵀT_k - I| ≤ 2e-16, the two fits differ
by 2e-5 and from T_k by 1e-5 (float32 rounding magnified by the slowest
frequencies, which turn little over 20 positions; ~1e-13 on a float64
table); a random table misses by more than 1.
"""
from __future__ import annotations

import time

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import examples_support as support
from tinygrad_rnn import nn, optim
from tinygrad_rnn.data import load_digits_sequences
from tinygrad_rnn.nn import functional as F

IMAGE = 8
SHIFTS = (1, 2, 3, 5, 8)
FIT_RANGES = ((0, 20), (30, 50))
TABLE_LENGTH = 64  # positions of the table checked: at least the last fit range's end + the largest shift (58)


def build_parser():
    parser = support.example_parser(__file__, __doc__)
    parser.add_argument("--pos", choices=["learned", "sinusoidal"], default="learned",
                        help="position codes: a learned table (default, as ViT) or the fixed sinusoidal one")
    parser.add_argument("--patch", type=int, choices=[1, 2, 4], default=2,
                        help="patch side in pixels: 1, 2 (default, 16 patches) or 4")
    parser.add_argument("--dim", type=support.positive_int, default=64, help="token features d_model (default 64)")
    parser.add_argument("--depth", type=support.positive_int, default=2, help="encoder layers (default 2)")
    parser.add_argument("--heads", type=support.positive_int, default=4, help="attention heads (default 4)")
    parser.add_argument("--mlp", type=support.positive_int, default=128,
                        help="hidden units of each layer's feed-forward network (default 128)")
    parser.add_argument("--dropout", type=float, default=0.1, help="dropout probability (default 0.1)")
    parser.add_argument("--epochs", type=support.positive_int, default=None, help="epochs (default 60, --quick 10)")
    parser.add_argument("--batch-size", type=support.positive_int, default=32, help="images per step (default 32)")
    parser.add_argument("--lr", type=float, default=3e-3, help="AdamW peak learning rate (default 3e-3)")
    return parser


class VisionTransformer(nn.Module):
    """8x8 images → patches → linear embedding, class token, positions → pre-LN encoder → 10 scores."""

    def __init__(self, patch=2, dim=64, depth=2, heads=4, mlp=128, dropout=0.1, pos="learned"):
        super().__init__()
        self.patch, self.grid = patch, IMAGE // patch
        self.num_patches = self.grid * self.grid
        self.patch_embed = nn.Linear(patch * patch, dim)
        self.cls_token = nn.Parameter(np.zeros((1, 1, dim), dtype=np.float32))
        nn.init.normal_(self.cls_token, std=0.02)
        if pos == "learned":
            self.pos_embedding = nn.Parameter(np.zeros((1, self.num_patches + 1, dim), dtype=np.float32))
            nn.init.normal_(self.pos_embedding, std=0.02)
            self.pos_dropout = nn.Dropout(dropout)
        else:
            self.pos_encoding = nn.PositionalEncoding(dim, max_len=self.num_patches + 1, dropout=dropout,
                                                      batch_first=True)
        self.pos = pos
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=mlp, dropout=dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def patches(self, images):
        """(B, 8, 8) → (B, num_patches, patch²): the flattened patches, row by row."""
        B, p, g = images.shape[0], self.patch, self.grid
        return images.reshape(B, g, p, g, p).permute(0, 1, 3, 2, 4).reshape(B, self.num_patches, p * p)

    def embed(self, images):
        """(B, 8, 8) → (B, 1 + num_patches, dim): class token and patch embeddings with their positions."""
        B = images.shape[0]
        tokens = tr.cat([self.cls_token.expand(B, 1, self.cls_token.shape[-1]),
                         self.patch_embed(self.patches(images))], dim=1)
        if self.pos == "learned":
            return self.pos_dropout(tokens + self.pos_embedding)
        return self.pos_encoding(tokens)

    def forward(self, images):
        return self.head(self.norm(self.encoder(self.embed(images))[:, 0]))


@tr.no_grad()
def last_layer_attention(model, images):
    """The last encoder layer's self-attention on ``images`` (eval mode), as that layer computes it.

    Returns ``(x, attended, weights)``: the last layer's input (B, L, dim), its attention branch
    ``self_attn(norm1(x))`` (B, L, dim) and the weights (B, L, L) averaged over heads; row 0 is the
    class token's attention (column 0 itself, then the patches).
    """
    was_training = model.training
    model.eval()
    x = model.embed(images)
    *first, last = model.encoder.layers
    for layer in first:
        x = layer(x)
    normed = last.norm1(x)
    attended, weights = last.self_attn(normed, normed, normed, need_weights=True)
    model.train(was_training)
    return x, attended, weights


# ------------------------------------------------------------------------------------ the sinusoidal property
def shift_rotation(k, d) -> np.ndarray:
    """T_k (d, d): block-diagonal 2x2 rotations by k ω_i, ω_i = 10000^(-2i/d), so that the sinusoidal
    codes obey P_{t+k} = T_k P_t (sin(a+b) = sin a cos b + cos a sin b, cos(a+b) = cos a cos b - sin a sin b)."""
    angle = k * 10000.0 ** (-np.arange(0, d, 2) / d)
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.zeros((d, d))
    even = np.arange(0, d, 2)
    rotation[even, even], rotation[even, even + 1] = cos, sin
    rotation[even + 1, even], rotation[even + 1, even + 1] = -sin, cos
    return rotation


def shift_errors(table, k) -> np.ndarray:
    """max_j |P_{t+k} - T_k P_t|_j for every t with t + k in the table: one error per position t."""
    table = np.asarray(table, dtype=np.float64)
    return np.abs(table[k:] - table[:-k] @ shift_rotation(k, table.shape[1]).T).max(axis=1)


def fit_shift_blocks(table, k, start, stop) -> np.ndarray:
    """T_k fitted by least squares from the pairs (P_t, P_{t+k}), t in [start, stop), one 2x2 block per
    frequency (pair of columns 2i, 2i+1): (d/2, 2, 2), block i mapping P_t[2i:2i+2] to P_{t+k}[2i:2i+2]."""
    table = np.asarray(table, dtype=np.float64)
    blocks = []
    for i in range(0, table.shape[1], 2):
        x, y = table[start:stop, i:i + 2], table[start + k:stop + k, i:i + 2]
        blocks.append(np.linalg.lstsq(x, y, rcond=None)[0].T)  # y_t = B x_t for every t
    return np.stack(blocks)


def sinusoidal_shift_check(table, shifts=SHIFTS, fit_ranges=FIT_RANGES) -> dict:
    """How far ``table`` (positions x d) is from obeying P_{t+k} = T_k P_t with T_k orthogonal and
    independent of t: tiny numbers for a sinusoidal table, large ones for any other.

    ``formula_error``: max |P_{t+k} - T_k P_t| over t and k in ``shifts``, T_k from :func:`shift_rotation`;
    ``orthogonality_error``: max |T_kᵀT_k - I|; ``dot_product_error``: max |P_t·P_{t+k} - Σ_i cos(k ω_i)|
    (the dot product depends on k only); for T_k fitted per frequency from each range of ``fit_ranges``
    (:func:`fit_shift_blocks`): ``fit_residual`` (max |P_{t+k} - T̂_k P_t| in the range fitted),
    ``fit_difference`` (the two ranges' fits against each other), ``fit_vs_formula`` (the fits against
    T_k), ``fit_orthogonality_error``; ``full_rank_first_range``: the rank of the positions of the first
    range, fewer than d, which is why T_k is fitted block by block.
    """
    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] % 2:
        raise ValueError(f"sinusoidal_shift_check: expected a table (positions, d) with d even, got {table.shape}")
    needed = max(stop for _, stop in fit_ranges) + max(shifts)
    if table.shape[0] < needed:
        raise ValueError(f"sinusoidal_shift_check: the shifts {tuple(shifts)} and fit ranges {tuple(fit_ranges)} "
                         f"need {needed} positions, the table has {table.shape[0]}")
    d = table.shape[1]
    omega = 10000.0 ** (-np.arange(0, d, 2) / d)
    formula = orthogonality = dot_product = residual = difference = versus = fit_orthogonality = 0.0
    for k in shifts:
        rotation = shift_rotation(k, d)
        formula = max(formula, shift_errors(table, k).max())
        orthogonality = max(orthogonality, np.abs(rotation.T @ rotation - np.eye(d)).max())
        dots = np.einsum("td,td->t", table[:-k], table[k:])
        dot_product = max(dot_product, np.abs(dots - np.cos(k * omega).sum()).max())
        formula_blocks = np.stack([rotation[i:i + 2, i:i + 2] for i in range(0, d, 2)])
        fits = []
        for start, stop in fit_ranges:
            fit = fit_shift_blocks(table, k, start, stop)
            pairs = table[start:stop].reshape(stop - start, d // 2, 2)
            shifted = table[start + k:stop + k].reshape(stop - start, d // 2, 2)
            residual = max(residual, np.abs(shifted - np.einsum("bij,tbj->tbi", fit, pairs)).max())
            versus = max(versus, np.abs(fit - formula_blocks).max())
            gram = np.einsum("bji,bjk->bik", fit, fit)
            fit_orthogonality = max(fit_orthogonality, np.abs(gram - np.eye(2)).max())
            fits.append(fit)
        difference = max(difference, max(np.abs(a - b).max() for a, b in zip(fits, fits[1:])))
    start, stop = fit_ranges[0]
    return {
        "shifts": list(shifts), "fit_ranges": [list(r) for r in fit_ranges], "d_model": d,
        "formula_error": float(formula), "orthogonality_error": float(orthogonality),
        "dot_product_error": float(dot_product), "fit_residual": float(residual), "fit_difference": float(difference),
        "fit_vs_formula": float(versus), "fit_orthogonality_error": float(fit_orthogonality),
        "full_rank_first_range": int(np.linalg.matrix_rank(table[start:stop])),
    }


# ----------------------------------------------------------------------------------------------------- plots
def plot_training(run, losses, test_curve, confusion):
    """training.png: the loss and test accuracy per epoch, and the test confusion matrix."""
    fig, (ax_loss, ax_acc, ax_conf) = support.figure(1, 3, figsize=(13, 3.8))
    epochs = np.arange(1, len(losses) + 1)
    ax_loss.plot(epochs, losses)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training cross-entropy (epoch mean)")
    ax_acc.plot(epochs, test_curve, "o-", markersize=3)
    ax_acc.set_ylim(0, 1)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("test accuracy")
    ax_conf.imshow(confusion, cmap="Blues")
    ax_conf.set_xticks(range(10))
    ax_conf.set_yticks(range(10))
    ax_conf.set_xlabel("predicted")
    ax_conf.set_ylabel("true")
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            ax_conf.text(j, i, str(count), ha="center", va="center", fontsize=7,
                         color="white" if count > confusion.max() / 2 else "black")
    run.save_figure(fig, "training.png")


def plot_attention(run, images, attention, grid, labels, predicted):
    """Each image above the class token's attention over its patches (heads averaged, last layer)."""
    fig, axes = support.figure(2, len(images), figsize=(1.5 * len(images), 3.5))
    for column, (image, weights) in enumerate(zip(images, attention)):
        top, bottom = axes[0, column], axes[1, column]
        top.imshow(image, cmap="gray_r", vmin=0, vmax=1)
        top.set_title(f"{predicted[column]} ({labels[column]})", fontsize=9,
                      color="black" if predicted[column] == labels[column] else "red")
        bottom.imshow(weights[1:].reshape(grid, grid), cmap="viridis", vmin=0)
        bottom.set_title(f"max {weights[1:].max():.2f}, cls→cls {weights[0]:.2f}", fontsize=7)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("test digits, predicted (true), and the class token's attention over the patches "
                 "(last layer, mean of heads)", fontsize=10)
    run.save_figure(fig, "attention.png")


def plot_sinusoidal(run, table, check, rng):
    """sinusoidal.png: T_3, the error of P(t+k) = T_k P(t) at every t (formula, a fitted T_3, a random
    table), and the dot products P(t)·P(s)."""
    d = table.shape[1]
    fig, (ax_t, ax_err, ax_dot) = support.figure(1, 3, figsize=(14, 4.2))
    k = 3
    image = ax_t.imshow(shift_rotation(k, d)[:16, :16], cmap="RdBu_r", vmin=-1, vmax=1)
    ax_t.set_title(f"T_{k}: 2x2 rotations by {k}·ω_i (first 16 of {d} dims)", fontsize=9)
    fig.colorbar(image, ax=ax_t, shrink=0.8)
    for shift in check["shifts"]:
        errors = shift_errors(table, shift)
        ax_err.semilogy(np.arange(len(errors)), np.maximum(errors, 1e-17), label=f"k={shift}")
    (start, stop), positions = check["fit_ranges"][0], np.arange(len(table) - k)
    fitted = np.einsum("bij,tbj->tbi", fit_shift_blocks(table, k, start, stop),
                       table[:-k].reshape(len(positions), d // 2, 2)).reshape(len(positions), d)
    ax_err.semilogy(positions, np.abs(table[k:] - fitted).max(axis=1), "k--",
                    label=f"T_{k} fitted on t in [{start}, {stop})")
    ax_err.axvspan(start, stop - 1, color="0.9")
    noise = rng.standard_normal(table.shape)
    ax_err.semilogy(positions, shift_errors(noise, k), "k:", label=f"random table, k={k}")
    ax_err.set_xlabel("position t")
    ax_err.set_ylabel("max |P(t+k) - T_k P(t)|")
    ax_err.set_title("one T_k for every t (float32 table; grey: the fit's range)", fontsize=9)
    ax_err.legend(fontsize=7, ncol=2)
    image = ax_dot.imshow(table @ table.T, cmap="viridis")
    ax_dot.set_xlabel("position s")
    ax_dot.set_ylabel("position t")
    ax_dot.set_title("P(t)·P(s) depends on s - t only", fontsize=9)
    fig.colorbar(image, ax=ax_dot, shrink=0.8)
    run.save_figure(fig, "sinusoidal.png")


# ------------------------------------------------------------------------------------------------------ run
@tr.no_grad()
def predict(model, images, device, batch_size=512):
    """The predicted digit of each image (a host array (N, 8, 8)), in eval mode."""
    model.eval()
    out = [model(tr.tensor(images[i:i + batch_size], device=device)).numpy().argmax(axis=1)
           for i in range(0, len(images), batch_size)]
    model.train()
    return np.concatenate(out)


def main(argv=None) -> dict:
    run = support.start(build_parser(), argv)
    args, device = run.args, run.device
    if args.dim % args.heads:
        run.error(f"--dim {args.dim} is not divisible by --heads {args.heads}: each head gets dim / heads features")
    if args.dim % 2:
        run.error(f"--dim: expected an even number (the sinusoidal codes come in sin/cos pairs), got {args.dim}")
    epochs = args.epochs or (10 if run.quick else 60)
    x_train, y_train, x_test, y_test = load_digits_sequences(test_fraction=0.2, seed=run.seed)
    model = VisionTransformer(args.patch, args.dim, args.depth, args.heads, args.mlp, args.dropout, args.pos)
    model = model.to(device)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"ViT: {model.num_patches} patches of {args.patch}x{args.patch} pixels, {args.pos} positions, "
          f"{args.depth} layers, {parameters:,} parameters; {len(x_train)} training and {len(x_test)} test images")

    optimizer = optim.AdamW(model.parameters(), lr=args.lr)
    batches = -(-len(x_train) // args.batch_size)
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=epochs * batches,
                                               pct_start=0.1)
    losses, test_curve, train_seconds = [], [], 0.0
    bar = run.progress(range(epochs * batches), desc=f"train ({args.pos})")
    for step in bar:
        epoch, b = divmod(step, batches)
        if b == 0:
            order, epoch_losses, started = run.rng.permutation(len(x_train)), [], time.perf_counter()
        rows = order[b * args.batch_size:(b + 1) * args.batch_size]
        loss = F.cross_entropy(model(tr.tensor(x_train[rows], device=device)), tr.tensor(y_train[rows], device=device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        epoch_losses.append(run.check_loss(loss))
        if b == batches - 1:
            train_seconds += time.perf_counter() - started
            losses.append(float(np.mean(epoch_losses)))
            test_curve.append(float(np.mean(predict(model, x_test, device) == y_test)))
            bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.4f}", test_acc=f"{test_curve[-1]:.3f}")
    bar.close()

    predicted = predict(model, x_test, device)
    accuracy = float(np.mean(predicted == y_test))
    train_accuracy = float(np.mean(predict(model, x_train, device) == y_train))
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (y_test, predicted), 1)
    per_class = confusion.diagonal() / confusion.sum(axis=1)
    print(f"test accuracy {accuracy:.2%} ({int(np.sum(predicted == y_test))}/{len(y_test)}), "
          f"training accuracy {train_accuracy:.2%}")
    plot_training(run, losses, test_curve, confusion)

    _, _, weights = last_layer_attention(model, tr.tensor(x_test, device=device))
    class_attention = weights.numpy()[:, 0]  # (test images, 1 + patches)
    shown = np.array([np.flatnonzero(y_test == digit)[0] for digit in range(10)])
    plot_attention(run, x_test[shown], class_attention[shown], model.grid, y_test[shown], predicted[shown])

    table = nn.PositionalEncoding(args.dim, max_len=TABLE_LENGTH).pe.numpy().astype(np.float64)
    check = sinusoidal_shift_check(table)
    print("sinusoidal table: max |P(t+k) - T_k P(t)| = {formula_error:.2e}, max |T_kᵀT_k - I| = "
          "{orthogonality_error:.2e}; fitted T_k, t in [0, 20) vs [30, 50): differ by {fit_difference:.2e}, "
          "from the formula by {fit_vs_formula:.2e}".format(**check))
    plot_sinusoidal(run, table, check, np.random.default_rng(run.seed))

    probe = F.cross_entropy(model(tr.tensor(x_test[:2], device=device)), tr.tensor(y_test[:2], device=device))
    probe.name = "loss"
    run.graph(probe, "graph", model=model)
    return run.finish({
        "test_accuracy": accuracy,
        "train_accuracy": train_accuracy,
        "per_class_accuracy": per_class.tolist(),
        "confusion": confusion.tolist(),
        "test_curve": test_curve,
        "losses": losses,
        "class_attention_mean": class_attention.mean(axis=0).tolist(),
        "sinusoidal": check,
        "parameters": parameters,
        "seconds_per_epoch": train_seconds / epochs,
        "pos": args.pos,
        "patch": args.patch,
        "patches": model.num_patches,
        "dim": args.dim,
        "depth": args.depth,
        "heads": args.heads,
        "epochs": epochs,
        "train_size": len(x_train),
        "test_size": len(x_test),
    })


if __name__ == "__main__":
    main()
