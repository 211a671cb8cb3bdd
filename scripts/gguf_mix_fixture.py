#!/usr/bin/env python3
"""Write the per-tensor type choices of a llama-quantize output as a test fixture.

    gguf_mix_fixture.py FILE.gguf TYPE > tests/fixtures/gguf_mix/NAME.txt

Line 1: "# TYPE block_count head_count head_count_kv" (what lq_gguf_plan needs of the model);
then one line per tensor: "name n_dims ne0 ne1 ggml_type_name". tests/test_gguf_mix.c plans
the same tensors with our port of llama_tensor_get_type and expects the same types.
"""
import sys
import gguf

r = gguf.GGUFReader(sys.argv[1])
arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
def u(key):
    f = r.fields[f"{arch}.{key}"]
    return int(f.parts[f.data[0]][0])
print(f"# {sys.argv[2]} {u('block_count')} {u('attention.head_count')} {u('attention.head_count_kv')}")
for t in r.tensors:
    ne = list(t.shape) + [1]
    names = {gguf.GGMLQuantizationType.Q2_K: "q2_K", gguf.GGMLQuantizationType.Q3_K: "q3_K",
             gguf.GGMLQuantizationType.Q4_K: "q4_K", gguf.GGMLQuantizationType.Q5_K: "q5_K",
             gguf.GGMLQuantizationType.Q6_K: "q6_K"}
    tn = names.get(t.tensor_type, t.tensor_type.name.lower())
    print(f"{t.name} {len(t.shape)} {int(ne[0])} {int(ne[1])} {tn}")
