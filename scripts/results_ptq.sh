#!/usr/bin/env bash
# PTQ results: quantize stories260K in every scheme quant-ptq offers, RTN and --clip-search side
# by side, and compare them with the f32 original (PPL, delta PPL, KL divergence, top-1
# agreement) on TinyStories (per story) and on the start of wikitext-2 (chunked); then the speed
# of quantized decode on the stories110M shape (random weights, quant-synth).
# The tables go to stdout (Markdown; the speed run's JSON also to $OUT/speed.json);
# docs/RESULTS.md and docs/PERFORMANCE.md quote them.
#
# Usage: scripts/results_ptq.sh [quality|speed|all]      (default all)
# Env: BUILD (build dir, default build), OUT (work dir, default out/results_ptq),
#      LQ_SHARED (shared models/data, default ../shared), THREADS (default: all CPUs),
#      WIKI_CHUNKS (wikitext chunks of 256 tokens, default 40), REPS (speed: bench reps, default 5).
#
# stories260K shapes limit the W4A16 groups: every projection but down_proj has 64 input
# columns and down_proj 172 (= 4 x 43), and compressed-tensors (so quant-ptq) requires the
# group size to divide the columns. So g32/g64 keep down_proj in W8A16 (--override), g128 is
# impossible, and "per-row" (--group-size -1: one group of 64 or 172) stands in for it.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
build=${BUILD:-build}
out=${OUT:-out/results_ptq}
shared=${LQ_SHARED:-../shared}
wiki_chunks=${WIKI_CHUNKS:-40}
threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")

if [ ! -x "$build/quant-ptq" ] || [ ! -x "$build/quant-eval" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j2 --target quant-eval quant-ptq quant-convert quant-synth
fi
mkdir -p "$out"

run() { echo "+ $*" >&2; "$@"; }

# quantize NAME ARGS...: $out/NAME from the f32 stories260K, unless it exists
quantize() {
  local name=$1; shift
  [ -f "$out/$name/config.json" ] || run "$build/quant-ptq" --model "$out/s260-f32" \
      --out "$out/$name" "${threads[@]}" "$@" >/dev/null
}

quality() {
  local bin=$shared/models/stories260K/stories260K.bin tok=$shared/models/stories260K/tok512.bin
  for dt in f32 bf16; do
    [ -f "$out/s260-$dt/config.json" ] || run "$build/quant-convert" --llama2c "$bin" \
        --tokenizer "$tok" --dtype "$dt" --out "$out/s260-$dt" >/dev/null
  done
  local down=(--override 're:.*down_proj$=W8A16')
  local dirs=("$out/s260-f32" "$out/s260-bf16")
  for clip in rtn clip; do
    local c=()
    [ "$clip" = clip ] && c=(--clip-search)
    quantize "w8a16-$clip" --scheme W8A16 "${c[@]}"
    quantize "fp8-$clip" --scheme FP8 "${c[@]}"
    quantize "w8a8-$clip" --scheme W8A8 "${c[@]}"
    for g in 32 64; do
      quantize "w4a16-g$g-sym-$clip" --scheme W4A16 --group-size "$g" --sym "${down[@]}" "${c[@]}"
      quantize "w4a16-g$g-asym-$clip" --scheme W4A16 --group-size "$g" --asym "${down[@]}" "${c[@]}"
    done
    quantize "w4a16-row-sym-$clip" --scheme W4A16 --group-size -1 --sym "${c[@]}"
    quantize "w4a16-row-asym-$clip" --scheme W4A16 --group-size -1 --asym "${c[@]}"
  done
  for s in w8a16 fp8 w8a8 w4a16-g32-sym w4a16-g32-asym w4a16-g64-sym w4a16-g64-asym \
           w4a16-row-sym w4a16-row-asym; do
    dirs+=("$out/$s-rtn" "$out/$s-clip")
  done

  echo "### TinyStories sample, per story"
  run "$build/quant-eval" --compare "${dirs[@]}" --file "$shared/data/tinystories_sample.txt" \
      --per-line --separator '<|endoftext|>' "${threads[@]}"
  echo
  echo "### wikitext-2 test, first $wiki_chunks chunks of 256 tokens"
  run "$build/quant-eval" --compare "${dirs[@]}" \
      --file "$shared/data/wikitext-2-raw-v1.test.hfjoin.txt" --ctx 256 --chunks "$wiki_chunks" \
      "${threads[@]}"
}

speed() {
  local tok=$shared/models/llama2-tokenizer/tokenizer.bin reps=${REPS:-5}
  for dt in f32 f16; do
    [ -f "$out/s110-$dt/config.json" ] || run "$build/quant-synth" --shape stories110M \
        --dtype "$dt" --out "$out/s110-$dt" >/dev/null
  done
  # s110ptq NAME ARGS...: quantize the f32 stories110M shape into $out/s110-NAME, unless it exists
  s110ptq() {
    local name=$1; shift
    [ -f "$out/s110-$name/config.json" ] || run "$build/quant-ptq" --model "$out/s110-f32" \
        --out "$out/s110-$name" "${threads[@]}" "$@" >/dev/null
  }
  # stories110M ties lm_head to the embedding. By default quant-ptq leaves the head in f32 (its
  # 98 MB are then most of what a W4A16 decode step reads: W4A16 can reach at most 438 / 142 =
  # 3.1x the f32 decode speed, W8A16 438 / 183 = 2.4x). "-head8" / "-head4" quantize it
  # (--override lm_head=...): written as its own lm_head, the embedding stays f32 but only one
  # row of it is read per token.
  s110ptq w8a16 --scheme W8A16
  s110ptq w8a16-head8 --scheme W8A16 --override lm_head=W8A16
  s110ptq w4a16-g128 --scheme W4A16 --group-size 128
  s110ptq w4a16-g128-head8 --scheme W4A16 --group-size 128 --override lm_head=W8A16
  s110ptq w4a16-g128-head4 --scheme W4A16 --group-size 128 --override lm_head=W4A16
  # random weights: the quality columns only show the models run; speed is the point here.
  # One --compare run benches all seven, so their ratios share the machine's state.
  echo "### stories110M shape (random weights), decode speed"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (before)"
  run "$build/quant-eval" --compare "$out/s110-f32" "$out/s110-f16" "$out/s110-w8a16" \
      "$out/s110-w8a16-head8" "$out/s110-w4a16-g128" "$out/s110-w4a16-g128-head8" \
      "$out/s110-w4a16-g128-head4" --tokenizer "$tok" --file "$shared/data/tinystories_sample.txt" \
      --ctx 64 --chunks 1 --bench --n-prompt 128 --n-gen 32 --reps "$reps" "${threads[@]}" --json \
      | tee "$out/speed.json" | python3 -c '
import json, sys
j = json.load(sys.stdin)
print("read bandwidth %.2f GB/s, %d threads" % (j["bandwidth_gb_s"], j["threads"]))
print("| model | format | bpw linear | weight MB/token | bound vs f32 | pp128 tok/s | tg32 tok/s | tg vs f32 | tg / BW bound |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
f32 = j["rows"][0]
for r in j["rows"]:
    print("| %s | %s | %.2f | %.1f | %.2fx | %.1f | %.2f | %.2fx | %.0f%% |" % (r["name"].split("/")[-1],
          r["format"], r["bpw_linear"], r["weight_bytes_per_token"] / 1e6,
          f32["weight_bytes_per_token"] / r["weight_bytes_per_token"], r["prefill_tok_s"],
          r["decode_tok_s"], r["decode_tok_s"] / f32["decode_tok_s"], 100 * r["decode_bandwidth_ratio"]))'
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (after)"
}

case "$what" in
  quality) quality ;;
  speed) speed ;;
  all) quality; echo; speed ;;
  *) echo "usage: $0 [quality|speed|all]" >&2; exit 2 ;;
esac
