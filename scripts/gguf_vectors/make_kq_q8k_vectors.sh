#!/usr/bin/env bash
# make_kq_q8k_vectors.sh - llama.cpp's Q8_K activations and K-quant x Q8_K dot products as test
# vectors: builds kq_q8k_vectors.c against a llama.cpp build's static ggml (libggml-cpu.a and
# libggml-base.a, BUILD_SHARED_LIBS=OFF: the code its llama-perplexity runs) and writes
# tests/fixtures/gguf_blocks/kq_q8k_dot.txt (temp + rename). Peer tool: never CI, never a test dep.
#
#   LLAMA_CPP=/work/llama.cpp scripts/gguf_vectors/make_kq_q8k_vectors.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${LLAMA_CPP:-/work/llama.cpp}
lib=$root/build/ggml/src
for f in libggml-cpu.a libggml-base.a; do
  [ -f "$lib/$f" ] || { echo "make_kq_q8k_vectors.sh: error: no $lib/$f (build llama.cpp static first)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# ggml-cpu is C++ with OpenMP; -march=native as the llama.cpp build it links
${CC:-cc} -std=c11 -O2 -Wall -I"$root/src/ggml/include" "$here/kq_q8k_vectors.c" \
  "$lib/libggml-cpu.a" "$lib/libggml-base.a" -fopenmp -lstdc++ -lm -lpthread -o "$tmp/kq_q8k_vectors"
out=$here/../../tests/fixtures/gguf_blocks/kq_q8k_dot.txt
"$tmp/kq_q8k_vectors" > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(wc -c < "$out") bytes)"
