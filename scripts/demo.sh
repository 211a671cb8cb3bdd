#!/usr/bin/env bash
# The main job, end to end on the real stories260K model from ../shared:
# install dependencies, build, convert the llama2.c checkpoint to a Hugging Face directory,
# inspect it, measure perplexity, generate text and benchmark speed.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${LQ_SHARED:-../shared}
out=${LQ_DEMO_DIR:-out/demo}
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
mkdir -p "$out"
set -x
build/quant-convert --llama2c "$shared/models/stories260K/stories260K.bin" \
    --tokenizer "$shared/models/stories260K/tok512.bin" --out "$out/stories260K" --force
build/quant-info "$out/stories260K"
build/quant-eval --model "$out/stories260K" --file "$shared/data/tinystories_sample.txt" \
    --per-line --separator '<|endoftext|>'
build/quant-run --model "$out/stories260K" --prompt "Once upon a time" --max-tokens 64
build/quant-eval --model "$out/stories260K" --bench --n-prompt 256 --n-gen 64 --reps 3
