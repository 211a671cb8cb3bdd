#!/usr/bin/env bash
# bench_distill.sh - cost of writing soft labels vs a plain perplexity pass over the same text.
#
#   scripts/bench_distill.sh BUILD_DIR MODEL TOKENIZER TEXT [BYTES] [CTX] [K] [THREADS]
#
# Both tools read the same first BYTES of TEXT (default: all) in chunks of CTX tokens (default
# 512) and run one all-logits forward per chunk; quant-eval then scores half of each chunk
# (llama.cpp protocol), quant-distill computes the top-K of every position, compresses and
# commits. Wall time of each whole command (model load and tokenization included), measured in
# the same run, alternated twice; prints the ratio of the medians and the compressed size.
set -euo pipefail
B=${1:?build dir}; M=${2:?model}; T=${3:?tokenizer}; F=${4:?text}
BYTES=${5:-0}; CTX=${6:-512}; K=${7:-32}; TH=${8:-2}
work=$(mktemp -d /tmp/bench_distill.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ "$BYTES" -gt 0 ]; then head -c "$BYTES" "$F" > "$work/text.txt"; else cp "$F" "$work/text.txt"; fi
now() { date +%s.%N; }
ppl=(); dst=()
for rep in 1 2; do
  t0=$(now)
  "$B/quant-eval" --model "$M" --tokenizer "$T" --file "$work/text.txt" --ctx "$CTX" \
      --threads "$TH" --json > "$work/ppl.json"
  t1=$(now)
  rm -rf "$work/out"
  "$B/quant-distill" --model "$M" --tokenizer "$T" --file "$work/text.txt" --ctx "$CTX" \
      --k "$K" --threads "$TH" --out "$work/out" --json > "$work/distill.json"
  t2=$(now)
  ppl+=("$(echo "$t1 - $t0" | bc -l)"); dst+=("$(echo "$t2 - $t1" | bc -l)")
done
python3 - "$work/ppl.json" "$work/distill.json" "${ppl[@]}" "${dst[@]}" <<'PY'
import json, sys, statistics
p = json.load(open(sys.argv[1])); d = json.load(open(sys.argv[2]))
t = [float(x) for x in sys.argv[3:]]
pt, dt = t[:len(t)//2], t[len(t)//2:]
mp, md = statistics.median(pt), statistics.median(dt)
print(f"perplexity pass: {mp:.2f} s wall (runs {', '.join(f'{x:.2f}' for x in pt)}), "
      f"{p['tokens_total']} tokens, {p['chunks']} chunks, PPL {p['ppl']:.4f}")
print(f"distill pass:    {md:.2f} s wall (runs {', '.join(f'{x:.2f}' for x in dt)}), "
      f"{d['records']} records, {d['tokens']} tokens")
print(f"ratio distill/perplexity: {md/mp:.3f}  (overhead {100*(md/mp-1):+.1f}%)")
print(f"compressed: {d['bytes']} bytes, {d['bytes_per_token']:.1f} bytes/token")
PY
