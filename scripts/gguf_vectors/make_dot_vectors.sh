#!/usr/bin/env bash
# Builds scripts/gguf_vectors/ggml_vecdot.c against llama.cpp's ggml-cpu (an x86 build from the
# llama-cpp-python sdist's vendor/llama.cpp, -march=native: AVX2 quantize_row_q8_0/q8_1, AVX2
# vec_dot) and writes tests/fixtures/gguf_blocks/vecdot.txt. Run by hand, never in CI:
#   LLAMA_SRC=/work/llama.cpp/src LLAMA_BUILD=/work/llama.cpp-legacy scripts/gguf_vectors/make_dot_vectors.sh
# where LLAMA_BUILD was configured with
#   cmake -S $LLAMA_SRC -B $LLAMA_BUILD -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DCMAKE_BUILD_TYPE=Release \
#     -DBUILD_SHARED_LIBS=OFF -DGGML_OPENMP=OFF && cmake --build $LLAMA_BUILD --target ggml-cpu ggml-base
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=${LLAMA_SRC:-/work/llama.cpp/src}
BLD=${LLAMA_BUILD:-/work/llama.cpp-legacy}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cc -O2 -march=native -I"$SRC/ggml/include" scripts/gguf_vectors/ggml_vecdot.c \
  "$BLD/ggml/src/libggml-cpu.a" "$BLD/ggml/src/libggml-base.a" -lstdc++ -lm -lpthread -o "$TMP/vecdot"
"$TMP/vecdot" > "$TMP/vecdot.txt"
mv "$TMP/vecdot.txt" tests/fixtures/gguf_blocks/vecdot.txt
wc -c tests/fixtures/gguf_blocks/vecdot.txt
