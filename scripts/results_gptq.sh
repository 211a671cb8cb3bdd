#!/bin/sh
# GPTQ on SmolLM2-135M f32: RTN vs quant-ptq --method gptq vs llm-compressor's GPTQModifier, same
# calibration tokens, scored with quant-eval (docs/RESULTS.md "GPTQ"). Run by hand, never in CI.
#
#   SMOL=/work/cache/smollm2-f32 OUT=/work/cache/gptq VENV=/work/venv-llmc scripts/results_gptq.sh [step...]
#   steps: calib rtn ours llmc eval (default: all, in that order)
#
# Calibration text: WikiText-2 test from the first line that starts after byte 400000 (the
# evaluation reads only the first 20 x 512 tokens, about 45 KB, so the two never overlap).
# SAMPLES x LEN tokens drawn by lq_calib_samples (seed 0), which scripts/gptq_llmc.py reproduces.
# GROUP 64: 576 (SmolLM2's hidden size) is not a multiple of 128, and llm-compressor refuses
# groups that do not divide the columns. SCHEME=W3A16 runs the 3-bit preset instead of W4A16 (its
# directories are prefixed "w3a16-"); FALLBACK=channel lets a GROUP that does not divide 576 (128)
# quantize those tensors per channel (--group-fallback channel); llmc runs it with --bits 3.
set -eu
SMOL=${SMOL:-/work/cache/smollm2-f32}
OUT=${OUT:-/work/cache/gptq}
VENV=${VENV:-/work/venv-llmc}
B=${B:-build}
SHARED=${LQ_SHARED:-../shared}
TEST=$SHARED/data/wikitext-2-raw-v1.test.hfjoin.txt
SAMPLES=${SAMPLES:-64} LEN=${LEN:-512} GROUP=${GROUP:-64} THREADS=${THREADS:-2} CHUNKS=${CHUNKS:-20}
ACTORDER=${ACTORDER:-static}
SCHEME=${SCHEME:-W4A16} FALLBACK=${FALLBACK:-refuse}
BITS=$( [ "$SCHEME" = W3A16 ] && echo 3 || echo 4 )
P=$( [ "$SCHEME" = W4A16 ] && echo "" || echo "$(echo "$SCHEME" | tr 'A-Z' 'a-z')-" )
CALIB=$OUT/calib_wikitext_tail.txt
mkdir -p "$OUT"
steps=${*:-calib rtn ours llmc eval}
for step in $steps; do
    case $step in
    calib) tail -c +400001 "$TEST" | sed '1d' > "$CALIB" ;;
    rtn) rm -rf "$OUT/${P}rtn-g$GROUP"
        "$B/quant-ptq" --model "$SMOL" --scheme "$SCHEME" --group-size "$GROUP" --group-fallback "$FALLBACK" \
            --threads "$THREADS" --out "$OUT/${P}rtn-g$GROUP" ;;
    ours) rm -rf "$OUT/${P}gptq-g$GROUP"
        /usr/bin/time -v "$B/quant-ptq" --model "$SMOL" --scheme "$SCHEME" --group-size "$GROUP" --method gptq \
            --group-fallback "$FALLBACK" --calib "$CALIB" --calib-samples "$SAMPLES" --calib-len "$LEN" \
            --actorder "$ACTORDER" --threads "$THREADS" --out "$OUT/${P}gptq-g$GROUP" 2>&1 | tee "$OUT/${P}gptq-g$GROUP.log" ;;
    llmc) rm -rf "$OUT/${P}llmc-g$GROUP"
        /usr/bin/time -v "$VENV/bin/python" scripts/gptq_llmc.py "$SMOL" "$CALIB" "$OUT/${P}llmc-g$GROUP" \
            --samples "$SAMPLES" --len "$LEN" --group "$GROUP" --bits "$BITS" --threads "$THREADS" \
            > "$OUT/${P}llmc-g$GROUP.log" 2>&1 ;;
    eval) for m in rtn gptq llmc; do
            [ -d "$OUT/$P$m-g$GROUP" ] || continue
            "$B/quant-eval" --model "$OUT/$P$m-g$GROUP" --file "$TEST" --kld "$SMOL" --chunks "$CHUNKS" \
                --threads "$THREADS" --json > "$OUT/eval-$P$m-g$GROUP.json"
            echo "$P$m: $(cat "$OUT/eval-$P$m-g$GROUP.json")"
        done ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
    esac
done
