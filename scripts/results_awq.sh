#!/bin/sh
# AWQ and SmoothQuant on SmolLM2-135M f32 (docs/RESULTS.md "AWQ and SmoothQuant"): quant-ptq
# --method awq vs RTN (W4A16 g64), --method smoothquant W8A8 vs RTN W8A8, and llm-compressor's
# AWQModifier / SmoothQuantModifier on the same calibration windows, scored with quant-eval --kld.
# Run by hand, never in CI.
#
#   SMOL=/work/cache/smollm2-f32 OUT=/work/cache/awq VENV=/work/venv-llmc scripts/results_awq.sh [step...]
#   steps: calib rtn awq rtn8 sq llmc-awq llmc-sq eval (default: all, in that order)
#
# Calibration text: WikiText-2 test from the first line that starts after byte 400000 (the
# evaluation reads only its first 20 x 512 tokens, about 45 KB), as scripts/results_gptq.sh.
# GROUP 64: 576 (SmolLM2's hidden size) is not a multiple of 128.
set -eu
SMOL=${SMOL:-/work/cache/smollm2-f32}
OUT=${OUT:-/work/cache/awq}
VENV=${VENV:-/work/venv-llmc}
B=${B:-build}
SHARED=${LQ_SHARED:-../shared}
TEST=$SHARED/data/wikitext-2-raw-v1.test.hfjoin.txt
SAMPLES=${SAMPLES:-16} AWQ_SAMPLES=${AWQ_SAMPLES:-$SAMPLES} LEN=${LEN:-512} GROUP=${GROUP:-64}
THREADS=${THREADS:-2} CHUNKS=${CHUNKS:-20}
CALIB=$OUT/calib_wikitext_tail.txt
mkdir -p "$OUT"
steps=${*:-calib rtn awq rtn8 sq llmc-awq llmc-sq eval}
ptq() { name=$1; shift; rm -rf "$OUT/$name"
    /usr/bin/time -v "$B/quant-ptq" --model "$SMOL" --threads "$THREADS" --out "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1; }
for step in $steps; do
    case $step in
    calib) tail -c +400001 "$TEST" | sed '1d' > "$CALIB" ;;
    rtn) ptq rtn-g$GROUP --scheme W4A16 --group-size "$GROUP" ;;
    awq) ptq awq-g$GROUP --scheme W4A16 --group-size "$GROUP" --method awq --calib "$CALIB" \
            --calib-samples "$AWQ_SAMPLES" --calib-len "$LEN" ;;
    rtn8) ptq rtn-w8a8 --scheme W8A8 ;;
    sq) ptq sq-w8a8 --scheme W8A8 --method smoothquant --calib "$CALIB" --calib-samples "$SAMPLES" --calib-len "$LEN" ;;
    llmc-awq) rm -rf "$OUT/llmc-awq-g$GROUP"
        /usr/bin/time -v "$VENV/bin/python" scripts/awq_llmc.py awq "$SMOL" "$CALIB" "$OUT/llmc-awq-g$GROUP" \
            --samples "$AWQ_SAMPLES" --len "$LEN" --group "$GROUP" --threads "$THREADS" > "$OUT/llmc-awq-g$GROUP.log" 2>&1 ;;
    llmc-sq) rm -rf "$OUT/llmc-sq-w8a8"
        /usr/bin/time -v "$VENV/bin/python" scripts/awq_llmc.py smoothquant "$SMOL" "$CALIB" "$OUT/llmc-sq-w8a8" \
            --samples "$SAMPLES" --len "$LEN" --threads "$THREADS" > "$OUT/llmc-sq-w8a8.log" 2>&1 ;;
    eval) for m in rtn-g$GROUP awq-g$GROUP llmc-awq-g$GROUP rtn-w8a8 sq-w8a8 llmc-sq-w8a8; do
            [ -d "$OUT/$m" ] || { echo "$m: not there"; continue; }
            "$B/quant-eval" --model "$OUT/$m" --file "$TEST" --kld "$SMOL" --chunks "$CHUNKS" \
                --threads "$THREADS" --json > "$OUT/eval-$m.json"
            echo "$m: $(grep -E '"(ppl|delta_ppl_pct)"|"mean"|same_top' "$OUT/eval-$m.json" | tr -d '\n ')"
        done ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
    esac
done
