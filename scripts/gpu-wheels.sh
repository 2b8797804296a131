#!/usr/bin/env bash
# Put into .whl/ (git-ignored) the pure-Python wheels that the GPU machine's image lacks and
# scripts/gpu-check.sh installs there offline: graphviz (the Python package; the image has no `dot`)
# and sybil (the README and docs code blocks). Run here, before a device call that carries ".whl".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
mkdir -p .whl
"$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any \
  -d .whl "graphviz>=0.20" "sybil>=6"
ls -1 .whl
