#!/usr/bin/env bash
# Before/after speed of two builds on the same checkpoints, interleaved run by run (base, new,
# base, new, ...) so both see the same machine state. Made for a shared machine: mode "cpu" takes
# the CPU time (user + sys, GNU time) of a fixed 1-thread quant-eval --bench workload, which an
# oversubscribed machine disturbs far less than wall time; mode "wall" prints quant-eval's tok/s.
#
# Usage: scripts/bench_ab.sh BASE_BUILD NEW_BUILD MODE ROUNDS MODEL... -- QUANT_EVAL_ARGS...
#   MODE: cpu | wall;  MODEL: a checkpoint path, or synth:SHAPE:SCHEME[:GROUP] to make one in
#   $OUT (default /tmp/lq_bench_ab) with NEW_BUILD's quant-synth --dtype f32 (+ quant-ptq).
#   Prints one line per run: round model build seconds(user sys)|json load-average.
# The docs/PERFORMANCE.md section "Architecture descriptors + one layer program" ran:
#   scripts/bench_ab.sh B N cpu 5 synth:stories110M:f32 synth:stories110M:W8A16 \
#     synth:stories110M:W4A16:128 -- --n-prompt 32 --n-gen 16 --reps 1
#   scripts/bench_ab.sh B N cpu 5 $S/stories260K.bin -- --tokenizer $S/tok512.bin \
#     --n-prompt 256 --n-gen 256 --reps 3                       (S = shared/models/stories260K)
#   scripts/bench_ab.sh B N wall 3 synth:stories110M:f32 synth:stories110M:W8A16 \
#     synth:stories110M:W4A16:128 -- --n-prompt 128 --n-gen 64 --reps 3 --threads 2
#   scripts/bench_ab.sh B N cpu 5 synth:smollm-135m:f32 synth:smollm-135m:W8A16 \
#     synth:smollm-135m:W4A16:64 -- --n-prompt 32 --n-gen 16 --reps 1
set -euo pipefail
[ $# -ge 5 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
base=$1 new=$2 mode=$3 rounds=$4
shift 4
models=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do models+=("$1"); shift; done
[ $# -gt 0 ] && shift
case $mode in cpu) threads=(--threads 1) ;; wall) threads=() ;;
  *) echo "bench_ab: mode must be cpu or wall, not '$mode'" >&2; exit 2 ;; esac
out=${OUT:-/tmp/lq_bench_ab}
mkdir -p "$out"
paths=()
for m in "${models[@]}"; do
  if [[ $m == synth:* ]]; then
    IFS=: read -r _ shape scheme group <<<"$m"
    f32=$out/$shape-f32
    [ -d "$f32" ] || "$new/quant-synth" --shape "$shape" --dtype f32 --out "$f32" >/dev/null
    if [ "$scheme" = f32 ]; then paths+=("$f32"); continue; fi
    q=$out/$shape-$scheme${group:+-g$group}
    [ -d "$q" ] || "$new/quant-ptq" --model "$f32" --scheme "$scheme" ${group:+--group-size "$group"} \
      --out "$q" >/dev/null
    paths+=("$q")
  else
    paths+=("$m")
  fi
done
t=$(mktemp)
trap 'rm -f "$t"' EXIT
for round in $(seq "$rounds"); do
  for p in "${paths[@]}"; do
    for b in base new; do
      [ $b = base ] && bin=$base || bin=$new
      if [ "$mode" = cpu ]; then
        /usr/bin/time -o "$t" -f "%U %S" "$bin/quant-eval" --model "$p" "$@" --bench "${threads[@]}" \
          --json >/dev/null 2>&1
        r=$(tail -1 "$t")
      else
        r=$("$bin/quant-eval" --model "$p" "$@" --bench --json 2>/dev/null | tr -d '\n')
      fi
      echo "$round $(basename "$p") $b $r load $(cut -d' ' -f1 /proc/loadavg)"
    done
  done
done
