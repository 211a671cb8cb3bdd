#!/usr/bin/env bash
# Compile (never run: no GPU needed) every CUDA source: kernels/cuda/*.cu (lq_cuda) linked into
# the module libquant_cuda.so (quant_cuda, against cudart/cublas), bench/cuda_workbench/*.cu,
# libquant's CUDA glue built with LQ_HAVE_CUDA into libquant.so, and test_cuda.
# Usage: scripts/cuda_check.sh [build-dir]
# Without nvcc it says so and exits 0, unless CI=true (CI machines have nvcc: then it fails).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-cuda}
nvcc=$(command -v nvcc || true)
[ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
if [ -z "$nvcc" ]; then
  if [ "${CI:-}" = "true" ]; then echo "cuda_check: nvcc not found" >&2; exit 1; fi
  echo "cuda_check: nvcc not found; skipped"
  exit 0
fi
cmake -S . -B "$build" -DQUANT_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_BUILD_TYPE=Release >/dev/null
targets=(lq_cuda quant_cuda quant_shared)
grep -q 'cuda_workbench' "$build/Makefile" 2>/dev/null && targets+=(cuda_workbench)
grep -q 'test_cuda' "$build/Makefile" 2>/dev/null && targets+=(test_cuda)
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
echo "cuda_check: compiled $(ls kernels/cuda/*.cu bench/cuda_workbench/*.cu 2>/dev/null | wc -l) .cu files with $("$nvcc" --version | tail -1)"
