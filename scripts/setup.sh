#!/usr/bin/env bash
# Install the Debian packages libquant builds and tests with (only the missing ones).
set -euo pipefail
pkgs=(build-essential cmake pkg-config zlib1g-dev libyaml-dev libjansson-dev libpcre2-dev libutf8proc-dev
      libopenblas-dev liblapacke-dev libcriterion-dev
      clang libclang-rt-dev)  # clang + libFuzzer runtime: scripts/fuzz.sh (CI's fuzz smoke run)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
