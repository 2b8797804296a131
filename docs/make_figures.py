"""Render the figures in docs/: the lecture's RNN diagrams, computed by tinygrad_rnn.

Run from the repository root (needs the graphviz ``dot`` program)::

    python docs/make_figures.py            # SVG files
    python docs/make_figures.py --png      # PNG files as well

Each figure is a tiny real model run on random data and drawn with
``tinygrad_rnn.viz`` (see ``tinygrad_rnn/lecture_graphs.py``).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

from tinygrad_rnn.lecture_graphs import build_lecture_graph

HERE = os.path.dirname(os.path.abspath(__file__))

#: file name -> (what it shows, arguments of build_lecture_graph)
FIGURES = {
    "unrolled_rnn": ("an Elman RNN unrolled over 4 steps, one output and one loss L_t per step, summed into L",
                     dict(kind="many-to-many", steps=4, cell="rnn")),
    "folded_lstm": ("an LSTM folded: one cell with its gates, the recurrence h(t-1), c(t-1) and the loss L_t",
                    dict(kind="many-to-many", steps=6, cell="lstm", mode="folded", expand_fused=True)),
    "composed_lstm_folded": ("a composed LSTM step (every primitive op) folded",
                             dict(kind="many-to-one", steps=6, cell="lstm", mode="folded", impl="composed")),
    "seq2seq": ("an encoder-decoder: the encoder's final state starts the decoder",
                dict(kind="seq2seq", steps=3, cell="gru")),
    "attention": ("a decoder step attending over the encoder outputs (Bahdanau, one node per call), folded",
                  dict(kind="attention", steps=3, cell="gru", mode="folded")),
    "bidirectional": ("a bidirectional RNN: a forward and a reverse chain",
                      dict(kind="bidirectional", steps=3, cell="rnn")),
    "grads_vanishing": ("gradient norms of a tanh RNN after backward: they vanish going back in time",
                        dict(kind="many-to-one", steps=12, cell="rnn", grads=True)),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", action="store_true", help="also write PNG files")
    parser.add_argument("--out", default=HERE, help="output folder (default: docs/)")
    args = parser.parse_args(argv)
    if shutil.which("dot") is None:
        print("make_figures: the graphviz 'dot' program is needed (apt-get install graphviz)", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    for name, (what, kwargs) in FIGURES.items():
        graph = build_lecture_graph(**kwargs)
        for fmt in ("svg", "png") if args.png else ("svg",):
            path = os.path.join(args.out, f"{name}.{fmt}")
            with open(path, "wb") as f:
                f.write(graph.pipe(format=fmt))
            print(f"{path}: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
