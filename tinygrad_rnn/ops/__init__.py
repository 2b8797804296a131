"""The differentiable primitives, each a :class:`~tinygrad_rnn.autograd.Function` on raw arrays.

``elementwise``: arithmetic and activations; ``reduce``: sums, means, max/min,
variance, softmax; ``shape``: reshapes, permutes, indexing, cat/stack;
``linalg``: matrix products. The user-facing API is on ``Tensor`` and in
``tinygrad_rnn.functions``.
"""
