"""Word embeddings: Embedding's scale_grad_by_freq and sparse options, the word data utilities (tokenizer,
vocabulary, word2vec's negative sampling, subsampling, skip-gram pairs and CBOW windows), word vectors in the
GloVe / word2vec text format, and the word-embeddings example."""
import gzip
import json
import shutil

import numpy as np
import pytest

from conftest import example_cli_error, to_device

import tinygrad_rnn as tr
import tinygrad_rnn.nn as nn
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn import examples_support as support
from tinygrad_rnn.data import (WordVocab, cbow_windows, load_word_vectors, negative_sampling_distribution,
                               sample_negatives, save_word_vectors, skipgram_pairs, subsample,
                               subsample_keep_probability, tokenize)

IDX = [[1, 3, 1], [0, 1, 5]]  # row 1 three times, rows 0, 3 and 5 once
COUNTS = np.bincount(np.ravel(IDX), minlength=6)


def _table(device, seed=0):
    return to_device(np.random.default_rng(seed).standard_normal((6, 4)), device, requires_grad=True)


# ------------------------------------------------------------------------ Embedding(scale_grad_by_freq)
@pytest.mark.parametrize("padding_idx", [None, 1, 5])
def test_scale_grad_by_freq_divides_each_row_by_its_count_in_the_batch(device, padding_idx):
    idx = to_device(np.array(IDX), device)
    g = to_device(np.random.default_rng(1).standard_normal((2, 3, 4)), device)
    plain, scaled = _table(device), _table(device)
    F.embedding(idx, plain, padding_idx=padding_idx).backward(g)
    F.embedding(idx, scaled, padding_idx=padding_idx, scale_grad_by_freq=True).backward(g)
    expected = plain.grad.numpy() / np.maximum(COUNTS, 1)[:, None]
    np.testing.assert_allclose(scaled.grad.numpy(), expected, rtol=1e-14, atol=1e-15)
    assert np.abs(scaled.grad.numpy()[1]).sum() > 0 if padding_idx != 1 else (scaled.grad.numpy()[1] == 0).all()


def test_scale_grad_by_freq_against_central_differences(device):
    """The plain gradient is the lookup's true derivative; the scaled one is that derivative divided by the
    counts, so it must equal the finite differences divided by the counts, and equal them where every index
    occurs once."""
    idx = to_device(np.array(IDX), device)
    w = _table(device)
    assert tr.gradcheck(lambda w: F.embedding(idx, w) ** 2, [w])  # the derivative the scaled gradient divides
    numeric = np.zeros((6, 4))
    objective = lambda table: float((F.embedding(idx, to_device(table, device)) ** 2).sum().item())  # noqa: E731
    base = w.numpy()
    for position in np.ndindex(base.shape):
        step = np.zeros_like(base)
        step[position] = 1e-6
        numeric[position] = (objective(base + step) - objective(base - step)) / 2e-6
    w.grad = None
    (F.embedding(idx, w, scale_grad_by_freq=True) ** 2).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), numeric / np.maximum(COUNTS, 1)[:, None], rtol=1e-6, atol=1e-8)
    once = to_device(np.array([[4, 0], [2, 5]]), device)
    assert tr.gradcheck(lambda w: F.embedding(once, w, scale_grad_by_freq=True) ** 2, [_table(device)])


@pytest.mark.parametrize("padding_idx", [None, 1])
def test_scale_grad_by_freq_create_graph_backward_is_differentiable(device, padding_idx):
    """gradgradcheck of a lookup that is linear in the table: the second derivative runs through the
    recorded (scatter, scale) backward in its incoming gradient, checked against finite differences."""
    idx = to_device(np.array(IDX), device)
    x = to_device(np.random.default_rng(2).standard_normal((2, 3, 4)), device)
    assert tr.gradgradcheck(lambda w: F.embedding(idx, w, padding_idx=padding_idx, scale_grad_by_freq=True) * x,
                            [_table(device)])
    w = _table(device)
    v = to_device(np.ones((2, 3, 4)), device, requires_grad=True)
    (gw,) = tr.autograd.grad(F.embedding(idx, w, scale_grad_by_freq=True), w, v, create_graph=True)
    (dv,) = tr.autograd.grad(gw.sum(), v)
    np.testing.assert_allclose(dv.numpy()[..., 0], 1 / COUNTS[np.array(IDX)])  # 1/3 at each of row 1's uses


def test_scale_grad_by_freq_matches_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Embedding(7, 4, padding_idx=0, scale_grad_by_freq=True).double()
    theirs = torch.nn.Embedding(7, 4, padding_idx=0, scale_grad_by_freq=True).double()
    ours.load_state_dict(theirs.state_dict())
    idx = np.array([[0, 3, 3, 6], [2, 0, 3, 6]])
    g = np.random.default_rng(0).standard_normal((2, 4, 4))
    ours(tr.tensor(idx)).backward(tr.tensor(g))
    theirs(torch.tensor(idx)).backward(torch.tensor(g))
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-13, atol=1e-15)
    table = np.random.default_rng(3).standard_normal((5, 3))
    w, wt = tr.tensor(table, requires_grad=True), torch.tensor(table, requires_grad=True)
    F.embedding(tr.tensor([[1, 1], [4, 1]]), w, scale_grad_by_freq=True).tanh().sum().backward()
    torch.nn.functional.embedding(torch.tensor([[1, 1], [4, 1]]), wt, scale_grad_by_freq=True).tanh().sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy(), rtol=1e-13)
    assert repr(ours) == repr(theirs)  # Embedding(7, 4, padding_idx=0, scale_grad_by_freq=True)


def test_from_pretrained_takes_pytorchs_options():
    table = tr.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    layer = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=2, scale_grad_by_freq=True)
    assert layer.scale_grad_by_freq and layer.padding_idx == 2 and not layer.sparse
    layer(tr.tensor([0, 0, 1, 2])).sum().backward()
    np.testing.assert_array_equal(layer.weight.grad.numpy(), [[1, 1], [1, 1], [0, 0]])  # 2 uses of row 0, /2
    assert not nn.Embedding.from_pretrained(table).weight.requires_grad


def test_sparse_and_bad_flags_are_refused_clearly():
    with pytest.raises(NotImplementedError, match=r"^Embedding: sparse=True is not supported.*sparse gradients"):
        nn.Embedding(5, 2, sparse=True)
    with pytest.raises(NotImplementedError, match=r"^Embedding: sparse=True"):
        nn.Embedding.from_pretrained(tr.zeros(3, 2), sparse=True)
    with pytest.raises(NotImplementedError, match=r"^embedding: sparse=True is not supported"):
        F.embedding(tr.tensor([0]), tr.zeros(3, 2), sparse=True)
    with pytest.raises(TypeError, match=r"^Embedding: scale_grad_by_freq must be a bool, got 'yes'"):
        nn.Embedding(5, 2, scale_grad_by_freq="yes")


# ------------------------------------------------------------------------------------ tokens and vocabulary
def test_tokenize_keeps_inner_apostrophes_and_lowercases():
    assert tokenize("KING RICHARD III:\nKnow't, o'er 'tis well-met 12 times!") == [
        "king", "richard", "iii", "know't", "o'er", "tis", "well", "met", "times"]
    assert tokenize("Élan vital, ÇA", lower=False) == ["Élan", "vital", "ÇA"]
    assert tokenize("") == [] and tokenize("... 42 --") == []
    with pytest.raises(TypeError, match="tokenize: text must be a str, got list"):
        tokenize(["a"])


def test_vocabulary_min_count_order_and_unknown_token():
    tokens = "the cat and the dog and the bird saw a cat".split()
    vocab = WordVocab.from_tokens(tokens, min_count=2)
    assert vocab.words == ["<unk>", "the", "and", "cat"]  # by count, then alphabetically
    assert vocab.counts.tolist() == [4, 3, 2, 2]  # the unknown token counts the 4 rare tokens it replaces
    assert vocab.unk_index == 0 and "dog" not in vocab and "cat" in vocab
    np.testing.assert_array_equal(vocab.encode(["cat", "dog", "the"]), [3, 0, 1])
    assert vocab.decode(np.array([1, 0, 3])) == ["the", "<unk>", "cat"]
    assert WordVocab.from_dict(json.loads(json.dumps(vocab.to_dict()))) == vocab
    assert WordVocab.from_tokens(tokens, max_size=2).words == ["<unk>", "the", "and"]
    strict = WordVocab.from_tokens(tokens, unk_token=None)
    assert strict.unk_index is None and len(strict) == 7
    with pytest.raises(ValueError, match=r"WordVocab.encode: 'fish' is not in the vocabulary and it has no unk_token"):
        strict.encode(["cat", "fish"])
    with pytest.raises(ValueError, match=r"no word occurs min_count=9 times \(7 distinct words, the most frequent 3"):
        WordVocab.from_tokens(tokens, min_count=9)
    with pytest.raises(ValueError, match="min_count must be a positive integer, got 0"):
        WordVocab.from_tokens(tokens, min_count=0)
    with pytest.raises(TypeError, match="got a str"):
        WordVocab.from_tokens("the cat")
    with pytest.raises(ValueError, match=r"ids must be in \[0, 3\], got 4"):
        vocab.decode([4])
    with pytest.raises(ValueError, match="'cow' is not in the vocabulary"):
        vocab.index("cow")


# ----------------------------------------------------------------------------------- word2vec's examples
def test_negative_sampling_distribution_is_unigram_to_the_three_quarters():
    counts = np.array([0, 1000, 100, 10, 1])
    p = negative_sampling_distribution(counts)
    expected = counts ** 0.75 / (counts ** 0.75).sum()
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    assert p[0] == 0 and p[1] / p[2] == pytest.approx(10 ** 0.75)
    draws = sample_negatives(p, (200_000,), np.random.default_rng(0))
    assert draws.dtype == np.int64 and draws.min() >= 1
    frequencies = np.bincount(draws, minlength=5) / draws.size
    np.testing.assert_allclose(frequencies, p, atol=0.004)  # ~5 standard errors of the most frequent
    np.testing.assert_allclose(negative_sampling_distribution(counts, power=1.0), counts / counts.sum())
    with pytest.raises(ValueError, match="counts must be non-negative numbers, not all zero"):
        negative_sampling_distribution([0, 0])


def test_subsampling_keeps_rare_words_and_drops_frequent_ones():
    counts = np.array([900_000, 90_000, 9_000, 100, 0])
    keep = subsample_keep_probability(counts, threshold=1e-3)
    f = counts[:4] / counts.sum()
    np.testing.assert_allclose(keep[:4], np.minimum((np.sqrt(f / 1e-3) + 1) * 1e-3 / f, 1.0))
    assert keep[0] < 0.05 and keep[3] == 1.0 and keep[4] == 1.0 and np.all(np.diff(keep[:4]) > 0)
    ids = np.repeat(np.arange(4), 20_000)
    kept = subsample(ids, keep, np.random.default_rng(0))
    np.testing.assert_allclose(np.bincount(kept, minlength=4) / 20_000, keep[:4], atol=0.01)


def test_skipgram_pairs_within_the_window():
    ids = np.array([10, 11, 12, 13, 14])
    centers, contexts = skipgram_pairs(ids, window=2)
    pairs = sorted(zip(centers.tolist(), contexts.tolist()))
    expected = sorted((ids[i], ids[j]) for i in range(5) for j in range(5) if i != j and abs(i - j) <= 2)
    assert pairs == expected and centers.dtype == np.int64
    # word2vec's reduced windows: a subset, never farther than the window, near pairs more common than far ones
    ids = np.arange(5000)
    centers, contexts = skipgram_pairs(ids, window=4, rng=np.random.default_rng(0))
    distance = np.abs(centers - contexts)
    assert distance.min() == 1 and distance.max() == 4
    share = np.bincount(distance, minlength=5)[1:] / len(ids) / 2
    np.testing.assert_allclose(share, [1, 0.75, 0.5, 0.25], atol=0.03)  # P(window >= d) for d = 1..4


def test_cbow_windows_and_their_mask():
    contexts, mask, centers = cbow_windows(np.array([5, 6, 7, 8]), window=2)
    np.testing.assert_array_equal(centers, [5, 6, 7, 8])
    np.testing.assert_array_equal(contexts, [[0, 0, 6, 7], [0, 5, 7, 8], [5, 6, 8, 0], [6, 7, 0, 0]])
    np.testing.assert_array_equal(mask, contexts != 0)
    contexts, mask, _ = cbow_windows(np.arange(1, 2001), window=3, rng=np.random.default_rng(1))
    inner = mask[3:-3]
    assert inner.sum(1).min() >= 2 and inner.sum(1).max() == 6
    np.testing.assert_array_equal(inner[:, :3], inner[:, 3:][:, ::-1])  # one window size per center, both sides
    with pytest.raises(ValueError, match="cbow_windows: ids must have at least 2 words"):
        cbow_windows(np.array([1]), window=2)
    with pytest.raises(ValueError, match="skipgram_pairs: window must be a positive integer, got 0"):
        skipgram_pairs(np.arange(4), window=0)
    with pytest.raises(ValueError, match="skipgram_pairs: ids must hold integer token ids"):
        skipgram_pairs(np.ones(4), window=1)


# ------------------------------------------------------------------------------------------- word vectors
def test_glove_and_word2vec_text_files_are_read(tmp_path):
    (tmp_path / "glove.txt").write_text("king 0.5 -1 2e-1\nqueen 0.25 1 0\n\nthe 1 2 3\n", encoding="utf-8")
    words, vectors = load_word_vectors(tmp_path / "glove.txt")
    assert words == ["king", "queen", "the"] and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, np.array([[0.5, -1, 0.2], [0.25, 1, 0], [1, 2, 3]], np.float32))
    (tmp_path / "w2v.txt").write_text("2 3\nking 0.5 -1 2e-1\nqueen 0.25 1 0\n", encoding="utf-8")
    words, vectors = load_word_vectors(tmp_path / "w2v.txt")
    assert words == ["king", "queen"] and vectors.shape == (2, 3)
    with gzip.open(tmp_path / "w2v.txt.gz", "wt", encoding="utf-8") as file:
        file.write("1 2\nkönig 1 2\n")
    assert load_word_vectors(tmp_path / "w2v.txt.gz")[0] == ["könig"]


@pytest.mark.parametrize("header", [True, False])
def test_save_and_load_round_trip(tmp_path, header):
    rng = np.random.default_rng(0)
    words = ["<unk>", "king", "o'er", "ÇA"]
    vectors = (rng.standard_normal((4, 7)) * 10.0 ** rng.integers(-9, 9, size=(4, 7))).astype(np.float32)
    path = save_word_vectors(tmp_path / "v.txt", words, vectors, header=header)
    assert path.read_text(encoding="utf-8").startswith("4 7\n") == header
    again_words, again = load_word_vectors(path)
    assert again_words == words
    np.testing.assert_array_equal(again, vectors)  # each float32 written in its shortest exact form
    layer = nn.Embedding.from_pretrained(tr.tensor(again), freeze=True)
    np.testing.assert_array_equal(layer(tr.tensor([1])).numpy()[0], vectors[1])


@pytest.mark.parametrize("content, message", [
    ("", r"empty.txt has no lines: expected one word and its numbers per line"),
    ("\n\n", r"empty.txt has no lines"),
    ("2 3\n", r"empty.txt has only a header \(line 1\)"),
    ("king 1 2 3\nqueen 1 2\n", r"empty.txt line 2: expected a word and 3 numbers \(as on line 1\), got 2 numbers"),
    ("king 1 2\nqueen 1 two\n", r"empty.txt line 2: 'two' is not a number"),
    ("king 1 nan\n", r"empty.txt line 1: 'nan' is not a finite number"),
    ("king\n", r"empty.txt line 1: expected a word followed by its numbers, got only 'king'"),
    ("king 1 2\nking 3 4\n", r"empty.txt line 2: the word 'king' is repeated \(first on line 1\)"),
    ("3 2\nking 1 2\nqueen 3 4\n", r"the header \(line 1\) says 3 words, the file has 2"),
    ("2 5\nking 1 2\nqueen 3 4\n", r"empty.txt line 2: the header \(line 1\) says 5 numbers per word, got 2"),
])
def test_bad_word_vector_files_name_the_file_and_line(tmp_path, content, message):
    (tmp_path / "empty.txt").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=r"^load_word_vectors: .*" + message):
        load_word_vectors(tmp_path / "empty.txt")


def test_word_vector_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="load_word_vectors: no such file"):
        load_word_vectors(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="is not a regular file"):
        load_word_vectors(tmp_path)
    (tmp_path / "latin1.txt").write_bytes("k\xf6nig 1 2\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.txt is not UTF-8 text"):
        load_word_vectors(tmp_path / "latin1.txt")
    with pytest.raises(ValueError, match=r"save_word_vectors: expected one word per row of vectors \(2 rows"):
        save_word_vectors(tmp_path / "v.txt", ["a"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="save_word_vectors: every word must be a non-empty str without white space"):
        save_word_vectors(tmp_path / "v.txt", ["a b"], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="save_word_vectors: vectors must be finite"):
        save_word_vectors(tmp_path / "v.txt", ["a"], np.full((1, 3), np.inf))


# ---------------------------------------------------------------------------------------- the example
def run_example(*argv):
    return support.load_example("word-embeddings").main([str(a) for a in argv])


def _error(capsys, *argv) -> str:
    return example_cli_error(capsys, "word-embeddings", *argv)


def test_neighbours_analogies_and_pca_of_known_vectors():
    module = support.load_example("word-embeddings")
    vocab = WordVocab(["king", "man", "woman", "queen", "apple"])  # <unk> becomes id 0
    # dimensions: royal, male, female; <unk> sits next to king but is never an answer
    unit = module.unit_rows(np.array([[1, 1, 0.01], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [-1, -1, -1.0]]))
    found, scores = module.nearest(unit, vocab, unit[vocab.index("queen")], exclude=[vocab.index("queen")], k=3)
    assert [w for w, _ in found] == ["woman", "king", "man"]
    assert [s for _, s in found] == pytest.approx([np.sqrt(0.5), 0.5, 0.0])
    assert scores[0] == -np.inf and scores[vocab.index("queen")] == -np.inf
    result = module.analogy(unit, vocab, ["king", "man", "woman", "queen"])
    assert result == {"query": "king - man + woman", "top": ["queen", "apple"], "expected": "queen", "rank": 1}
    assert module.analogy(unit, vocab, ["king", "man", "woman", "apple"])["rank"] == 2
    assert "rank" not in module.analogy(unit, vocab, ["king", "man", "woman"])
    points, explained = module.pca_2d(np.array([[0, 0, 0], [2, 0, 0], [4, 1, 0], [6, 0, 0.0]]))
    assert points.shape == (4, 2) and explained[0] > 0.9 and np.allclose(points.mean(0), 0)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("word-embeddings")
    return run_example("--quick", "--max-words", 30000, "--out", out), out


def test_quick_skipgram_learns_and_writes_its_vectors(quick_run):
    metrics, out = quick_run
    losses = metrics["losses"]
    assert np.log(2) * 6 == pytest.approx(losses[0], rel=1e-3)  # untrained: σ(0) for the word and 5 noise words
    assert np.mean(losses[-10:]) < losses[0] - 1.0
    words, vectors = load_word_vectors(out / "vectors.txt")
    assert len(words) == metrics["vocab_size"] == vectors.shape[0] and vectors.shape[1] == metrics["dim"] == 50
    assert "<unk>" not in words and words[0] == "the"  # most frequent first
    assert set(metrics["neighbours"]) <= {"king", "love", "lord", "good", "night", "death", "father", "sword",
                                          "heaven", "blood"} and len(metrics["neighbours"]) >= 5
    assert all(len(found) == 5 for found in metrics["neighbours"].values())
    ranks = [a["rank"] for a in metrics["analogies"]]
    assert ranks and all(1 <= r <= metrics["vocab_size"] for r in ranks)
    for name in ("graph.dot", "embeddings.png", "vectors.txt", "metrics.json"):
        assert (out / name).is_file()
    if shutil.which("dot"):
        assert (out / "graph.svg").is_file()


def test_cbow_and_scaled_gradients_learn_on_another_text(tmp_path):
    text = ("the king and the queen rode to the castle . the lord and the lady walked to the river . " * 60)
    (tmp_path / "text.txt").write_text(text, encoding="utf-8")
    metrics = run_example("--quick", "--cbow", "--scale-grad-by-freq", "--data", tmp_path / "text.txt",
                          "--min-count", 2, "--words", "king", "river",
                          "--analogy", "king:queen:lady:lord", "lady:lord:king",
                          "--batch-size", 64, "--epochs", 8, "--subsample", 0, "--out", tmp_path / "out")
    assert metrics["model"] == "cbow" and metrics["scale_grad_by_freq"] and metrics["vocab_size"] == 11
    assert np.mean(metrics["losses"][-5:]) < metrics["losses"][0] - 1.0
    assert list(metrics["neighbours"]) == ["king", "river"]
    assert [a.get("expected") for a in metrics["analogies"]] == ["lord", None]


def test_bad_flags_are_one_line(capsys, tmp_path):
    out = ["--out", tmp_path / "out", "--quick", "--max-words", 3000]
    assert "--words: 'zzyzx' is not in the vocabulary" in _error(capsys, "--words", "the", "zzyzx", *out)
    assert "--analogy: expected A:B:C or A:B:C:D" in _error(capsys, "--analogy", "king:man", *out)
    assert "--analogy: 'zzyzx' of 'the:and:zzyzx' is not in" in _error(capsys, "--analogy", "the:and:zzyzx", *out)
    assert "--subsample: expected a threshold in (0, 1) or 0" in _error(capsys, "--subsample", "2", *out)
    assert "expected a positive integer, got '0'" in _error(capsys, "--window", "0", *out)
    (tmp_path / "short.txt").write_text("to be or not to be", encoding="utf-8")
    assert "too few to train on" in _error(capsys, "--data", tmp_path / "short.txt", "--min-count", 1, *out)
    assert "--min-count: WordVocab.from_tokens: no word occurs min_count=5" in _error(
        capsys, "--data", tmp_path / "short.txt", *out)
