"""What a new user hits first, tried as they would: ``import tinygrad_rnn as tr`` and nothing else,
weights loaded from PyTorch or NumPy, tied weights, silent floating point, and custom ops."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn.autograd import Function


def _fresh(code):
    """Run ``code`` in a new interpreter with Python's default warning filters; return its stderr."""
    result = subprocess.run([sys.executable, "-W", "default", "-c", textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_one_import_gives_the_whole_namespace():
    _fresh("""
        import tinygrad_rnn as tr
        tr.nn.LSTM(3, 8)
        tr.nn.functional.relu(tr.randn(2))
        tr.nn.utils.clip_grad_norm_([], 1.0)
        tr.optim.SGD([tr.nn.Parameter(tr.zeros(1))], lr=0.1)
        tr.optim.lr_scheduler.StepLR
        tr.autograd.Function
        tr.viz.draw_graph
        tr.data
        tr.utils.data.DataLoader
    """)


def test_the_readme_device_snippet_fails_only_for_want_of_a_gpu():
    """The README's device snippet used to die on ``tr.nn`` before it got to the GPU."""
    stderr = subprocess.run([sys.executable, "-c", "import tinygrad_rnn as tr; tr.nn.LSTM(3, 8)"],
                            capture_output=True, text=True, timeout=120).stderr
    assert stderr == ""


def test_floating_point_in_ops_is_silent_as_in_pytorch():
    stderr = _fresh("""
        import tinygrad_rnn as tr
        x = tr.tensor([0.0, 1.0], requires_grad=True)
        x.log().sum().backward()            # log(0), and 1/0 in its backward
        tr.tensor([1000.0]).exp()           # overflow
        tr.tensor([]).mean()                # the mean of nothing
        tr.tensor([0.0]) / 0                # 0/0
        p = tr.nn.Parameter(tr.tensor([60000.0], dtype=tr.float16))
        p.grad = tr.tensor([60000.0], dtype=tr.float16)
        tr.optim.Adam([p]).step()           # float16 overflow in the moments
        import numpy as np
        np.log(np.zeros(1))                 # the user's own NumPy still warns
    """)
    assert stderr.count("RuntimeWarning") == 1 and "<string>:12: RuntimeWarning: divide by zero" in stderr


# --------------------------------------------------------------------------- weights in and out
def test_load_state_dict_copies_from_numpy():
    model = tr.nn.Linear(2, 3)
    source = {"weight": np.ones((3, 2), np.float32), "bias": np.zeros(3, np.float32)}
    weight = model.weight
    model.load_state_dict(source)
    source["weight"][0, 0] = 7.0
    assert model.weight[0, 0].item() == 1.0 and model.weight is weight


def test_load_state_dict_copies_from_torch_and_from_tr():
    torch = pytest.importorskip("torch")
    t = torch.nn.Linear(2, 3)
    model = tr.nn.Linear(2, 3)
    model.load_state_dict(t.state_dict())
    t.weight.data.fill_(7)
    assert model.weight[0, 0].item() != 7.0
    other = tr.nn.Linear(2, 3)
    other.load_state_dict(model.state_dict())
    with tr.no_grad():
        model.weight.fill_(5)
    assert other.weight[0, 0].item() != 5.0


def _tied_models(torch):
    class TiedLM(tr.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = tr.nn.Embedding(5, 4)
            self.head = tr.nn.Linear(4, 5)
            self.head.weight = self.embedding.weight

    class TorchTiedLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(5, 4)
            self.head = torch.nn.Linear(4, 5)
            self.head.weight = self.embedding.weight

    return TiedLM(), TorchTiedLM()


def test_tied_weights_state_dict_holds_both_names_and_loads_both_ways():
    torch = pytest.importorskip("torch")
    ours, theirs = _tied_models(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["embedding.weight", "head.weight", "head.bias"]
    assert len(list(ours.parameters())) == 2  # parameters() lists a shared tensor once, as PyTorch
    ours.load_state_dict(theirs.state_dict())
    np.testing.assert_array_equal(ours.head.weight.numpy(), theirs.embedding.weight.detach().numpy())
    assert ours.head.weight is ours.embedding.weight
    with tr.no_grad():
        ours.embedding.weight.mul_(2)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    np.testing.assert_array_equal(theirs.head.weight.detach().numpy(), ours.embedding.weight.numpy())


def test_assigning_a_plain_tensor_to_a_parameter_name_is_refused_as_in_pytorch():
    model = tr.nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"^Linear: cannot assign a Tensor as parameter 'weight'"):
        model.weight = model.weight * 2
    model.bias = None
    assert "bias" not in model.state_dict() and model.bias is None


def test_state_dict_order_is_pytorchs_with_buffers():
    torch = pytest.importorskip("torch")
    ours = tr.nn.Sequential(tr.nn.Linear(2, 2), tr.nn.LayerNorm(2))
    ours.register_buffer("steps", tr.zeros(1))
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2))
    theirs.register_buffer("steps", torch.zeros(1))
    assert list(ours.state_dict()) == list(theirs.state_dict())


# --------------------------------------------------------------------------- custom functions
def test_a_custom_function_whose_backward_returns_a_wrong_shape_is_named():
    class Twice(Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return g.reshape(-1)[:5]

    x = tr.randn(4, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"^Twice\.backward: gradient of shape \(5,\) for an input of shape \(4, 3\)"):
        Twice.apply(x).sum().backward()


def test_a_custom_function_returning_too_few_gradients_is_named():
    class Pair(Function):
        def forward(self, a, b):
            return a + b

        def backward(self, g):
            return g

    a, b = tr.randn(2, requires_grad=True), tr.randn(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"^Pair\.backward: returned 1 gradient\(s\) for 2 input\(s\)"):
        Pair.apply(a, b).sum().backward()


def test_tensor_copies_its_source_as_torch_tensor_does():
    source = np.zeros(3)
    t = tr.tensor(source)
    t += 1
    assert source.tolist() == [0.0, 0.0, 0.0]


def test_what_is_torch_nn_really_refactored_with_module_optim_and_dataloader():
    """The tutorial's later steps, with ``tr`` for ``torch``: nn.Module with nn.Parameter, the parameter
    loop, nn.Linear, optim.SGD, TensorDataset and DataLoader, and the fit/loss_batch/validation pattern."""
    import math

    from tinygrad_rnn import nn, optim
    from tinygrad_rnn.nn import functional as F
    from tinygrad_rnn.utils.data import DataLoader, TensorDataset

    rng = np.random.default_rng(0)
    x_train = tr.tensor(((rng.random((256, 784)) < 0.2) * rng.random((256, 784))).astype(np.float32))
    y_train = tr.tensor(rng.integers(0, 10, 256))
    x_valid, y_valid = x_train[:64], y_train[:64]
    bs, lr = 64, 0.5
    loss_func = F.cross_entropy

    class Mnist_Logistic(nn.Module):
        def __init__(self):
            super().__init__()
            self.weights = nn.Parameter(tr.randn(784, 10) / math.sqrt(784))
            self.bias = nn.Parameter(tr.zeros(10))

        def forward(self, xb):
            return xb @ self.weights + self.bias

    model = Mnist_Logistic()
    start = loss_func(model(x_train), y_train).item()
    for i in range((256 - 1) // bs + 1):
        xb, yb = x_train[i * bs: i * bs + bs], y_train[i * bs: i * bs + bs]
        loss = loss_func(model(xb), yb)
        loss.backward()
        with tr.no_grad():
            for p in model.parameters():
                p -= p.grad * lr
            model.zero_grad()
    assert loss_func(model(x_train), y_train).item() < start

    class Mnist_Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(784, 10)

        def forward(self, xb):
            return self.lin(xb)

    def get_model():
        model = Mnist_Linear()
        return model, optim.SGD(model.parameters(), lr=lr)

    def loss_batch(model, loss_func, xb, yb, opt=None):
        loss = loss_func(model(xb), yb)
        if opt is not None:
            loss.backward()
            opt.step()
            opt.zero_grad()
        return loss.item(), len(xb)

    def fit(epochs, model, loss_func, opt, train_dl, valid_dl):
        history = []
        for epoch in range(epochs):
            model.train()
            for xb, yb in train_dl:
                loss_batch(model, loss_func, xb, yb, opt)
            model.eval()
            with tr.no_grad():
                losses, nums = zip(*[loss_batch(model, loss_func, xb, yb) for xb, yb in valid_dl])
            history.append(np.sum(np.multiply(losses, nums)) / np.sum(nums))
        return history

    train_dl = DataLoader(TensorDataset(x_train, y_train), batch_size=bs, shuffle=True)
    valid_dl = DataLoader(TensorDataset(x_valid, y_valid), batch_size=bs * 2)
    model, opt = get_model()
    history = fit(3, model, loss_func, opt, train_dl, valid_dl)
    assert history[-1] < history[0]


def test_max_and_min_of_two_tensors_are_elementwise_as_in_pytorch():
    a, b = tr.tensor([1.0, 5.0, -2.0], requires_grad=True), tr.tensor([3.0, 2.0, -1.0], requires_grad=True)
    assert a.max(b).tolist() == [3.0, 5.0, -1.0] and tr.min(a, b).tolist() == [1.0, 2.0, -2.0]
    a.max(b).sum().backward()
    assert a.grad.tolist() == [0.0, 1.0, 0.0] and b.grad.tolist() == [1.0, 0.0, 1.0]


def test_integer_division_and_means_take_the_default_dtype():
    tr.set_default_dtype(tr.float64)
    try:
        assert (tr.tensor([1, 2]) / 2).dtype == tr.float64 and tr.tensor([1, 2]).mean().dtype == tr.float64
    finally:
        tr.set_default_dtype(tr.float32)
    assert (tr.tensor([1, 2]) / 2).dtype == tr.float32


def test_the_idioms_of_pytorch_course_code():
    """Lines copied from PyTorch courses, with ``tr`` for ``torch``."""
    device = tr.device("cuda" if tr.cuda.is_available() else "cpu")
    assert device in ("cpu", "cuda") and tr.cuda.device_count() >= 0
    tokens = tr.tensor([[1, 2, 3]], dtype=tr.long).to(device)
    assert tokens.dtype == np.int64 and tr.zeros(2, dtype=tr.float).dtype == np.float32
    assert (tr.double, tr.half, tr.int, tr.bool) == (np.float64, np.float16, np.int32, np.bool_)
    out = tr.randn(4, 3, 5, requires_grad=True)
    flat = out.transpose(0, 1).contiguous().view(-1, 5)
    assert flat.shape == (12, 5) and flat.is_contiguous() and not out.transpose(0, 1).is_contiguous()
    flat.sum().backward()
    assert out.grad.shape == (4, 3, 5)
    mask = tr.tensor([1.0, 0.0, 1.0])
    assert (mask == 0).int().tolist() == [0, 1, 0] and mask.bool().tolist() == [True, False, True]
    assert mask.half().dtype == np.float16
    with pytest.raises(ValueError, match=r"^unknown device 'tpu'"):
        tr.device("tpu")
