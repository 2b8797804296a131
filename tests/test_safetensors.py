"""``tr.save``/``tr.load`` in the safetensors format: round trips, dtypes, PyTorch both ways, damaged files."""
import os

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import CheckpointError, nn

pytest.importorskip("safetensors", reason="needs the safetensors package")


def _layers():
    """(our module, the matching torch.nn constructor) pairs, built lazily (torch may be missing)."""
    return {
        "linear": (lambda: nn.Linear(5, 3), lambda torch: torch.nn.Linear(5, 3)),
        "lstm": (lambda: nn.LSTM(4, 6, num_layers=2, bidirectional=True),
                 lambda torch: torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True)),
        "gru": (lambda: nn.GRU(4, 5), lambda torch: torch.nn.GRU(4, 5)),
        "embedding": (lambda: nn.Embedding(10, 4), lambda torch: torch.nn.Embedding(10, 4)),
        "layernorm": (lambda: nn.LayerNorm(6), lambda torch: torch.nn.LayerNorm(6)),
        "mha": (lambda: nn.MultiheadAttention(8, 2), lambda torch: torch.nn.MultiheadAttention(8, 2)),
    }


def test_round_trip_keeps_values_and_dtypes(tmp_path):
    state = {
        "f32": tr.randn(3, 4),
        "f64": tr.randn(2, dtype=tr.float64),
        "i64": tr.arange(5),
        "i32": tr.tensor([1, 2], dtype=tr.int32),
        "flag": tr.tensor([True, False]),
        "scalar": tr.tensor(2.5),
    }
    path = tmp_path / "w.safetensors"
    tr.save(state, path)
    back = tr.load(path)
    assert sorted(back) == sorted(state)
    for name, value in state.items():
        assert back[name].dtype == value.dtype, name
        assert back[name].shape == value.shape, name
        np.testing.assert_array_equal(back[name].numpy(), value.numpy())


def test_format_argument_and_state_dict_round_trip(tmp_path):
    model = nn.LSTM(3, 4, num_layers=2)
    path = tmp_path / "weights.bin"
    tr.save(model.state_dict(), path, format="safetensors")
    other = nn.LSTM(3, 4, num_layers=2)
    other.load_state_dict(tr.load(path, format="safetensors"))
    for (name, a), (_, b) in zip(model.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    with pytest.raises(ValueError, match="format"):
        tr.save(model.state_dict(), path, format="pickle")


@pytest.mark.parametrize("obj", [{"a": {"b": tr.ones(2)}}, {"step": 3}, [tr.ones(2)], {1: tr.ones(2)}])
def test_anything_but_a_flat_tensor_mapping_is_refused(tmp_path, obj):
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match="only a flat mapping of names to tensors.*default format"):
        tr.save(obj, path)
    assert not os.listdir(tmp_path)  # nothing written, no temporary left


def test_a_failed_write_leaves_the_previous_file(tmp_path, monkeypatch):
    import safetensors.numpy

    path = tmp_path / "w.safetensors"
    tr.save({"a": tr.ones(3)}, path)
    before = path.read_bytes()

    def broken(arrays):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(safetensors.numpy, "save", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        tr.save({"a": tr.zeros(3)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["w.safetensors"]


def test_every_truncation_is_a_checkpoint_error_naming_the_path(tmp_path):
    good = tmp_path / "good.safetensors"
    tr.save({"w": tr.randn(4, 3), "b": tr.arange(3)}, good)
    data = good.read_bytes()
    bad = tmp_path / "bad.safetensors"
    for cut in range(0, len(data)):
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError) as excinfo:
            tr.load(bad)
        assert str(bad) in str(excinfo.value)


@pytest.mark.parametrize("content", [b"", b"hello world, not a tensor file", b"\xff" * 40, b"PK\x03\x04junk"])
def test_files_that_are_not_safetensors_are_refused(tmp_path, content):
    path = tmp_path / "x.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="x.safetensors"):
        tr.load(path)


def test_a_corrupted_header_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "w.safetensors"
    tr.save({"w": tr.randn(4, 3)}, path)
    data = bytearray(path.read_bytes())
    errors = 0
    for position in range(8, 8 + int.from_bytes(data[:8], "little")):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        path.write_bytes(bytes(damaged))
        try:
            tr.load(path)
        except CheckpointError as exc:
            assert str(path) in str(exc)
            errors += 1
    assert errors > 0


def test_missing_package_names_the_extra(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_safetensors(name, *args, **kwargs):
        if name.startswith("safetensors"):
            raise ImportError("No module named 'safetensors'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_safetensors)
    with pytest.raises(ImportError, match=r'tinygrad_rnn\[safetensors\]'):
        tr.save({"a": tr.ones(2)}, tmp_path / "w.safetensors")


@pytest.mark.parametrize("kind", sorted(_layers()))
def test_our_file_loads_into_torch_and_torch_file_loads_into_ours(tmp_path, kind):
    torch = pytest.importorskip("torch", reason="needs torch")
    from safetensors.torch import load_file, save_file

    ours_factory, torch_factory = _layers()[kind]
    ours = ours_factory()
    path = tmp_path / "ours.safetensors"
    tr.save(ours.state_dict(), path)
    theirs = torch_factory(torch)
    theirs.load_state_dict(load_file(str(path)), strict=True)
    for name, value in theirs.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), ours.state_dict()[name].numpy(), err_msg=name)

    reference = torch_factory(torch)
    back_path = tmp_path / "theirs.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(back_path))
    mine = ours_factory()
    mine.load_state_dict(tr.load(back_path))
    for name, value in reference.state_dict().items():
        np.testing.assert_array_equal(mine.state_dict()[name].numpy(), value.numpy(), err_msg=name)
