#!/usr/bin/env python3
"""AWQ or SmoothQuant with llm-compressor (the peer) on the samples quant-ptq draws.

Run by hand (never CI), with a venv holding llmcompressor, e.g. /work/venv-llmc:
    python scripts/awq_llmc.py awq MODEL_DIR CALIB.txt OUT_DIR [--samples 16] [--len 512]
        [--seed 0] [--group 64] [--asym] [--duo-scaling true|false|both] [--threads 2]
    python scripts/awq_llmc.py smoothquant MODEL_DIR CALIB.txt OUT_DIR [--alpha 0.5] ...
    python scripts/awq_llmc.py rtn|w8a8 MODEL_DIR CALIB.txt OUT_DIR ...   (no smoothing: context rows)

The samples are those libquant's chunker (lq_calib_samples) draws, picked as
scripts/gptq_llmc.py picks them (splitmix64 Fisher-Yates over whole windows, sorted, tokenized by
the model's tokenizer.json through `tokenizers`).
awq:          AWQModifier() defaults (duo_scaling True, n_grid 20, the default Llama mappings)
              then QuantizationModifier: int4 symmetric (--asym: with zero points, as
              llm-compressor's AWQ examples' W4A16_ASYM), group `group`, lm_head ignored.
smoothquant:  SmoothQuantModifier(smoothing_strength=alpha) then QuantizationModifier W8A8
              (int8 per-channel weights, dynamic per-token int8 activations), lm_head ignored.
rtn, w8a8:    the same QuantizationModifier as awq / smoothquant without the transform before
              it (llm-compressor's own round to nearest, for context).
"""
import argparse
import resource
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gptq_llmc import calib_dataset, calib_rows, copy_tokenizer  # noqa: E402  (the same draw as quant-ptq)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("method", choices=["awq", "smoothquant", "rtn", "w8a8"])
    ap.add_argument("model")
    ap.add_argument("calib")
    ap.add_argument("out")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--len", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--group", type=int, default=64)
    ap.add_argument("--asym", action="store_true")
    ap.add_argument("--duo-scaling", choices=["true", "false", "both"], default="true")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from compressed_tensors.quantization import QuantizationScheme, QuantizationArgs

    torch.set_num_threads(a.threads)
    rows = calib_rows(a.model, a.calib, a.samples, a.len, a.seed)
    ds = calib_dataset(rows)

    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32)
    scheme = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(
        num_bits=4, type="int", symmetric=not a.asym, strategy="group", group_size=a.group))
    w4 = QuantizationModifier(config_groups={"group_0": scheme}, ignore=["lm_head"])
    w8a8 = QuantizationModifier(targets=["Linear"], scheme="W8A8", ignore=["lm_head"])
    if a.method == "rtn":
        recipe = [w4]
    elif a.method == "w8a8":
        recipe = [w8a8]
    elif a.method == "awq":
        from llmcompressor.modifiers.transform.awq import AWQModifier
        from llmcompressor.pipelines.cache import IntermediatesCache
        # AWQ pins its cached activations for faster host-to-GPU copies; torch without CUDA
        # raises "Found no NVIDIA driver" there. Pinning changes no value: skip it on CPU.
        if not torch.cuda.is_available():
            IntermediatesCache.pin_memory = lambda self, *args, **kwargs: None
        duo = {"true": True, "false": False, "both": "both"}[a.duo_scaling]
        recipe = [AWQModifier(duo_scaling=duo), w4]
    else:
        from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier
        recipe = [SmoothQuantModifier(smoothing_strength=a.alpha), w8a8]
    t0 = time.time()
    oneshot(model=model, dataset=ds, recipe=recipe, max_seq_length=a.len,
            num_calibration_samples=len(rows), shuffle_calibration_samples=False)
    t1 = time.time()
    model.save_pretrained(a.out, save_compressed=True)
    copy_tokenizer(a.model, a.out)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"oneshot: {t1 - t0:.1f} s, peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
