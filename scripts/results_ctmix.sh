#!/usr/bin/env bash
# results_ctmix.sh - quant-ptq --target-bpw for compressed-tensors output on SmolLM2-135M against
# the uniform presets of nearest size (docs/RESULTS.md "Automatic mixed precision to a target
# size"). Run by hand, never in CI.
#
#   scripts/results_ctmix.sh [STEP...]     steps: quant eval (default: both)
#
# quant: uniform W4A16 g128 (SmolLM2's 576-column projections per channel: --group-fallback
#        channel), g64 and g32 (RTN), and --target-bpw: 5.5 with the default candidates (W8A16,
#        W4A16 g128, W4A16 g32, W3A16 g128; g128 fits only down_proj's 1536 columns, so 4.5 is
#        below what they can reach: refused), 4.5 and 5.5 with groups of 64 and 32 added
#        (W8A16,W4A16:128,W4A16:64,W4A16:32,W3A16:128,W3A16:64,W3A16:32); the proxy weighted by
#        --calib (TinyStories sample: not the evaluation text), and 5.5 also unweighted
# eval:  quant-eval --kld against the f32 model, first $CHUNKS chunks of 512 of WikiText-2 test
# Environment: B (our build dir), SMOL (f32 HF dir: quant-convert of the shared Q4_1 GGUF), OUT,
# CHUNKS (default 5), THREADS (default 1).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$here/build}
SMOL=${SMOL:-/work/cache/smol-f32-ctmix}
OUT=${OUT:-/work/cache/ctmix}
SHARED=${LQ_SHARED:-/work/shared}
TEST=$SHARED/data/wikitext-2-raw-v1.test.hfjoin.txt
CALIB=$SHARED/data/tinystories_sample.txt
CHUNKS=${CHUNKS:-5}
THREADS=${THREADS:-1}
VARIANTS="w4a16-g128 w4a16-g64 w4a16-g32 mix-5.5-calib mix-5.5 mixg-4.5-calib mixg-5.5-calib"
WIDE=W8A16,W4A16:128,W4A16:64,W4A16:32,W3A16:128,W3A16:64,W3A16:32
mkdir -p "$OUT"
args() {
    case $1 in
    w4a16-g128) echo --scheme W4A16 --group-fallback channel ;;
    w4a16-g64) echo --scheme W4A16 --group-size 64 ;;
    w4a16-g32) echo --scheme W4A16 --group-size 32 ;;
    mix-*-calib) b=${1#mix-}; echo --target-bpw "${b%-calib}" --calib "$CALIB" ;;
    mix-*) echo --target-bpw "${1#mix-}" ;;
    mixg-*-calib) b=${1#mixg-}; echo --target-bpw "${b%-calib}" --scheme "$WIDE" --calib "$CALIB" ;;
    esac
}
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(quant eval)
for step in "${steps[@]}"; do
    case $step in
    quant) for v in $VARIANTS; do
            # shellcheck disable=SC2046
            "$B/quant-ptq" --model "$SMOL" $(args "$v") --threads "$THREADS" --force --json \
                --out "$OUT/$v" > "$OUT/$v.json"
        done ;;
    eval) for v in $VARIANTS; do
            "$B/quant-eval" --model "$OUT/$v" --file "$TEST" --kld "$SMOL" --chunks "$CHUNKS" \
                --threads "$THREADS" --json > "$OUT/$v.eval.json"
            python3 - "$OUT/$v.json" "$OUT/$v.eval.json" "$v" <<'PY'
import json, sys
q, e = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
k = {a: b for a, b in e.items() if not isinstance(b, (list, dict))}
print(sys.argv[3], f"bpw {q['bits_per_weight']:.4f}", {a: k[a] for a in sorted(k) if "ppl" in a or "kld" in a or "top" in a or "same" in a})
PY
        done ;;
    esac
done
