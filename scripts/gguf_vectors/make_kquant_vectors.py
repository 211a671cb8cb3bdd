#!/usr/bin/env python3
"""make_kquant_vectors.py - pinned K-quant test vectors from llama.cpp's own quantizers, and the
bit-exactness campaign of ours against them. Run by hand; never a CI or test dependency.

  python3 scripts/gguf_vectors/make_kquant_vectors.py --llama-src /work/llama.cpp/src \
      [--out tests/fixtures/gguf_blocks] [--campaign 20000] [--seed 1]

--llama-src is llama.cpp's source tree (the llama-cpp-python sdist's vendor/llama.cpp, e.g.
`pip download --no-deps --no-binary :all: llama-cpp-python` unpacked). The script compiles
kq_crosscheck.c with ggml/src/ggml-quants.c (as ggml-base builds it: no -march, so no FMA) and our
kernels/cpu/kq_quantize.c + fmt_kquant.c, then for each type Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_XS:

  <type>.in.f32   6 super-blocks of input floats (little-endian f32): gaussian, all zero, one
                  outlier, all negative, tiny values (f16-subnormal super-scales), zero
                  sub-blocks mixed with small integers (rounding ties)
  <type>.q        ggml's blocks for them (quantize_row_<type>_ref; IQ4_XS: quantize_iq4_xs with
                  no importance matrix, what llama-quantize runs without --imatrix)
  <type>.deq.f32  ggml's dequantize_row_<type> of those blocks

and checks the gguf PyPI package's numpy dequantizer (gguf.quants) against ggml's floats as a
second, independent reference (it must agree to 1 ulp; the C tests hold ours to ggml's bits).
--campaign N runs N random blocks per type through both quantizers and dequantizers (see
kq_crosscheck.c) and prints the counts of differences; exit status 1 if any.
--qref PATH (peer's ggml-qref, linked against llama.cpp's own libggml-base as llama-quantize
is) additionally quantizes N random blocks per type with that build and compares its bytes and
floats with ours: the check that llama.cpp's build flags do not change ggml's arithmetic.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

TYPES = ["q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_xs"]
GGUF_NAMES = {"q2_K": "Q2_K", "q3_K": "Q3_K", "q4_K": "Q4_K", "q5_K": "Q5_K", "q6_K": "Q6_K", "iq4_xs": "IQ4_XS"}
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def build(llama_src, tmp):
    ggml = os.path.join(llama_src, "ggml")
    inc = ["-I" + os.path.join(ggml, "include"), "-I" + os.path.join(ggml, "src"),
           "-I" + os.path.join(ROOT, "kernels", "include"), "-I" + os.path.join(ROOT, "kernels", "cpu")]
    gq = os.path.join(tmp, "ggml-quants.o")
    # ggml-base's flags: optimized, no -march (the quantizers have no FMA to contract into)
    subprocess.run(["gcc", "-O3", "-std=gnu11", "-c", os.path.join(ggml, "src", "ggml-quants.c"), "-o", gq] + inc, check=True)
    exe = os.path.join(tmp, "kq_crosscheck")
    subprocess.run(["gcc", "-O2", "-std=gnu11", "-ffp-contract=off", "-Wno-unused-function",
                    os.path.join(HERE, "kq_crosscheck.c"), os.path.join(ROOT, "kernels", "cpu", "kq_quantize.c"),
                    os.path.join(ROOT, "kernels", "cpu", "fmt_kquant.c"), gq, "-lm", "-o", exe] + inc, check=True)
    return exe


def inputs():
    """The six pinned super-blocks (the same for every type)."""
    rng = np.random.default_rng(20261203)
    blocks = []
    blocks.append(rng.normal(0, 0.02, 256))                          # a typical weight block
    blocks.append(np.zeros(256))                                     # all zero
    b = rng.normal(0, 0.01, 256); b[77] = 1.5; blocks.append(b)      # one outlier
    blocks.append(-np.abs(rng.normal(0, 0.05, 256)) - 0.001)         # all negative
    blocks.append(rng.normal(0, 3e-5, 256))                          # tiny: f16-subnormal scales
    b = rng.integers(-4, 5, 256).astype(np.float64) * 0.25           # ties ...
    b[32:64] = 0.0; b[128:144] = 0.0                                  # ... and zero sub-blocks
    blocks.append(b)
    return np.concatenate(blocks).astype("<f4")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llama-src", required=True, help="llama.cpp source tree (has ggml/src/ggml-quants.c)")
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "gguf_blocks"))
    ap.add_argument("--campaign", type=int, default=0, help="random blocks per type to cross-check")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--qref", help="ggml-qref binary (llama.cpp's own build of ggml-base)")
    a = ap.parse_args()
    from gguf import quants as gq
    from gguf.constants import GGMLQuantizationType as QT
    os.makedirs(a.out, exist_ok=True)
    x = inputs()
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(a.llama_src, tmp)
        fin = os.path.join(tmp, "in.f32")
        x.tofile(fin)
        for t in TYPES:
            fq, fd = os.path.join(a.out, t + ".q"), os.path.join(a.out, t + ".deq.f32")
            x.tofile(os.path.join(a.out, t + ".in.f32"))
            subprocess.run([exe, "quantize", t, fin, fq], check=True)
            subprocess.run([exe, "dequant", t, fq, fd], check=True)
            q = np.fromfile(fq, dtype=np.uint8)
            d = np.fromfile(fd, dtype="<f4")
            py = gq.dequantize(q, QT[GGUF_NAMES[t]]).astype("<f4").reshape(-1)
            ulp = np.max(np.abs(py.view(np.int32).astype(np.int64) - d.view(np.int32).astype(np.int64)))
            same = int(np.sum(py.view(np.int32) == d.view(np.int32)))
            print(f"{t:6s} {len(q)} bytes; gguf.quants dequant vs ggml: {same}/{d.size} bit-equal, max {ulp} ulp")
            if ulp > 1:
                print(f"{t}: gguf.quants and ggml disagree by more than 1 ulp", file=sys.stderr)
                return 1
        bad = 0
        if a.campaign and a.qref:
            bad |= qref_campaign(exe, a.qref, a.campaign, a.seed, tmp)
        if a.campaign:
            bad |= subprocess.run([exe, "campaign", str(a.campaign), str(a.seed)]).returncode
    return 1 if bad else 0


def random_blocks(n, seed):
    """n super-blocks mixing the campaign's kinds: normal, uniform, heavy tail, one sign,
    sparse, outlier, tiny, ties, zero sub-blocks, constant, wide range."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, 256))
    sc = 10.0 ** rng.uniform(-4, 1, (n, 1))
    kind = np.arange(n) % 11
    g = rng.standard_normal((n, 256))
    u = rng.uniform(-1, 1, (n, 256))
    x[:] = sc * g
    x[kind == 1] = (sc * u)[kind == 1]
    x[kind == 2] = (sc * g ** 3)[kind == 2]
    x[kind == 3] = -np.abs(x[kind == 3])
    x[kind == 4] = np.where(rng.uniform(size=(n, 256)) < 0.7, 0.0, x)[kind == 4]
    o = x[kind == 5]; o[:, 7] *= 100; x[kind == 5] = o
    x[kind == 6] = (g * 10.0 ** rng.uniform(-30, -6, (n, 1)))[kind == 6]
    x[kind == 7] = (rng.integers(-4, 5, (n, 256)) * 0.25)[kind == 7]
    z = x[kind == 8]; z[:, 32:96] = 0; x[kind == 8] = z
    x[kind == 9] = np.repeat(x[kind == 9][:, :1], 256, axis=1)
    x[kind == 10] = (g * 10.0 ** rng.uniform(0, 4, (n, 256)))[kind == 10]
    return x.astype("<f4")


def qref_campaign(exe, qref, n, seed, tmp):
    x = random_blocks(n, seed)
    fin = os.path.join(tmp, "campaign.f32")
    x.tofile(fin)
    bad = 0
    for t in TYPES:
        fq, fo = os.path.join(tmp, "g.q"), os.path.join(tmp, "o.q")
        fd, fod = os.path.join(tmp, "g.deq"), os.path.join(tmp, "o.deq")
        subprocess.run([qref, "quant", t.lower(), str(n), "256", fin, fq, fd], check=True)
        subprocess.run([exe, "oquantize", t, fin, fo], check=True)
        subprocess.run([exe, "odequant", t, fq, fod], check=True)
        g, o = np.fromfile(fq, np.uint8).reshape(n, -1), np.fromfile(fo, np.uint8).reshape(n, -1)
        gd, od = np.fromfile(fd, np.int32), np.fromfile(fod, np.int32)
        nq = int(np.sum(np.any(g != o, axis=1)))
        nd = int(np.sum(np.any((gd != od).reshape(n, 256), axis=1)))
        print(f"ggml-qref {t:6s} {n} blocks: quantize bytes differ in {nq}, dequant floats differ in {nd}")
        bad |= nq != 0 or nd != 0
    return bad


if __name__ == "__main__":
    sys.exit(main())
