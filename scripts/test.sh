#!/usr/bin/env bash
# Build (Release) and run every test suite. Usage: scripts/test.sh [build-dir]
# Set LQ_SHARED to point at the shared models/data if it is not ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
scripts/setup.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)"
