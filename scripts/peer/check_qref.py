#!/usr/bin/env python3
"""check_qref.py - cross-check ggml-qref (ggml's C reference quantizers, scripts/peer/ggml_qref.c)
against the `gguf` PyPI package's numpy implementations (gguf.quants), an independent second
source: blocks byte-identical where gguf-py has a quantizer (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, BF16),
dequantized values identical for every type (gguf-py dequantizes all 12 block formats).

    /work/venv/bin/python scripts/peer/check_qref.py [/work/llama.cpp/build/bin/ggml-qref]

Peer tooling: never a CI or test dependency. Prints one line per type, exits 1 on any mismatch.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

QREF = sys.argv[1] if len(sys.argv) > 1 else "/work/llama.cpp/build/bin/ggml-qref"
TYPES = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
         "IQ4_NL", "IQ4_XS", "F16", "BF16"]
HAS_PY_QUANT = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "BF16", "F16"}


def inputs(rows, cols):
    """Awkward data: gaussian, a heavy tail, an all-zero row, a constant row, a row of tiny values."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    x[1] *= rng.standard_t(2, cols).astype(np.float32)
    x[2] = 0.0
    x[3] = 0.75
    x[4] *= 1e-6
    return x


def run(*args):
    r = subprocess.run([QREF, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"ggml-qref {' '.join(map(str, args))}: {r.stderr.strip()}")


def main():
    rows, cols = 8, 512
    x = inputs(rows, cols)
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        fin = os.path.join(d, "in.f32")
        x.tofile(fin)
        for name in TYPES:
            qt = T[name]
            fq, fd = os.path.join(d, "q.bin"), os.path.join(d, "d.f32")
            run("quant", name, rows, cols, fin, fq, fd)
            blocks = np.fromfile(fq, dtype=np.uint8).reshape(rows, -1)
            deq_c = np.fromfile(fd, dtype=np.float32).reshape(rows, cols)
            deq_py = quants.dequantize(blocks, qt).astype(np.float32)
            same_deq = np.array_equal(deq_c.view(np.uint32), deq_py.view(np.uint32))
            msg = f"{name:7s} dequant {'equal' if same_deq else 'DIFFER'}"
            if not same_deq:
                i = np.argwhere(deq_c.view(np.uint32) != deq_py.view(np.uint32))[0]
                msg += f" (first at {tuple(i)}: ggml {deq_c[tuple(i)]!r} gguf-py {deq_py[tuple(i)]!r})"
            ok = same_deq
            if name in HAS_PY_QUANT:
                qpy = np.ascontiguousarray(quants.quantize(x, qt)).view(np.uint8).reshape(rows, -1)
                same_q = np.array_equal(qpy, blocks)
                ok &= same_q
                nd = int((qpy != blocks).sum())
                msg += f", blocks {'equal' if same_q else f'DIFFER in {nd} bytes'} to gguf-py quantize"
            rel = np.abs(deq_c - x).max() / np.abs(x).max()
            print(f"{msg}; max|deq-x|/max|x| = {rel:.3g}")
            bad |= not ok
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
