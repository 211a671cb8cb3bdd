#!/usr/bin/env python3
"""AWQ or SmoothQuant with llm-compressor (the peer) on the samples quant-ptq draws.

Run by hand (never CI), with a venv holding llmcompressor, e.g. /work/venv:
    python scripts/awq_llmc.py awq MODEL_DIR CALIB.txt OUT_DIR [--samples 16] [--len 512]
        [--seed 0] [--group 64] [--threads 2]
    python scripts/awq_llmc.py smoothquant MODEL_DIR CALIB.txt OUT_DIR [--alpha 0.5] ...

The samples are those libquant's chunker (lq_calib_samples) draws, picked as
scripts/gptq_llmc.py picks them (splitmix64 Fisher-Yates over whole windows, sorted).
awq:          AWQModifier() defaults (duo_scaling True, n_grid 20, the default Llama mappings)
              then QuantizationModifier W4A16: int4 symmetric, group `group`, lm_head ignored.
smoothquant:  SmoothQuantModifier(smoothing_strength=alpha) then QuantizationModifier W8A8
              (int8 per-channel weights, dynamic per-token int8 activations), lm_head ignored.
"""
import argparse
import resource
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gptq_llmc import pick_windows  # noqa: E402  (the same draw as quant-ptq)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("method", choices=["awq", "smoothquant"])
    ap.add_argument("model")
    ap.add_argument("calib")
    ap.add_argument("out")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--len", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--group", type=int, default=64)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from compressed_tensors.quantization import QuantizationScheme, QuantizationArgs

    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(a.model)
    ids = tok(open(a.calib, encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
    nw = len(ids) // a.len
    sel = pick_windows(nw, a.samples, a.seed)
    rows = [ids[k * a.len:(k + 1) * a.len] for k in sel]
    print(f"calibration: {len(ids)} tokens, {nw} windows of {a.len}, {len(rows)} samples: {sel[:8]}...")
    ds = Dataset.from_dict({"input_ids": rows, "attention_mask": [[1] * a.len for _ in rows]})

    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32)
    if a.method == "awq":
        from llmcompressor.modifiers.transform.awq import AWQModifier
        from llmcompressor.pipelines.cache import IntermediatesCache
        # AWQ pins its cached activations for faster host-to-GPU copies; torch without CUDA
        # raises "Found no NVIDIA driver" there. Pinning changes no value: skip it on CPU.
        if not torch.cuda.is_available():
            IntermediatesCache.pin_memory = lambda self, *args, **kwargs: None
        scheme = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(
            num_bits=4, type="int", symmetric=True, strategy="group", group_size=a.group))
        recipe = [AWQModifier(), QuantizationModifier(config_groups={"group_0": scheme}, ignore=["lm_head"])]
    else:
        from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier
        recipe = [SmoothQuantModifier(smoothing_strength=a.alpha),
                  QuantizationModifier(targets=["Linear"], scheme="W8A8", ignore=["lm_head"])]
    t0 = time.time()
    oneshot(model=model, dataset=ds, recipe=recipe, max_seq_length=a.len,
            num_calibration_samples=len(rows))
    t1 = time.time()
    model.save_pretrained(a.out, save_compressed=True)
    tok.save_pretrained(a.out)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"oneshot: {t1 - t0:.1f} s, peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
