"""Hand-written reference training steps that tinygrad_rnn is benchmarked against.

Every baseline is a class with the same shape:

* ``__init__(seed, dtype=np.float32, ...)`` creates weights and data
  deterministically from ``seed``;
* ``step()`` runs one full training step (forward, backward, update) and
  stores the loss of that step in ``self.loss`` (a Python float);
* the NumPy classes also have ``loss_and_grads()``, which computes the loss
  and the gradients of the *current* step without changing any state (used by
  ``step()`` and by the finite-difference tests);
* ``params`` maps parameter names to the arrays / tensors that are updated in
  place, so a framework implementation can copy the exact same initial
  weights (and the data attributes) and check it reproduces the same losses.

Conventions (so the framework side can match them exactly):

* ``MinCharRNNNumpy``: column vectors as in min-char-rnn,
  ``h_t = tanh(Wxh x_t + Whh h_{t-1} + bh)``, ``y_t = Why h_t + by``.
* ``BatchedRNNNumpy``: row vectors / batch-major rows,
  ``h_t = tanh(x_t @ Wx + h_{t-1} @ Wh + b)``, ``y_t = h_t @ Wy + by``.

NumPy is imported at module level; torch only inside the torch classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "MinCharRNNNumpy",
    "MinCharRNNStepwiseNumpy",
    "BatchedRNNNumpy",
    "CharLSTMTorch",
    "MinCharRNNTorch",
    "torch_available",
]


def _check_float_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


# --------------------------------------------------------------------------
# S: min-char-rnn
# --------------------------------------------------------------------------


class MinCharRNNNumpy:
    """Karpathy's min-char-rnn, re-derived from the math (benchmark S).

    Model (batch 1, one-hot inputs x_t of size V, hidden size H)::

        h_t = tanh(Wxh x_t + Whh h_{t-1} + bh)        Wxh (H,V)  Whh (H,H)
        y_t = Why h_t + by                            Why (V,H)
        loss = sum_t -log softmax(y_t)[target_t]      (summed, not averaged)

    Training step: full BPTT over ``seq_length`` characters starting from the
    carried hidden state, every gradient clipped element-wise to [-5, 5],
    Adagrad ``mem += g*g; p -= lr * g / sqrt(mem + 1e-8)``.

    Data: a token stream (``data`` or seeded random ints). Step n uses
    ``inputs = data[p:p+seq]``, ``targets = data[p+1:p+seq+1]`` and advances
    ``p`` by ``seq``. As in min-char-rnn, when the window would run off the
    end (``p + seq + 1 >= len(data)``) ``p`` wraps to 0 and the hidden state is
    reset to zeros; otherwise the last hidden state carries to the next step.

    Init (rng = ``np.random.default_rng(seed)``, in this order): Wxh, Whh, Why
    = standard_normal * 0.01; bh, by = 0; then the data stream (if not given)
    = ``rng.integers(0, V, data_length)``. Everything is kept in ``dtype``.
    """

    def __init__(
        self,
        seed: int = 0,
        dtype=np.float32,
        vocab_size: int = 65,
        hidden_size: int = 100,
        seq_length: int = 25,
        learning_rate: float = 0.1,
        clip: float = 5.0,
        data: np.ndarray | None = None,
        data_length: int = 10_000,
    ):
        self.dtype = _check_float_dtype(dtype)
        self.vocab_size = V = int(vocab_size)
        self.hidden_size = H = int(hidden_size)
        self.seq_length = int(seq_length)
        self.learning_rate = float(learning_rate)
        self.clip = float(clip)
        rng = np.random.default_rng(seed)
        dt = self.dtype
        self.Wxh = (rng.standard_normal((H, V)) * 0.01).astype(dt)
        self.Whh = (rng.standard_normal((H, H)) * 0.01).astype(dt)
        self.Why = (rng.standard_normal((V, H)) * 0.01).astype(dt)
        self.bh = np.zeros(H, dtype=dt)
        self.by = np.zeros(V, dtype=dt)
        self.params: dict[str, np.ndarray] = {
            "Wxh": self.Wxh, "Whh": self.Whh, "Why": self.Why, "bh": self.bh, "by": self.by,
        }
        self.mem: dict[str, np.ndarray] = {k: np.zeros_like(v) for k, v in self.params.items()}
        if data is None:
            data = rng.integers(0, V, size=int(data_length))
        data = np.asarray(data, dtype=np.int64)
        if data.ndim != 1 or len(data) < self.seq_length + 2:
            raise ValueError("data must be a 1-D int array longer than seq_length + 1")
        if data.min() < 0 or data.max() >= V:
            raise ValueError("data tokens must lie in [0, vocab_size)")
        self.data = data
        self.pointer = 0
        self.h = np.zeros(H, dtype=dt)  # hidden state carried between steps
        self.loss: float | None = None
        self.n_steps = 0

    def _window(self) -> tuple[int, bool]:
        """Start of the next training window and whether the stream wraps there."""
        wraps = self.pointer + self.seq_length + 1 >= len(self.data)
        return (0 if wraps else self.pointer), wraps

    def current_batch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(inputs, targets, hprev) the next ``step()`` will train on (no state change)."""
        p, wraps = self._window()
        S = self.seq_length
        hprev = np.zeros_like(self.h) if wraps else self.h
        return self.data[p:p + S], self.data[p + 1:p + S + 1], hprev

    def loss_and_grads(
        self,
        inputs: np.ndarray | None = None,
        targets: np.ndarray | None = None,
        hprev: np.ndarray | None = None,
    ) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
        """Loss, unclipped gradients and last hidden state for one sequence.

        Pure: parameters, optimizer state and the carried hidden state are not
        modified. Defaults to the batch of the next ``step()``.
        Returns ``(loss, grads, h_last)`` with ``grads`` keyed like ``params``.
        """
        if inputs is None:
            inputs, targets, hprev = self.current_batch()
        if hprev is None:
            hprev = np.zeros_like(self.h)
        inputs = np.asarray(inputs)
        targets = np.asarray(targets)
        T, H, dt = len(inputs), self.hidden_size, self.dtype
        Wxh, Whh, Why = self.Wxh, self.Whh, self.Why

        # ---- forward ----
        # Wxh @ onehot(x_t) is column x_t of Wxh: gather all T columns at once.
        pre = Wxh.T[inputs]  # (T, H), a fresh C-contiguous array
        pre += self.bh
        hs = np.empty((T + 1, H), dtype=dt)  # hs[0] = h_{-1}, hs[t+1] = h_t
        hs[0] = hprev
        for t in range(T):
            a = pre[t]
            a += Whh @ hs[t]
            np.tanh(a, out=hs[t + 1])
        h_out = hs[1:]
        logits = h_out @ Why.T  # (T, V)
        logits += self.by
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        probs = logits
        probs /= probs.sum(axis=1, keepdims=True)
        rows = np.arange(T)
        loss = float(-np.log(probs[rows, targets]).sum())

        # ---- backward ----
        dy = probs  # d loss / d y_t = softmax(y_t) - onehot(target_t)
        dy[rows, targets] -= 1
        dWhy = dy.T @ h_out
        dby = dy.sum(axis=0)
        dpre = dy @ Why  # (T, H): gradient reaching h_t from the outputs
        dtanh = h_out * h_out
        np.subtract(1, dtanh, out=dtanh)  # 1 - h_t^2
        WhhT = Whh.T
        dhnext = None
        for t in range(T - 1, -1, -1):
            d = dpre[t]
            if dhnext is not None:
                d += dhnext
            d *= dtanh[t]  # now d loss / d preactivation_t
            if t > 0:
                dhnext = WhhT @ d
        dWhh = dpre.T @ hs[:-1]
        dWxh = np.zeros_like(Wxh)
        np.add.at(dWxh.T, inputs, dpre)  # scatter-add into columns x_t
        dbh = dpre.sum(axis=0)
        grads = {"Wxh": dWxh, "Whh": dWhh, "Why": dWhy, "bh": dbh, "by": dby}
        return loss, grads, hs[T].copy()

    def step(self) -> float:
        """One training step: BPTT, clip to ±clip, Adagrad; carries the hidden state."""
        start, _ = self._window()
        inputs, targets, hprev = self.current_batch()
        loss, grads, h_last = self.loss_and_grads(inputs, targets, hprev)
        lr, c = self.learning_rate, self.clip
        for name, p in self.params.items():
            g = grads[name]
            np.clip(g, -c, c, out=g)
            m = self.mem[name]
            m += g * g
            p -= lr * g / np.sqrt(m + 1e-8)
            assert p.dtype == self.dtype and m.dtype == self.dtype
        assert h_last.dtype == self.dtype
        self.h = h_last
        self.pointer = start + self.seq_length
        self.loss = loss
        self.n_steps += 1
        return loss


class MinCharRNNStepwiseNumpy(MinCharRNNNumpy):
    """min-char-rnn as the lecture's program computes it: everything one character at a time.

    The same model, data, clipping and Adagrad as :class:`MinCharRNNNumpy`
    (whose ``step`` it inherits), but ``loss_and_grads`` follows the structure
    of min-char-rnn's own hand-derived code instead of vectorising it: column
    vectors; per step a fresh one-hot vector, the input and recurrent matrix
    products, the read-out and a softmax of that step alone; per step in
    reverse the output gradient, the read-out's outer product, the hidden
    gradient and the two weight outer products. This is the "hand-written
    NumPy min-char-rnn" that benchmark S's target is set against;
    ``MinCharRNNNumpy`` is a faster vectorised rewrite, reported beside it.
    """

    def loss_and_grads(self, inputs=None, targets=None, hprev=None):
        """Same contract as :meth:`MinCharRNNNumpy.loss_and_grads` (pure; unclipped gradients)."""
        if inputs is None:
            inputs, targets, hprev = self.current_batch()
        if hprev is None:
            hprev = np.zeros_like(self.h)
        V, H, dt = self.vocab_size, self.hidden_size, self.dtype
        Wxh, Whh, Why = self.Wxh, self.Whh, self.Why
        bh, by = self.bh.reshape(H, 1), self.by.reshape(V, 1)
        xs, hs, ps = {}, {-1: np.asarray(hprev, dtype=dt).reshape(H, 1)}, {}
        loss = 0.0
        for t in range(len(inputs)):
            xs[t] = np.zeros((V, 1), dtype=dt)
            xs[t][inputs[t]] = 1
            hs[t] = np.tanh(Wxh @ xs[t] + Whh @ hs[t - 1] + bh)
            y = Why @ hs[t] + by
            e = np.exp(y - y.max())
            ps[t] = e / e.sum()
            loss -= float(np.log(ps[t][targets[t], 0]))
        dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
        dbh, dby = np.zeros_like(bh), np.zeros_like(by)
        dh_next = np.zeros_like(hs[0])
        for t in reversed(range(len(inputs))):
            dy = ps[t].copy()
            dy[targets[t]] -= 1  # softmax cross-entropy gradient: p - onehot(target)
            dWhy += dy @ hs[t].T
            dby += dy
            dh = Why.T @ dy + dh_next
            dpre = (1 - hs[t] * hs[t]) * dh  # through tanh
            dbh += dpre
            dWxh += dpre @ xs[t].T
            dWhh += dpre @ hs[t - 1].T
            dh_next = Whh.T @ dpre
        grads = {"Wxh": dWxh, "Whh": dWhh, "Why": dWhy, "bh": dbh.reshape(H), "by": dby.reshape(V)}
        return loss, grads, hs[len(inputs) - 1].reshape(H).copy()


# --------------------------------------------------------------------------
# M / L: batched vanilla RNN over long sequences
# --------------------------------------------------------------------------


class BatchedRNNNumpy:
    """Batched vanilla RNN with full BPTT over long sequences (benchmarks M / L).

    Model (row-vector convention, batch B, T steps, h_0 = 0)::

        h_t = tanh(x_t @ Wx + h_{t-1} @ Wh + b)   Wx (I,H)  Wh (H,H)  b (H,)
        y_t = h_t @ Wy + by                       Wy (H,O)  by (O,)
        loss = mean over (T,B,O) of (y_t - target_t)^2

    Update: plain SGD ``p -= lr * g``. Every step trains on the same fixed
    random data ``x`` (T,B,I) and ``targets`` (T,B,O) from zero initial state.

    Implementation: the input projection of all steps is one matmul
    ((T*B, I) @ (I, H)); only the loop ``h_{t-1} @ Wh`` + tanh is sequential;
    the readout and its backward are again single matmuls. The pre-activation
    buffer is reused for the gradients during backward, so the step's peak
    memory is about 2 x hidden_state_bytes() plus the (T,B,O) outputs.

    Init (rng = ``np.random.default_rng(seed)``, in this order; PyTorch-style
    uniform(-k, k) with k = 1/sqrt(H)): Wx, Wh, b, Wy, by; then
    x = standard_normal (T,B,I), targets = standard_normal (T,B,O).
    """

    def __init__(
        self,
        seed: int = 0,
        dtype=np.float32,
        T: int = 2000,
        batch_size: int = 8,
        input_size: int = 32,
        hidden_size: int = 64,
        output_size: int = 8,
        learning_rate: float = 0.05,
    ):
        self.dtype = dt = _check_float_dtype(dtype)
        self.T = int(T)
        self.batch_size = B = int(batch_size)
        self.input_size = I = int(input_size)
        self.hidden_size = H = int(hidden_size)
        self.output_size = O = int(output_size)
        self.learning_rate = float(learning_rate)
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(H)
        self.Wx = rng.uniform(-k, k, (I, H)).astype(dt)
        self.Wh = rng.uniform(-k, k, (H, H)).astype(dt)
        self.b = rng.uniform(-k, k, H).astype(dt)
        self.Wy = rng.uniform(-k, k, (H, O)).astype(dt)
        self.by = rng.uniform(-k, k, O).astype(dt)
        self.params: dict[str, np.ndarray] = {
            "Wx": self.Wx, "Wh": self.Wh, "b": self.b, "Wy": self.Wy, "by": self.by,
        }
        self.x = rng.standard_normal((self.T, B, I)).astype(dt)
        self.targets = rng.standard_normal((self.T, B, O)).astype(dt)
        self.loss: float | None = None
        self.n_steps = 0

    def activation_bytes(self) -> int:
        """Bytes of activations BPTT must keep between forward and backward.

        Definition: every layer output the backward pass reads, without
        recomputing any: the T+1 hidden states h_0..h_T, (B, H) each (for
        tanh'(a_t) = 1 - h_t^2 and the weight gradients), and the T read-out
        outputs y_t, (B, O) each (the loss gradient is 2 (y_t - target_t) / N).
        The inputs x are data (already resident, not counted); gradient and
        temporary buffers are not counted. :meth:`hidden_state_bytes` is the
        hidden states alone, the floor if y_t were recomputed from h_t.
        """
        return self.hidden_state_bytes() + self.T * self.batch_size * self.output_size * self.dtype.itemsize

    def hidden_state_bytes(self) -> int:
        """Bytes of the T+1 hidden states alone, ``(T+1) * B * H * itemsize``."""
        return (self.T + 1) * self.batch_size * self.hidden_size * self.dtype.itemsize

    def loss_and_grads(self) -> tuple[float, dict[str, np.ndarray]]:
        """Loss and gradients of all params for the fixed data; modifies nothing."""
        T, B, I, H, O = self.T, self.batch_size, self.input_size, self.hidden_size, self.output_size
        Wh, Wy = self.Wh, self.Wy

        # ---- forward ----
        # pre[t] starts as x_t @ Wx + b for all t (one matmul), then gets
        # h_{t-1} @ Wh added in the loop.
        pre = (self.x.reshape(T * B, I) @ self.Wx).reshape(T, B, H)
        pre += self.b
        hs = np.empty((T + 1, B, H), dtype=self.dtype)  # the kept activations
        hs[0] = 0
        for t in range(T):
            a = pre[t]
            a += hs[t] @ Wh
            np.tanh(a, out=hs[t + 1])
        h_flat = hs[1:].reshape(T * B, H)
        y = h_flat @ Wy  # (T*B, O)
        y += self.by
        y -= self.targets.reshape(T * B, O)  # y is now the residual
        n = y.size
        loss = float(np.dot(y.ravel(), y.ravel()) / n)

        # ---- backward ----
        dy = y
        dy *= 2.0 / n
        dWy = h_flat.T @ dy
        dby = dy.sum(axis=0)
        dpre = pre  # reuse the pre-activation buffer for gradients
        np.matmul(dy, Wy.T, out=dpre.reshape(T * B, H))  # d loss / d h_t from outputs
        del y, dy
        WhT = Wh.T
        dhnext = None
        for t in range(T - 1, -1, -1):
            d = dpre[t]
            if dhnext is not None:
                d += dhnext
            h = hs[t + 1]
            d *= 1 - h * h  # d loss / d preactivation_t
            if t > 0:
                dhnext = d @ WhT
        dpre_flat = dpre.reshape(T * B, H)
        dWh = hs[:-1].reshape(T * B, H).T @ dpre_flat
        dWx = self.x.reshape(T * B, I).T @ dpre_flat
        db = dpre_flat.sum(axis=0)
        grads = {"Wx": dWx, "Wh": dWh, "b": db, "Wy": dWy, "by": dby}
        return loss, grads

    def step(self) -> float:
        """One training step: forward over all T steps, full BPTT, SGD update."""
        loss, grads = self.loss_and_grads()
        lr = self.learning_rate
        for name, p in self.params.items():
            g = grads[name]
            g *= lr
            p -= g
            assert p.dtype == self.dtype
        self.loss = loss
        self.n_steps += 1
        return loss


# --------------------------------------------------------------------------
# PyTorch baselines (torch imported lazily)
# --------------------------------------------------------------------------


def torch_available() -> bool:
    """True if torch can be imported (does not import it)."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _torch_dtype(torch, dtype):
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        return dtype
    dt = _check_float_dtype(dtype)
    return torch.float32 if dt == np.float32 else torch.float64


class CharLSTMTorch:
    """PyTorch character LSTM training step (benchmarks M-LSTM / GPU).

    Model: Embedding(V, E) -> nn.LSTM(E, H, num_layers, batch_first) ->
    Linear(H, V); loss = mean cross-entropy over all B*S positions; Adam(lr),
    ``clip_grad_norm_(params, clip_norm)`` before each update. The LSTM starts
    from zero state every step (no state carried).

    Sizes: default V=65, E=64, H=256, 2 layers, batch 32, seq 64;
    ``large=True`` gives H=512, batch 64, seq 100. Explicit ``hidden_size``,
    ``batch_size``, ``seq_length`` override either.

    Data: ``num_batches`` fixed batches of random tokens from
    ``np.random.default_rng(seed)``; ``inputs``/``targets`` are (num_batches,
    B, S) int64 tensors, targets = inputs shifted by one; steps cycle through
    them. Weights come from PyTorch's default init under
    ``torch.manual_seed(seed)`` (global RNG state is saved and restored) and
    are created on CPU before moving to ``device``, so they are identical on
    every device. ``export_params()`` returns them as numpy arrays (PyTorch
    LSTM gate order i, f, g, o; separate bias_ih / bias_hh).

    ``step()`` calls ``loss.item()``, which synchronises the GPU, so it is
    safe to time directly.
    """

    def __init__(
        self,
        seed: int = 0,
        dtype=np.float32,
        large: bool = False,
        device: str = "cpu",
        vocab_size: int = 65,
        embed_size: int = 64,
        hidden_size: int | None = None,
        num_layers: int = 2,
        batch_size: int | None = None,
        seq_length: int | None = None,
        learning_rate: float = 2e-3,
        clip_norm: float = 5.0,
        num_batches: int = 1,
    ):
        import torch
        from torch import nn

        self.torch = torch
        self.dtype = _torch_dtype(torch, dtype)
        self.device = torch.device(device)
        self.vocab_size = V = int(vocab_size)
        self.embed_size = E = int(embed_size)
        self.hidden_size = H = int(hidden_size or (512 if large else 256))
        self.num_layers = int(num_layers)
        self.batch_size = B = int(batch_size or (64 if large else 32))
        self.seq_length = S = int(seq_length or (100 if large else 64))
        self.learning_rate = float(learning_rate)
        self.clip_norm = float(clip_norm)

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = nn.ModuleDict({
                "embedding": nn.Embedding(V, E),
                "lstm": nn.LSTM(E, H, num_layers=self.num_layers, batch_first=True),
                "head": nn.Linear(H, V),
            })
        self.model.to(device=self.device, dtype=self.dtype)
        self.params = dict(self.model.named_parameters())
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.learning_rate)

        rng = np.random.default_rng(seed)
        tokens = rng.integers(0, V, size=(int(num_batches), B, S + 1))
        self.inputs = torch.from_numpy(tokens[..., :-1].copy()).to(self.device)
        self.targets = torch.from_numpy(tokens[..., 1:].copy()).to(self.device)
        self.batch_index = 0
        self.loss: float | None = None
        self.n_steps = 0

    def forward_loss(self, inputs, targets):
        """Mean cross-entropy of the model on one (B, S) batch (a torch scalar)."""
        F = self.torch.nn.functional
        emb = self.model["embedding"](inputs)
        out, _ = self.model["lstm"](emb)
        logits = self.model["head"](out)
        return F.cross_entropy(logits.reshape(-1, self.vocab_size), targets.reshape(-1))

    def step(self) -> float:
        """One training step: forward, backward, clip_grad_norm_, Adam."""
        torch = self.torch
        i = self.batch_index
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.forward_loss(self.inputs[i], self.targets[i])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
        self.optimizer.step()
        self.loss = float(loss.item())  # synchronises on GPU
        self.batch_index = (i + 1) % self.inputs.shape[0]
        self.n_steps += 1
        return self.loss

    def export_params(self) -> dict[str, np.ndarray]:
        """Current parameters as CPU numpy arrays, keyed by PyTorch names."""
        return {k: v.detach().cpu().numpy().copy() for k, v in self.params.items()}


class MinCharRNNTorch:
    """min-char-rnn in PyTorch autograd, for reference (benchmark S).

    Same model, data, clipping, Adagrad and hidden-state carrying as
    ``MinCharRNNNumpy``; the initial weights and data are taken from a
    ``MinCharRNNNumpy`` built with the same arguments, so both produce the same
    losses step for step (up to float rounding).
    """

    def __init__(self, seed: int = 0, dtype=np.float32, device: str = "cpu", **kwargs: Any):
        import torch

        self.torch = torch
        ref = MinCharRNNNumpy(seed=seed, dtype=dtype, **kwargs)
        self.dtype = _torch_dtype(torch, dtype)
        self.device = torch.device(device)
        self.vocab_size = ref.vocab_size
        self.hidden_size = ref.hidden_size
        self.seq_length = ref.seq_length
        self.learning_rate = ref.learning_rate
        self.clip = ref.clip
        self.data_np = ref.data
        self.data = torch.from_numpy(ref.data).to(self.device)
        self.params = {
            k: torch.tensor(v, dtype=self.dtype, device=self.device, requires_grad=True)
            for k, v in ref.params.items()
        }
        self.mem = {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.h = torch.zeros(self.hidden_size, dtype=self.dtype, device=self.device)
        self.pointer = 0
        self.loss: float | None = None
        self.n_steps = 0

    def step(self) -> float:
        """One training step: autograd BPTT, clamp to ±clip, Adagrad."""
        torch = self.torch
        F = torch.nn.functional
        p, S = self.pointer, self.seq_length
        if p + S + 1 >= len(self.data_np):
            p = 0
            self.h = torch.zeros_like(self.h)
        inputs = self.data[p:p + S]
        targets = self.data[p + 1:p + S + 1]
        P = self.params
        pre = P["Wxh"][:, inputs].T + P["bh"]  # (S, H)
        h = self.h
        hs = []
        for t in range(S):
            h = torch.tanh(pre[t] + P["Whh"] @ h)
            hs.append(h)
        logits = torch.stack(hs) @ P["Why"].T + P["by"]
        loss = F.cross_entropy(logits, targets, reduction="sum")
        for v in P.values():
            v.grad = None
        loss.backward()
        with torch.no_grad():
            for k, v in P.items():
                g = v.grad.clamp_(-self.clip, self.clip)
                m = self.mem[k]
                m.addcmul_(g, g)
                v.addcdiv_(g, (m + 1e-8).sqrt(), value=-self.learning_rate)
        self.h = h.detach()
        self.pointer = p + S
        self.loss = float(loss.item())
        self.n_steps += 1
        return self.loss
