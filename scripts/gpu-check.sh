#!/usr/bin/env bash
# The one-call GPU check: run from the repository root on the GPU machine, it installs the package from
# the working tree with no network, prints the GPU and the versions, runs the whole test suite on the CUDA
# backend, every example's --quick mode with --device cuda, and `tinygrad-rnn bench gpu`, and writes the
# logs, the JUnit XML and the benchmark table into OUT_DIR. It never stops at the first failure.
#
#   bash scripts/gpu-check.sh OUT_DIR
#
# Before the call, on the development machine: `bash scripts/gpu-wheels.sh` puts the pure-Python wheels
# the GPU image lacks (graphviz, sybil) into .whl/ (git-ignored); name ".whl" in the device tool's carry.
# Tests that need Graphviz's `dot` program skip there with the reason (the image has no `dot`).
#
# Settings (environment), for a shorter check or a rehearsal on the CPU (tests/test_gpu_check_script.py):
#   GPU_CHECK_DEVICE    cuda (default) or cpu      GPU_CHECK_TESTS     pytest arguments (default: tests)
#   GPU_CHECK_EXAMPLES  example names (default: all) GPU_CHECK_BENCH   1 (default) or 0
#   GPU_CHECK_BUDGET_S  seconds for the test suite (default 180)
#   GPU_CHECK_EXAMPLES_BUDGET_S  seconds after which no further example starts (default 180; each has 45 s)
#   PYTHON (default python3)
# The whole check stays under 10 minutes (one device call): install ~30 s, suite <= 180 s, examples
# <= 180 + 45 s, bench gpu <= 120 s.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "gpu-check: usage: bash scripts/gpu-check.sh OUT_DIR (the folder for the logs, the XML and the tables)" >&2
  exit 2
fi
OUT=$1
if ! mkdir -p "$OUT" 2>/dev/null || [ ! -w "$OUT" ]; then
  echo "gpu-check: cannot write to the output folder $OUT" >&2
  exit 2
fi
PYTHON=${PYTHON:-python3}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
TESTS=${GPU_CHECK_TESTS:-tests}
BUDGET=${GPU_CHECK_BUDGET_S:-180}
EXAMPLES_BUDGET=${GPU_CHECK_EXAMPLES_BUDGET_S:-180}
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg

log() { echo "== gpu-check $(date -u +%H:%M:%S): $*" | tee -a "$OUT/summary.txt"; }
: > "$OUT/summary.txt"

# 1. the machine and the versions
{
  nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  "$PYTHON" - <<'EOF'
import importlib, platform
print("python", platform.python_version())
for name in ("numpy", "cupy", "torch", "mpi4py", "onnx", "onnxruntime", "safetensors"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"))
    except Exception as exc:  # a missing optional package is a line of the report, not a failure
        print(name, "missing:", type(exc).__name__, exc)
try:
    import cupy
    print("cuda runtime", cupy.cuda.runtime.runtimeGetVersion(), "devices", cupy.cuda.runtime.getDeviceCount())
except Exception as exc:
    print("cupy cuda:", type(exc).__name__, exc)
try:  # does this CuPy let cuBLAS run inside a stream capture (cupy/cupy#6290)? tr.cuda.graphed needs it
    import cupy
    a = cupy.ones((64, 64), dtype=cupy.float32)
    (a @ a).sum()
    cupy.cuda.Device().synchronize()
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        c = a @ a
        graph = stream.end_capture()
    graph.launch()
    cupy.cuda.Device().synchronize()
    print("cuBLAS in stream capture: works (a @ a replayed:", float(c[0, 0]), "expected 64.0)")
except Exception as exc:
    print("cuBLAS in stream capture: fails:", type(exc).__name__, exc)
EOF
} > "$OUT/env.txt" 2>&1
log "machine and versions in env.txt"

# 2. install from the working tree, offline: carried wheels first, then the package itself (no deps)
SITE=/tmp/gpu-check-site
if ls .whl/*.whl >/dev/null 2>&1; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
    >> "$OUT/install.log" 2>&1 && export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
if "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation -e . >> "$OUT/install.log" 2>&1; then
  log "installed tinygrad_rnn from the working tree (offline)"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  log "pip install -e failed (install.log); using PYTHONPATH=$PWD instead"
fi
if ! "$PYTHON" -c "import tinygrad_rnn" >> "$OUT/install.log" 2>&1; then
  log "FAILED: import tinygrad_rnn (install.log)"
fi

# 3. the test suite on the chosen backend, each test with a time limit, no stop at the first failure
TIMEOUT_FLAG=""
if "$PYTHON" -c "import pytest_timeout" 2>/dev/null; then TIMEOUT_FLAG="--timeout=120"; fi
# shellcheck disable=SC2086  (TESTS is a list of pytest arguments)
# past the budget pytest gets SIGINT, so it still writes the XML and the summary of what ran (exit 124)
TINYGRAD_RNN_TEST_DEVICES=$DEVICE timeout -s INT -k 30 "$BUDGET" "$PYTHON" -m pytest -p no:cacheprovider $TIMEOUT_FLAG \
  --junitxml="$OUT/junit.xml" -rfE $TESTS > "$OUT/tests.log" 2>&1
status=$?
log "test suite on $DEVICE: exit $status; $(tail -n 1 "$OUT/tests.log")"

# 4. every example's --quick mode on the device, their metrics gathered in one JSON file
EXAMPLES=${GPU_CHECK_EXAMPLES:-$(ls examples/*.py | xargs -n1 basename | sed 's/\.py$//' | grep -v '^__init__$')}
: > "$OUT/examples.log"
echo "{" > "$OUT/examples.json"
first=1
examples_start=$(date +%s)
for name in $EXAMPLES; do
  dir=/tmp/gpu-check-examples/$name
  start=$(date +%s)
  [ $first -eq 1 ] || echo "," >> "$OUT/examples.json"
  first=0
  if [ $(( start - examples_start )) -ge "$EXAMPLES_BUDGET" ]; then
    log "example $name: skipped (the examples' budget of $EXAMPLES_BUDGET s is spent)"
    printf '"%s": {"skipped": true}' "$name" >> "$OUT/examples.json"
    continue
  fi
  timeout 45 "$PYTHON" "examples/$name.py" --quick --device "$DEVICE" --out "$dir" >> "$OUT/examples.log" 2>&1
  code=$?
  log "example $name: exit $code in $(( $(date +%s) - start )) s"
  if [ -f "$dir/metrics.json" ]; then
    printf '"%s": ' "$name" >> "$OUT/examples.json"; cat "$dir/metrics.json" >> "$OUT/examples.json"
  else
    printf '"%s": {"exit": %d}' "$name" "$code" >> "$OUT/examples.json"
  fi
done
echo "}" >> "$OUT/examples.json"

# 5. the GPU benchmark table
if [ "${GPU_CHECK_BENCH:-1}" = 1 ]; then
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 timeout 120 "$PYTHON" -m benchmarks.run_all gpu \
    > "$OUT/bench.txt" 2>&1
  log "benchmark gpu: exit $?"
fi
log "done"
