"""Interpretable cells: the character features and correlations of ``tinygrad_rnn.examples_cells``,
and char-lstm's cells.html, whose correlations are recomputed here from the checkpoint."""
from __future__ import annotations

import html
import re

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import examples_cells as cells
from tinygrad_rnn import examples_support as support
from tinygrad_rnn import nn
from tinygrad_rnn.data import CharVocab, split_text


# ------------------------------------------------------------------------------------- features
def test_prose_quotes_toggle_on_double_quotes_only():
    text = 'He said "no, \'tis" and "yes'
    got = cells.inside_quotes(text)
    expected = [0] * 8 + [1] * 9 + [0] * 6 + [1] * 4  # opening quote in, closing quote out, unclosed runs on
    assert got.tolist() == expected


def test_python_quotes_follow_strings_escapes_triple_quotes_and_comments():
    text = "x = 'a\\'b'  # don't\ns = \"\"\"it's\n\"q\"\n\"\"\" + \"u"
    got = cells.inside_quotes(text, python=True)
    # 'a\'b' (escaped quote inside); the comment's apostrophe ignored; the docstring spans lines with
    # its own quotes inside; an unterminated one-line string ends at the end of the text
    expected = [0] * 4 + [1] * 5 + [0] * 11 + [0] * 4 + [1] * 12 + [0] * 6 + [1] * 2
    assert len(expected) == len(text)
    assert got.tolist() == expected


def test_a_one_line_python_string_ends_at_its_line():
    got = cells.inside_quotes("a = 'open\nb = 1", python=True)
    assert got.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1] + [0] * 6


def test_position_in_line_and_indentation():
    text = "ab\n  cd\n\n\tx y\n"
    assert cells.line_position(text).tolist() == [0, 1, 2, 0, 1, 2, 3, 4, 0, 0, 1, 2, 3, 4]
    assert cells.indentation(text).tolist() == [0, 0, 0, 1, 2, 2, 2, 2, 0, 1, 1, 1, 1, 1]
    assert list(cells.features(text)) == list(cells.FEATURES)


def test_correlations_equal_numpy_and_a_constant_column_is_zero():
    rng = np.random.default_rng(0)
    feature = rng.normal(size=200)
    states = np.column_stack([rng.normal(size=200), -3 * feature + rng.normal(size=200) * 0.1, np.ones(200)])
    r = cells.correlations(states, feature)
    assert r[:2] == pytest.approx([np.corrcoef(states[:, k], feature)[0, 1] for k in range(2)])
    assert r[2] == 0.0
    picked = cells.best_units(states, {"f": feature, "flat": np.zeros(200)})
    assert picked[0]["unit"] == 1 and picked[0]["correlation"] == pytest.approx(r[1]) and r[1] < -0.99
    assert picked[1] == {"feature": "flat", "unit": None, "correlation": None}
    with pytest.raises(ValueError, match=r"correlations: expected states \(chars, units\)"):
        cells.correlations(states, feature[:10])


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_recurrent_states_are_the_step_by_step_final_states(kind):
    tr.manual_seed(0)
    embed, rnn = nn.Embedding(7, 5), getattr(nn, kind)(5, 6, num_layers=2)
    ids = np.array([1, 4, 2, 6, 0, 3])
    states = cells.recurrent_states(embed, rnn, ids)
    assert states.shape == (6, 6) and embed.training and rnn.training
    rnn.eval()
    with tr.no_grad():
        _, final = rnn(embed(tr.tensor(ids.reshape(-1, 1))))
    last = final[1] if kind == "LSTM" else final  # the whole sequence at once ends in the last step's state
    assert np.allclose(states[-1], last[-1, 0].numpy(), atol=1e-5)
    with tr.no_grad():
        _, prefix = rnn(embed(tr.tensor(ids[:3].reshape(-1, 1))))
    assert np.allclose(states[2], (prefix[1] if kind == "LSTM" else prefix)[-1, 0].numpy(), atol=1e-5)


# ------------------------------------------------------------------------------- char-lstm cells.html
LABEL = re.compile(r">([a-z ]+): unit (\d+), r = ([+-][0-9.]+)</div>")


def _independent_features(text, python):
    """Column and indentation written out again here, differently, to check the module's."""
    lines = text.split("\n")
    column, indent = [], []
    for k, line in enumerate(lines):
        full = line + ("\n" if k < len(lines) - 1 else "")
        lead = len(line) - len(line.lstrip(" \t"))
        column += list(range(len(full)))
        indent += [min(i + 1, lead) for i in range(len(full))]
    return {"inside quotes": cells.inside_quotes(text, python), "position in line": np.array(column),
            "indentation": np.array(indent)}


@pytest.mark.parametrize("argv, python", [(["--corpus", "stdlib"], True), ([], False)])
def test_char_lstm_quick_writes_cells_html_whose_correlations_recompute(tmp_path, argv, python):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    metrics = support.load_example("char-lstm").main(
        ["--quick", "--epochs", "0.5", "--sample-length", "10", "--cells-chars", "1500", *argv, "--out", str(out)])
    report = metrics["cells"]
    assert report["state"] == "c" and report["chars"] == 1500 and report["quotes"] == ("python" if python else "prose")

    checkpoint = tr.load(out / "checkpoint.npz")
    vocab = CharVocab.from_dict(checkpoint["vocab"])
    model = support.load_example("char-lstm").build_model(len(vocab), checkpoint["config"], "cpu")
    model.load_state_dict(checkpoint["model"])
    text = support.load_example("char-lstm").texts.load_corpus(
        type("Args", (), {"data": None, "corpus": "stdlib" if python else None})())[0]
    _, val_ids = split_text(vocab.encode(text), val_fraction=0.1)
    stretch = vocab.decode(val_ids[:1500])
    states = cells.recurrent_states(model.embed, model.rnn, val_ids[:1500])
    expected = _independent_features(stretch, python)

    page = (out / "cells.html").read_text(encoding="utf-8")
    shown = {name: (int(unit), float(r)) for name, unit, r in LABEL.findall(page)}
    for pick in report["units"]:
        feature = expected[pick["feature"]]
        if np.all(feature == feature[0]):
            assert pick["unit"] is None and pick["feature"] not in shown
            continue
        r = np.array([np.corrcoef(states[:, k], feature)[0, 1] if states[:, k].std() > 0 else 0.0
                      for k in range(states.shape[1])])
        assert pick["unit"] == int(np.argmax(np.abs(r)))
        assert pick["correlation"] == pytest.approx(r[pick["unit"]], abs=1e-6)
        assert shown[pick["feature"]] == (pick["unit"], pytest.approx(pick["correlation"], abs=5e-4))
    assert shown, "cells.html shows at least the position-in-line unit"
    assert abs(dict((p["feature"], p["correlation"]) for p in report["units"])["position in line"]) > 0.3
    if python:  # Python source has strings and indented lines: every feature gets a unit
        assert len(shown) == 3
    assert html.unescape("".join(re.findall(r'title="[^"]*">(.*?)</span>', page, re.S)[:1500])) == stretch
