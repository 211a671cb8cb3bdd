#!/usr/bin/env python3
"""Write the llm-compressor test fixtures (tests/fixtures/llmc/) and their reference perplexities.

Run by hand, never in CI (needs torch + llmcompressor from PyPI; the shared venv has them):

    build/quant-convert --llama2c ../shared/models/stories260K/stories260K.bin \
        --tokenizer ../shared/models/stories260K/tok512.bin --out /tmp/s260
    /work/venv/bin/python scripts/ct_fixtures/make_llmc_fixtures.py --base /tmp/s260 \
        --text ../shared/data/tinystories_sample.txt --out tests/fixtures/llmc

Every fixture is written by llm-compressor's own `oneshot` + `save_pretrained(save_compressed=True)`
from stories260K converted to Hugging Face (f32, tied head), so its config.json and tensors are
exactly what llm-compressor 0.14 / compressed-tensors 0.19 write. stories260K's down_proj has 172
input columns, which no power-of-two group divides, so the grouped schemes give down_proj its own
config group (channel strategy) or ignore it by regex: both are spellings llm-compressor users
write. Each directory gets reference.json: tokens, total NLL and PPL of the sample text scored by
transformers + compressed-tensors in PyTorch (f32) with scripts/hf_crosscheck.py's protocol
(units split on <|endoftext|>, BOS first, every token after the first scored), plus this command
and the package versions. tests/test_llmc_fixtures.c checks our engine against those numbers.
"""
import argparse
import json
import math
import os
import shutil
import sys

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

import compressed_tensors
import llmcompressor
import transformers
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
from datasets import Dataset
from llmcompressor import oneshot
from llmcompressor.modifiers.pruning import MagnitudePruningModifier  # noqa: F401 (documented alternative)
from llmcompressor.modifiers.obcq import SparseGPTModifier
from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from hf_crosscheck import units  # noqa: E402  (the one scoring protocol)

PROJ = "re:.*(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj)$"
DOWN = "re:.*down_proj$"


def w4(sym, strategy, group=None, actorder=None):
    kw = dict(num_bits=4, type="int", symmetric=sym, strategy=strategy)
    if group:
        kw["group_size"] = group
    if actorder:
        kw["actorder"] = actorder
    return QuantizationArgs(**kw)


def grouped(sym):
    """W4A16 group 32 on the projections whose columns 32 divides, down_proj per channel."""
    return {
        "group_0": QuantizationScheme(targets=[PROJ], weights=w4(sym, "group", 32)),
        "group_1": QuantizationScheme(targets=[DOWN], weights=w4(sym, "channel")),
    }


def recipes():
    return {
        # compressed-tensors 0.19's "W8A16" preset is group 128, which divides none of
        # stories260K's widths (64, 172): per channel, the scheme our W8A16 runs.
        "w8a16": (QuantizationModifier(config_groups={"group_0": QuantizationScheme(
            targets=["Linear"], weights=QuantizationArgs(num_bits=8, type="int", symmetric=True,
                                                         strategy="channel"))},
            ignore=["lm_head"]), False),
        "w4a16_sym_g32": (QuantizationModifier(config_groups=grouped(True), ignore=["lm_head"]), False),
        "w4a16_asym_g32": (QuantizationModifier(config_groups=grouped(False), ignore=["lm_head"]), False),
        # GPTQ with activation ordering: columns are visited by decreasing Hessian diagonal.
        # compressed-tensors 0.19 refuses actorder="group" ("actorder='group' has been removed.
        # Consider using actorder='weight'"), the ordering that stored a weight_g_idx tensor, so
        # llm-compressor 0.14 can only write "weight" ordering, whose groups stay contiguous (no
        # g_idx tensor). down_proj is ignored by regex (172 columns).
        "w4a16_gptq_actorder": (GPTQModifier(
            config_groups={"group_0": QuantizationScheme(
                targets=["Linear"], weights=w4(True, "group", 32, actorder="weight"))},
            ignore=["lm_head", DOWN], block_size=32, dampening_frac=0.01), True),
        # Weight-only FP8 per channel (FP8_DYNAMIC's weights without activation quantization).
        "fp8": (QuantizationModifier(config_groups={"group_0": QuantizationScheme(
            targets=["Linear"], weights=QuantizationArgs(num_bits=8, type="float", symmetric=True,
                                                         strategy="channel"))},
            ignore=["lm_head"]), False),
        "w8a8": (QuantizationModifier(targets="Linear", scheme="W8A8", ignore=["lm_head"]), False),
        # 50% unstructured SparseGPT; llm-compressor 0.14 writes it dense.
        "pruned_dense": (SparseGPTModifier(sparsity=0.5, mask_structure="0:0", targets=["Linear"],
                                           ignore=["lm_head"], block_size=32), True),
    }


def calibration(tok_path, text):
    tok = Tokenizer.from_file(tok_path)
    ids = [tok.encode(u).ids for u in units(text)]
    return Dataset.from_dict({"input_ids": ids, "attention_mask": [[1] * len(i) for i in ids]}), len(ids)


def score(d, text):
    tok = Tokenizer.from_file(f"{d}/tokenizer.json")
    model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32)
    model.eval()
    nll, n = 0.0, 0
    for u in units(text):
        ids = tok.encode(u).ids
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()
        lp = torch.log_softmax(logits[:-1], dim=-1)
        tgt = torch.tensor(ids[1:])
        nll -= lp[torch.arange(len(tgt)), tgt].sum().item()
        n += len(tgt)
    return n, nll


def score_int8_per_token_127(d, text):
    """W8A8 scored with the activation scale vLLM's dynamic per-token int8 kernels (and ours) use,
    max|x| / 127, instead of compressed-tensors' fake-quant max|x| / 127.5 (calculate_qparams'
    symmetric bit_range / 2). Codes then never reach -128, so the clamp is the same."""
    from compressed_tensors.quantization.utils import helpers
    orig = helpers.calculate_qparams

    def q127(min_vals, max_vals, args, **kw):
        scale, zp = orig(min_vals, max_vals, args, **kw)
        return scale * (127.5 / 127.0), zp

    helpers.calculate_qparams = q127
    try:
        return score(d, text)
    finally:
        helpers.calculate_qparams = orig


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="stories260K converted by quant-convert")
    ap.add_argument("--text", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args()
    torch.manual_seed(0)
    os.makedirs(a.out, exist_ok=True)
    cmd = "/work/venv/bin/python scripts/ct_fixtures/make_llmc_fixtures.py " + " ".join(sys.argv[1:])
    ds, n_units = calibration(f"{a.base}/tokenizer.json", a.text)
    for name, (mod, needs_data) in recipes().items():
        if a.only and name not in a.only:
            continue
        d = os.path.join(a.out, name)
        shutil.rmtree(d, ignore_errors=True)
        model = AutoModelForCausalLM.from_pretrained(a.base, torch_dtype=torch.float32)
        kw = dict(dataset=ds, num_calibration_samples=n_units, max_seq_length=512) if needs_data else {}
        oneshot(model=model, recipe=[mod], **kw)
        model.save_pretrained(d, save_compressed=True)
        shutil.copy(f"{a.base}/tokenizer.json", d)
        for junk in ("recipe.yaml", "generation_config.json"):
            if os.path.exists(os.path.join(d, junk)) and junk == "generation_config.json":
                os.remove(os.path.join(d, junk))
        n, nll = score(d, a.text)
        ref = {"tokens": n, "nll": nll, "ppl": math.exp(nll / n), "text": os.path.basename(a.text),
               "command": cmd, "scored_by": "transformers + compressed-tensors, float32, "
               "scripts/hf_crosscheck.py protocol",
               "versions": {"llmcompressor": llmcompressor.__version__,
                            "compressed_tensors": compressed_tensors.__version__,
                            "transformers": transformers.__version__, "torch": torch.__version__}}
        if name == "w8a8":
            n2, nll2 = score_int8_per_token_127(d, a.text)
            ref["ppl_act_scale_127"] = math.exp(nll2 / n2)
            ref["nll_act_scale_127"] = nll2
            ref["note"] = ("ppl: compressed-tensors' fake-quant activation scale max|x|/127.5; "
                           "ppl_act_scale_127: max|x|/127, vLLM's dynamic per-token int8 and our W8A8 kernel")
        with open(os.path.join(d, "reference.json"), "w") as f:
            json.dump(ref, f, indent=2)
            f.write("\n")
        print(f"{name}: {n} tokens, NLL {nll:.6f}, PPL {ref['ppl']:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
