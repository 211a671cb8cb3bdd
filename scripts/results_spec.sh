#!/bin/bash
# Speculative decoding on SmolLM2-135M (docs/RESULTS.md "Speculative decoding", docs/PERFORMANCE.md
# "Speculative decoding"): every compressed variant as the draft of the dequantized f32 model
# (quant-eval --draft-eval) next to its KLD (quant-eval --kld), then the speedup of GGUF drafts
# for the f32 target (quant-run --draft, greedy; the target alone runs right after on the same
# prompt in the same process).
#
#   BIN=build OUT=/tmp/spec F32=<smollm2 f32 dir> PEER=<dir of llama-quantize's smollm2-*.gguf> \
#     CHUNKS=8 scripts/results_spec.sh [accept|speedup|all]
#
# The W8A16 / W4A16 g32 / g64 / W8A8 variants are made with quant-ptq (RTN, defaults) from F32.
# Everything is nice'd; the load average is logged with every step (the machine is shared).
set -euo pipefail
BIN=${BIN:-build}
OUT=${OUT:-/tmp/spec}
F32=${F32:-/work/cache/smollm2-f32}
PEER=${PEER:-/work/cache/peer}
CHUNKS=${CHUNKS:-8}
TEXT=${TEXT:-../shared/data/wikitext-2-raw-v1.test.hfjoin.txt}
THREADS=${THREADS:-2}
what=${1:-all}
mkdir -p "$OUT"
log() { echo "$* $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/log.txt"; }

variants() {
    for v in "W8A16:w8a16" "W4A16 --group-size 32:w4a16-g32" "W4A16 --group-size 64:w4a16-g64" "W8A8:w8a8"; do
        dir=$OUT/${v#*:}
        [ -d "$dir" ] || nice "$BIN/quant-ptq" --model "$F32" --scheme ${v%%:*} --out "$dir" >/dev/null
        echo "$dir"
    done
    for t in q8_0 q4_k_m q4_0; do echo "$PEER/smollm2-$t.gguf"; done
}

if [ "$what" = accept ] || [ "$what" = all ]; then
    for v in $(variants); do
        n=$(basename "$v" .gguf)
        log "$n draft-eval"
        nice "$BIN/quant-eval" --model "$v" --file "$TEXT" --draft-eval "$F32" --chunks "$CHUNKS" \
            --threads "$THREADS" --json > "$OUT/draft-$n.json"
        log "$n kld"
        nice "$BIN/quant-eval" --model "$v" --file "$TEXT" --kld "$F32" --chunks "$CHUNKS" \
            --threads "$THREADS" --json > "$OUT/kld-$n.json"
    done
fi

if [ "$what" = speedup ] || [ "$what" = all ]; then
    # three prompts of 600 bytes from the text; 64 greedy tokens; K = 1, 2, 4; three rounds
    for i in 1 2 3; do head -c $((i * 3000)) "$TEXT" | tail -c 600 > "$OUT/prompt$i.txt"; done
    for round in 1 2 3; do
        for d in q4_0 q8_0; do
            for k in 1 2 4; do
                log "speedup round $round draft $d K $k"
                nice "$BIN/quant-run" --model "$F32" --draft "$PEER/smollm2-$d.gguf" --draft-max $k \
                    --prompt-file "$OUT/prompt$round.txt" --max-tokens 64 --threads "$THREADS" \
                    --json > "$OUT/sp-$round-$d-$k.json"
            done
        done
    done
fi
log done
