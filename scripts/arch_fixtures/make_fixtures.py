#!/usr/bin/env python3
"""make_fixtures.py - tiny random-weight checkpoints of every architecture libquant proves itself on,
with transformers' own logits and greedy ids as the reference (tests/test_arch.c reads them).

Run by hand, never in CI (needs torch + transformers):
    /work/venv/bin/python scripts/arch_fixtures/make_fixtures.py [--out tests/fixtures/arch] [NAME...]

Each family is built by transformers from that architecture's real config class and keys, seeded,
f32, then every weight is redrawn so that bugs show: norms are not all ones (Gemma's (1 + w) norms
not all zeros), biases are nonzero, Linear weights have unit-gain scale 1/sqrt(fan_in), so logits
spread by units and greedy picks are far from ties (see redraw()). save_pretrained writes config.json + model.safetensors the way
this transformers version writes them (transformers 5 writes `rope_parameters`; llama3_tf4 is the
same model with its config rewritten the transformers-4 way: `rope_theta` + `rope_scaling`).

reference.json holds, for 3 prompts given as token ids (no tokenizer involved):
  f32:   greedy ids (16 tokens, argmax of a full forward at every step) and the logits rows at the
         last prompt position and at the last position of prompt + greedy[:-1] (the engine reaches
         the first by prefill, the second by decode);
  w8a16: the same for the model whose Linear weights are replaced by their W8A16 round trip
         (compressed-tensors' rule, as kernels/cpu/quant_common.c: per output row, symmetric,
         scale = max|w| / 127.5 in f32, code = round-half-even(clamp(w / scale, -128, 127))),
         the modules quant-ptq quantizes by default: every Linear but lm_head, MoE routers and the
         shared-expert gate (llm-compressor's usual ignore list), experts quantized per expert.
Every greedy step keeps a top-1 / top-2 margin of at least MARGIN (prompts are redrawn otherwise)
and every MoE router a k-th / (k+1)-th gap of at least MARGIN, so an engine within the test's
tolerance must pick the same ids and the same experts.
"""
import argparse
import json
import math
import os
import shutil
import sys

import torch
import transformers
from transformers import (Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM,
                          MistralConfig, MistralForCausalLM, MixtralConfig, MixtralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM, Qwen2MoeConfig, Qwen2MoeForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)

SEED = 20261203
N_GEN = 16
PROMPT_LENS = (1, 8, 21)
MARGIN = 2e-3

COMMON = dict(vocab_size=128, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
              rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0)


def fam(cfg_cls, model_cls, **kw):
    return cfg_cls, model_cls, {**COMMON, **kw}


# name -> (config class, model class, config kwargs); comments say which feature each one proves
FAMILIES = {
    # plain RoPE (theta 10000), untied head
    "llama2": fam(LlamaConfig, LlamaForCausalLM, tie_word_embeddings=False,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
    # llama3 rope scaling; original_max_position_embeddings 512 puts the 4 rotary frequencies of
    # head_dim 8 in all three bands (kept, smoothed, divided by factor); tied head (Llama 3.2)
    "llama3": fam(LlamaConfig, LlamaForCausalLM, tie_word_embeddings=True, max_position_embeddings=4096,
                  rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                   "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                   "original_max_position_embeddings": 512}),
    # sliding window 8 < the prompts and generations (up to 36 positions)
    "mistral": fam(MistralConfig, MistralForCausalLM, tie_word_embeddings=True, sliding_window=8,
                   head_dim=8, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
    # q/k/v bias, tied head
    "qwen2": fam(Qwen2Config, Qwen2ForCausalLM, tie_word_embeddings=True,
                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
    # per-head q/k RMSNorm, head_dim 16 != hidden / heads
    "qwen3": fam(Qwen3Config, Qwen3ForCausalLM, tie_word_embeddings=True, head_dim=16,
                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
    # scaled embedding, (1 + w) norms, pre/post norms, GeGLU tanh, q/k norm, sliding + global
    # layers with two RoPE bases, head_dim 16 != 32 / 4, query_pre_attn_scalar 24 != head_dim
    "gemma3": fam(Gemma3TextConfig, Gemma3ForCausalLM, head_dim=16,
                  query_pre_attn_scalar=24, sliding_window=8, tie_word_embeddings=True,
                  layer_types=["sliding_attention", "full_attention"],
                  rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                                   "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
                  bos_token_id=2, eos_token_id=1),
    # gemma3 as llama.cpp runs a GGUF of it (tests/test_gguf_model.c, via
    # scripts/gguf_fixtures/make_gguf_fixtures.py): llama.cpp scales scores by 1/sqrt(head_dim)
    # whatever query_pre_attn_scalar says (gemma3.cpp, but for the 27B), so here they agree
    "gemma3_gguf": fam(Gemma3TextConfig, Gemma3ForCausalLM, head_dim=16,
                       query_pre_attn_scalar=16, sliding_window=8, tie_word_embeddings=True,
                       layer_types=["sliding_attention", "full_attention"],
                       rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                                        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
                       bos_token_id=2, eos_token_id=1),
    # top-2 of 4 experts, softmax then top-k then renormalise
    "mixtral": fam(MixtralConfig, MixtralForCausalLM, intermediate_size=24, num_local_experts=4,
                   num_experts_per_tok=2, tie_word_embeddings=True,
                   rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
    # top-2 of 4 experts without renormalising (norm_topk_prob false), a sigmoid-gated shared
    # expert, q/k/v bias
    "qwen2_moe": fam(Qwen2MoeConfig, Qwen2MoeForCausalLM, moe_intermediate_size=24,
                     shared_expert_intermediate_size=48, num_experts=4, num_experts_per_tok=2,
                     norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[],
                     tie_word_embeddings=True,
                     rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
    # Qwen2-MoE with a dense layer (mlp_only_layers [0]: the plain MLP of intermediate_size) before
    # a sparse one, and norm_topk_prob true
    "qwen2_moe_mixed": fam(Qwen2MoeConfig, Qwen2MoeForCausalLM, moe_intermediate_size=24,
                           shared_expert_intermediate_size=16, num_experts=4, num_experts_per_tok=2,
                           norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[0],
                           tie_word_embeddings=True,
                           rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
}

# The feature each fixture exists for, switched off: the script records how far the logits move
# (reference.json "ablation"), proving the fixture can tell an engine that ignores it.
ABLATIONS = {
    "llama3": ("rope_scaling off", dict(rope_parameters={"rope_type": "default", "rope_theta": 500000.0})),
    "mistral": ("sliding window off", dict(sliding_window=None)),
    "gemma3": ("every layer global", dict(layer_types=["full_attention", "full_attention"])),
}

# Linear modules that stay float under quant-ptq's defaults (llm-compressor's MoE recipes ignore
# the routers and the shared-expert gate).
FLOAT_LINEARS = ("lm_head", "mlp.gate", "block_sparse_moe.gate", "mlp.shared_expert_gate")


def is_router(name):
    return any(name.endswith(s + ".weight") for s in FLOAT_LINEARS[1:])


# Scales of the redrawn weights (see redraw); module-level so an experiment can change them.
# Random tiny models fall into fixed points (one id repeated) unless the embedding is small next
# to the layers' outputs (else a tied head predicts the input token again), q/k are sharp enough
# that attention picks positions instead of averaging the context, and the residual branches
# write strongly; these gains gave varied greedy continuations on every family.
GAIN = {"embed": 0.15, "qk": 2.5, "out": 1.5}


def redraw(model, gen, gemma):
    """Every parameter redrawn from the seeded generator (see the module comment)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if p.dim() == 1 and "norm" in name:
                p.copy_(0.3 * r if gemma else 1.0 + 0.3 * r)
            elif p.dim() == 1:  # biases
                p.copy_(0.5 * r)
            elif "lm_head" in name:  # untied head: logits spread by several units
                p.copy_(r)
            elif "embed_tokens" in name:  # Gemma multiplies by sqrt(hidden): undone here
                p.copy_((GAIN["embed"] / math.sqrt(p.shape[-1]) if gemma else GAIN["embed"]) * r)
            elif is_router(name):
                p.copy_(2.0 * r / math.sqrt(p.shape[-1]))
            else:  # Linear (out, in) or fused experts (E, out, in)
                g = GAIN["qk"] if ("q_proj" in name or "k_proj" in name) else \
                    GAIN["out"] if ("o_proj" in name or "down_proj" in name or "w2" in name) else 1.0
                p.copy_(g * r / math.sqrt(p.shape[-1]))


def w8a16_roundtrip(w):
    """compressed-tensors W8A16 (quant_common.c): per output row over the last dim."""
    amax = torch.clamp(w.abs().amax(dim=-1, keepdim=True), min=0.0)
    scale = amax / torch.tensor(127.5, dtype=torch.float32)
    scale = torch.where(scale == 0, torch.tensor(2.0 ** -23), scale)
    q = torch.round(torch.clamp(w / scale, -128.0, 127.0))
    return q * scale


def quantize_model(model):
    """W8A16 round trip of what quant-ptq quantizes by default. transformers 5 holds MoE experts
    fused ([E, out, in]); the round trip is per row of each expert either way."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() < 2 or "embed_tokens" in name or "lm_head" in name or is_router(name):
                continue
            p.copy_(w8a16_roundtrip(p))


def quantized_names(path):
    """The same set in the checkpoint's own tensor names (save_pretrained writes the Hub layout:
    one tensor per expert): every 2-D .weight but the embedding, lm_head and the routers."""
    from safetensors import safe_open
    with safe_open(path, "pt") as f:
        return sorted(k for k in f.keys() if k.endswith(".weight") and len(f.get_slice(k).get_shape()) == 2
                      and "embed_tokens" not in k and not k.startswith("lm_head") and not is_router(k))


class RouterWatch:
    """Smallest gap between the k-th and (k+1)-th router logit of any token (MoE only)."""

    def __init__(self, model, k):
        self.k, self.min_gap, self.hooks = k, float("inf"), []
        for name, mod in model.named_modules():
            if name.endswith("mlp.gate") or name.endswith("block_sparse_moe.gate"):
                self.hooks.append(mod.register_forward_hook(self.hook))

    def hook(self, mod, inp, out):
        logits = out[0] if isinstance(out, tuple) else out
        top = torch.topk(logits.float(), self.k + 1, dim=-1).values
        self.min_gap = min(self.min_gap, float((top[..., self.k - 1] - top[..., self.k]).min()))


def run_prompt(model, prompt, watch):
    """Greedy ids, the smallest top-1/top-2 margin, and the two logits rows the test compares."""
    seq, min_margin = list(prompt), float("inf")
    with torch.no_grad():
        for _ in range(N_GEN):
            logits = model(input_ids=torch.tensor([seq])).logits[0, -1]
            top = torch.topk(logits, 2).values
            min_margin = min(min_margin, float(top[0] - top[1]))
            seq.append(int(torch.argmax(logits)))
        full = model(input_ids=torch.tensor([seq[:-1]])).logits[0]
    positions = [len(prompt) - 1, len(seq) - 2]
    gap = watch.min_gap if watch else None  # JSON has no infinity
    return {"greedy": seq[len(prompt):], "positions": positions,
            "logits": [[float("%.7g" % v) for v in full[p].tolist()] for p in positions],
            "min_margin": min_margin, "min_router_gap": gap}


def make_prompts(gen, vocab, bos):
    """Prompt 0 is id 1 alone: the BOS of the llama2.c tokenizer test_arch.c runs quant-run with
    (its empty prompt is [1] whatever the model's bos_token_id); the others start with BOS."""
    return [[1]] + [[bos] + torch.randint(3, vocab, (n - 1,), generator=gen).tolist() for n in PROMPT_LENS[1:]]


def build(name, out_root):
    cfg_cls, model_cls, kw = FAMILIES[name]
    gen = torch.Generator().manual_seed(SEED + sum(map(ord, name)))
    torch.manual_seed(SEED)
    cfg = cfg_cls(**kw)
    cfg._attn_implementation = "eager"
    k = kw.get("num_experts_per_tok", 0)
    model = model_cls(cfg).to(torch.float32).eval()
    qmodel = model_cls(cfg).to(torch.float32).eval()
    # Prompt 0 is fixed ([1]): a draw whose margins are too small redraws the weights too.
    for attempt in range(20):
        redraw(model, gen, gemma=name.startswith("gemma"))
        qmodel.load_state_dict(model.state_dict())
        quantize_model(qmodel)
        prompts = make_prompts(gen, kw["vocab_size"], kw["bos_token_id"])
        refs = []
        for p in prompts:
            wa = RouterWatch(model, k) if k else None
            wb = RouterWatch(qmodel, k) if k else None
            refs.append({"ids": p, "f32": run_prompt(model, p, wa), "w8a16": run_prompt(qmodel, p, wb)})
            for w in (wa, wb):
                for h in (w.hooks if w else []):
                    h.remove()
        worst = min(min(r[v]["min_margin"], r[v]["min_router_gap"] or math.inf)
                    for r in refs for v in ("f32", "w8a16"))
        # prompt 0 (one token) often settles on one id; the longer ones must not
        distinct = len(set(i for r in refs for i in r["f32"]["greedy"]))
        print(f"{name}: draw {attempt}: min margin {worst:.3g}, {distinct} distinct greedy ids", flush=True)
        if worst >= MARGIN and distinct >= 8:
            break
    else:
        sys.exit(f"{name}: no draw with margins >= {MARGIN} and 8 distinct greedy ids in 20")

    ablation = None
    if name in ABLATIONS:
        what, akw = ABLATIONS[name]
        acfg = cfg_cls(**{**kw, **akw})
        acfg._attn_implementation = "eager"
        amodel = model_cls(acfg).to(torch.float32).eval()
        amodel.load_state_dict(model.state_dict())
        seq = refs[-1]["ids"] + refs[-1]["f32"]["greedy"][:-1]
        with torch.no_grad():
            d = (amodel(input_ids=torch.tensor([seq])).logits - model(input_ids=torch.tensor([seq])).logits).abs().max()
        ablation = {"what": what, "max_abs_logit_diff": float("%.4g" % float(d))}
        print(f"{name}: {what} moves the logits by up to {float(d):.4g}")

    out = os.path.join(out_root, name)
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out, safe_serialization=True)
    for junk in ("generation_config.json",):
        if os.path.exists(os.path.join(out, junk)):
            os.remove(os.path.join(out, junk))
    ref = {"family": name, "architecture": model.config.architectures[0],
           "transformers": transformers.__version__, "torch": torch.__version__,
           "note": "written by scripts/arch_fixtures/make_fixtures.py; see its docstring",
           "ablation": ablation, "w8a16_params": quantized_names(os.path.join(out, "model.safetensors")), "prompts": refs}
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")
    print(f"{name}: {model.config.architectures[0]}, {sum(p.numel() for p in model.parameters())} params, "
          f"min margin {worst:.4g} (draw {attempt})")
    return out


def tf4_config(src, dst):
    """The same checkpoint with its config written the transformers-4 way (rope_theta +
    rope_scaling) - what every Llama 3 on the Hub before transformers 5 carries."""
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    shutil.copy(os.path.join(src, "config.json"), dst)
    shutil.copy(os.path.join(src, "reference.json"), dst)
    os.symlink(os.path.join("..", os.path.basename(src), "model.safetensors"), os.path.join(dst, "model.safetensors"))
    path = os.path.join(dst, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    rp = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rp.pop("rope_theta")
    cfg["rope_scaling"] = rp if rp.get("rope_type", "default") != "default" else None
    cfg["transformers_version"] = "4.57.1 (rewritten by make_fixtures.py from " + cfg["transformers_version"] + ")"
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    ref = os.path.join(dst, "reference.json")
    with open(ref) as f:
        r = json.load(f)
    r["family"] = os.path.basename(dst)
    with open(ref, "w") as f:
        json.dump(r, f, separators=(",", ":"))
        f.write("\n")


def main():
    torch.set_num_threads(1)  # tiny models: threads only add synchronisation
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "arch"))
    ap.add_argument("names", nargs="*", default=list(FAMILIES))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for n in a.names:
        out = build(n, a.out)
        if n == "llama3":
            tf4_config(out, os.path.join(a.out, "llama3_tf4"))


if __name__ == "__main__":
    main()
