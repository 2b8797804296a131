"""Count-based language models (``tr.data.NGramLM``) and the ``ngram`` example.

Hand-computed probabilities on tiny corpora, the sums over the vocabulary, the
stream score against the chain rule, the word models' ``<unk>`` spelling, one
scale for word and character models, and the example's quick run and errors.
"""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_rnn import cli
from tinygrad_rnn import examples_support as support
from tinygrad_rnn.data import NGramLM, word_tokens

CORPUS = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
          "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n")


def _chain_rule(model, text):
    """The log-probability of ``text`` as the sum of log P(token_i | tokens before it), one call each."""
    tokens = list(text) if model.level == "char" else word_tokens(text)
    return sum(model.log_prob(token, tokens[:i]) for i, token in enumerate(tokens))


# --------------------------------------------------------------------------------------- tokens
def test_word_tokens_give_back_the_text():
    assert word_tokens("To be, or not to be:\n  'tis o'er--") == [
        "To", " be", ",", " or", " not", " to", " be", ":", "\n", " ", " '", "tis", " o'er", "-", "-"]
    assert "".join(word_tokens(CORPUS)) == CORPUS


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab' \n,.-\tÄ1_", max_size=40))
def test_word_tokens_concatenate_to_any_text(text):
    assert "".join(word_tokens(text)) == text


# ---------------------------------------------------------------------------- hand-checked counts
def test_bigram_probabilities_by_hand():
    """abracadabra: a is followed by b, c, d, b (the last a by nothing); r by a, a; V = 5 (a b c d r)."""
    ml = NGramLM(2, k=0).fit("abracadabra")
    assert ml.vocab == ["a", "b", "c", "d", "r"]
    np.testing.assert_allclose(ml.next_probs("a"), [0, 2 / 4, 1 / 4, 1 / 4, 0], rtol=1e-15)
    np.testing.assert_allclose(ml.next_probs("r"), [1, 0, 0, 0, 0])
    assert ml.log_prob("b", "a") == pytest.approx(math.log(0.5), rel=1e-15)
    assert ml.log_prob("r", "a") == -math.inf  # maximum likelihood: an event never seen has probability 0
    add_one = NGramLM(2, k=1).fit("abracadabra")
    np.testing.assert_allclose(add_one.next_probs("a"), [1 / 9, 3 / 9, 2 / 9, 2 / 9, 1 / 9], rtol=1e-15)
    np.testing.assert_allclose(add_one.next_probs("r"), [3 / 7, 1 / 7, 1 / 7, 1 / 7, 1 / 7], rtol=1e-15)
    # the first character of a text has no context: the unigram (counts a5 b2 c1 d1 r2 of 11, plus k each)
    np.testing.assert_allclose(add_one.next_probs(""), np.array([6, 3, 2, 2, 3]) / 16, rtol=1e-15)
    score = add_one.score("abr")
    assert score.log_prob == pytest.approx(math.log(6 / 16) + math.log(3 / 9) + math.log(3 / 7), rel=1e-12)
    assert score.chars == 3 and score.nats_per_char == pytest.approx(-score.log_prob / 3)


def test_k_zero_is_maximum_likelihood_on_seen_events():
    text = "the cat sat on the mat; the rat sat on the hat."
    model = NGramLM(3, k=0).fit(text)
    counts = {}
    for i in range(len(text) - 2):
        counts[text[i:i + 3]] = counts.get(text[i:i + 3], 0) + 1
    for trigram, count in counts.items():
        context_count = sum(c for t, c in counts.items() if t[:2] == trigram[:2])
        assert math.exp(model.log_prob(trigram[2], trigram[:2])) == pytest.approx(count / context_count, rel=1e-14)


def test_an_unseen_context_gets_the_uniform_distribution():
    model = NGramLM(3, k=0).fit("abracadabra")
    np.testing.assert_allclose(model.next_probs("rr"), np.full(5, 1 / 5))
    np.testing.assert_allclose(NGramLM(3, k=2.5).fit("abracadabra").next_probs("dd"), np.full(5, 1 / 5))


def test_a_text_shorter_than_the_order_leaves_every_long_context_unseen():
    model = NGramLM(4, k=0).fit("ab")
    np.testing.assert_allclose(model.next_probs("ab"), [0.5, 0.5])  # no 3-character context was ever seen
    np.testing.assert_allclose(model.next_probs("a"), [0, 1])
    assert model.score("abab").log_prob == pytest.approx(math.log(0.5) + math.log(0.5) * 2)  # a, b|a=1, a|ab, b|aba


def test_nats_per_char_of_a_uniform_model_is_ln_v():
    assert NGramLM(1, k=0).fit("abcd" * 25).nats_per_char("dcbaabcdda") == pytest.approx(math.log(4), rel=1e-14)
    assert NGramLM(1, k=3).fit("abcd" * 25).nats_per_char("aaaa") == pytest.approx(math.log(4), rel=1e-14)
    huge_k = NGramLM(3, k=1e12).fit(CORPUS)
    assert huge_k.nats_per_char(CORPUS[::-1]) == pytest.approx(math.log(len(set(CORPUS))), rel=1e-9)


# --------------------------------------------------------------------------------- distributions
@pytest.mark.parametrize("level", ["char", "word"])
@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("k, interpolation", [(0.0, None), (0.5, None), (0.1, "em"), (0.0, "em"), (1.0, "given")])
def test_probabilities_sum_to_one_in_every_context(level, order, k, interpolation):
    if interpolation == "given":
        interpolation = list(np.arange(1, order + 1) / np.arange(1, order + 1).sum())
    model = NGramLM(order, level, k=k, interpolation=interpolation, min_count=2).fit(CORPUS, chars="XYZ")
    contexts = ["", "F", "First Citizen:\n", "speak.", "XYZ never seen", "\n\n", "ZZ", " resolved"]
    if level == "char":
        contexts += ["".join(pair) for pair in itertools.product("Ae\n Z", repeat=2)]
    for context in contexts:
        probs = model.next_probs(context)
        assert probs.shape == (model.vocab_size,) and np.all(probs >= 0)
        assert probs.sum() == pytest.approx(1.0, abs=1e-12), context


@settings(max_examples=40, deadline=None)
@given(text=st.text(alphabet="ab \n.", min_size=12, max_size=60), order=st.integers(1, 4),
       k=st.sampled_from([0.0, 0.01, 1.0]), em=st.booleans(), level=st.sampled_from(["char", "word"]),
       context=st.text(alphabet="ab \n.", max_size=6))
def test_random_models_are_normalised_and_score_by_the_chain_rule(text, order, k, em, level, context):
    try:
        model = NGramLM(order, level, k=k, interpolation="em" if em else None, min_count=2).fit(text, "ab \n.")
    except ValueError as exc:  # too few word tokens to hold some out for the weights
        assert em and level == "word" and "needs a training text" in str(exc)
        return
    assert model.next_probs(context).sum() == pytest.approx(1.0, abs=1e-12)
    total = model.score(context + text).log_prob
    expected = _chain_rule(model, context + text)
    assert total == pytest.approx(expected, rel=1e-12, abs=1e-12) or (total == expected == -math.inf)


@pytest.mark.parametrize("level", ["char", "word"])
def test_nats_per_char_is_the_chain_rule_over_the_characters(level):
    held_out = "First Citizen:\nWe are accounted poor citizens, the patricians good. QJ!\n"
    model = NGramLM(3, level, k=0.05, interpolation="em").fit(CORPUS, chars=held_out)  # characters CORPUS lacks
    expected = -_chain_rule(model, held_out) / len(held_out)
    assert model.nats_per_char(held_out) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------------- interpolation
def test_given_weights_mix_the_orders():
    text = CORPUS * 2
    unigram, bigram, trigram = (NGramLM(n, k=0.5).fit(text) for n in (1, 2, 3))
    mixed = NGramLM(3, k=0.5, interpolation=[0.2, 0.3, 0.5]).fit(text)
    for context in ["Fi", "en", "zz", " s"]:
        expected = (0.2 * unigram.next_probs(context) + 0.3 * bigram.next_probs(context)
                    + 0.5 * trigram.next_probs(context))
        np.testing.assert_allclose(mixed.next_probs(context), expected, rtol=1e-13)
    # one character of context: orders 1 and 2 only, their weights renormalised (0.2 : 0.3)
    np.testing.assert_allclose(mixed.next_probs("e"), 0.4 * unigram.next_probs("e") + 0.6 * bigram.next_probs("e"),
                               rtol=1e-13)
    np.testing.assert_allclose(NGramLM(3, k=0.5, interpolation=[0, 0, 1]).fit(text).next_probs("Fi"),
                               trigram.next_probs("Fi"), rtol=1e-15)


def test_em_weights_maximise_the_likelihood_of_the_held_out_part():
    rng = np.random.default_rng(0)
    letters, p = list("abcdefghijklmnopqrst"), np.arange(20, 0, -1) / 210
    text = "".join(rng.choice(letters, p=p, size=400)).replace("a", "ab")[:400]  # a unigram source with a bigram habit
    model = NGramLM(2, k=0.1, interpolation="em").fit(text)
    weights = model.weights
    assert weights.shape == (2,) and np.all(weights > 0.2) and weights.sum() == pytest.approx(1.0)
    cut = int(round(len(text) * 0.9))

    def held_out_loss(w1):  # the first scored character is the unigram's whatever the weights
        return NGramLM(2, k=0.1, interpolation=[w1, 1 - w1]).fit(text[:cut]).nats_per_char(text[cut - 1:])

    best = held_out_loss(weights[0])
    for w1 in np.linspace(0.01, 0.99, 25):
        assert best <= held_out_loss(w1) + 1e-12
    assert best < held_out_loss(weights[0] + 0.02) and best < held_out_loss(weights[0] - 0.02)


# --------------------------------------------------------------------------------- word models
def test_word_model_unknown_words_by_hand():
    """'x x x y' -> tokens x, ' x', ' x', ' y': ' x' is known (2), the rare x and ' y' are <unk>, spelled by an
    add-one character bigram over ' ', x, y with start and end, fitted on 'x' and ' y'."""
    model = NGramLM(1, "word", k=0, min_count=2).fit("x x x y")
    assert model.vocab == ["<unk>", " x"]
    np.testing.assert_allclose(model.next_probs(""), [0.5, 0.5])
    start = np.array([2, 2, 1, 1]) / 6  # next after the start: ' ', x, y, end
    after_space, after_letter = np.array([1, 1, 2, 1]) / 5, np.array([1, 1, 1, 2]) / 5
    spelling = start[0] * after_space[1] * after_letter[2] * after_letter[3]  # ' ' x y end
    assert model.log_prob(" xy") == pytest.approx(math.log(0.5 * spelling), rel=1e-14)
    expected = -(math.log(0.5) + math.log(0.5 * spelling)) / 5  # tokens ' x', ' xy': 5 characters
    assert model.nats_per_char(" x xy") == pytest.approx(expected, rel=1e-14)


def test_word_and_char_models_share_one_scale():
    """On punctuation every word token is one character: the two models are the same (k = 0, seen contexts)."""
    train, held_out = ".,;.,;..;,;;,.", ".,;.;"
    for interpolation in (None, [0.3, 0.7]):
        char = NGramLM(2, "char", k=0, interpolation=interpolation).fit(train)
        word = NGramLM(2, "word", k=0, interpolation=interpolation, min_count=1).fit(train)
        assert word.vocab == ["<unk>", ",", ".", ";"]
        assert word.nats_per_char(held_out) == pytest.approx(char.nats_per_char(held_out), rel=1e-14)
    word = NGramLM(2, "word", k=0.1).fit(CORPUS)
    text = "All:\nSpeak, famish.\n"
    assert word.nats_per_char(text) * len(text) == pytest.approx(-word.score(text).log_prob, rel=1e-14)


# ------------------------------------------------------------------------------------ generation
@pytest.mark.parametrize("level", ["char", "word"])
def test_generate_is_reproducible_with_a_seed(level):
    model = NGramLM(3, level, k=0.1, interpolation="em").fit(CORPUS)
    first, again = model.generate(80, rng=7, prime="All:"), model.generate(80, rng=np.random.default_rng(7),
                                                                           prime="All:")
    assert first == again and first.startswith("All:") and len(first) == 84
    assert set(first) <= set(CORPUS)
    assert model.generate(80, rng=8, prime="All:") != first
    assert model.generate(0, rng=1) == ""


def test_a_trigram_samples_only_what_it_has_seen():
    model = NGramLM(3, k=0).fit("abcabcabc")
    assert model.generate(12, rng=3, prime="ab") == "ab" + "cabcabcabcab"


# ---------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs, match", [
    (dict(order=0), r"NGramLM: order must be a positive integer, got 0"),
    (dict(order=2.5), r"NGramLM: order must be a positive integer, got 2.5"),
    (dict(level="byte"), r"NGramLM: level must be 'char' or 'word', got 'byte'"),
    (dict(k=-1), r"NGramLM: k must be a finite number >= 0, got -1"),
    (dict(k=float("nan")), r"NGramLM: k must be a finite number >= 0, got nan"),
    (dict(order=2, interpolation=[0.5, 0.4]), r"NGramLM: interpolation weights must sum to 1, got \[0.5, 0.4\]"),
    (dict(order=2, interpolation=[0.5, 0.25, 0.25]), r"one weight per order 1..2"),
    (dict(order=2, interpolation=[1.5, -0.5]), r"finite and >= 0"),
    (dict(interpolation="mle"), r"NGramLM: interpolation must be None, 'em' or 3 weights, got 'mle'"),
    (dict(min_count=0), r"NGramLM: min_count must be a positive integer"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NGramLM(**kwargs)


@pytest.mark.parametrize("call", ["nats_per_char", "score", "log_prob", "next_probs", "generate"])
def test_an_unfitted_model_says_so(call):
    args = {"nats_per_char": ("ab",), "score": ("ab",), "log_prob": ("a", ""), "next_probs": ("",),
            "generate": (5,)}[call]
    with pytest.raises(RuntimeError, match=rf"NGramLM.{call}: the model is not fitted yet; call fit\(text\) first"):
        getattr(NGramLM(2), call)(*args)


def test_bad_texts_and_tokens_are_named():
    model = NGramLM(2).fit("abracadabra")
    with pytest.raises(ValueError, match="NGramLM.fit: text must be a str, got bytes"):
        NGramLM(2).fit(b"abc")
    with pytest.raises(ValueError, match="NGramLM.fit: text must not be empty"):
        NGramLM(2).fit("")
    with pytest.raises(ValueError, match="NGramLM.nats_per_char: the text has characters the model does not know: 'xz'"):
        model.nats_per_char("abxz")
    with pytest.raises(ValueError, match="NGramLM.log_prob: next must be one character, got 'ab'"):
        model.log_prob("ab", "a")
    with pytest.raises(ValueError, match="NGramLM.log_prob: next must be one token as word_tokens cuts them, got 'a b'"):
        NGramLM(2, "word").fit("a b a b").log_prob("a b", "a")
    with pytest.raises(ValueError, match="NGramLM.generate: n must be a non-negative integer, got -1"):
        model.generate(-1)
    with pytest.raises(ValueError, match="NGramLM.fit: chars must be single characters, got 'ab'"):
        NGramLM(2).fit("abc", chars=["ab"])
    failed = NGramLM(3, interpolation="em")
    with pytest.raises(ValueError, match="NGramLM.fit: interpolation='em' needs a training text"):
        failed.fit("ab")
    with pytest.raises(RuntimeError, match="NGramLM.score: the model is not fitted yet"):
        failed.score("ab")  # a failed fit leaves no half-fitted model


# --------------------------------------------------------------------------------------- example
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ngram")
    metrics = support.load_example("ngram").main(["--quick", "--out", str(out), "--score", "All:\nSpeak, speak.",
                                                  "--generate", "150"])
    return metrics, out


def test_example_quick_run_writes_its_table_and_the_trigram_beats_the_unigram(quick_run):
    metrics, out = quick_run
    for name in ("metrics.json", "nats_per_char.png", "sample.txt"):
        assert (out / name).is_file() and name in metrics["outputs"]
    assert (out / "nats_per_char.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((out / "metrics.json").read_text())
    val = saved["val_loss"]
    assert set(val) == {"char 1-gram add-k", "char 2-gram add-k", "char 3-gram add-k", "char 2-gram interpolated",
                        "char 3-gram interpolated", "word 1-gram add-k", "word 2-gram add-k", "word 3-gram add-k",
                        "word 2-gram interpolated", "word 3-gram interpolated"}
    assert val["char 3-gram interpolated"] < val["char 2-gram interpolated"] < val["char 1-gram add-k"] - 0.5
    assert val["char 3-gram add-k"] < val["char 1-gram add-k"] - 0.5
    assert val["word 3-gram interpolated"] < val["word 1-gram add-k"]
    assert all(v < saved["uniform_loss"] for v in val.values())
    assert saved["val_chars"] == 10_000 and saved["train_chars"] == 90_000
    assert all(sum(w) == pytest.approx(1.0) for w in saved["weights"].values())
    score = saved["scores"][0]
    assert score["text"] == "All:\nSpeak, speak." and score["nats_per_char"]["char 1-gram add-k"] > 0
    sample = (out / "sample.txt").read_text(encoding="utf-8")
    assert sample == saved["sample"] and len(sample) == 1 + 150 and sample.startswith("\n")


def _error(capsys, *argv) -> str:
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert err.endswith("\n") and err.count("tinygrad-rnn run ngram: error:") == 1, err
    last = err.rstrip("\n").splitlines()[-1]  # after the progress bar of the models fitted before the error
    assert last.startswith("tinygrad-rnn run ngram: error:"), err
    return last


@pytest.mark.parametrize("argv, expected", [
    (["--k", "-1"], "argument --k: expected a number >= 0, got '-1'"),
    (["--k", "nan"], "argument --k: expected a finite number"),
    (["--char-order", "0"], "argument --char-order: expected a positive integer"),
    (["--val-fraction", "1"], "argument --val-fraction: expected a number in (0, 1)"),
    (["--generate", "0"], "argument --generate: expected a positive integer"),
    (["--score", "caf\u00e9 \u2603"], "--score: 'caf\u00e9 \u2603' has characters the text lacks"),
    (["--score", ""], "--score: expected a non-empty text"),
    (["--prime", "\u2603"], "--prime: '\u2603' has characters the text lacks"),
    (["--data", "/no/such/file.txt"], "argument --data: no such file"),
    (["--word-order", "7"], "word 7-gram add-k: NGramLM.fit: a word 7-gram over"),
])
def test_example_bad_flags_are_one_line_errors(capsys, tmp_path, argv, expected):
    line = _error(capsys, "run", "ngram", "--quick", "--k", "0.1", "--out", tmp_path / "out", *argv)
    assert expected in line, line


def test_example_text_too_short(capsys, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("to be or not to be " * 3)
    line = _error(capsys, "run", "ngram", "--out", tmp_path / "out", "--data", short)
    assert "the text has 57 characters, too few" in line, line


def test_ngram_example_takes_the_character_models_corpus_flags(tmp_path, capsys):
    """--corpus stdlib trains on the corpus min-char-rnn and char-lstm take with the same flag; --corpus and
    --data together are a one-line error."""
    metrics = support.load_example("ngram").main(["--quick", "--corpus", "stdlib", "--out", str(tmp_path / "stdlib")])
    assert metrics["corpus"] == "stdlib"
    assert metrics["val_loss"]["char 3-gram interpolated"] < metrics["val_loss"]["char 1-gram add-k"]
    line = _error(capsys, "run", "ngram", "--out", tmp_path / "both", "--corpus", "stdlib", "--data", __file__)
    assert "not allowed with argument" in line and "--corpus" in line
