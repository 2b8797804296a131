"""Data sets and batching for the recurrent-network examples (pure NumPy).

* :mod:`.text` -- character language modelling: vocabulary, corpora, TBPTT batches.
* :mod:`.addition` -- seq2seq decimal addition ("535+61" -> "596").
* :mod:`.binary` -- bit-by-bit binary addition.
* :mod:`.timeseries` -- forecasting windows, splits, normalisation.
* :mod:`.weather` -- hourly weather: New York's airports in 2013 (bundled), the Jena climate file, any CSV.
* :mod:`.digits` -- 8x8 digit images read row by row.
* :mod:`.digit_scenes` -- scenes of 2-4 scanned digits with captions and questions (captioning, VQA).
* :mod:`.vowels` -- speaker identification from Japanese Vowels utterances of different lengths.
* :mod:`.words` -- words: tokenizer, vocabulary, word2vec's skip-gram/CBOW examples, a play's speeches.
* :mod:`.word_vectors` -- word vectors in the GloVe / word2vec text format.
* :mod:`.ngram` -- count-based character and word n-gram language models (add-k, interpolation).
"""

from .addition import (ADDITION_CHARS, START_TOKEN, AdditionData, make_addition_data,
                       split_addition_data)
from .binary import bits_to_int, int_to_bits, make_binary_addition
from .digit_scenes import (ANSWER_WORDS, CAPTION_WORDS, DIGIT_WORDS, QUESTION_TYPES, QUESTION_WORDS, DigitQuestions,
                           DigitScenes, make_digit_questions, make_digit_scenes, split_digit_pool)
from .digits import DigitsSplit, load_digits_sequences
from .ngram import NGramLM, word_tokens
from .text import batchify, load_text, load_tinyshakespeare, split_text, stdlib_corpus, tbptt_batches
from .timeseries import (Normalizer, gather_windows, make_windows, naive_forecast_mae, split_series,
                         window_ends)
from .vocab import CharVocab
from .vowels import (VOWELS_FEATURES, VOWELS_SPEAKERS, LabelledSequences, load_japanese_vowels, parse_ts,
                     read_ts)
from .weather import WeatherSeries, fill_gaps, load_nyc_weather, read_weather_csv
from .word_vectors import load_word_vectors, save_word_vectors
from .words import (Speech, WordVocab, cbow_windows, negative_sampling_distribution, parse_speeches,
                    sample_negatives, skipgram_pairs, subsample, subsample_keep_probability, tokenize)

__all__ = [
    "CharVocab", "load_text", "load_tinyshakespeare", "stdlib_corpus", "split_text", "batchify", "tbptt_batches",
    "START_TOKEN", "ADDITION_CHARS", "AdditionData", "make_addition_data",
    "split_addition_data",
    "int_to_bits", "bits_to_int", "make_binary_addition",
    "split_series", "make_windows", "window_ends", "gather_windows", "Normalizer", "naive_forecast_mae",
    "WeatherSeries", "load_nyc_weather", "read_weather_csv", "fill_gaps",
    "DigitsSplit", "load_digits_sequences",
    "DigitScenes", "DigitQuestions", "make_digit_scenes", "make_digit_questions", "split_digit_pool", "DIGIT_WORDS",
    "CAPTION_WORDS", "QUESTION_WORDS", "ANSWER_WORDS", "QUESTION_TYPES",
    "LabelledSequences", "load_japanese_vowels", "read_ts", "parse_ts", "VOWELS_FEATURES", "VOWELS_SPEAKERS",
    "tokenize", "WordVocab", "negative_sampling_distribution", "sample_negatives", "subsample_keep_probability",
    "subsample", "skipgram_pairs", "cbow_windows", "Speech", "parse_speeches", "load_word_vectors",
    "save_word_vectors",
    "NGramLM", "word_tokens",
]
