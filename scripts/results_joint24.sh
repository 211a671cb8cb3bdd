#!/usr/bin/env bash
# 2:4 sparse + W4A16 on TinyStories-656K (shared): pruned and quantized in one GPTQ sweep
# (quant-ptq --method gptq --pattern 2:4) against the two-pass recipes (SparseGPT 2:4 then RTN or
# GPTQ) and against W4A16 alone, scored by quant-eval --compare against the f32 model on the shared
# TinyStories sample (per story), calibrated on the head of WikiText-2 (text not scored).
#   scripts/results_joint24.sh            (B = build dir, OUT = scratch dir, THREADS)
# docs/RESULTS.md "2:4 + W4A16 in one sweep" has the table it printed.
set -eu
cd "$(dirname "$0")/.."
SHARED=${LQ_SHARED:-../shared}
M=${M:-$SHARED/models/TinyStories-656K}
B=${B:-build} OUT=${OUT:-/tmp/lq_joint24} THREADS=${THREADS:-2}
SAMPLES=${SAMPLES:-32} LEN=${LEN:-256}
mkdir -p "$OUT"
CALIB=$OUT/calib_wikitext_head48k.txt
head -c 49152 "$SHARED/data/wikitext-2-raw-v1.test.hfjoin.txt" > "$CALIB"
CAL=(--calib "$CALIB" --calib-samples "$SAMPLES" --calib-len "$LEN" --threads "$THREADS")
run() { name=$1; shift; rm -rf "${OUT:?}/$name"; "$@" --out "$OUT/$name" > "$OUT/$name.log" 2>&1 ||
        { echo "$name failed: $OUT/$name.log" >&2; exit 1; }; }
run w4g32-rtn "$B/quant-ptq" --model "$M" --scheme W4A16 --group-size 32 ${GF:-} --threads "$THREADS"
run w4g32-gptq "$B/quant-ptq" --model "$M" --scheme W4A16 --group-size 32 ${GF:-} --method gptq "${CAL[@]}"
run sgpt24 "$B/quant-prune" --model "$M" --method sparsegpt --pattern 2:4 "${CAL[@]}"
run sgpt24-then-rtn "$B/quant-ptq" --model "$OUT/sgpt24" --scheme W4A16 --group-size 32 ${GF:-} --threads "$THREADS"
run sgpt24-then-gptq "$B/quant-ptq" --model "$OUT/sgpt24" --scheme W4A16 --group-size 32 ${GF:-} --method gptq "${CAL[@]}"
run joint24-gptq "$B/quant-ptq" --model "$M" --scheme W4A16 --group-size 32 ${GF:-} --method gptq --pattern 2:4 "${CAL[@]}"
"$B/quant-eval" --compare "$M" "$OUT/w4g32-rtn" "$OUT/w4g32-gptq" "$OUT/sgpt24" "$OUT/sgpt24-then-rtn" \
    "$OUT/sgpt24-then-gptq" "$OUT/joint24-gptq" --tokenizer "${TOK:-$M/tokenizer.json}" \
    --file "$SHARED/data/tinystories_sample.txt" --per-line --separator '<|endoftext|>' --threads "$THREADS"
