#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build with CUDA, run the device tests, the GEMV workbench and
# the whole-model numbers the CUDA issue asks for, in one command. Prints everything; paste the
# results into docs/PERFORMANCE.md (device, commands, numbers). Nothing here was run on a GPU yet.
#
#   bench/cuda_workbench/run_gpu.sh [BUILD_DIR]      (default build-cuda; LQ_SHARED as for tests)
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build-cuda}
SHARED=${LQ_SHARED:-$(cd .. && pwd)/shared}
cmake -S . -B "$B" -DQUANT_CUDA=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$B" -j"$(nproc)"
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory --format=csv || true

echo "== 1. every CUDA kernel against its CPU _ref (test_cuda) =="
"$B/test_cuda" --jobs 1 --verbose

echo "== 2. GEMV workbench: Llama-3.2-1B / Llama-2-7B layer shapes, ratio to D2D copy bandwidth =="
"$B/cuda_workbench"

echo "== 3. stories260K perplexity, CPU vs CUDA (llama2.c reference 3.548202; target: within 0.1%) =="
for d in cpu cuda; do
  "$B/quant-eval" --model "$SHARED/models/stories260K/stories260K.bin" \
    --tokenizer "$SHARED/models/stories260K/tok512.bin" --file "$SHARED/data/tinystories_sample.txt" \
    --per-line --separator '<|endoftext|>' --device "$d" --json
done
echo "== 3b. same greedy text =="
for d in cpu cuda; do
  "$B/quant-run" --model "$SHARED/models/stories260K/stories260K.bin" \
    --tokenizer "$SHARED/models/stories260K/tok512.bin" --prompt '' --max-tokens 60 --device "$d"
  echo
done

echo "== 4. whole model, synthetic Llama-3.2-1B: f16 vs W4A16, prefill 512 / decode 128 (llama-bench style) =="
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$B/quant-synth" --shape llama-3.2-1b --dtype f16 --out "$T/f16"
"$B/quant-ptq" --model "$T/f16" --scheme W4A16 --group-size 128 --out "$T/w4a16"
for m in f16 w4a16; do
  "$B/quant-eval" --model "$T/$m" --bench --device cuda --n-prompt 512 --n-gen 128 --reps 5 --json \
    | tee "$T/$m.json"
done
python3 - "$T/f16.json" "$T/w4a16.json" <<'PY'
import json, sys
f, w = (json.load(open(p)) for p in sys.argv[1:])
r = w["decode_tok_s"]["median"] / f["decode_tok_s"]["median"]
print(f"decode tok/s  f16 {f['decode_tok_s']['median']:.1f}  w4a16 {w['decode_tok_s']['median']:.1f}  "
      f"ratio {r:.2f} (target >= 2.5)")
print(f"prefill tok/s f16 {f['prefill_tok_s']['median']:.1f}  w4a16 {w['prefill_tok_s']['median']:.1f}")
PY
