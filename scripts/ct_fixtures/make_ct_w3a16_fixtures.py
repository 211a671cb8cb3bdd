#!/usr/bin/env python3
"""Write the 3-bit (W3A16) test fixtures with compressed-tensors' own code (tests/fixtures/ct_w3a16/).

Run by hand, never in CI (needs torch + transformers + compressed-tensors 0.19; the shared venv):

    build/quant-convert --llama2c ../shared/models/stories260K/stories260K.bin \
        --tokenizer ../shared/models/stories260K/tok512.bin --out /tmp/s260
    /work/venv/bin/python scripts/ct_fixtures/make_ct_w3a16_fixtures.py --base /tmp/s260 \
        --text ../shared/data/tinystories_sample.txt --out tests/fixtures/ct_w3a16

llm-compressor's RTN path without llm-compressor: compressed-tensors' apply_quantization_config
attaches the scheme, its calculate_qparams turns each group's min/max of the weight into a scale
and zero point (the "minmax" observer's rule), and ModelCompressor.compress_model (format
"pack-quantized") quantizes and packs the weights with pack_to_int32 (32 codes in 3 words) and the
zero points along rows; update_config writes the quantization_config. So the bytes, the shapes
and the config are compressed-tensors', not ours. Two fixtures from stories260K (dims 64 and 172,
both divisible by 4): w3a16_sym_channel (symmetric, one scale per row) and w3a16_asym_g4
(asymmetric, groups of 4: zero points packed along 64 and 172 rows). Each gets reference.json:
tokens, total NLL and PPL of the sample text scored in PyTorch (f32) on the weights
compressed-tensors' PackedQuantizationCompressor.decompress returns (transformers 5.25 refuses
packed zero points at load, llm-compressor's too: scripts/w3a16_hf_check.py), with
scripts/hf_crosscheck.py's protocol; tests/test_w3a16.c checks our engine against them.
"""
import argparse
import json
import math
import os
import shutil
import sys

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

import compressed_tensors
import transformers
from compressed_tensors.compressors import ModelCompressor
from compressed_tensors.quantization import (QuantizationArgs, QuantizationConfig, QuantizationScheme,
                                             QuantizationStatus, apply_quantization_config)
from compressed_tensors.quantization.utils import calculate_qparams

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from w3a16_hf_check import ct_decompressed, torch_nll  # noqa: E402  (one decompress path, one protocol)

FIXTURES = {
    "w3a16_sym_channel": QuantizationArgs(num_bits=3, type="int", symmetric=True, strategy="channel"),
    "w3a16_asym_g4": QuantizationArgs(num_bits=3, type="int", symmetric=False, strategy="group", group_size=4),
}


def write(base, out, args):
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    cfg = QuantizationConfig(config_groups={"group_0": QuantizationScheme(targets=["Linear"], weights=args)},
                             ignore=["lm_head"], quantization_status=QuantizationStatus.INITIALIZED)
    apply_quantization_config(model, cfg)
    for _, m in model.named_modules():
        if not hasattr(m, "weight_scale"):
            continue
        w = m.weight.data
        gs = args.group_size if args.strategy == "group" else w.shape[1]
        g = w.reshape(w.shape[0], -1, gs)
        scale, zero = calculate_qparams(g.amin(-1), g.amax(-1), args)
        m.weight_scale.data.copy_(scale.reshape(m.weight_scale.shape))
        if hasattr(m, "weight_zero_point"):
            m.weight_zero_point.data.copy_(zero.reshape(m.weight_zero_point.shape))
    compressor = ModelCompressor.from_pretrained_model(model, quantization_format="pack-quantized")
    compressor.compress_model(model)
    os.makedirs(out, exist_ok=True)
    sd = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}  # tied head
    save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    for f in ("config.json", "tokenizer.json"):
        shutil.copy(os.path.join(base, f), out)
    compressor.update_config(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    for name, args in FIXTURES.items():
        out = os.path.join(a.out, name)
        write(a.base, out, args)
        model = ct_decompressed(out)
        nll, n = torch_nll(model, Tokenizer.from_file(os.path.join(out, "tokenizer.json")), a.text)
        ref = {"tokens": n, "nll": nll, "ppl": math.exp(nll / n), "text": os.path.basename(a.text),
               "command": " ".join(sys.argv),
               "scored_by": "PyTorch f32 on compressed-tensors' PackedQuantizationCompressor.decompress weights, "
                            "scripts/hf_crosscheck.py protocol",
               "versions": {"compressed_tensors": compressed_tensors.__version__,
                            "transformers": transformers.__version__, "torch": torch.__version__}}
        with open(os.path.join(out, "reference.json"), "w") as f:
            json.dump(ref, f, indent=2)
            f.write("\n")
        print(f"{name}: {n} tokens, NLL {nll:.6f}, PPL {ref['ppl']:.7f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
