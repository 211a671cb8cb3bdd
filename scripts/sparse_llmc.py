#!/usr/bin/env python3
"""SparseGPT / Wanda with llm-compressor (the peer) on the calibration samples quant-prune draws.

Run by hand (never CI), with a venv holding llmcompressor, e.g. /work/venv-llmc:
    python scripts/sparse_llmc.py MODEL_DIR CALIB.txt OUT_DIR --method sparsegpt|wanda
        [--sparsity 0.5] [--mask 0:0|2:4] [--samples 16] [--len 512] [--seed 0] [--threads 2]

The samples are the ones libquant's chunker (lq_calib_samples) draws, picked as
scripts/gptq_llmc.py does (tokenize whole with the model's tokenizer.json through `tokenizers`,
windows of `len`, splitmix64 Fisher-Yates, sorted).
The modifier is llm-compressor's SparseGPTModifier / WandaPruningModifier with its defaults
(dampening_frac 0.01, block_size 128, targets Linear inside the decoder layers); mask_structure
"2:4" prunes 2 of every 4 input weights. The output is saved dense (save_compressed=False), as
quant-prune writes it, so quant-eval reads both the same way.
"""
import argparse
import resource
import time

from gptq_llmc import calib_dataset, calib_rows, copy_tokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("calib")
    ap.add_argument("out")
    ap.add_argument("--method", choices=["sparsegpt", "wanda"], required=True)
    ap.add_argument("--sparsity", type=float, default=0.5)
    ap.add_argument("--mask", default="0:0")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--len", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM
    from llmcompressor import oneshot
    from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier

    torch.set_num_threads(a.threads)
    rows = calib_rows(a.model, a.calib, a.samples, a.len, a.seed)
    ds = calib_dataset(rows)

    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32)
    # "re:.*lm_head", not "lm_head": 0.14 names a top-level target's own Linear "lm_head." (the
    # layer name, a dot, the empty submodule name), which the plain name does not match, so
    # ignore=["lm_head"] prunes the head anyway (and with it a tied embedding: TinyStories-656K
    # PPL 20.4 -> 70 at 50%, not 32). The regex is what its own docstring shows.
    ignore = ["re:.*lm_head"]
    if a.method == "sparsegpt":
        recipe = SparseGPTModifier(sparsity=a.sparsity, mask_structure=a.mask, targets=["Linear"],
                                   ignore=ignore, dampening_frac=0.01, block_size=128)
    else:
        recipe = WandaPruningModifier(sparsity=a.sparsity, mask_structure=a.mask, targets=["Linear"],
                                      ignore=ignore)
    t0 = time.time()
    oneshot(model=model, dataset=ds, recipe=recipe, max_seq_length=a.len,
            num_calibration_samples=len(rows), shuffle_calibration_samples=False)
    t1 = time.time()
    model.save_pretrained(a.out, save_compressed=False)
    copy_tokenizer(a.model, a.out)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"oneshot: {t1 - t0:.1f} s, peak RSS {rss:.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
