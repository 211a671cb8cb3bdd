#!/usr/bin/env bash
# KV-cache quantization (issue 14 item 4) on SmolLM2-135M: what each cache type costs against
# the f32 cache of the same model (quant-eval --kld M --model M: the baseline always runs an f32
# cache), at ctx 512 (CHUNKS512 chunks, llama.cpp protocol) and ctx 4096 (CHUNKS4096 chunks),
# and the cache's bytes per position. Static scales (compressed-tensors' kv_cache_scheme) are
# calibrated by quant-ptq on WikiText-2 test from the first line after byte 400000 (not evaluated)
# and ride on a W8A16 model, whose own f32-cache run is their baseline.
#
#   SMOL=/work/cache/smollm2-f32 CALIB=/work/cache/wiki-calib.txt OUT=/work/cache/kv scripts/results_kv.sh
#
# Prints one JSON line per run (model, ctx, kv_cache, scales, bytes/pos, PPL, base PPL, ΔPPL %,
# mean KLD, same top) to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
SMOL=${SMOL:?an f32 HF directory of SmolLM2-135M (quant-convert --model the shared Q4_1 GGUF --out DIR)}
CALIB=${CALIB:?calibration text}
OUT=${OUT:-/tmp/results_kv}
CHUNKS512=${CHUNKS512:-20}
CHUNKS4096=${CHUNKS4096:-2}
THREADS=${THREADS:-2}
TEXT=$SHARED/data/wikitext-2-raw-v1.test.hfjoin.txt
B=build
mkdir -p "$OUT"
for ty in fp8 int8; do
  [ -d "$OUT/w8a16-kv-$ty" ] || $B/quant-ptq --model "$SMOL" --scheme W8A16 --out "$OUT/w8a16-kv-$ty" \
      --kv-cache-scheme $ty --calib "$CALIB" --calib-samples 32 --calib-len 512 --threads $THREADS >&2
done
row() { # model ctx chunks [--kv-cache T]
  local m=$1 ctx=$2 chunks=$3; shift 3
  $B/quant-eval --model "$m" --kld "$m" --file "$TEXT" --ctx $ctx --chunks $chunks --threads $THREADS --json "$@" |
    python3 -c "import json,sys; j=json.load(sys.stdin); print(json.dumps({'model': '$(basename $m)', 'ctx': $ctx,
      'chunks': j['chunks'], 'kv_cache': j['kv_cache'], 'scales': j['kv_cache_scales'],
      'bytes_per_pos': j['kv_cache_bytes_per_pos'], 'ppl': round(j['ppl'], 6), 'ppl_base': round(j['ppl_base'], 6),
      'dppl_pct': round(j['delta_ppl_pct'], 4), 'kld': j['kld']['mean'], 'kld_stderr': j['kld']['stderr'],
      'same_top': j['same_top']}))"
}
for ctx in 512 4096; do
  chunks=$([ $ctx = 512 ] && echo $CHUNKS512 || echo $CHUNKS4096)
  for t in f16 q8 fp8; do row "$SMOL" $ctx $chunks --kv-cache $t; done
  for ty in fp8 int8; do row "$OUT/w8a16-kv-$ty" $ctx $chunks; done
done
