"""Text coloured by activations: each character's background shows one value (a hidden unit's).

``text_activations(text, values)`` is the picture of Karpathy, Johnson and Fei-Fei's "Visualizing
and understanding recurrent networks": a character model's text with every character shaded by
one cell's activation after reading it, which shows cells that track quotes, the position in the
line or the indentation. ``values`` has one value per character (one row) or one row per unit
(``(units, chars)``); the result shows in Jupyter (``_repr_html_``), as an HTML string (``.html``:
inline styles only, no scripts, no external URLs) and saves as ``.html`` or ``.png`` (matplotlib,
the ``examples`` extra) by the file's suffix.
"""
from __future__ import annotations

import html as _html
import io
import numbers
import os
from pathlib import Path

import numpy as np

from ..files import write_atomically

__all__ = ["TextActivations", "text_activations"]

MATPLOTLIB_HINT = 'pip install "tinygrad_rnn[examples]" (or pip install matplotlib)'
_OP = "text_activations"
# matplotlib's "bwr": blue (0, 0, 1) at the low end, white in the middle, red (1, 0, 0) at the high end
_BWR = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])


def _bwr(x: np.ndarray) -> np.ndarray:
    """The built-in blue-white-red map of positions in [0, 1] to RGB (no matplotlib needed)."""
    return np.stack([np.interp(x, [0.0, 0.5, 1.0], _BWR[:, k]) for k in range(3)], axis=-1)


def _colormap(cmap):
    """A function from positions in [0, 1] (an array) to RGB rows: "bwr" built in, any other name
    from matplotlib, or a callable such as a matplotlib ``Colormap``."""
    if isinstance(cmap, str):
        if cmap == "bwr":
            return _bwr
        try:
            import matplotlib
        except ImportError:
            raise ImportError(f"{_OP}: the colormap {cmap!r} needs matplotlib ('bwr' does not): "
                              f"{MATPLOTLIB_HINT}") from None
        try:
            cmap = matplotlib.colormaps[cmap]
        except KeyError:
            raise ValueError(f"{_OP}: unknown colormap {cmap!r}; expected 'bwr', a matplotlib colormap name "
                             f"or a callable") from None
    if not callable(cmap):
        raise TypeError(f"{_OP}: cmap must be a colormap name or a callable, got {type(cmap).__name__}")

    def apply(x):
        rgb = np.asarray(cmap(x), dtype=np.float64)
        if rgb.shape[:-1] != np.shape(x) or rgb.shape[-1] not in (3, 4):
            raise ValueError(f"{_OP}: cmap must map an array of positions to RGB or RGBA rows, "
                             f"got shape {rgb.shape} for {np.shape(x)} positions")
        return np.clip(rgb[..., :3], 0.0, 1.0)

    return apply


def _as_values(text, values) -> np.ndarray:
    if hasattr(values, "detach") and hasattr(values, "numpy"):  # a Tensor
        values = values.detach().numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{_OP}: values must be numbers (an array, list or Tensor), "
                        f"got {type(values).__name__}") from None
    if array.ndim == 1:
        array = array[None, :]
    elif array.ndim != 2:
        raise ValueError(f"{_OP}: values must be 1-D (one per character) or 2-D (units, characters), "
                         f"got shape {array.shape}")
    if array.shape[1] != len(text):
        raise ValueError(f"{_OP}: values must have one value per character of the text ({len(text)}), "
                         f"got shape {tuple(np.shape(values))}")
    if not np.isfinite(array).all():
        raise ValueError(f"{_OP}: values must be finite, got NaN or infinity")
    return array


class TextActivations:
    """Text with one colour per character per row; shows in Jupyter, ``.html`` and ``.save(path)``.

    Made by :func:`text_activations`. ``colors`` is the (rows, chars, 3) RGB array in [0, 1] that both
    the HTML and the PNG draw; ``values`` the (rows, chars) values and ``labels`` one label per row.
    """

    def __init__(self, text, values, colors, labels, vmin, vmax, title):
        self.text, self.values, self.colors = text, values, colors
        self.labels, self.vmin, self.vmax, self.title = labels, vmin, vmax, title

    def __repr__(self):
        return (f"TextActivations({len(self.text)} characters, {len(self.labels)} row(s), "
                f"vmin={self.vmin:g}, vmax={self.vmax:g})")

    @property
    def html(self) -> str:
        """One self-contained HTML fragment: a ``<div>`` per row, a ``<span>`` per character."""
        parts = ['<div class="text-activations" style="font-family: monospace; font-size: 13px; '
                 'line-height: 1.35;">']
        if self.title:
            parts.append(f'<div style="font-weight: bold; margin: 4px 0;">{_html.escape(self.title)}</div>')
        for label, row_values, row_colors in zip(self.labels, self.values, self.colors):
            if label:
                parts.append(f'<div style="font-weight: bold; margin: 10px 0 2px 0;">{_html.escape(label)}</div>')
            parts.append('<div style="white-space: pre-wrap; word-break: break-all; border: 1px solid #ccc; '
                         'padding: 4px;">')
            for ch, value, rgb in zip(self.text, row_values, row_colors):
                r, g, b = (int(round(255 * c)) for c in rgb)
                ink = "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 128 else "#fff"
                parts.append(f'<span style="background-color: #{r:02x}{g:02x}{b:02x}; color: {ink};" '
                             f'title="{value:.3g}">{_html.escape(ch)}</span>')
            parts.append("</div>")
        parts.append("</div>")
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self.html

    def page(self) -> str:
        """``.html`` wrapped in a whole HTML page (what ``save("x.html")`` writes)."""
        title = _html.escape(self.title or "text activations")
        return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
                f"<body>\n{self.html}\n</body></html>\n")

    def save(self, path, dpi: int = 110) -> Path:
        """Write ``path`` atomically: an HTML page for ``.html``/``.htm``, an image for ``.png`` (matplotlib)."""
        path = Path(os.fspath(path))
        suffix = path.suffix.lower()
        if suffix in (".html", ".htm"):
            data = self.page().encode("utf-8")
        elif suffix == ".png":
            data = self._png(dpi)
        else:
            raise ValueError(f"TextActivations.save: expected a path ending in .html or .png, got {str(path)!r}")
        write_atomically(path, lambda file: file.write(data), "TextActivations.save")
        return path

    def _png(self, dpi, wrap=100) -> bytes:
        """The rows drawn with matplotlib: a grid of coloured cells, one character in each."""
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError(f"TextActivations.save: a .png needs matplotlib: {MATPLOTLIB_HINT}") from None
        cells = []  # (row in the grid, column, character index) of every character, rows stacked
        header_rows, line = [], 0
        for label in self.labels:
            header_rows.append(line)
            line += 1 if label else 0
            column = 0
            for i, ch in enumerate(self.text):
                if column >= wrap:
                    line, column = line + 1, 0
                cells.append((line, column, i))
                column += 1
                if ch == "\n":
                    line, column = line + 1, 0
            line += 2 if column else 1  # a blank line between rows
        n_lines = max(line - 1, 1)
        width = max(max(column for _, column, _ in cells) + 1, 12)
        char_w, char_h = 0.09, 0.19  # inches per character cell
        fig = Figure(figsize=(width * char_w + 0.2, n_lines * char_h + (0.4 if self.title else 0.2)))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(n_lines, 0)
        ax.axis("off")
        if self.title:
            ax.set_position((0, 0, 1, 1 - 0.3 / fig.get_figheight()))
            fig.suptitle(self.title, fontsize=10, y=1 - 0.05 / fig.get_figheight(), va="top")
        n = len(self.text)
        for row, (label, start) in enumerate(zip(self.labels, header_rows)):
            if label:
                ax.text(0, start + 0.5, label, fontsize=9, fontweight="bold", va="center", ha="left")
            for line_index, column, i in cells[row * n:(row + 1) * n]:
                rgb = self.colors[row, i]
                ax.add_patch(_rectangle(column, line_index, rgb))
                ch = self.text[i]
                if ch.strip():
                    ink = "black" if rgb @ [0.299, 0.587, 0.114] > 0.5 else "white"
                    ax.text(column + 0.5, line_index + 0.5, ch, fontsize=8, family="monospace", ha="center",
                            va="center", color=ink)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()


def _rectangle(x, y, rgb):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), 1, 1, facecolor=tuple(rgb), edgecolor="none")


def text_activations(text, values, *, cmap="bwr", vmin=-1.0, vmax=1.0, title=None, labels=None) -> TextActivations:
    """Colour each character of ``text`` by its value: Karpathy's interpretable-cell picture.

    ``values``: one number per character (1-D, ``len(text)``), or ``(units, len(text))`` for one
    row per unit (each labelled by ``labels``, default ``"unit 0"``, ``"unit 1"``, ...). A value is
    placed on ``cmap`` (``"bwr"``, built in: blue at ``vmin``, white midway, red at ``vmax``; any
    matplotlib colormap name or a callable from [0, 1] to RGB(A)) after clipping to [vmin, vmax].
    Returns a :class:`TextActivations`: shown by Jupyter, ``.html`` a string, ``.save("x.html")``
    or ``.save("x.png")``. Characters are HTML-escaped; spaces and line breaks are kept.
    """
    if not isinstance(text, str):
        raise TypeError(f"{_OP}: text must be a str, got {type(text).__name__}")
    if not text:
        raise ValueError(f"{_OP}: text must have at least one character")
    for name, bound in (("vmin", vmin), ("vmax", vmax)):
        if isinstance(bound, bool) or not isinstance(bound, numbers.Real) or not np.isfinite(bound):
            raise TypeError(f"{_OP}: {name} must be a finite number, got {bound!r}")
    if not vmin < vmax:
        raise ValueError(f"{_OP}: vmin must be below vmax, got vmin={vmin}, vmax={vmax}")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"{_OP}: title must be a str or None, got {type(title).__name__}")
    one_row = np.ndim(values.detach().numpy() if hasattr(values, "detach") else values) == 1
    array = _as_values(text, values)
    if labels is None:
        labels = [""] if one_row else [f"unit {k}" for k in range(array.shape[0])]
    elif isinstance(labels, str):
        labels = [labels]
    labels = list(labels)
    if len(labels) != array.shape[0] or not all(isinstance(label, str) for label in labels):
        raise ValueError(f"{_OP}: labels must be {array.shape[0]} str (one per row of values), got {labels!r}")
    positions = (np.clip(array, vmin, vmax) - vmin) / (vmax - vmin)
    colors = _colormap(cmap)(positions)
    return TextActivations(text, array, colors, labels, float(vmin), float(vmax), title)
