#!/usr/bin/env bash
# results_proxy.sh - the --target-bpw error proxy (compressed-tensors path, ct_automix.c) against
# single-tensor KLD on SmolLM2-135M (docs/RESULTS.md "Proxy against single-tensor KLD"). Run by
# hand, never in CI.
#
#   scripts/results_proxy.sh [STEP...]     steps: plans single report (default: all three)
#
# plans:  the proxy of every Linear at each candidate in $CANDS: a --target-bpw plan with that
#         candidate alone (every tensor takes it, and the JSON "automix" plan prints its proxy;
#         a tensor's proxy depends only on the tensor, the candidate and --calib, not on the other
#         candidates or the target); also the 4.5-bit wide plan of results_ctmix.sh, and the
#         KLD of the whole-model outputs of each plan (uniform candidate, and the 4.5 mix)
# single: for each tensor in $TENSORS and each candidate: a model with only that Linear quantized
#         (--override Linear=none --override NAME=SCHEME), quant-eval --kld against the f32 model,
#         the output deleted after
# report: the table and Spearman / Pearson correlations (python3, no packages)
# Environment: B (build dir), SMOL (f32 HF dir), OUT (default /tmp/proxy), CHUNKS (default 3),
# THREADS (default 2), CANDS (default "W3A16:64"), LAYERS (default "0 7 15 22 29").
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$here/build}
SMOL=${SMOL:-/work/cache/smol-f32-ctmix}
OUT=${OUT:-/tmp/proxy}
SHARED=${LQ_SHARED:-/work/shared}
TEST=$SHARED/data/wikitext-2-raw-v1.test.hfjoin.txt
CALIB=$SHARED/data/tinystories_sample.txt
CHUNKS=${CHUNKS:-3}
THREADS=${THREADS:-2}
CANDS=${CANDS:-W3A16:64}
LAYERS=${LAYERS:-0 7 15 22 29}
WIDE=W8A16,W4A16:128,W4A16:64,W4A16:32,W3A16:128,W3A16:64,W3A16:32
KINDS="self_attn.q_proj self_attn.k_proj self_attn.v_proj self_attn.o_proj mlp.gate_proj mlp.up_proj mlp.down_proj"
mkdir -p "$OUT"
ev() { # ev MODEL JSON
    "$B/quant-eval" --model "$1" --file "$TEST" --kld "$SMOL" --chunks "$CHUNKS" --threads "$THREADS" \
        --json > "$2"
}
tag() { echo "$1" | tr ':' g; }
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(plans single report)
for step in "${steps[@]}"; do
    case $step in
    plans)
        for c in $CANDS; do
            t=$(tag "$c")
            [ -s "$OUT/plan-$t.eval.json" ] && continue
            # target 9 bits: above any single candidate's size, so the plan is that candidate everywhere
            "$B/quant-ptq" --model "$SMOL" --target-bpw 9 --scheme "$c" --calib "$CALIB" --threads "$THREADS" \
                --force --json --out "$OUT/plan-$t" > "$OUT/plan-$t.json"
            ev "$OUT/plan-$t" "$OUT/plan-$t.eval.json"
            rm -rf "$OUT/plan-$t"
        done
        if [ ! -s "$OUT/plan-4.5.eval.json" ]; then
            "$B/quant-ptq" --model "$SMOL" --target-bpw 4.5 --scheme "$WIDE" --calib "$CALIB" --threads "$THREADS" \
                --force --json --out "$OUT/plan-4.5" > "$OUT/plan-4.5.json"
            ev "$OUT/plan-4.5" "$OUT/plan-4.5.eval.json"
            rm -rf "$OUT/plan-4.5"
        fi ;;
    single)
        for c in $CANDS; do
            t=$(tag "$c")
            for l in $LAYERS; do
                for k in $KINDS; do
                    n=model.layers.$l.$k
                    [ -s "$OUT/single-$t-$n.json" ] && continue
                    "$B/quant-ptq" --model "$SMOL" --scheme "${c%%:*}" --group-size "${c#*:}" \
                        --override Linear=none --override "$n=${c%%:*}" --threads "$THREADS" --force --json \
                        --out "$OUT/one" > "$OUT/one.json"
                    python3 -c 'import json,sys; q=json.load(open(sys.argv[1])); assert q["quantized"] == 1, q["quantized"]' "$OUT/one.json"
                    ev "$OUT/one" "$OUT/single-$t-$n.json.tmp"
                    mv "$OUT/single-$t-$n.json.tmp" "$OUT/single-$t-$n.json"
                    rm -rf "$OUT/one"
                    echo "$c $n $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kld"]["mean"])' "$OUT/single-$t-$n.json")"
                done
            done
        done ;;
    report)
        python3 - "$OUT" "$CANDS" <<'PY'
import glob, json, math, os, sys
out, cands = sys.argv[1], sys.argv[2].split()
def rank(v):
    o = sorted(range(len(v)), key=lambda i: v[i]); r = [0.0] * len(v); i = 0
    while i < len(o):
        j = i
        while j + 1 < len(o) and v[o[j + 1]] == v[o[i]]: j += 1
        for t in range(i, j + 1): r[o[t]] = (i + j) / 2 + 1
        i = j + 1
    return r
def pearson(a, b):
    n = len(a); ma, mb = sum(a) / n, sum(b) / n
    sab = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    return sab / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))
def spearman(a, b): return pearson(rank(a), rank(b))
def plan(path): return {t["name"]: t for t in json.load(open(path))["automix"]["plan"]}
def kld(path): return json.load(open(path))["kld"]
allx, ally = [], []
for c in cands:
    t = c.replace(":", "g"); p = plan(f"{out}/plan-{t}.json")
    rows = []
    for f in sorted(glob.glob(f"{out}/single-{t}-*.json")):
        n = os.path.basename(f)[len(f"single-{t}-"):-5]
        k = kld(f); rows.append((n, p[n]["proxy"], p[n]["bytes"], p[n]["rows"] * p[n]["cols"], k["mean"], k["stderr"]))
    if not rows: continue
    px, kl = [r[1] for r in rows], [r[4] for r in rows]
    rp, rk = rank(px), rank(kl)
    print(f"## {c}: {len(rows)} tensors")
    print("| tensor | proxy | params | mean KLD | ± | proxy rank | KLD rank | KLD / proxy |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r, a, b in sorted(zip(rows, rp, rk), key=lambda z: -z[0][4]):
        n = r[0].replace("model.layers.", "L").replace("self_attn.", "").replace("mlp.", "")
        print(f"| {n} | {r[1]:.4f} | {r[3]} | {r[4]:.3g} | {r[5]:.1g} | {a:g} | {b:g} | {r[4] / r[1]:.3g} |")
    print(f"Spearman(proxy, KLD) = {spearman(px, kl):.3f}; Pearson = {pearson(px, kl):.3f}; "
          f"Pearson(log) = {pearson([math.log(x) for x in px], [math.log(y) for y in kl]):.3f}")
    wp = [r[1] * r[3] for r in rows]
    print(f"Spearman(proxy x params, KLD) = {spearman(wp, kl):.3f}")
    kinds = sorted({r[0].split(".")[-1] for r in rows})
    for kd in kinds:
        sub = [r for r in rows if r[0].endswith(kd)]
        print(f"  {kd}: mean proxy {sum(r[1] for r in sub) / len(sub):.4f}, mean KLD {sum(r[4] for r in sub) / len(sub):.3g}, "
              f"KLD/proxy {sum(r[4] for r in sub) / sum(r[1] for r in sub):.3g}")
    # additivity: the whole model at this candidate
    whole = kld(f"{out}/plan-{t}.eval.json")["mean"]
    tot = sum(x["proxy"] for x in p.values())
    a = sum(kl) / sum(px)  # KLD per unit proxy, fitted on the singles (ratio of sums)
    print(f"whole model all {c}: KLD {whole:.4f}; sum of proxies over {len(p)} tensors {tot:.3f}; "
          f"ratio-of-sums fit {a:.4g} KLD per proxy -> predicted {a * tot:.4f}; "
          f"sum of measured singles {sum(kl):.4f} over {len(rows)} tensors")
    allx += px; ally += kl
if len(cands) > 1:
    print(f"all candidates pooled: Spearman {spearman(allx, ally):.3f} over {len(allx)} (tensor, candidate) pairs")
p45 = json.load(open(f"{out}/plan-4.5.json"))["automix"]; k45 = kld(f"{out}/plan-4.5.eval.json")["mean"]
print(f"4.5 wide plan: err_total {p45['err_total']:.4f}, whole-model KLD {k45:.4f}")
for c in cands:
    t = c.replace(":", "g"); pp = plan(f"{out}/plan-{t}.json")
    kl = [kld(f)["mean"] for f in glob.glob(f"{out}/single-{t}-*.json")]
    px = [pp[os.path.basename(f)[len(f"single-{t}-"):-5]]["proxy"] for f in glob.glob(f"{out}/single-{t}-*.json")]
    if kl: print(f"  predicted from the {c} singles' fit: {sum(kl) / sum(px) * p45['err_total']:.4f}")
PY
        ;;
    esac
done
