"""A learner's first hour of mistakes, table-driven: every public call, given bad input, answers clearly.

Each row is (name, call, exception type, pattern). ``call(d, o)`` makes the
mistake on device ``d`` (``o`` is another device, for mixing devices). The
pattern must match the message and names the call (the message starts with
it), the offending argument, what was expected and what was given. No error
may come straight out of NumPy (the innermost frame of the traceback must be
tinygrad_rnn's or this file's, never NumPy's).

The CLI rows at the end run ``python -m tinygrad_rnn.cli`` in a subprocess:
a bad command line, an unknown example or a bad data file ends with one line
on stderr, exit code 2 and no traceback.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import autograd, nn, optim
from tinygrad_rnn.data import CharVocab
from tinygrad_rnn.nn import functional as F
from tinygrad_rnn.nn import utils as U

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = r"\([\d, ]*\)"


def R(d, *shape, **kw):
    """A float32 standard normal tensor on ``d``."""
    return tr.randn(*shape, device=d, **kw)


def L(d, values, dtype=None):
    """A tensor of ``values`` on ``d`` (ints become int64, floats float32)."""
    return tr.tensor(values, device=d, dtype=dtype)


def on(d, module):
    return module.to(d)


def _module_without_super_init():
    class Forgetful(nn.Module):
        def __init__(self):
            self.linear = nn.Linear(2, 2)

    return Forgetful()


def _optimizer_state_mismatch(d):
    model = on(d, nn.Linear(3, 2))
    opt = optim.Adam(model.parameters())
    model(R(d, 4, 3)).sum().backward()
    opt.step()
    other = optim.Adam(on(d, nn.Linear(3, 5)).parameters())
    other.load_state_dict(opt.state_dict())


def _step_with_grad_on_other_device(d, o):
    p = nn.Parameter(R(d, 3))
    opt = optim.SGD([p], lr=0.1)
    p.grad = R(o, 3)
    opt.step()


def _clip_mixed_devices(d, o):
    a, b = nn.Parameter(R(d, 2)), nn.Parameter(R(o, 2))
    a.grad, b.grad = R(d, 2), R(o, 2)
    U.clip_grad_norm_([a, b], 1.0)


# (name, call(d, o), exception, pattern)
def _custom_function_with_a_wrong_gradient_shape(d):
    class Twice(autograd.Function):
        def forward(self, x):
            return x * 2

        def backward(self, g):
            return g.reshape(-1)[:5]

    Twice.apply(R(d, 4, 3, requires_grad=True)).sum().backward()


def _sgd_state_into_adam(d):
    params = [nn.Parameter(R(d, 2))]
    optim.Adam(params).load_state_dict(optim.SGD(params, lr=0.1).state_dict())


def _save_over_a_read_only_file(d):
    path = os.path.join(tempfile.mkdtemp(), "model.npz")
    tr.save({"w": np.zeros(2)}, path)
    os.chmod(path, 0o444)
    tr.save({"w": np.ones(2)}, path)


CASES = [
    # ------------------------------------------------------------------ Tensor ops
    ("matmul inner sizes", lambda d, o: R(d, 2, 3) @ R(d, 4, 5), ValueError,
     r"^matmul: cannot multiply \(2, 3\) by \(4, 5\): expected the second-to-last dimension of the second operand "
     r"to equal the last dimension of the first \(3\), got 4"),
    ("matmul vector size", lambda d, o: R(d, 2, 3) @ R(d, 4), ValueError,
     r"^matmul: cannot multiply \(2, 3\) by \(4,\): expected the size .* \(3\), got 4"),
    ("matmul batch dims", lambda d, o: R(d, 2, 2, 3) @ R(d, 3, 3, 4), ValueError,
     r"^matmul: cannot multiply \(2, 2, 3\) by \(3, 3, 4\): batch dimensions do not broadcast"),
    ("matmul 0-d", lambda d, o: L(d, 1.0) @ R(d, 2), ValueError,
     r"^matmul: both arguments need at least 1 dimension, got \(\) and \(2,\)"),
    ("matmul integers", lambda d, o: L(d, [1, 2]) @ L(d, [1, 2]), TypeError,
     r"^matmul: expected floating point tensors, got int64 and int64"),
    ("add broadcasting", lambda d, o: R(d, 2, 3) + R(d, 4, 5), ValueError,
     r"^add: cannot broadcast shapes \(2, 3\) and \(4, 5\): aligned from the right, each pair of dimensions must "
     r"be equal or contain a 1"),
    ("mul broadcasting", lambda d, o: R(d, 2, 3) * R(d, 3, 2), ValueError,
     r"^mul: cannot broadcast shapes \(2, 3\) and \(3, 2\)"),
    ("maximum broadcasting", lambda d, o: tr.maximum(R(d, 2, 3), R(d, 4)), ValueError,
     r"^maximum: cannot broadcast shapes \(2, 3\) and \(4,\)"),
    ("comparison broadcasting", lambda d, o: R(d, 2, 3) < R(d, 4), ValueError,
     r"^lt: cannot broadcast shapes \(2, 3\) and \(4,\)"),
    ("operand of a wrong type", lambda d, o: R(d, 2) + "1", TypeError,
     r"^add: unsupported operand of type str \(expected a Tensor or a number\)"),
    ("reshape element count", lambda d, o: R(d, 2, 3).reshape(4, 2), ValueError,
     r"^reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4, 2\)"),
    ("reshape float size", lambda d, o: R(d, 2, 3).reshape(2.0, 3), TypeError,
     r"^reshape: expected integer sizes, got \(2\.0, 3\)"),
    ("expand", lambda d, o: R(d, 2, 3).expand(4, 3), ValueError,
     r"^expand: cannot expand shape \(2, 3\) to \(4, 3\)"),
    ("permute", lambda d, o: R(d, 2, 3).permute(0, 0), ValueError,
     r"^permute: dims \(0, 0\) are not a permutation of the 2 dimensions of \(2, 3\)"),
    ("index out of range", lambda d, o: R(d, 2, 3)[5], IndexError,
     r"^__getitem__: index 5 is out of bounds for axis 0 with size 2 \(tensor of shape \(2, 3\)\)"),
    ("negative index out of range", lambda d, o: R(d, 2, 3)[:, -4], IndexError,
     r"^__getitem__: index -4 is out of bounds for axis 1 with size 3 \(tensor of shape \(2, 3\)\)"),
    ("index list out of range", lambda d, o: R(d, 2, 3)[[0, 7]], IndexError,
     r"^__getitem__: index 7 is out of bounds for axis 0 with size 2"),
    ("too many indices", lambda d, o: R(d, 2, 3)[0, 0, 0], IndexError,
     r"^__getitem__: too many indices .* \(tensor of shape \(2, 3\)\)"),
    ("float index tensor", lambda d, o: R(d, 2, 3)[L(d, [0.0, 1.0])], IndexError,
     r"^__getitem__: index tensors must be integer or bool, got float32"),
    ("float index", lambda d, o: R(d, 2, 3)[1.0], IndexError,
     r"^__getitem__: unsupported index 1\.0 of type float"),
    ("bool mask of a wrong length", lambda d, o: R(d, 2, 3)[L(d, [True, False, True])], IndexError,
     r"^__getitem__: boolean index did not match .* size of axis is 2 but size of corresponding boolean axis is 3"),
    ("custom Function whose backward returns a wrong shape", lambda d, o: _custom_function_with_a_wrong_gradient_shape(d),
     RuntimeError, r"^Twice\.backward: gradient of shape \(5,\) for an input of shape \(4, 3\)"),
    ("SGD state dict into Adam", lambda d, o: _sgd_state_into_adam(d), ValueError,
     r"^Adam\.load_state_dict: the state dict comes from SGD, not Adam"),
    ("randn of an integer dtype", lambda d, o: tr.randn(2, dtype=tr.int64, device=d), TypeError,
     r"^randn: cannot draw samples of dtype int64; expected float16, float32 or float64"),
    ("save over a read-only file", lambda d, o: _save_over_a_read_only_file(d), PermissionError,
     r"^save: cannot write .*model\.npz: the file is read-only \(mode 0444\)"),
    ("item assignment to a leaf that requires grad", lambda d, o: R(d, 2, requires_grad=True).__setitem__(0, 1.0),
     RuntimeError, r"^__setitem__: a leaf tensor that requires grad .* cannot be changed in place while gradients "),
    ("in-place add that would broadcast the tensor", lambda d, o: R(d, 2).add_(R(d, 3, 2)), RuntimeError,
     r"^add_: the result has shape \(3, 2\), which does not fit in place into the tensor's shape \(2,\)"),
    ("in-place float into an int tensor", lambda d, o: tr.arange(3, device=d).mul_(0.5), TypeError,
     r"^mul_: the result has dtype float32, which cannot be cast to the tensor's dtype int64"),
    ("item assignment at a bad index", lambda d, o: R(d, 2).__setitem__(5, 1.0), IndexError,
     r"^__setitem__: cannot assign a value of shape \(\) at 5 of a tensor of shape \(2,\)"),
    ("sum dim out of range", lambda d, o: R(d, 2, 3).sum(dim=2), IndexError,
     r"^sum: dim 2 is out of range for a tensor with 2 dimension\(s\)"),
    ("softmax dim out of range", lambda d, o: R(d, 2, 3).softmax(-3), IndexError,
     r"^softmax: dim -3 is out of range for a tensor with 2 dimension\(s\)"),
    ("softmax without dim", lambda d, o: R(d, 2, 3).softmax(None), TypeError,
     r"^softmax: dim must be an int, got None"),
    ("mean float dim", lambda d, o: R(d, 2, 3).mean(dim=1.0), TypeError,
     r"^mean: dim must be an int, a tuple of ints or None, got 1\.0"),
    ("transpose dim", lambda d, o: R(d, 2, 3).transpose(0, 2), IndexError,
     r"^transpose: dim 2 is out of range for a tensor with 2 dimension\(s\)"),
    ("unsqueeze dim", lambda d, o: R(d, 2, 3).unsqueeze(4), IndexError,
     r"^unsqueeze: dim 4 is out of range for a tensor with 2 dimension\(s\) \(expected -3 <= dim <= 2\)"),
    ("size dim", lambda d, o: R(d, 2, 3).size(2), IndexError,
     r"^size: dim 2 is out of range for a tensor with 2 dimension\(s\)"),
    ("flatten dims reversed", lambda d, o: R(d, 2, 3).flatten(1, 0), ValueError,
     r"^flatten: start_dim 1 comes after end_dim 0"),
    ("cat shapes", lambda d, o: tr.cat([R(d, 2, 3), R(d, 2, 4)]), ValueError,
     r"^cat: tensor 1 has shape \(2, 4\), expected \(2, 3\) except in dim 0"),
    ("cat ranks", lambda d, o: tr.cat([R(d, 2, 3), R(d, 3)]), ValueError,
     r"^cat: tensor 1 has shape \(3,\), expected \(2, 3\) except in dim 0"),
    ("cat of no tensors", lambda d, o: tr.cat([]), ValueError,
     r"^cat: expected a non-empty sequence of tensors"),
    ("cat of arrays", lambda d, o: tr.cat([R(d, 2), np.ones(2)]), TypeError,
     r"^cat: element 1 is a ndarray, expected a Tensor"),
    ("stack shapes", lambda d, o: tr.stack([R(d, 2, 3), R(d, 3, 2)]), ValueError,
     r"^stack: tensor 1 has shape \(3, 2\), expected \(2, 3\) like tensor 0"),
    ("split sections", lambda d, o: R(d, 2, 3).split([1, 1], dim=1), ValueError,
     r"^split: sections \[1, 1\] add up to 2, but dim 1 has length 3"),
    ("chunk count", lambda d, o: R(d, 4).chunk(0), ValueError, r"^chunk: chunks must be a positive integer, got 0"),
    ("where float condition", lambda d, o: tr.where(R(d, 2, 3), R(d, 2, 3), R(d, 2, 3)), TypeError,
     r"^where: condition must be a bool tensor, got float32"),
    ("where shapes", lambda d, o: tr.where(R(d, 2, 3) > 0, R(d, 2, 3), R(d, 4, 3)), ValueError,
     r"^where: cannot broadcast condition \(2, 3\), input \(2, 3\) and other \(4, 3\)"),
    ("clamp without bounds", lambda d, o: R(d, 2).clamp(), ValueError,
     r"^clamp: at least one of min and max must be given"),
    ("max of two tensors with keepdim", lambda d, o: R(d, 2).max(R(d, 2), keepdim=True), TypeError,
     r"^max: keepdim has no meaning for the elementwise max of two tensors"),
    ("var of one element", lambda d, o: R(d, 1).var(), ValueError,
     r"^var: needs more than 1 element\(s\) along the reduced dims, got 1"),
    ("item of many elements", lambda d, o: R(d, 2).item(), ValueError,
     r"^item: only one-element tensors can be converted, got shape \(2,\)"),
    ("truth value of many elements", lambda d, o: bool(R(d, 2)), ValueError,
     r"^the truth value of a tensor of shape \(2,\) is ambiguous; use \.any\(\) or \.all\(\)"),
    ("backward of a non-scalar", lambda d, o: (R(d, 2, 3, requires_grad=True) * 2).backward(), RuntimeError,
     r"^backward: a scalar output or an explicit gradient is required, got an output of shape \(2, 3\)"),
    ("backward without grad", lambda d, o: R(d, 2).sum().backward(), RuntimeError,
     r"^backward: this tensor does not require grad"),
    ("backward gradient shape", lambda d, o: (R(d, 2, requires_grad=True) * 2).backward(R(d, 3)), ValueError,
     r"^backward: gradient of shape \(3,\) does not match the output's shape \(2,\)"),
    ("Tensor of ragged lists", lambda d, o: tr.Tensor([[1, 2], [3]], device=d), TypeError,
     r"^Tensor: cannot make a tensor from ragged or non-numeric data"),
    ("Tensor of a string", lambda d, o: tr.Tensor("abc", device=d), TypeError,
     r"^Tensor: cannot make a tensor from ragged or non-numeric data 'abc'"),
    ("integer tensor requiring grad", lambda d, o: tr.Tensor([1, 2], device=d, requires_grad=True), TypeError,
     r"^Tensor: only floating point tensors can require gradients, got dtype int64"),
    ("unknown dtype", lambda d, o: tr.zeros(2, dtype="floaty", device=d), TypeError,
     r"^unknown dtype 'floaty': expected e\.g\. tinygrad_rnn\.float32, 'float64' or 'int64'"),
    ("unknown device", lambda d, o: tr.zeros(2, device="tpu"), ValueError,
     r"^unknown device 'tpu': expected one of \[.*'cpu'.*\] \(optionally ':N'\)"),
    # -------------------------------------------------------------------- factories
    ("zeros negative size", lambda d, o: tr.zeros(-1, 2, device=d), ValueError,
     r"^zeros: sizes must be non-negative integers, got \(-1, 2\)"),
    ("ones float size", lambda d, o: tr.ones(2.5, device=d), ValueError,
     r"^ones: sizes must be non-negative integers, got \(2\.5,\)"),
    ("randn negative size", lambda d, o: tr.randn(2, -3, device=d), ValueError,
     r"^randn: sizes must be non-negative integers, got \(2, -3\)"),
    ("rand negative size", lambda d, o: tr.rand(-2, device=d), ValueError,
     r"^rand: sizes must be non-negative integers, got \(-2,\)"),
    ("full negative size", lambda d, o: tr.full((2, -1), 1.0, device=d), ValueError,
     r"^full: sizes must be non-negative integers, got \(2, -1\)"),
    ("eye negative size", lambda d, o: tr.eye(-2, device=d), ValueError,
     r"^eye: sizes must be non-negative integers, got \(-2, -2\)"),
    ("arange zero step", lambda d, o: tr.arange(0, 5, 0, device=d), ValueError, r"^arange: step must be non-zero"),
    ("arange step sign", lambda d, o: tr.arange(0, 10, -1, device=d), ValueError,
     r"^arange: start=0 and end=10 are inconsistent with the sign of step=-1"),
    ("manual_seed negative", lambda d, o: tr.manual_seed(-1), ValueError,
     r"^manual_seed: seed must be a non-negative integer, got -1"),
    # ----------------------------------------------------------------------- layers
    ("Linear in_features", lambda d, o: on(d, nn.Linear(5, 3))(R(d, 2, 6)), ValueError,
     r"^linear: expected input with last dimension 5 \(in_features\), got input of shape \(2, 6\)"),
    ("Linear 0-d input", lambda d, o: on(d, nn.Linear(5, 3))(L(d, 1.0)), ValueError,
     r"^linear: expected input with last dimension 5 \(in_features\), got input of shape \(\)"),
    ("Linear integer input", lambda d, o: on(d, nn.Linear(5, 3))(L(d, [[1, 2, 3, 4, 5]])), TypeError,
     r"^linear: input must be a floating point tensor, got dtype int64"),
    ("Linear float64 input", lambda d, o: on(d, nn.Linear(5, 3))(R(d, 2, 5, dtype="float64")), TypeError,
     r"^linear: input is float64 but weight is float32; cast one with \.to\(dtype\)"),
    ("Linear list input", lambda d, o: on(d, nn.Linear(5, 3))([[1.0] * 5]), TypeError,
     r"^linear: input must be a Tensor, got list"),
    ("Linear NumPy input", lambda d, o: on(d, nn.Linear(5, 3))(np.ones((2, 5), np.float32)), TypeError,
     r"^linear: input must be a Tensor, got ndarray"),
    ("Linear negative size", lambda d, o: nn.Linear(-1, 3), ValueError,
     r"^Linear: in_features must be a non-negative integer, got -1"),
    ("Linear float size", lambda d, o: nn.Linear(4, 2.5), ValueError,
     r"^Linear: out_features must be a non-negative integer, got 2\.5"),
    ("Embedding float indices", lambda d, o: on(d, nn.Embedding(10, 4))(L(d, [1.0, 2.0])), TypeError,
     r"^embedding: input must be an integer tensor of indices \(e\.g\. int64\), got dtype float32"),
    ("Embedding index too large", lambda d, o: on(d, nn.Embedding(10, 4))(L(d, [1, 10])), IndexError,
     r"^embedding: index 10 is out of range for num_embeddings=10 \(expected 0 <= index < 10\)"),
    ("Embedding negative index", lambda d, o: on(d, nn.Embedding(10, 4))(L(d, [[-1, 2]])), IndexError,
     r"^embedding: index -1 is out of range for num_embeddings=10 \(expected 0 <= index < 10\)"),
    ("Embedding padding_idx", lambda d, o: nn.Embedding(10, 4, padding_idx=10), ValueError,
     r"^Embedding: padding_idx 10 is out of range for num_embeddings=10"),
    ("LayerNorm trailing shape", lambda d, o: on(d, nn.LayerNorm(5))(R(d, 2, 4)), ValueError,
     r"^layer_norm: expected input whose trailing dimensions are normalized_shape=\(5,\), got input of shape \(2, 4\)"),
    ("LayerNorm integer input", lambda d, o: on(d, nn.LayerNorm(5))(L(d, [[1, 2, 3, 4, 5]])), TypeError,
     r"^layer_norm: input must be a floating point tensor, got dtype int64"),
    ("Dropout probability", lambda d, o: nn.Dropout(1.5), ValueError,
     r"^Dropout: p must be a probability in \[0, 1\], got 1\.5"),
    ("dropout probability", lambda d, o: F.dropout(R(d, 3), p=-0.1), ValueError,
     r"^dropout: p must be a probability in \[0, 1\], got -0\.1"),
    ("one_hot float classes", lambda d, o: F.one_hot(L(d, [1.0])), TypeError,
     r"^one_hot: tensor must be an integer tensor of class indices, got dtype float32"),
    ("one_hot class out of range", lambda d, o: F.one_hot(L(d, [1, 5]), 3), IndexError,
     r"^one_hot: class value 5 is out of range for num_classes=3"),
    ("Module without super().__init__()", lambda d, o: _module_without_super_init(), AttributeError,
     r"^Forgetful: call super\(\)\.__init__\(\) before assigning attributes"),
    # ------------------------------------------------------------- recurrent layers
    ("RNN feature size", lambda d, o: on(d, nn.RNN(5, 4))(R(d, 4, 2, 6)), ValueError,
     r"^RNN: expected input of shape \(T, B, 5\) or \(B, T, 5\) with batch_first=True, got \(4, 2, 6\)"),
    ("LSTM feature size", lambda d, o: on(d, nn.LSTM(5, 4))(R(d, 4, 2, 6)), ValueError,
     r"^LSTM: expected input of shape \(T, B, 5\) or \(B, T, 5\) with batch_first=True, got \(4, 2, 6\)"),
    ("GRU rank 4", lambda d, o: on(d, nn.GRU(5, 4))(R(d, 4, 2, 5, 1)), ValueError,
     r"^GRU: expected input of shape \(T, B, 5\) or \(B, T, 5\) with batch_first=True, or unbatched \(T, 5\), "
     r"got \(4, 2, 5, 1\)"),
    ("GRU rank 1", lambda d, o: on(d, nn.GRU(5, 4))(R(d, 5)), ValueError,
     r"^GRU: expected input of shape .* or unbatched \(T, 5\), got \(5,\)"),
    ("RNN unbatched feature size", lambda d, o: on(d, nn.RNN(5, 4))(R(d, 7, 3)), ValueError,
     r"^RNN: expected unbatched input of shape \(T, 5\), got \(7, 3\)"),
    ("LSTM batch_first mix-up (features last)", lambda d, o: on(d, nn.LSTM(5, 4, batch_first=True))(R(d, 2, 5, 4)),
     ValueError, r"^LSTM: expected input of shape \(T, B, 5\) or \(B, T, 5\) with batch_first=True, got \(2, 5, 4\)"),
    ("LSTM batch_first mix-up (seen in h_0)",
     lambda d, o: on(d, nn.LSTM(5, 4))(R(d, 8, 3, 5), (R(d, 1, 8, 4), R(d, 1, 8, 4))), ValueError,
     r"^LSTM: expected h_0 of shape \(1, 3, 4\), got \(1, 8, 4\); the input \(8, 3, 5\) is read as \(T, B, I\) "
     r"\(batch_first=False\), a batch of 3: if its batch is dimension 0, create the layer with batch_first=True"),
    ("GRU batch_first mix-up (seen in h_0)",
     lambda d, o: on(d, nn.GRU(5, 4, batch_first=True))(R(d, 8, 3, 5), R(d, 1, 3, 4)), ValueError,
     r"^GRU: expected h_0 of shape \(1, 8, 4\), got \(1, 3, 4\); .* create the layer with batch_first=False"),
    ("LSTM h_0 shape", lambda d, o: on(d, nn.LSTM(5, 4))(R(d, 4, 2, 5), (R(d, 1, 3, 4), R(d, 1, 2, 4))),
     ValueError, r"^LSTM: expected h_0 of shape \(1, 2, 4\), got \(1, 3, 4\)"),
    ("LSTM c_0 shape", lambda d, o: on(d, nn.LSTM(5, 4))(R(d, 4, 2, 5), (R(d, 1, 2, 4), R(d, 2, 2, 4))),
     ValueError, r"^LSTM: expected c_0 of shape \(1, 2, 4\), got \(2, 2, 4\)"),
    ("stacked bidirectional GRU h_0 shape", lambda d, o: on(d, nn.GRU(5, 4, 2, bidirectional=True))(
        R(d, 4, 2, 5), R(d, 2, 2, 4)), ValueError, r"^GRU: expected h_0 of shape \(4, 2, 4\), got \(2, 2, 4\)"),
    ("RNN h_0 without the layer axis", lambda d, o: on(d, nn.RNN(5, 4))(R(d, 4, 2, 5), R(d, 2, 4)), ValueError,
     r"^RNN: expected h_0 of shape \(1, 2, 4\), got \(2, 4\)"),
    ("LSTM state is one tensor", lambda d, o: on(d, nn.LSTM(5, 4))(R(d, 4, 2, 5), R(d, 1, 2, 4)), TypeError,
     r"^LSTM: expected hx to be a tuple \(h_0, c_0\), got Tensor"),
    ("LSTM state of three tensors", lambda d, o: on(d, nn.LSTM(5, 4))(R(d, 4, 2, 5), (R(d, 1, 2, 4),) * 3),
     TypeError, r"^LSTM: expected hx to be a tuple \(h_0, c_0\), got tuple"),
    ("RNN state is a tuple", lambda d, o: on(d, nn.RNN(5, 4))(R(d, 4, 2, 5), (R(d, 1, 2, 4), R(d, 1, 2, 4))),
     TypeError, r"^RNN: expected h_0 to be a Tensor, got tuple"),
    ("RNN integer input", lambda d, o: on(d, nn.RNN(5, 4))(L(d, np.ones((4, 2, 5), np.int64))), TypeError,
     r"^RNN: input has dtype int64 but the parameters are float32; convert one of them"),
    ("GRU float64 input", lambda d, o: on(d, nn.GRU(5, 4))(R(d, 4, 2, 5, dtype="float64")), TypeError,
     r"^GRU: input has dtype float64 but the parameters are float32"),
    ("LSTM float64 h_0", lambda d, o: on(d, nn.LSTM(5, 4))(
        R(d, 4, 2, 5), (R(d, 1, 2, 4, dtype="float64"), R(d, 1, 2, 4))), TypeError,
     r"^LSTM: h_0 has dtype float64 but the parameters are float32"),
    ("RNN NumPy input", lambda d, o: on(d, nn.RNN(5, 4))(np.ones((4, 2, 5), np.float32)), TypeError,
     r"^RNN: expected input to be a Tensor, got ndarray"),
    ("RNN zero sizes", lambda d, o: nn.LSTM(0, 4), ValueError, r"^LSTM: input_size must be a positive integer, got 0"),
    ("RNN num_layers", lambda d, o: nn.GRU(3, 4, num_layers=0), ValueError,
     r"^GRU: num_layers must be a positive integer, got 0"),
    ("RNN impl", lambda d, o: nn.LSTM(3, 4, impl="bogus"), ValueError,
     r"^LSTM: impl must be one of 'fused', 'fused_step', 'composed', got 'bogus'"),
    ("RNN nonlinearity", lambda d, o: nn.RNN(3, 4, nonlinearity="sigmoid"), ValueError,
     r"^RNN: nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"),
    ("RNNCell feature size", lambda d, o: on(d, nn.RNNCell(5, 4))(R(d, 2, 6)), ValueError,
     r"^RNNCell: expected input of shape \(B, 5\) or unbatched \(5,\), got \(2, 6\)"),
    ("GRUCell given a sequence", lambda d, o: on(d, nn.GRUCell(5, 4))(R(d, 3, 2, 5)), ValueError,
     r"^GRUCell: expected input of shape \(B, 5\) or unbatched \(5,\), got \(3, 2, 5\)"),
    ("RNNCell hx shape", lambda d, o: on(d, nn.RNNCell(5, 4))(R(d, 2, 5), R(d, 3, 4)), ValueError,
     r"^RNNCell: expected hx of shape \(2, 4\), got \(3, 4\)"),
    ("LSTMCell state is one tensor", lambda d, o: on(d, nn.LSTMCell(5, 4))(R(d, 2, 5), R(d, 2, 4)), TypeError,
     r"^LSTMCell: expected hx to be a tuple \(h, c\), got Tensor"),
    ("LSTMCell c shape", lambda d, o: on(d, nn.LSTMCell(5, 4))(R(d, 2, 5), (R(d, 2, 4), R(d, 2, 3))), ValueError,
     r"^LSTMCell: expected hx\[1\] \(c\) of shape \(2, 4\), got \(2, 3\)"),
    ("GRUCell state is a tuple", lambda d, o: on(d, nn.GRUCell(5, 4))(R(d, 2, 5), (R(d, 2, 4),)), TypeError,
     r"^GRUCell: expected hx to be a Tensor, got tuple"),
    ("LSTMCell integer input", lambda d, o: on(d, nn.LSTMCell(5, 4))(L(d, [[1, 2, 3, 4, 5]])), TypeError,
     r"^LSTMCell: input has dtype int64 but the parameters are float32"),
    # ------------------------------------------------------------------------ losses
    ("cross_entropy float targets", lambda d, o: F.cross_entropy(R(d, 3, 4), L(d, [0.0, 1.0, 2.0])), TypeError,
     r"^cross_entropy: target must be an integer tensor of class indices \(e\.g\. int64\), got dtype float32"),
    ("CrossEntropyLoss float targets", lambda d, o: nn.CrossEntropyLoss()(R(d, 3, 4), L(d, [0.0, 1.0, 2.0])),
     TypeError, r"^cross_entropy: target must be an integer tensor of class indices"),
    ("cross_entropy class out of range", lambda d, o: F.cross_entropy(R(d, 3, 4), L(d, [0, 1, 4])), IndexError,
     r"^cross_entropy: target value 4 is out of range for 4 classes \(expected 0 <= target < 4"),
    ("cross_entropy negative class", lambda d, o: F.cross_entropy(R(d, 3, 4), L(d, [0, -1, 2])), IndexError,
     r"^cross_entropy: target value -1 is out of range for 4 classes"),
    ("cross_entropy target length", lambda d, o: F.cross_entropy(R(d, 3, 4), L(d, [0, 1])), ValueError,
     r"^cross_entropy: expected target of shape \(3,\) for input of shape \(3, 4\) \(classes on dim 1\), got \(2,\)"),
    ("cross_entropy target rank", lambda d, o: F.cross_entropy(R(d, 3, 4), L(d, [[0, 1, 2]])), ValueError,
     r"^cross_entropy: expected target of shape \(3,\) for input of shape \(3, 4\) \(classes on dim 1\), got \(1, 3\)"),
    ("cross_entropy sequence logits not moved to dim 1", lambda d, o: F.cross_entropy(
        R(d, 2, 7, 4), L(d, np.zeros((2, 7), np.int64))), ValueError,
     r"^cross_entropy: expected target of shape \(2, 4\) for input of shape \(2, 7, 4\) \(classes on dim 1\), "
     r"got \(2, 7\)"),
    ("cross_entropy 0-d input", lambda d, o: F.cross_entropy(L(d, 1.0), L(d, 0)), ValueError,
     r"^cross_entropy: input must have a class dimension, got a 0-d tensor"),
    ("cross_entropy integer logits", lambda d, o: F.cross_entropy(L(d, [[1, 2]]), L(d, [0])), TypeError,
     r"^cross_entropy: input must be a floating point tensor, got dtype int64"),
    ("cross_entropy reduction", lambda d, o: F.cross_entropy(R(d, 3, 4), L(d, [0, 1, 2]), reduction="avg"),
     ValueError, r"^cross_entropy: reduction must be one of \('none', 'mean', 'sum'\), got 'avg'"),
    ("cross_entropy weight shape", lambda d, o: F.cross_entropy(R(d, 3, 4), L(d, [0, 1, 2]), R(d, 3)), ValueError,
     r"^cross_entropy: expected weight of shape \(4,\) \(one per class\), got \(3,\)"),
    ("cross_entropy label_smoothing", lambda d, o: F.cross_entropy(R(d, 3, 4), L(d, [0, 1, 2]), label_smoothing=2.0),
     ValueError, r"^cross_entropy: label_smoothing must be in \[0, 1\], got 2\.0"),
    ("nll_loss float targets", lambda d, o: F.nll_loss(R(d, 3, 4), L(d, [0.0, 1.0, 2.0])), TypeError,
     r"^nll_loss: target must be an integer tensor of class indices"),
    ("mse_loss shapes", lambda d, o: F.mse_loss(R(d, 3, 4), R(d, 4, 3)), ValueError,
     r"^mse_loss: input of shape \(3, 4\) and target of shape \(4, 3\) differ; reshape one of them explicitly "
     r"\(losses do not broadcast\)"),
    ("mse_loss silent broadcast trap", lambda d, o: nn.MSELoss()(R(d, 8, 1), R(d, 8)), ValueError,
     r"^mse_loss: input of shape \(8, 1\) and target of shape \(8,\) differ"),
    ("l1_loss shapes", lambda d, o: F.l1_loss(R(d, 3), R(d, 4)), ValueError,
     r"^l1_loss: input of shape \(3,\) and target of shape \(4,\) differ"),
    ("mse_loss list target", lambda d, o: F.mse_loss(R(d, 3), [1.0, 2.0, 3.0]), TypeError,
     r"^mse_loss: target must be a Tensor, got list"),
    ("mse_loss integer input", lambda d, o: F.mse_loss(L(d, [1, 2]), R(d, 2)), TypeError,
     r"^mse_loss: input must be a floating point tensor, got dtype int64"),
    ("bce shapes", lambda d, o: F.binary_cross_entropy_with_logits(R(d, 3), R(d, 4)), ValueError,
     r"^binary_cross_entropy_with_logits: input of shape \(3,\) and target of shape \(4,\) differ"),
    ("bce integer targets", lambda d, o: nn.BCEWithLogitsLoss()(R(d, 3), L(d, [0, 1, 1])), TypeError,
     r"^binary_cross_entropy_with_logits: target must be a floating point tensor of probabilities, got dtype int64"),
    ("bce pos_weight shape", lambda d, o: F.binary_cross_entropy_with_logits(R(d, 2, 3), R(d, 2, 3),
                                                                              pos_weight=R(d, 4)), ValueError,
     r"^binary_cross_entropy_with_logits: pos_weight of shape \(4,\) does not broadcast to the input's shape \(2, 3\)"),
    ("loss reduction in the module", lambda d, o: nn.MSELoss(reduction="average"), ValueError,
     r"^MSELoss: reduction must be one of \('none', 'mean', 'sum'\), got 'average'"),
    # -------------------------------------------------------------------- optimizers
    ("SGD negative lr", lambda d, o: optim.SGD(nn.Linear(2, 2).parameters(), lr=-1), ValueError,
     r"^SGD: invalid lr -1 \(expected a number >= 0\.0\)"),
    ("SGD Nesterov without momentum", lambda d, o: optim.SGD(nn.Linear(2, 2).parameters(), nesterov=True),
     ValueError, r"^SGD: Nesterov momentum requires a positive momentum and zero dampening"),
    ("Adam negative beta", lambda d, o: optim.Adam(nn.Linear(2, 2).parameters(), betas=(-0.1, 0.9)), ValueError,
     r"^Adam: invalid beta1 -0\.1 \(expected a number in \[0\.0, 1\.0\)\)"),
    ("Adam beta of one", lambda d, o: optim.Adam(nn.Linear(2, 2).parameters(), betas=(0.9, 1.0)), ValueError,
     r"^Adam: invalid beta2 1\.0 \(expected a number in \[0\.0, 1\.0\)\)"),
    ("Adam betas not a pair", lambda d, o: optim.Adam(nn.Linear(2, 2).parameters(), betas=0.9), ValueError,
     r"^Adam: betas must be a pair \(beta1, beta2\), got 0\.9"),
    ("AdamW lr as a string", lambda d, o: optim.AdamW(nn.Linear(2, 2).parameters(), lr="0.1"), ValueError,
     r"^AdamW: invalid lr '0\.1' \(expected a number >= 0\.0\)"),
    ("Adam negative eps", lambda d, o: optim.Adam(nn.Linear(2, 2).parameters(), eps=-1e-8), ValueError,
     r"^Adam: invalid eps -1e-08"),
    ("RMSprop negative alpha", lambda d, o: optim.RMSprop(nn.Linear(2, 2).parameters(), alpha=-1), ValueError,
     r"^RMSprop: invalid alpha -1"),
    ("Adagrad negative lr", lambda d, o: optim.Adagrad(nn.Linear(2, 2).parameters(), lr=-1), ValueError,
     r"^Adagrad: invalid lr -1"),
    ("optimizer of no parameters", lambda d, o: optim.Adam([]), ValueError, r"^Adam: got an empty parameter list"),
    ("optimizer of a model without parameters", lambda d, o: optim.SGD(nn.Tanh().parameters()), ValueError,
     r"^SGD: got an empty parameter list"),
    ("optimizer given the model", lambda d, o: optim.Adam(nn.Linear(2, 2)), TypeError,
     r"^Adam: params must be an iterable of Tensors, got a Linear; pass model\.parameters\(\)"),
    ("optimizer given one tensor", lambda d, o: optim.SGD(nn.Parameter(R(d, 2))), TypeError,
     r"^SGD: params must be an iterable of Tensors or of dicts, got a single Tensor; wrap it in a list"),
    ("optimizer of numbers", lambda d, o: optim.Adam([1.0, 2.0]), TypeError,
     r"^Adam: parameter 0 of a group is a float, expected a Tensor"),
    ("optimizer of a non-leaf", lambda d, o: optim.SGD([R(d, 2, requires_grad=True) * 2]), ValueError,
     r"^SGD: cannot optimize a non-leaf tensor \(parameter 0 of a group\)"),
    ("optimizer of an integer tensor", lambda d, o: optim.SGD([L(d, [1, 2])]), TypeError,
     r"^SGD: parameter 0 of a group has dtype int64; only floating point tensors can be optimized"),
    ("optimizer state of another model", lambda d, o: _optimizer_state_mismatch(d), ValueError,
     r"^Adam\.load_state_dict: state 'exp_avg' of parameter 0 has shape \(2, 3\), but the parameter has shape "
     r"\(5, 3\)"),
    ("optimizer step with a gradient elsewhere", _step_with_grad_on_other_device, RuntimeError,
     r"^SGD\.step: a gradient of shape \(3,\) on \w+ does not match its parameter of shape \(3,\) on \w+"),
    # --------------------------------------------------------------------- utilities
    ("clip_grad_norm_ negative max_norm", lambda d, o: U.clip_grad_norm_(nn.Linear(2, 2).parameters(), -1.0),
     ValueError, r"^clip_grad_norm_: max_norm must be non-negative, got -1\.0"),
    ("clip_grad_norm_ max_norm string", lambda d, o: U.clip_grad_norm_(nn.Linear(2, 2).parameters(), "one"),
     TypeError, r"^clip_grad_norm_: max_norm must be a number, got 'one'"),
    ("clip_grad_norm_ norm_type", lambda d, o: U.clip_grad_norm_(nn.Linear(2, 2).parameters(), 1.0, norm_type=0),
     ValueError, r"^clip_grad_norm_: norm_type must be positive, got 0\.0"),
    ("clip_grad_norm_ not parameters", lambda d, o: U.clip_grad_norm_(3, 1.0), TypeError,
     r"^clip_grad_norm_: parameters must be a Tensor or an iterable of Tensors, got int"),
    ("clip_grad_value_ negative", lambda d, o: U.clip_grad_value_(nn.Linear(2, 2).parameters(), -1), ValueError,
     r"^clip_grad_value_: clip_value must be non-negative, got -1\.0"),
    ("clip_grad_norm_ across devices", _clip_mixed_devices, RuntimeError,
     r"^clip_grad_norm_: gradients are on \w+ and \w+; clip each device separately"),
    ("detach_state of a number", lambda d, o: U.detach_state(3), TypeError,
     r"^detach_state: expected a Tensor, None, or a tuple/list of them, got int"),
    ("vector_to_parameters size", lambda d, o: U.vector_to_parameters(R(d, 5), [nn.Parameter(R(d, 2, 2))]),
     ValueError, r"^vector_to_parameters: vec has 5 elements, the parameters need 4"),
    # --------------------------------------------------------------------- attention
    ("attention feature sizes", lambda d, o: F.scaled_dot_product_attention(R(d, 2, 3, 4), R(d, 2, 5, 3),
                                                                            R(d, 2, 5, 4)), ValueError,
     r"^scaled_dot_product_attention: query and key must have the same last dimension E, got query \(2, 3, 4\) "
     r"and key \(2, 5, 3\)"),
    ("attention key/value lengths", lambda d, o: F.scaled_dot_product_attention(R(d, 3, 4), R(d, 5, 4),
                                                                                R(d, 6, 4)), ValueError,
     r"^scaled_dot_product_attention: key and value must have the same length S \(dim -2\), got key \(5, 4\) "
     r"and value \(6, 4\)"),
    ("attention mask shape", lambda d, o: F.scaled_dot_product_attention(
        R(d, 2, 3, 4), R(d, 2, 5, 4), R(d, 2, 5, 4), attn_mask=tr.ones(3, 4, dtype="bool", device=d)), ValueError,
     r"^scaled_dot_product_attention: expected attn_mask of a shape that broadcasts to \(2, 3, 5\), got \(3, 4\)"),
    ("attention integer mask", lambda d, o: F.scaled_dot_product_attention(
        R(d, 3, 4), R(d, 5, 4), R(d, 5, 4), attn_mask=tr.ones(3, 5, dtype="int64", device=d)), TypeError,
     r"^scaled_dot_product_attention: attn_mask must be a bool or floating point tensor, got int64"),
    ("AdditiveAttention mask shape", lambda d, o: on(d, nn.AdditiveAttention(4, 4, 4))(
        R(d, 2, 4), R(d, 2, 5, 4), mask=tr.ones(2, 4, dtype="bool", device=d)), ValueError,
     r"^AdditiveAttention: expected mask of shape \(2, 5\) \(batch, source length\), got \(2, 4\)"),
    ("DotProductAttention float mask", lambda d, o: on(d, nn.DotProductAttention())(
        R(d, 2, 4), R(d, 2, 5, 4), mask=R(d, 2, 5)), TypeError,
     r"^DotProductAttention: mask must be a bool tensor \(True = valid position\), got float32"),
    ("MultiheadAttention key_padding_mask", lambda d, o: on(d, nn.MultiheadAttention(4, 2))(
        R(d, 3, 2, 4), R(d, 3, 2, 4), R(d, 3, 2, 4), key_padding_mask=tr.ones(2, 4, dtype="bool", device=d)),
     ValueError, r"^MultiheadAttention: expected key_padding_mask of shape \(2, 3\), got \(2, 4\)"),
    ("MultiheadAttention features", lambda d, o: on(d, nn.MultiheadAttention(4, 2))(
        R(d, 3, 2, 5), R(d, 3, 2, 4), R(d, 3, 2, 4)), ValueError,
     r"^MultiheadAttention: expected query of shape \(L, N, 4\) .*got \(3, 2, 5\)"),
    ("MultiheadAttention heads", lambda d, o: nn.MultiheadAttention(6, 4), ValueError,
     r"^MultiheadAttention: embed_dim 6 is not divisible by num_heads 4"),
    ("MultiheadAttention attn_mask shape", lambda d, o: on(d, nn.MultiheadAttention(4, 2))(
        R(d, 3, 2, 4), R(d, 5, 2, 4), R(d, 5, 2, 4), attn_mask=tr.ones(3, 4, dtype="bool", device=d)), ValueError,
     r"^MultiheadAttention: expected attn_mask of shape \(L, S\) = \(3, 5\) or \(N\*num_heads, L, S\) = \(4, 3, 5\), "
     r"got \(3, 4\)"),
    ("PositionalEncoding features", lambda d, o: on(d, nn.PositionalEncoding(8))(R(d, 5, 2, 6)), ValueError,
     r"^PositionalEncoding: expected input of shape \(T, N, 8\) \(batch_first=False\), got \(5, 2, 6\)"),
    ("PositionalEncoding too long", lambda d, o: on(d, nn.PositionalEncoding(8, max_len=4))(R(d, 5, 2, 8)),
     ValueError, r"^PositionalEncoding: sequence length 5 exceeds max_len 4"),
    ("TransformerEncoderLayer features", lambda d, o: on(d, nn.TransformerEncoderLayer(8, 2, 16))(R(d, 5, 2, 6)),
     ValueError, r"^TransformerEncoderLayer: expected src of shape \(S, N, 8\) \(batch_first=False\) or unbatched "
     r"\(S, 8\), got \(5, 2, 6\)"),
    # ------------------------------------------------------------- other public calls
    ("embedding of a 1-D weight", lambda d, o: F.embedding(L(d, [0]), R(d, 5)), ValueError,
     r"^embedding: weight must be 2-D \(num_embeddings, embedding_dim\), got shape \(5,\)"),
    ("gradcheck in float32", lambda d, o: tr.gradcheck(lambda x: x * 2, [R(d, 3, requires_grad=True)]), TypeError,
     r"^gradcheck: input 0 is float32; finite differences need float64 inputs"),
    ("init of a NumPy array", lambda d, o: nn.init.uniform_(np.zeros(3)), TypeError,
     r"^uniform_: expected a Tensor or Parameter, got ndarray"),
    ("init fan of a vector", lambda d, o: nn.init.kaiming_uniform_(tr.zeros(3, device=d)), ValueError,
     r"^kaiming_uniform_: fan in and fan out need a tensor with at least 2 dimensions, got shape \(3,\)"),
    ("Sequential of a function", lambda d, o: nn.Sequential(nn.Tanh(), np.tanh), TypeError,
     r"^Sequential\.add_module: '1' must be a Module or None, got ufunc"),
    ("ModuleList of numbers", lambda d, o: nn.ModuleList([3]), TypeError,
     r"^ModuleList\.add_module: '0' must be a Module or None, got int"),
    ("register_parameter of a Tensor", lambda d, o: nn.Module().register_parameter("w", R(d, 2)), TypeError,
     r"^register_parameter: 'w' must be a Parameter or None, got Tensor"),
    ("load_state_dict of a list", lambda d, o: nn.Linear(2, 2).load_state_dict([1, 2]), TypeError,
     r"^load_state_dict for Linear: expected a dict of name -> tensor .*got list"),
    ("load_state_dict of strings", lambda d, o: nn.Linear(2, 2).load_state_dict({"weight": "w", "bias": np.zeros(2)}),
     TypeError, r"^load_state_dict: 'weight' is a str, not an array of numbers"),
    ("perplexity of a string", lambda d, o: F.perplexity("low"), TypeError,
     r"^perplexity: expected a loss tensor or a number, got 'low'"),
    ("stack dim of a wrong type", lambda d, o: tr.stack([R(d, 2)], dim="last"), TypeError,
     r"^stack: dim must be an int, got 'last'"),
    ("stack dim out of range", lambda d, o: tr.stack([R(d, 2)], dim=2), IndexError,
     r"^stack: dim 2 is out of range for 2 dimensions \(expected -2 <= dim < 2\)"),
    ("unsqueeze dim of a wrong type", lambda d, o: R(d, 2).unsqueeze(None), TypeError,
     r"^unsqueeze: dim must be an int, got None"),
    ("where of two numbers", lambda d, o: tr.where(True, 1.0, 2.0), TypeError,
     r"^where: at least one of input and other must be a Tensor"),
    ("CharVocab unknown character", lambda d, o: CharVocab("ab").encode("abc"), ValueError,
     r"^CharVocab\.encode: character 'c' is not in the vocabulary \(2 chars\)"),
    # ------------------------------------------------------------- checkpoints, state
    ("save of an object", lambda d, o: tr.save({"model": {"w": object()}}, os.devnull), TypeError,
     r"^save: obj\['model'\]\['w'\] is a object; checkpoints hold only Tensors, NumPy arrays, dicts, lists, tuples"),
    ("save of a module", lambda d, o: tr.save(nn.Linear(2, 2), os.devnull), TypeError,
     r"^save: obj is a Linear; checkpoints hold only"),
    ("save into a missing directory", lambda d, o: tr.save({"a": 1}, "/no/such/dir/model.npz"), FileNotFoundError,
     r"^save: cannot write /no/such/dir/model\.npz: the directory /no/such/dir does not exist"),
    ("save onto a directory", lambda d, o: tr.save({"a": 1}, os.path.dirname(os.path.abspath(__file__))),
     IsADirectoryError, r"^save: cannot write .*tests: it is a directory"),
    ("load of a missing file", lambda d, o: tr.load("/no/such/file.npz"), FileNotFoundError,
     r"^load: no checkpoint at /no/such/file\.npz"),
    ("load of a directory", lambda d, o: tr.load(os.path.dirname(os.path.abspath(__file__))), IsADirectoryError,
     r"^load: .*tests is a directory, not a checkpoint file"),
    ("load of a Python file", lambda d, o: tr.load(os.path.abspath(__file__)), tr.CheckpointError,
     r"^load: .*test_bad_input\.py is not a tinygrad_rnn checkpoint \(not an \.npz archive\)"),
    ("load_state_dict of another shape", lambda d, o: nn.LSTM(3, 8).load_state_dict(nn.LSTM(3, 4).state_dict()),
     ValueError, r"^load_state_dict for LSTM: size mismatch for weight_ih_l0: expected shape \(32, 3\), got \(16, 3\); "
     r"weight_hh_l0: expected shape \(32, 8\), got \(16, 4\)"),
    ("load_state_dict of other keys", lambda d, o: nn.GRU(3, 4, num_layers=2).load_state_dict(
        nn.GRU(3, 4).state_dict()), KeyError,
     r"^load_state_dict for GRU: missing keys \['weight_ih_l1', 'weight_hh_l1', 'bias_ih_l1', 'bias_hh_l1'\], "
     r"unexpected keys \[\]"),
    # ------------------------------------------------------------------ mixed devices
    ("add across devices", lambda d, o: R(d, 2, 3) + R(o, 2, 3), RuntimeError,
     r"^Add: expected all tensors on the same device, got \w+, \w+; move them explicitly with \.to\(device\)"),
    ("matmul across devices", lambda d, o: R(d, 2, 3) @ R(o, 3, 2), RuntimeError,
     r"^MatMul: expected all tensors on the same device, got \w+, \w+"),
    ("cat across devices", lambda d, o: tr.cat([R(d, 2), R(o, 2)]), RuntimeError,
     r"^Cat: expected all tensors on the same device"),
    ("where across devices", lambda d, o: tr.where(R(d, 2) > 0, R(d, 2), R(o, 2)), RuntimeError,
     r"^Where: expected all tensors on the same device"),
    ("index tensor on another device", lambda d, o: R(d, 3)[L(o, [0, 1])], RuntimeError,
     r"^__getitem__: index tensor is on \w+ but the tensor is on \w+"),
    ("Linear input on another device", lambda d, o: on(d, nn.Linear(5, 3))(R(o, 2, 5)), RuntimeError,
     r"^linear: weight is on \w+ but input is on \w+; move them with \.to\(device\)"),
    ("LayerNorm input on another device", lambda d, o: on(d, nn.LayerNorm(5))(R(o, 2, 5)), RuntimeError,
     r"^layer_norm: input is on \w+ but weight is on \w+"),
    ("Embedding indices on another device", lambda d, o: on(d, nn.Embedding(10, 4))(L(o, [1, 2])), RuntimeError,
     r"^embedding: weight is on \w+ but input is on \w+"),
    ("LSTM input on another device", lambda d, o: on(d, nn.LSTM(5, 4))(R(o, 4, 2, 5)), RuntimeError,
     r"^LSTM: input is on \w+ but the parameters are on \w+; move one of them with \.to\(device\)"),
    ("GRU h_0 on another device", lambda d, o: on(d, nn.GRU(5, 4))(R(d, 4, 2, 5), R(o, 1, 2, 4)), RuntimeError,
     r"^GRU: h_0 is on \w+ but the parameters are on \w+"),
    ("RNNCell input on another device", lambda d, o: on(d, nn.RNNCell(5, 4))(R(o, 2, 5)), RuntimeError,
     r"^RNNCell: input is on \w+ but the parameters are on \w+"),
    ("cross_entropy targets on another device", lambda d, o: F.cross_entropy(R(d, 3, 4), L(o, [0, 1, 2])),
     RuntimeError, r"^cross_entropy: input is on \w+ but target is on \w+; move them with \.to\(device\)"),
    ("mse_loss target on another device", lambda d, o: F.mse_loss(R(d, 3), R(o, 3)), RuntimeError,
     r"^mse_loss: input is on \w+ but target is on \w+"),
    # ------------------------------------------------------------------- empty tensors
    ("max of an empty tensor", lambda d, o: R(d, 0).max(), ValueError,
     r"^max: cannot reduce an empty tensor of shape \(0,\)"),
    ("min along an empty dim", lambda d, o: R(d, 3, 0).min(1), ValueError,
     r"^min: cannot reduce an empty tensor of shape \(3, 0\)"),
    ("argmax of an empty tensor", lambda d, o: R(d, 0, 2).argmax(), ValueError,
     r"^argmax: cannot reduce an empty tensor of shape \(0, 2\)"),
    ("var of an empty tensor", lambda d, o: R(d, 0).var(), ValueError,
     r"^var: needs more than 1 element\(s\) along the reduced dims, got 0"),
    ("one_hot of nothing", lambda d, o: F.one_hot(tr.zeros(0, dtype="int64", device=d)), ValueError,
     r"^one_hot: cannot infer num_classes from an empty tensor; pass num_classes"),
    ("cross_entropy of no classes", lambda d, o: F.cross_entropy(R(d, 2, 0), L(d, [0, 0])), ValueError,
     r"^cross_entropy: input has 0 classes \(shape \(2, 0\)\)"),
    ("RNN over zero time steps", lambda d, o: on(d, nn.RNN(5, 4))(R(d, 0, 2, 5)), ValueError,
     r"^RNN: expected a sequence of at least one time step, got input of shape \(0, 2, 5\)"),
    ("batch_first LSTM over zero time steps", lambda d, o: on(d, nn.LSTM(5, 4, batch_first=True))(R(d, 2, 0, 5)),
     ValueError, r"^LSTM: expected a sequence of at least one time step, got input of shape \(2, 0, 5\)"),
    # ------------------------------------------------------------ NaN (detect_anomaly)
    ("NaN from log, forward", lambda d, o: _anomaly(lambda: L(d, [1.0, -1.0]).log()), FloatingPointError,
     r"^detect_anomaly: Log \(forward\) produced NaN \(shape \(2,\)\)"),
    ("NaN input to an LSTM", lambda d, o: _anomaly(lambda: on(d, nn.LSTM(2, 3))(L(d, [[[np.nan, 0.0]]]))),
     FloatingPointError, r"^detect_anomaly: LSTMSequence \(forward\) produced NaN"),
    ("inf in a backward", lambda d, o: _anomaly(lambda: _sqrt_at_zero_backward(d)), FloatingPointError,
     r"^detect_anomaly: Sqrt \(backward\) produced inf"),
]


def _anomaly(call):
    with tr.detect_anomaly():
        return call()


def _sqrt_at_zero_backward(d):
    x = tr.tensor([0.0, 4.0], device=d, requires_grad=True)
    x.sqrt().sum().backward()


def _other_device(device):
    return "hostless" if device != "hostless" else "cpu"


def _raised_inside_numpy(excinfo):
    """True when the innermost frame of the traceback is in NumPy (an unwrapped NumPy error)."""
    innermost = str(excinfo.traceback[-1].path)
    return f"{os.sep}numpy{os.sep}" in innermost or f"{os.sep}cupy{os.sep}" in innermost


@pytest.mark.parametrize("name, call, error, pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(device, name, call, error, pattern):
    with np.errstate(all="ignore"), pytest.raises(error) as excinfo:
        call(device, _other_device(device))
    message = excinfo.value.args[0] if excinfo.value.args else ""
    if isinstance(excinfo.value, OSError) and excinfo.value.strerror and not message.startswith(("save", "load")):
        message = excinfo.value.strerror
    assert re.search(pattern, str(message)), f"{name}: message {message!r} does not match {pattern!r}"
    assert not _raised_inside_numpy(excinfo), f"{name}: the error comes straight out of NumPy: {message!r}"


def test_every_table_row_names_a_call_first():
    """Each pattern is anchored on the call's name followed by ':' (so the message starts with it)."""
    for name, _, _, pattern in CASES:
        named = re.match(r"\^[\w.\\() ]+:", pattern)
        assert named or pattern.startswith(("^Tensor does not", "^the truth", "^unknown")), name


# ----------------------------------------------------------- empty batches work (PyTorch does too)
@pytest.mark.parametrize("layer", ["RNN", "LSTM", "GRU"])
def test_an_empty_batch_gives_empty_outputs_and_zero_gradients(device, layer):
    module = on(device, getattr(nn, layer)(5, 4, num_layers=2, bidirectional=True))
    x = R(device, 3, 0, 5, requires_grad=True)
    output, state = module(x)
    h_n = state[0] if layer == "LSTM" else state
    assert output.shape == (3, 0, 8) and h_n.shape == (4, 0, 4)
    output.sum().backward()
    assert x.grad.shape == (3, 0, 5)
    np.testing.assert_array_equal(module.weight_hh_l0.grad.numpy(), 0.0)


@pytest.mark.parametrize("cell", ["RNNCell", "LSTMCell", "GRUCell"])
def test_a_cell_takes_an_empty_batch(device, cell):
    module = on(device, getattr(nn, cell)(5, 4))
    out = module(R(device, 0, 5))
    h = out[0] if cell == "LSTMCell" else out
    assert h.shape == (0, 4)


def test_softmax_over_an_empty_dim_is_empty(device):
    x = R(device, 3, 0, requires_grad=True)
    (x.softmax(1).sum() + x.log_softmax(1).sum()).backward()
    assert x.grad.shape == (3, 0)


# ----------------------------------------------------------------------------------- the CLI
def _cli(*argv, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    return subprocess.run(
        [sys.executable, "-m", "tinygrad_rnn.cli", *argv], capture_output=True, text=True, timeout=timeout,
        cwd=REPO, env=env,
    )


def _assert_one_line_exit_2(result, *fragments):
    stderr = result.stderr
    assert result.returncode == 2, f"exit code {result.returncode}, stderr:\n{stderr}"
    assert "Traceback" not in stderr, stderr
    assert stderr.endswith("\n") and stderr.count("\n") == 1, f"expected exactly one line on stderr, got:\n{stderr}"
    assert stderr.startswith("tinygrad-rnn"), stderr
    for fragment in fragments:
        assert fragment in stderr, f"{fragment!r} not in {stderr!r}"


def test_cli_unknown_example():
    _assert_one_line_exit_2(_cli("run", "NO-SUCH-EXAMPLE"), "unknown example 'NO-SUCH-EXAMPLE'", "hello")


def test_cli_bad_flag_of_an_example():
    _assert_one_line_exit_2(_cli("run", "hello", "--no-such-flag"), "--no-such-flag")


def test_cli_missing_data_file():
    _assert_one_line_exit_2(_cli("run", "min-char-rnn", "--data", "/no/such/file"), "--data", "/no/such/file")


def test_cli_unknown_command():
    _assert_one_line_exit_2(_cli("bogus"), "'bogus'")


def test_cli_unknown_benchmark():
    _assert_one_line_exit_2(_cli("bench", "XL"), "unknown benchmark 'XL'")


def test_cli_run_without_a_name():
    result = _cli("run")
    _assert_one_line_exit_2(result, "NAME")
    assert "OPTIONS" not in result.stderr  # the example's options are optional


def test_cli_bad_value_of_a_flag():
    _assert_one_line_exit_2(_cli("run", "hello", "--steps", "abc"), "--steps", "'abc'")


def test_cli_empty_data_file(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    _assert_one_line_exit_2(_cli("run", "min-char-rnn", "--quick", "--data", str(empty), "--out", str(tmp_path)),
                            str(empty))


def test_cli_data_file_that_is_not_text(tmp_path):
    binary = tmp_path / "noise.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    _assert_one_line_exit_2(_cli("run", "char-lstm", "--quick", "--data", str(binary), "--out", str(tmp_path)),
                            str(binary))


def test_cli_resume_from_a_file_that_is_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "checkpoint.npz"
    bogus.write_text("not a checkpoint")
    _assert_one_line_exit_2(_cli("run", "char-lstm", "--quick", "--resume", str(bogus), "--out", str(tmp_path)),
                            str(bogus))


def _quick_checkpoint(tmp_path, example):
    out = tmp_path / example
    result = _cli("run", example, "--quick", "--out", str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    return out / "checkpoint.npz"


def test_cli_resume_from_another_examples_checkpoint(tmp_path):
    foreign = _quick_checkpoint(tmp_path, "min-char-rnn")
    _assert_one_line_exit_2(_cli("run", "char-lstm", "--quick", "--resume", str(foreign), "--out", str(tmp_path)),
                            "is not a char-lstm checkpoint")


@pytest.mark.parametrize("make, fragment", [
    (lambda tmp: tmp, "folder"),
    (lambda tmp: "/dev/null", "/dev/null"),
    (lambda tmp: (tmp / "one.txt").write_text("a") and tmp / "one.txt", "at least 2 characters"),
])
def test_cli_data_that_cannot_be_trained_on(tmp_path, make, fragment):
    data = make(tmp_path)
    _assert_one_line_exit_2(_cli("run", "min-char-rnn", "--quick", "--data", str(data), "--out", str(tmp_path / "o")),
                            fragment)


def test_cli_refuses_a_non_finite_learning_rate(tmp_path):
    _assert_one_line_exit_2(_cli("run", "min-char-rnn", "--lr", "nan", "--out", str(tmp_path)), "--lr", "'nan'")


def test_cli_graph_with_no_node_budget_or_an_unwritable_output(tmp_path):
    _assert_one_line_exit_2(_cli("graph", "many-to-one", "--max-nodes", "0", "-o", str(tmp_path / "g.svg")),
                            "--max-nodes")
    blocker = tmp_path / "file"
    blocker.write_text("")
    _assert_one_line_exit_2(_cli("graph", "many-to-one", "-o", str(blocker / "g.svg")), str(blocker))
