"""What the vision-and-language examples share: the CNN encoder, caption metrics and attention plots.

``examples/image-captioning.py`` and ``examples/vqa.py`` read the composed
digit scenes of :mod:`tinygrad_rnn.data.digit_scenes` with the same small CNN
(:class:`ConvEncoder`): a scene becomes a grid of region features, one per
4 x 4 block of pixels, which a decoder or a question attends over. The
attention plots draw those weights as a heat map over the scene.
"""
from __future__ import annotations

import numpy as np

import tinygrad_rnn as tr
from tinygrad_rnn import examples_support as support
from tinygrad_rnn import nn

__all__ = ["ConvEncoder", "scene_batches", "clean_captions", "caption_metrics", "plot_attention_rows",
           "plot_training", "images_tensor"]


class ConvEncoder(nn.Module):
    """A small CNN: scenes (B, H, W) → region features (B, N, C), N = (H // 4) * (W // 4) regions.

    ``conv(1→c1, 3x3) → ReLU → MaxPool(2) → conv(c1→c2) → ReLU → MaxPool(2) → conv(c2→c2) → ReLU``
    (zero padding keeps each conv's size; He-initialised). A learned embedding of each region's
    place in the grid is added to its features: the convolutions alone see the
    same pattern the same way wherever it is, and a decoder that reads the
    digits left to right, or a question about "the second digit", must know
    where a region lies. The regions come row by row (``N`` = rows x columns,
    see ``grid``).
    """

    def __init__(self, height: int, width: int, channels=(16, 32)):
        super().__init__()
        if height < 4 or width < 4:
            raise ValueError(f"ConvEncoder: scenes must be at least 4 x 4 pixels, got {height} x {width}")
        c1, c2 = channels
        self.grid = (height // 4, width // 4)
        self.channels = c2
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c2, c2, 3, padding=1), nn.ReLU(),
        )
        for layer in self.features:
            if isinstance(layer, nn.Conv2d):  # He initialisation, made for ReLU layers: trains faster here
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        regions = self.grid[0] * self.grid[1]
        self.position = nn.Parameter(np.zeros((regions, c2), dtype=np.float32))
        nn.init.normal_(self.position, std=0.1)

    @property
    def regions(self) -> int:
        """N: the number of regions (grid rows x columns)."""
        return self.grid[0] * self.grid[1]

    def forward(self, images):
        if images.ndim != 3:
            raise ValueError(f"ConvEncoder: expected scenes of shape (B, H, W), got {tuple(images.shape)}")
        maps = self.features(images.unsqueeze(1))  # (B, C, H/4, W/4)
        B, C = maps.shape[0], maps.shape[1]
        if tuple(maps.shape[2:]) != self.grid:
            raise ValueError(f"ConvEncoder: built for a {self.grid} grid of regions, got scenes giving "
                             f"{tuple(maps.shape[2:])} (images {tuple(images.shape)})")
        return maps.reshape(B, C, self.regions).transpose(1, 2) + self.position


def scene_batches(n: int, batch_size: int, rng: np.random.Generator | None):
    """Index arrays covering ``range(n)`` in batches: shuffled with ``rng``, in order when it is None."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[lo:lo + batch_size] for lo in range(0, n, batch_size)]


def clean_captions(tokens, end_id: int, pad_id: int) -> np.ndarray:
    """Generated word ids (n, T) with everything after each row's first ``end_id`` set to ``pad_id``, as the
    captions' targets are padded: a caption ends at its first end token."""
    tokens = np.asarray(tokens)
    is_end = tokens == end_id
    after_end = (np.cumsum(is_end, axis=1) - is_end) > 0
    return np.where(after_end, pad_id, tokens)


def caption_metrics(predicted, scenes, prefix: str = "") -> dict:
    """Exact-caption match and per-word accuracy of ``predicted`` (n, T) word ids against the captions of
    ``scenes`` (a DigitScenes), overall and by the number of digits in the scene.

    Exact match: every word and the end token where the caption has them. Per
    word: the share of the captions' words written right at their place.
    Keys: ``{prefix}exact_match``, ``{prefix}word_accuracy``,
    ``{prefix}exact_match_by_digits`` and ``{prefix}word_accuracy_by_digits``
    (dicts keyed by the number of digits).
    """
    targets = scenes.targets
    predicted = clean_captions(predicted, scenes.end_id, scenes.pad_id)
    if predicted.shape[0] != targets.shape[0]:
        raise ValueError(f"caption_metrics: {predicted.shape[0]} captions for {targets.shape[0]} scenes")
    width = targets.shape[1]
    if predicted.shape[1] < width:
        predicted = np.pad(predicted, ((0, 0), (0, width - predicted.shape[1])), constant_values=scenes.pad_id)
    predicted = predicted[:, :width]
    is_word = np.arange(width)[None, :] < scenes.lengths[:, None]
    exact = (predicted == targets).all(axis=1)
    right_words = (predicted == targets) & is_word
    metrics = {f"{prefix}exact_match": float(exact.mean()),
               f"{prefix}word_accuracy": float(right_words.sum() / is_word.sum()),
               f"{prefix}exact_match_by_digits": {}, f"{prefix}word_accuracy_by_digits": {}}
    for k in np.unique(scenes.lengths).tolist():
        rows = scenes.lengths == k
        metrics[f"{prefix}exact_match_by_digits"][k] = float(exact[rows].mean())
        metrics[f"{prefix}word_accuracy_by_digits"][k] = float(right_words[rows].sum() / is_word[rows].sum())
    return metrics


def _overlay(ax, image, weights, grid, title):
    """The scene in grey with ``weights`` (one per region) as a heat map stretched over it."""
    height, width = image.shape
    ax.imshow(image, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    if weights is not None:
        heat = np.asarray(weights, dtype=np.float64).reshape(grid)
        ax.imshow(heat, cmap="inferno", alpha=0.55, vmin=0.0, vmax=max(float(heat.max()), 1e-6),
                  extent=(-0.5, width - 0.5, height - 0.5, -0.5), interpolation="bilinear")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_attention_rows(run, filename, images, weights, labels, grid, row_titles):
    """One row per scene: the scene, then the scene under each step's attention.

    ``images`` (n, H, W); ``weights[i]`` (steps_i, N) attention weights over
    the ``grid`` regions of scene ``i`` (one row per generated word or per
    question); ``labels[i]`` the steps' titles (the words, the questions);
    ``row_titles[i]`` the first panel's title. Writes ``out/filename``.
    """
    n = len(images)
    columns = 1 + max(len(w) for w in weights)
    height, width = images[0].shape
    fig, axes = support.figure(n, columns, figsize=(1.9 * columns * width / 40 + 0.5, 1.1 * n * height / 12 + 0.4),
                               squeeze=False)
    for i in range(n):
        _overlay(axes[i][0], images[i], None, grid, row_titles[i])
        for j in range(1, columns):
            if j - 1 < len(weights[i]):
                _overlay(axes[i][j], images[i], weights[i][j - 1], grid, labels[i][j - 1])
            else:
                axes[i][j].axis("off")
    return run.save_figure(fig, filename)


def plot_training(run, losses, curves: dict, ylabel: str, filename: str = "training.png"):
    """Training loss per step (log scale) beside test curves per epoch (``{label: values}``)."""
    fig, (ax_loss, ax_acc) = support.figure(1, 2, figsize=(10, 3.6))
    ax_loss.plot(losses)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("cross-entropy (nats)")
    ax_loss.set_yscale("log")
    ax_loss.set_title("training loss")
    for label, values in curves.items():
        ax_acc.plot(range(1, len(values) + 1), values, "o-", label=label)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel(ylabel)
    ax_acc.set_ylim(0, 1)
    ax_acc.legend(loc="lower right", fontsize=8)
    ax_acc.set_title("test scenes")
    return run.save_figure(fig, filename)


def images_tensor(images, device) -> "tr.Tensor":
    """Scenes (B, H, W) as a float32 tensor on ``device``."""
    return tr.tensor(np.ascontiguousarray(images, dtype=np.float32), device=device)
