#!/usr/bin/env python3
"""w3a16_hf_check.py - transformers + compressed-tensors load our 3-bit (W3A16) outputs and agree
with our engine on them.

Writes TinyStories-656K (../shared/models/TinyStories-656K, f32) with the built quant-ptq as
W3A16 g128 RTN (symmetric and asymmetric) and GPTQ (symmetric, calibrated on the first 48 KiB of
WikiText-2 test), loads each with transformers.AutoModelForCausalLM.from_pretrained
(compressed-tensors unpacks the dense 3-bit words and dequantizes them), and compares:
  - logits: the first stories of --text as token ids (our tokenizer.json through HF `tokenizers`),
    every position's row from PyTorch against our engine's (libquant.so through ctypes:
    lq_model_load, lq_forward over the whole sequence), max |d| / max |logit| of the row;
  - perplexity: the per-story protocol of scripts/hf_crosscheck.py (units split on
    <|endoftext|>, BOS first, every token after the first scored) in PyTorch (float64
    log-softmax) against `quant-eval --per-line --separator '<|endoftext|>'` on the same directory.

Run by hand (needs torch + transformers + compressed-tensors; never in CI), after building:
    /work/venv/bin/python scripts/w3a16_hf_check.py [--build build] [--keep DIR]
Prints one row per output; exits 1 when transformers refuses one (except the asymmetric output:
transformers refuses every packed zero point, llm-compressor's own included, so that row is
decompressed by compressed-tensors' PackedQuantizationCompressor directly and marked "peer*"), a
logits row differs by more than --tol (default 2e-5, test_arch.c's bound) or the total NLLs differ
by more than 1e-5 relative.
"""
import argparse
import ctypes
import json
import math
import os
import subprocess
import sys
import tempfile

import torch
from compressed_tensors.compressors.pack_quantized.base import PackedQuantizationCompressor
from compressed_tensors.quantization import QuantizationScheme
from safetensors.torch import load_file
from tokenizers import Tokenizer
from transformers import AutoConfig, AutoModelForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_crosscheck import units  # noqa: E402  (the one scoring protocol)

VARIANTS = [  # name, quant-ptq arguments (CALIB stands for the calibration file)
    ("w3a16-g128", ["--scheme", "W3A16"]),
    ("w3a16-g128-asym", ["--scheme", "W3A16", "--asym"]),
    ("w3a16-g128-gptq", ["--scheme", "W3A16", "--method", "gptq", "--calib", "CALIB", "--calib-samples", "32",
                         "--calib-len", "256"]),
]


class Engine:
    """libquant.so through ctypes: the logits of every position of a token sequence."""

    def __init__(self, so):
        self.lib = ctypes.CDLL(so)
        self.lib.lq_last_error.restype = ctypes.c_char_p

    def logits(self, model_dir, seq, vocab):
        m, s = ctypes.c_void_p(), ctypes.c_void_p()
        lib = self.lib
        if lib.lq_model_load(model_dir.encode(), ctypes.byref(m)) != 0:
            raise RuntimeError(lib.lq_last_error().decode())
        try:
            if lib.lq_session_create(m, len(seq), None, ctypes.byref(s)) != 0:
                raise RuntimeError(lib.lq_last_error().decode())
            toks = (ctypes.c_int32 * len(seq))(*seq)
            out = (ctypes.c_float * (len(seq) * vocab))()
            st = lib.lq_forward(s, toks, len(seq), 0, out, ctypes.c_bool(True))
            lib.lq_session_free(s)
            if st != 0:
                raise RuntimeError(lib.lq_last_error().decode())
            return torch.tensor(list(out)).view(len(seq), vocab)
        finally:
            lib.lq_model_free(m)


def ct_decompressed(out):
    """The model with compressed-tensors' own PackedQuantizationCompressor.decompress applied to
    every quantized module (the scheme built from config.json's config group), loaded into the
    float architecture: for outputs transformers' loader refuses (see PEER below)."""
    cfg = json.load(open(os.path.join(out, "config.json")))
    groups = cfg["quantization_config"]["config_groups"]
    assert len(groups) == 1, "one config group expected"
    scheme = QuantizationScheme(**next(iter(groups.values())))
    sd, dense = load_file(os.path.join(out, "model.safetensors")), {}
    for k, v in sd.items():
        if k.endswith(".weight_packed"):
            m = k[: -len(".weight_packed")]
            local = {n[len(m) + 1:]: t for n, t in sd.items() if n.startswith(m + ".")}
            dense[m + ".weight"] = PackedQuantizationCompressor.decompress(local, scheme)["weight"].float()
        elif not any(k.endswith(x) for x in (".weight_scale", ".weight_zero_point", ".weight_shape")):
            dense[k] = v
    conf = AutoConfig.from_pretrained(out)
    del conf.quantization_config
    model = AutoModelForCausalLM.from_config(conf, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(dense, strict=False)
    assert not unexpected and all(k == "lm_head.weight" for k in missing), (missing, unexpected)
    model.tie_weights()
    return model.eval()


# transformers 5.25 + compressed-tensors 0.19 refuse packed zero points at load ("size mismatch":
# the model's zero-point parameter is [rows, groups], the file's [ceil(rows * bits / 32), groups]),
# for llm-compressor's own asymmetric W4A16 output as well (tests/fixtures/llmc/w4a16_asym_g32):
# a loader limitation, so those outputs are decompressed with compressed-tensors directly.
PEER = "transformers refuses packed zero points: compressed-tensors' decompress used"


def torch_nll(model, tok, path):
    """Total NLL and scored tokens of the per-story protocol over the text at path, in PyTorch."""
    nll, n = 0.0, 0
    for u in units(path):
        ids = tok.encode(u).ids  # tokenizer.json's post-processor adds BOS
        ctx = model.config.max_position_embeddings
        for s in range(0, len(ids), ctx):
            piece = ids[s:s + ctx]
            if len(piece) < 2:
                continue
            with torch.no_grad():
                lp = torch.log_softmax(model(torch.tensor([piece])).logits[0].double(), dim=-1)
            tgt = torch.tensor(piece[1:])
            nll -= lp[torch.arange(len(tgt)), tgt].sum().item()
            n += len(tgt)
    return nll, n


def our_nll(build, out, text):
    """quant-eval's total NLL and scored tokens, same protocol."""
    r = subprocess.run([os.path.join(build, "quant-eval"), "--model", out, "--file", text, "--per-line",
                        "--separator", "<|endoftext|>", "--threads", "1", "--json"], check=True,
                       capture_output=True, text=True)
    j = json.loads(r.stdout)
    return j["nll_sum"], j["tokens_scored"]


def compare(model, eng, a, out, base_tok):
    """PyTorch's model against our engine on output directory `out`: the worst logit gap (relative
    to each row's largest logit) over the first a.stories stories, both total NLLs of a.text with
    their token counts, and whether all agree (a.tol; NLL to 1e-5 relative; same token count)."""
    vocab, worst = model.config.vocab_size, 0.0
    for i, u in enumerate(units(a.text)):
        if i == a.stories:
            break
        ids = base_tok.encode(u).ids[:model.config.max_position_embeddings]
        with torch.no_grad():
            rows = model(torch.tensor([ids])).logits[0]
        mine = eng.logits(out, ids, vocab)
        worst = max(worst, float(((mine - rows).abs().max(dim=-1).values / rows.abs().max(dim=-1).values).max()))
    tn, n = torch_nll(model, Tokenizer.from_file(os.path.join(out, "tokenizer.json")), a.text)
    on, m = our_nll(a.build, out, a.text)
    return worst, tn, n, on, m, worst <= a.tol and n == m and abs(tn - on) <= 1e-5 * abs(tn)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--model", default=os.path.join(ROOT, "..", "shared", "models", "TinyStories-656K"))
    ap.add_argument("--text", default=os.path.join(ROOT, "..", "shared", "data", "tinystories_sample.txt"))
    ap.add_argument("--calib", default=os.path.join(ROOT, "..", "shared", "data", "wikitext-2-raw-v1.test.hfjoin.txt"))
    ap.add_argument("--stories", type=int, default=3, help="stories whose logits are compared")
    ap.add_argument("--tol", type=float, default=2e-5)
    ap.add_argument("--keep", help="write the outputs under this directory (default: a temporary one)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    eng = Engine(os.path.join(a.build, "dist", "libquant.so"))
    bad = 0
    print(f"{'output':18} {'HF loads':8} {'max |d|/max|logit|':>18} {'PyTorch NLL / PPL':>24} "
          f"{'libquant NLL / PPL':>24} {'tokens':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        root = a.keep or tmp
        os.makedirs(root, exist_ok=True)
        calib = os.path.join(tmp, "calib.txt")
        with open(a.calib, "rb") as f, open(calib, "wb") as g:
            g.write(f.read(49152))
        base_tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
        for name, args in VARIANTS:
            out = os.path.join(root, name)
            args = [calib if x == "CALIB" else x for x in args]
            subprocess.run([os.path.join(a.build, "quant-ptq"), "--model", a.model, "--out", out, "--force"] + args,
                           check=True, capture_output=True)
            loads = "yes"
            try:
                model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
            except Exception as e:  # a loader refusal is a result, not a crash
                if "--asym" not in args:
                    print(f"{name:18} {'NO':8} {str(e).splitlines()[0][:100]}")
                    bad += 1
                    continue
                loads, model = "peer*", ct_decompressed(out)
            worst, tn, n, on, m, ok = compare(model, eng, a, out, base_tok)
            bad += not ok
            print(f"{name:18} {loads:8} {worst:18.2e} {tn:14.6f} / {math.exp(tn / n):8.6f} "
                  f"{on:14.6f} / {math.exp(on / m):8.6f} {n:6d}{'' if ok else '  MISMATCH'}", flush=True)
    print(f"peer*: {PEER}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
