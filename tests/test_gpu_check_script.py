"""``scripts/gpu-check.sh``, the one-call GPU check, rehearsed on the CPU: its argument handling, and the
whole flow (offline install, versions, the suite on a backend, examples' metrics, the summary) with a
small selection. On the GPU machine it runs with GPU_CHECK_DEVICE=cuda and everything selected."""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu-check.sh"


def _run(*args, env=None, timeout=240):
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHON=sys.executable, **(env or {})), cwd=REPO)


@pytest.mark.parametrize("args", [(), ("a", "b"), ("",)])
def test_wrong_arguments_are_one_usage_line_and_exit_2(args):
    done = _run(*args)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "gpu-check: usage: bash scripts/gpu-check.sh OUT_DIR (the folder for the logs, the XML and the tables)"]


def test_an_output_folder_that_cannot_be_written_is_exit_2():
    done = _run("/proc/gpu-check-out")
    assert done.returncode == 2 and "cannot write to the output folder" in done.stderr


def test_rehearsal_on_the_cpu_writes_every_report(tmp_path):
    out = tmp_path / "out"
    done = _run(str(out), env=dict(GPU_CHECK_DEVICE="cpu", GPU_CHECK_TESTS="tests/test_tensor.py -k factories",
                                   GPU_CHECK_EXAMPLES="hello", GPU_CHECK_BENCH="0"))
    assert done.returncode == 0, done.stdout + done.stderr
    files = sorted(p.name for p in out.iterdir())
    assert files == ["env.txt", "examples.json", "examples.log", "install.log", "junit.xml", "summary.txt",
                     "tests.log"]
    assert len(files) <= 8  # what the device tool sends back
    assert "numpy" in (out / "env.txt").read_text()
    summary = (out / "summary.txt").read_text()
    assert "test suite on cpu: exit 0" in summary and "example hello: exit 0" in summary and "done" in summary
    suite = ElementTree.parse(out / "junit.xml").getroot()
    assert int(suite.find("testsuite").get("tests")) > 0
    metrics = json.loads((out / "examples.json").read_text())
    assert metrics["hello"]["example"] == "hello" and metrics["hello"]["device"] == "cpu"


def test_a_suite_past_its_budget_still_leaves_its_xml(tmp_path):
    """The suite is stopped with SIGINT at GPU_CHECK_BUDGET_S: pytest still writes what ran, and the
    script goes on to the examples."""
    out = tmp_path / "out"
    # a suite that outlasts its budget on any machine, in this process group only (timeout's SIGINT
    # reaches the whole group: a test's child process killed by it would fail instead of interrupting)
    slow = tmp_path / "test_slow.py"
    slow.write_text("import time\n\ndef test_quick():\n    pass\n\ndef test_slow():\n    time.sleep(120)\n")
    done = _run(str(out), env=dict(GPU_CHECK_DEVICE="cpu", GPU_CHECK_TESTS=str(slow), GPU_CHECK_BUDGET_S="20",
                                   GPU_CHECK_EXAMPLES="hello", GPU_CHECK_BENCH="0"))
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (out / "summary.txt").read_text()
    assert "test suite on cpu: exit 124" in summary and "example hello: exit 0" in summary
    suite = ElementTree.parse(out / "junit.xml").getroot().find("testsuite")  # written although interrupted
    assert suite is not None and int(suite.get("tests")) >= 1  # test_quick, which ran before the budget
    assert "Interrupted" in (out / "tests.log").read_text() or "KeyboardInterrupt" in (out / "tests.log").read_text()


def test_examples_past_their_budget_are_skipped_and_said_so(tmp_path):
    """Once GPU_CHECK_EXAMPLES_BUDGET_S is spent no further example starts: the summary and the JSON say
    which were skipped, and the JSON stays valid."""
    out = tmp_path / "out"
    done = _run(str(out), env=dict(GPU_CHECK_DEVICE="cpu", GPU_CHECK_TESTS="tests/test_gpu_check_script.py -k usage",
                                   GPU_CHECK_EXAMPLES="hello bptt-by-hand", GPU_CHECK_EXAMPLES_BUDGET_S="0",
                                   GPU_CHECK_BENCH="0"))
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (out / "summary.txt").read_text()
    assert "example hello: skipped" in summary and "example bptt-by-hand: skipped" in summary
    assert json.loads((out / "examples.json").read_text()) == {"hello": {"skipped": True},
                                                               "bptt-by-hand": {"skipped": True}}
