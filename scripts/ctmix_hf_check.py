#!/usr/bin/env python3
"""ctmix_hf_check.py - transformers + compressed-tensors load quant-ptq --target-bpw outputs
(several config groups: W8A16, W4A16 g128 / g32, W3A16 g128 per Linear) and agree with our engine.

Writes TinyStories-656K (../shared/models/TinyStories-656K, f32) with the built quant-ptq at a few
--target-bpw values (default candidates), loads each with
transformers.AutoModelForCausalLM.from_pretrained and compares, as w3a16_hf_check.py does (its
Engine and scoring are reused): every position's logits of the first --stories stories (max |d| /
max |logit| of the row) and the per-story total NLL against `quant-eval --per-line`.

Run by hand (needs torch + transformers + compressed-tensors; never in CI), after building:
    /work/venv-hf/bin/python scripts/ctmix_hf_check.py [--build build] [--keep DIR]
Exits 1 when transformers refuses an output, a logits row differs by more than --tol (default
2e-5, test_arch.c's bound) or the total NLLs differ by more than 1e-5 relative.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from w3a16_hf_check import Engine, compare  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TARGETS = ["3.3", "4.5", "6.0"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--model", default=os.path.join(ROOT, "..", "shared", "models", "TinyStories-656K"))
    ap.add_argument("--text", default=os.path.join(ROOT, "..", "shared", "data", "tinystories_sample.txt"))
    ap.add_argument("--stories", type=int, default=3)
    ap.add_argument("--tol", type=float, default=2e-5)
    ap.add_argument("--keep")
    a = ap.parse_args()
    torch.set_num_threads(1)
    eng = Engine(os.path.join(a.build, "dist", "libquant.so"))
    bad = 0
    print(f"{'target':7} {'groups':24} {'max |d|/max|logit|':>18} {'PyTorch NLL / PPL':>24} "
          f"{'libquant NLL / PPL':>24} {'tokens':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        root = a.keep or tmp
        os.makedirs(root, exist_ok=True)
        base_tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
        for b in TARGETS:
            out = os.path.join(root, f"ctmix-{b}")
            subprocess.run([os.path.join(a.build, "quant-ptq"), "--model", a.model, "--out", out, "--force",
                            "--target-bpw", b, "--threads", "1"], check=True, capture_output=True)
            groups = json.load(open(os.path.join(out, "config.json")))["quantization_config"]["config_groups"]
            desc = ",".join(f"{g['weights']['num_bits']}b/{g['weights']['group_size'] or 'ch'}x{len(g['targets'])}"
                            for g in groups.values())
            try:
                model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
            except Exception as e:  # a loader refusal is a result, not a crash
                print(f"{b:7} {desc:24} NO: {str(e).splitlines()[0][:100]}")
                bad += 1
                continue
            worst, tn, n, on, m, ok = compare(model, eng, a, out, base_tok)
            bad += not ok
            print(f"{b:7} {desc:24} {worst:18.2e} {tn:14.6f} / {math.exp(tn / n):8.6f} "
                  f"{on:14.6f} / {math.exp(on / m):8.6f} {n:6d}{'' if ok else '  MISMATCH'}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
