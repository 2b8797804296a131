"""The lecture examples hello, bptt-by-hand, binary-addition, vanishing-gradients, sequential-digits,
and the `tinygrad-rnn list` / `run` commands.

Each example's --quick mode runs once in-process (cached per module) and must
show it learned; a second run with the same seed must give bitwise-identical
losses.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import cli
from tinygrad_rnn import examples_support as support

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = ["hello", "bptt-by-hand", "binary-addition", "vanishing-gradients", "sequential-digits"]
GRAPH_FILE = "graph.svg" if shutil.which("dot") else "graph.dot"



@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """``quick_run(name)`` → (metrics, out dir) of ``name --quick --seed 0``, run once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            out = tmp_path_factory.mktemp(name)
            metrics = support.load_example(name).main(["--quick", "--seed", "0", "--out", str(out)])
            cache[name] = (metrics, out)
        return cache[name]

    return get


def _assert_outputs(metrics, out, *files):
    for name in (GRAPH_FILE, "metrics.json") + files:
        assert (out / name).is_file(), f"{name} missing from {sorted(p.name for p in out.iterdir())}"
        assert name in metrics["outputs"]
    for name in files:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["example"] == metrics["example"] and saved["quick"] is True and saved["device"] == "cpu"


# ------------------------------------------------------------------------ hello
def test_hello_learns_to_spell_hello(quick_run):
    metrics, out = quick_run("hello")
    assert metrics["sample"] == "hello"
    assert metrics["step_accuracy"] == 1.0
    assert metrics["final_loss"] < metrics["initial_loss"] / 10
    _assert_outputs(metrics, out, "loss.png")
    if GRAPH_FILE == "graph.svg":
        svg = (out / "graph.svg").read_text()
        assert svg.count("Tanh") >= 4  # the composed cell: one tanh op per unrolled step


# ----------------------------------------------------------------- bptt-by-hand
def test_bptt_by_hand_matches_closed_form(quick_run):
    metrics, out = quick_run("bptt-by-hand")
    assert metrics["max_abs_error"] <= 1e-10
    assert metrics["max_abs_error_second"] <= 1e-9
    assert [row["second"] for row in metrics["three_step"]] == pytest.approx([13.875, 104.0, 365.875], abs=1e-9)
    assert metrics["long_max_rel_error"] <= 1e-10
    assert [row["w"] for row in metrics["three_step"]] == [0.5, 1.0, 1.5]
    ratios = metrics["long_ratio_first_last"]
    assert ratios["0.5"] < 1e-5 and ratios["1"] == pytest.approx(1.0) and ratios["1.5"] > 1e3
    w = metrics["fitted_w"]  # x = (1, 1, 1), y = 1: w + w^2 + w^3 = 1
    assert w + w**2 + w**3 == pytest.approx(1.0, abs=1e-4)
    assert metrics["final_loss"] < 1e-8 < metrics["losses"][0]
    _assert_outputs(metrics, out, "gradient_vs_t.png")


def test_bptt_by_hand_closed_form_on_random_inputs():
    module = support.load_example("bptt-by-hand")
    rng = np.random.default_rng(1)
    for _ in range(5):
        xs = rng.normal(size=3).tolist()
        h0, y = float(rng.normal()), float(rng.normal())
        ws = rng.uniform(-2, 2, size=3).tolist()
        rows, _ = module.three_step_table(ws, xs, h0, y, "cpu")
        for row in rows:
            w = row["w"]
            y_hat = w * xs[2] + w**2 * xs[1] + w**3 * (xs[0] + h0)
            expected = 2 * (y_hat - y) * (xs[2] + 2 * w * xs[1] + 3 * w**2 * (xs[0] + h0))
            assert row["framework"] == pytest.approx(expected, abs=1e-10, rel=1e-12)
            assert abs(row["framework"] - row["closed_form"]) <= 1e-10
            first = xs[2] + 2 * w * xs[1] + 3 * w**2 * (xs[0] + h0)
            second = 2 * first**2 + 2 * (y_hat - y) * (2 * xs[1] + 6 * w * (xs[0] + h0))
            assert row["second"] == pytest.approx(second, abs=1e-9, rel=1e-12)


# --------------------------------------------------------------- binary-addition
def test_binary_addition_learned_and_hand_designed(quick_run):
    metrics, out = quick_run("binary-addition")
    assert metrics["hand_exact_all_pairs"] == 1.0
    assert metrics["hand_worked_example"] == "45 + 27 = 72"
    assert metrics["test_bitwise_accuracy"] >= 0.95
    assert metrics["test_exact_match"] >= 0.8
    assert metrics["final_loss"] < metrics["losses"][0] / 10
    _assert_outputs(metrics, out, "training.png", "model.npz")
    state = tr.load(out / "model.npz")
    assert set(state) == {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0",
                          "readout.weight", "readout.bias"}


def test_hand_designed_adder_is_exact_on_fresh_pairs():
    module = support.load_example("binary-addition")
    from tinygrad_rnn.data import bits_to_int, make_binary_addition

    x, y = make_binary_addition(500, n_bits=8, seed=123)
    bits, states = module.HandDesignedAdder()(tr.tensor(x))
    np.testing.assert_array_equal(bits.numpy(), y)
    a, b = bits_to_int(x[..., 0].astype(np.int64)), bits_to_int(x[..., 1].astype(np.int64))
    np.testing.assert_array_equal(bits_to_int(bits.numpy().astype(np.int64)), a + b)
    carries = states.numpy()[:, :, 1]  # hidden unit 2 is the carry out of each step
    running = np.stack([((a % 2 ** (t + 1)) + (b % 2 ** (t + 1))) >= 2 ** (t + 1) for t in range(8)], axis=1)
    np.testing.assert_array_equal(carries, running.astype(np.float32))


# ----------------------------------------------------------- vanishing-gradients
def test_vanishing_gradients_qualitative_facts(quick_run):
    metrics, out = quick_run("vanishing-gradients")
    ratio = metrics["ratio_first_last"]
    r05, r10, r15 = (ratio[f"RNN tanh, radius {r}"] for r in ("0.5", "1", "1.5"))
    assert r05 < 1e-6 and r05 < r10 < r15 and r15 > 1e-2
    for gated, opened in (("LSTM, default init", "LSTM, forget gate bias +2"),
                          ("GRU, default init", "GRU, update gate bias +2")):
        assert ratio[opened] > 1e-3 and ratio[opened] > 1e3 * ratio[gated]
    relu, expected = metrics["relu_ratio_first_last"], metrics["relu_expected_ratio"]
    assert relu["0.8"] < 1e-3 and relu["1.2"] > 1e3
    for key in ("0.8", "1", "1.2"):
        assert relu[key] == pytest.approx(expected[key], rel=0.1)
    # clipping: the unclipped run blows up (inf/NaN, or a loss spike of orders of magnitude), the clipped one trains
    unclipped, clipped = metrics["losses_no_clip"], metrics["losses"]
    finite = [v for v in unclipped if math.isfinite(v)]
    assert metrics["no_clip_diverged_at_step"] is not None or max(finite) > 100 * unclipped[0]
    assert max(clipped) < 10 * clipped[0]
    assert metrics["clip_final_loss"] < 0.7
    assert metrics["clip_final_loss"] < np.mean(finite[-50:]) - 0.2
    _assert_outputs(metrics, out, "gradient_norms.png", "clipping.png")


def test_vanishing_gradients_omega_keeps_the_gradient_flowing(tmp_path):
    """Pascanu et al.'s Omega, trained with gradients of gradients: the ratio ||dL/dh_1|| / ||dL/dh_T|| of
    the plain tanh RNN vanishes (~1e-5), the regularised one stays near 1, and Omega itself drops."""
    metrics = support.load_example("vanishing-gradients").main(
        ["--quick", "--seed", "0", "--omega", "2", "--omega-steps", "80", "--train-steps", "10", "--seq-len", "20",
         "--out", str(tmp_path)])
    assert metrics["plain_ratio_final"] < 1e-3
    assert 0.1 < metrics["omega_ratio_final"] < 10
    assert metrics["omega_final"] < 0.1 * metrics["plain_omega_final"]
    assert (tmp_path / "omega.png").read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------- sequential-digits
def test_sequential_digits_learns(quick_run):
    metrics, out = quick_run("sequential-digits")
    assert metrics["test_accuracy"] >= 0.6
    assert metrics["model"] == "1-layer LSTM"
    assert metrics["final_loss"] < metrics["losses"][0] / 2
    _assert_outputs(metrics, out, "digits.png", "model.npz")
    checkpoint = tr.load(out / "model.npz")
    assert checkpoint["args"]["cell"] == "lstm" and "classifier.weight" in checkpoint["model"]


def test_sequential_digits_options(tmp_path):
    module = support.load_example("sequential-digits")
    metrics = module.main(["--quick", "--out", str(tmp_path), "--cell", "gru", "--layers", "2", "--bidirectional",
                           "--hidden", "16", "--epochs", "2"])
    assert metrics["model"] == "2-layer bidirectional GRU"
    assert metrics["test_accuracy"] > 0.2  # chance is 0.1
    checkpoint = tr.load(tmp_path / "model.npz")
    assert "rnn.weight_hh_l1_reverse" in checkpoint["model"]
    assert checkpoint["model"]["classifier.weight"].shape == (10, 32)


# ------------------------------------------------------------------ determinism
@pytest.mark.parametrize("name", EXAMPLES)
def test_same_seed_same_losses(quick_run, tmp_path, name):
    first, _ = quick_run(name)
    again = support.load_example(name).main(["--quick", "--seed", "0", "--out", str(tmp_path)])
    for key in ("losses", "losses_no_clip"):
        if key in first:
            np.testing.assert_array_equal(np.asarray(first[key]), np.asarray(again[key]))


@pytest.mark.parametrize("name", ["hello", "binary-addition"])
def test_other_seed_other_losses(quick_run, tmp_path, name):
    first, _ = quick_run(name)
    other = support.load_example(name).main(["--quick", "--seed", "1", "--out", str(tmp_path)])
    assert first["losses"] != other["losses"]


# -------------------------------------------------------------------------- CLI
def test_cli_list_shows_every_example(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    listed = {line.split()[0]: line for line in lines}
    on_disk = {p.stem for p in (REPO / "examples").glob("*.py") if not p.name.startswith("_")}
    assert set(listed) == on_disk
    assert set(EXAMPLES) <= set(listed)
    assert "3 tanh hidden units" in listed["hello"]


def test_cli_run_hello(tmp_path, capsys):
    assert cli.main(["run", "hello", "--quick", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "metrics.json").read_text())["sample"] == "hello"
    assert "== hello: summary ==" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["run", "no-such-example"], "unknown example 'no-such-example'"),
        (["run", "hello", "--bogus"], "unrecognized arguments: --bogus"),
        (["run", "hello", "--device", "tpu"], "--device"),
        (["run"], "required"),
    ],
)
def test_cli_errors_are_one_line_exit_2(argv, words, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err


def test_cli_unknown_example_in_a_subprocess_has_no_traceback():
    result = subprocess.run([sys.executable, "-m", "tinygrad_rnn.cli", "run", "nope"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "unknown example 'nope'; available:" in result.stderr


def test_example_file_runs_as_a_script(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "examples" / "bptt-by-hand.py"), "--quick", "--out",
                             str(tmp_path), "--fit-steps", "5"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "metrics.json").read_text())["max_abs_error"] <= 1e-10
    bad = subprocess.run([sys.executable, str(REPO / "examples" / "bptt-by-hand.py"), "--x", "1,2"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "expected three inputs" in bad.stderr
    assert not (tmp_path / "bptt-by-hand").exists()  # a bad command line creates no output folder
