#!/usr/bin/env python3
"""Check a quant-ptq output against compressed-tensors' own rules and the original weights.

    python3 scripts/check_compressed_tensors.py --original DIR --quantized DIR [--json]

Installs nothing. Needs numpy. Optional, used when importable:
    pip install compressed-tensors torch --index-url https://download.pytorch.org/whl/cpu
(the CPU torch wheel; torch from plain PyPI pulls the multi-GB CUDA stack). With torch and
compressed_tensors present, config.json's quantization_config is validated by
compressed_tensors.quantization.QuantizationConfig (pydantic) and the int codes are unpacked by
compressed_tensors' unpack_from_int32. Without them the script re-implements exactly those two
steps from compressed-tensors 0.20 (cited below) and checks the config against the same field
rules (QuantizationArgs / QuantizationScheme forbid unknown keys).

For every quantized linear module it dequantizes the stored tensors with compressed-tensors'
formula and compares with the original float weight:
  int (W8A16, W4A16, W8A8): |w - (q - zero) * scale| <= scale / 2 for every element (round to
      nearest; the scale covers the whole range, so no element is clipped);
  FP8 E4M3: |w - deq| <= max(|w| * 2^-4, scale * 2^-10) (half an ulp of a 3-bit mantissa, or of
      the subnormal step), since codes are round-to-nearest of w / scale.
and reports the relative Frobenius error ||W - deq|| / ||W||. Exit status 0 when every module
is within its bound and the config validates, 1 otherwise.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

# ---- safetensors, read directly (numpy has no float8; the header is plain JSON) -------------

DTYPES = {"F32": np.float32, "F16": np.float16, "I8": np.int8, "U8": np.uint8, "I32": np.int32,
          "I64": np.int64, "F64": np.float64, "F8_E4M3": np.uint8, "BF16": np.uint16}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[base + b:base + e], dtype=DTYPES[info["dtype"]])
        arr = arr.reshape(info["shape"]) if info["shape"] else arr.reshape(())
        if info["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = (info["dtype"], arr)
    return out


def load_dir(d):
    return read_safetensors(os.path.join(d, "model.safetensors"))


# ---- compressed-tensors re-implementations ---------------------------------------------------


def unpack_from_int32_np(value, num_bits, shape, packed_dim=1):
    """compressed_tensors/compressors/pack_quantized/helpers.py unpack_from_int32 (0.20,
    lines 299-387 of the wheel): element i of a line sits at global bit i*num_bits (low bits
    first, straddling into the next int32 word), stored as the code + 2^(num_bits-1)."""
    v = value.astype(np.int64) & 0xFFFFFFFF
    if packed_dim == 0:
        v = v.T
    rows = v.shape[0]
    cols = int(shape[packed_dim])
    i = np.arange(cols, dtype=np.int64)
    bit = i * num_bits
    word, off = bit // 32, bit % 32
    v = np.concatenate([v, np.zeros((rows, 1), dtype=np.int64)], axis=1)  # spill word
    u = (v[:, word] >> off) | (v[:, word + 1] << (32 - off))
    u &= (1 << num_bits) - 1
    q = (u - (1 << (num_bits - 1))).astype(np.int8)
    return q.T if packed_dim == 0 else q


def e4m3_to_f32(codes):
    """OCP FP8 E4M3 (torch.float8_e4m3fn): bias 7, no infinities, S.1111.111 is NaN."""
    c = codes.astype(np.int64)
    s = np.where(c & 0x80, -1.0, 1.0)
    e = (c >> 3) & 0xF
    m = c & 7
    val = np.where(e == 0, m * 2.0 ** -9, (1 + m / 8.0) * 2.0 ** (e - 7))
    val = np.where((e == 15) & (m == 7), np.nan, val)
    return (s * val).astype(np.float64)


def dequantize_np(q, scale, zero_point=None, group_size=None):
    """forward_helpers.py _dequantize: (x_q - zero_point) * scale, broadcast per group along
    columns (_process_group reshapes the last dim into (n_groups, group_size))."""
    q = q.astype(np.float64)
    scale = scale.astype(np.float64)
    if scale.ndim == 0 or scale.size == 1:
        scale = np.full((q.shape[0], 1), float(scale.reshape(-1)[0]))
    if scale.ndim == 1:
        scale = scale[:, None]
    g = q.shape[1] // scale.shape[1] if group_size is None else group_size
    s = np.repeat(scale, g, axis=1)
    z = 0.0 if zero_point is None else np.repeat(zero_point.astype(np.float64), g, axis=1)
    return (q - z) * s, s


def int_bound(w, s, zp, bits, n_groups):
    """Round to nearest: |w - deq| <= s/2 inside the grid [(qmin - z) s, (qmax - z) s] widened by
    half a step; beyond it the code clamps and the error is s/2 plus the distance outside. The
    symmetric rule scale = amax / ((qmax - qmin) / 2) puts the largest |w| exactly half a step
    past qmax * s (quant_common.c / compressed-tensors calculate_qparams), and a scale rounded to
    its storage dtype (bf16: 2^-9 relative) can push it slightly further: that is the clamp term,
    not an error. 1e-4 relative slack covers f32 rounding of the products."""
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    z = 0.0 if zp is None else np.repeat(zp.astype(np.float64), w.shape[1] // n_groups, axis=1)
    hi, lo = (qmax - z + 0.5) * s, (qmin - z - 0.5) * s
    excess = np.maximum(0.0, np.maximum(w - hi, lo - w))
    return s / 2 * (1 + 1e-4) + excess + 1e-12


# ---- config ---------------------------------------------------------------------------------

ARGS_KEYS = {"num_bits", "type", "symmetric", "group_size", "strategy", "block_structure",
             "dynamic", "actorder", "scale_dtype", "zp_dtype", "observer", "observer_kwargs"}
SCHEME_KEYS = {"targets", "weights", "input_activations", "output_activations", "format"}


def validate_config(qc):
    """Returns (how, errors)."""
    try:
        from compressed_tensors.quantization import QuantizationConfig  # needs torch
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        QuantizationConfig = None
    if QuantizationConfig is not None:
        try:
            QuantizationConfig.model_validate(qc)
            return "compressed_tensors.QuantizationConfig", []
        except Exception as e:  # noqa: BLE001
            return "compressed_tensors.QuantizationConfig", [str(e)]
    errs = []
    if qc.get("quant_method") != "compressed-tensors":
        errs.append("quant_method is not compressed-tensors")
    for gname, g in qc.get("config_groups", {}).items():
        extra = set(g) - SCHEME_KEYS
        if extra:
            errs.append(f"{gname}: unknown scheme keys {sorted(extra)}")
        if not isinstance(g.get("targets"), list):
            errs.append(f"{gname}: targets must be a list")
        for part in ("weights", "input_activations", "output_activations"):
            a = g.get(part)
            if a is None:
                continue
            extra = set(a) - ARGS_KEYS
            if extra:
                errs.append(f"{gname}.{part}: unknown keys {sorted(extra)}")
            if a.get("type") not in ("int", "float"):
                errs.append(f"{gname}.{part}: type {a.get('type')}")
            st, gs = a.get("strategy"), a.get("group_size")
            if st == "group" and not (isinstance(gs, int) and gs > 0):
                errs.append(f"{gname}.{part}: group strategy needs group_size > 0")
            if gs is not None and gs > 0 and st != "group":
                errs.append(f"{gname}.{part}: group_size requires strategy group")
            if st == "token" and not a.get("dynamic"):
                errs.append(f"{gname}.{part}: token strategy must be dynamic")
    if qc.get("format") not in ("pack-quantized", "int-quantized", "float-quantized",
                                "naive-quantized", "mixed-precision"):
        errs.append(f"format {qc.get('format')}")
    return "re-implemented field rules (compressed_tensors/torch not importable)", errs


def scheme_for(qc, module):
    """compressed_tensors utils/match.py: "re:" = re.match, else exact name or class name."""
    import re

    def match(t):
        return t == "Linear" or t == module or (t.startswith("re:") and re.match(t[3:], module))

    if any(match(t) for t in qc.get("ignore", []) if t != "Linear"):
        return None
    for g in qc["config_groups"].values():
        if any(match(t) for t in g["targets"]):
            return g
    return None


# ---- main -----------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--original", required=True)
    ap.add_argument("--quantized", required=True)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with open(os.path.join(a.quantized, "config.json")) as f:
        qc = json.load(f)["quantization_config"]
    how, errs = validate_config(qc)
    orig, quant = load_dir(a.original), load_dir(a.quantized)
    try:
        from compressed_tensors.compressors.pack_quantized.helpers import unpack_from_int32
        import torch

        def unpack(v, bits, shape, dim=1):
            return unpack_from_int32(torch.from_numpy(v.copy()), bits, torch.Size(shape), dim).numpy()
        unpack_how = "compressed_tensors.unpack_from_int32"
    except Exception:  # noqa: BLE001
        unpack, unpack_how = unpack_from_int32_np, "numpy re-implementation of unpack_from_int32"

    results, ok = [], not errs
    modules = sorted({k.rsplit(".", 1)[0] for k in quant if k.endswith(".weight_scale")})
    for m in modules:
        g = scheme_for(qc, m)
        # A tied model's head is its embedding: quant-ptq writes it as its own lm_head.
        src = m + ".weight" if m + ".weight" in orig or m != "lm_head" else "model.embed_tokens.weight"
        w = orig[src][1].astype(np.float64)
        _, scale = quant[m + ".weight_scale"]
        if g is None:
            errs.append(f"{m}: quantized but no config group targets it")
            ok = False
            continue
        wa = g["weights"]
        if m + ".weight_packed" in quant:
            bits = wa["num_bits"]
            shape = [int(x) for x in quant[m + ".weight_shape"][1]]
            q = unpack(quant[m + ".weight_packed"][1], bits, shape)
            zp = None
            if m + ".weight_zero_point" in quant:
                zp = unpack(quant[m + ".weight_zero_point"][1], bits, [shape[0], scale.shape[-1]], 0)
            deq, s = dequantize_np(q, scale, zp)
            bound = int_bound(w, s, zp, bits, scale.shape[-1])
        else:
            dt, qw = quant[m + ".weight"]
            if dt == "F8_E4M3":
                deq, s = dequantize_np(e4m3_to_f32(qw), scale)
                bound = np.maximum(np.abs(w) * 2.0 ** -4, s * 2.0 ** -10) * (1 + 1e-6) + 1e-12
            else:
                deq, s = dequantize_np(qw, scale)
                bound = int_bound(w, s, None, 8, 1)
        err = np.abs(w - deq)
        worst = float(np.max(err / bound))
        rel = float(np.linalg.norm(w - deq) / max(np.linalg.norm(w), 1e-30))
        good = worst <= 1.0
        ok &= good
        results.append({"module": m, "format": g.get("format"), "rel_err": rel,
                        "worst_error_over_bound": worst, "ok": good})
    report = {"config_check": how, "config_errors": errs, "unpack": unpack_how,
              "modules": len(results), "ok": bool(ok),
              "max_rel_err": max((r["rel_err"] for r in results), default=0.0),
              "max_error_over_bound": max((r["worst_error_over_bound"] for r in results), default=0.0),
              "per_module": results}
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{a.quantized}: config {'valid' if not errs else 'INVALID'} ({how}); unpack: {unpack_how}")
        for e in errs:
            print(f"  config error: {e}")
        print(f"  {len(results)} modules, max rel. error {report['max_rel_err']:.5f}, "
              f"max error / bound {report['max_error_over_bound']:.4f} -> {'OK' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
