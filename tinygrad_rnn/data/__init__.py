"""Data sets and batching for the recurrent-network examples (pure NumPy).

* :mod:`.text` -- character language modelling: vocabulary, corpora, TBPTT batches.
* :mod:`.addition` -- seq2seq decimal addition ("535+61" -> "596").
* :mod:`.binary` -- bit-by-bit binary addition.
* :mod:`.timeseries` -- hourly temperature forecasting.
* :mod:`.digits` -- 8x8 digit images read row by row.
* :mod:`.vowels` -- speaker identification from Japanese Vowels utterances of different lengths.
* :mod:`.words` -- words: tokenizer, vocabulary, word2vec's skip-gram/CBOW examples, a play's speeches.
* :mod:`.word_vectors` -- word vectors in the GloVe / word2vec text format.
* :mod:`.ngram` -- count-based character and word n-gram language models (add-k, interpolation).
"""

from .addition import (ADDITION_CHARS, START_TOKEN, AdditionData, make_addition_data,
                       split_addition_data)
from .binary import bits_to_int, int_to_bits, make_binary_addition
from .digits import DigitsSplit, load_digits_sequences
from .ngram import NGramLM, word_tokens
from .text import batchify, load_text, load_tinyshakespeare, split_text, stdlib_corpus, tbptt_batches
from .timeseries import (Normalizer, load_seattle_temps, make_windows, naive_forecast_mae,
                         split_series)
from .vocab import CharVocab
from .vowels import (VOWELS_FEATURES, VOWELS_SPEAKERS, LabelledSequences, load_japanese_vowels, parse_ts,
                     read_ts)
from .word_vectors import load_word_vectors, save_word_vectors
from .words import (Speech, WordVocab, cbow_windows, negative_sampling_distribution, parse_speeches,
                    sample_negatives, skipgram_pairs, subsample, subsample_keep_probability, tokenize)

__all__ = [
    "CharVocab", "load_text", "load_tinyshakespeare", "stdlib_corpus", "split_text", "batchify", "tbptt_batches",
    "START_TOKEN", "ADDITION_CHARS", "AdditionData", "make_addition_data",
    "split_addition_data",
    "int_to_bits", "bits_to_int", "make_binary_addition",
    "load_seattle_temps", "split_series", "make_windows", "Normalizer", "naive_forecast_mae",
    "DigitsSplit", "load_digits_sequences",
    "LabelledSequences", "load_japanese_vowels", "read_ts", "parse_ts", "VOWELS_FEATURES", "VOWELS_SPEAKERS",
    "tokenize", "WordVocab", "negative_sampling_distribution", "sample_negatives", "subsample_keep_probability",
    "subsample", "skipgram_pairs", "cbow_windows", "Speech", "parse_speeches", "load_word_vectors",
    "save_word_vectors",
    "NGramLM", "word_tokens",
]
