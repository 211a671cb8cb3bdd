#!/usr/bin/env bash
# Pruning results: prune stories260K every way quant-prune offers and compare each output with the
# dense model (PPL, delta PPL, KL divergence, top-1 agreement, size on disk) on TinyStories (per
# story); then decode speed on the stories110M shape (random weights, quant-synth): dense f32 vs
# 50% of FFN neurons removed vs 50% unstructured magnitude, benched in ONE quant-eval --compare
# run so the ratios share the machine's state.
# docs/RESULTS.md and docs/PERFORMANCE.md ("Pruning") quote the tables.
#
# Usage: scripts/results_prune.sh [quality|speed|all]      (default all)
# Env: BUILD (build dir, default build), OUT (work dir, default out/results_prune),
#      LQ_SHARED (shared models/data, default ../shared), THREADS (default: all CPUs).
#
# stories260K's down_proj has 172 input columns (4 x 43): 4:8 cannot tile it, so the 4:8 run
# leaves down_proj dense (--ignore down_proj) and says so in its name.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
build=${BUILD:-build}
out=${OUT:-out/results_prune}
shared=${LQ_SHARED:-../shared}
threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")

if [ ! -x "$build/quant-prune" ] || [ ! -x "$build/quant-eval" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j2 --target quant-eval quant-prune quant-convert quant-synth
fi
mkdir -p "$out"

run() { echo "+ $*" >&2; "$@"; }

# prune SRC NAME ARGS...: $out/NAME from SRC, unless it exists
prune() {
  local src=$1 name=$2; shift 2
  [ -f "$out/$name/config.json" ] || run "$build/quant-prune" --model "$src" --out "$out/$name" "$@" >/dev/null
}

quality() {
  local bin=$shared/models/stories260K/stories260K.bin tok=$shared/models/stories260K/tok512.bin
  local dense=$out/s260-f32
  [ -f "$dense/config.json" ] || run "$build/quant-convert" --llama2c "$bin" --tokenizer "$tok" \
      --out "$dense" >/dev/null
  local dirs=("$dense")
  for s in 10 20 30 40 50 60 70; do
    prune "$dense" "magnitude-$s" --method magnitude --sparsity "0.$s" --bitmask
    dirs+=("$out/magnitude-$s")
  done
  # --bitmask: the sizes in docs/RESULTS.md are those of the sparse-bitmask layouts
  prune "$dense" magnitude-50-global --method magnitude --sparsity 0.5 --global --bitmask
  prune "$dense" nm-2of4 --method nm --nm 2:4 --bitmask
  prune "$dense" nm-4of8-down-dense --method nm --nm 4:8 --ignore down_proj --bitmask
  dirs+=("$out/magnitude-50-global" "$out/nm-2of4" "$out/nm-4of8-down-dense")
  for s in 10 20 30 40 50; do
    prune "$dense" "ffn-minus$s" --method ffn --sparsity "0.$s"
    dirs+=("$out/ffn-minus$s")
  done
  prune "$dense" heads-minus25 --method heads --sparsity 0.25
  prune "$dense" heads-minus50 --method heads --sparsity 0.5
  dirs+=("$out/heads-minus25" "$out/heads-minus50")
  echo "### TinyStories sample, per story"
  run "$build/quant-eval" --compare "${dirs[@]}" --file "$shared/data/tinystories_sample.txt" \
      --per-line --separator '<|endoftext|>' "${threads[@]}"
  echo
  echo "### size on disk (model.safetensors bytes)"
  for d in "${dirs[@]}"; do printf '%s %s\n' "$(basename "$d")" "$(stat -c %s "$d/model.safetensors")"; done
}

speed() {
  local tok=$shared/models/llama2-tokenizer/tokenizer.bin
  [ -f "$out/s110-f32/config.json" ] || run "$build/quant-synth" --shape stories110M --dtype f32 \
      --out "$out/s110-f32" >/dev/null
  prune "$out/s110-f32" s110-ffn-minus50 --method ffn --sparsity 0.5
  prune "$out/s110-f32" s110-magnitude-50 --method magnitude --sparsity 0.5
  echo "### stories110M shape (random weights), decode speed"
  run "$build/quant-eval" --compare "$out/s110-f32" "$out/s110-ffn-minus50" "$out/s110-magnitude-50" \
      --tokenizer "$tok" --file "$shared/data/tinystories_sample.txt" --ctx 64 --chunks 1 \
      --bench --n-prompt 128 --n-gen 32 --reps 5 "${threads[@]}" --json \
      | tee "$out/speed.json" | python3 -c '
import json, sys
j = json.load(sys.stdin)
print("read bandwidth %.2f GB/s, %d threads" % (j["bandwidth_gb_s"], j["threads"]))
print("| model | weight MB/token | size MB | pp128 tok/s | tg32 tok/s | tg vs dense |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
base = j["rows"][0]["decode_tok_s"]
for r in j["rows"]:
    print("| %s | %.1f | %.1f | %.1f | %.2f | %.2fx |" % (r["name"], r["weight_bytes_per_token"] / 1e6,
          r.get("size_bytes", 0) / 1e6, r["prefill_tok_s"], r["decode_tok_s"], r["decode_tok_s"] / base))'
}

case "$what" in
  quality) quality ;;
  speed) speed ;;
  all) quality; echo; speed ;;
  *) echo "usage: $0 [quality|speed|all]" >&2; exit 2 ;;
esac
