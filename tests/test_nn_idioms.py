"""The nn names courses use, as in ``torch.nn``: ModuleDict, ParameterList, GELU / SiLU / LeakyReLU,
TransformerEncoder (and TransformerEncoderLayer's post-LN default), BCELoss, KLDivLoss, HuberLoss,
SmoothL1Loss, and the Module methods apply, get_submodule, forward (pre-)hooks, buffers and deepcopy.

Names and state dicts are compared with PyTorch's both ways, values and
gradients against PyTorch (skipped without it), gradients against finite
differences on every backend.
"""
import copy

import numpy as np
import pytest
from conftest import to_device

import tinygrad_rnn as tr
import tinygrad_rnn.nn as nn
import tinygrad_rnn.nn.functional as F
from tinygrad_rnn import optim

rng = np.random.default_rng(5)


def randn(*shape):
    return rng.standard_normal(shape)


def load_both_ways(ours, theirs):
    """Copy PyTorch's weights into ours and check the keys match; then copy ours back into a fresh PyTorch."""
    import torch

    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    back = {k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(back)
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), ours.state_dict()[key].numpy(), err_msg=key)


# ----------------------------------------------------------------------- ModuleDict
def test_module_dict_registers_its_modules_with_torch_names():
    torch = pytest.importorskip("torch")
    ours = nn.ModuleDict({"encoder": nn.Linear(3, 4), "head": nn.Sequential(nn.ReLU(), nn.Linear(4, 2))})
    theirs = torch.nn.ModuleDict(
        {"encoder": torch.nn.Linear(3, 4), "head": torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(4, 2))}
    )
    load_both_ways(ours, theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    x = randn(5, 3).astype(np.float32)
    out = ours["head"](ours["encoder"](tr.Tensor(x)))
    expected = theirs["head"](theirs["encoder"](torch.tensor(x)))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-6, atol=1e-6)


def test_module_dict_behaves_like_a_dict():
    blocks = nn.ModuleDict([("a", nn.Linear(2, 2)), ("b", nn.ReLU())])
    assert list(blocks) == ["a", "b"] and list(blocks.keys()) == ["a", "b"] and len(blocks) == 2
    assert "a" in blocks and "z" not in blocks
    assert [type(m).__name__ for m in blocks.values()] == ["Linear", "ReLU"]
    blocks["c"] = nn.Tanh()
    blocks.update({"a": nn.Linear(2, 3)})
    assert blocks["a"].out_features == 3 and list(blocks) == ["a", "b", "c"]
    assert isinstance(blocks.pop("b"), nn.ReLU) and list(blocks) == ["a", "c"] and not hasattr(blocks, "b")
    del blocks["c"]
    assert [n for n, _ in blocks.named_modules()] == ["", "a"]
    assert len(list(blocks.parameters())) == 2
    blocks.clear()
    assert len(blocks) == 0 and list(blocks.parameters()) == []


@pytest.mark.parametrize("call,error,pattern", [
    (lambda: nn.ModuleDict({"x": 3}), TypeError, r"add_module: 'x' must be a Module or None, got int"),
    (lambda: nn.ModuleDict({"a.b": nn.ReLU()}), KeyError, r"add_module: the module name cannot contain '.'"),
    (lambda: nn.ModuleDict({"": nn.ReLU()}), KeyError, r"add_module: the module name cannot be the empty string"),
    (lambda: nn.ModuleDict({"keys": nn.ReLU()}), KeyError,
     r"add_module: attribute 'keys' already exists on ModuleDict"),
    (lambda: nn.ModuleDict([("a", nn.ReLU(), 1)]), ValueError, r"ModuleDict.update: element #0 has length 3"),
    (lambda: nn.ModuleDict(5), TypeError, r"ModuleDict.update: expected a mapping or an iterable"),
    (lambda: nn.ModuleDict({"a": nn.ReLU()})["b"], KeyError, r"ModuleDict: no module named 'b' \(keys: \['a'\]\)"),
])
def test_module_dict_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


# -------------------------------------------------------------------- ParameterList
class WithParams(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(tr.ones(3, dtype="float64"))
        self.params = nn.ParameterList([nn.Parameter(tr.Tensor(randn(2, 3))) for _ in range(3)])


def module_tensor(module, array):
    if module is nn:
        return tr.Tensor(array)
    import torch

    return torch.tensor(array)


def test_parameter_list_names_and_state_dict_match_torch():
    torch = pytest.importorskip("torch")

    class TorchWithParams(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
            self.params = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(2, 3, dtype=torch.float64))
                                                  for _ in range(3)])

    ours, theirs = WithParams(), TorchWithParams()
    assert [n for n, _ in ours.named_parameters()] == ["scale", "params.0", "params.1", "params.2"]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    load_both_ways(ours, theirs)


def test_parameter_list_is_a_list_the_optimizer_sees():
    params = nn.ParameterList([tr.ones(2), nn.Parameter(tr.zeros(3))])
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in params)
    params.append(tr.ones(4))
    params += [tr.ones(1)]
    assert [p.shape for p in params] == [(2,), (3,), (4,), (1,)] and len(params) == 4
    assert params[-1].shape == (1,) and [p.shape for p in params[1:3]] == [(3,), (4,)]
    params[0] = nn.Parameter(tr.full((2,), 5.0))
    assert params[0].tolist() == [5.0, 5.0]
    assert [n for n, _ in params.named_parameters()] == ["0", "1", "2", "3"]
    model = nn.Module()
    model.weights = params
    loss = sum((p * p).sum() for p in model.weights)
    opt = optim.SGD(model.parameters(), lr=0.5)
    loss.backward()
    opt.step()
    assert params[0].tolist() == [0.0, 0.0]
    assert "(0): Parameter containing: [float32 of size 2]" in repr(params)


@pytest.mark.parametrize("call,error,pattern", [
    (lambda: nn.ParameterList([1.0]), TypeError,
     r"ParameterList: element 0 must be a Parameter or a Tensor, got float"),
    (lambda: nn.ParameterList([tr.ones(1)])[1], IndexError, r"ParameterList: index 1 is out of range for a list of 1"),
    (lambda: nn.ParameterList([tr.ones(1)])["0"], TypeError, r"ParameterList: indices must be integers or slices"),
    (lambda: nn.ParameterList(tr.ones(2)), TypeError, r"ParameterList.extend: expected an iterable of parameters"),
    (lambda: nn.ParameterList([tr.ones(1)])(), RuntimeError, r"ParameterList should not be called"),
])
def test_parameter_list_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


# ---------------------------------------------------------------------- activations
ACTIVATIONS = [
    ("GELU()", lambda m: m.GELU(), "GELU(approximate='none')"),
    ("GELU(tanh)", lambda m: m.GELU(approximate="tanh"), "GELU(approximate='tanh')"),
    ("SiLU()", lambda m: m.SiLU(), "SiLU()"),
    ("LeakyReLU()", lambda m: m.LeakyReLU(), "LeakyReLU(negative_slope=0.01)"),
    ("LeakyReLU(0.2, inplace)", lambda m: m.LeakyReLU(0.2, inplace=True),
     "LeakyReLU(negative_slope=0.2, inplace=True)"),
]


@pytest.mark.parametrize("name,make,text", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_modules_match_torch(name, make, text):
    torch = pytest.importorskip("torch")
    x = randn(4, 6) * 3
    ours, theirs = tr.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = make(nn)(ours * 1.0), make(torch.nn)(theirs * 1.0)  # * 1.0: inplace needs a non-leaf
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-14)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-14)
    assert repr(make(nn)) == text == repr(make(torch.nn))


def test_activation_module_errors():
    with pytest.raises(ValueError, match=r"^GELU: approximate must be 'none' or 'tanh', got 'erf'"):
        nn.GELU("erf")
    with pytest.raises(TypeError, match=r"^LeakyReLU: negative_slope must be a real number, got True"):
        nn.LeakyReLU(True)


# --------------------------------------------------------------------------- losses
LOSSES = [
    ("BCELoss", lambda m: m.BCELoss(), "probabilities"),
    ("BCELoss sum weight", lambda m: m.BCELoss(weight=_weight(m), reduction="sum"), "probabilities"),
    ("KLDivLoss batchmean", lambda m: m.KLDivLoss(reduction="batchmean"), "distributions"),
    ("KLDivLoss none log_target", lambda m: m.KLDivLoss(reduction="none", log_target=True), "log-distributions"),
    ("HuberLoss", lambda m: m.HuberLoss(), "values"),
    ("HuberLoss delta=0.5 sum", lambda m: m.HuberLoss(reduction="sum", delta=0.5), "values"),
    ("SmoothL1Loss", lambda m: m.SmoothL1Loss(), "values"),
    ("SmoothL1Loss beta=2 none", lambda m: m.SmoothL1Loss(reduction="none", beta=2.0), "values"),
    ("CrossEntropyLoss probabilities", lambda m: m.CrossEntropyLoss(label_smoothing=0.1), "distributions"),
]


def _weight(module):
    return module_tensor(module, np.linspace(0.5, 2.0, 5))


@pytest.mark.parametrize("name,make,kind", LOSSES, ids=[row[0] for row in LOSSES])
def test_loss_modules_match_torch(name, make, kind):
    torch = pytest.importorskip("torch")
    if kind == "probabilities":
        x, t = rng.uniform(0.05, 0.95, (4, 5)), rng.uniform(0, 1, (4, 5))
    elif kind == "values":
        x = randn(4, 5) * 2
        t = x + randn(4, 5)
    else:
        t = rng.dirichlet(np.ones(5), 4)
        x = np.log(rng.dirichlet(np.ones(5), 4))
        t = np.log(t) if kind == "log-distributions" else t
    ours_in, theirs_in = tr.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out = make(nn)(ours_in, tr.Tensor(t))
    expected = make(torch.nn)(theirs_in, torch.tensor(t))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-14)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(ours_in.grad.numpy(), theirs_in.grad.numpy(), rtol=1e-12, atol=1e-14)
    assert list(make(nn).state_dict()) == list(make(torch.nn).state_dict())


def test_loss_module_reprs_and_errors():
    assert repr(nn.KLDivLoss(reduction="batchmean")) == "KLDivLoss(reduction='batchmean', log_target=False)"
    assert repr(nn.HuberLoss(delta=2.0)) == "HuberLoss(reduction='mean', delta=2.0)"
    assert repr(nn.SmoothL1Loss(beta=0.5)) == "SmoothL1Loss(reduction='mean', beta=0.5)"
    with pytest.raises(ValueError, match=r"^KLDivLoss: reduction must be one of .*got 'avg'"):
        nn.KLDivLoss(reduction="avg")
    with pytest.raises(ValueError, match=r"^BCELoss: reduction must be one of"):
        nn.BCELoss(reduction="batchmean")
    with pytest.raises(ValueError, match=r"^huber_loss: delta must be positive, got -1.0"):
        nn.HuberLoss(delta=-1.0)(tr.zeros(2), tr.zeros(2))


# --------------------------------------------------------------- TransformerEncoder
def test_transformer_encoder_layer_default_is_post_norm_as_in_torch():
    torch = pytest.importorskip("torch")
    assert nn.TransformerEncoderLayer(4, 2).norm_first is False
    assert torch.nn.TransformerEncoderLayer(4, 2).norm_first is False


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("with_norm", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_encoder_matches_torch(norm_first, with_norm, activation):
    torch = pytest.importorskip("torch")
    config = dict(d_model=6, nhead=2, dim_feedforward=10, dropout=0.1, norm_first=norm_first, activation=activation)
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(**config), 2, nn.LayerNorm(6) if with_norm else None)
    theirs = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(**config), 2, torch.nn.LayerNorm(6) if with_norm else None,
        enable_nested_tensor=False,
    )
    ours.double().eval()
    theirs.double().eval()
    expected_names = [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_parameters()] == expected_names
    assert expected_names[0] == "layers.0.self_attn.in_proj_weight"
    load_both_ways(ours, theirs)
    x = randn(5, 3, 6)
    causal = np.triu(np.ones((5, 5), dtype=bool), 1)
    padding = np.zeros((3, 5), dtype=bool)
    padding[1, 3:] = True
    with torch.no_grad():
        expected = theirs(torch.tensor(x), mask=torch.tensor(causal), src_key_padding_mask=torch.tensor(padding))
    out = ours(tr.Tensor(x), mask=tr.Tensor(causal), src_key_padding_mask=tr.Tensor(padding))
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-10)


def test_transformer_encoder_copies_are_independent_and_start_equal():
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=8)
    encoder = nn.TransformerEncoder(layer, num_layers=3)
    first, second = encoder.layers[0], encoder.layers[1]
    assert first is not layer and first.linear1.weight is not second.linear1.weight
    np.testing.assert_array_equal(first.linear1.weight.numpy(), layer.linear1.weight.numpy())
    first.linear1.weight.array[...] = 0
    assert second.linear1.weight.numpy().any() and layer.linear1.weight.numpy().any()
    assert first.linear1.weight.backend is layer.linear1.weight.backend
    assert len(encoder.layers) == 3 and encoder.num_layers == 3 and encoder.norm is None


def test_transformer_encoder_gradcheck(device):
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0, batch_first=True, activation="gelu")
    encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(4)).double().to(device)
    x = to_device(randn(2, 3, 4), device, requires_grad=True)
    params = [encoder.layers[1].linear1.weight, encoder.norm.weight, encoder.layers[0].self_attn.in_proj_weight]
    assert tr.gradcheck(lambda inp, *ps: encoder(inp, is_causal=True), [x, *params])


def test_transformer_encoder_errors():
    with pytest.raises(TypeError, match=r"^TransformerEncoder: encoder_layer must be a Module .*got str"):
        nn.TransformerEncoder("layer", 2)
    with pytest.raises(ValueError, match=r"^TransformerEncoder: num_layers must be a non-negative integer, got -1"):
        nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2), -1)
    with pytest.raises(TypeError, match=r"^TransformerEncoder: norm must be a Module or None, got int"):
        nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2), 1, norm=3)


# ------------------------------------------------------------ Module: apply, lookup
def _tree(module):
    return module.Sequential(module.Linear(2, 3), module.Sequential(module.ReLU(), module.Linear(3, 1)))


def test_apply_visits_children_first_then_self_as_torch():
    torch = pytest.importorskip("torch")
    visited = {"ours": [], "theirs": []}
    ours, theirs = _tree(nn), _tree(torch.nn)
    assert ours.apply(lambda m: visited["ours"].append(type(m).__name__)) is ours
    theirs.apply(lambda m: visited["theirs"].append(type(m).__name__))
    assert visited["ours"] == visited["theirs"] == ["Linear", "ReLU", "Linear", "Sequential", "Sequential"]

    def init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.weight)

    ours.apply(init_weights)
    assert not any(p.numpy().any() for n, p in ours.named_parameters() if n.endswith("weight"))


def test_get_submodule():
    model = _tree(nn)
    assert model.get_submodule("") is model and model.get_submodule("1.1") is model[1][1]
    with pytest.raises(AttributeError, match=r"^get_submodule\('1.5'\): Sequential \(at '1'\) has no attribute '5'"):
        model.get_submodule("1.5")
    with pytest.raises(AttributeError, match=r"^get_submodule\('0.weight'\): '0.weight' is a Parameter, not a Module"):
        model.get_submodule("0.weight")
    with pytest.raises(TypeError, match=r"^get_submodule: target must be a dotted string"):
        model.get_submodule(0)


# -------------------------------------------------------------------------- hooks
def test_forward_pre_hook_can_replace_the_input(device):
    layer = nn.Linear(3, 2).double().to(device)
    x = to_device(randn(4, 3), device)
    seen = []
    handle = layer.register_forward_pre_hook(lambda m, args: seen.append((m, args)) or (args[0] * 2,))
    np.testing.assert_allclose(layer(x).numpy(), F.linear(x * 2, layer.weight, layer.bias).numpy())
    assert seen[0][0] is layer and seen[0][1][0] is x
    handle.remove()
    single = layer.register_forward_pre_hook(lambda m, args: args[0] * 0)  # a single value, not a tuple
    np.testing.assert_allclose(layer(x).numpy(), F.linear(x * 0, layer.weight, layer.bias).numpy())
    single.remove()
    np.testing.assert_allclose(layer(x).numpy(), F.linear(x, layer.weight, layer.bias).numpy())


def test_forward_hook_sees_the_input_and_can_replace_the_output(device):
    layer = nn.Linear(3, 2).double().to(device)
    x = to_device(randn(4, 3), device, requires_grad=True)
    features = {}
    keep = layer.register_forward_hook(lambda m, args, out: features.update(out=out, args=args))
    double = layer.register_forward_hook(lambda m, args, out: out * 2)
    out = layer(x)
    assert features["args"][0] is x and features["out"].shape == (4, 2)
    np.testing.assert_allclose(out.numpy(), 2 * features["out"].numpy())
    out.sum().backward()  # the replacement stays in the graph
    np.testing.assert_allclose(x.grad.numpy(), 2 * layer.weight.sum(0, keepdim=True).expand(4, 3).numpy())
    keep.remove()
    double.remove()
    assert not layer._forward_hooks and not layer._forward_pre_hooks


def test_hook_order_prepend_kwargs_always_call_and_context_manager():
    torch = pytest.importorskip("torch")
    for module in (nn, torch.nn):
        class PassThrough(module.Module):
            def forward(self, x, **kwargs):
                return x

        calls = []
        layer = PassThrough()
        layer.register_forward_hook(lambda m, a, o: calls.append("second"))
        layer.register_forward_hook(lambda m, a, o: calls.append("first"), prepend=True)
        layer.register_forward_pre_hook(lambda m, a, kw: calls.append(("pre", len(a), dict(kw))) or (a, kw),
                                        with_kwargs=True)
        layer.register_forward_hook(lambda m, a, kw, o: calls.append(("kw", dict(kw))), with_kwargs=True)
        layer(module_tensor(module, np.ones(1)), extra=1)
        assert calls == [("pre", 1, {"extra": 1}), "first", "second", ("kw", {"extra": 1})], module

    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    called = []
    boom = Boom()
    boom.register_forward_hook(lambda m, a, o: called.append(o), always_call=True)
    boom.register_forward_hook(lambda m, a, o: called.append("never"))
    with pytest.raises(ValueError, match="boom"):
        boom(tr.ones(1))
    assert called == [None]
    identity = nn.Identity()
    with identity.register_forward_hook(lambda m, a, o: o + 1):
        assert identity(tr.zeros(1)).item() == 1
    assert identity(tr.zeros(1)).item() == 0
    with pytest.raises(TypeError, match=r"^register_forward_hook: hook must be callable, got int"):
        identity.register_forward_hook(3)


# ------------------------------------------------------------------------- buffers
class WithBuffers(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)
        self.register_buffer("running", tr.zeros(2))
        self.register_buffer("cache", tr.ones(3), persistent=False)
        self.register_buffer("absent", None)


def test_buffers_persistent_and_not_as_torch(device):
    torch = pytest.importorskip("torch")

    class TorchWithBuffers(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 2)
            self.register_buffer("running", torch.zeros(2))
            self.register_buffer("cache", torch.ones(3), persistent=False)
            self.register_buffer("absent", None)

    ours, theirs = WithBuffers(), TorchWithBuffers()
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()] == ["running", "cache"]
    assert len(list(ours.buffers())) == 2 and list(ours.buffers(recurse=False))[1] is ours.cache
    assert [n for n, _ in ours.named_buffers(prefix="model")] == ["model.running", "model.cache"]
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["running", "linear.weight", "linear.bias"]
    ours.to(device)
    assert ours.cache.device == device and ours.running.device == device
    ours.running = tr.full((2,), 3.0, device=device)  # assigning a tensor keeps it a buffer, as in PyTorch
    assert [n for n, _ in ours.named_buffers()] == ["running", "cache"] and ours.running.tolist() == [3.0, 3.0]
    assert ours.state_dict()["running"].tolist() == [3.0, 3.0]


def test_buffer_and_parameter_assignment_rules():
    module = WithBuffers()
    with pytest.raises(TypeError, match=r"cannot assign a int to buffer 'running' \(a Tensor or None expected\)"):
        module.running = 3
    with pytest.raises(TypeError, match=r"cannot assign a Tensor as parameter 'weight' \(a Parameter or None expected"):
        module.linear.weight = tr.zeros(2, 2)
    module.linear.bias = None  # still registered, as an absent parameter
    assert "bias" in module.linear._parameters and [n for n, _ in module.linear.named_parameters()] == ["weight"]
    module.linear = None
    assert list(module.named_children()) == [("linear", None)] and list(module.parameters()) == []
    with pytest.raises(TypeError, match=r"^register_buffer: 'b' must be a Tensor or None, got list"):
        module.register_buffer("b", [1.0])
    with pytest.raises(KeyError, match=r"register_buffer: attribute 'training' already exists"):
        module.register_buffer("training", tr.zeros(1))
    with pytest.raises(KeyError, match=r"register_buffer: the buffer name cannot contain '.'"):
        module.register_buffer("a.b", tr.zeros(1))
    with pytest.raises(KeyError, match=r"register_parameter: attribute 'cache' already exists"):
        module.register_parameter("cache", nn.Parameter(tr.zeros(1)))
    module.register_buffer("cache", tr.zeros(1))  # re-registering makes it persistent again
    assert "cache" in module.state_dict()
    del module.cache
    assert "cache" not in dict(module.named_buffers()) and not hasattr(module, "cache")


def test_requires_grad_and_deepcopy():
    model = _tree(nn)
    assert model.requires_grad_(False) is model and not any(p.requires_grad for p in model.parameters())
    model.requires_grad_()
    assert all(p.requires_grad for p in model.parameters())
    tied = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    tied[1].weight = tied[0].weight
    twin = copy.deepcopy(tied)
    assert twin[1].weight is twin[0].weight and twin[0].weight is not tied[0].weight
    assert twin[0].weight.backend is tied[0].weight.backend
    np.testing.assert_array_equal(twin[0].weight.numpy(), tied[0].weight.numpy())
    twin[0].weight.array[...] = 0
    assert tied[0].weight.numpy().any()
    hooked = nn.Identity()
    hooked.register_forward_hook(lambda m, a, o: o * 3)
    assert copy.deepcopy(hooked)(tr.ones(1)).item() == 3
