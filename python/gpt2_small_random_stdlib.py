#!/usr/bin/env python3
# python3 python/gpt2_small_random_stdlib.py /tmp/gpt2-small-random
#
# A GPT-2-small-shaped model with random weights (12 layers, d_model 768, 12 heads, d_mlp 3072,
# vocab 50257, n_ctx 1024) as config.json + model.safetensors, with the Python standard library
# only (no torch here). Weights: a 1M-value pseudo-random block (uniform +-0.035, the std of
# GPT-2's 0.02 init) repeated; norms' weights 1, biases 0. For timing only.
import json, os, random, struct, sys
from array import array
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
L, d, h, m, V, C = 12, 768, 12, 3072, 50257, 1024
random.seed(0)
block = array('f', (random.uniform(-0.035, 0.035) for _ in range(1 << 20)))
def rnd(n):
    a = array('f')
    while len(a) < n:
        a.extend(block[: n - len(a)])
    return a
def const(n, v):
    return array('f', [v]) * n
tensors = [("wte.weight", [V, d], rnd(V * d)), ("wpe.weight", [C, d], rnd(C * d))]
for l in range(L):
    p = f"h.{l}."
    tensors += [
        (p + "ln_1.weight", [d], const(d, 1.0)), (p + "ln_1.bias", [d], const(d, 0.0)),
        (p + "attn.c_attn.weight", [d, 3 * d], rnd(d * 3 * d)), (p + "attn.c_attn.bias", [3 * d], const(3 * d, 0.0)),
        (p + "attn.c_proj.weight", [d, d], rnd(d * d)), (p + "attn.c_proj.bias", [d], const(d, 0.0)),
        (p + "ln_2.weight", [d], const(d, 1.0)), (p + "ln_2.bias", [d], const(d, 0.0)),
        (p + "mlp.c_fc.weight", [d, m], rnd(d * m)), (p + "mlp.c_fc.bias", [m], const(m, 0.0)),
        (p + "mlp.c_proj.weight", [m, d], rnd(m * d)), (p + "mlp.c_proj.bias", [d], const(d, 0.0)),
    ]
tensors += [("ln_f.weight", [d], const(d, 1.0)), ("ln_f.bias", [d], const(d, 0.0))]
header, off = {}, 0
for name, shape, data in tensors:
    n = 4 * len(data)
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + n]}
    off += n
hb = json.dumps(header).encode()
hb += b" " * ((8 - len(hb) % 8) % 8)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(hb)))
    f.write(hb)
    for _, _, data in tensors:
        data.tofile(f)
cfg = {"model_type": "gpt2", "activation_function": "gelu_new", "layer_norm_epsilon": 1e-05, "n_embd": d, "n_head": h,
       "n_inner": None, "n_layer": L, "n_positions": C, "vocab_size": V, "tie_word_embeddings": True}
json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=1)
