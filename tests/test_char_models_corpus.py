"""min-char-rnn and char-lstm on the lectures' corpus: the corpus flags, the held-out split, and top-k sampling.

* Without ``--corpus``/``--data`` both train on tinyshakespeare (65 characters) and report
  ``val_nats_per_char``: the loss of the trained weights on ``split_text(vocab.encode(text), 0.1)[1]``
  of the whole corpus (recomputed here from the checkpoint), below chance ln 65 after a quick run.
* ``--corpus stdlib`` and ``--data PATH`` still work; both together, or a bad ``--top-k``, is one line
  on stderr with exit code 2.
* ``tinygrad_rnn.examples_text.next_char_probs`` / ``sample_next`` on given logits: top-k 1 is the
  argmax, top-k K never leaves the K largest logits and renormalises softmax over them; and the
  examples' own sampling loops obey the same rule step by step.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_rnn as tr
from tinygrad_rnn import cli, nn
from tinygrad_rnn import examples_support as support
from tinygrad_rnn import examples_text as texts
from tinygrad_rnn.data import CharVocab, load_tinyshakespeare, split_text, stdlib_corpus

pytest.importorskip("matplotlib")

SHAKESPEARE_CHARS = 1_115_394


def run_example(name, *argv):
    return support.load_example(name).main([str(a) for a in argv])


def cli_error(capsys, *argv) -> str:
    """Run ``tinygrad-rnn ARGV`` in-process; it must exit 2 with one stderr line and no traceback."""
    with pytest.raises(SystemExit) as stop:
        cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err.strip()


@pytest.fixture(scope="module")
def shakespeare_split():
    text = load_tinyshakespeare()
    vocab = CharVocab.from_text(text)
    return vocab, split_text(vocab.encode(text), val_fraction=0.1)


@pytest.fixture(scope="module")
def small_text(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "story.txt"
    path.write_text("the cat sat on the mat. the dog sat on the log.\n" * 300, encoding="utf-8")
    return path


def _reload_min_char_rnn(out):
    checkpoint = tr.load(out / "checkpoint.npz")
    vocab = CharVocab.from_dict(checkpoint["vocab"])
    model = support.load_example("min-char-rnn").MinCharRNN(len(vocab), checkpoint["config"]["hidden"])
    model.load_state_dict(checkpoint["model"])
    return model, vocab


def _reload_char_lstm(out):
    checkpoint = tr.load(out / "checkpoint.npz")
    vocab = CharVocab.from_dict(checkpoint["vocab"])
    model = support.load_example("char-lstm").build_model(len(vocab), checkpoint["config"], "cpu")
    model.load_state_dict(checkpoint["model"])
    return model, vocab


# ----------------------------------------------------------------------------- the default corpus
def test_min_char_rnn_defaults_to_tinyshakespeare_and_learns_on_its_split(tmp_path, shakespeare_split):
    vocab, (train, val) = shakespeare_split
    out = tmp_path / "run"
    metrics = run_example("min-char-rnn", "--quick", "--iters", 800, "--eval-every", 400, "--sample-every", 400,
                          "--out", out)
    assert metrics["corpus"] == "shakespeare" and metrics["corpus_chars"] == SHAKESPEARE_CHARS
    assert metrics["vocab_size"] == 65 == len(vocab)
    assert metrics["held_out_chars"] == len(val) == 111_539
    assert metrics["train_chars"] == 60_000 < len(train)  # --quick trains on a prefix of the training part
    assert metrics["val_nats_per_char"] == metrics["held_out_loss"]
    assert metrics["val_nats_per_char"] < math.log(65) - 1.0
    assert metrics["held_out_curve"][-1] < metrics["held_out_curve"][0]
    # the number is the saved weights' loss on exactly split_text(vocab.encode(text), val_fraction=0.1)[1]
    model, saved_vocab = _reload_min_char_rnn(out)
    assert saved_vocab.chars == vocab.chars
    assert support.char_model_loss(model, val, "cpu") == pytest.approx(metrics["val_nats_per_char"], rel=1e-6)


def test_char_lstm_defaults_to_tinyshakespeare_and_learns_on_its_split(tmp_path, shakespeare_split):
    vocab, (_, val) = shakespeare_split
    out = tmp_path / "run"
    metrics = run_example("char-lstm", "--quick", "--epochs", 0.5, "--sample-length", 20, "--out", out)
    assert metrics["corpus"] == "shakespeare" and metrics["corpus_chars"] == SHAKESPEARE_CHARS
    assert metrics["vocab_size"] == 65 and metrics["val_chars"] == len(val)
    assert metrics["val_nats_per_char"] == metrics["val_curve"][-1] == metrics["final_val_loss"]
    assert metrics["val_nats_per_char"] < math.log(65) - 1.0
    assert metrics["val_nats_per_char"] < metrics["unigram_loss"]
    model, saved_vocab = _reload_char_lstm(out)  # the checkpoint holds the best evaluation's weights
    assert saved_vocab.chars == vocab.chars
    assert support.char_model_loss(model, val, "cpu") == pytest.approx(metrics["val_loss"], rel=1e-6)


@pytest.mark.parametrize("name, argv", [
    ("min-char-rnn", ["--iters", 200, "--hidden", 32, "--eval-every", 200, "--sample-every", 200]),
    ("char-lstm", ["--epochs", 0.2, "--sample-length", 20]),
])
def test_the_stdlib_corpus_is_still_a_choice(tmp_path, name, argv):
    metrics = run_example(name, "--quick", "--corpus", "stdlib", *argv, "--out", tmp_path)
    corpus = stdlib_corpus(texts.STDLIB_CHARS)
    assert metrics["corpus"] == "stdlib" and metrics["corpus_chars"] == len(corpus)
    assert metrics["vocab_size"] == len(set(corpus)) != 65
    assert metrics["val_nats_per_char"] < math.log(metrics["vocab_size"])


@pytest.mark.parametrize("name, argv", [
    ("min-char-rnn", ["--iters", 300, "--hidden", 32, "--eval-every", 300, "--sample-every", 300]),
    ("char-lstm", ["--epochs", 1, "--sample-length", 20]),
])
def test_data_trains_on_the_given_file(tmp_path, small_text, name, argv):
    metrics = run_example(name, "--quick", "--data", small_text, *argv, "--out", tmp_path)
    text = small_text.read_text(encoding="utf-8")
    assert metrics["corpus"] == str(small_text) and metrics["corpus_chars"] == len(text)
    assert metrics["vocab_size"] == len(set(text))
    assert metrics["val_nats_per_char"] < math.log(len(set(text))) - 0.5


@pytest.mark.parametrize("name", ["min-char-rnn", "char-lstm"])
def test_corpus_and_data_together_is_a_one_line_error(capsys, tmp_path, small_text, name):
    line = cli_error(capsys, "run", name, "--corpus", "shakespeare", "--data", small_text, "--out", tmp_path / "o")
    assert line.startswith(f"tinygrad-rnn run {name}: error:") and "--data" in line and "--corpus" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["min-char-rnn", "char-lstm"])
def test_an_unknown_corpus_is_a_one_line_error(capsys, tmp_path, name):
    line = cli_error(capsys, "run", name, "--corpus", "linux", "--out", tmp_path)
    assert "argument --corpus" in line and "'linux'" in line and "shakespeare" in line


# ------------------------------------------------------------------------------------- --top-k flag
@pytest.mark.parametrize("name", ["min-char-rnn", "char-lstm"])
@pytest.mark.parametrize("value", ["0", "-3", "2.5", "many", ""])
def test_a_bad_top_k_is_a_one_line_error(capsys, tmp_path, name, value):
    line = cli_error(capsys, "run", name, f"--top-k={value}", "--out", tmp_path / "o")
    assert "argument --top-k" in line and "positive integer" in line and repr(value) in line
    assert not (tmp_path / "o").exists()  # refused before anything ran


def test_sample_mode_top_k_one_is_greedy_whatever_the_seed(tmp_path, small_text):
    run_example("char-lstm", "--quick", "--data", small_text, "--epochs", 0.5, "--sample-length", 10,
                "--out", tmp_path / "train")
    checkpoint = tmp_path / "train" / "checkpoint.npz"
    samples = [run_example("char-lstm", "sample", "--checkpoint", checkpoint, "--prime", "the ", "--top-k", 1,
                           "--sample-length", 60, "--seed", seed, "--out", tmp_path / f"s{seed}")
               for seed in (0, 1)]
    assert samples[0]["sample"] == samples[1]["sample"] and samples[0]["top_k"] == 1
    free = [run_example("char-lstm", "sample", "--checkpoint", checkpoint, "--prime", "the ", "--temperature", 2,
                        "--sample-length", 60, "--seed", seed, "--out", tmp_path / f"f{seed}")["sample"]
            for seed in (0, 1)]
    assert free[0] != free[1]  # without top-k the seed matters


# --------------------------------------------------------------------------- the sampling function
def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def test_top_k_one_is_the_argmax_whatever_the_rng_and_temperature():
    logits = np.array([0.3, 2.0, -1.0, 1.99, 0.0])
    for seed in range(20):
        for temperature in (0.5, 1.0, 5.0):
            assert texts.sample_next(logits, np.random.default_rng(seed), temperature, top_k=1) == 1
    np.testing.assert_array_equal(texts.next_char_probs(logits, top_k=1), [0, 1, 0, 0, 0])


def test_top_k_renormalises_softmax_over_the_k_largest_logits():
    logits = np.array([1.0, 3.0, -2.0, 2.5, 0.5, 2.9])
    p = texts.next_char_probs(logits, temperature=0.7, top_k=3)
    top = [1, 5, 3]
    expected = np.zeros(6)
    expected[top] = _softmax(logits[top] / 0.7)
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    np.testing.assert_allclose(texts.next_char_probs(logits, temperature=0.7), _softmax(logits / 0.7), rtol=1e-12)
    np.testing.assert_allclose(texts.next_char_probs(logits, top_k=6), texts.next_char_probs(logits))
    np.testing.assert_allclose(texts.next_char_probs(logits, top_k=100), texts.next_char_probs(logits))


def test_top_k_matches_torch_topk_and_softmax():
    torch = pytest.importorskip("torch")
    logits = np.random.default_rng(0).normal(size=40)
    t = torch.tensor(logits)
    for k in (1, 2, 7, 40):
        values, indices = torch.topk(t / 1.3, k)
        expected = torch.zeros(40, dtype=torch.float64).scatter(0, indices, torch.softmax(values, 0))
        np.testing.assert_allclose(texts.next_char_probs(logits, 1.3, k), expected.numpy(), rtol=1e-10, atol=1e-15)


def test_ties_at_the_kth_place_keep_exactly_k_characters_with_the_lower_ids():
    p = texts.next_char_probs(np.array([0.0, 1.0, 1.0, 1.0, -1.0]), top_k=2)
    np.testing.assert_allclose(p, [0, 0.5, 0.5, 0, 0])


@settings(max_examples=30, deadline=None)
@given(logits=hnp.arrays(np.float64, st.integers(2, 70), elements=st.floats(-8, 8, width=64)),
       k=st.integers(1, 8), temperature=st.floats(0.2, 3.0), seed=st.integers(0, 2**32 - 1))
def test_samples_never_leave_the_top_k(logits, k, temperature, seed):
    rng = np.random.default_rng(seed)
    allowed = set(np.argsort(-logits, kind="stable")[:k].tolist())
    draws = [texts.sample_next(logits, rng, temperature, top_k=k) for _ in range(50)]
    assert set(draws) <= allowed
    p = texts.next_char_probs(logits, temperature, top_k=k)
    assert np.count_nonzero(p) <= min(k, logits.size) and p.sum() == pytest.approx(1.0)


def test_draws_follow_the_renormalised_probabilities():
    logits = np.log(np.array([0.05, 0.4, 0.1, 0.3, 0.15]))
    rng = np.random.default_rng(0)
    draws = np.array([texts.sample_next(logits, rng, top_k=2) for _ in range(4000)])
    assert set(draws.tolist()) == {1, 3}
    assert np.mean(draws == 1) == pytest.approx(0.4 / 0.7, abs=0.03)


def test_sampling_takes_a_tensor_on_any_device(device):
    logits = tr.tensor(np.array([0.1, 0.2, 3.0, -1.0], dtype=np.float32), device=device)
    assert texts.sample_next(logits, np.random.default_rng(0), top_k=1) == 2
    np.testing.assert_allclose(texts.next_char_probs(logits, top_k=2).sum(), 1.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(top_k=0), "top_k must be a positive integer, got 0"),
    (dict(top_k=2.0), "top_k must be a positive integer, got 2.0"),
    (dict(top_k=True), "top_k must be a positive integer"),
    (dict(temperature=0.0), "temperature must be a number > 0, got 0.0"),
    (dict(temperature=-1), "temperature must be a number > 0"),
])
def test_bad_sampling_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=f"^next_char_probs: {message}"):
        texts.next_char_probs(np.zeros(4), **kwargs)


@pytest.mark.parametrize("logits, message", [(np.zeros((2, 3)), "1-D"), (np.zeros(0), "1-D"),
                                             (np.array([0.0, np.nan]), "finite")])
def test_bad_logits_are_named(logits, message):
    with pytest.raises(ValueError, match=f"next_char_probs: logits must .*{message}"):
        texts.next_char_probs(logits)


# ------------------------------------------------------------------- the examples' sampling loops
def _random_model(module_name, vocab_size):
    tr.manual_seed(0)
    if module_name == "min-char-rnn":
        model = support.load_example(module_name).MinCharRNN(vocab_size, 16)
    else:
        model = support.load_example(module_name).CharModel(vocab_size, "lstm", 8, 16, 1)
    for p in model.parameters():
        nn.init.normal_(p, 0.0, 0.7)  # logits far enough apart that float rounding cannot reorder them
    return model.eval()


def _sampled(name, model, vocab, top_k, seed, length=150):
    """Sampled ids and the sequence (seed character + samples) they were drawn after."""
    rng = np.random.default_rng(seed)
    if name == "min-char-rnn":
        ids = support.load_example(name).sample(model, None, 0, length, rng, "cpu", 1.0, top_k)
        return ids, [0, *ids]
    text = support.load_example(name).generate(model, vocab, vocab.chars[0], length, 1.0, rng, "cpu", top_k)
    ids = vocab.encode(text).tolist()
    return ids[1:], ids


@pytest.mark.parametrize("name", ["min-char-rnn", "char-lstm"])
def test_each_sampled_character_is_among_the_models_top_k_at_its_step(name):
    vocab = CharVocab.from_text("abcdefghijklmnopqrstuvwxyz .,")
    model = _random_model(name, len(vocab))
    for k in (1, 3):
        ids, context = _sampled(name, model, vocab, k, seed=5)
        with tr.no_grad():
            logits, _ = model(tr.tensor(np.array(context[:-1]).reshape(-1, 1)))
        ranks = [int(np.sum(step > step[i])) for step, i in zip(logits.numpy()[:, 0], ids)]
        assert max(ranks) < k, ranks  # rank 0 is the most probable character
        if k > 1:
            assert len(set(ranks)) > 1  # it samples, it does not always take the argmax
    assert _sampled(name, model, vocab, 1, seed=1)[0] == _sampled(name, model, vocab, 1, seed=2)[0]
