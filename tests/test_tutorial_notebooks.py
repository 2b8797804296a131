"""The tutorial notebooks of docs/tutorial/ run from top to bottom, are stored without outputs, and are listed.

Each notebook is executed with nbclient in a kernel that runs this interpreter (a kernelspec written
to a temporary JUPYTER_PATH, so the kernel imports the same tinygrad_rnn as the tests), in a
temporary working folder; any error in any cell fails the test. The notebooks' own ``assert``s check
their claims (hand-computed gradients equal ``.grad``, BPTT by hand equals ``backward()``, ...).
"""
import json
import pathlib
import sys

import pytest

TUTORIAL = pathlib.Path(__file__).resolve().parent.parent / "docs" / "tutorial"
NOTEBOOKS = sorted(TUTORIAL.glob("*.ipynb"))
KERNEL = "tinygrad-rnn-tests"


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 6, f"expected at least 6 notebooks in {TUTORIAL}, found {len(NOTEBOOKS)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name}: cell {index} has stored outputs"
            assert cell["execution_count"] is None, f"{path.name}: cell {index} has an execution count"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_every_notebook_is_linked_from_the_readme():
    readme = (TUTORIAL / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in NOTEBOOKS if f"({p.name})" not in readme]
    assert not missing, f"docs/tutorial/README.md does not link {missing}"


@pytest.fixture
def kernel_name(tmp_path, monkeypatch):
    """A kernelspec whose kernel runs ``sys.executable``, found first on a temporary JUPYTER_PATH."""
    pytest.importorskip("ipykernel", reason="the tutorial notebooks need ipykernel (the 'test' extra)")
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "tinygrad_rnn tests", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    return KERNEL


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_name, tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="the tutorial notebooks need nbformat (the 'test' extra)")
    nbclient = pytest.importorskip("nbclient", reason="the tutorial notebooks need nbclient (the 'test' extra)")
    workdir = tmp_path / "work"
    workdir.mkdir()
    nb = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=kernel_name, timeout=120, allow_errors=False,
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()  # raises CellExecutionError, naming the cell and the error, if any cell fails
    ran = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert ran and all(cell.execution_count is not None for cell in ran)
