#!/usr/bin/env python3
"""Run a compressed-tensors checkpoint with a kv_cache_scheme in transformers + compressed-tensors
and print its perplexity with the KV-cache quantization on and off, under llama.cpp's protocol
(as quant-eval: the text tokenized once with BOS first, chunks of --ctx tokens each starting with
BOS, the second half of each chunk scored), so our engine's static q8 / fp8 cache is checked
against compressed-tensors' own quantization of the K / V states.

    python3 scripts/kv_cache_hf_check.py --model DIR --file TEXT --ctx 128 --chunks 8 [--json]

How the K / V states are quantized: compressed-tensors' QuantizedKVCache fake-quantizes every
key / value state the attention stores, after RoPE, with the module's k_scale / v_scale
(compressed_tensors.quantization.lifecycle.forward.fake_quantize under the kv_cache_scheme's
QuantizationArgs). transformers 5.17 loads such a checkpoint but leaves the scheme unapplied (its
attention takes `cache=`, which compressed-tensors 0.19's hook does not recognize; the scales
load as unexpected keys), so this script applies the same function in a DynamicCache whose
update() quantizes what it stores, with the stored scales read from model.safetensors.

Needs torch, transformers, tokenizers, safetensors, compressed-tensors (PyPI).
"""
import argparse
import json
import math

import torch
from compressed_tensors.quantization import QuantizationArgs
from compressed_tensors.quantization.lifecycle.forward import fake_quantize
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, DynamicCache


class QuantizingCache(DynamicCache):
    """A DynamicCache storing fake-quantized K / V (None scales: plain)."""

    def __init__(self, config, scales, args):
        super().__init__(config=config)
        self.scales, self.args = scales, args

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        if self.scales is not None:
            ks, vs = self.scales[layer_idx]
            key_states = fake_quantize(key_states, ks, None, self.args)
            value_states = fake_quantize(value_states, vs, None, self.args)
        return super().update(key_states, value_states, layer_idx, *args, **kwargs)


def load_scales(model_dir, n_layers, n_kv_heads):
    cfg = json.load(open(f"{model_dir}/config.json"))["quantization_config"]["kv_cache_scheme"]
    args = QuantizationArgs(**cfg)
    t = load_file(f"{model_dir}/model.safetensors")
    scales = []
    for layer in range(n_layers):
        pair = []
        for part in ("k_scale", "v_scale"):
            s = t[f"model.layers.{layer}.self_attn.{part}"].float()
            # [1] (tensor) or [n_kv_heads, 1, 1] (attn_head): broadcast over (batch, heads, seq, dim)
            pair.append(s.reshape(1, n_kv_heads, 1, 1) if s.numel() == n_kv_heads else s.reshape(1))
        scales.append(tuple(pair))
    return scales, args, cfg


def ppl(model, ids, ctx, chunks, bos, scales, args):
    nll, count = 0.0, 0
    n_chunks = min(chunks, len(ids) // ctx) if chunks else len(ids) // ctx
    for c in range(n_chunks):
        toks = list(ids[c * ctx:(c + 1) * ctx])
        toks[0] = bos
        cache = QuantizingCache(model.config, scales, args)
        with torch.no_grad():
            logits = model(torch.tensor([toks]), past_key_values=cache, use_cache=True).logits[0].double()
        logp = torch.log_softmax(logits, dim=-1)
        for j in range(ctx // 2, ctx - 1):
            nll -= logp[j, toks[j + 1]].item()
            count += 1
    return math.exp(nll / count), count, n_chunks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    # the directory's tokenizer.json through `tokenizers` (as hf_crosscheck.py): AutoTokenizer
    # may add its own normalization on top
    tok = Tokenizer.from_file(f"{a.model}/tokenizer.json")
    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32)
    model.eval()
    c = model.config
    scales, args, scheme = load_scales(a.model, c.num_hidden_layers, c.num_key_value_heads)
    text = open(a.file, encoding="utf-8").read()
    bos = c.bos_token_id
    ids = [bos] + tok.encode(text, add_special_tokens=False).ids  # llama.cpp tokenizes with BOS
    out = {"model": a.model, "ctx": a.ctx, "kv_cache_scheme": scheme}
    out["ppl_kv_quant"], out["tokens"], out["chunks"] = ppl(model, ids, a.ctx, a.chunks, bos, scales, args)
    out["ppl_kv_off"], _, _ = ppl(model, ids, a.ctx, a.chunks, bos, None, None)
    print(json.dumps(out) if a.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
