#!/usr/bin/env python3
"""Load libquant outputs with Hugging Face transformers + compressed-tensors and score them.

This is the ecosystem check: the same directories quant-convert / quant-ptq / quant-prune write
are loaded by `transformers.AutoModelForCausalLM.from_pretrained` (which hands compressed-tensors
checkpoints to the compressed-tensors package to decompress), run in PyTorch, and scored with
the per-story protocol of ../shared/models/SOURCES.md (units split on <|endoftext|>, stripped,
BOS first, every token after the first scored). The token ids come from our own tokenizer.json
loaded by HF `tokenizers` (also checked against the shared reference ids when given).

    python scripts/hf_crosscheck.py --text ../shared/data/tinystories_sample.txt \
        --ref-ids ../shared/data/reference/stories260K_tok512.tinystories_sample.tokens.txt DIR...

Prints, per directory, the number of scored tokens, total NLL and PPL as PyTorch computes them;
compare with `quant-eval --per-line --separator '<|endoftext|>'` on the same directory.
Needs: pip install torch transformers compressed-tensors (a venv; not used by the tests).
"""
import argparse
import math
import sys

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM


def units(path):
    text = open(path, encoding="utf-8").read()
    for u in text.split("<|endoftext|>"):
        u = u.strip(" \t\r\n")
        if u:
            yield u


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", required=True)
    ap.add_argument("--ref-ids")
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    ref = None
    if a.ref_ids:
        ref = [list(map(int, l.split()))[1:] for l in open(a.ref_ids) if l.strip()]
    for d in a.dirs:
        tok = Tokenizer.from_file(f"{d}/tokenizer.json")
        model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32)
        model.eval()
        nll, n = 0.0, 0
        for i, u in enumerate(units(a.text)):
            ids = tok.encode(u).ids  # tokenizer.json's post-processor adds BOS
            if ref is not None and ids != ref[i]:
                print(f"{d}: unit {i}: token ids differ from the reference", file=sys.stderr)
                return 1
            for s in range(0, len(ids), model.config.max_position_embeddings):
                piece = ids[s:s + model.config.max_position_embeddings]
                if len(piece) < 2:
                    continue
                with torch.no_grad():
                    logits = model(torch.tensor([piece])).logits[0].double()
                lp = torch.log_softmax(logits[:-1], dim=-1)
                tgt = torch.tensor(piece[1:])
                nll -= lp[torch.arange(len(tgt)), tgt].sum().item()
                n += len(tgt)
        print(f"{d}: {n} tokens, total NLL {nll:.6f}, PPL {math.exp(nll / n):.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
