#!/usr/bin/env python3
"""Llama 3 RoPE scaling through GGUF, against transformers (issue 12: rope_freqs.weight).

Makes the model tests/test_rope_freqs.c uses: TinyStories-656K (../shared, transformers' f32
safetensors) with config.json's rope_scaling set to llama3 (factor 8, low_freq_factor 1,
high_freq_factor 4, original_max_position_embeddings 64: at head_dim 16 one rotary pair is kept,
two interpolated, five slowed 8x). Then

  - quant-convert writes it as GGUF F32 (rope_freqs.weight, as convert_hf_to_gguf.py) and back to
    an HF directory (rope_freqs -> rope_scaling);
  - transformers (f32 and f64) scores ../shared/data/tinystories_sample.txt with the per-story
    protocol of hf_crosscheck.py (units split on <|endoftext|>, BOS first, every later token
    scored) on the scaled directory, the round-tripped one and the unscaled original;
  - quant-eval --per-line scores the same units on the HF directory, the GGUF (with the
    directory's tokenizer.json, so the ids are the same; the GGUF's own vocabulary encodes as
    llama.cpp does) and the round trip; and the GGUF's rope_freqs values are compared with the
    converter's definition computed here with torch.

    /work/venv/bin/python scripts/rope_llama3_check.py [--build build] [--work /tmp/rope3-check]

Prints one row per (model, engine): tokens, total NLL, PPL, and |dNLL| against transformers f64 on
the same directory. Needs torch, transformers, gguf (pip); not used by the tests.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
from gguf import GGUFReader
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared")
TEXT = os.path.join(SHARED, "data", "tinystories_sample.txt")
SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 64}


def units(path):
    for u in open(path, encoding="utf-8").read().split("<|endoftext|>"):
        u = u.strip(" \t\r\n")
        if u:
            yield u


def hf_nll(d, dtype):
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    model = AutoModelForCausalLM.from_pretrained(d, dtype=dtype).eval()
    nll, n = 0.0, 0
    for u in units(TEXT):
        ids = tok.encode(u).ids  # the post-processor adds BOS
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()
        lp = torch.log_softmax(logits[:-1], dim=-1)
        tgt = torch.tensor(ids[1:])
        nll -= lp[torch.arange(len(tgt)), tgt].sum().item()
        n += len(tgt)
    return n, nll


def ours(build, model, tokenizer=None):
    cmd = [os.path.join(build, "quant-eval"), "--model", model, "--file", TEXT, "--per-line",
           "--separator", "<|endoftext|>", "--threads", "1", "--json"]
    if tokenizer:
        cmd += ["--tokenizer", tokenizer]
    r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return r["tokens_scored"], r["nll_sum"]


def converter_factors(base, dim, c):
    """convert_hf_to_gguf.py's definition (LlamaModel.generate_extra_tensors), with torch."""
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    old = c["original_max_position_embeddings"]
    lo, hi, f = c["low_freq_factor"], c["high_freq_factor"], c["factor"]
    out = []
    for freq in freqs:
        wl = 2 * math.pi / freq
        if wl < old / hi:
            out.append(1)
        elif wl > old / lo:
            out.append(f)
        else:
            s = (old / wl - lo) / (hi - lo)
            out.append(1 / ((1 - s) / f + s))
    return torch.tensor(out, dtype=torch.float32).numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--work", default="/tmp/rope3-check")
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    orig = os.path.join(SHARED, "models", "TinyStories-656K")
    hf = os.path.join(a.work, "ts-llama3")
    gg = hf + ".gguf"
    back = hf + "-back"
    shutil.copytree(orig, hf)
    cfg = json.load(open(os.path.join(hf, "config.json")))
    cfg["rope_scaling"] = SCALING
    json.dump(cfg, open(os.path.join(hf, "config.json"), "w"), indent=2)
    conv = os.path.join(a.build, "quant-convert")
    subprocess.run([conv, "--model", hf, "--out", gg], check=True, capture_output=True)
    subprocess.run([conv, "--model", gg, "--out", back], check=True, capture_output=True)

    r = GGUFReader(gg)
    t = next(x for x in r.tensors if x.name == "rope_freqs.weight")
    want = converter_factors(cfg["rope_theta"], cfg["hidden_size"] // cfg["num_attention_heads"], SCALING)
    got = np.asarray(t.data, dtype=np.float32)
    same = int(np.sum(got.view(np.uint32) == want.view(np.uint32)))
    print(f"rope_freqs.weight ({t.tensor_type.name}, {len(got)} values): {same}/{len(got)} bit-equal to the "
          f"converter's definition run with torch {torch.__version__}")
    print(f"  values: {' '.join('%.7g' % v for v in got)}")
    print(f"round trip config rope_scaling: {json.load(open(os.path.join(back, 'config.json')))['rope_scaling']}")

    ref = {}
    rows = []
    for name, d in (("scaled HF", hf), ("round trip HF", back), ("unscaled original", orig)):
        ref[d] = hf_nll(d, torch.float64)
        n32 = hf_nll(d, torch.float32)
        rows.append((name, "transformers f64", *ref[d], ref[d][1]))
        rows.append((name, "transformers f32", *n32, ref[d][1]))
    rows.append(("scaled HF", "libquant", *ours(a.build, hf), ref[hf][1]))
    rows.append(("scaled GGUF F32", "libquant", *ours(a.build, gg, os.path.join(hf, "tokenizer.json")), ref[hf][1]))
    rows.append(("round trip HF", "libquant", *ours(a.build, back), ref[back][1]))
    rows.append(("unscaled original", "libquant", *ours(a.build, orig), ref[orig][1]))
    print(f"\n{'model':<20} {'engine':<17} {'tokens':>6} {'total NLL':>14} {'PPL':>11} {'|dNLL| vs f64':>14}")
    for name, eng, n, nll, base in rows:
        print(f"{name:<20} {eng:<17} {n:>6} {nll:>14.6f} {math.exp(nll / n):>11.6f} {abs(nll - base):>14.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
