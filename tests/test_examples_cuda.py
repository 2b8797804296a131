"""Every example runs with ``--device cuda`` when a GPU is present; without one, it says so in one line."""
import pytest

import tinygrad_rnn as tr
from tinygrad_rnn import cli
from tinygrad_rnn import examples_support as support

EXAMPLES = sorted(support.available_examples())


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_quick_mode_on_the_gpu(name, cuda_device, tmp_path):
    metrics = support.load_example(name).main(["--quick", "--device", cuda_device, "--out", str(tmp_path)])
    assert metrics and (tmp_path / "metrics.json").exists()


@pytest.mark.skipif(tr.cuda_is_available(), reason="checks the message shown on machines without a GPU")
def test_cuda_without_a_gpu_is_a_one_line_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "hello", "--quick", "--device", "cuda"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cuda" in err and ("CuPy" in err or "GPU" in err)
