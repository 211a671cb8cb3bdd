#!/usr/bin/env bash
# build_qref.sh - build ggml-qref (scripts/peer/ggml_qref.c) against a llama.cpp build.
#
#   LLAMA_CPP=/work/llama.cpp scripts/peer/build_qref.sh     # -> $LLAMA_CPP/build/bin/ggml-qref
#
# LLAMA_CPP holds src/ (the llama-cpp-python sdist's vendor/llama.cpp) and build/ (a CMake build
# of it with BUILD_SHARED_LIBS=OFF, so build/ggml/src/libggml-base.a exists: build the target
# ggml-base, or llama-quantize, which depends on it). Only libggml-base is linked: the type
# traits, ggml_quantize_chunk and the portable reference (de)quantizers; no CPU backend.
# A peer tool for making test vectors: never a CI or test dependency.
set -euo pipefail
cd "$(dirname "$0")"
root=${LLAMA_CPP:-/work/llama.cpp}
lib=$root/build/ggml/src/libggml-base.a
[ -f "$lib" ] || { echo "build_qref.sh: error: no $lib (build llama.cpp with BUILD_SHARED_LIBS=OFF first)" >&2; exit 1; }
out=${OUT:-$root/build/bin/ggml-qref}
mkdir -p "$(dirname "$out")"
# ggml-base has C++ objects (ggml.cpp, gguf.cpp): link with the C++ runtime; and OpenMP, which
# ggml-quants.c uses for its iq2/iq3 grid tables when llama.cpp is built with GGML_OPENMP (default).
set -x
${CC:-cc} -std=c11 -O2 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -I"$root/src/ggml/include" \
  ggml_qref.c "$lib" -fopenmp -lstdc++ -lm -lpthread -o "$out.tmp"
mv "$out.tmp" "$out"
