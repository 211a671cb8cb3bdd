#!/usr/bin/env bash
# bench_isa_e2e.sh - end to end, the AVX2 level (LQ_FORCE_AVX2=1) against the best level this CPU
# has, on the compressed-tensors checkpoints of SmolLM2-135M and its f32 directory, interleaved
# per model (so a change of load hits both alike); the load average is printed before each run.
#   scripts/bench_isa_e2e.sh [rounds=1]     (BUILD, CT_DIR, F32_DIR, REPS override)
set -u
rounds=${1:-1}
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
echo "| round | model | activations | AVX2 pp512 | AVX-512 pp512 | AVX2 tg128 | AVX-512 tg128 | tg x | load before |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"
for round in $(seq "$rounds"); do
  for run in "smol-w4g32:f32" "smol-w4g32:int8" "smol-w8:f32" "smol-w8:int8" "f32:f32"; do
    o=${run%%:*} act=${run##*:}
    m=$CT/$o
    [ "$o" = f32 ] && m=$F32
    [ -d "$m" ] || { echo "skip $m (missing)" >&2; continue; }
    ia=X=1
    [ "$act" = int8 ] && ia=LQ_INT_ACT=all
    l1=$(load); read -r app atg <<<"$(ours "$m" LQ_FORCE_AVX2=1 "$ia")"
    l2=$(load); read -r bpp btg <<<"$(ours "$m" "$ia")"
    printf "| %s | %s | %s | %.1f | %.1f | %.1f | %.1f | %.2f | %s / %s |\n" "$round" "$o" "$act" \
      "$app" "$bpp" "$atg" "$btg" "$(echo "$btg / $atg" | bc -l)" "$l1" "$l2"
  done
done
