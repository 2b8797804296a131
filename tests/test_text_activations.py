"""``tr.viz.text_activations``: text coloured per character by a value, as HTML (escaped, one span
per character) and PNG; shapes, colours, errors and atomic writes."""
from __future__ import annotations

import errno
import html
import re

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import files
from tinygrad_rnn.viz import text as viz_text

SPAN = re.compile(r'<span style="background-color: #([0-9a-f]{6}); color: #(?:000|fff);" title="([^"]*)">(.*?)</span>',
                  re.S)


def spans(markup):
    """(rgb tuple, title, unescaped character) of every span, in order."""
    return [(tuple(int(c[k:k + 2], 16) for k in (0, 2, 4)), title, html.unescape(body))
            for c, title, body in SPAN.findall(markup)]


def test_one_span_per_character_with_its_colour_and_the_text_read_back():
    text = "a <b>\n  'x' & \"y\"\ttab"
    values = np.linspace(-1, 1, len(text))
    shown = tr.viz.text_activations(text, values)
    found = spans(shown.html)
    assert len(found) == len(text) and "".join(ch for _, _, ch in found) == text
    assert found[0][0] == (0, 0, 255) and found[-1][0] == (255, 0, 0)  # vmin blue, vmax red
    middle = tr.viz.text_activations("m", [0.0])
    assert spans(middle.html)[0][0] == (255, 255, 255)
    assert [float(title) for _, title, _ in found] == pytest.approx(values, abs=5e-3)
    assert shown._repr_html_() == shown.html


def test_markup_in_the_text_is_escaped_and_nothing_external_or_scripted_is_emitted():
    text = '<script>alert("x")</script> & <a href="http://e.com">'
    markup = tr.viz.text_activations(text, np.zeros(len(text)), title="<b>t</b>").html
    assert "<script" not in markup and "&lt;script&gt;" not in markup  # escaped per character
    assert "&lt;" in markup and "&amp;" in markup and "&lt;b&gt;t&lt;/b&gt;" in markup
    assert "src=" not in markup and "href=" not in markup and "<link" not in markup and "url(" not in markup
    assert "".join(ch for _, _, ch in spans(markup)) == text


def test_spaces_and_newlines_are_kept_as_characters_and_line_breaks():
    text = "  a\n\n b "
    markup = tr.viz.text_activations(text, np.ones(len(text))).html
    assert "white-space: pre-wrap" in markup and "<br" not in markup
    assert [ch for _, _, ch in spans(markup)] == list(text)


def test_two_dimensional_values_give_one_labelled_row_per_unit():
    text = "hello"
    values = np.array([[-1, -0.5, 0, 0.5, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]])
    shown = tr.viz.text_activations(text, values, labels=["quote", "line", "indent"], title="cells")
    found = spans(shown.html)
    assert len(found) == 3 * len(text)
    assert [c for c, _, _ in found[5:10]] == [(255, 0, 0)] * 5
    for label in ("quote", "line", "indent", "cells"):
        assert f">{label}</div>" in shown.html
    assert shown.colors.shape == (3, 5, 3) and shown.values.shape == (3, 5)
    default = tr.viz.text_activations(text, values)
    assert default.labels == ["unit 0", "unit 1", "unit 2"] and ">unit 2</div>" in default.html
    assert tr.viz.text_activations(text, tr.tensor(values, dtype=tr.float32)).values.shape == (3, 5)


def test_colours_move_monotonically_from_vmin_to_vmax_and_clip_outside():
    values = np.linspace(-3, 5, 101)
    shown = tr.viz.text_activations("x" * values.size, values, vmin=-2, vmax=4)
    rgb = shown.colors[0]
    redness = rgb[:, 0] - rgb[:, 2]
    assert np.all(np.diff(redness) >= 0) and redness[0] == -1 and redness[-1] == 1
    assert np.all(rgb[values <= -2] == rgb[0]) and np.all(rgb[values >= 4] == rgb[-1])
    assert np.allclose(shown.colors[0][np.argmin(np.abs(values - 1))], 1.0, atol=0.05)  # the midpoint is white


def test_a_matplotlib_colormap_by_name_or_callable_matches_matplotlib():
    matplotlib = pytest.importorskip("matplotlib")
    values = np.linspace(-1, 1, 7)
    for cmap in ("viridis", matplotlib.colormaps["viridis"]):
        got = tr.viz.text_activations("abcdefg", values, cmap=cmap).colors[0]
        assert np.allclose(got, matplotlib.colormaps["viridis"]((values + 1) / 2)[:, :3])
    assert np.allclose(tr.viz.text_activations("abcdefg", values).colors[0],
                       matplotlib.colormaps["bwr"]((values + 1) / 2)[:, :3], atol=1e-2)


@pytest.mark.parametrize("text, values, kwargs, error, match", [
    ("abc", [1.0, 2.0], {}, ValueError, r"one value per character of the text \(3\), got shape \(2,\)"),
    ("abc", np.zeros((2, 4)), {}, ValueError, r"one value per character of the text \(3\), got shape \(2, 4\)"),
    ("abc", np.zeros((1, 1, 3)), {}, ValueError, r"1-D .* or 2-D .* got shape \(1, 1, 3\)"),
    ("abc", [0.0, np.nan, 1.0], {}, ValueError, "finite"),
    ("abc", ["a", "b", "c"], {}, TypeError, "values must be numbers"),
    (b"abc", [0.0, 0.0, 0.0], {}, TypeError, "text must be a str, got bytes"),
    ("", [], {}, ValueError, "at least one character"),
    ("abc", [0.0] * 3, {"vmin": 1, "vmax": 1}, ValueError, "vmin must be below vmax"),
    ("abc", [0.0] * 3, {"vmin": float("nan")}, TypeError, "vmin must be a finite number"),
    ("abc", [0.0] * 3, {"cmap": 3}, TypeError, "cmap must be a colormap name or a callable"),
    ("abc", np.zeros((2, 3)), {"labels": ["one"]}, ValueError, "labels must be 2 str"),
    ("abc", [0.0] * 3, {"title": 5}, TypeError, "title must be a str or None"),
])
def test_bad_input_is_a_clear_error_naming_the_function(text, values, kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        tr.viz.text_activations(text, values, **kwargs)
    assert str(info.value).startswith("text_activations:")


def test_an_unknown_colormap_name_is_a_clear_error():
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="text_activations: unknown colormap 'no-such-map'"):
        tr.viz.text_activations("ab", [0, 1], cmap="no-such-map")


def test_save_html_writes_a_whole_page_containing_the_fragment(tmp_path):
    shown = tr.viz.text_activations("a<b", [0, 1, -1], title="T")
    path = shown.save(tmp_path / "cells.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and shown.html in page and '<meta charset="utf-8">' in page
    with pytest.raises(ValueError, match=r"TextActivations.save: expected a path ending in .html or .png"):
        shown.save(tmp_path / "cells.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.html"]


def test_save_png_draws_an_image_of_the_coloured_text(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    text = "def f(x):\n    return 'x'\n" * 3
    values = np.stack([np.linspace(-1, 1, len(text)), np.ones(len(text))])
    path = tr.viz.text_activations(text, values, title="cells").save(tmp_path / "cells.png")
    image = matplotlib.image.imread(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.ndim == 3 and image.shape[0] > 50
    reds = (image[..., 0] > 0.9) & (image[..., 1] < 0.1) & (image[..., 2] < 0.1)
    blues = (image[..., 2] > 0.9) & (image[..., 0] < 0.1) & (image[..., 1] < 0.1)
    assert reds.sum() > 100 and blues.sum() > 10  # the all-ones row is red, the ramp starts blue


def test_png_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    shown = tr.viz.text_activations("ab", [0, 1])  # HTML with the built-in colormap needs no matplotlib
    assert len(spans(shown.html)) == 2
    with pytest.raises(ImportError, match=r"a \.png needs matplotlib: pip install \"tinygrad_rnn\[examples\]\""):
        shown.save(tmp_path / "x.png")
    with pytest.raises(ImportError, match=r"the colormap 'viridis' needs matplotlib"):
        tr.viz.text_activations("ab", [0, 1], cmap="viridis")
    assert not list(tmp_path.iterdir())


def test_saving_is_atomic_a_failure_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "cells.html"
    tr.viz.text_activations("old", [0, 0, 0]).save(path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(OSError, match="No space left"):
        tr.viz.text_activations("new!", [1, 1, 1, 1]).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["cells.html"]
    tr.viz.text_activations("new!", [1, 1, 1, 1]).save(path)
    assert "new!" in "".join(ch for _, _, ch in spans(path.read_text()))


def test_exported_from_tr_viz():
    assert tr.viz.text_activations is viz_text.text_activations
    assert "TextActivations(3 characters, 1 row(s)" in repr(tr.viz.text_activations("abc", [0, 0, 0]))
