#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU and numba-cuda, run the CUDA tests on the real
# GPU and the CPU-vs-GPU benchmark, and put every result in one folder (default: gpu_check/).
#
#   benchmarks/gpu_check.sh [OUTDIR]
#
# Needs numpy, numba, numba-cuda, pytest and hypothesis; installs minicnn from this checkout
# without touching the network. Aims to finish in under five minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu_check}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1

python3 -m pip install -q --no-deps --no-build-isolation -e . > "$out/install.log" 2>&1 \
  || python3 -m pip install -q --no-deps -e . >> "$out/install.log" 2>&1

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 -c "import numba, numpy; from numba import cuda; print('numba', numba.__version__, 'numpy', numpy.__version__, 'cuda available', cuda.is_available())"
} > "$out/machine.txt" 2>&1
cat "$out/machine.txt"

echo "== CUDA tests on the real GPU"
timeout 200 python3 -m pytest tests/cuda -q -x -p no:cacheprovider --durations=5 2>&1 | tee "$out/tests.txt"
tests_rc=${PIPESTATUS[0]}

echo "== CPU vs GPU benchmark"
timeout 280 python3 -m minicnn bench --batch 16 --repeats 3 --no-reference --json "$out/bench.json" --png "$out/bench.png" 2>&1 \
  | tee "$out/bench.txt"
bench_rc=${PIPESTATUS[0]}

echo "tests exit $tests_rc, bench exit $bench_rc" | tee "$out/status.txt"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
