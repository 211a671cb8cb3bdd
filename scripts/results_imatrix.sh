#!/usr/bin/env bash
# results_imatrix.sh - importance-matrix GGUF quantization of SmolLM2-135M against the plain files
# (docs/RESULTS.md "Importance matrices"). Run by hand, never in CI.
#
#   scripts/results_imatrix.sh [STEP...]     steps: imatrix peer compare quant eval (default: all)
#
# imatrix: quant-imatrix on the calibration text (WikiText-2 test after byte 400000) -> $OUT/ours.gguf
# peer:    llama-imatrix (our own build of the peer, $LLAMAIM) on the same model, text and chunks
# compare: scripts/imatrix_compare.py ours vs llama-imatrix (per-entry sums)
# quant:   quant-ptq --format gguf for each TYPE with and without --imatrix $OUT/ours.gguf
# eval:    quant-eval --kld against the f32 model, first $CHUNKS chunks of 512 of WikiText-2 test
# Environment: B (our build dir), SMOL (f32 HF dir), F32GGUF (the same as a GGUF), OUT, CHUNKS
# (eval, default 20), ICHUNKS (imatrix chunks, default 32), TYPES, THREADS, LLAMAIM, PY.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$here/build}
SMOL=${SMOL:-/work/cache/smollm2-f32}
F32GGUF=${F32GGUF:-/work/cache/peer/smollm2-f32.gguf}
OUT=${OUT:-/work/cache/imatrix}
SHARED=${LQ_SHARED:-$here/../shared}
TEST=$SHARED/data/wikitext-2-raw-v1.test.hfjoin.txt
CHUNKS=${CHUNKS:-20}
ICHUNKS=${ICHUNKS:-32}
THREADS=${THREADS:-2}
TYPES=${TYPES:-Q4_K_M Q3_K_M IQ4_XS}
LLAMAIM=${LLAMAIM:-/work/llama.cpp-imatrix/bin/llama-imatrix}
PY=${PY:-/work/venv/bin/python}
mkdir -p "$OUT"
CALIB=$OUT/calib.txt
[ -s "$CALIB" ] || tail -c +400001 "$TEST" | sed 1d > "$CALIB"
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(imatrix peer compare quant eval)
for step in "${steps[@]}"; do
    case $step in
    imatrix) /usr/bin/time -v "$B/quant-imatrix" --model "$F32GGUF" --calib "$CALIB" --chunks "$ICHUNKS" \
            --threads "$THREADS" --out "$OUT/ours.gguf" --force 2>&1 | tee "$OUT/ours.log" | grep -v "^\s" ;;
    peer) /usr/bin/time -v "$LLAMAIM" -m "$F32GGUF" -f "$CALIB" --chunks "$ICHUNKS" -c 512 -t "$THREADS" \
            -o "$OUT/llama.gguf" > "$OUT/llama.log" 2>&1; tail -3 "$OUT/llama.log" ;;
    compare) "$PY" "$here/scripts/imatrix_compare.py" "$OUT/ours.gguf" "$OUT/llama.gguf" ;;
    quant) for t in $TYPES; do
            "$B/quant-ptq" --format gguf --model "$F32GGUF" --type "$t" --threads "$THREADS" --force \
                --out "$OUT/plain-$t.gguf" > "$OUT/plain-$t.log"
            "$B/quant-ptq" --format gguf --model "$F32GGUF" --type "$t" --threads "$THREADS" --force \
                --imatrix "$OUT/ours.gguf" --out "$OUT/imat-$t.gguf" > "$OUT/imat-$t.log"
        done ;;
    eval) for t in $TYPES; do for k in plain imat; do
            "$B/quant-eval" --model "$OUT/$k-$t.gguf" --file "$TEST" --kld "$SMOL" --chunks "$CHUNKS" \
                --threads "$THREADS" --json > "$OUT/eval-$k-$t.json"
            echo "$k $t: $(cat "$OUT/eval-$k-$t.json")"
        done; done ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
    esac
done
