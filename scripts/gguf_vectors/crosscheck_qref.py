#!/usr/bin/env python3
"""Our GGUF legacy block quantizers and dequantizers against ggml's own, on whole matrices.

Run by hand (never in CI), after building ./build:
  /work/venv/bin/python scripts/gguf_vectors/crosscheck_qref.py [--qref /work/llama.cpp/build/bin/ggml-qref]
For 7 value distributions (normal, u^5, 1e-6 and 1e-39 scaled, half-integers, rows of very
different scales, sparse) x 6 types (q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl), a 512 x 256 matrix goes
through ggml-qref quant (ggml_quantize_chunk, imatrix NULL: what llama-quantize runs) and through
our quantize_ref + dequant_ref (scripts/gguf_vectors/ours_qref.c); the block bytes and the
dequantized floats must be identical. Prints one line per case and exits 1 on any difference.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TYPES = ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qref", default="/work/llama.cpp/build/bin/ggml-qref")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    R, C = 512, 256
    dists = {
        "normal": rng.standard_normal((R, C)),
        "u5": rng.uniform(-1, 1, (R, C)) ** 5,
        "tiny": rng.standard_normal((R, C)) * 1e-6,
        "subnormal": rng.standard_normal((R, C)) * 1e-39,
        "halves": rng.integers(-20, 21, (R, C)) / 2.0,
        "wide": rng.standard_normal((R, C)) * np.exp(rng.uniform(-20, 10, (R, 1))),
        "sparse": rng.standard_normal((R, C)) * (rng.uniform(0, 1, (R, C)) < 0.05),
    }
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        ours = os.path.join(tmp, "ours_qref")
        subprocess.run(["cc", "-O2", "-I", os.path.join(ROOT, "kernels", "include"),
                        os.path.join(ROOT, "scripts", "gguf_vectors", "ours_qref.c"), "-o", ours,
                        os.path.join(args.build, "liblq_kernels.a"), "-lm", "-lpthread"], check=True)
        p = {k: os.path.join(tmp, k) for k in ("x", "gb", "gy", "ob", "oy")}
        for name, x in dists.items():
            x.astype("<f4").tofile(p["x"])
            for t in TYPES:
                subprocess.run([args.qref, "quant", t, str(R), str(C), p["x"], p["gb"], p["gy"]], check=True)
                subprocess.run([ours, "quant", t, str(R), str(C), p["x"], p["ob"], p["oy"]], check=True)
                gb, ob = np.fromfile(p["gb"], np.uint8), np.fromfile(p["ob"], np.uint8)
                gy, oy = np.fromfile(p["gy"], np.uint32), np.fromfile(p["oy"], np.uint32)
                nb, ny = int((gb != ob).sum()), int((gy != oy).sum())
                print("%-9s %-6s %7d bytes: %d differ; %6d floats: %d differ" % (name, t, gb.size, nb, gy.size, ny))
                bad += nb + ny
    print("identical" if bad == 0 else "DIFFERENT")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
