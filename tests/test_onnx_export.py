"""``tr.onnx.export``: each layer kind and small models checked with onnx's checker and onnxruntime."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_rnn as tr
from conftest import flat_arrays
from tinygrad_rnn import nn

onnx = pytest.importorskip("onnx", reason="needs the onnx package")
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime")


_flat = flat_arrays


def _agree(model, inputs, path, atol=1e-5, **kwargs):
    """Export, check the model, run it in onnxruntime and compare every output with ours."""
    proto = tr.onnx.export(model, inputs, path, **kwargs)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    model.eval()
    with tr.no_grad():
        ours = _flat(model(*inputs))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    theirs = session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})
    assert len(theirs) == len(ours)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, atol=atol, rtol=1e-5)
    return proto


LAYERS = {
    "linear": (lambda: nn.Linear(4, 3), lambda: (tr.randn(2, 4),)),
    "linear_3d_no_bias": (lambda: nn.Linear(4, 3, bias=False), lambda: (tr.randn(2, 5, 4),)),
    "embedding": (lambda: nn.Embedding(10, 4), lambda: (tr.randint(0, 10, (2, 5)),)),
    "layernorm": (lambda: nn.LayerNorm(6), lambda: (tr.randn(2, 3, 6),)),
    "layernorm_no_affine": (lambda: nn.LayerNorm(6, elementwise_affine=False), lambda: (tr.randn(3, 6),)),
    "rnn_tanh": (lambda: nn.RNN(3, 5), lambda: (tr.randn(4, 2, 3),)),
    "rnn_relu_bidir": (lambda: nn.RNN(3, 5, nonlinearity="relu", bidirectional=True), lambda: (tr.randn(4, 2, 3),)),
    "lstm_stacked_bidir": (lambda: nn.LSTM(3, 5, num_layers=2, bidirectional=True), lambda: (tr.randn(4, 2, 3),)),
    "lstm_batch_first_states": (
        lambda: nn.LSTM(3, 5, batch_first=True),
        lambda: (tr.randn(2, 4, 3), (tr.randn(1, 2, 5), tr.randn(1, 2, 5))),
    ),
    "lstm_no_bias": (lambda: nn.LSTM(3, 5, bias=False), lambda: (tr.randn(4, 2, 3),)),
    "gru_h0": (lambda: nn.GRU(3, 5, num_layers=2), lambda: (tr.randn(4, 2, 3), tr.randn(2, 2, 5))),
    "gru_bidir_batch_first": (lambda: nn.GRU(3, 5, bidirectional=True, batch_first=True), lambda: (tr.randn(2, 4, 3),)),
    "lstm_fused_step": (lambda: nn.LSTM(3, 5, impl="fused_step"), lambda: (tr.randn(4, 2, 3),)),
    "gru_composed": (lambda: nn.GRU(3, 5, impl="composed"), lambda: (tr.randn(4, 2, 3),)),
    "rnn_cell": (lambda: nn.RNNCell(3, 5), lambda: (tr.randn(2, 3), tr.randn(2, 5))),
    "lstm_cell": (lambda: nn.LSTMCell(3, 5), lambda: (tr.randn(2, 3),)),
    "gru_cell": (lambda: nn.GRUCell(3, 5), lambda: (tr.randn(2, 3),)),
    "mha": (lambda: nn.MultiheadAttention(8, 2), lambda: (tr.randn(5, 2, 8), tr.randn(6, 2, 8), tr.randn(6, 2, 8))),
    "transformer_layer": (lambda: nn.TransformerEncoderLayer(8, 2, 16), lambda: (tr.randn(5, 2, 8),)),
    "activations": (
        lambda: nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.Linear(6, 6), nn.Tanh(), nn.SiLU(), nn.LeakyReLU(0.1),
                              nn.Sigmoid(), nn.LogSoftmax(dim=-1)),
        lambda: (tr.randn(3, 4),),
    ),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_each_layer_matches_onnxruntime(tmp_path, kind):
    make_model, make_inputs = LAYERS[kind]
    tr.manual_seed(0)
    model, inputs = make_model(), make_inputs()
    flat_inputs = tuple(x for item in inputs for x in (item if isinstance(item, tuple) else (item,)))
    if kind == "lstm_batch_first_states":  # (x, (h0, c0)) is the LSTM's call: wrap it to take three tensors
        model = _Wrapped(model)
    _agree(model, flat_inputs, tmp_path / f"{kind}.onnx")


class _Wrapped(nn.Module):
    def __init__(self, lstm):
        super().__init__()
        self.lstm = lstm

    def forward(self, x, h0, c0):
        return self.lstm(x, (h0, c0))


class _Tagger(nn.Module):
    """Embedding → 2-layer bidirectional batch-first LSTM → Linear."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 6)
        self.lstm = nn.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(10, 4)

    def forward(self, tokens):
        out, _ = self.lstm(self.embed(tokens))
        return self.head(out)


class _GRUWithState(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4, batch_first=True)
        self.out = nn.Linear(4, 2)

    def forward(self, x, h0):
        out, h = self.gru(x, h0)
        return self.out(out).softmax(dim=-1), h


class _AttentionBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.norm = nn.LayerNorm(8)

    def forward(self, x):
        y, _ = self.attn(x, x, x, need_weights=False)
        return self.norm(x + y).mean(dim=1)


def test_tagger_model_with_names_and_parameter_initializers(tmp_path):
    model = _Tagger()
    proto = _agree(model, (tr.randint(0, 20, (3, 7)),), tmp_path / "tagger.onnx",
                   input_names=["tokens"], output_names=["logits"])
    assert [i.name for i in proto.graph.input] == ["tokens"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    initializers = {i.name for i in proto.graph.initializer}
    assert {name for name, _ in model.named_parameters()} <= initializers
    assert sorted(n.op_type for n in proto.graph.node if n.op_type == "LSTM") == ["LSTM"] * 4


def test_gru_with_initial_state(tmp_path):
    proto = _agree(_GRUWithState(), (tr.randn(2, 5, 3), tr.randn(1, 2, 4)), tmp_path / "gru.onnx")
    gru = [n for n in proto.graph.node if n.op_type == "GRU"]
    assert len(gru) == 1
    assert {a.name: a.i for a in gru[0].attribute}["linear_before_reset"] == 1


def test_attention_block_with_layer_norm(tmp_path):
    _agree(_AttentionBlock(), (tr.randn(2, 5, 8),), tmp_path / "block.onnx")


def test_elementwise_and_shape_ops(tmp_path):
    class Ops(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(tr.randn(4, 3))

        def forward(self, x, y):
            a = (x - y) * 2.0 / (y.exp() + 1.0)
            b = a.tanh().sigmoid().relu() + (x.abs() + 1).log()
            c = b.reshape(3, 2, 4).permute(2, 0, 1).transpose(0, 2)
            d = tr.cat([c[0], c[1, :, ::-1]], dim=1) @ tr.ones(8, 2)
            e = tr.stack([x[:, 1:3], y[..., None, 0:2].squeeze(1)], dim=0).sum(dim=0)
            f = (x @ self.w).softmax(dim=1) + e.mean(dim=1, keepdim=True)
            return d, f.sum(), e.max(dim=0).values, e.max(), e.var(dim=1), e.gather(1, tr.tensor([[0], [1]] * 3))

    _agree(Ops(), (tr.randn(6, 4), tr.randn(6, 4)), tmp_path / "ops.onnx")


@pytest.mark.parametrize("model, words", [
    (lambda: nn.LSTM(3, 4, coupled=True), "coupled LSTM"),
    (lambda: nn.LSTM(3, 4, peephole=True), "peephole LSTM"),
    (lambda: nn.LSTMCell(3, 4, peephole=True), "peephole LSTM"),
])
def test_variants_without_onnx_equivalent_are_refused(tmp_path, model, words):
    x = tr.randn(5, 2, 3) if "Cell" not in str(model()) else tr.randn(2, 3)
    with pytest.raises(ValueError, match=words):
        tr.onnx.export(model(), (x,), tmp_path / "x.onnx")
    assert not os.listdir(tmp_path)


def test_an_op_without_conversion_is_named(tmp_path):
    class Clamped(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x):
            return self.lin(x).clamp(-1, 1)

    with pytest.raises(ValueError, match=r"op Clamp \(inside Clamped\) has no ONNX conversion"):
        tr.onnx.export(Clamped(), (tr.randn(2, 3),), tmp_path / "x.onnx")


def test_bad_arguments_are_refused(tmp_path):
    model = nn.Linear(3, 2)
    with pytest.raises(TypeError, match="example_inputs"):
        tr.onnx.export(model, [[1, 2, 3]], tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="opset_version"):
        tr.onnx.export(model, (tr.randn(1, 3),), tmp_path / "x.onnx", opset_version=9)
    with pytest.raises(ValueError, match="input_names"):
        tr.onnx.export(model, (tr.randn(1, 3),), tmp_path / "x.onnx", input_names=["a", "b"])


def test_the_model_mode_is_restored_and_dropout_is_off(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    model.train()
    _agree(model, (tr.randn(5, 3),), tmp_path / "drop.onnx")  # _agree itself leaves it in eval
    model.train()
    tr.onnx.export(model, (tr.randn(5, 3),), tmp_path / "drop.onnx")
    assert all(m.training for m in model.modules())


def test_the_file_is_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    model = nn.Linear(3, 2)
    tr.onnx.export(model, (tr.randn(1, 3),), path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="Clamp"):  # a failure while tracing writes nothing
        tr.onnx.export(_Clamp(), (tr.randn(1, 3),), path)
    from tinygrad_rnn.onnx import exporter

    def failing_write(target, write, op):
        raise OSError(28, f"{op}: cannot write {target}: No space left on device")

    monkeypatch.setattr(exporter, "write_atomically", failing_write)
    with pytest.raises(OSError, match="No space"):
        tr.onnx.export(nn.Linear(3, 2), (tr.randn(1, 3),), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.onnx"]


class _Clamp(nn.Module):
    def forward(self, x):
        return (x * 1.0).clamp(0, 1)


def test_import_tinygrad_rnn_does_not_import_onnx():
    code = "import sys, tinygrad_rnn as tr; tr.onnx.export; print('onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
