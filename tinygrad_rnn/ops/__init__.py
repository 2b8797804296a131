"""Every differentiable op, each a :class:`~tinygrad_rnn.autograd.Function` with a hand-written backward.

The primitives: ``elementwise`` (arithmetic, activations, casts, device moves), ``pointwise`` (sin, cos,
log1p, sign, nan_to_num, ...), ``reduce`` (sums, means, max/min, variance, softmax, logsumexp, cumsum),
``shape`` (reshape, permute, indexing and its backward ``ScatterAdd``, cat/stack, repeat, flip), ``indexing`` (gather, sort, topk,
tril/triu), ``linalg`` (matrix products), ``einsum``, and ``assign`` (what ``x[i] = v`` and ``copy_``
record).

The fused ops the layers use: ``layers`` (linear, embedding, dropout, layer norm), ``activations``
(GELU, SiLU, leaky ReLU, erf), ``norms`` (vector norms, cosine similarity), ``padding``, ``losses``,
``conv`` (conv2d and max/avg/adaptive pooling over im2col windows: ``Unfold``/``Fold``),
``packing`` (the row moves of packing and padding sequences), and ``rnn`` (whole RNN/LSTM/GRU
sequences and single steps; ``rnn_packed`` runs them on packed batches; ``rnn_composed`` holds the
cell equations as primitive ops, which the fused cells differentiate for a second-order backward;
``rnn_gru_variants`` fuses the lecture GRU variants, ``nn.GRU(variant=...)``).

Each backward is written once and also runs on Tensors for ``create_graph=True``
(``autograd/graph_mode.py``).

The user-facing API is on ``Tensor`` and in ``tinygrad_rnn.functions`` / ``tinygrad_rnn.nn.functional``.
"""
