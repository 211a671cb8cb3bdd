#!/usr/bin/env python3
"""GGUF copies of the tiny transformers fixtures (tests/fixtures/arch/<name>), written as llama.cpp's
converter writes them, for tests/test_gguf_model.c. Run by hand (needs the `gguf` PyPI package and
numpy; never in CI):

    /work/venv/bin/python scripts/gguf_fixtures/make_gguf_fixtures.py

What llama.cpp's convert_hf_to_gguf.py (llama.cpp 0c1e57098) does that matters here, done the same:
  - tensor names from gguf-py's own TensorNameMap (gguf.get_tensor_name_map), dims reversed by
    the writer (numpy row-major [rows, cols] -> GGUF ne = {cols, rows});
  - "llama": q_proj / k_proj rows permuted (LlamaModel.permute: reshape(n_head, 2, hd/2, cols),
    swap axes 1 and 2) so rotary pairs are adjacent, k with the kv head count;
  - "gemma3": every "*norm.weight" stored as 1 + w (conversion/gemma.py Gemma3Model.norm_shift);
    no query_pre_attn_scalar key (llama.cpp uses 1/sqrt(head_dim), hence the gemma3_gguf fixture
    whose scalar equals head_dim) and the local/global pattern, which the converter leaves to
    llama.cpp's default period 6, written as llama.cpp reads it when present: one is_swa flag per
    layer (attention.sliding_window_pattern array);
  - the keys of TextModel.set_gguf_parameters (context_length, embedding_length,
    feed_forward_length, head_count, head_count_kv, rope.freq_base, layer_norm_rms_epsilon,
    key_length / value_length when head_dim is given, sliding_window).
The vocabulary is a stand-in SentencePiece list (<unk>, the config's bos/eos as control tokens,
"t<i>" for the rest): the tests feed token ids. F32 everywhere, so the model is the fixture's and
transformers' reference.json logits apply unchanged.

Also writes the error fixtures: bad_type.gguf (blk.0.attn_q.weight in IQ2_XXS, a type without an
lq_wfmt row), bad_arch.gguf (general.architecture "mamba"), bad_vocab.gguf (127 tokens, 128 embedding
rows).
"""
import json
import os
import sys

import numpy as np
import gguf
from safetensors.numpy import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
ARCH = os.path.join(HERE, "..", "..", "tests", "fixtures", "arch")
OUT = os.path.join(HERE, "..", "..", "tests", "fixtures", "gguf")

FIXTURES = {"llama2": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gemma3_gguf": "gemma3"}


def permute(w, n_head, n_head_kv):
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write(name, arch, out_name=None, vocab_delta=0, bad_type=False, arch_override=None):
    src = os.path.join(ARCH, name)
    cfg = json.load(open(os.path.join(src, "config.json")))
    tensors = load_file(os.path.join(src, "model.safetensors"))
    path = os.path.join(OUT, out_name or name + ".gguf")
    w = gguf.GGUFWriter(path, arch_override or arch)
    w.add_name(name)
    nl, nh, nkv = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    w.add_block_count(nl)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    rp = cfg.get("rope_parameters", {})
    theta = rp.get("full_attention", rp).get("rope_theta", 10000.0)
    w.add_rope_freq_base(theta)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    if "head_dim" in cfg:
        w.add_key_length(cfg["head_dim"])
        w.add_value_length(cfg["head_dim"])
    if arch == "gemma3":
        w.add_sliding_window(cfg["sliding_window"])
        w.add_key_value("gemma3.attention.sliding_window_pattern",
                        [t == "sliding_attention" for t in cfg["layer_types"]],
                        gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.BOOL)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    vocab = cfg["vocab_size"] + vocab_delta
    toks, scores, types = [], [], []
    for i in range(vocab):
        if i == 0:
            toks.append("<unk>"); types.append(gguf.TokenType.UNKNOWN)
        elif i in (cfg["bos_token_id"], cfg["eos_token_id"]):
            toks.append("<s>" if i == cfg["bos_token_id"] else "</s>"); types.append(gguf.TokenType.CONTROL)
        else:
            toks.append("t%d" % i); types.append(gguf.TokenType.NORMAL)
        scores.append(-float(i))
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    tmap = gguf.get_tensor_name_map(getattr(gguf.MODEL_ARCH, arch.upper()), nl)
    for hf, t in tensors.items():
        gname = tmap.get_name(hf, try_suffixes=(".weight", ".bias"))
        assert gname, hf
        t = t.astype(np.float32)
        if arch == "llama" and hf.endswith("q_proj.weight"):
            t = permute(t, nh, nh)
        if arch == "llama" and hf.endswith("k_proj.weight"):
            t = permute(t, nh, nkv)
        if arch == "gemma3" and hf.endswith("norm.weight"):
            t = t + 1.0
        if bad_type and gname == "blk.0.attn_q.weight":
            # the reader refuses the type before it looks at the shape: 32 rows of one 256-block
            raw = np.zeros((t.shape[0], 66), dtype=np.uint8)
            w.add_tensor(gname, raw, raw_shape=raw.shape, raw_dtype=gguf.GGMLQuantizationType.IQ2_XXS)
            continue
        w.add_tensor(gname, np.ascontiguousarray(t))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(path, os.path.getsize(path), "bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, arch in FIXTURES.items():
        write(name, arch)
    write("llama2", "llama", "bad_type.gguf", bad_type=True)
    write("llama2", "llama", "bad_arch.gguf", arch_override="mamba")
    write("llama2", "llama", "bad_vocab.gguf", vocab_delta=-1)
    print("gguf", gguf.__version__ if hasattr(gguf, "__version__") else "?", file=sys.stderr)


if __name__ == "__main__":
    main()
