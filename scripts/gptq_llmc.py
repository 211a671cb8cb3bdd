#!/usr/bin/env python3
"""GPTQ with llm-compressor (the peer) on the calibration samples quant-ptq --method gptq draws.

Run by hand (never CI), with a venv holding llmcompressor, e.g. /work/venv-llmc:
    python scripts/gptq_llmc.py MODEL_DIR CALIB.txt OUT_DIR [--samples 64] [--len 512]
        [--seed 0] [--bits 4] [--group 128] [--asym] [--actorder static|weight|none]
        [--damp 0.01] [--threads 2]

The samples are the ones libquant's chunker (lq_calib_samples, libquant/src/compress/calib_text.c)
draws: the text is tokenized whole (no special tokens), cut into consecutive windows of `len`
tokens, and `samples` windows are picked by a Fisher-Yates shuffle driven by splitmix64(seed),
then sorted by position. So both tools calibrate on the same tokens.
The tokenizer is MODEL_DIR/tokenizer.json run by the `tokenizers` package (the file's own
pipeline, which test_tokenizer_hf shows lq_tokenizer_encode equals), not AutoTokenizer:
transformers 5.17 rebuilds a LlamaTokenizer from the vocabulary with its own pre-tokenizer and
gives other ids (TinyStories-656K: 20733 ids for the 48 KiB WikiText-2 head, the file's pipeline
21345). For the same reason the output gets MODEL_DIR's tokenizer files copied, not re-saved.
oneshot() runs with shuffle_calibration_samples=False: its default draws the samples' order
from an unseeded RandomSampler, and since it sums H (and AWQ's statistics) in f32 the order moves
the last bits, so two runs differ (TinyStories-656K W3A16 g128 GPTQ: PPL 29.7425 and 29.6744).
Unshuffled, it takes them in one fixed order (its LengthAwareSampler's) and repeats itself.
The recipe is an int `bits` weight-only scheme (symmetric unless --asym, group `group`, -1 per
channel) with GPTQModifier defaults (block_size 128, dampening 0.01, actorder static), lm_head
ignored.
"""
import argparse
import os
import resource
import shutil
import time

M64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def pick_windows(n_windows, n_samples, seed):
    idx = list(range(n_windows))
    st = seed & M64
    for i in range(n_windows - 1, 0, -1):
        st, r = splitmix64(st)
        j = r % (i + 1)
        idx[i], idx[j] = idx[j], idx[i]
    return sorted(idx[: min(n_samples, n_windows)])


def calib_rows(model_dir, calib, samples, length, seed):
    """The token windows lq_calib_samples draws from `calib` with the model's tokenizer.json."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    ids = tok.encode(open(calib, encoding="utf-8").read(), add_special_tokens=False).ids
    nw = len(ids) // length
    sel = pick_windows(nw, samples, seed)
    print(f"calibration: {len(ids)} tokens, {nw} windows of {length}, {len(sel)} samples: {sel[:8]}...",
          flush=True)
    return [ids[k * length:(k + 1) * length] for k in sel]


def calib_dataset(rows):
    from datasets import Dataset
    return Dataset.from_dict({"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows]})


def copy_tokenizer(model_dir, out):
    """The base model's tokenizer files, byte for byte (see the module docstring)."""
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model"):
        if os.path.exists(os.path.join(model_dir, f)):
            shutil.copyfile(os.path.join(model_dir, f), os.path.join(out, f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("calib")
    ap.add_argument("out")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--len", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--group", type=int, default=128)
    ap.add_argument("--asym", action="store_true")
    ap.add_argument("--actorder", choices=["static", "weight", "none"], default="static")
    ap.add_argument("--damp", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM
    from llmcompressor import oneshot
    from llmcompressor.modifiers.gptq import GPTQModifier
    from compressed_tensors.quantization import QuantizationScheme, QuantizationArgs

    torch.set_num_threads(a.threads)
    rows = calib_rows(a.model, a.calib, a.samples, a.len, a.seed)
    ds = calib_dataset(rows)

    model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32)
    strategy = dict(strategy="channel") if a.group < 0 else dict(strategy="group", group_size=a.group)
    scheme = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(
        num_bits=a.bits, type="int", symmetric=not a.asym, **strategy))
    recipe = GPTQModifier(config_groups={"group_0": scheme}, ignore=["lm_head"],
                          dampening_frac=a.damp, block_size=128,
                          actorder=None if a.actorder == "none" else a.actorder)
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
