#!/usr/bin/env python3
"""ct_config_check.py - does transformers + compressed-tensors load our output, and how does
compressed-tensors read its quantization_config (config groups' actorder, the sparsity_config)?

    /work/venv-hf/bin/python scripts/ct_config_check.py DIR [DIR ...]

For each directory: QuantizationConfig validates the config (pydantic, extra keys forbidden),
SparsityCompressionConfig's registry reads sparsity_config when there is one, transformers
loads the model (compressed-tensors decompresses it) and one forward pass gives finite logits.
Not a CI dependency (needs torch, transformers, compressed-tensors).
"""
import sys, json, torch
from transformers import AutoModelForCausalLM
from compressed_tensors.quantization import QuantizationConfig
from compressed_tensors.config import SparsityCompressionConfig
for d in sys.argv[1:]:
    cfg = json.load(open(d + "/config.json"))["quantization_config"]
    qc = QuantizationConfig.model_validate({k: v for k, v in cfg.items() if k != "sparsity_config"})
    sc = cfg.get("sparsity_config")
    scc = SparsityCompressionConfig.load_from_registry(sc["format"], **{k: v for k, v in sc.items() if k != "format"}) if sc else None
    m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)
    ids = torch.tensor([[1, 45, 48, 47, 26]])
    with torch.no_grad():
        out = m(ids).logits
    acts = {g: a.weights.actorder for g, a in qc.config_groups.items()}
    print(d, "loaded; actorder", acts, "sparsity", type(scc).__name__ if scc else None,
          getattr(scc, "sparsity_structure", None), "logits finite", bool(torch.isfinite(out).all()))
