"""The vit-digits example: its patches, its attention read-out, the sinusoidal shift property, a quick run."""
import numpy as np
import pytest

from conftest import example_cli_error

import tinygrad_rnn as tr
from tinygrad_rnn import examples_support as support
from tinygrad_rnn import nn

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

vit = support.load_example("vit-digits")


def run_example(*argv):
    return vit.main([str(a) for a in argv])


def sinusoidal_table(length, d, base=10000.0):
    """The sinusoidal codes in float64, written out here from the formula (with another ``base`` if asked)."""
    t = np.arange(length)[:, None]
    omega = base ** (-np.arange(0, d, 2) / d)
    table = np.zeros((length, d))
    table[:, 0::2], table[:, 1::2] = np.sin(t * omega), np.cos(t * omega)
    return table


# ----------------------------------------------------------------------------------------- the sinusoidal property
def test_the_shift_rotation_moves_every_position_by_k():
    table = sinusoidal_table(40, 16)
    for k in (1, 4, 7):
        rotation = vit.shift_rotation(k, 16)
        np.testing.assert_allclose(table[k:], table[:-k] @ rotation.T, atol=1e-12)
        np.testing.assert_allclose(rotation.T @ rotation, np.eye(16), atol=1e-14)
    np.testing.assert_allclose(vit.shift_rotation(2, 16) @ vit.shift_rotation(3, 16), vit.shift_rotation(5, 16),
                               atol=1e-14)  # T_a T_b = T_(a+b): shifts compose


def test_the_library_table_obeys_the_property():
    table = nn.PositionalEncoding(64, max_len=vit.TABLE_LENGTH).pe.numpy()
    check = vit.sinusoidal_shift_check(table)
    assert check["formula_error"] < 2e-7 and check["dot_product_error"] < 2e-6  # float32 rounding
    assert check["orthogonality_error"] < 1e-14
    assert check["fit_residual"] < 2e-7
    assert check["fit_difference"] < 1e-4 and check["fit_vs_formula"] < 1e-4 and check["fit_orthogonality_error"] < 1e-4
    assert check["full_rank_first_range"] <= 20 < check["d_model"]
    exact = vit.sinusoidal_shift_check(sinusoidal_table(vit.TABLE_LENGTH, 64))
    assert max(exact[key] for key in ("formula_error", "dot_product_error", "fit_residual")) < 1e-12
    assert exact["fit_difference"] < 1e-9 and exact["fit_vs_formula"] < 1e-9


def test_a_random_table_does_not_obey_it():
    check = vit.sinusoidal_shift_check(np.random.default_rng(0).standard_normal((vit.TABLE_LENGTH, 64)))
    assert check["formula_error"] > 1 and check["dot_product_error"] > 1
    assert check["fit_residual"] > 0.5 and check["fit_difference"] > 0.5 and check["fit_vs_formula"] > 0.5


def test_the_fits_do_not_assume_the_formula():
    """Codes of another base are rotated by other angles: the formula's T_k fails, yet one fitted T_k
    still serves every t, and it is orthogonal."""
    check = vit.sinusoidal_shift_check(sinusoidal_table(vit.TABLE_LENGTH, 64, base=100.0))
    assert check["formula_error"] > 0.1 and check["fit_vs_formula"] > 0.1
    assert check["fit_residual"] < 1e-9 and check["fit_difference"] < 1e-6 and check["fit_orthogonality_error"] < 1e-6


@pytest.mark.parametrize("shape, expected", [((64, 63), "d even"), ((30, 64), "need 58 positions"),
                                             ((64,), "d even")])
def test_the_check_refuses_a_table_it_cannot_judge(shape, expected):
    with pytest.raises(ValueError, match=f"sinusoidal_shift_check: .*{expected}"):
        vit.sinusoidal_shift_check(np.zeros(shape))


# ------------------------------------------------------------------------------------------------------ the model
@pytest.mark.parametrize("patch", [1, 2, 4])
def test_patches_are_the_image_squares_row_by_row(patch):
    images = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    model = vit.VisionTransformer(patch=patch, dim=8, depth=1, heads=2, mlp=8)
    got = model.patches(tr.tensor(images)).numpy()
    grid = 8 // patch
    assert got.shape == (3, grid * grid, patch * patch)
    for n in range(grid * grid):
        row, column = divmod(n, grid)
        square = images[:, row * patch:(row + 1) * patch, column * patch:(column + 1) * patch]
        np.testing.assert_array_equal(got[:, n], square.reshape(3, -1))


@pytest.mark.parametrize("pos", ["learned", "sinusoidal"])
def test_the_attention_read_out_is_the_one_the_last_layer_uses(pos):
    model = vit.VisionTransformer(patch=2, dim=16, depth=2, heads=4, mlp=32, dropout=0.1, pos=pos)
    images = tr.tensor(np.random.default_rng(1).random((5, 8, 8)).astype(np.float32))
    x, attended, weights = vit.last_layer_attention(model, images)
    assert model.training  # given back in training mode
    assert weights.shape == (5, 17, 17)
    np.testing.assert_allclose(weights.numpy().sum(axis=-1), 1, atol=1e-5)
    last = model.encoder.layers[-1]
    model.eval()
    with tr.no_grad():
        h = x + attended
        out = h + last.linear2(last.activation(last.linear1(last.norm2(h))))
        np.testing.assert_allclose(out.numpy(), last(x).numpy(), atol=1e-5)
        np.testing.assert_allclose(model.head(model.norm(out[:, 0])).numpy(), model(images).numpy(), atol=1e-5)
    if pos == "learned":
        assert "pos_embedding" in dict(model.named_parameters())
    else:
        assert "pos_encoding.pe" in model.state_dict() and "pos_embedding" not in dict(model.named_parameters())


def test_a_training_step_and_the_read_out_stay_on_the_device(device):
    """On the hostless backend (CuPy's rule: no host arrays mixed in) as on the CPU and a GPU."""
    for pos in ("learned", "sinusoidal"):
        model = vit.VisionTransformer(patch=2, dim=16, depth=2, heads=4, mlp=32, pos=pos).to(device)
        optimizer = tr.optim.AdamW(model.parameters(), lr=1e-3)
        scheduler = tr.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=2, pct_start=0.1)
        images = tr.tensor(np.random.default_rng(2).random((4, 8, 8)).astype(np.float32), device=device)
        loss = tr.nn.functional.cross_entropy(model(images), tr.tensor(np.arange(4), device=device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        assert np.isfinite(loss.item()) and model.cls_token.grad is not None
        _, _, weights = vit.last_layer_attention(model, images)
        assert weights.device == images.device and weights.shape == (4, 17, 17)
        assert vit.predict(model, images.numpy(), device).shape == (4,)


# ---------------------------------------------------------------------------------------------------- the example
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vit-digits")
    return run_example("--quick", "--out", out), out


def test_quick_run_learns(quick_run):
    metrics, out = quick_run
    assert metrics["pos"] == "learned" and metrics["patches"] == 16 and metrics["epochs"] == 10
    assert metrics["test_accuracy"] > 0.8 and metrics["train_accuracy"] > 0.8  # chance: 0.1
    assert metrics["losses"][-1] < 0.5 * metrics["losses"][0]
    confusion = np.array(metrics["confusion"])
    assert confusion.sum() == metrics["test_size"] == 359 and np.trace(confusion) / 359 == metrics["test_accuracy"]
    np.testing.assert_allclose(metrics["per_class_accuracy"], confusion.diagonal() / confusion.sum(axis=1))
    assert len(metrics["class_attention_mean"]) == 17 and sum(metrics["class_attention_mean"]) == pytest.approx(1)
    assert metrics["parameters"] == 69194 and metrics["seconds_per_epoch"] > 0
    assert metrics["sinusoidal"]["formula_error"] < 2e-7 and metrics["sinusoidal"]["fit_difference"] < 1e-4
    for name in ("training.png", "attention.png", "sinusoidal.png", "graph.dot", "metrics.json"):
        assert (out / name).is_file() and name in metrics["outputs"]


def test_sinusoidal_positions_and_big_patches_train(tmp_path):
    metrics = run_example("--quick", "--pos", "sinusoidal", "--patch", "4", "--epochs", "3", "--out", tmp_path)
    assert metrics["pos"] == "sinusoidal" and metrics["patches"] == 4 and len(metrics["class_attention_mean"]) == 5
    assert metrics["test_accuracy"] > 0.8 and metrics["losses"][-1] < 0.5 * metrics["losses"][0]  # ~89 % after 3 epochs


@pytest.mark.parametrize("argv, expected", [
    (["--pos", "rotary"], "argument --pos: invalid choice"),
    (["--patch", "3"], "argument --patch: invalid choice"),
    (["--dim", "30"], "--dim 30 is not divisible by --heads 4"),
    (["--dim", "63", "--heads", "1"], "--dim: expected an even number"),
    (["--dropout", "1"], "argument --dropout: expected a number in [0, 1)"),
    (["--lr", "0"], "argument --lr: expected a number > 0"),
    (["--epochs", "0"], "argument --epochs: expected a positive integer"),
])
def test_bad_flags_are_one_line(capsys, tmp_path, argv, expected):
    line = example_cli_error(capsys, "vit-digits", "--out", tmp_path / "out", *argv)
    assert expected in line, line
