#!/usr/bin/env python3
"""Compare the tensors of two GGUF files with the `gguf` PyPI package (llama.cpp's gguf-py).

    gguf_compare.py OURS.gguf THEIRS.gguf [--json]

Per tensor: same name set, same ggml type, same shape, same bytes. For the first differing
tensor of each type it names the first differing block (block = ggml's block of that type) and
prints both blocks' bytes. Exit status 0 when every tensor is byte-identical, 1 otherwise.
Also checks that the files parse (GGUFReader) - a second reader besides ours.
"""
import argparse
import json
import sys

import numpy as np
import gguf


def tensors(path):
    r = gguf.GGUFReader(path)
    return r, {t.name: t for t in r.tensors}


def raw(t):
    return np.asarray(t.data).reshape(-1).view(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ours")
    ap.add_argument("theirs")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    _, A = tensors(a.ours)
    _, B = tensors(a.theirs)
    report = {"only_ours": sorted(set(A) - set(B)), "only_theirs": sorted(set(B) - set(A)),
              "by_type": {}, "first_diff": {}}
    ok = not report["only_ours"] and not report["only_theirs"]
    for name in sorted(set(A) & set(B)):
        ta, tb = A[name], B[name]
        tn = tb.tensor_type.name
        row = report["by_type"].setdefault(tn, {"tensors": 0, "identical": 0})
        row["tensors"] += 1
        why = None
        if ta.tensor_type != tb.tensor_type:
            why = f"type {ta.tensor_type.name} vs {tb.tensor_type.name}"
        elif list(ta.shape) != list(tb.shape):
            why = f"shape {list(ta.shape)} vs {list(tb.shape)}"
        else:
            da, db = raw(ta), raw(tb)
            if da.size != db.size:
                why = f"{da.size} vs {db.size} bytes"
            elif not np.array_equal(da, db):
                bs, bb = gguf.GGML_QUANT_SIZES[tb.tensor_type]
                k = int(np.flatnonzero(da != db)[0]) // bb
                nblk = da.size // bb
                ndiff = int(np.count_nonzero((da != db).reshape(nblk, bb).any(axis=1)))
                why = (f"{ndiff} of {nblk} blocks differ; first: block {k} (elements "
                       f"{k * bs}..{k * bs + bs - 1}): ours {da[k*bb:(k+1)*bb].tobytes().hex()} "
                       f"theirs {db[k*bb:(k+1)*bb].tobytes().hex()}")
        if why is None:
            row["identical"] += 1
        else:
            ok = False
            report["first_diff"].setdefault(tn, f"{name}: {why}")
    report["identical"] = ok
    if a.json:
        print(json.dumps(report, indent=1))
    else:
        for k in ("only_ours", "only_theirs"):
            if report[k]:
                print(f"{k}: {report[k][:8]}{' ...' if len(report[k]) > 8 else ''}")
        for tn, row in sorted(report["by_type"].items()):
            print(f"  {tn:7s} {row['identical']:4d} of {row['tensors']:4d} tensors byte-identical")
            if tn in report["first_diff"]:
                print(f"          first difference: {report['first_diff'][tn]}")
        print("IDENTICAL" if ok else "DIFFERENT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
