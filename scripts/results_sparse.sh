#!/bin/sh
# Wanda / SparseGPT on SmolLM2-135M f32: magnitude vs quant-prune --method wanda|sparsegpt vs
# llm-compressor's WandaPruningModifier / SparseGPTModifier (scripts/sparse_llmc.py), same
# calibration tokens, scored with quant-eval --kld against the f32 model (docs/RESULTS.md
# "SparseGPT and Wanda"). Run by hand, never in CI.
#
#   SMOL=/work/cache/smollm2-f32 OUT=/work/cache/sparse VENV=/work/venv-llmc scripts/results_sparse.sh [step...]
#   steps: calib mag ours llmc eval (default: calib mag ours eval; llmc is slow on a CPU)
#
# Calibration text: WikiText-2 test from the first line that starts after byte 400000 (the
# evaluation reads only the first 20 x 512 tokens, about 45 KB, so the two never overlap);
# SAMPLES x LEN tokens drawn by lq_calib_samples (seed 0), which scripts/sparse_llmc.py reproduces.
set -eu
SMOL=${SMOL:-/work/cache/smollm2-f32}
OUT=${OUT:-/work/cache/sparse}
VENV=${VENV:-/work/venv-llmc}
B=${B:-build}
SHARED=${LQ_SHARED:-../shared}
TEST=$SHARED/data/wikitext-2-raw-v1.test.hfjoin.txt
SAMPLES=${SAMPLES:-16} LEN=${LEN:-512} THREADS=${THREADS:-2} CHUNKS=${CHUNKS:-20}
CALIB=$OUT/calib_wikitext_tail.txt
mkdir -p "$OUT"
steps=${*:-calib mag ours eval}
for step in $steps; do
    case $step in
    calib) tail -c +400001 "$TEST" | sed '1d' > "$CALIB" ;;
    mag) rm -rf "$OUT/mag50" "$OUT/mag24"
        "$B/quant-prune" --model "$SMOL" --method magnitude --sparsity 0.5 --out "$OUT/mag50" > "$OUT/mag50.log"
        "$B/quant-prune" --model "$SMOL" --method nm --nm 2:4 --out "$OUT/mag24" > "$OUT/mag24.log" ;;
    ours) for m in wanda sparsegpt; do
            for p in 50 24; do
                if [ $p = 50 ]; then mask="--sparsity 0.5"; else mask="--pattern 2:4"; fi
                rm -rf "$OUT/$m$p"
                /usr/bin/time -v "$B/quant-prune" --model "$SMOL" --method $m $mask --calib "$CALIB" \
                    --calib-samples "$SAMPLES" --calib-len "$LEN" --threads "$THREADS" --out "$OUT/$m$p" \
                    > "$OUT/$m$p.log" 2>&1
            done
        done ;;
    llmc) for c in "sparsegpt 0:0 sgpt50" "wanda 0:0 wanda50" "sparsegpt 2:4 sgpt24" "wanda 2:4 wanda24"; do
            set -- $c
            rm -rf "$OUT/llmc-$3"
            /usr/bin/time -v "$VENV/bin/python" scripts/sparse_llmc.py "$SMOL" "$CALIB" "$OUT/llmc-$3" --method $1 \
                --mask $2 --samples "$SAMPLES" --len "$LEN" --threads "$THREADS" > "$OUT/llmc-$3.log" 2>&1
        done ;;
    eval) for m in mag50 mag24 wanda50 wanda24 sparsegpt50 sparsegpt24 llmc-sgpt50 llmc-wanda50 llmc-sgpt24 \
                   llmc-wanda24; do
            [ -f "$OUT/$m/config.json" ] || continue
            "$B/quant-eval" --model "$OUT/$m" --file "$TEST" --kld "$SMOL" --chunks "$CHUNKS" \
                --threads "$THREADS" --json > "$OUT/eval-$m.json"
            echo "$m: $(cat "$OUT/eval-$m.json")"
        done ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
    esac
done
