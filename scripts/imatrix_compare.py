#!/usr/bin/env python3
"""Read GGUF imatrix files with the `gguf` PyPI package (llama.cpp's gguf-py) and compare two.

    imatrix_compare.py OURS.gguf [THEIRS.gguf] [--json]

One file: checks that gguf-py parses it as llama-imatrix's format (general.type "imatrix",
imatrix.datasets / chunk_count / chunk_size, F32 "<name>.in_sum2" and "<name>.counts" per
entry) and prints a summary. Two files: the same entry set, equal counts, and how far the
per-column means (sum / count) are apart: max and median relative difference per entry, and
the relative L2 difference over all entries. Run by hand (never in CI).
"""
import argparse
import json
import sys

import numpy as np
import gguf


def load(path):
    r = gguf.GGUFReader(path)
    f = r.fields

    def val(k):
        fld = f.get(k)
        if fld is None:
            return None
        if fld.types[0] == gguf.GGUFValueType.ARRAY:
            return [bytes(fld.parts[i]).decode() for i in fld.data]
        if fld.types[0] == gguf.GGUFValueType.STRING:
            return bytes(fld.parts[fld.data[0]]).decode()
        return int(fld.parts[fld.data[0]][0])

    meta = {k: val(k) for k in ("general.type", "imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size")}
    if meta["general.type"] != "imatrix":
        sys.exit(f"{path}: general.type is {meta['general.type']!r}, not 'imatrix'")
    t = {x.name: x for x in r.tensors}
    ent = {}
    for name, x in t.items():
        if not name.endswith(".in_sum2"):
            continue
        base = name[: -len(".in_sum2")]
        c = t.get(base + ".counts")
        if c is None or x.tensor_type != gguf.GGMLQuantizationType.F32 or c.tensor_type != gguf.GGMLQuantizationType.F32:
            sys.exit(f"{path}: entry {base}: counts missing or not F32")
        ent[base] = (np.asarray(x.data, dtype=np.float64).reshape(-1), np.asarray(c.data, dtype=np.float64).reshape(-1))
    return meta, ent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours")
    ap.add_argument("theirs", nargs="?")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    m1, e1 = load(a.ours)
    out = {"ours": {"meta": m1, "entries": len(e1)}}
    if not a.theirs:
        print(json.dumps(out) if a.json else f"{a.ours}: {len(e1)} entries, {m1}")
        return 0
    m2, e2 = load(a.theirs)
    out["theirs"] = {"meta": m2, "entries": len(e2)}
    common = sorted(set(e1) & set(e2))
    only1, only2 = sorted(set(e1) - set(e2)), sorted(set(e2) - set(e1))
    cnt_diff = [n for n in common if not np.array_equal(e1[n][1], e2[n][1])]
    rows, num, den = [], 0.0, 0.0
    for n in common:
        s1, c1 = e1[n]
        s2, c2 = e2[n]
        m1_, m2_ = s1 / c1[0], s2 / c2[0]
        rel = np.abs(m1_ - m2_) / np.maximum(np.abs(m2_), 1e-30)
        rows.append((n, float(rel.max()), float(np.median(rel))))
        num += float(((m1_ - m2_) ** 2).sum())
        den += float((m2_ ** 2).sum())
    worst = sorted(rows, key=lambda r: -r[1])[:5]
    out.update({"common": len(common), "only_ours": only1, "only_theirs": only2, "count_differs": cnt_diff,
                "median_of_median_rel": float(np.median([r[2] for r in rows])) if rows else None,
                "max_rel": max(r[1] for r in rows) if rows else None,
                "rel_l2": (num / den) ** 0.5 if den else None, "worst": worst})
    if a.json:
        print(json.dumps(out))
    else:
        print(f"ours {len(e1)} entries {m1}\ntheirs {len(e2)} entries {m2}")
        print(f"common {len(common)}, only ours {only1[:5]}, only theirs {only2[:5]}, counts differ in {len(cnt_diff)}")
        print(f"per-column mean x^2: median relative difference (median over entries) {out['median_of_median_rel']:.3g}, "
              f"max {out['max_rel']:.3g}, relative L2 over all entries {out['rel_l2']:.3g}")
        for n, mx, md in worst:
            print(f"  {n:32s} max rel {mx:.3g} median rel {md:.3g}")
    return 0 if not (only1 or only2 or cnt_diff) else 1


if __name__ == "__main__":
    sys.exit(main())
