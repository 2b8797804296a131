"""``tr.to_torch`` / ``tr.from_torch``: every layer with a PyTorch twin gives equal outputs both ways."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from conftest import flat_arrays
from tinygrad_rnn import nn

torch = pytest.importorskip("torch", reason="needs torch")


_np = flat_arrays


CASES = {
    "linear": (lambda: nn.Linear(4, 3), lambda: (np.random.randn(2, 4),)),
    "embedding": (lambda: nn.Embedding(10, 4, padding_idx=0), lambda: (np.random.randint(0, 10, (2, 5)),)),
    "rnn": (lambda: nn.RNN(3, 5, nonlinearity="relu", bidirectional=True), lambda: (np.random.randn(4, 2, 3),)),
    "lstm": (lambda: nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True),
             lambda: (np.random.randn(2, 4, 3),)),
    "gru": (lambda: nn.GRU(3, 5, num_layers=2), lambda: (np.random.randn(4, 2, 3), np.random.randn(2, 2, 5))),
    "rnn_cell": (lambda: nn.RNNCell(3, 5), lambda: (np.random.randn(2, 3),)),
    "lstm_cell": (lambda: nn.LSTMCell(3, 5), lambda: (np.random.randn(2, 3),)),
    "gru_cell": (lambda: nn.GRUCell(3, 5, bias=False), lambda: (np.random.randn(2, 3),)),
    "layernorm": (lambda: nn.LayerNorm(6, eps=1e-3), lambda: (np.random.randn(2, 6),)),
    "dropout_eval": (lambda: nn.Dropout(0.3).eval(), lambda: (np.random.randn(2, 6),)),
    "mha": (lambda: nn.MultiheadAttention(8, 2, batch_first=True),
            lambda: (np.random.randn(2, 5, 8), np.random.randn(2, 6, 8), np.random.randn(2, 6, 8))),
    "encoder_layer": (lambda: nn.TransformerEncoderLayer(8, 2, 16, activation="gelu").eval(),
                      lambda: (np.random.randn(5, 2, 8),)),
    "activations": (lambda: nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.ReLU(), nn.Sigmoid(), nn.GELU("tanh"),
                                          nn.SiLU(), nn.LeakyReLU(0.2), nn.Identity(), nn.Softmax(dim=1),
                                          nn.LogSoftmax(dim=1), nn.Flatten()),
                    lambda: (np.random.randn(3, 4),)),
}


def _inputs(arrays):
    ours = tuple(tr.tensor(a.astype(np.float32)) if a.dtype.kind == "f" else tr.tensor(a) for a in arrays)
    theirs = tuple(torch.from_numpy(a.astype(np.float32)) if a.dtype.kind == "f" else torch.from_numpy(a)
                   for a in arrays)
    return ours, theirs


def _same(ours_out, torch_out):
    for a, b in zip(_np(ours_out), _np(torch_out), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_to_torch_gives_the_same_outputs(kind):
    make, make_inputs = CASES[kind]
    model = make()
    twin = tr.to_torch(model)
    assert twin.training == model.training
    ours, theirs = _inputs(make_inputs())
    with torch.no_grad():
        _same(model(*ours), twin(*theirs))


@pytest.mark.parametrize("kind", sorted(CASES))
def test_from_torch_gives_the_same_outputs(kind):
    make, make_inputs = CASES[kind]
    reference = tr.to_torch(make())  # a torch module of the right kind (its own fresh weights below)
    for p in reference.parameters():
        torch.nn.init.normal_(p, std=0.3)
    back = tr.from_torch(reference)
    assert type(back).__name__ == type(reference).__name__
    ours, theirs = _inputs(make_inputs())
    with torch.no_grad():
        _same(back(*ours), reference(*theirs))


def test_containers_keep_their_names():
    model = nn.ModuleDict({"encoder": nn.ModuleList([nn.Linear(3, 4), nn.GRU(4, 4)]), "head": nn.Linear(4, 2)})
    twin = tr.to_torch(model)
    assert isinstance(twin, torch.nn.ModuleDict)
    assert sorted(twin.state_dict()) == sorted(model.state_dict())
    back = tr.from_torch(twin)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[name].numpy(), value.numpy())


def test_recipe_train_a_converted_model_in_torch():
    model = nn.Sequential(nn.Embedding(12, 6), nn.LSTM(6, 8, batch_first=True))
    head = nn.Linear(8, 3)
    lstm_t, head_t = tr.to_torch(model), tr.to_torch(head)
    tokens = torch.randint(0, 12, (4, 5))
    out, _ = lstm_t(tokens)
    loss = torch.nn.functional.cross_entropy(head_t(out[:, -1]), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in lstm_t.parameters())
    optimizer = torch.optim.SGD(list(lstm_t.parameters()) + list(head_t.parameters()), lr=0.1)
    optimizer.step()
    moved = tr.from_torch(lstm_t)  # and the trained weights come back
    np.testing.assert_allclose(moved[0].weight.numpy(), lstm_t[0].weight.detach().numpy())


def test_float64_models_stay_float64():
    model = nn.Linear(3, 2).double()
    twin = tr.to_torch(model)
    assert twin.weight.dtype == torch.float64
    assert tr.from_torch(twin).weight.dtype == np.float64


class _Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def forward(self, x):
        return self.lin(x)


@pytest.mark.parametrize("make, words", [
    (lambda: _Custom(), "_Custom has no twin.*state_dict"),
    (lambda: nn.Sequential(nn.Linear(2, 2), _Custom()), "_Custom has no twin"),
    (lambda: nn.LSTM(3, 4, peephole=True), "peephole or coupled LSTM"),
    (lambda: nn.LSTMCell(3, 4, coupled=True), "peephole or coupled LSTMCell"),
])
def test_modules_without_a_twin_are_refused(make, words):
    with pytest.raises((TypeError, ValueError), match=words):
        tr.to_torch(make())


def test_torch_modules_without_a_twin_are_refused():
    with pytest.raises(TypeError, match="Conv1d has no twin"):
        tr.from_torch(torch.nn.Conv1d(2, 2, 3))
    with pytest.raises(ValueError, match="proj_size"):
        tr.from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(TypeError, match="expected a torch.nn.Module"):
        tr.from_torch(nn.Linear(2, 2))


def test_embedding_keeps_scale_grad_by_freq_both_ways():
    model = nn.Embedding(10, 4, scale_grad_by_freq=True)
    moved = tr.to_torch(model)
    assert moved.scale_grad_by_freq is True
    assert tr.from_torch(moved).scale_grad_by_freq is True
    assert tr.from_torch(tr.to_torch(nn.Embedding(10, 4))).scale_grad_by_freq is False
