"""Datasets and the DataLoader: batches and their order, drop_last, len, shuffling repeatable under
manual_seed, default collation of tensors, numbers, arrays, tuples and dicts as PyTorch's, bad input."""
from collections import namedtuple

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.utils.data import DataLoader, Dataset, TensorDataset, default_collate


def _dataset(device="cpu", n=10):
    x = tr.arange(n * 3, device=device).reshape(n, 3).float()
    y = tr.arange(n, device=device) * 10
    return TensorDataset(x, y)


def test_tensor_dataset_rows_and_length(device):
    dataset = _dataset(device)
    assert len(dataset) == 10
    x, y = dataset[4]
    assert x.tolist() == [12.0, 13.0, 14.0] and y.item() == 40 and x.device == device


@pytest.mark.parametrize("drop_last,sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_batches_in_order(device, drop_last, sizes):
    loader = DataLoader(_dataset(device), batch_size=4, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(batches) == len(sizes)
    assert [len(y) for _, y in batches] == sizes
    assert isinstance(batches[0], list)  # a tuple sample collates to a list of fields, as in PyTorch
    x, y = batches[1]
    assert x.shape == (4, 3) and x.dtype == tr.float32 and x.device == device
    assert y.tolist() == [40, 50, 60, 70]
    assert np.concatenate([b[1].numpy() for b in batches]).tolist() == [10 * i for i in range(sum(sizes))]


def test_len_and_iterating_again():
    loader = DataLoader(list(range(7)), batch_size=3)
    assert len(loader) == 3 and len(DataLoader(list(range(7)), batch_size=3, drop_last=True)) == 2
    assert len(DataLoader(list(range(6)), batch_size=3, drop_last=True)) == 2
    first = [b.tolist() for b in loader]
    assert first == [[0, 1, 2], [3, 4, 5], [6]] == [b.tolist() for b in loader]
    assert len(DataLoader([], batch_size=2)) == 0 and list(DataLoader([], batch_size=2)) == []


def _order(loader):
    return [int(v) for _, y in loader for v in y.numpy() // 10]


def test_shuffle_is_a_new_permutation_each_pass_and_repeats_under_manual_seed(device):
    loader = DataLoader(_dataset(device, n=50), batch_size=8, shuffle=True)
    tr.manual_seed(3)
    first, second = _order(loader), _order(loader)
    assert sorted(first) == sorted(second) == list(range(50))
    assert first != second and first != list(range(50))
    tr.manual_seed(3)
    assert _order(loader) == first and _order(loader) == second
    tr.manual_seed(4)
    assert _order(loader) != first


def test_shuffle_with_a_numpy_generator():
    data = _dataset(n=30)
    a = _order(DataLoader(data, batch_size=4, shuffle=True, generator=np.random.default_rng(7)))
    b = _order(DataLoader(data, batch_size=4, shuffle=True, generator=np.random.default_rng(7)))
    c = _order(DataLoader(data, batch_size=4, shuffle=True, generator=np.random.default_rng(8)))
    assert a == b != c and sorted(a) == list(range(30))
    assert a == np.random.default_rng(7).permutation(30).tolist()


def test_shuffle_with_drop_last_leaves_out_a_random_remainder():
    loader = DataLoader(_dataset(n=10), batch_size=4, shuffle=True, drop_last=True)
    seen = _order(loader)
    assert len(seen) == 8 and len(set(seen)) == 8


def test_custom_dataset_and_collate_fn():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return {"x": float(i), "y": i * i, "name": f"n{i}"}

    batch = next(iter(DataLoader(Squares(), batch_size=3)))
    assert batch["x"].dtype == tr.float64 and batch["x"].tolist() == [0.0, 1.0, 2.0]
    assert batch["y"].dtype == tr.int64 and batch["y"].tolist() == [0, 1, 4]
    assert batch["name"] == ["n0", "n1", "n2"]
    joined = list(DataLoader(Squares(), batch_size=2, collate_fn=lambda samples: [s["y"] for s in samples]))
    assert joined == [[0, 1], [4, 9], [16]]


def test_default_collate_matches_pytorchs():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    Pair = namedtuple("Pair", "a b")
    rng = np.random.default_rng(0)
    samples = [
        {"seq": rng.standard_normal((4, 2)).astype(np.float32), "label": int(rng.integers(5)), "w": float(i),
         "flag": bool(i % 2), "scalar": np.float32(i), "pair": (np.arange(3) + i, [i, -i]), "nt": Pair(i, 2.5 * i)}
        for i in range(3)
    ]
    ours, theirs = default_collate(samples), torch_collate(samples)

    def compare(a, b):
        if isinstance(b, torch.Tensor):
            assert isinstance(a, tr.Tensor) and a.shape == tuple(b.shape)
            assert a.dtype == np.dtype(str(b.dtype).replace("torch.", "").replace("bool", "bool_"))
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        elif isinstance(b, dict):
            assert isinstance(a, dict) and list(a) == list(b)
            for key in b:
                compare(a[key], b[key])
        else:
            assert type(a) is type(b) and len(a) == len(b)
            for x, y in zip(a, b):
                compare(x, y)

    compare(ours, theirs)
    tensors = [tr.randn(2, 3) for _ in range(4)]
    stacked = default_collate(tensors)
    assert stacked.shape == (4, 2, 3)
    np.testing.assert_array_equal(stacked.numpy(), np.stack([t.numpy() for t in tensors]))


def test_collated_tensors_keep_their_graph():
    w = tr.ones(3, requires_grad=True)
    batch = default_collate([w * 2, w * 3])
    batch.sum().backward()
    assert w.grad.tolist() == [5.0, 5.0, 5.0]


class _NoLength:
    def __getitem__(self, i):
        return i


@pytest.mark.parametrize("make,error,message", [
    (lambda: TensorDataset(), ValueError, r"^TensorDataset: needs at least one tensor, got none"),
    (lambda: TensorDataset(tr.zeros(3, 2), tr.zeros(4)), ValueError,
     r"^TensorDataset: size mismatch between tensors: their first dimensions are \[3, 4\], expected all equal"),
    (lambda: TensorDataset(tr.zeros(3), np.zeros(3)), TypeError,
     r"^TensorDataset: argument 1 is a ndarray, expected a Tensor \(make one with tinygrad_rnn\.tensor"),
    (lambda: TensorDataset(tr.tensor(1.0)), ValueError, r"^TensorDataset: argument 0 is a 0-dimensional tensor"),
    (lambda: DataLoader(_dataset(), batch_size=0), ValueError, r"^DataLoader: batch_size must be a positive integer"),
    (lambda: DataLoader(_dataset(), batch_size=2.0), ValueError, r"^DataLoader: batch_size must be a positive integer"),
    (lambda: DataLoader(_dataset(), shuffle="yes"), TypeError,
     r"^DataLoader: shuffle must be True or False, got 'yes'"),
    (lambda: DataLoader(_dataset(), drop_last=1), TypeError, r"^DataLoader: drop_last must be True or False, got 1"),
    (lambda: DataLoader(_dataset(), collate_fn="stack"), TypeError,
     r"^DataLoader: collate_fn must be a function of a list of samples, got str"),
    (lambda: DataLoader(_dataset(), shuffle=True, generator=0), TypeError,
     r"^DataLoader: generator must be a numpy\.random\.Generator .* got int"),
    (lambda: DataLoader(_NoLength()), TypeError,
     r"^DataLoader: dataset must be indexable and have a length .*got _NoLength"),
    (lambda: DataLoader(5), TypeError, r"^DataLoader: dataset must be indexable and have a length"),
    (lambda: list(DataLoader([tr.zeros(2), tr.zeros(3)], batch_size=2)), ValueError,
     r"^default_collate: the samples' tensors have different shapes: \(2,\) at entry 0 and \(3,\) at entry 1; pad "
     r"them to one shape, or pass DataLoader a collate_fn"),
    (lambda: default_collate([np.zeros(2), np.zeros(3)]), ValueError,
     r"^default_collate: the samples' arrays have different shapes"),
    (lambda: default_collate([(1, 2), (1, 2, 3)]), ValueError,
     r"^default_collate: each element in list of batch should be of equal size: sample 0 has 2 fields, sample 1 "
     r"has 3"),
    (lambda: default_collate([{"a": 1}, {"b": 1}]), ValueError,
     r"^default_collate: sample 1 has keys \['b'\], but sample 0 has \['a'\]"),
    (lambda: default_collate([tr.zeros(2), 1.0]), TypeError,
     r"^default_collate: sample 0 is one of the tensors, but sample 1 is a float; every sample must have the same"),
    (lambda: default_collate([object(), object()]), TypeError,
     r"^default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found object"),
    (lambda: default_collate([np.array(["a"]), np.array(["b"])]), TypeError,
     r"^default_collate: batch must contain .*; found a NumPy array of dtype <U1"),
    (lambda: default_collate([]), TypeError, r"^default_collate: expected a non-empty list of samples"),
    (lambda: Dataset()[0], NotImplementedError, r"^Dataset: a Dataset subclass must implement __getitem__"),
], ids=lambda value: None)
def test_bad_input_gets_clear_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_reachable_as_torch_spells_it():
    import tinygrad_rnn.utils.data as data_module
    from tinygrad_rnn import utils

    assert utils.data is data_module and data_module.DataLoader is DataLoader
