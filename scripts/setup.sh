#!/usr/bin/env bash
# Set up tinygrad_rnn on a fresh Debian machine with only Python installed:
# the graphviz `dot` program and chromium + chromium-driver (Debian packages; the
# browser tests of the graph explorer), a virtualenv in .venv, and the
# package with its test, examples, distributed (mpi4py + the MPICH wheel, which
# brings mpiexec), onnx and safetensors extras. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "setup: need root (or sudo) to run: $*" >&2; return 1
  fi
}

apt_install() {
  as_root apt-get install -y -q "$@" >/dev/null 2>&1 || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q "$@" >/dev/null; }
}

if ! command -v dot >/dev/null 2>&1; then
  echo "setup: installing graphviz (the dot program) with apt-get"
  apt_install graphviz
fi

if ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing chromium and chromium-driver (the explorer's browser tests) with apt-get"
  apt_install chromium chromium-driver
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    echo "setup: installing python3-venv with apt-get"
    apt_install python3-venv
    "$PYTHON" -m venv .venv
  fi
fi

echo "setup: installing tinygrad_rnn with its test, examples, distributed, onnx and safetensors extras into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test,examples,distributed,onnx,safetensors]"
