#!/usr/bin/env bash
# results_rtn.sh - issue 18: the symmetric scale rules (amax / signed-max) and the clip search
# (no data / calibrated) at every W4A16 group size, scored by KL divergence against f32.
#
#   BUILD=build OUT=/work/cache/rtn scripts/results_rtn.sh s260      # stories260K (seconds)
#   SMOL=/work/cache/smollm2-f32 BUILD=build OUT=/work/cache/rtn scripts/results_rtn.sh smollm [VARIANT...]
#   (smollm env: HEAD = the head's scheme, W4A16 by default; W8A16 matches llama-quantize's Q4_0,
#    whose tied head stays Q8_0; TOKENIZER = a tokenizer for both models and calibration, e.g. the
#    shared .gguf, instead of the directory's; CHUNKS (default 40); CALIB_TEXT for the *-calib
#    variants)
#
# s260: every variant of stories260K, as docs/RESULTS.md's PTQ tables (down_proj W8A16 at
# g32/g64, whose 172 columns no group divides; head in float), wikitext ctx 256, 40 chunks.
# smollm: SmolLM2-135M f32 (scripts/gguf_to_hf.py of the shared Q4_1 GGUF), every Linear and the
# head W4A16, wikitext ctx 512, 40 chunks, one quant-eval --kld per variant (KLD vs f32);
# VARIANT = g32-amax-rtn, g64-signed-max-clip, row-signed-max-calib, ... (default: all rtn/clip).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
out=${OUT:-out/results_rtn}
shared=${LQ_SHARED:-../shared}
threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")
wiki=$shared/data/wikitext-2-raw-v1.test.hfjoin.txt
mkdir -p "$out"
run() { echo "+ $*" >&2; "$@"; }

# variant name -> quant-ptq options: g<N>|row - amax|signed-max - rtn|clip|calib
opts_of() {
  local g=${1%%-*} rest=${1#*-} mode=${1##*-}
  local rule=${rest%-*}
  local o=(--scheme W4A16 --sym --rounding "$rule")
  if [ "$g" = row ]; then o+=(--group-size -1); else o+=(--group-size "${g#g}"); fi
  case $mode in
    clip) o+=(--clip-search) ;;
    calib) o+=(--clip-search --calib "$wiki_calib"
               --calib-tokens "${CALIB_TOKENS:-16384}" ${TOKENIZER:+--tokenizer "$TOKENIZER"}) ;;
  esac
  echo "${o[@]}"
}

s260() {
  local bin=$shared/models/stories260K/stories260K.bin tok=$shared/models/stories260K/tok512.bin
  local base=$out/s260-f32
  [ -f "$base/config.json" ] || run "$build/quant-convert" --llama2c "$bin" --tokenizer "$tok" \
      --out "$base" >/dev/null
  wiki_calib=$shared/data/tinystories_sample.txt
  local dirs=("$base")
  for g in g32 g64 row; do
    for rule in amax signed-max; do
      for mode in rtn clip ${S260_MODES:-}; do
        local v=$g-$rule-$mode d=$out/s260-$g-$rule-$mode
        local extra=()
        [ "$g" != row ] && extra=(--override 're:.*down_proj$=W8A16')
        # shellcheck disable=SC2046
        [ -f "$d/config.json" ] || run "$build/quant-ptq" --model "$base" --out "$d" \
            $(opts_of "$v") "${extra[@]}" "${threads[@]}" >/dev/null
        dirs+=("$d")
      done
    done
  done
  run "$build/quant-eval" --compare "${dirs[@]}" --file "$wiki" --ctx 256 --chunks 40 "${threads[@]}"
}

smollm() {
  local base=${SMOL:?set SMOL to the f32 SmolLM2 directory (scripts/gguf_to_hf.py)}
  wiki_calib=${CALIB_TEXT:-}
  local tok=()
  [ -n "${TOKENIZER:-}" ] && tok=(--tokenizer "$TOKENIZER" --base-tokenizer "$TOKENIZER")
  local variants=("$@")
  [ ${#variants[@]} -gt 0 ] || variants=(g32-amax-rtn g32-signed-max-rtn g32-signed-max-clip
      g64-signed-max-rtn g64-signed-max-clip g128-signed-max-rtn g128-signed-max-clip
      row-signed-max-rtn row-signed-max-clip)
  for v in "${variants[@]}"; do
    [[ $v == *-calib && -z $wiki_calib ]] && { echo "results_rtn: $v needs CALIB_TEXT" >&2; exit 2; }
    local d=$out/smol-$v${HEAD:+-head-$HEAD}
    # shellcheck disable=SC2046
    [ -f "$d/config.json" ] || run "$build/quant-ptq" --model "$base" --out "$d" $(opts_of "$v") \
        --override "lm_head=${HEAD:-W4A16}" "${threads[@]}" --json > "$d.ptq.json"
    [ -s "$d.kld.json" ] || { echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2;
      run nice "$build/quant-eval" --model "$d" "${tok[@]}" --kld "$base" --file "$wiki" --ctx 512 \
          --chunks "${CHUNKS:-40}" "${threads[@]}" --json > "$d.kld.json"; }
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("| %s | %.6f ± %.6f | %.2f | %.4f | %.4f |" % (sys.argv[2], j["kld"]["mean"], j["kld"]["stderr"], 100*j["same_top"], j["ppl"], j["ppl_base"]))' "$d.kld.json" "$v"
  done
}

what=${1:-s260}
shift || true
"$what" "$@"
