"""Every Python code block of README.md and docs/*.md runs in the test suite (with Sybil), as written.

The blocks of one file share a namespace, in order, as a reader would run them. Each file runs in a
fresh temporary folder (pictures a block renders land there). A block that needs a CUDA GPU is
preceded by ``<!-- skip: next if(not CUDA, reason="needs a CUDA GPU") -->`` and skipped without one.
"""
import os
import shutil
import tempfile

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser


def _enter_temporary_folder(namespace):
    import tinygrad_rnn

    namespace["_previous_folder"] = os.getcwd()
    namespace["_folder"] = tempfile.mkdtemp(prefix="tinygrad_rnn_docs_")
    os.chdir(namespace["_folder"])
    namespace["CUDA"] = tinygrad_rnn.cuda_is_available()


def _leave_temporary_folder(namespace):
    os.chdir(namespace["_previous_folder"])
    shutil.rmtree(namespace["_folder"], ignore_errors=True)


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["README.md", "docs/*.md"],
    setup=_enter_temporary_folder,
    teardown=_leave_temporary_folder,
).pytest()
