#!/bin/sh
# GPTQ on SmolLM2-135M f32: RTN vs quant-ptq --method gptq vs llm-compressor's GPTQModifier, same
# calibration tokens, scored with quant-eval (docs/RESULTS.md "GPTQ"). Run by hand, never in CI.
#
#   SMOL=/work/cache/smollm2-f32 OUT=/work/cache/gptq VENV=/work/venv scripts/results_gptq.sh [step...]
#   steps: calib rtn ours llmc eval (default: all, in that order)
#
# Calibration text: WikiText-2 test from the first line that starts after byte 400000 (the
# evaluation reads only the first 20 x 512 tokens, about 45 KB, so the two never overlap).
# SAMPLES x LEN tokens drawn by lq_calib_samples (seed 0), which scripts/gptq_llmc.py reproduces.
# GROUP 64: 576 (SmolLM2's hidden size) is not a multiple of 128, and llm-compressor refuses
# groups that do not divide the columns.
set -eu
SMOL=${SMOL:-/work/cache/smollm2-f32}
OUT=${OUT:-/work/cache/gptq}
VENV=${VENV:-/work/venv}
B=${B:-build}
SHARED=${LQ_SHARED:-../shared}
TEST=$SHARED/data/wikitext-2-raw-v1.test.hfjoin.txt
SAMPLES=${SAMPLES:-64} LEN=${LEN:-512} GROUP=${GROUP:-64} THREADS=${THREADS:-2} CHUNKS=${CHUNKS:-20}
ACTORDER=${ACTORDER:-static}
CALIB=$OUT/calib_wikitext_tail.txt
mkdir -p "$OUT"
steps=${*:-calib rtn ours llmc eval}
for step in $steps; do
    case $step in
    calib) tail -c +400001 "$TEST" | sed '1d' > "$CALIB" ;;
    rtn) rm -rf "$OUT/rtn-g$GROUP"
        "$B/quant-ptq" --model "$SMOL" --scheme W4A16 --group-size "$GROUP" --threads "$THREADS" \
            --out "$OUT/rtn-g$GROUP" ;;
    ours) rm -rf "$OUT/gptq-g$GROUP"
        /usr/bin/time -v "$B/quant-ptq" --model "$SMOL" --scheme W4A16 --group-size "$GROUP" --method gptq \
            --calib "$CALIB" --calib-samples "$SAMPLES" --calib-len "$LEN" --actorder "$ACTORDER" \
            --threads "$THREADS" --out "$OUT/gptq-g$GROUP" 2>&1 | tee "$OUT/gptq-g$GROUP.log" ;;
    llmc) rm -rf "$OUT/llmc-g$GROUP"
        /usr/bin/time -v "$VENV/bin/python" scripts/gptq_llmc.py "$SMOL" "$CALIB" "$OUT/llmc-g$GROUP" \
            --samples "$SAMPLES" --len "$LEN" --group "$GROUP" --threads "$THREADS" > "$OUT/llmc-g$GROUP.log" 2>&1 ;;
    eval) for m in rtn gptq llmc; do
            "$B/quant-eval" --model "$OUT/$m-g$GROUP" --file "$TEST" --kld "$SMOL" --chunks "$CHUNKS" \
                --threads "$THREADS" --json > "$OUT/eval-$m-g$GROUP.json"
            echo "$m: $(cat "$OUT/eval-$m-g$GROUP.json")"
        done ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
    esac
done
