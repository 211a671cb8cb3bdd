#!/usr/bin/env python3
"""bench_batch_table.py - the Markdown table of a scripts/bench_batch.sh run (its OUT folder).

Per format and round: our aggregate decode tok/s at each B (quant-eval --batch-curve) over
llama-batched-bench's S_TG at the same B where it ran (ratio in brackets), our B=8 / B=1, and our
serve-bench total tok/s over llama-batched-bench's total speed S at B = NREQ (default 16).

    scripts/bench_batch_table.py OUT [NREQ]
"""
import glob
import json
import os
import re
import sys


def main():
    out = sys.argv[1]
    nreq = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    rows = []
    for path in sorted(glob.glob(os.path.join(out, "curve-*-r*.json"))):
        fmt, rnd = re.match(r"curve-(.+)-r(\d+)\.json$", os.path.basename(path)).groups()
        ours = {p["batch"]: p["tg_tok_s"] for p in json.load(open(path))["points"]}
        peer, peer_s = {}, None
        lpath = os.path.join(out, f"llama-{fmt}-r{rnd}.jsonl")
        if os.path.exists(lpath):
            for line in open(lpath):
                d = json.loads(line)
                peer[d["pl"]] = d["speed_tg"]
                if d["pl"] == nreq:
                    peer_s = d["speed"]
        serve = None
        spath = os.path.join(out, f"serve-{fmt}-r{rnd}.json")
        if os.path.exists(spath):
            serve = json.load(open(spath)).get("total_tok_s")
        cells = []
        for b in sorted(ours):
            c = f"{ours[b]:.1f}"
            if b in peer:
                c += f" / {peer[b]:.1f} ({ours[b] / peer[b]:.2f})"
            cells.append(c)
        ratio = ours[8] / ours[1] if 8 in ours and 1 in ours else float("nan")
        sv = "-" if serve is None else f"{serve:.1f}" + (f" / {peer_s:.1f} ({serve / peer_s:.2f})" if peer_s else "")
        rows.append((fmt, rnd, sorted(ours), cells, ratio, sv))
    if not rows:
        sys.exit(f"bench_batch_table.py: no curve-*.json in {out}")
    bs = rows[0][2]
    print("| format | round | " + " | ".join(f"B={b}" for b in bs) + f" | B=8 / B=1 | serve-bench / S({nreq}) |")
    print("| --- | --- | " + " | ".join("---:" for _ in bs) + " | ---: | ---: |")
    for fmt, rnd, _, cells, ratio, sv in sorted(rows, key=lambda r: (r[0], r[1])):
        print(f"| {fmt} | {rnd} | " + " | ".join(cells) + f" | {ratio:.2f} | {sv} |")


if __name__ == "__main__":
    main()
