#!/bin/sh
# Our calibrated methods against llm-compressor's on TinyStories-656K, same settings, same
# calibration windows, both scored by quant-eval (docs/RESULTS.md "Against llm-compressor on
# TinyStories-656K"). Run by hand, never in CI: the llmc step needs a venv with llmcompressor.
#
#   M=../shared/models/TinyStories-656K OUT=/work/cache/llmc-ts656k VENV=/work/venv-llmc \
#       scripts/results_llmc_tinystories.sh [step...]
#   steps: calib rtn ours llmc eval table (default: all, in that order)
#
# Calibration: the first 48 KiB of WikiText-2 test (TinyStories is the evaluation text, so the
# two never overlap), SAMPLES x LEN tokens drawn by lq_calib_samples (seed 0); the scripts/*_llmc.py
# draw the same windows (tokenized by tokenizer.json through `tokenizers`, not AutoTokenizer, whose
# ids differ on this model). Evaluation: the TinyStories sample per story (llama2.c's protocol),
# PPL, KLD and top-1 against the f32 model, one quant-eval --compare over every directory made.
# Each tool runs alone, under /usr/bin/time -v (OUT/NAME.time), on THREADS threads (default 1:
# the machine is shared); the table step prints the markdown table of docs/RESULTS.md.
# TinyStories-656K's widths are 128 and 384: g32, g64 and g128 divide every Linear.
set -eu
M=${M:-../shared/models/TinyStories-656K}
OUT=${OUT:-/work/cache/llmc-ts656k}
VENV=${VENV:-/work/venv-llmc}
B=${B:-build}
SHARED=${LQ_SHARED:-../shared}
TEST=$SHARED/data/wikitext-2-raw-v1.test.hfjoin.txt
EVAL=$SHARED/data/tinystories_sample.txt
SAMPLES=${SAMPLES:-32} LEN=${LEN:-256} THREADS=${THREADS:-1}
CALIB=$OUT/calib_wikitext_head48k.txt
CAL="--calib $CALIB --calib-samples $SAMPLES --calib-len $LEN"
PY="$VENV/bin/python"
PYCAL="--samples $SAMPLES --len $LEN --threads $THREADS"
mkdir -p "$OUT"

# timed NAME CMD...: run CMD (which writes OUT/NAME) under /usr/bin/time, log in OUT/NAME.log
timed() { name=$1; shift; rm -rf "$OUT/$name"
    /usr/bin/time -v -o "$OUT/$name.time" "$@" > "$OUT/$name.log" 2>&1 ||
        { echo "$name: failed (see $OUT/$name.log)" >&2; return 0; }
    echo "$name: done"; }
ptq() { name=$1; shift; timed "$name" "$B/quant-ptq" --model "$M" --threads "$THREADS" --out "$OUT/$name" "$@"; }
prune() { name=$1; shift; timed "$name" "$B/quant-prune" --model "$M" --threads "$THREADS" --out "$OUT/$name" "$@"; }

# the rows of the table, in order (a missing directory is skipped)
ROWS="rtn-w4g32 llmc-rtn-w4g32 gptq-w4g32-static llmc-gptq-w4g32-static gptq-w4g32-none llmc-gptq-w4g32-none
rtn-w3g128 gptq-w3g128-static llmc-gptq-w3g128-static gptq-w3g128-none llmc-gptq-w3g128-none
rtn-w4g32-asym llmc-rtn-w4g32-asym awq-w4g32-asym llmc-awq-w4g32-asym awq-w4g32 llmc-awq-w4g32
mag50 sgpt50 llmc-sgpt50 wanda50 llmc-wanda50 mag24 sgpt24 llmc-sgpt24 wanda24 llmc-wanda24
rtn-w8a8 llmc-w8a8 sq-w8a8 llmc-sq-w8a8"

steps=${*:-calib rtn ours llmc eval table}
for step in $steps; do
    case $step in
    calib) head -c 49152 "$TEST" > "$CALIB" ;;
    rtn) ptq rtn-w4g32 --scheme W4A16 --group-size 32
        ptq rtn-w4g32-asym --scheme W4A16 --group-size 32 --asym
        ptq rtn-w3g128 --scheme W3A16 --group-size 128
        ptq rtn-w8a8 --scheme W8A8
        prune mag50 --method magnitude --sparsity 0.5
        prune mag24 --method nm --nm 2:4 ;;
    ours) for ao in static none; do
            ptq gptq-w4g32-$ao --scheme W4A16 --group-size 32 --method gptq --actorder $ao $CAL
            ptq gptq-w3g128-$ao --scheme W3A16 --group-size 128 --method gptq --actorder $ao $CAL
        done
        ptq awq-w4g32-asym --scheme W4A16 --group-size 32 --asym --method awq $CAL
        ptq awq-w4g32 --scheme W4A16 --group-size 32 --method awq $CAL
        ptq sq-w8a8 --scheme W8A8 --method smoothquant --smoothquant 0.5 $CAL
        prune sgpt50 --method sparsegpt --sparsity 0.5 $CAL
        prune sgpt24 --method sparsegpt --pattern 2:4 $CAL
        prune wanda50 --method wanda --sparsity 0.5 $CAL
        prune wanda24 --method wanda --pattern 2:4 $CAL ;;
    llmc) for ao in static none; do
            timed llmc-gptq-w4g32-$ao "$PY" scripts/gptq_llmc.py "$M" "$CALIB" "$OUT/llmc-gptq-w4g32-$ao" $PYCAL \
                --bits 4 --group 32 --actorder $ao
            timed llmc-gptq-w3g128-$ao "$PY" scripts/gptq_llmc.py "$M" "$CALIB" "$OUT/llmc-gptq-w3g128-$ao" $PYCAL \
                --bits 3 --group 128 --actorder $ao
        done
        timed llmc-rtn-w4g32 "$PY" scripts/awq_llmc.py rtn "$M" "$CALIB" "$OUT/llmc-rtn-w4g32" $PYCAL --group 32
        timed llmc-rtn-w4g32-asym "$PY" scripts/awq_llmc.py rtn "$M" "$CALIB" "$OUT/llmc-rtn-w4g32-asym" $PYCAL \
            --group 32 --asym
        timed llmc-awq-w4g32-asym "$PY" scripts/awq_llmc.py awq "$M" "$CALIB" "$OUT/llmc-awq-w4g32-asym" $PYCAL \
            --group 32 --asym
        timed llmc-awq-w4g32 "$PY" scripts/awq_llmc.py awq "$M" "$CALIB" "$OUT/llmc-awq-w4g32" $PYCAL --group 32
        timed llmc-w8a8 "$PY" scripts/awq_llmc.py w8a8 "$M" "$CALIB" "$OUT/llmc-w8a8" $PYCAL
        timed llmc-sq-w8a8 "$PY" scripts/awq_llmc.py smoothquant "$M" "$CALIB" "$OUT/llmc-sq-w8a8" $PYCAL --alpha 0.5
        for c in "sparsegpt 0:0 sgpt50" "sparsegpt 2:4 sgpt24" "wanda 0:0 wanda50" "wanda 2:4 wanda24"; do
            set -- $c
            timed llmc-$3 "$PY" scripts/sparse_llmc.py "$M" "$CALIB" "$OUT/llmc-$3" --method $1 --mask $2 $PYCAL
        done ;;
    eval) dirs=""
        for r in $ROWS; do [ -f "$OUT/$r/config.json" ] && dirs="$dirs $OUT/$r"; done
        # shellcheck disable=SC2086
        "$B/quant-eval" --compare "$M" $dirs --tokenizer "$M/tokenizer.json" --file "$EVAL" --per-line \
            --separator '<|endoftext|>' --threads "$THREADS" --json > "$OUT/compare.json" ;;
    table) python3 - "$OUT" <<'PYEOF'
import json, os, re, sys
out = sys.argv[1]
rows = json.load(open(os.path.join(out, "compare.json")))["rows"]
def timing(name):
    p = os.path.join(out, name + ".time")
    if not os.path.exists(p):
        return "—", "—", "—"
    t = open(p).read()
    g = lambda k: re.search(re.escape(k) + r": (.*)", t).group(1).strip()
    cpu = float(g("User time (seconds)")) + float(g("System time (seconds)"))
    wall = g("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    # llm-compressor's own runs: the oneshot() call alone (the rest is Python, torch and I/O)
    one = re.search(r"oneshot: ([0-9.]+) s", open(os.path.join(out, name + ".log")).read())
    return wall, f"{cpu:.1f} s" + (f" ({one.group(1)} s)" if one else ""), \
        f"{int(g('Maximum resident set size (kbytes)')) / 1024:.0f} MiB"
print("| model | format | PPL | ΔPPL % | mean KLD | same top % | wall | CPU (llmc: oneshot() wall) | peak RSS |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    name = os.path.basename(r["path"].rstrip("/"))
    w, c, m = timing(name) if not r["baseline"] else ("—", "—", "—")
    kld = f"{r['kld_mean']:.6f} ± {r['kld_stderr']:.6f}" if not r["baseline"] else "—"
    print(f"| {name} | {r['format']} | {r['ppl']:.4f} | {r['delta_ppl_pct']:+.2f} | {kld} | "
          f"{100 * r['same_top']:.2f} | {w} | {c} | {m} |")
PYEOF
        ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
    esac
done
