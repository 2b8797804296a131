"""Recurrent cells and layers against PyTorch: weights moved by name through state_dict, values and gradients equal."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn

torch = pytest.importorskip("torch")

LAYERS = {"RNN": (nn.RNN, torch.nn.RNN), "LSTM": (nn.LSTM, torch.nn.LSTM), "GRU": (nn.GRU, torch.nn.GRU)}
CELLS = {"RNNCell": (nn.RNNCell, torch.nn.RNNCell), "LSTMCell": (nn.LSTMCell, torch.nn.LSTMCell),
         "GRUCell": (nn.GRUCell, torch.nn.GRUCell)}
DTYPES = {"float64": (np.float64, torch.float64, 1e-10), "float32": (np.float32, torch.float32, 2e-6)}


@pytest.fixture(autouse=True)
def _plain_torch_kernels():
    """torch's oneDNN float32 RNN path costs ~1 s per new shape on CPU; the plain kernels give the same values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        flags = torch.backends.mkldnn.flags(enabled=False)
        flags.__enter__()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            flags.__exit__(None, None, None)


def to_torch(ours, theirs):
    """Copy our parameters into a torch module by name (the torch names must match exactly)."""
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})


def flat(out):
    """(output, h) / (output, (h, c)) / (h, c) / h → a flat list of tensors."""
    items = []
    for o in out if isinstance(out, tuple) else (out,):
        items.extend(flat(o) if isinstance(o, tuple) else [o])
    return items


def compare(ours, theirs, x_np, states_np, np_dtype, torch_dtype, atol):
    """Forward both modules, backprop the same random weighted sum of all outputs, compare everything."""
    x = tr.Tensor(x_np.astype(np_dtype), requires_grad=True)
    tx = torch.tensor(x_np, dtype=torch_dtype, requires_grad=True)
    states = [tr.Tensor(s.astype(np_dtype), requires_grad=True) for s in states_np]
    tstates = [torch.tensor(s, dtype=torch_dtype, requires_grad=True) for s in states_np]
    pack = lambda s: None if not s else (s[0] if len(s) == 1 else tuple(s))
    outs, touts = flat(ours(x, pack(states))), flat(theirs(tx, pack(tstates)))
    assert len(outs) == len(touts)
    rng = np.random.default_rng(7)
    weights = [rng.standard_normal(o.shape) for o in outs]
    loss = 0
    for o, w in zip(outs, weights):
        assert o.dtype == np_dtype
        loss = loss + (o * tr.Tensor(w.astype(np_dtype))).sum()
    tloss = sum((o * torch.tensor(w, dtype=torch_dtype)).sum() for o, w in zip(touts, weights))
    loss.backward()
    tloss.backward()
    for o, to in zip(outs, touts):
        assert o.shape == tuple(to.shape)
        np.testing.assert_allclose(o.numpy(), to.detach().numpy(), rtol=0, atol=atol)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=0, atol=atol)
    for s, ts in zip(states, tstates):
        np.testing.assert_allclose(s.grad.numpy(), ts.grad.numpy(), rtol=0, atol=atol)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=0, atol=atol, err_msg=name)


LAYER_CASES = [
    (dict(), (4, 2)),
    (dict(num_layers=2, bidirectional=True), (3, 2)),
    (dict(batch_first=True, bidirectional=True), (2, 3)),
    (dict(num_layers=2, bias=False), (3, 1)),
    (dict(num_layers=2, bidirectional=True, dropout=0.3), (1, 2)),  # eval: dropout off
    (dict(bidirectional=True), (3,)),  # unbatched
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", ["fused", "fused_step", "composed"])
@pytest.mark.parametrize("case", range(len(LAYER_CASES)))
@pytest.mark.parametrize("name", LAYERS)
def test_layers_match_torch(name, case, impl, dtype):
    options, tb = LAYER_CASES[case]
    ours_cls, torch_cls = LAYERS[name]
    np_dtype, torch_dtype, atol = DTYPES[dtype]
    torch.manual_seed(case)
    ours = ours_cls(3, 4, impl=impl, **options).to(dtype=np_dtype).eval()
    theirs = torch_cls(3, 4, **options).to(torch_dtype).eval()
    to_torch(ours, theirs)
    rng = np.random.default_rng(case)
    x = rng.standard_normal(tb + (3,))
    depth = ours.num_layers * ours.num_directions
    state_shape = (depth, 4) if len(tb) == 1 else (depth, tb[0] if ours.batch_first else tb[1], 4)
    with_states = case % 2 == 0 or len(tb) == 1
    states = [rng.standard_normal(state_shape) for _ in ours.state_names] if with_states else []
    compare(ours, theirs, x, states, np_dtype, torch_dtype, atol)


def test_relu_rnn_matches_torch():
    ours = nn.RNN(3, 5, num_layers=2, nonlinearity="relu", bidirectional=True).double()
    theirs = torch.nn.RNN(3, 5, num_layers=2, nonlinearity="relu", bidirectional=True).double()
    to_torch(ours, theirs)
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    compare(ours, theirs, x, [], np.float64, torch.float64, 1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", ["fused", "composed"])
@pytest.mark.parametrize("batch", [2, 1, None])
@pytest.mark.parametrize("name", CELLS)
def test_cells_match_torch(name, batch, impl, dtype):
    ours_cls, torch_cls = CELLS[name]
    np_dtype, torch_dtype, atol = DTYPES[dtype]
    ours = ours_cls(3, 5, impl=impl).to(dtype=np_dtype)
    theirs = torch_cls(3, 5).to(torch_dtype)
    to_torch(ours, theirs)
    rng = np.random.default_rng(0)
    lead = () if batch is None else (batch,)
    states = [rng.standard_normal(lead + (5,)) for _ in range(2 if name == "LSTMCell" else 1)]
    compare(ours, theirs, rng.standard_normal(lead + (3,)), states, np_dtype, torch_dtype, atol)


@pytest.mark.parametrize("name", LAYERS)
def test_torch_weights_load_into_ours(name):
    ours_cls, torch_cls = LAYERS[name]
    theirs = torch_cls(3, 4, num_layers=2, bidirectional=True).double()
    ours = ours_cls(3, 4, num_layers=2, bidirectional=True).double()
    ours.load_state_dict(theirs.state_dict())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 2, 3))
    out, _ = ours(tr.Tensor(x))
    np.testing.assert_allclose(out.numpy(), theirs(torch.tensor(x))[0].detach().numpy(), atol=1e-12)


def test_lecture_variants_are_not_pytorch_loadable():
    peephole = nn.LSTM(3, 4, peephole=True)
    with pytest.raises(RuntimeError, match="weight_ch_l0"):
        torch.nn.LSTM(3, 4).load_state_dict({k: torch.tensor(v.numpy()) for k, v in peephole.state_dict().items()})
    # coupled keeps PyTorch's shapes (it loads) but computes a different function
    coupled, theirs = nn.LSTM(3, 4, coupled=True).double(), torch.nn.LSTM(3, 4).double()
    to_torch(coupled, theirs)
    x = np.random.default_rng(0).standard_normal((3, 2, 3))
    assert np.abs(coupled(tr.Tensor(x))[0].numpy() - theirs(torch.tensor(x))[0].detach().numpy()).max() > 1e-3
