"""The char-LSTM that benchmarks M (``bench_m.py``) and GPU (``gpu.py``) train, in tinygrad_rnn.

:class:`FrameworkCharLSTM` rebuilds the ``CharLSTMTorch`` baseline's model,
data and training step from the baseline's own weights and batches.
Importing this module loads numpy (through tinygrad_rnn): a script imports it
after ``pin_threads()``.
"""

import tinygrad_rnn.nn.functional as F
from benchmarks.baselines import CharLSTMTorch
import tinygrad_rnn as tr
from tinygrad_rnn import Tensor, nn, optim


class CharLSTM(nn.Module):
    """Embedding -> stacked LSTM (batch_first) -> Linear, with the torch baseline's parameter names
    (``embedding.weight``, ``lstm.weight_ih_l0``, ..., ``head.bias``) so state dicts map one to one."""

    def __init__(self, vocab_size, embed_size, hidden_size, num_layers):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.lstm = nn.LSTM(embed_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens):
        """Logits (B, S, V) for integer tokens (B, S), from zero initial state."""
        output, _ = self.lstm(self.embedding(tokens))
        return self.head(output)


class FrameworkCharLSTM:
    """The ``CharLSTMTorch`` baseline's model, data and training step in tinygrad_rnn.

    Weights are copied from ``ref.export_params()`` (same names and layouts),
    the batches from ``ref.inputs`` / ``ref.targets``; ``device`` is
    ``"cpu"`` or ``"cuda"``. ``step()`` ends with ``loss.item()``, which
    waits for a GPU to finish, so it can be timed directly.
    """

    def __init__(self, ref: CharLSTMTorch, device: str = "cpu"):
        self.vocab_size = ref.vocab_size
        weights = ref.export_params()
        self.model = CharLSTM(ref.vocab_size, ref.embed_size, ref.hidden_size, ref.num_layers)
        self.model.to(dtype=weights["head.weight"].dtype)
        self.model.load_state_dict({k: v.copy() for k, v in weights.items()})
        self.model.to(device)
        self.params = list(self.model.parameters())
        self.optimizer = optim.Adam(self.params, lr=ref.learning_rate)
        self.clip_norm = ref.clip_norm
        self.inputs = [Tensor(b, device=device) for b in ref.inputs.cpu().numpy()]
        self.targets = [Tensor(b.reshape(-1), device=device) for b in ref.targets.cpu().numpy()]
        self.batch_index = 0
        self.loss = None
        self.graphed = None

    def train_step(self, tokens, targets):
        """Forward, backward, clip_grad_norm_ and Adam on one batch; returns the loss tensor (no host read,
        so that ``tr.cuda.graphed`` can capture it)."""
        logits = self.model(tokens)
        loss = F.cross_entropy(logits.reshape(-1, self.vocab_size), targets)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, self.clip_norm)
        self.optimizer.step()
        return loss

    def step(self) -> float:
        """One training step on the next batch; returns the loss (``loss.item()`` waits for a GPU)."""
        return self._finish(self.train_step(self.inputs[self.batch_index], self.targets[self.batch_index]))

    def capture(self, warmup: int = 3, check: bool = False) -> None:
        """Capture ``train_step`` as a CUDA graph on the current batch (``warmup`` + 1 steps are taken
        there); :meth:`step_graphed` replays it. ``check=False``: index checks are not read back after
        each replay (PyTorch does not check on the host either)."""
        i = self.batch_index
        self.graphed = tr.cuda.graphed(self.train_step, self.inputs[i], self.targets[i], warmup=warmup, check=check)
        self.batch_index = (i + 1) % len(self.inputs)

    def step_graphed(self) -> float:
        """One training step on the next batch by replaying the captured step; returns the loss."""
        return self._finish(self.graphed(self.inputs[self.batch_index], self.targets[self.batch_index]))

    def _finish(self, loss) -> float:
        self.loss = loss.item()
        self.batch_index = (self.batch_index + 1) % len(self.inputs)
        return self.loss
