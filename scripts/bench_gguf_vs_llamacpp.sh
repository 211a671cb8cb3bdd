#!/usr/bin/env bash
# Interleaved side-by-side decode/prefill speed: our quant-eval --bench vs llama-bench on the SAME
# GGUF files (llama-quantize's SmolLM2 files, made by scripts/peer/llamacpp_refs.sh, and
# Gemma-3-270M Q4_K_M), 2 threads, pp512 / tg128, REPS reps each, ROUNDS rounds, the load
# (1-minute loadavg) printed before every run. Needs llama.cpp built (LLAMA_CPP_BIN); never run in CI.
#   TYPES="q4_k_m q6_k" ROUNDS=2 REPS=3 scripts/bench_gguf_vs_llamacpp.sh
# A type is a smollm2-<type>.gguf in PEER_DIR, or a path to a .gguf file.
set -u
B=${LLAMA_CPP_BIN:-/work/llama.cpp/build/bin}
DIR=${PEER_DIR:-/work/cache/peer}
TYPES=${TYPES:-q8_0 q4_0 q4_k_m f32}
ROUNDS=${ROUNDS:-2}
REPS=${REPS:-3}
cd "$(dirname "$0")/.."
for round in $(seq 1 "$ROUNDS"); do
for t in $TYPES; do
  case $t in *.gguf) f=$t ;; *) f=$DIR/smollm2-$t.gguf ;; esac
  [ -f "$f" ] || { echo "== skip $t (no $f)"; continue; }
  echo "== round $round $t ours load $(cut -d' ' -f1 /proc/loadavg)"
  ./build/quant-eval --model "$f" --bench --n-prompt 512 --n-gen 128 --reps "$REPS" --threads 2 2>&1 | grep -E "^\| (pp|tg)|ratio"
  echo "== round $round $t llama.cpp load $(cut -d' ' -f1 /proc/loadavg)"
  $B/llama-bench -m "$f" -t 2 -p 512 -n 128 -r "$REPS" -o md 2>/dev/null | grep -E "pp512|tg128"
done; done
echo "== end load $(cut -d' ' -f1 /proc/loadavg)"
