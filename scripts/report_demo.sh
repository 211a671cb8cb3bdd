#!/usr/bin/env bash
# The demo of quant-eval --compare --html on stories260K: the float model (quant-convert of the
# llama2.c checkpoint) and its W8A16, FP8 and W4A16 (g32, and one group per row) variants
# (quant-ptq), compared on tinystories_sample.txt with --bench, the page written to
# OUT/report.html and (when chromium is installed) screenshots next to it.
#   scripts/report_demo.sh [OUT (default /tmp/libquant-report-demo)] [BUILD (default build)]
# About 20 s on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/libquant-report-demo}
bin=$(cd "${2:-build}" && pwd)
shared=${LQ_SHARED:-../shared}
mkdir -p "$out"
m=$out/stories260K
[ -d "$m-f32" ] || "$bin/quant-convert" --llama2c "$shared/models/stories260K/stories260K.bin" \
  --tokenizer "$shared/models/stories260K/tok512.bin" --out "$m-f32" >/dev/null
ptq() { [ -d "$m-$1" ] || "$bin/quant-ptq" --model "$m-f32" --out "$m-$1" "${@:2}" >/dev/null; }
ptq W8A16 --scheme W8A16
ptq FP8 --scheme FP8
ptq W4A16-g32 --scheme W4A16 --group-size 32 --group-fallback channel
ptq W4A16-ch --scheme W4A16 --group-size -1
cd "$out"
"$bin/quant-eval" --compare stories260K-f32 stories260K-W8A16 stories260K-FP8 \
  stories260K-W4A16-g32 stories260K-W4A16-ch --file "$shared/data/tinystories_sample.txt" \
  --per-line --separator '<|endoftext|>' --bench --threads 2 --html report.html
echo "wrote $out/report.html"
if command -v chromium >/dev/null; then
  "$OLDPWD/scripts/report_screenshot.sh" "$out/report.html"
fi
