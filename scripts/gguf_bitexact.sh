#!/usr/bin/env bash
# gguf_bitexact.sh - our GGUF files against llama-quantize's, from the same f32 numbers: tensor by
# tensor (names, types, shapes, bytes: scripts/gguf_compare.py with the `gguf` PyPI package), then
# llama-perplexity on both (the same numbers are expected). Run by hand; never in CI (it needs the
# peer llama.cpp build and the venv). docs/RESULTS.md records its output.
#
#   scripts/gguf_bitexact.sh [TYPE...]     default: every type below
#
# Environment: LLAMA (llama.cpp bin dir), PY (python with gguf), BUILD (our build dir), INPUT (the
# f32 model: an HF directory), TOKGGUF (a GGUF whose tokenizer.* both files carry, so both
# tokenize alike), OUT (work dir), TEXT + CHUNKS (perplexity text and chunks of 512; CHUNKS=0
# skips perplexity), GGUF_INPUT=1 also quantizes from the F32 GGUF (quant-ptq reading GGUF),
# IMATRIX=FILE quantizes both with that importance matrix (llama-quantize --imatrix, quant-ptq
# --imatrix; a GGUF imatrix from quant-imatrix or llama-imatrix, or a legacy .dat).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
LLAMA=${LLAMA:-/work/llama.cpp/build/bin}
PY=${PY:-/work/venv/bin/python}
BUILD=${BUILD:-$here/build}
SHARED=${LQ_SHARED:-$here/../shared}
INPUT=${INPUT:-/work/cache/smollm2-f32}
TOKGGUF=${TOKGGUF:-$SHARED/models/SmolLM2-135M-Instruct-Q4_1/SmolLM2-135M-Instruct.Q4_1.gguf}
OUT=${OUT:-/tmp/gguf_bitexact}
TEXT=${TEXT:-$SHARED/data/wikitext-2-raw-v1.test.hfjoin.txt}
CHUNKS=${CHUNKS:-20}
THREADS=${THREADS:-2}
GGUF_INPUT=${GGUF_INPUT:-0}
IMATRIX=${IMATRIX:-}
IMQ=(); [ -n "$IMATRIX" ] && IMQ=(--imatrix "$IMATRIX")
TYPES=("$@")
[ ${#TYPES[@]} -eq 0 ] && TYPES=(F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 IQ4_NL IQ4_XS Q6_K Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M)

mkdir -p "$OUT"
ppl() { # file -> "PPL +/- err" (llama-perplexity's final estimate)
    "$LLAMA/llama-perplexity" -m "$1" -f "$TEXT" -c 512 --chunks "$CHUNKS" -t "$THREADS" 2>&1 |
        sed -n 's/.*Final estimate: PPL = \([0-9.]*\) +\/- \([0-9.]*\).*/\1 +\/- \2/p'
}

echo "== f32 GGUF from $INPUT (ours; the input of llama-quantize)"
"$BUILD/quant-convert" --model "$INPUT" --tokenizer "$TOKGGUF" --out "$OUT/f32.gguf" --force || exit 1
[ "$CHUNKS" -gt 0 ] && echo "f32: PPL $(ppl "$OUT/f32.gguf")"

fail=0
for t in "${TYPES[@]}"; do
    echo "== $t"
    "$LLAMA/llama-quantize" "${IMQ[@]}" "$OUT/f32.gguf" "$OUT/ref-$t.gguf" "$t" "$THREADS" >"$OUT/ref-$t.log" 2>&1 ||
        { echo "llama-quantize $t failed (see $OUT/ref-$t.log)"; fail=1; continue; }
    "$BUILD/quant-ptq" --format gguf --model "$INPUT" --type "$t" --tokenizer "$TOKGGUF" "${IMQ[@]}" \
        --out "$OUT/ours-$t.gguf" --threads "$THREADS" --force >"$OUT/ours-$t.log" 2>&1 ||
        { echo "quant-ptq $t failed: $(tail -1 "$OUT/ours-$t.log")"; fail=1; continue; }
    "$PY" "$here/scripts/gguf_compare.py" "$OUT/ours-$t.gguf" "$OUT/ref-$t.gguf" || fail=1
    if [ "$GGUF_INPUT" = 1 ]; then
        "$BUILD/quant-ptq" --format gguf --model "$OUT/f32.gguf" --type "$t" "${IMQ[@]}" --out "$OUT/oursg-$t.gguf" \
            --threads "$THREADS" --force >"$OUT/oursg-$t.log" 2>&1 &&
            echo "from the F32 GGUF:" && "$PY" "$here/scripts/gguf_compare.py" "$OUT/oursg-$t.gguf" "$OUT/ref-$t.gguf" | tail -1
    fi
    if [ "$CHUNKS" -gt 0 ]; then
        echo "llama-perplexity ($CHUNKS x 512): ours $(ppl "$OUT/ours-$t.gguf"), llama-quantize $(ppl "$OUT/ref-$t.gguf")"
    fi
done
exit $fail
