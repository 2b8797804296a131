"""`tinygrad-rnn graph KIND ...`: each lecture diagram renders from a real computation."""
import shutil

import pytest

from tinygrad_rnn import cli
from tinygrad_rnn.lecture_graphs import KINDS


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_writes_dot_text(kind, tmp_path, capsys):
    out = tmp_path / f"{kind}.dot"
    assert cli.main(["graph", kind, "--steps", "3", "--mode", "folded", "--cell", "gru", "-o", str(out)]) == 0
    source = out.read_text()
    assert source.startswith("digraph")
    assert 'label="t=1"' not in source and "×3" in source  # folded: the loop, not per-step clusters
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("dot") is None, reason="the graphviz 'dot' program is not installed")
def test_unrolled_svg_with_gradients(tmp_path):
    out = tmp_path / "seq2seq.svg"
    assert cli.main(["graph", "seq2seq", "--steps", "3", "--grads", "--cell", "lstm", "-o", str(out)]) == 0
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "decoder" in svg and "‖g‖" in svg


@pytest.mark.parametrize("argv,message", [
    (["graph", "bogus", "-o", "x.svg"], "invalid choice: 'bogus'"),
    (["graph", "stacked", "--steps", "0", "-o", "x.svg"], "--steps must be at least 1"),
    (["graph", "stacked", "-o", "x.txt"], "expected a .svg, .png, .pdf or .dot file"),
    (["graph", "stacked", "-o", "/no/such/folder/x.svg"], "does not exist"),
    (["graph", "many-to-one"], "give -o FILE"),
    (["graph", "many-to-one", "--html", "x.svg"], "--html x.svg: expected a .html file"),
    (["graph", "many-to-one", "--html", "no/such/folder/x.html"], "does not exist"),
])
def test_bad_graph_command_lines_exit_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
