#!/usr/bin/env bash
# Interleaved side-by-side speed of our compressed-tensors formats against llama.cpp's nearest
# GGUF type on the same model (SmolLM2-135M), 2 threads, pp512 / tg128, REPS reps each:
#   f32 (HF dir) vs F32, W8A16 (head W8A16) vs Q8_0, W4A16 g32 sym (head W4A16) vs Q4_0,
# ours as shipped (W4A16: Q16 activations on an AVX-512 CPU, f32 below; W8A16 and f32: f32
# activations) and once with f32 activations forced (LQ_F32_ACT=1), then llama-bench; the load
# average (1 min) before each run. Prints one
# Markdown row per pair and round: medians (ours: median of REPS; llama.cpp: llama-bench's mean
# of REPS) and ours / llama.cpp. Never run in CI (needs llama.cpp and the models).
#
# Usage: scripts/bench_ct_vs_llamacpp.sh [rounds=2]
# Env: BUILD (our build dir, default build), LLAMA_CPP_BIN, PEER_DIR (llama-quantize's GGUFs,
#      /work/cache/peer), CT_DIR (our checkpoints: smol-w8, smol-w4g32, made by
#      quant-ptq --model F32DIR --scheme W8A16 --override lm_head=W8A16 --out CT_DIR/smol-w8 and
#      --scheme W4A16 --group-size 32 --override lm_head=W4A16 --out CT_DIR/smol-w4g32),
#      F32_DIR (the f32 HF directory, /work/cache/smollm2-f32), REPS (3).
set -u
rounds=${1:-2}
B=${LLAMA_CPP_BIN:-/work/llama.cpp/build/bin}
PEER=${PEER_DIR:-/work/cache/peer}
CT=${CT_DIR:-/work/cache/ct-int8}
F32=${F32_DIR:-/work/cache/smollm2-f32}
REPS=${REPS:-3}
cd "$(dirname "$0")/.."
build=${BUILD:-build}
load() { cut -d' ' -f1 /proc/loadavg; }
ours() { # model, then env assignments; prints "pp tg"
  local m=$1; shift
  env "$@" "$build/quant-eval" --model "$m" --bench --n-prompt 512 --n-gen 128 --reps "$REPS" \
    --threads 2 --json 2>/dev/null | jq -r '"\(.prefill_tok_s.median) \(.decode_tok_s.median)"'
}
peer() { # gguf; prints "pp tg"
  "$B/llama-bench" -m "$1" -t 2 -p 512 -n 128 -r "$REPS" -o json 2>/dev/null |
    jq -r '[.[] | select(.n_prompt > 0) | .avg_ts][0] as $pp | [.[] | select(.n_gen > 0) | .avg_ts][0] as $tg | "\($pp) \($tg)"'
}
echo "| round | ours | llama.cpp | ours pp512 | ours pp512 f32-act | llama.cpp pp512 | pp ratio | ours tg128 | ours tg128 f32-act | llama.cpp tg128 | tg ratio | load before |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
for round in $(seq "$rounds"); do
  for pair in "smol-w4g32:q4_0" "smol-w8:q8_0" "f32:f32"; do
    o=${pair%%:*} t=${pair##*:}
    m=$CT/$o
    [ "$o" = f32 ] && m=$F32
    g=$PEER/smollm2-$t.gguf
    [ -d "$m" ] && [ -f "$g" ] || { echo "skip $m / $g (missing)" >&2; continue; }
    l1=$(load); read -r opp otg <<<"$(ours "$m")"
    l2=$(load); read -r fpp ftg <<<"$(ours "$m" LQ_F32_ACT=1)"
    l3=$(load); read -r lpp ltg <<<"$(peer "$g")"
    printf "| %s | %s | %s | %.1f | %.1f | %.1f | %.2f | %.1f | %.1f | %.1f | %.2f | %s / %s / %s |\n" \
      "$round" "$o" "$t" "$opp" "$fpp" "$lpp" "$(echo "$opp / $lpp" | bc -l)" "$otg" "$ftg" "$ltg" \
      "$(echo "$otg / $ltg" | bc -l)" "$l1" "$l2" "$l3"
  done
done
