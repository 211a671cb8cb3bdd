#!/usr/bin/env python3
"""Decompress a quant-prune sparse output with compressed-tensors' own sparse compressors.

    python scripts/ct_sparse_check.py PRUNED_DIR DENSE_DIR [--ct-path DIR]

compressed-tensors removed its sparse compressors after 0.14 ("sparse-bitmask" is marked
legacy in 0.20), so this check needs an older release, e.g.
    pip install --target /tmp/ct010 compressed-tensors==0.10.2 --no-deps   (+ torch, safetensors)
and --ct-path /tmp/ct010. It loads PRUNED_DIR with ModelCompressor.from_pretrained (which reads
config.json's sparsity_config and picks BitmaskCompressor / Sparse24BitMaskCompressor),
decompresses every tensor, and checks against DENSE_DIR (the unpruned input): every kept weight
is bit-identical and the share of zeros is printed. Exit 1 on any mismatch.
"""
import argparse
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pruned")
    ap.add_argument("dense")
    ap.add_argument("--ct-path")
    a = ap.parse_args()
    if a.ct_path:
        sys.path.insert(0, a.ct_path)
    import compressed_tensors
    from compressed_tensors.compressors import ModelCompressor
    from safetensors.torch import load_file

    mc = ModelCompressor.from_pretrained(a.pruned)
    if mc is None or mc.sparsity_compressor is None:
        print(f"{a.pruned}: no sparsity_config this compressed-tensors understands", file=sys.stderr)
        return 1
    dense = dict(mc.sparsity_compressor.decompress(a.pruned))
    orig = load_file(a.dense + "/model.safetensors")
    worst, zeros, total = 0.0, 0, 0
    for name, v in dense.items():
        o = orig[name]
        kept = v != 0
        if kept.any():
            worst = max(worst, (v[kept] - o[kept]).abs().max().item())
        zeros += (~kept).sum().item()
        total += v.numel()
    print(f"compressed_tensors {compressed_tensors.__version__}, "
          f"{type(mc.sparsity_compressor).__name__}: {len(dense)} tensors, "
          f"max |kept - original| = {worst}, zeros {zeros}/{total} = {zeros / total:.4f}")
    return 0 if worst == 0.0 else 1


if __name__ == "__main__":
    sys.exit(main())
