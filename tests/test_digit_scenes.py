"""Composed digit scenes: disjoint scan pools, captions and answers that match the composed digits."""
import numpy as np
import pytest

from tinygrad_rnn.data.digit_scenes import (ANSWER_WORDS, CAPTION_WORDS, DIGIT_WORDS, QUESTION_TYPES,
                                            make_digit_questions, make_digit_scenes, split_digit_pool)

sklearn_datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def scans():
    digits = sklearn_datasets.load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target


@pytest.fixture(scope="module")
def scenes():
    return make_digit_scenes(n_train=600, n_test=300, seed=5)


def test_no_scanned_digit_is_shared_between_train_and_test(scans, scenes):
    train, test = scenes
    train_sources = set(train.sources[train.sources >= 0].tolist())
    test_sources = set(test.sources[test.sources >= 0].tolist())
    assert train_sources.isdisjoint(test_sources)
    pool_train, pool_test = split_digit_pool(scans[1], 0.2, seed=5)
    assert train_sources <= set(pool_train.tolist()) and test_sources <= set(pool_test.tolist())
    assert len(test_sources) > 200  # the test scenes draw on much of their pool, not a handful of scans


def test_the_pool_split_is_stratified_and_complete(scans):
    labels = scans[1]
    train, test = split_digit_pool(labels, test_fraction=0.25, seed=1)
    assert len(train) + len(test) == len(labels) and not set(train) & set(test)
    for digit in range(10):
        share = np.mean(labels[test] == digit) / np.mean(labels == digit)
        assert share == pytest.approx(1.0, abs=0.05)


def test_each_digit_is_its_scan_at_its_position_and_the_rest_is_blank(scans, scenes):
    images, labels = scans
    for data in scenes:
        assert data.images.dtype == np.float32 and data.images.shape[1:] == (12, 40)
        for i in range(0, len(data), 7):
            k = data.lengths[i]
            assert 2 <= k <= 4 and (data.labels[i, k:] == -1).all() and (data.sources[i, k:] == -1).all()
            blank = np.ones(data.images.shape[1:], dtype=bool)
            for j in range(k):
                top, left = data.positions[i, j]
                patch = data.images[i, top:top + 8, left:left + 8]
                np.testing.assert_array_equal(patch, images[data.sources[i, j]])
                assert labels[data.sources[i, j]] == data.labels[i, j]
                blank[top:top + 8, left:left + 8] = False
            assert (data.images[i][blank] == 0).all()
            lefts = data.positions[i, :k, 1]
            assert (np.diff(lefts) >= 8).all()  # left to right, never overlapping


def test_captions_and_tokens_spell_the_digits(scenes):
    for data in scenes:
        assert data.vocab.words == list(CAPTION_WORDS)
        for i in range(len(data)):
            k = data.lengths[i]
            assert data.captions[i] == " ".join(DIGIT_WORDS[d] for d in data.labels[i, :k])
            words = data.vocab.decode(data.tokens[i])
            assert words[:k + 2] == ["<start>", *data.captions[i].split(), "<end>"]
            assert all(w == "<pad>" for w in words[k + 2:])
        np.testing.assert_array_equal(data.decoder_inputs[:, 1:], data.targets[:, :-1])
        assert {data.pad_id, data.start_id, data.end_id} == {0, 1, 2}


def test_every_number_of_digits_is_common(scenes):
    counts = np.bincount(scenes[1].lengths, minlength=5)[2:]
    assert counts.min() > 0.25 * len(scenes[1])


def _expected_answer(question, digits):
    words = question.rstrip("?").split()
    names = {w: d for d, w in enumerate(DIGIT_WORDS)}
    if words[:2] == ["how", "many"]:
        if words[2] == "digits":
            return DIGIT_WORDS[len(digits)]
        return DIGIT_WORDS[sum(DIGIT_WORDS[d] + ("es" if d == 6 else "s") == words[2] for d in digits)]
    if words[:2] == ["is", "there"]:
        return "yes" if names[words[3]] in digits else "no"
    if words[2] == "after":
        position = digits.index(names[words[4]])
        assert digits.count(names[words[4]]) == 1, question  # the question has one answer
        return DIGIT_WORDS[digits[position + 1]]
    ordinal = words[3]
    position = len(digits) - 1 if ordinal == "last" else ["first", "second", "third", "fourth"].index(ordinal)
    return DIGIT_WORDS[digits[position]]


def test_every_answer_is_right(scenes):
    test = scenes[1]
    questions = make_digit_questions(test, per_scene=3, seed=2)
    assert len(questions) == 3 * len(test)
    np.testing.assert_array_equal(questions.scene, np.repeat(np.arange(len(test)), 3))
    for i in range(len(questions)):
        scene = questions.scene[i]
        digits = test.labels[scene, :test.lengths[scene]].tolist()
        assert questions.answers[i] == _expected_answer(questions.questions[i], digits), questions.questions[i]
        assert ANSWER_WORDS[questions.answer_ids[i]] == questions.answers[i]
        words = questions.vocab.decode(questions.tokens[i])
        n = questions.lengths[i]
        assert " ".join(words[:n]) + "?" == questions.questions[i] and set(words[n:]) <= {"<pad>"}


def test_the_question_types_are_balanced(scenes):
    questions = make_digit_questions(scenes[0], per_scene=2, seed=0)
    counts = np.bincount(questions.types, minlength=len(QUESTION_TYPES))
    assert counts.min() > 0.5 * len(questions) / len(QUESTION_TYPES)
    answers = np.array(questions.answers)
    for kind in ("exists", "count"):  # the digit asked about is in the scene about half the time
        picked = answers[questions.types == QUESTION_TYPES.index(kind)]
        absent = np.mean(picked == ("no" if kind == "exists" else "zero"))
        assert 0.35 < absent < 0.65


def test_the_same_seed_gives_the_same_data_and_the_test_set_ignores_n_train():
    a_train, a_test = make_digit_scenes(n_train=50, n_test=40, seed=3)
    b_train, b_test = make_digit_scenes(n_train=50, n_test=40, seed=3)
    _, c_test = make_digit_scenes(n_train=90, n_test=40, seed=3)
    _, d_test = make_digit_scenes(n_train=50, n_test=40, seed=4)
    for a, b in ((a_train, b_train), (a_test, b_test), (a_test, c_test)):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.sources, b.sources)
        assert a.captions == b.captions
    assert not np.array_equal(a_test.images, d_test.images)
    qa, qb = make_digit_questions(a_test, seed=1), make_digit_questions(b_test, seed=1)
    assert qa.questions == qb.questions and qa.answers == qb.answers
    subset = a_test.subset([3, 1])
    assert subset.captions == [a_test.captions[3], a_test.captions[1]]


@pytest.mark.parametrize("kwargs, message", [
    ({"n_train": 0}, "n_train must be a positive integer"),
    ({"max_digits": 6}, "cannot hold max_digits=6"),
    ({"min_digits": 3, "max_digits": 2}, "max_digits must be an integer >= 3"),
    ({"test_fraction": 1.0}, "test_fraction must be strictly between 0 and 1"),
    ({"height": 4}, "height must be an integer >= 8"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_digit_scenes(**{"n_train": 4, "n_test": 4, **kwargs})


def test_questions_need_scenes():
    with pytest.raises(TypeError, match="make_digit_questions: scenes must be a DigitScenes"):
        make_digit_questions(np.zeros((3, 12, 40)))


def test_a_missing_scikit_learn_is_one_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("no sklearn")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    with pytest.raises(ImportError, match=r"make_digit_scenes: needs the scikit-learn package; install it"):
        make_digit_scenes(4, 4)
