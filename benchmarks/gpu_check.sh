#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU and numba-cuda, run the CUDA tests on the real
# GPU, the GEMM ladder, every layer at batch 128 and the training step beside PyTorch, then the
# engine's candidate tiles on AlexNet's products, and last the CPU training step on the machine's
# own cores beside PyTorch's (issue 19's many-core point), and put every result in one folder
# (default: gpu_check/). docs/gpu.md says where each number goes.
#
#   benchmarks/gpu_check.sh [OUTDIR]
#
# Needs numpy, numba, numba-cuda, pytest and hypothesis; installs minicnn from this checkout
# without touching the network. Aims to finish in under ten minutes, one device call (each part has its own limit).
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
timeout 150 python3 -m pytest tests/cuda -q -x -p no:cacheprovider --durations=5 2>&1 | tee "$out/tests.txt"
tests_rc=${PIPESTATUS[0]}

echo "== the GEMM ladder, 4096^3, beside cuBLAS"
timeout 150 python3 benchmarks/gemm_ladder.py --size 4096 --repeats 5 --out-md "$out/gemm_ladder.md" \
  --out-json "$out/gemm_ladder.json" 2>&1 | tee "$out/gemm_ladder.txt"
ladder_rc=${PIPESTATUS[0]}

echo "== every layer on the GPU at batch 128, beside PyTorch (cuDNN, TF32 off); the step's launches"
timeout 140 python3 -m minicnn bench --device cuda --batch 128 --repeats 3 --no-reference --json "$out/bench.json" \
  2>&1 | tee "$out/bench.txt"
bench_rc=${PIPESTATUS[0]}

echo "== the alexnet2012 training step, batches 128 and 16, beside PyTorch; memory; the step without the pool"
timeout 150 python3 benchmarks/gpu_step.py --batches 128 16 --repeats 5 --out-md "$out/gpu_step.md" \
  --out-json "$out/gpu_step.json" 2>&1 | tee "$out/gpu_step.txt"
step_rc=${PIPESTATUS[0]}

echo "== the engine's tiles on every conv and fc product at batch 128: 64x64, 128x128, 32x128 (last: whatever"
echo "   the device call leaves time for; the folder keeps the parts above if it runs out)"
timeout 90 python3 benchmarks/gpu_tiles.py --batch 128 --repeats 3 --out-md "$out/gpu_tiles.md" \
  --out-json "$out/gpu_tiles.json" 2>&1 | tee "$out/gpu_tiles.txt"
tiles_rc=${PIPESTATUS[0]}

echo "== issue 19's point on this machine's CPU cores: the training step at batch 64 beside PyTorch on the CPU"
echo "   (informational, last: whatever time is left; a fresh machine compiles the CPU kernels first)"
timeout 120 python3 benchmarks/step_vs_pytorch.py --batches 64 --repeats 2 2>&1 | tee "$out/cpu_step.txt"
cpu_rc=${PIPESTATUS[0]}

echo "tests exit $tests_rc, ladder exit $ladder_rc, bench exit $bench_rc, step exit $step_rc, tiles exit $tiles_rc, cpu step exit $cpu_rc (not judged)" \
  | tee "$out/status.txt"
[ "$tests_rc" -eq 0 ] && [ "$ladder_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ] && [ "$step_rc" -eq 0 ] && [ "$tiles_rc" -eq 0 ]
