#!/usr/bin/env bash
# Build the libFuzzer targets (clang, ASan + UBSan) and run each one for a short while on its
# committed corpus: the CI smoke run of docs/FUZZING.md's campaigns.
#   scripts/fuzz.sh [SECONDS_PER_TARGET (default 20)] [BUILD_DIR (default build-fuzz)]
# Exits non-zero on the first finding (crash, leak, sanitizer report, timeout, bad message); the
# reproducer is left in BUILD_DIR/fuzz-artifacts/. New inputs go to a scratch corpus, so the
# committed one (tests/fuzz/corpus/<target>, read only) does not change.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
build=${2:-build-fuzz}
command -v clang >/dev/null || { echo "fuzz: clang not found (scripts/setup.sh installs it)" >&2; exit 1; }
CC=clang cmake -S . -B "$build" -DQUANT_FUZZ=ON -DQUANT_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g" >/dev/null
targets=()
for src in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
mkdir -p "$build/fuzz-artifacts"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  corpus=tests/fuzz/corpus/$name
  [ -d "$corpus" ] || { echo "fuzz: $t has no corpus $corpus" >&2; exit 1; }
  mkdir -p "$scratch/$name"
  # max_len: the largest committed seed, at least 4 KiB (libFuzzer would otherwise cut seeds)
  max_len=$(find "$corpus" -type f -printf '%s\n' | sort -n | tail -1)
  [ "$max_len" -lt 4096 ] && max_len=4096
  echo "== $t: ${secs} s, corpus $corpus ($(ls "$corpus" | wc -l) files) =="
  log=$scratch/$name.log
  rc=0
  "$build/$t" -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$name-" "$scratch/$name" "$corpus" \
    >"$log" 2>&1 || rc=$?
  grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  grep -E '^#[0-9]+' "$log" | tail -1 || true
  if [ "$rc" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz: $t found something (exit $rc): $build/fuzz-artifacts/$name-*" >&2
    exit 1
  fi
done
echo "fuzz: ${#targets[@]} targets ran ${secs} s each, nothing found"
