#!/usr/bin/env python3
"""GPTQ with llm-compressor (the peer) on the calibration samples quant-ptq --method gptq draws.

Run by hand (never CI), with a venv holding llmcompressor, e.g. /work/venv:
    python scripts/gptq_llmc.py MODEL_DIR CALIB.txt OUT_DIR [--samples 64] [--len 512]
        [--seed 0] [--group 128] [--damp 0.01] [--threads 2]

The samples are the ones libquant's chunker (lq_calib_samples, libquant/src/compress/calib_text.c)
draws: the text is tokenized whole (no special tokens), cut into consecutive windows of `len`
tokens, and `samples` windows are picked by a Fisher-Yates shuffle driven by splitmix64(seed),
then sorted by position. So both tools calibrate on the same tokens.
The recipe is llm-compressor's W4A16 preset (int4, symmetric, group `group`) with GPTQModifier
defaults (block_size 128, actorder static), lm_head ignored.
"""
import argparse
import resource
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("calib")
    ap.add_argument("out")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--len", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--group", type=int, default=128)
    ap.add_argument("--damp", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from llmcompressor import oneshot
    from llmcompressor.modifiers.gptq import GPTQModifier
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
    scheme = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(
        num_bits=4, type="int", symmetric=True, strategy="group", group_size=a.group))
    recipe = GPTQModifier(config_groups={"group_0": scheme}, ignore=["lm_head"],
                          dampening_frac=a.damp, block_size=128)
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
