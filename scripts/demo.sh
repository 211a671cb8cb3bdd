#!/usr/bin/env bash
# The main job, end to end on the real stories260K model from ../shared:
# install dependencies, build, convert the llama2.c checkpoint to a Hugging Face directory,
# quantize it (W8A16, W4A16, FP8) into compressed-tensors checkpoints, and evaluate every one
# against the f32 baseline (perplexity, KL divergence, top-1 agreement, size, speed); then
# generate text with the W8A16 model.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${LQ_SHARED:-../shared}
out=${LQ_DEMO_DIR:-out/demo}
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
mkdir -p "$out"
text="$shared/data/tinystories_sample.txt"
set -x
build/quant-convert --llama2c "$shared/models/stories260K/stories260K.bin" \
    --tokenizer "$shared/models/stories260K/tok512.bin" --out "$out/stories260K" --force
build/quant-ptq --model "$out/stories260K" --scheme W8A16 --out "$out/stories260K-W8A16" --force
build/quant-ptq --model "$out/stories260K" --scheme W4A16 --group-size 32 --asym \
    --group-fallback channel --clip-search --out "$out/stories260K-W4A16" --force
build/quant-ptq --model "$out/stories260K" --scheme FP8 --out "$out/stories260K-FP8" --force
build/quant-eval --compare "$out/stories260K" "$out/stories260K-W8A16" "$out/stories260K-W4A16" \
    "$out/stories260K-FP8" --file "$text" --per-line --separator '<|endoftext|>' --bench
build/quant-run --model "$out/stories260K-W8A16" --prompt "Once upon a time" --max-tokens 64
