"""Every differentiable op, each a :class:`~tinygrad_rnn.autograd.Function` with a hand-written backward.

The primitives: ``elementwise`` (arithmetic, activations, casts, device moves), ``pointwise`` (sin, cos,
log1p, sign, nan_to_num, ...), ``reduce`` (sums, means, max/min, variance, softmax, logsumexp, cumsum),
``shape`` (reshape, permute, indexing, cat/stack, repeat, flip), ``indexing`` (gather, sort, topk,
tril/triu), ``linalg`` (matrix products), ``einsum``, and ``assign`` (what ``x[i] = v`` and ``copy_``
record).

The fused ops the layers use: ``layers`` (linear, embedding, dropout, layer norm), ``activations``
(GELU, SiLU, leaky ReLU), ``norms`` (vector norms, cosine similarity), ``padding``, ``losses``, and
``rnn`` (whole RNN/LSTM/GRU sequences and single steps).

The user-facing API is on ``Tensor`` and in ``tinygrad_rnn.functions`` / ``tinygrad_rnn.nn.functional``.
"""
