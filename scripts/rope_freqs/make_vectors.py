#!/usr/bin/env python3
"""RoPE frequency factors as llama.cpp's converter makes them, for tests/test_rope_freqs.c.

llama.cpp's convert_hf_to_gguf.py (LlamaModel.generate_extra_tensors, conversion/llama.py) turns a
llama3 rope_scaling into the F32 tensor rope_freqs.weight. This script runs that definition with
torch the way the converter does (an f32 arange, base ** it, one 0-d f32 tensor per pair, Python
floats for the parameters, torch.tensor(..., float32) at the end) and writes each factor's f32 bits,
so the C writer is checked against torch's own arithmetic, not against itself.

    /work/venv/bin/python scripts/rope_freqs/make_vectors.py > tests/fixtures/rope_freqs/converter.txt

Line format: name theta head_dim factor low_freq_factor high_freq_factor original_max_pos : hex...
"""
import math
import struct

import torch

# (name, rope_theta, head_dim, factor, low, high, original_max_position_embeddings)
CONFIGS = [
    ("llama3.1-8b", 500000.0, 128, 8.0, 1.0, 4.0, 8192),      # Meta-Llama-3.1-8B config.json
    ("llama3.2-1b", 500000.0, 64, 32.0, 1.0, 4.0, 8192),      # Llama-3.2-1B config.json
    ("tinystories-llama3", 10000.0, 16, 8.0, 1.0, 4.0, 64),   # tests/test_rope_freqs.c's scaled copy
    ("odd", 10000.0, 48, 3.5, 0.5, 3.0, 100),                 # awkward values, several band pairs
]


def converter_factors(base, dim, factor, lo, hi, old_ctx):
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    low_wavelen = old_ctx / lo
    high_wavelen = old_ctx / hi
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - lo) / (hi - lo)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(out, dtype=torch.float32)


def main():
    print(f"# torch {torch.__version__}; scripts/rope_freqs/make_vectors.py")
    for name, base, dim, factor, lo, hi, old in CONFIGS:
        t = converter_factors(base, dim, factor, lo, hi, old)
        hexes = " ".join("%08x" % struct.unpack("<I", struct.pack("<f", float(v)))[0] for v in t.tolist())
        print(f"{name} {base!r} {dim} {factor!r} {lo!r} {hi!r} {old} : {hexes}")


if __name__ == "__main__":
    main()
