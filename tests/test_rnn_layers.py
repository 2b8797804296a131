"""nn.RNN / nn.LSTM / nn.GRU: the three implementations agree, gradients check, options, errors, scopes."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import nn
from tinygrad_rnn.ops.rnn import GRUSequenceFn, LSTMCellFn, LSTMSequenceFn, RNNSequenceFn

LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
IMPLS = ("fused", "fused_step", "composed")


def make(kind, input_size=3, hidden_size=4, **options):
    """A float64 layer of ``kind`` ("rnn", "rnn_relu", "lstm", "lstm_peephole", "lstm_coupled", ...)."""
    base, _, variant = kind.partition("_")
    if variant == "relu":
        options["nonlinearity"] = "relu"
    if "peephole" in variant:
        options["peephole"] = True
    if "coupled" in variant:
        options["coupled"] = True
    return LAYERS[base](input_size, hidden_size, **options).double()


def state_shapes(module, batch, unbatched=False):
    depth = module.num_layers * module.num_directions
    shape = (depth, module.hidden_size) if unbatched else (depth, batch, module.hidden_size)
    return [shape] * len(module.state_names)


def run(module, x_np, states_np=None, device="cpu", seed=1):
    """Forward + backward of a random weighted sum of every output; returns every value and gradient."""
    x = tr.Tensor(x_np, device=device, requires_grad=True)
    states = [tr.Tensor(s, device=device, requires_grad=True) for s in (states_np or [])]
    hx = None if not states else (states[0] if len(states) == 1 else tuple(states))
    module.zero_grad()
    output, final = module(x, hx)
    finals = final if isinstance(final, tuple) else (final,)
    rng = np.random.default_rng(seed)
    loss = 0
    for t in (output,) + finals:
        loss = loss + (t * tr.Tensor(rng.standard_normal(t.shape), device=device)).sum()
    loss.backward()
    result = {"output": output.numpy(), "x.grad": x.grad.numpy()}
    for i, t in enumerate(finals):
        result[f"final{i}"] = t.numpy()
    for i, s in enumerate(states):
        result[f"state{i}.grad"] = s.grad.numpy()
    for name, p in module.named_parameters():
        result[name + ".grad"] = p.grad.numpy()
    return result


def assert_same(a, b, atol=1e-10):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].shape == b[key].shape, key
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=atol, err_msg=key)


# (options, T, B, unbatched, with initial states)
CASES = [
    (dict(), 4, 2, False, False),
    (dict(), 4, 2, False, True),
    (dict(num_layers=2), 3, 2, False, True),
    (dict(bidirectional=True), 3, 2, False, True),
    (dict(num_layers=2, bidirectional=True), 3, 2, False, False),
    (dict(batch_first=True, num_layers=2, bidirectional=True), 3, 2, False, True),
    (dict(num_layers=3, dropout=0.5), 3, 2, False, False),  # run in eval: dropout off
    (dict(bias=False, bidirectional=True), 3, 2, False, True),
    (dict(), 1, 1, False, True),
    (dict(bidirectional=True), 1, 2, False, False),
    (dict(num_layers=2, bidirectional=True), 4, 1, False, True),
    (dict(num_layers=2, bidirectional=True), 3, None, True, True),
    (dict(batch_first=True), 3, None, True, False),
]
KINDS = ["rnn", "rnn_relu", "lstm", "lstm_peephole", "lstm_coupled", "lstm_peephole_coupled", "gru"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_fused_cell_and_composed_agree(kind, case):
    options, T, B, unbatched, with_states = CASES[case]
    module = make(kind, **options).eval()
    rng = np.random.default_rng(case)
    shape = (T, 3) if unbatched else ((B, T, 3) if options.get("batch_first") else (T, B, 3))
    x = rng.standard_normal(shape)
    states = [rng.standard_normal(s) for s in state_shapes(module, B, unbatched)] if with_states else None
    results = {}
    for impl in IMPLS:
        module.impl = impl
        results[impl] = run(module, x, states)
    assert_same(results["fused"], results["composed"])
    assert_same(results["fused_step"], results["composed"])
    out = results["fused"]["output"]
    D, H = module.num_directions, module.hidden_size
    assert out.shape == ((T, D * H) if unbatched else shape[:2] + (D * H,))
    depth = module.num_layers * D
    assert out.shape[-1] == D * H and results["fused"]["final0"].shape == ((depth, H) if unbatched else (depth, B, H))


def test_output_is_last_layer_states_and_h_n_matches_output():
    """output[t] of the forward direction at t = T-1 is h_n; the reverse direction's h_n is output[0]."""
    module = make("lstm", num_layers=2, bidirectional=True)
    x = tr.Tensor(np.random.default_rng(0).standard_normal((5, 2, 3)))
    out, (h_n, c_n) = module(x)
    H = module.hidden_size
    np.testing.assert_allclose(out.numpy()[-1, :, :H], h_n.numpy()[2])
    np.testing.assert_allclose(out.numpy()[0, :, H:], h_n.numpy()[3])


GRADCHECK_CASES = [
    ("rnn", dict(num_layers=2, bidirectional=True), (3, 2), True),
    ("rnn_relu", dict(), (3, 2), True),
    ("lstm", dict(num_layers=2, bidirectional=True), (3, 2), True),
    ("lstm", dict(batch_first=True), (2, 3), False),
    ("lstm_peephole", dict(bidirectional=True), (3, 2), True),
    ("lstm_coupled", dict(bias=False), (3, 1), True),
    ("lstm_peephole_coupled", dict(), (2, 2), True),
    ("gru", dict(num_layers=2, bidirectional=True), (3, 2), True),
    ("gru", dict(bias=False, batch_first=True), (1, 3), False),
]


@pytest.mark.parametrize("kind, options, tb, with_states", GRADCHECK_CASES)
def test_gradcheck_fused_layers(kind, options, tb, with_states):
    module = make(kind, hidden_size=2, **options)
    rng = np.random.default_rng(0)
    x = tr.Tensor(rng.standard_normal(tb + (3,)), requires_grad=True)
    B = tb[0] if options.get("batch_first") else tb[1]
    shapes = state_shapes(module, B) if with_states else []
    states = [tr.Tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]

    def fn(x, *states_and_params):
        states = states_and_params[: len(states_and_params) - n_params]
        hx = None if not states else (states[0] if len(states) == 1 else tuple(states))
        out, final = module(x, hx)
        return (out,) + (final if isinstance(final, tuple) else (final,))

    params = list(module.parameters())
    n_params = len(params)
    assert tr.gradcheck(fn, [x, *states, *params])


@pytest.mark.parametrize("impl", ["fused_step", "composed"])
@pytest.mark.parametrize("kind", ["rnn", "lstm_peephole", "gru"])
def test_gradcheck_loop_impls(kind, impl):
    module = make(kind, hidden_size=2, bidirectional=True, impl=impl)
    rng = np.random.default_rng(0)
    x = tr.Tensor(rng.standard_normal((3, 3)), requires_grad=True)  # unbatched
    states = [tr.Tensor(rng.standard_normal(s), requires_grad=True) for s in state_shapes(module, None, True)]

    def fn(x, *states):
        out, final = module(x, states[0] if len(states) == 1 else tuple(states))
        return (out,) + (final if isinstance(final, tuple) else (final,))

    assert tr.gradcheck(fn, [x, *states])


def test_parameter_names_and_shapes_follow_pytorch():
    module = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    names = [n for n, _ in module.named_parameters()]
    expected = []
    for k in range(2):
        for sfx in ("", "_reverse"):
            expected += [f"weight_ih_l{k}{sfx}", f"weight_hh_l{k}{sfx}", f"bias_ih_l{k}{sfx}", f"bias_hh_l{k}{sfx}"]
    assert names == expected
    assert module.weight_ih_l0.shape == (16, 3) and module.weight_ih_l1.shape == (16, 8)
    assert module.weight_hh_l1_reverse.shape == (16, 4) and module.bias_hh_l0.shape == (16,)
    assert [n for n, _ in nn.GRU(3, 4, bias=False).named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    assert nn.GRU(3, 4).weight_ih_l0.shape == (12, 3) and nn.RNN(3, 4).weight_hh_l0.shape == (4, 4)
    peephole = [n for n, _ in nn.LSTM(3, 4, peephole=True).named_parameters()]
    assert peephole[-1] == "weight_ch_l0" and nn.LSTM(3, 4, peephole=True).weight_ch_l0.shape == (12,)
    assert len(module.all_weights) == 4 and module.all_weights[1][0] is module.weight_ih_l0_reverse


def test_init_is_uniform_within_one_over_sqrt_h_and_float32():
    module = nn.GRU(5, 16, num_layers=2)
    for name, p in module.named_parameters():
        assert p.dtype == tr.float32 and p.requires_grad, name
        assert np.abs(p.numpy()).max() <= 0.25
    values = np.concatenate([p.numpy().ravel() for p in module.parameters()])
    assert values.min() < -0.2 and values.max() > 0.2 and abs(values.mean()) < 0.02


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_dropout_only_in_training(kind):
    module = make(kind, num_layers=2, dropout=0.5, bidirectional=True)
    plain = make(kind, num_layers=2, bidirectional=True)
    plain.load_state_dict(module.state_dict())
    x = tr.Tensor(np.random.default_rng(0).standard_normal((4, 3, 3)))
    train_out = module(x)[0].numpy()
    module.eval()
    eval_out = module(x)[0].numpy()
    np.testing.assert_allclose(eval_out, plain(x)[0].numpy(), atol=1e-12)
    assert np.abs(train_out - eval_out).max() > 1e-3
    # a new mask on every call
    module.train()
    assert np.abs(module(x)[0].numpy() - train_out).max() > 1e-6


def test_dropout_mask_scales_kept_values():
    module = make("rnn", num_layers=2, dropout=0.25)
    x = tr.Tensor(np.ones((200, 8, 4)))
    dropped = nn.functional.dropout(x, module.dropout).numpy()  # what the layer applies between layers
    kept = dropped != 0
    np.testing.assert_allclose(dropped[kept], 1 / 0.75)
    assert 0.7 < kept.mean() < 0.8
    with pytest.warns(UserWarning, match="no effect"):
        nn.LSTM(3, 4, dropout=0.3)


def test_dropout_training_gradcheck_with_fixed_seed():
    module = make("gru", hidden_size=2, num_layers=2, dropout=0.4)
    x = tr.Tensor(np.random.default_rng(0).standard_normal((3, 2, 3)), requires_grad=True)

    def fn(x):
        tr.manual_seed(5)  # the same mask on every call
        return module(x)[0]

    assert tr.gradcheck(fn, [x])


def test_input_shape_errors_name_the_layer_and_shapes():
    module = nn.LSTM(5, 3, batch_first=True)
    with pytest.raises(ValueError) as info:
        module(tr.zeros(4, 2, 6))
    expected = "LSTM: expected input of shape (T, B, 5) or (B, T, 5) with batch_first=True, got (4, 2, 6)"
    assert str(info.value) == expected
    with pytest.raises(ValueError, match=r"GRU: expected unbatched input of shape \(T, 5\), got \(4, 6\)"):
        nn.GRU(5, 3)(tr.zeros(4, 6))
    with pytest.raises(ValueError, match=r"RNN: expected input of shape .* got \(4,\)"):
        nn.RNN(5, 3)(tr.zeros(4))
    with pytest.raises(ValueError, match="at least one time step"):
        nn.RNN(5, 3)(tr.zeros(0, 2, 5))
    with pytest.raises(TypeError, match="RNN: input has dtype float64 but the parameters are float32"):
        nn.RNN(5, 3)(tr.zeros(4, 2, 5, dtype="float64"))
    with pytest.raises(TypeError, match="expected input to be a Tensor"):
        nn.RNN(5, 3)(np.zeros((4, 2, 5)))


def test_state_shape_errors():
    module = nn.LSTM(5, 3, num_layers=2)
    x = tr.zeros(4, 2, 5)
    with pytest.raises(ValueError, match=r"LSTM: expected c_0 of shape \(2, 2, 3\), got \(1, 2, 3\)"):
        module(x, (tr.zeros(2, 2, 3), tr.zeros(1, 2, 3)))
    with pytest.raises(TypeError, match=r"LSTM: expected hx to be a tuple \(h_0, c_0\)"):
        module(x, tr.zeros(2, 2, 3))
    with pytest.raises(ValueError, match=r"GRU: expected h_0 of shape \(2, 3\), got \(2, 1, 3\)"):
        nn.GRU(5, 3, bidirectional=True)(tr.zeros(4, 5), tr.zeros(2, 1, 3))
    with pytest.raises(ValueError, match="num_layers must be a positive integer"):
        nn.GRU(5, 3, num_layers=0)
    with pytest.raises(ValueError, match="impl must be one of"):
        nn.GRU(5, 3, impl="fast")
    with pytest.raises(ValueError, match="nonlinearity must be"):
        nn.RNN(5, 3, nonlinearity="sigmoid")


def test_warns_when_initial_state_carries_a_used_graph(monkeypatch):
    monkeypatch.setattr(tr.autograd.carried, "_warned_released", [False])
    module = nn.GRU(3, 4).double()
    x = tr.Tensor(np.random.default_rng(0).standard_normal((3, 2, 3)))
    out, h = module(x)
    (out.sum() + h.sum()).backward()
    with pytest.warns(RuntimeWarning, match="GRU: the initial state carries the graph"):
        module(x, h)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module(x, h.detach())


def test_global_impl_switch_and_context_manager():
    module = nn.LSTM(3, 4).double()
    x = tr.Tensor(np.random.default_rng(0).standard_normal((3, 2, 3)))
    assert nn.get_rnn_impl() == "fused"
    assert isinstance(module(x)[0].grad_fn, LSTMSequenceFn)
    with nn.rnn_impl("composed"):
        assert nn.get_rnn_impl() == "composed"
        assert type(module(x)[0].grad_fn).__name__ == "Stack"
        module.impl = "fused"  # an explicit impl wins over the global setting
        assert isinstance(module(x)[0].grad_fn, LSTMSequenceFn)
    assert nn.get_rnn_impl() == "fused"
    nn.set_rnn_impl("fused_step")
    try:
        module.impl = None
        out = module(x)[0]
        assert type(out.grad_fn).__name__ == "Stack" and isinstance(out.grad_fn.next[0][0], LSTMCellFn)
    finally:
        nn.set_rnn_impl("fused")
    with pytest.raises(ValueError, match="set_rnn_impl: impl must be one of"):
        nn.set_rnn_impl("cuda")


def test_fused_op_attributes_for_the_renderer():
    module = nn.GRU(3, 4, num_layers=2, bidirectional=True).double()
    x = tr.Tensor(np.random.default_rng(0).standard_normal((5, 2, 3)), requires_grad=True)
    out, h_n = module(x)
    ops = {}
    stack = [h_n.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in ops:
            continue
        ops[id(fn)] = fn
        stack.extend(link[0] for link in fn.next if type(link) is tuple)
    sequence_ops = [f for f in ops.values() if isinstance(f, GRUSequenceFn)]
    sequence_ops.sort(key=lambda f: (f.layer, f.direction))
    assert [(f.layer, f.direction) for f in sequence_ops] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for f in sequence_ops:
        assert f.draw_as == "sequence" and f.cell == "gru" and f.steps == 5 and f.hidden_size == 4
        assert f.output_names == ("output", "h_n")
        assert f.trace.scope.get("layer") == f.layer and f.trace.scope.get("direction") == f.direction
    assert RNNSequenceFn.draw_as == "sequence" and LSTMSequenceFn.output_names == ("output", "h_n", "c_n")
    relu = nn.RNN(3, 4, nonlinearity="relu")(x.float())[0].grad_fn
    assert relu.cell == "rnn_relu"


def test_loop_impls_run_each_step_in_a_scope():
    module = nn.LSTM(3, 2, bidirectional=True, impl="composed").double()
    x = tr.Tensor(np.random.default_rng(0).standard_normal((3, 1, 3)), requires_grad=True)
    out, _ = module(x)
    tags = set()
    stack, seen = [out.grad_fn], set()
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        scope = fn.trace.scope
        if scope is not None and scope.get("step") is not None:
            tags.add((scope.get("layer"), scope.get("direction"), scope.get("step")))
            assert scope.chain()[0].module is module
        stack.extend(link[0] for link in fn.next if type(link) is tuple)
    assert tags == {(0, d, t) for d in (0, 1) for t in range(3)}


def test_step_grad_norms_are_the_total_gradient_into_each_h_t():
    module = nn.LSTM(3, 4).double()
    x = tr.Tensor(np.random.default_rng(0).standard_normal((5, 2, 3)), requires_grad=True)
    w = tr.Tensor(np.random.default_rng(1).standard_normal((5, 2, 4)))
    with tr.retain_grads():
        out, (h_n, _) = module(x)
        ((out * w).sum() + (h_n * h_n).sum()).backward()
    fused = out.grad_fn.trace.step_grad_norms
    assert len(fused) == 5 and all(isinstance(v, float) for v in fused)
    # the same norms from the per-step ops of the cell loop (their kept output gradients)
    module.impl = "fused_step"
    with tr.retain_grads():
        out, (h_n, _) = module(x)
        ((out * w).sum() + (h_n * h_n).sum()).backward()
    cells = {}
    stack = [out.grad_fn]
    while stack:
        fn = stack.pop()
        if isinstance(fn, LSTMCellFn):
            cells[fn.trace.scope.get("step")] = float(np.linalg.norm(fn.trace.out_grads[0]))
        stack.extend(link[0] for link in fn.next if type(link) is tuple)
    np.testing.assert_allclose(fused, [cells[t] for t in range(5)], rtol=1e-12)
    assert not hasattr(module.__class__, "step_grad_norms")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", ["rnn", "lstm_peephole_coupled", "gru"])
def test_runs_on_every_device(device, kind, impl):
    """On the hostless backend any host array inside an op raises; results equal the CPU's."""
    module = make(kind, num_layers=2, bidirectional=True, impl=impl).eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 3))
    states = [rng.standard_normal(s) for s in state_shapes(module, 2)]
    expected = run(module, x, states)
    module.to(device)
    assert_same(run(module, x, states, device=device), expected, atol=1e-9)


def test_dropout_runs_on_every_device(device):
    module = make("lstm", num_layers=2, dropout=0.5).to(device)
    out, _ = module(tr.Tensor(np.ones((3, 2, 3)), device=device))
    assert out.device == tr.Tensor(np.zeros(1), device=device).device and out.shape == (3, 2, 4)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "lstm_peephole", "gru"])
def test_fused_path_keeps_float32(kind):
    module = make(kind, num_layers=2, bidirectional=True).float()
    x = tr.Tensor(np.random.default_rng(0).standard_normal((3, 2, 3)).astype(np.float32), requires_grad=True)
    out, final = module(x)
    finals = final if isinstance(final, tuple) else (final,)
    assert out.dtype == tr.float32 and all(f.dtype == tr.float32 for f in finals)
    (out.sum() + sum(f.sum() for f in finals)).backward()
    assert x.grad.dtype == tr.float32 and all(p.grad.dtype == tr.float32 for p in module.parameters())


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_long_sequence_fused_backward_without_recursion(kind):
    module = make(kind, hidden_size=8)
    x = tr.Tensor(np.random.default_rng(0).standard_normal((2000, 2, 3)), requires_grad=True)
    out, _ = module(x)
    (out[-1].sum() + out.mean()).backward()
    assert np.isfinite(x.grad.numpy()).all() and np.abs(x.grad.numpy()[0]).sum() > 0
    assert all(np.isfinite(p.grad.numpy()).all() for p in module.parameters())


def test_repr_lists_non_default_options():
    assert repr(nn.LSTM(3, 4, num_layers=2, batch_first=True)) == "LSTM(3, 4, num_layers=2, batch_first=True)"
    assert repr(nn.RNN(3, 4, nonlinearity="relu", impl="fused_step")) == "RNN(3, 4, impl='fused_step', nonlinearity='relu')"


def test_the_old_impl_name_cell_still_works_and_warns():
    """``impl="cell"`` was renamed ``"fused_step"`` (all three implementations are cells)."""
    with pytest.warns(FutureWarning, match=r'impl="cell" is now called "fused_step"'):
        module = nn.GRU(3, 4, impl="cell")
    assert module.impl == "fused_step"
    with pytest.warns(FutureWarning, match="set_rnn_impl"):
        nn.set_rnn_impl("cell")
    try:
        assert nn.get_rnn_impl() == "fused_step"
    finally:
        nn.set_rnn_impl("fused")
    with pytest.warns(FutureWarning):
        assert make("gru", impl="cell").impl == "fused_step"
