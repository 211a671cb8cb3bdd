#!/usr/bin/env python3
"""ggml's quantizers WITH an importance matrix (llama-quantize --imatrix) against ours.

Run by hand (never in CI), after building ./build and ggml-qref with its `quantw` command
(scripts/peer/build_qref.sh; OUT=... to put it elsewhere than the shared peer build):
  /work/venv/bin/python scripts/gguf_vectors/make_imat_vectors.py --qref /work/llama.cpp-imatrix/ggml-qref
             [--write]   also (re)write the pinned vectors tests/fixtures/gguf_blocks/imat/

1. Cross-check: 4 weight distributions x 3 imatrix shapes (gamma, spiky, 30% zeros) x 12 types,
   a 64 x 512 matrix through `ggml-qref quantw` (ggml_quantize_chunk with imatrix) and through our
   quantize_ref with lq_quant_params.col_weight (scripts/gguf_vectors/ours_qref.c); every byte
   must be equal. One line per case; exit 1 on any difference.
2. --write: imat/in.f32 (4 x 512 weights), imat/imatrix.f32 (512 entries) and imat/<type>.q
   (ggml's blocks of them) for tests/test_gguf_imat.c.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TYPES = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "iq4_nl", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_xs"]


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"make_imat_vectors: {' '.join(cmd)}: {r.stderr.strip()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qref", default="/work/llama.cpp-imatrix/ggml-qref")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="imatvec")
    ours = os.path.join(tmp, "ours_qref")
    run(["cc", "-std=c11", "-O2", "-I", os.path.join(ROOT, "kernels/include"),
         os.path.join(ROOT, "scripts/gguf_vectors/ours_qref.c"), os.path.join(args.build, "liblq_kernels.a"),
         "-lopenblas", "-lm", "-lpthread", "-o", ours])
    rng = np.random.default_rng(3)
    R, C = 64, 512
    dists = {
        "normal": rng.standard_normal((R, C)),
        "u^5": rng.uniform(-1, 1, (R, C)) ** 5,
        "1e-3": rng.standard_normal((R, C)) * 1e-3,
        "rowscale": rng.standard_normal((R, C)) * np.exp(rng.uniform(-6, 3, (R, 1))),
    }
    imats = {
        "gamma": rng.gamma(0.5, 2.0, C),
        "spiky": np.where(rng.uniform(size=C) < 0.05, 100.0, 0.01) * rng.uniform(0.5, 1.5, C),
        "zeros": np.where(rng.uniform(size=C) < 0.3, 0.0, rng.uniform(size=C)),
    }
    x_p, im_p = os.path.join(tmp, "x.f32"), os.path.join(tmp, "im.f32")
    ref_p, our_p, deq_p = (os.path.join(tmp, n) for n in ("ref.q", "ours.q", "ours.deq"))
    bad = 0
    for dn, x in dists.items():
        x.astype("<f4").tofile(x_p)
        for iname, im in imats.items():
            im.astype("<f4").tofile(im_p)
            for t in TYPES:
                run([args.qref, "quantw", t, str(R), str(C), x_p, im_p, ref_p])
                run([ours, "quant", t, str(R), str(C), x_p, our_p, deq_p, im_p])
                r, o = open(ref_p, "rb").read(), open(our_p, "rb").read()
                nd = sum(a != b for a, b in zip(r, o)) + abs(len(r) - len(o))
                bad += nd != 0
                print(f"{dn:9s} {iname:6s} {t:7s} {len(r):6d} bytes, {nd} differ")
    print(f"{bad} of {len(dists) * len(imats) * len(TYPES)} cases differ")
    if args.write:
        out = os.path.join(ROOT, "tests/fixtures/gguf_blocks/imat")
        os.makedirs(out, exist_ok=True)
        r2 = np.random.default_rng(14)
        x = r2.standard_normal((4, C)) * np.exp(r2.uniform(-2, 1, (4, 1)))
        im = r2.gamma(0.5, 2.0, C) * (r2.uniform(size=C) > 0.1)
        x.astype("<f4").tofile(os.path.join(out, "in.f32"))
        im.astype("<f4").tofile(os.path.join(out, "imatrix.f32"))
        for t in TYPES:
            run([args.qref, "quantw", t, "4", str(C), os.path.join(out, "in.f32"), os.path.join(out, "imatrix.f32"),
                 os.path.join(out, t + ".q")])
        print(f"wrote {out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
