#!/usr/bin/env bash
# Whole-model speed: build if needed, write a random-weight checkpoint of a real shape with
# quant-synth, run `quant-eval --bench` on it (prefill/decode tok/s, peak RSS, and the machine's
# read bandwidth measured in the same run) and print the table.
#
# Usage: scripts/bench.sh [shape] [dtype] [extra quant-eval args...]
#   shape: stories110M (default), smollm-135m, llama-3.2-1b (whatever quant-synth --help lists)
#   dtype: f32 (default), f16, bf16
# Env: LQ_BENCH_DIR (where checkpoints go; default a temp dir, removed afterwards),
#      BUILD (build dir, default build), THREADS (default: all CPUs).
# Target: f32 decode on stories110M at >= 60% of the measured bandwidth bound
# (bytes/token x decode tok/s / bandwidth >= 0.6).
set -euo pipefail
cd "$(dirname "$0")/.."
shape=${1:-stories110M}
dtype=${2:-f32}
shift $(( $# > 2 ? 2 : $# ))
build=${BUILD:-build}

if [ ! -x "$build/quant-eval" ] || [ ! -x "$build/quant-synth" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target quant-eval quant-synth
fi

if [ -n "${LQ_BENCH_DIR:-}" ]; then
  dir=$LQ_BENCH_DIR
  mkdir -p "$dir"
else
  dir=$(mktemp -d /tmp/lq_bench_XXXXXX)
  trap 'rm -rf "$dir"' EXIT
fi
model="$dir/$shape-$dtype"
if [ ! -f "$model/config.json" ]; then
  "$build/quant-synth" --shape "$shape" --dtype "$dtype" --out "$model"
fi

threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")
echo "+ $build/quant-eval --model $model --bench ${threads[*]} $*"
"$build/quant-eval" --model "$model" --bench "${threads[@]}" "$@"
