#!/usr/bin/env python3
"""gguf_to_hf.py - turn a llama-architecture GGUF (e.g. the shared SmolLM2-135M-Instruct Q4_1)
into an f32 Hugging Face directory that quant-ptq / quant-eval read.

    /work/venv/bin/python scripts/gguf_to_hf.py MODEL.gguf OUT_DIR [--check]

What it does (and why):
  - every tensor is dequantized with gguf-py's own `gguf.quants.dequantize` (the reference
    decoder of llama.cpp's formats) and stored as f32;
  - q/k rows are un-permuted: llama.cpp's convert_hf_to_gguf.py `LlamaModel.permute` reorders
    each head's rows from HF's half-split RoPE layout to interleaved pairs
    (reshape(n_head, 2, hd/2, cols).swapaxes(1, 2)); the inverse is
    reshape(n_head, hd/2, 2, cols).swapaxes(1, 2) (k uses n_head_kv);
  - config.json (LlamaForCausalLM) from the GGUF metadata; the tokenizer (tokenizer.json,
    tokenizer_config.json) is converted by transformers' own GGUF loader.
  - --check: load OUT_DIR with transformers and greedy-decode the ChatML question of
    shared/models/SOURCES.md; the reference answer is "The capital of France is Paris."
Python is for scripts only: nothing in CI runs this. Output is written to OUT_DIR.tmp and renamed.
"""
import json
import os
import shutil
import sys

import numpy as np
import gguf
from safetensors.numpy import save_file

NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
BLK = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}


def field(r, key):
    f = r.fields[key]
    v = f.parts[f.data[0]]
    if f.types and f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(v).decode()
    return v.tolist()[0]


def unpermute(w, n_head):
    rows = w.shape[0]
    return (w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def hf_name(name):
    if name in NAMES:
        return NAMES[name]
    parts = name.split(".")  # blk.N.attn_q.weight
    if parts[0] != "blk" or parts[2] not in BLK:
        sys.exit(f"gguf_to_hf: unknown tensor '{name}'")
    return f"model.layers.{parts[1]}.{BLK[parts[2]]}.{parts[3]}"


def convert(path, out):
    r = gguf.GGUFReader(path)
    arch = field(r, "general.architecture")
    if arch != "llama":
        sys.exit(f"gguf_to_hf: {path}: architecture '{arch}', only llama is handled")
    n_head = field(r, "llama.attention.head_count")
    n_kv = field(r, "llama.attention.head_count_kv")
    tensors = {}
    for t in r.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        shape = [int(x) for x in reversed(t.shape.tolist())]  # ggml ne0 is the column count
        a = a.reshape(shape)
        name = hf_name(t.name)
        if t.name.endswith("attn_q.weight"):
            a = unpermute(a, n_head)
        elif t.name.endswith("attn_k.weight"):
            a = unpermute(a, n_kv)
        tensors[name] = np.ascontiguousarray(a)
    emb = tensors["model.embed_tokens.weight"]
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": field(r, "llama.embedding_length"),
        "intermediate_size": field(r, "llama.feed_forward_length"),
        "num_hidden_layers": field(r, "llama.block_count"),
        "num_attention_heads": n_head, "num_key_value_heads": n_kv,
        "vocab_size": int(emb.shape[0]),
        "max_position_embeddings": field(r, "llama.context_length"),
        "rope_theta": float(field(r, "llama.rope.freq_base")),
        "rms_norm_eps": float(field(r, "llama.attention.layer_norm_rms_epsilon")),
        "tie_word_embeddings": "lm_head.weight" not in tensors,
        "bos_token_id": field(r, "tokenizer.ggml.bos_token_id"),
        "eos_token_id": field(r, "tokenizer.ggml.eos_token_id"),
        "hidden_act": "silu", "torch_dtype": "float32",
    }
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_file(tensors, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(path)),
                                        gguf_file=os.path.basename(path))
    tok.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)


def check(out):
    import torch
    from transformers import AutoModelForCausalLM
    ids = [1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198]
    m = AutoModelForCausalLM.from_pretrained(out, torch_dtype=torch.float32)
    g = m.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False)
    from transformers import AutoTokenizer
    text = AutoTokenizer.from_pretrained(out).decode(g[0, len(ids):])
    print(repr(text))
    return text.startswith("The capital of France is Paris.")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    if not os.path.exists(sys.argv[2]):
        convert(sys.argv[1], sys.argv[2])
    if "--check" in sys.argv[3:]:
        sys.exit(0 if check(sys.argv[2]) else 1)
