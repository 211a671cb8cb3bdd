#!/usr/bin/env python3
"""Check every quantized tensor of OURS.gguf against ggml's own reference quantizer.

    gguf_qref_check.py OURS.gguf F32.gguf [--qref /work/llama.cpp/build/bin/ggml-qref]

F32.gguf holds the same tensors in f32 (the input both sides quantize); for each tensor of OURS
in a block type (or F16/BF16), its f32 rows go through `ggml-qref quant TYPE ROWS COLS` (the
peer's program: ggml_quantize_chunk with no imatrix, what llama-quantize runs) and the bytes
must be equal. Exit 0 when all are. Complements gguf_compare.py: this checks the quantizers
tensor by tensor whatever types were chosen; that one checks the choice too.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf

ap = argparse.ArgumentParser()
ap.add_argument("ours")
ap.add_argument("f32")
ap.add_argument("--qref", default="/work/llama.cpp/build/bin/ggml-qref")
a = ap.parse_args()
A = {t.name: t for t in gguf.GGUFReader(a.ours).tensors}
F = {t.name: t for t in gguf.GGUFReader(a.f32).tensors}
bad = 0
counts = {}
with tempfile.TemporaryDirectory() as d:
    for name, t in A.items():
        tn = t.tensor_type.name.lower()
        if tn == "f32":
            continue
        src = F[name]
        assert src.tensor_type == gguf.GGMLQuantizationType.F32, name
        x = np.asarray(src.data, dtype="<f4").reshape(-1)
        cols = int(src.shape[0])
        rows = x.size // cols
        x.tofile(os.path.join(d, "x.f32"))
        subprocess.run([a.qref, "quant", tn, str(rows), str(cols), os.path.join(d, "x.f32"),
                        os.path.join(d, "x.q")], check=True, stdout=subprocess.DEVNULL)
        ref = np.fromfile(os.path.join(d, "x.q"), dtype=np.uint8)
        ours = np.asarray(t.data).reshape(-1).view(np.uint8)
        same = ref.size == ours.size and np.array_equal(ref, ours)
        c = counts.setdefault(tn, [0, 0])
        c[0] += 1
        c[1] += same
        if not same:
            bad += 1
            if bad <= 5:
                k = int(np.flatnonzero(ref != ours)[0]) if ref.size == ours.size else -1
                print(f"{name} ({tn}): differs from ggml at byte {k}")
for tn, (n, ok) in sorted(counts.items()):
    print(f"  {tn:7s} {ok:4d} of {n:4d} tensors byte-identical to ggml-qref")
print("IDENTICAL" if bad == 0 else f"{bad} tensors DIFFER")
sys.exit(1 if bad else 0)
