#!/usr/bin/env bash
# llamacpp_refs.sh - the peer's reference numbers for issue 12, made with llama.cpp itself.
# NEVER run in CI and never a test dependency: it needs a llama.cpp build (the llama-cpp-python
# sdist's vendor/llama.cpp, see /work/llama.cpp/NOTES.md on the dev machine), Gemma-3-270M
# (scripts/fetch_gemma3.sh) and tens of minutes on 2 cores. Its outputs are the numbers in
# docs/RESULTS.md ("llama.cpp reference numbers") and docs/PERFORMANCE.md ("llama.cpp on this machine").
#
#   LLAMA_CPP_BIN=/work/llama.cpp/build/bin OUT=/work/cache/peer scripts/peer/llamacpp_refs.sh [STEP...]
#
# STEP (default: all, in this order):
#   quant  SmolLM2-135M-Instruct: the shared Q4_1 GGUF dequantized to F32 (llama-quantize
#          --allow-requantize ... F32), then that F32 file quantized (no imatrix) to each of TYPES
#          -> $OUT/smollm2-<type>.gguf, sizes and sha256 in $OUT/quant.txt
#   ppl    llama-perplexity -t $T -c 512 --chunks 20 on WikiText-2 (shared .hfjoin.txt) for the
#          shared Q4_1, F32, Q8_0, Q4_0, Q4_K_M and Gemma-3-270M Q4_K_M -> $OUT/ppl-<name>.log
#   kld    --kl-divergence-base of F32 ($OUT/smollm2-f32.kld), then --kl-divergence of Q8_0,
#          Q4_0, Q4_K_M against it -> $OUT/kld-<name>.log
#   bench  llama-bench -t $T -p 512 -n 128 -r $R (default 3) on Q4_1 (shared), F32, Q8_0, Q4_0, Q4_K_M, Gemma
#          -> $OUT/bench.md (machine load from uptime before and after)
# Env: LQ_SHARED (default ../shared), T (threads, default 2), R (llama-bench repetitions, default 3), TYPES (default below), GEMMA (path of
# the Gemma-3-270M GGUF; default: scripts/fetch_gemma3.sh's cached file, fetched if absent).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${LLAMA_CPP_BIN:?set LLAMA_CPP_BIN to the llama.cpp build/bin folder}
out=${OUT:-out/llamacpp_refs}
shared=${LQ_SHARED:-../shared}
t=${T:-2}
r=${R:-3}
types=${TYPES:-Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K_M Q4_K_S Q5_K_M Q3_K_M Q2_K Q6_K IQ4_NL}
src=$shared/models/SmolLM2-135M-Instruct-Q4_1/SmolLM2-135M-Instruct.Q4_1.gguf
wiki=$shared/data/wikitext-2-raw-v1.test.hfjoin.txt
for f in "$bin/llama-quantize" "$bin/llama-perplexity" "$bin/llama-bench"; do
  [ -x "$f" ] || { echo "llamacpp_refs.sh: error: no $f" >&2; exit 1; }
done
[ -f "$src" ] && [ -f "$wiki" ] || { echo "llamacpp_refs.sh: error: no $src or $wiki (LQ_SHARED?)" >&2; exit 1; }
mkdir -p "$out"
run() { echo "+ $*" >&2; "$@"; }
lc() { tr 'A-Z' 'a-z' <<<"$1"; }
model() { echo "$out/smollm2-$(lc "$1").gguf"; }
gemma() {
  [ -n "${GEMMA:-}" ] && { echo "$GEMMA"; return; }
  scripts/fetch_gemma3.sh
}

step_quant() {
  local f32 ty
  f32=$(model F32)
  [ -f "$f32" ] || { run "$bin/llama-quantize" --allow-requantize "$src" "$f32.tmp" F32 "$t" > "$out/quant-f32.log" 2>&1 &&
                     mv "$f32.tmp" "$f32"; }
  for ty in $types; do
    local m
    m=$(model "$ty")
    [ -f "$m" ] && continue
    # llama-quantize refuses some types without an imatrix: logged, not fatal.
    if run "$bin/llama-quantize" "$f32" "$m.tmp" "$ty" "$t" > "$out/quant-$(lc "$ty").log" 2>&1; then
      mv "$m.tmp" "$m"
    else
      rm -f "$m.tmp"
      echo "llama-quantize refused $ty: $(grep -m1 -iE 'error|imatrix' "$out/quant-$(lc "$ty").log" || echo see log)" >&2
    fi
  done
  { printf '%-10s %12s %s\n' type bytes sha256
    for ty in F32 $types; do
      local m
      m=$(model "$ty")
      [ -f "$m" ] && printf '%-10s %12s %s\n' "$ty" "$(stat -c %s "$m")" "$(sha256sum "$m" | cut -d' ' -f1)"
    done; } > "$out/quant.txt"
  cat "$out/quant.txt"
}

ppl_models() { echo "q4_1-shared=$src"; for ty in F32 Q8_0 Q4_0 Q4_K_M; do echo "$(lc "$ty")=$(model "$ty")"; done
               echo "gemma3-q4_k_m=$(gemma)"; }

step_ppl() {
  local nm
  for nm in $(ppl_models); do
    run "$bin/llama-perplexity" -m "${nm#*=}" -f "$wiki" -t "$t" -c 512 --chunks 20 > "$out/ppl-${nm%%=*}.log" 2>&1
    echo "${nm%%=*}: $(grep 'Final estimate' "$out/ppl-${nm%%=*}.log")"
  done
}

step_kld() {
  local base=$out/smollm2-f32.kld ty
  [ -f "$base" ] || { run "$bin/llama-perplexity" -m "$(model F32)" -f "$wiki" -t "$t" -c 512 --chunks 20 \
                        --kl-divergence-base "$base.tmp" > "$out/kld-base.log" 2>&1 && mv "$base.tmp" "$base"; }
  for ty in Q8_0 Q4_0 Q4_K_M; do
    run "$bin/llama-perplexity" -m "$(model "$ty")" -t "$t" --kl-divergence-base "$base" --kl-divergence \
      > "$out/kld-$(lc "$ty").log" 2>&1
    echo "$ty: $(grep -E 'Mean +KLD' "$out/kld-$(lc "$ty").log") | $(grep 'Same top p' "$out/kld-$(lc "$ty").log")"
  done
}

step_bench() {
  local args=() nm
  for nm in $(ppl_models); do args+=(-m "${nm#*=}"); done
  { echo "load before: $(uptime)"
    run "$bin/llama-bench" -t "$t" -p 512 -n 128 -r "$r" -o md "${args[@]}"
    echo "load after: $(uptime)"; } > "$out/bench.md" 2> "$out/bench.log"
  cat "$out/bench.md"
}

[ $# -gt 0 ] || set -- quant ppl kld bench
for s in "$@"; do
  case $s in
    quant|ppl|kld|bench) "step_$s" ;;
    *) echo "llamacpp_refs.sh: error: unknown step $s (quant ppl kld bench)" >&2; exit 2 ;;
  esac
done
