#!/usr/bin/env bash
# Batched decoding under load (issue 15): for every format of SmolLM2-135M, our B = 1..32 curve
# (quant-eval --batch-curve: B sequences of NPP random ids prefilled, then NTG decode steps of B
# tokens) next to llama.cpp's llama-batched-bench on the same GGUF files (same NPP/NTG/B list,
# prompts not shared, same threads), then continuous batching (quant-eval --serve-bench: NREQ
# requests of NPP prompt + NTG output tokens arriving at once) against llama-batched-bench's
# total speed S at B = NREQ (the same tokens to process). Two rounds, interleaved; the load
# average is printed before every run. Never run in CI.
#   LLAMA_BB  llama-batched-bench (build: cmake -S /work/llama.cpp/src -B /work/llama.cpp-batch
#             -DGGML_NATIVE=ON -DLLAMA_CURL=OFF && cmake --build /work/llama.cpp-batch
#             --target llama-batched-bench)
#   PEER_DIR  llama-quantize's SmolLM2 GGUFs (smollm2-{f32,q8_0,q4_0}.gguf)
#   FORMATS   which of f32 q8_0 q4_0 W8A16 W4A16 W8A8 (default all)
#   CT_DIR    compressed-tensors SmolLM2 (smol-{W8A16,W4A16,W8A8}: quant-ptq --scheme S
#             [--group-size 64] on the f32 HF directory)
set -u
LLAMA_BB=${LLAMA_BB:-/work/llama.cpp-batch/bin/llama-batched-bench}
PEER=${PEER_DIR:-/work/cache/peer}
CT=${CT_DIR:-/work/cache/batch}
NPP=${NPP:-64} NTG=${NTG:-16} NPL=${NPL:-1,2,4,8,16,32} T=${THREADS:-2} NREQ=${NREQ:-16} ROUNDS=${ROUNDS:-2}
OUT=${OUT:-/tmp/bench_batch}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
load() { echo "load $(cut -d' ' -f1-3 /proc/loadavg)"; }
ctx=$(( (NPP + NTG) * 32 + 64 ))
for round in $(seq "$ROUNDS"); do
  for fmt in ${FORMATS:-f32 q8_0 q4_0 W8A16 W4A16 W8A8}; do
    case $fmt in W*) m=$CT/smol-$fmt ;; *) m=$PEER/smollm2-$fmt.gguf ;; esac
    [ -e "$m" ] || { echo "skip $fmt: no $m"; continue; }
    echo "== round $round $fmt ours $(load)"
    ./build/quant-eval --model "$m" --batch-curve "$NPL" --n-prompt "$NPP" --n-gen "$NTG" --threads "$T" --json \
      > "$OUT/curve-$fmt-r$round.json" && cat "$OUT/curve-$fmt-r$round.json" | tr -d ' \n' ; echo
    echo "== round $round $fmt ours serve-bench $NREQ requests $(load)"
    ./build/quant-eval --model "$m" --serve-bench --requests "$NREQ" --prompt-len "$NPP" --gen-len "$NTG" \
      --max-seqs "$NREQ" --budget 512 --threads "$T" --json > "$OUT/serve-$fmt-r$round.json" &&
      grep -E '"(total_tok_s|generated_tok_s|seconds)"' "$OUT/serve-$fmt-r$round.json" | tr -d ' \n'; echo
    case $fmt in W*) continue ;; esac
    [ -x "$LLAMA_BB" ] || { echo "skip llama.cpp: no $LLAMA_BB"; continue; }
    echo "== round $round $fmt llama.cpp $(load)"
    "$LLAMA_BB" -m "$m" -c "$ctx" -b 2048 -ub 512 -npp "$NPP" -ntg "$NTG" -npl "$NPL" -t "$T" \
      --output-format jsonl 2>/dev/null | grep '^{' > "$OUT/llama-$fmt-r$round.jsonl"; cat "$OUT/llama-$fmt-r$round.jsonl"
  done
done
