#!/usr/bin/env python3
"""Pinned test vectors for the GGUF legacy block formats (Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 IQ4_NL).

Run by hand (never in CI): /work/venv/bin/python scripts/gguf_vectors/make_legacy_vectors.py
Writes tests/fixtures/gguf_blocks/<type>.txt, read by tests/test_gguf_blocks.c.

References (outside the project):
  - the PyPI `gguf` package's numpy quantizers/dequantizers (gguf.quants), which gguf-py keeps
    bit-exact with ggml's quantize_row_*_ref / dequantize_row_* (gguf-py's tests compare them);
  - with --qref PATH, ggml's own reference quantizer program (peer's ggml-qref, built from the
    llama-cpp-python sdist's vendor/llama.cpp): its block bytes must equal gguf-py's, and it is
    the only source of IQ4_NL quantize records (gguf-py has no IQ4_NL quantizer).

File format, one record per line, every float as the 8 hex digits of its binary32 bits:
  Q <32 floats: input> | <block bytes, hex> | <32 floats: dequantized>   quantize + dequant
  D <block bytes, hex> | <32 floats: dequantized>                        dequant of given bytes
"""
import argparse
import os
import subprocess
import sys
import tempfile
from importlib.metadata import version

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "gguf_blocks")
TYPES = {"q8_0": T.Q8_0, "q4_0": T.Q4_0, "q4_1": T.Q4_1, "q5_0": T.Q5_0, "q5_1": T.Q5_1,
         "iq4_nl": T.IQ4_NL}
BLOCK_BYTES = {"q8_0": 34, "q4_0": 18, "q4_1": 20, "q5_0": 22, "q5_1": 24, "iq4_nl": 18}


def hexf(a):
    return " ".join("%08x" % v for v in np.asarray(a, dtype=np.float32).view(np.uint32))


def ties_block(name):
    """Inputs whose x * id lands exactly on .5 (d = 1 exactly): ggml's rounding direction."""
    halves = np.arange(-31, 32, dtype=np.float32) / 2  # -15.5 .. 15.5
    if name == "q8_0":   # amax 127 -> d = 1: roundf rounds halves away from zero
        b = np.concatenate([[127.0], halves[::2][:31]])
    elif name in ("q4_0", "iq4_nl"):  # m = -8 -> d = 1: (int)(x + 8.5) rounds halves up
        b = np.concatenate([[-8.0], np.arange(-15, 16, dtype=np.float32) / 2])
    elif name == "q5_0":  # m = -16 -> d = 1
        b = np.concatenate([[-16.0], halves[::2][:31]])
    elif name == "q4_1":  # min 0, max 15 -> d = 1: (int)(x - min + 0.5)
        b = np.concatenate([[0.0, 15.0], np.arange(1, 31, dtype=np.float32) / 2])
    else:                 # q5_1: min 0, max 31 -> d = 1
        b = np.concatenate([[0.0, 31.0], np.arange(1, 31, dtype=np.float32)])
        b[2::2] += 0.5
    return np.asarray(b[:32], dtype=np.float32)


def quant_inputs(name, rng):
    blocks = [rng.standard_normal(32).astype(np.float32) * 0.02 for _ in range(4)]
    blocks.append(np.zeros(32, np.float32))                         # all zero
    b = rng.standard_normal(32).astype(np.float32) * 0.01
    b[11] = 3.0e4                                                    # one huge value
    blocks.append(b)
    b = rng.standard_normal(32).astype(np.float32)
    b[5] = -9.5                                                      # negative max
    blocks.append(b)
    b = rng.standard_normal(32).astype(np.float32)
    b[3], b[20] = 4.0, -4.0                                          # equal magnitudes: first wins
    blocks.append(b)
    blocks.append(ties_block(name))                                  # rounding ties
    blocks.append(rng.standard_normal(32).astype(np.float32) * 1e-6)  # binary16-subnormal scale
    blocks.append(np.full(32, 0.7, np.float32))                      # constant block
    b = rng.uniform(-1, 1, 32).astype(np.float32) ** 5 * 50          # heavy-tailed
    blocks.append(b)
    b = rng.uniform(2.0, 3.0, 32).astype(np.float32)                 # all positive, offset
    blocks.append(b)
    return np.stack(blocks).astype(np.float32)


def random_blocks(name, rng, n=8):
    """Arbitrary block bytes with finite binary16 scales (normal, subnormal, negative)."""
    out = rng.integers(0, 256, size=(n, BLOCK_BYTES[name]), dtype=np.uint8)
    scales = np.array([0.013, -0.2, 3.5e-6, 1.0, -7.25, 6.0e-8, 0.0, 1234.0], np.float16)
    mins = np.array([-0.5, 0.25, -3.0e-6, 0.0, 100.0, -1e-7, 2.0, -0.03125], np.float16)
    for i in range(n):
        out[i, 0:2] = scales[i % len(scales)].reshape(1).view(np.uint8)
        if name in ("q4_1", "q5_1"):
            out[i, 2:4] = mins[i % len(mins)].reshape(1).view(np.uint8)
    return out


def qref_blocks(qref, name, x):
    """Block bytes from ggml's own quantizer: ggml-qref quant TYPE ROWS COLS IN OUT, which runs
    ggml_quantize_chunk with imatrix NULL, as llama-quantize does (scripts/peer/ggml_qref.c)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "x.f32"), os.path.join(tmp, "x.blocks")
        x.astype("<f4").tofile(src)
        subprocess.run([qref, "quant", name, str(x.shape[0]), str(x.shape[1]), src, dst], check=True)
        return np.fromfile(dst, np.uint8).reshape(x.shape[0], BLOCK_BYTES[name])


def qref_dequant(qref, name, blocks):
    """ggml's dequantize_row_<t> (type traits to_float) of the given blocks."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "x.blocks"), os.path.join(tmp, "x.f32")
        blocks.tofile(src)
        subprocess.run([qref, "dequant", name, str(blocks.shape[0]), "32", src, dst], check=True)
        return np.fromfile(dst, "<f4").reshape(blocks.shape[0], 32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qref", help="ggml reference quantizer program (optional cross-check)")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    for k, (name, qt) in enumerate(TYPES.items()):
        rng = np.random.default_rng(1000 + k)
        lines = ["# %s: made by scripts/gguf_vectors/make_legacy_vectors.py with gguf %s%s" %
                 (name, version("gguf"), " and ggml-qref" if args.qref else "")]
        x = quant_inputs(name, rng)
        blk = None
        if name != "iq4_nl":
            blk = quants.quantize(x, qt).reshape(x.shape[0], BLOCK_BYTES[name])
        if args.qref:
            g = qref_blocks(args.qref, name, x)
            if blk is not None and not np.array_equal(g, blk):
                bad = np.nonzero((g != blk).any(axis=1))[0]
                sys.exit("%s: ggml-qref and gguf-py differ in blocks %s" % (name, bad.tolist()))
            blk = g
        if blk is not None:
            y = quants.dequantize(blk.reshape(-1), qt).reshape(x.shape)
            if args.qref and not np.array_equal(y.view(np.uint32), qref_dequant(args.qref, name, blk).view(np.uint32)):
                sys.exit("%s: ggml-qref and gguf-py dequantize differently" % name)
            for i in range(x.shape[0]):
                lines.append("Q %s | %s | %s" % (hexf(x[i]), blk[i].tobytes().hex(), hexf(y[i])))
        rb = random_blocks(name, rng)
        y = quants.dequantize(rb.reshape(-1), qt).reshape(rb.shape[0], 32)
        if args.qref and not np.array_equal(y.view(np.uint32), qref_dequant(args.qref, name, rb).view(np.uint32)):
            sys.exit("%s: ggml-qref and gguf-py dequantize the random blocks differently" % name)
        for i in range(rb.shape[0]):
            lines.append("D %s | %s" % (rb[i].tobytes().hex(), hexf(y[i])))
        with open(os.path.join(OUT, name + ".txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
        print("%s: %d records" % (name, len(lines) - 1))


if __name__ == "__main__":
    main()
