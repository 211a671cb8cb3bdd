#!/usr/bin/env python3
"""Seed corpora for the fuzz campaigns (docs/FUZZING.md), from the shared models and the
reproducers of issue 10. Standard library only (no venv needed).

    scripts/fuzz_seeds.py SHARED_DIR OUT_DIR

writes OUT_DIR/<target>/<name> for every target in tests/fuzz. The shared files are large (a 2 MB
tokenizer.json, a 98 MB GGUF), so each seed keeps their structure (every key, normalizer,
metadata entry, tensor name and dtype) with the big arrays cut down to a few entries: a fuzzer
mutates a 4 KB seed thousands of times faster than a 2 MB one, and the parser paths are the same.
"""
import json
import os
import struct
import sys


def write(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- safetensors ----------------------------------------------------------------------------

DT_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "I8": 1, "U8": 1, "I32": 4, "F8_E4M3": 1, "I64": 8}


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, payload bytes or None = zeros)."""
    hdr, blobs, off = {}, [], 0
    if metadata is not None:
        hdr["__metadata__"] = metadata
    for name, dt, shape, payload in tensors:
        n = DT_SIZE[dt]
        for d in shape:
            n *= d
        if payload is None:
            payload = bytes(n)
        assert len(payload) == n, name
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        blobs.append(payload)
        off += n
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def small_shape(shape):
    return [min(d, 4) for d in shape]


def seeds_safetensors(shared, out):
    path = os.path.join(shared, "models/TinyStories-656K/model.safetensors")
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
    meta = hdr.pop("__metadata__", None)
    ts = [(k, v["dtype"], small_shape(v["shape"]), None) for k, v in hdr.items()]
    write(out, "safetensors", "tinystories_shrunk.safetensors", safetensors(ts, meta))
    # the real header over a payload cut to nothing: every offset is past the end
    with open(path, "rb") as f:
        write(out, "safetensors", "tinystories_header_only.safetensors", f.read(8 + n))
    # what quant-ptq writes: packed int4, scales, zero points (W4A16 asym), FP8, int8
    q = [("model.layers.0.mlp.down_proj.weight_packed", "I32", [4, 2], None),
         ("model.layers.0.mlp.down_proj.weight_scale", "F16", [4, 1], None),
         ("model.layers.0.mlp.down_proj.weight_zero_point", "I32", [1, 1], None),
         ("model.layers.0.mlp.down_proj.weight_shape", "I64", [2], struct.pack("<qq", 4, 16)),
         ("model.layers.0.self_attn.q_proj.weight", "F8_E4M3", [4, 4], None),
         ("model.layers.0.self_attn.k_proj.weight", "I8", [4, 4], None),
         ("model.layers.0.self_attn.k_proj.weight_scale", "BF16", [4, 1], None)]
    write(out, "safetensors", "quantized.safetensors", safetensors(q, {"format": "pt"}))
    # defect 7: finite weights near +-3e38 (max - min overflows)
    big = struct.pack("<4f", 3e38, -3e38, 1.0, -1.0)
    write(out, "safetensors", "huge_weights.safetensors",
          safetensors([("model.layers.0.mlp.up_proj.weight", "F32", [2, 2], big)]))
    # a sparse-bitmask triple (compressed-tensors layout)
    sb = [("model.layers.0.mlp.up_proj.bitmask", "U8", [4, 1], b"\x0f\x00\xff\x01"),
          ("model.layers.0.mlp.up_proj.compressed", "F32", [13], None),
          ("model.layers.0.mlp.up_proj.row_offsets", "I64", [4], struct.pack("<4q", 0, 4, 4, 12)),
          ("model.layers.0.mlp.up_proj.shape", "I64", [2], struct.pack("<2q", 4, 8))]
    write(out, "safetensors", "sparse_bitmask.safetensors", safetensors(sb))


# ---- tokenizer.json -------------------------------------------------------------------------

def shrink_bpe(tok, keep):
    m = tok["model"]
    vocab = {k: v for k, v in m["vocab"].items() if v < keep}
    merges = []
    for mg in m["merges"]:
        a, b = mg.split(" ", 1) if isinstance(mg, str) else mg
        if a in vocab and b in vocab and (a + b) in vocab:
            merges.append(mg)
    m = dict(m, vocab=vocab, merges=merges)
    added = [t for t in tok.get("added_tokens", []) if t["id"] < keep]
    return dict(tok, model=m, added_tokens=added)


def seeds_tokenizer_json(shared, out):
    with open(os.path.join(shared, "models/TinyStories-656K/tokenizer.json")) as f:
        ts = json.load(f)
    with open(os.path.join(shared, "models/gpt2-tokenizer/tokenizer.json")) as f:
        g2 = json.load(f)
    ts_s = shrink_bpe(ts, 300)
    g2_s = shrink_bpe(g2, 300)
    g2_s["added_tokens"] = [{"id": 300, "content": "<|endoftext|>", "single_word": False,
                             "lstrip": False, "rstrip": False, "normalized": True, "special": True}]
    g2_s["model"]["vocab"]["<|endoftext|>"] = 300
    write(out, "tokenizer_json", "tinystories_shrunk.json", json.dumps(ts_s))
    write(out, "tokenizer_json", "gpt2_shrunk.json", json.dumps(g2_s))
    # defect 5: normalizers / pre-tokenizers transformers applies and we ignored
    for name, norm in [("lowercase", {"type": "Lowercase"}), ("nfkc", {"type": "NFKC"}),
                       ("unknown_norm", {"type": "Frobnicate"})]:
        t = json.loads(json.dumps(ts_s))
        t["normalizer"]["normalizers"].insert(0, norm)
        write(out, "tokenizer_json", "repro5_%s.json" % name, json.dumps(t))
    t = json.loads(json.dumps(ts_s))
    t["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "(unclosed"},
                          "behavior": "Isolated", "invert": False}
    write(out, "tokenizer_json", "repro5_bad_split.json", json.dumps(t))
    # defect 13: a backtracking pre-tokenizer regex
    t = json.loads(json.dumps(g2_s))
    t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": "(\\w+\\s?)*$"}, "behavior": "Isolated",
         "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    write(out, "tokenizer_json", "repro13_backtrack.json", json.dumps(t))


# ---- GGUF -----------------------------------------------------------------------------------

def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_value(t, v):
    if t == 8:
        return gguf_str(v)
    fmt = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
           11: "<q", 12: "<d"}[t]
    return struct.pack(fmt, v)


def gguf_file(kvs, tensors, align=32):
    """kvs: (key, type, value) with type 9 = (elem_type, list); tensors: (name, dims, ggml type,
    nbytes)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += gguf_str(k) + struct.pack("<I", t)
        if t == 9:
            et, items = v
            out += struct.pack("<IQ", et, len(items)) + b"".join(gguf_value(et, x) for x in items)
        else:
            out += gguf_value(t, v)
    off = 0
    for name, dims, gt, nb in tensors:
        out += gguf_str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", gt, off)
        off += nb + (-nb % align)
    out += bytes(-len(out) % align)
    return out + bytes(off)


def read_gguf_kvs(path, max_items):
    """The metadata of a GGUF file, arrays cut to max_items."""
    with open(path, "rb") as f:
        data = f.read(8 << 20)
    pos = 4 + 4
    n_t, n_kv = struct.unpack_from("<QQ", data, pos)
    pos += 16

    def rd_str():
        nonlocal pos
        n = struct.unpack_from("<Q", data, pos)[0]
        s = data[pos + 8:pos + 8 + n].decode("utf-8", "replace")
        pos += 8 + n
        return s

    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    fmts = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
            11: "<q", 12: "<d"}

    def rd_val(t):
        nonlocal pos
        if t == 8:
            return rd_str()
        v = struct.unpack_from(fmts[t], data, pos)[0]
        pos += sizes[t]
        return v

    kvs = []
    for _ in range(n_kv):
        k = rd_str()
        t = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        if t == 9:
            et, n = struct.unpack_from("<IQ", data, pos)
            pos += 12
            items = [rd_val(et) for _ in range(n)]
            kvs.append((k, 9, (et, items[:max_items])))
        else:
            kvs.append((k, t, rd_val(t)))
    return kvs


def seeds_gguf(shared, out):
    smol = os.path.join(shared, "models/SmolLM2-135M-Instruct-Q4_1/SmolLM2-135M-Instruct.Q4_1.gguf")
    kvs = read_gguf_kvs(smol, 64)
    # Q4_1 (type 3): 32 weights in 20 bytes; F32 (type 0)
    tensors = [("token_embd.weight", [32, 2], 3, 40), ("output_norm.weight", [32], 0, 128),
               ("blk.0.attn_q.weight", [32, 4], 3, 80)]
    write(out, "gguf", "smollm2_shrunk.gguf", gguf_file(kvs, tensors))
    for name in ("llama2-tokenizer/ggml-vocab-llama-spm.gguf", "gpt2-tokenizer/ggml-vocab-gpt-2.gguf"):
        kvs = read_gguf_kvs(os.path.join(shared, "models", name), 300)
        write(out, "gguf", os.path.basename(name).replace(".gguf", "_shrunk.gguf"), gguf_file(kvs, []))


# ---- config.json ----------------------------------------------------------------------------

def seeds_config_json(shared, out):
    with open(os.path.join(shared, "models/TinyStories-656K/config.json")) as f:
        base = json.load(f)
    write(out, "config_json", "tinystories.json", json.dumps(base))
    q = {"quant_method": "compressed-tensors", "format": "pack-quantized", "version": "0.19.0",
         "quantization_status": "compressed", "global_compression_ratio": None, "ignore": ["lm_head"],
         "kv_cache_scheme": None,
         "config_groups": {"group_0": {"targets": ["Linear"], "input_activations": None,
                                       "output_activations": None, "format": "pack-quantized",
                                       "weights": {"num_bits": 4, "type": "int", "symmetric": False,
                                                   "strategy": "group", "group_size": 32,
                                                   "actorder": "group", "observer": "minmax",
                                                   "dynamic": False, "block_structure": None,
                                                   "observer_kwargs": {}}}}}
    # issue 10 A: what llm-compressor 0.14 writes (empty sparsity / transform configs, regex
    # targets, observer values)
    c = dict(base, quantization_config=dict(q, sparsity_config={}, transform_config={}))
    c["quantization_config"]["config_groups"]["group_0"]["targets"] = ["re:.*mlp.*", "Linear"]
    write(out, "config_json", "llmcompressor_w4a16_asym.json", json.dumps(c))
    fp8 = json.loads(json.dumps(q))
    fp8["format"] = "naive-quantized"
    fp8["config_groups"]["group_0"]["format"] = "float-quantized"
    fp8["config_groups"]["group_0"]["weights"] = {"num_bits": 8, "type": "float", "symmetric": True,
                                                  "strategy": "channel", "dynamic": False}
    fp8["config_groups"]["group_0"]["input_activations"] = {"num_bits": 8, "type": "float",
                                                            "symmetric": True, "strategy": "token",
                                                            "dynamic": True}
    write(out, "config_json", "fp8_naive.json", json.dumps(dict(base, quantization_config=fp8)))
    sp = dict(q, sparsity_config={"format": "sparse-24-bitmask", "global_sparsity": 0.5,
                                  "sparsity_structure": "2:4", "targets": ["Linear"],
                                  "ignore": ["lm_head"], "registry_requires_subclass": False})
    write(out, "config_json", "sparse24.json", json.dumps(dict(base, quantization_config=sp)))
    # structured pruning: per-layer sizes
    pl = dict(base, layer_intermediate_sizes=[384, 192], layer_num_key_value_heads=[4, 2],
              layer_num_attention_heads=[8, 4])
    write(out, "config_json", "per_layer.json", json.dumps(pl))
    # rope scaling and a GQA/untied variant
    rs = dict(base, rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
              tie_word_embeddings=False, head_dim=16)
    write(out, "config_json", "rope_llama3.json", json.dumps(rs))


# ---- distill manifests ----------------------------------------------------------------------

def seeds_committed(out, repo):
    """The committed corpora (tests/fuzz/corpus/<target>: hand-written and tool-written seeds,
    among them the distillation manifests of a sealed, an unsealed and a --sequences run, and
    defect 3's edited cursor) seed the campaigns too."""
    base = os.path.join(repo, "tests/fuzz/corpus")
    for target in sorted(os.listdir(base)):
        for f in sorted(os.listdir(os.path.join(base, target))):
            with open(os.path.join(base, target, f), "rb") as fh:
                write(out, target, f, fh.read())


# ---- recipes --------------------------------------------------------------------------------

def seeds_recipe(shared, out, repo):
    d = os.path.join(repo, "recipes")
    for f in sorted(os.listdir(d)):
        if f.endswith(".yaml"):
            with open(os.path.join(d, f)) as fh:
                write(out, "recipe", f, fh.read())
    # defect 10: an integer that overflows sscanf; defect 8: values only `run` used to catch
    write(out, "recipe", "repro10_overflow.yaml",
          'sparsity_stage:\n  sparsity_modifiers:\n    MagnitudePruningModifier:\n'
          '      mask_structure: "2:4294967300"\n      targets: [Linear]\n')
    write(out, "recipe", "repro8_distill.yaml",
          "distill_stage:\n  files: [t.txt]\n  top_k: 999999\n  features: [model.layers.99]\n"
          "  steps: 18446744073709551617\n  lr: 1e400\n")


def main():
    shared, out = sys.argv[1], sys.argv[2]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    seeds_safetensors(shared, out)
    seeds_tokenizer_json(shared, out)
    seeds_gguf(shared, out)
    seeds_config_json(shared, out)
    seeds_committed(out, repo)
    seeds_recipe(shared, out, repo)


if __name__ == "__main__":
    main()
