#!/usr/bin/env python3
"""Check that an HF directory written by `quant-convert --model FILE.gguf --out DIR` loads in
transformers and computes what the reference model computes.

    check_gguf_to_hf.py DIR --ref REF_DIR [--text FILE] [--tokens N]

Loads both with transformers (float32, CPU), runs the first N tokens of the text (DIR's
tokenizer), and prints the largest |logit difference|, the top-1 agreement and both mean
NLLs. A round trip of an f32 GGUF must give difference 0; a quantized GGUF shows its error.
Run by hand with /work/venv (never in CI).
"""
import argparse
import math

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--ref", required=True)
ap.add_argument("--text", default="../shared/data/wikitext-2-raw-v1.test.hfjoin.txt")
ap.add_argument("--tokens", type=int, default=512)
a = ap.parse_args()

tok = AutoTokenizer.from_pretrained(a.dir)
text = open(a.text, encoding="utf-8").read()[: a.tokens * 8]
ids = tok(text, return_tensors="pt").input_ids[:, : a.tokens]
out = {}
for name, path in (("converted", a.dir), ("reference", a.ref)):
    m = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
    m.eval()
    with torch.no_grad():
        logits = m(ids).logits[0].double()
    nll = torch.nn.functional.cross_entropy(logits[:-1], ids[0, 1:]).item()
    out[name] = (logits, nll)
    print(f"{name}: {path}: {type(m).__name__}, mean NLL {nll:.6f} (PPL {math.exp(nll):.4f}) "
          f"over {ids.shape[1] - 1} predictions")
d = (out["converted"][0] - out["reference"][0]).abs().max().item()
top1 = (out["converted"][0].argmax(-1) == out["reference"][0].argmax(-1)).double().mean().item()
print(f"max |logit difference| {d:.3e}, top-1 agreement {100 * top1:.2f}%")
