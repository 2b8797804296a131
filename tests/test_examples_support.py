"""The examples' common machinery: flags, seeding, outputs, metrics, the registry, packaging."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import examples_support as support

REPO = Path(__file__).resolve().parent.parent


def _parser(tmp_path, name="demo-ex"):
    return support.example_parser(str(tmp_path / f"{name}.py"), "Demo example.\n\nMore text.")


def test_common_flags_defaults_and_values(tmp_path):
    parser = _parser(tmp_path)
    args = parser.parse_args([])
    assert (args.device, args.quick, args.seed, args.out) == ("cpu", False, 0, None)
    args = parser.parse_args(["--quick", "--seed", "7", "--out", "x", "--device", "cpu"])
    assert (args.quick, args.seed, args.out) == (True, 7, "x")
    assert parser.prog == "tinygrad-rnn run demo-ex"
    assert parser.description == "Demo example."


@pytest.mark.parametrize("argv", [["--bogus"], ["--seed", "-1"], ["--seed", "abc"]])
def test_bad_flag_is_one_line_exit_2(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as info:
        _parser(tmp_path).parse_args(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err


def test_existing_file_and_positive_int(tmp_path, capsys):
    parser = _parser(tmp_path)
    parser.add_argument("--data", type=support.existing_file)
    parser.add_argument("--steps", type=support.positive_int)
    present = tmp_path / "corpus.txt"
    present.write_text("abc")
    assert parser.parse_args(["--data", str(present)]).data == str(present)
    assert parser.parse_args(["--steps", "3"]).steps == 3
    for argv, words in ((["--data", str(tmp_path / "missing.txt")], "no such file"), (["--steps", "0"], "positive")):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err


def test_start_seeds_and_makes_out_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = support.start(_parser(tmp_path), ["--seed", "3"])
    assert run.out == Path("demo-ex") and (tmp_path / "demo-ex").is_dir()
    first = (tr.randn(4).numpy(), run.rng.standard_normal(3))
    run = support.start(_parser(tmp_path), ["--seed", "3", "--out", str(tmp_path / "a" / "b")])
    second = (tr.randn(4).numpy(), run.rng.standard_normal(3))
    assert (tmp_path / "a" / "b").is_dir()
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    run = support.start(_parser(tmp_path), ["--seed", "4", "--out", str(tmp_path / "c")])
    assert not np.array_equal(tr.randn(4).numpy(), first[0])


def test_bad_device_is_one_line_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        support.start(_parser(tmp_path), ["--device", "tpu", "--out", str(tmp_path)])
    assert info.value.code == 2
    assert "--device" in capsys.readouterr().err
    if not tr.cuda_is_available():
        with pytest.raises(SystemExit) as info:
            support.start(_parser(tmp_path), ["--device", "cuda", "--out", str(tmp_path)])
        assert info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "no usable GPU" in err


def test_finish_writes_metrics_json_and_prints_summary(tmp_path, capsys):
    run = support.start(_parser(tmp_path), ["--out", str(tmp_path), "--seed", "5", "--quick"])
    metrics = run.finish(
        {
            "accuracy": np.float32(0.75),
            "count": np.int64(3),
            "losses": [1.0, 0.5, float("nan")],
            "table": np.arange(3),
            "nested": {"inf": float("inf")},
        }
    )
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["accuracy"] == 0.75 and saved["count"] == 3 and saved["table"] == [0, 1, 2]
    assert saved["losses"][:2] == [1.0, 0.5] and saved["losses"][2] is None
    assert saved["nested"]["inf"] is None
    assert saved["example"] == "demo-ex" and saved["seed"] == 5 and saved["quick"] is True
    assert saved["device"] == "cpu" and saved["time_s"] >= 0
    assert saved["outputs"] == ["metrics.json"]
    assert math.isnan(metrics["losses"][2])
    out = capsys.readouterr().out
    assert "== demo-ex: summary ==" in out and "[3 values: 1 ... nan]" in out and "accuracy" in out


def test_progress_bar_iterates_and_shows_postfix(tmp_path, capsys):
    run = support.start(_parser(tmp_path), ["--out", str(tmp_path)])
    bar = run.progress(3, desc="train")
    seen = []
    for i in bar:
        bar.set_postfix(loss=f"{i:.2f}")
        seen.append(i)
    bar.close()
    assert seen == [0, 1, 2]
    assert "demo-ex train" in capsys.readouterr().err


def test_save_figure_writes_png(tmp_path):
    run = support.start(_parser(tmp_path), ["--out", str(tmp_path)])
    fig, ax = support.figure()
    ax.plot([0, 1], [1, 0])
    path = run.save_figure(fig, "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "curve.png" in run.outputs


def _small_graph():
    w = tr.tensor([0.5, -1.0], requires_grad=True)
    loss = (w * w).sum()
    loss.name = "loss"
    return loss


def test_graph_renders_svg_and_dot(tmp_path):
    pytest.importorskip("tinygrad_rnn.viz")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed")
    run = support.start(_parser(tmp_path), ["--out", str(tmp_path)])
    path = run.graph(_small_graph(), "model")
    assert path == tmp_path / "model.svg"
    assert "<svg" in path.read_text()
    assert "digraph" in (tmp_path / "model.dot").read_text()
    assert run.outputs == ["model.dot", "model.svg", "model.html"]
    assert "<script>" in (tmp_path / "model.html").read_text()  # the explorer page beside the picture


def test_graph_without_dot_writes_source_and_says_so(tmp_path, monkeypatch, capsys):
    pytest.importorskip("tinygrad_rnn.viz")
    import graphviz

    def missing(*args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot", "-Tsvg"])

    monkeypatch.setattr(graphviz.Digraph, "pipe", missing)
    run = support.start(_parser(tmp_path), ["--out", str(tmp_path)])
    path = run.graph(_small_graph(), "model")
    assert path == tmp_path / "model.dot" and path.read_text().lstrip().startswith("digraph")
    assert not (tmp_path / "model.svg").exists()
    assert "`dot` program was not found" in capsys.readouterr().err


# -------------------------------------------------------------------- registry
def test_registry_lists_every_example_file():
    folder = support.examples_dir()
    assert (folder / "__init__.py").exists()
    names = {p.stem for p in folder.glob("*.py") if not p.name.startswith("_")}
    registry = support.available_examples()
    assert set(registry) == names
    assert all(desc and desc != "(no description)" for desc in registry.values())


def test_registry_reads_docstrings_and_loads_hyphenated_files(tmp_path, monkeypatch):
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "my-demo.py").write_text(
        textwrap.dedent(
            '''
            """A demo that returns its argv.

            Details.
            """
            def main(argv=None):
                return {"argv": argv}
            '''
        )
    )
    (tmp_path / "no-main.py").write_text('"""No main here."""\nX = 1\n')
    monkeypatch.setattr(support, "examples_dir", lambda: tmp_path)
    assert support.available_examples() == {"my-demo": "A demo that returns its argv.", "no-main": "No main here."}
    module = support.load_example("my-demo")
    assert module.main(["--quick"]) == {"argv": ["--quick"]}
    with pytest.raises(support.UnknownExampleError, match="unknown example 'nope'; available: my-demo, no-main"):
        support.load_example("nope")
    with pytest.raises(support.UnknownExampleError, match="defines no main"):
        support.load_example("no-main")


# ------------------------------------------------------------------- packaging
def test_wheel_ships_the_examples(tmp_path):
    """`pip install .` (not only editable) must carry examples/ as tinygrad_rnn.examples."""
    pytest.importorskip("setuptools")
    build = tmp_path / "src"
    shutil.copytree(REPO, build, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".*"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(build), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "whl")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        pytest.skip(f"could not build a wheel here: {result.stderr.strip()[-300:]}")
    (wheel,) = (tmp_path / "whl").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for example in (REPO / "examples").glob("*.py"):
        assert f"tinygrad_rnn/examples/{example.name}" in names
    assert "tinygrad_rnn/examples_support.py" in names and "tinygrad_rnn/cli.py" in names
    for package in (REPO / "tinygrad_rnn").rglob("__init__.py"):
        relative = package.relative_to(REPO).as_posix()
        if "__pycache__" not in relative:
            assert relative in names
    assert not any(name.startswith("examples/") for name in names)
