#!/usr/bin/env bash
# Interleaved side-by-side decode/prefill speed: our quant-eval --bench vs llama-bench on the SAME
# GGUF files (llama-quantize's SmolLM2 files, made by scripts/peer/llamacpp_refs.sh), 2 threads,
# pp512 / tg128, 3 reps each, two rounds. Needs llama.cpp built (LLAMA_CPP_BIN); never run in CI.
set -u
B=${LLAMA_CPP_BIN:-/work/llama.cpp/build/bin}
DIR=${PEER_DIR:-/work/cache/peer}
cd "$(dirname "$0")/.."
for round in 1 2; do
for t in q8_0 q4_0 q4_k_m f32; do
  f=$DIR/smollm2-$t.gguf
  [ -f "$f" ] || continue
  echo "== round $round $t load $(cut -d' ' -f1 /proc/loadavg)"
  ./build/quant-eval --model "$f" --bench --n-prompt 512 --n-gen 128 --reps 3 --threads 2 2>&1 | grep -E "^\| (pp|tg)|ratio"
  $B/llama-bench -m "$f" -t 2 -p 512 -n 128 -r 3 -o md 2>/dev/null | grep -E "pp512|tg128"
done; done
