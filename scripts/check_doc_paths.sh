#!/usr/bin/env bash
# docs/ARCHITECTURE.md must stay true: every file or folder it names in backquotes exists in the
# tree (a path from the repository root, a path below any folder, or a bare file name anywhere).
# Placeholders (<name>, *, fmt_x) and ../shared are skipped. Usage: scripts/check_doc_paths.sh [DOC...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- docs/ARCHITECTURE.md
files=$(git ls-files)
bad=0
for doc in "$@"; do
  # backquoted tokens that look like a file (known extension) or a folder (ends in /)
  while read -r p; do
    case "$p" in *'<'*|*'*'*|../*|*fmt_x*) continue ;; esac
    q=${p%/}
    if grep -qxF "$q" <<<"$files" || grep -qE "(^|/)${q//./\\.}(/|$)" <<<"$files"; then continue; fi
    echo "$doc: names $p, which is not in the tree" >&2
    bad=1
  done < <(grep -oE '`[^`]+`' "$doc" | tr -d '`' | tr ' (,' '\n\n\n' |
           grep -E '^[A-Za-z0-9_./<>*-]+(\.(c|h|cu|cuh|py|sh|md|in|txt)|/)$' | sort -u)
done
exit $bad
