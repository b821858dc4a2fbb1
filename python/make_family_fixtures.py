#!/usr/bin/env python3
"""Generate parity fixtures for the rotary model families (Llama, Qwen2, GPT-NeoX/Pythia)
and GGUF versions of them (and of the existing gpt2-tiny).

Run from the repository root (after python/make_parity_fixtures.py, whose gpt2-tiny weights
the GGUF part reads):

    python3 python/make_family_fixtures.py

Writes (into ``fixtures/``):

* ``llama-tiny/``   random-weight ``LlamaForCausalLM`` (2 layers, d_model 32, 4 query heads,
                    2 key/value heads (grouped-query), d_head 8, d_mlp 256, vocab 128, RMSNorm,
                    gated SiLU MLP, rotary theta 1e4, untied unembedding).
* ``qwen2-tiny/``   random-weight ``Qwen2ForCausalLM``: the same sizes, q/k/v biases,
                    rotary theta 1e6, tied unembedding.
* ``pythia-tiny/``  random-weight ``GPTNeoXForCausalLM`` (2 layers, d_model 64, 4 heads,
                    d_head 16, partial rotary over the first 4 dims of each head, parallel
                    attention + MLP, LayerNorm with bias, exact GELU, untied unembedding).

Every weight, norm weight/bias and bias is random (not the default ones/zeros).

Each directory holds the conventions of make_parity_fixtures.py: ``config.json`` and
``model.safetensors`` (float32, as ``save_pretrained`` writes them), ``tokens.json``
(``{"tokens": [...]}``, 12 ids, the first 1), ``activations.safetensors`` (keys =
TransformerLens hook names, TransformerLens shapes without the batch axis, float32) and
``hook_names.json`` (forward order). The activations come from the transformers model
(forward hooks on its submodules, its rotary module and ``apply_rotary_pos_emb``,
``output_attentions`` for the pattern) and are cross-checked against (a) an independent
plain-torch forward pass over the saved state dict and (b) TransformerLens' ``run_with_cache``
on the weights converted by its own converters.

GGUF: ``model-{f16,q8_0,q4_0,q4_k}.gguf`` per directory (also for ``gpt2-tiny``, whose
existing files are left alone), laid out as llama.cpp's convert_hf_to_gguf.py writes these
architectures (llama Q/K rows permuted, GPT-NeoX fused QKV de-interleaved to [Q; K; V],
GPT-2 Conv1D weights transposed to [out, in], tied unembeddings not written as ``output``),
plus ``gguf_logits.safetensors``: the transformers model's float32 logits on tokens.json
with the weights read back from each GGUF file and dequantized by gguf-py.

llama-tiny also gets ``bf16-sharded/`` (bfloat16, >= 2 shards + index) and
``f16/model.safetensors`` (float16).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="HookedTransformer is deprecated")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

import gguf  # noqa: E402
from gguf import GGMLQuantizationType as QT  # noqa: E402
from gguf.quants import dequantize, quantize  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_gguf_fixtures import quantize_q4_k  # noqa: E402  (gguf-py has no Q4_K quantizer)

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "fixtures"
ATOL = 1e-5
N_TOKENS = 12

torch.set_grad_enabled(False)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)  # bit-reproducible CPU matmuls


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max |a-b| treating equal infinities (same sign, same place) as 0."""
    a = a.detach().to(torch.float64)
    b = b.detach().to(torch.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    inf_a, inf_b = torch.isinf(a), torch.isinf(b)
    if not torch.equal(inf_a, inf_b):
        return float("inf")
    if inf_a.any() and not torch.equal(a[inf_a], b[inf_b]):
        return float("inf")
    fin = ~inf_a
    if not fin.any():
        return 0.0
    return float((a[fin] - b[fin]).abs().max())


def check_close(name: str, a: torch.Tensor, b: torch.Tensor, atol: float = ATOL) -> float:
    d = max_abs_diff(a, b)
    if not d <= atol:
        raise AssertionError(f"{name}: max abs diff {d} > {atol}")
    return d


def to_f32_contig(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).contiguous().clone()


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def causal_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """q: [pos, n_heads, d_head], k: [pos, n_kv_heads, d_head] -> [n_heads, q, k], -inf above
    the diagonal; query head h reads key head h // (n_heads / n_kv_heads)."""
    rep = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(rep, dim=1)
    s = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(q.shape[-1])
    n = q.shape[0]
    mask = torch.ones(n, n, dtype=torch.bool).tril()
    return torch.where(mask, s, torch.tensor(float("-inf")))


def rms_scale(x: torch.Tensor, eps: float) -> torch.Tensor:
    return (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()


def ln_scale(x: torch.Tensor, eps: float) -> torch.Tensor:
    xc = x - x.mean(-1, keepdim=True)
    return (xc.pow(2).mean(-1, keepdim=True) + eps).sqrt()


def expected_hook_names(family: str, n_layers: int) -> list[str]:
    gated = family in ("llama", "qwen2")
    names = ["hook_embed"]
    for i in range(n_layers):
        b = f"blocks.{i}"
        names += [
            f"{b}.hook_resid_pre",
            f"{b}.ln1.hook_scale",
            f"{b}.ln1.hook_normalized",
            f"{b}.attn.hook_q",
            f"{b}.attn.hook_k",
            f"{b}.attn.hook_v",
            f"{b}.attn.hook_rot_q",
            f"{b}.attn.hook_rot_k",
            f"{b}.attn.hook_attn_scores",
            f"{b}.attn.hook_pattern",
            f"{b}.attn.hook_z",
            f"{b}.hook_attn_out",
        ]
        if gated:
            names.append(f"{b}.hook_resid_mid")
        names += [f"{b}.ln2.hook_scale", f"{b}.ln2.hook_normalized", f"{b}.mlp.hook_pre"]
        if gated:
            names.append(f"{b}.mlp.hook_pre_linear")
        names += [f"{b}.mlp.hook_post", f"{b}.hook_mlp_out", f"{b}.hook_resid_post"]
    names += ["ln_final.hook_scale", "ln_final.hook_normalized", "unembed.hook_in", "unembed.hook_out"]
    return names


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------

SEEDS = {"llama": 101, "qwen2": 202, "pythia": 303}


def make_config(family: str):
    from transformers import GPTNeoXConfig, LlamaConfig, Qwen2Config

    common = dict(vocab_size=128, num_hidden_layers=2, max_position_embeddings=64, bos_token_id=1,
                  eos_token_id=2)
    if family == "llama":
        return LlamaConfig(hidden_size=32, intermediate_size=256, num_attention_heads=4, num_key_value_heads=2,
                           head_dim=8, rms_norm_eps=1e-5,
                           rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                           tie_word_embeddings=False, hidden_act="silu", **common)
    if family == "qwen2":
        return Qwen2Config(hidden_size=32, intermediate_size=256, num_attention_heads=4, num_key_value_heads=2,
                           head_dim=8, rms_norm_eps=1e-5,
                           rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
                           tie_word_embeddings=True, hidden_act="silu", use_sliding_window=False, **common)
    if family == "pythia":
        return GPTNeoXConfig(hidden_size=64, intermediate_size=256, num_attention_heads=4,
                             rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                              "partial_rotary_factor": 0.25},
                             use_parallel_residual=True, hidden_act="gelu", layer_norm_eps=1e-5,
                             tie_word_embeddings=False, attention_dropout=0.0, hidden_dropout=0.0, **common)
    raise ValueError(family)


def model_class(family: str):
    from transformers import GPTNeoXForCausalLM, LlamaForCausalLM, Qwen2ForCausalLM

    return {"llama": LlamaForCausalLM, "qwen2": Qwen2ForCausalLM, "pythia": GPTNeoXForCausalLM}[family]


def new_model(family: str, cfg):
    cfg._attn_implementation = "eager"
    model = model_class(family)(cfg)
    model.eval()
    return model.to(torch.float32)


def build_model(family: str):
    cfg = make_config(family)
    torch.manual_seed(SEEDS[family])
    model = new_model(family, cfg)
    # Weights scaled so that activations are O(1) (attention patterns far from uniform, so
    # rotary / masking errors show), norm weights ~1 +- 0.2, every bias ~N(0, 0.1^2).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                around = 1.0 if name.endswith("weight") else 0.0
                p.copy_(around + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif p.dim() == 2 and ("embed" in name):
                p.copy_(torch.randn_like(p))
            elif p.dim() == 2:
                p.copy_(torch.randn_like(p) / math.sqrt(p.shape[1]))
            else:
                raise AssertionError(f"unexpected parameter {name}")
    if cfg.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr(), "not tied"
    return model


def save_model(model, out_dir: Path, **kw) -> None:
    try:
        model.save_pretrained(out_dir, safe_serialization=True, **kw)
    except TypeError:  # transformers versions where safetensors is the only format
        model.save_pretrained(out_dir, **kw)
    (out_dir / "generation_config.json").unlink(missing_ok=True)


# --------------------------------------------------------------------------
# activations from the transformers model
# --------------------------------------------------------------------------


def rotary_module(family: str):
    import transformers.models.gpt_neox.modeling_gpt_neox as neox
    import transformers.models.llama.modeling_llama as llama
    import transformers.models.qwen2.modeling_qwen2 as qwen2

    return {"llama": llama, "qwen2": qwen2, "pythia": neox}[family]


def hf_activations(family: str, model, tokens: list[int]) -> dict[str, torch.Tensor]:
    cfg = model.config
    n = len(tokens)
    gated = family in ("llama", "qwen2")
    if gated:
        base, layers = model.model, model.model.layers
        embed, final_norm = base.embed_tokens, base.norm
        n_heads, n_kv, d_head = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        eps = cfg.rms_norm_eps
        scale_fn = rms_scale
    else:
        base, layers = model.gpt_neox, model.gpt_neox.layers
        embed, final_norm = base.embed_in, base.final_layer_norm
        n_heads = n_kv = cfg.num_attention_heads
        d_head = cfg.hidden_size // n_heads
        eps = cfg.layer_norm_eps
        scale_fn = ln_scale

    def normalized(x):
        xc = x if gated else x - x.mean(-1, keepdim=True)
        return xc / scale_fn(x, eps)

    acts: dict[str, torch.Tensor] = {}
    handles = []

    def first(x):
        return x[0] if isinstance(x, (tuple, list)) else x

    def fwd(name):
        def hook(_mod, _inp, out):
            acts[name] = first(out).detach().clone()
        return hook

    def pre(name):
        def hook(_mod, args, kwargs):
            x = args[0] if args else kwargs["hidden_states"]
            acts[name] = x.detach().clone()
        return hook

    def reg_pre(mod, name):
        handles.append(mod.register_forward_pre_hook(pre(name), with_kwargs=True))

    def reg_fwd(mod, name):
        handles.append(mod.register_forward_hook(fwd(name)))

    def rope_hook(_mod, _inp, out):
        acts["rope.cos"], acts["rope.sin"] = (t.detach().clone() for t in out)

    handles.append(base.rotary_emb.register_forward_hook(rope_hook))
    reg_fwd(embed, "hook_embed")
    for i, layer in enumerate(layers):
        b = f"blocks.{i}"
        reg_pre(layer, f"{b}.hook_resid_pre")
        reg_fwd(layer, f"{b}.hook_resid_post")
        reg_pre(layer.input_layernorm, f"{b}.ln1.in")
        reg_fwd(layer.input_layernorm, f"{b}.ln1.out")
        reg_pre(layer.post_attention_layernorm, f"{b}.ln2.in")
        reg_fwd(layer.post_attention_layernorm, f"{b}.ln2.out")
        if gated:
            at = layer.self_attn
            reg_fwd(at.q_proj, f"{b}.q_proj")
            reg_fwd(at.k_proj, f"{b}.k_proj")
            reg_fwd(at.v_proj, f"{b}.v_proj")
            reg_pre(at.o_proj, f"{b}.z_flat")
            reg_fwd(at.o_proj, f"{b}.hook_attn_out")
            reg_fwd(layer.mlp.gate_proj, f"{b}.mlp.hook_pre")
            reg_fwd(layer.mlp.up_proj, f"{b}.mlp.hook_pre_linear")
            reg_pre(layer.mlp.down_proj, f"{b}.mlp.hook_post")
            reg_fwd(layer.mlp.down_proj, f"{b}.hook_mlp_out")
        else:
            at = layer.attention
            reg_fwd(at.query_key_value, f"{b}.qkv")
            reg_pre(at.dense, f"{b}.z_flat")
            reg_fwd(at.dense, f"{b}.hook_attn_out")
            reg_fwd(layer.mlp.dense_h_to_4h, f"{b}.mlp.hook_pre")
            reg_fwd(layer.mlp.act, f"{b}.mlp.hook_post")
            reg_fwd(layer.mlp, f"{b}.hook_mlp_out")
    reg_pre(final_norm, "ln_final.in")
    reg_fwd(final_norm, "ln_final.out")
    reg_pre(model.lm_head, "unembed.hook_in")
    reg_fwd(model.lm_head, "unembed.hook_out")

    tok = torch.tensor([tokens], dtype=torch.long)
    out = model(tok, output_attentions=True, output_hidden_states=True, use_cache=False, return_dict=True)
    for h in handles:
        h.remove()
    acts = {k: (v[0] if v.dim() >= 2 and v.shape[0] == 1 else v) for k, v in acts.items()}

    apply_rot = rotary_module(family).apply_rotary_pos_emb
    cos, sin = acts["rope.cos"], acts["rope.sin"]  # [pos, rotary_dim]

    def rotate(q, k):  # [pos, heads, d_head] -> HF layout [1, heads, pos, d_head] and back
        rq, rk = apply_rot(q.transpose(0, 1)[None], k.transpose(0, 1)[None], cos[None], sin[None])
        return rq[0].transpose(0, 1), rk[0].transpose(0, 1)

    hf: dict[str, torch.Tensor] = {"hook_embed": acts["hook_embed"]}
    checks = []
    for i in range(cfg.num_hidden_layers):
        b = f"blocks.{i}"
        x = acts[f"{b}.hook_resid_pre"]
        hf[f"{b}.hook_resid_pre"] = x
        checks.append(check_close(f"{b} hidden_states", out.hidden_states[i][0], x, 0.0))
        checks.append(check_close(f"{b} ln1 in", acts[f"{b}.ln1.in"], x, 0.0))
        hf[f"{b}.ln1.hook_scale"] = scale_fn(x, eps)
        hf[f"{b}.ln1.hook_normalized"] = normalized(x)
        if gated:
            q = acts[f"{b}.q_proj"].reshape(n, n_heads, d_head)
            k = acts[f"{b}.k_proj"].reshape(n, n_kv, d_head)
            v = acts[f"{b}.v_proj"].reshape(n, n_kv, d_head)
        else:
            q, k, v = acts[f"{b}.qkv"].reshape(n, n_heads, 3 * d_head).chunk(3, dim=-1)
        hf[f"{b}.attn.hook_q"], hf[f"{b}.attn.hook_k"], hf[f"{b}.attn.hook_v"] = q, k, v
        rq, rk = rotate(q, k)
        hf[f"{b}.attn.hook_rot_q"], hf[f"{b}.attn.hook_rot_k"] = rq, rk
        hf[f"{b}.attn.hook_attn_scores"] = causal_scores(rq, rk)
        hf[f"{b}.attn.hook_pattern"] = out.attentions[i][0]
        hf[f"{b}.attn.hook_z"] = acts[f"{b}.z_flat"].reshape(n, n_heads, d_head)
        hf[f"{b}.hook_attn_out"] = acts[f"{b}.hook_attn_out"]
        if gated:
            mid = acts[f"{b}.ln2.in"]
            hf[f"{b}.hook_resid_mid"] = mid
            checks.append(check_close(f"{b} resid_mid", mid, x + hf[f"{b}.hook_attn_out"]))
        else:
            mid = x  # parallel: ln2 reads resid_pre
            checks.append(check_close(f"{b} ln2 in", acts[f"{b}.ln2.in"], x, 0.0))
        hf[f"{b}.ln2.hook_scale"] = scale_fn(mid, eps)
        hf[f"{b}.ln2.hook_normalized"] = normalized(mid)
        hf[f"{b}.mlp.hook_pre"] = acts[f"{b}.mlp.hook_pre"]
        if gated:
            hf[f"{b}.mlp.hook_pre_linear"] = acts[f"{b}.mlp.hook_pre_linear"]
        hf[f"{b}.mlp.hook_post"] = acts[f"{b}.mlp.hook_post"]
        hf[f"{b}.hook_mlp_out"] = acts[f"{b}.hook_mlp_out"]
        hf[f"{b}.hook_resid_post"] = acts[f"{b}.hook_resid_post"]
        # internal consistency of the hooked values
        checks.append(check_close(f"{b} softmax(scores)==pattern",
                                  torch.softmax(hf[f"{b}.attn.hook_attn_scores"], -1), hf[f"{b}.attn.hook_pattern"]))
        rep = n_heads // n_kv
        checks.append(check_close(f"{b} z == pattern@v", hf[f"{b}.attn.hook_z"],
                                  torch.einsum("hqk,khd->qhd", hf[f"{b}.attn.hook_pattern"],
                                               v.repeat_interleave(rep, dim=1))))
        if gated:
            checks.append(check_close(f"{b} ln1 out", acts[f"{b}.ln1.out"],
                                      hf[f"{b}.ln1.hook_normalized"] * layer_norm_w(model, i, 1)))
            checks.append(check_close(f"{b} mlp_post", hf[f"{b}.mlp.hook_post"],
                                      torch.nn.functional.silu(hf[f"{b}.mlp.hook_pre"]) * hf[f"{b}.mlp.hook_pre_linear"]))
            checks.append(check_close(f"{b} resid_post", hf[f"{b}.hook_resid_post"], mid + hf[f"{b}.hook_mlp_out"]))
        else:
            w, bb = layer_norm_w(model, i, 1)
            checks.append(check_close(f"{b} ln1 out", acts[f"{b}.ln1.out"], hf[f"{b}.ln1.hook_normalized"] * w + bb))
            checks.append(check_close(f"{b} resid_post", hf[f"{b}.hook_resid_post"],
                                      x + hf[f"{b}.hook_attn_out"] + hf[f"{b}.hook_mlp_out"]))
    xf = acts["ln_final.in"]
    checks.append(check_close("final chain", xf, hf[f"blocks.{cfg.num_hidden_layers - 1}.hook_resid_post"], 0.0))
    hf["ln_final.hook_scale"] = scale_fn(xf, eps)
    hf["ln_final.hook_normalized"] = normalized(xf)
    hf["unembed.hook_in"] = acts["unembed.hook_in"]
    hf["unembed.hook_out"] = acts["unembed.hook_out"]
    checks.append(check_close("unembed_in == final norm out", hf["unembed.hook_in"], acts["ln_final.out"], 0.0))
    checks.append(check_close("logits == out.logits", hf["unembed.hook_out"], out.logits[0], 0.0))
    want = expected_hook_names(family, cfg.num_hidden_layers)
    assert list(hf.keys()) == want, (set(hf) ^ set(want))
    print(f"[{family}] {len(checks)} internal HF consistency checks passed (max diff {max(checks):.3g})")
    return hf


def layer_norm_w(model, i: int, which: int):
    if hasattr(model, "model"):
        layer = model.model.layers[i]
        return (layer.input_layernorm if which == 1 else layer.post_attention_layernorm).weight
    layer = model.gpt_neox.layers[i]
    ln = layer.input_layernorm if which == 1 else layer.post_attention_layernorm
    return ln.weight, ln.bias


# --------------------------------------------------------------------------
# (a) independent plain-torch forward from the saved state dict
# --------------------------------------------------------------------------


def reference_forward(family: str, sd: dict[str, torch.Tensor], cfg: dict, tokens: list[int]):
    """Reads config.json and model.safetensors only (no transformers code)."""
    n = len(tokens)
    gated = family in ("llama", "qwen2")
    n_layers, d_model, n_heads = cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"]
    rope = cfg["rope_parameters"]
    theta = float(rope["rope_theta"])
    if gated:
        n_kv, d_head, eps = cfg["num_key_value_heads"], cfg["head_dim"], cfg["rms_norm_eps"]
        rot_dim = d_head
        p = "model."
    else:
        n_kv, d_head, eps = n_heads, d_model // n_heads, cfg["layer_norm_eps"]
        rot_dim = int(d_head * rope.get("partial_rotary_factor", 1.0))
        p = "gpt_neox."
    r: dict[str, torch.Tensor] = {}

    def norm(x, tag, w, b=None):
        if gated:
            sc = rms_scale(x, eps)
            xn = x / sc
        else:
            sc = ln_scale(x, eps)
            xn = (x - x.mean(-1, keepdim=True)) / sc
        r[f"{tag}.hook_scale"] = sc
        r[f"{tag}.hook_normalized"] = xn
        return xn * w + (b if b is not None else 0.0)

    # rotary: GPT-NeoX style (rotate halves of the first rot_dim dims), angles pos * theta^(-2i/rot_dim)
    inv = 1.0 / (theta ** (torch.arange(0, rot_dim, 2, dtype=torch.float64) / rot_dim))
    ang = torch.arange(n, dtype=torch.float64)[:, None] * inv[None, :]  # [pos, rot_dim/2]
    cos, sin = ang.cos().float()[:, None, :], ang.sin().float()[:, None, :]

    def rot(x):  # [pos, heads, d_head]
        half = rot_dim // 2
        x1, x2, rest = x[..., :half], x[..., half:rot_dim], x[..., rot_dim:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest], dim=-1)

    emb = sd[p + ("embed_tokens.weight" if gated else "embed_in.weight")]
    x = emb[tokens]
    r["hook_embed"] = x
    for i in range(n_layers):
        b = f"blocks.{i}"
        L = f"{p}layers.{i}."
        r[f"{b}.hook_resid_pre"] = x
        if gated:
            h = norm(x, f"{b}.ln1", sd[L + "input_layernorm.weight"])
            A = L + "self_attn."

            def lin(name, h=h):
                y = h @ sd[A + name + ".weight"].T
                return y + sd[A + name + ".bias"] if A + name + ".bias" in sd else y

            q = lin("q_proj").reshape(n, n_heads, d_head)
            k = lin("k_proj").reshape(n, n_kv, d_head)
            v = lin("v_proj").reshape(n, n_kv, d_head)
        else:
            h = norm(x, f"{b}.ln1", sd[L + "input_layernorm.weight"], sd[L + "input_layernorm.bias"])
            A = L + "attention."
            qkv = h @ sd[A + "query_key_value.weight"].T + sd[A + "query_key_value.bias"]
            qkv = qkv.reshape(n, n_heads, 3, d_head)
            q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        r[f"{b}.attn.hook_q"], r[f"{b}.attn.hook_k"], r[f"{b}.attn.hook_v"] = q, k, v
        rq, rk = rot(q), rot(k)
        r[f"{b}.attn.hook_rot_q"], r[f"{b}.attn.hook_rot_k"] = rq, rk
        s = causal_scores(rq, rk)
        r[f"{b}.attn.hook_attn_scores"] = s
        pat = torch.softmax(s, dim=-1)
        r[f"{b}.attn.hook_pattern"] = pat
        z = torch.einsum("hqk,khd->qhd", pat, v.repeat_interleave(n_heads // n_kv, dim=1))
        r[f"{b}.attn.hook_z"] = z
        if gated:
            ao = z.reshape(n, n_heads * d_head) @ sd[A + "o_proj.weight"].T
            r[f"{b}.hook_attn_out"] = ao
            mid = x + ao
            r[f"{b}.hook_resid_mid"] = mid
            h2 = norm(mid, f"{b}.ln2", sd[L + "post_attention_layernorm.weight"])
            M = L + "mlp."
            pre = h2 @ sd[M + "gate_proj.weight"].T
            lin_ = h2 @ sd[M + "up_proj.weight"].T
            post = pre * torch.sigmoid(pre) * lin_
            r[f"{b}.mlp.hook_pre"], r[f"{b}.mlp.hook_pre_linear"], r[f"{b}.mlp.hook_post"] = pre, lin_, post
            mo = post @ sd[M + "down_proj.weight"].T
            r[f"{b}.hook_mlp_out"] = mo
            x = mid + mo
        else:
            ao = z.reshape(n, d_model) @ sd[A + "dense.weight"].T + sd[A + "dense.bias"]
            r[f"{b}.hook_attn_out"] = ao
            h2 = norm(x, f"{b}.ln2", sd[L + "post_attention_layernorm.weight"], sd[L + "post_attention_layernorm.bias"])
            M = L + "mlp."
            pre = h2 @ sd[M + "dense_h_to_4h.weight"].T + sd[M + "dense_h_to_4h.bias"]
            post = 0.5 * pre * (1.0 + torch.erf(pre / math.sqrt(2.0)))
            r[f"{b}.mlp.hook_pre"], r[f"{b}.mlp.hook_post"] = pre, post
            mo = post @ sd[M + "dense_4h_to_h.weight"].T + sd[M + "dense_4h_to_h.bias"]
            r[f"{b}.hook_mlp_out"] = mo
            x = x + ao + mo
        r[f"{b}.hook_resid_post"] = x
    if gated:
        h = norm(x, "ln_final", sd["model.norm.weight"])
    else:
        h = norm(x, "ln_final", sd["gpt_neox.final_layer_norm.weight"], sd["gpt_neox.final_layer_norm.bias"])
    r["unembed.hook_in"] = h
    # GPT-NeoX checkpoints name the unembedding embed_out (save_pretrained keeps that name);
    # tied models (qwen2) save no unembedding at all.
    w_u = sd.get("lm_head.weight", sd.get("embed_out.weight", emb))
    r["unembed.hook_out"] = h @ w_u.T
    return r


# --------------------------------------------------------------------------
# (b) TransformerLens
# --------------------------------------------------------------------------


def tl_activations(family: str, model, tokens: list[int]):
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions import (
        convert_llama_weights, convert_neox_weights, convert_qwen2_weights)

    c = model.config
    rope = c.rope_parameters
    if family in ("llama", "qwen2"):
        kw = dict(d_model=c.hidden_size, d_head=c.head_dim, n_heads=c.num_attention_heads,
                  n_key_value_heads=c.num_key_value_heads, d_mlp=c.intermediate_size, act_fn="silu",
                  normalization_type="RMS", gated_mlp=True, final_rms=True, eps=c.rms_norm_eps,
                  rotary_dim=c.head_dim,
                  original_architecture="LlamaForCausalLM" if family == "llama" else "Qwen2ForCausalLM")
        conv = convert_llama_weights if family == "llama" else convert_qwen2_weights
    else:
        d_head = c.hidden_size // c.num_attention_heads
        kw = dict(d_model=c.hidden_size, d_head=d_head, n_heads=c.num_attention_heads, d_mlp=c.intermediate_size,
                  act_fn="gelu", normalization_type="LN", parallel_attn_mlp=True, eps=c.layer_norm_eps,
                  rotary_dim=int(d_head * rope["partial_rotary_factor"]),
                  original_architecture="GPTNeoXForCausalLM")
        conv = convert_neox_weights
    tl_cfg = HookedTransformerConfig(
        n_layers=c.num_hidden_layers, n_ctx=c.max_position_embeddings, d_vocab=c.vocab_size,
        positional_embedding_type="rotary", rotary_base=float(rope["rope_theta"]), rotary_adjacent_pairs=False,
        device="cpu", dtype=torch.float32, default_prepend_bos=False, **kw)
    tl_model = HookedTransformer(tl_cfg)
    tl_model.eval()
    tl_model.load_and_process_state_dict(
        conv(model, tl_cfg), fold_ln=False, center_writing_weights=False, center_unembed=False,
        fold_value_biases=False, refactor_factored_attn_matrices=False)
    logits, cache = tl_model.run_with_cache(torch.tensor([tokens], dtype=torch.long))
    names = list(cache.keys())
    acts = {k: cache[k][0] for k in names}
    acts.setdefault("unembed.hook_out", logits[0])
    return names, acts


def tl_hook_normalized_is_pre() -> bool:
    """TL 3: RMSNorm/LayerNorm hook_normalized is before the weight (and bias)."""
    from transformer_lens import HookedTransformerConfig
    from transformer_lens.components import RMSNorm

    cfg = HookedTransformerConfig(n_layers=1, d_model=4, n_ctx=4, d_head=4, n_heads=1, d_vocab=4,
                                  attn_only=True, device="cpu", normalization_type="RMS")
    ln = RMSNorm(cfg)
    ln.w.data = torch.tensor([2.0, -1.0, 0.5, 3.0])
    seen = {}
    ln.hook_normalized.add_hook(lambda t, hook: seen.__setitem__("n", t.clone()))
    y = ln(torch.tensor([[[0.1, 2.0, -1.0, 0.4]]]))
    ln.hook_normalized.remove_hooks()
    return not torch.allclose(seen["n"], y) and torch.allclose(seen["n"] * ln.w, y)


# --------------------------------------------------------------------------
# GGUF
# --------------------------------------------------------------------------

GGUF_ARCH = {"llama": "llama", "qwen2": "qwen2", "pythia": "gptneox", "gpt2": "gpt2"}
MODEL_ARCH = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2,
              "pythia": gguf.MODEL_ARCH.GPTNEOX, "gpt2": gguf.MODEL_ARCH.GPT2}
GGUF_FILES = {"f16": QT.F16, "q8_0": QT.Q8_0, "q4_0": QT.Q4_0, "q4_k": QT.Q4_K}
FILE_TYPE = {"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
             "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0, "q4_k": gguf.LlamaFileType.MOSTLY_Q4_K_S}


def llama_permute(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """convert_hf_to_gguf.py LlamaModel.permute (n_head: the head count of this projection)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama_unpermute(w: torch.Tensor, n_head: int) -> torch.Tensor:
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_hparams(family: str, cfg: dict) -> list[tuple[str, object, gguf.GGUFValueType]]:
    a = GGUF_ARCH[family]
    U, F, B = gguf.GGUFValueType.UINT32, gguf.GGUFValueType.FLOAT32, gguf.GGUFValueType.BOOL
    if family == "gpt2":
        return [(f"{a}.context_length", cfg["n_positions"], U), (f"{a}.embedding_length", cfg["n_embd"], U),
                (f"{a}.block_count", cfg["n_layer"], U), (f"{a}.feed_forward_length", cfg["n_inner"], U),
                (f"{a}.attention.head_count", cfg["n_head"], U),
                (f"{a}.attention.layer_norm_epsilon", cfg["layer_norm_epsilon"], F)]
    rope = cfg["rope_parameters"]
    out = [(f"{a}.context_length", cfg["max_position_embeddings"], U),
           (f"{a}.embedding_length", cfg["hidden_size"], U),
           (f"{a}.block_count", cfg["num_hidden_layers"], U),
           (f"{a}.feed_forward_length", cfg["intermediate_size"], U),
           (f"{a}.attention.head_count", cfg["num_attention_heads"], U)]
    if family == "pythia":
        d_head = cfg["hidden_size"] // cfg["num_attention_heads"]
        out += [(f"{a}.attention.head_count_kv", cfg["num_attention_heads"], U),
                (f"{a}.rope.freq_base", float(rope["rope_theta"]), F),
                (f"{a}.rope.dimension_count", int(rope["partial_rotary_factor"] * d_head), U),
                (f"{a}.use_parallel_residual", bool(cfg["use_parallel_residual"]), B),
                (f"{a}.attention.layer_norm_epsilon", cfg["layer_norm_eps"], F)]
    else:
        out += [(f"{a}.attention.head_count_kv", cfg["num_key_value_heads"], U),
                (f"{a}.rope.freq_base", float(rope["rope_theta"]), F),
                (f"{a}.attention.layer_norm_rms_epsilon", cfg["rms_norm_eps"], F),
                (f"{a}.attention.key_length", cfg["head_dim"], U),
                (f"{a}.attention.value_length", cfg["head_dim"], U),
                (f"{a}.rope.dimension_count", cfg["head_dim"], U)]
        if family == "llama":
            out.append((f"{a}.vocab_size", cfg["vocab_size"], U))
    return out


def gguf_tensors(family: str, sd: dict[str, torch.Tensor], cfg: dict) -> list[tuple[str, np.ndarray]]:
    """HF state dict -> [(gguf name, f32 array in ggml's row-major [out, in] layout)], in the
    state dict's order, the way convert_hf_to_gguf.py transforms each tensor."""
    n_layers = cfg.get("num_hidden_layers", cfg.get("n_layer"))
    tmap = gguf.get_tensor_name_map(MODEL_ARCH[family], n_layers)
    out = []
    for name, t in sd.items():
        t = t.detach().to(torch.float32)
        if family == "gpt2" and name.endswith((".attn.bias", ".attn.masked_bias")):
            continue
        if family == "llama" and name.endswith("q_proj.weight"):
            t = llama_permute(t, cfg["num_attention_heads"])
        elif family == "llama" and name.endswith("k_proj.weight"):
            t = llama_permute(t, cfg["num_key_value_heads"])
        elif family == "pythia" and "query_key_value" in name:
            nh, d = cfg["num_attention_heads"], cfg["hidden_size"]
            # per-head [q_h; k_h; v_h] interleave -> [Q; K; V] (GPTNeoXModel.modify_tensors)
            t = t.reshape(nh, 3, d // nh, *t.shape[1:]).transpose(0, 1).reshape(t.shape)
        elif family == "gpt2" and name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
            t = t.T  # Conv1D [in, out] -> [out, in]
        new = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        assert new is not None, name
        out.append((new, t.contiguous().numpy()))
    return out


def gguf_to_hf(family: str, tensors: dict[str, np.ndarray], cfg: dict, hf_keys: list[str]) -> dict[str, torch.Tensor]:
    """Inverse of gguf_tensors."""
    n_layers = cfg.get("num_hidden_layers", cfg.get("n_layer"))
    tmap = gguf.get_tensor_name_map(MODEL_ARCH[family], n_layers)
    sd = {}
    for name in hf_keys:
        if family == "gpt2" and name.endswith((".attn.bias", ".attn.masked_bias")):
            continue
        g = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        t = torch.from_numpy(np.array(tensors[g], dtype=np.float32))
        if family == "llama" and name.endswith("q_proj.weight"):
            t = llama_unpermute(t, cfg["num_attention_heads"])
        elif family == "llama" and name.endswith("k_proj.weight"):
            t = llama_unpermute(t, cfg["num_key_value_heads"])
        elif family == "pythia" and "query_key_value" in name:
            nh, d = cfg["num_attention_heads"], cfg["hidden_size"]
            t = t.reshape(3, nh, d // nh, *t.shape[1:]).transpose(0, 1).reshape(t.shape)
        elif family == "gpt2" and name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
            t = t.T
        sd[name] = t.contiguous()
    return sd


def tensor_qtype(kind: str, arr: np.ndarray) -> QT:
    if arr.ndim == 1:
        return QT.F32
    want = GGUF_FILES[kind]
    if want == QT.Q4_K and arr.shape[-1] % 256 != 0:
        return QT.Q8_0  # K-quants need rows of 256k values (llama.cpp falls back likewise)
    return want


def write_gguf(path: Path, family: str, cfg: dict, tensors: list[tuple[str, np.ndarray]], kind: str,
               bos: int) -> list[tuple[str, str, list[int]]]:
    vocab = cfg["vocab_size"]
    w = gguf.GGUFWriter(str(path), GGUF_ARCH[family])
    w.add_name(f"glassbox {path.parent.name}")
    for key, val, vt in gguf_hparams(family, cfg):
        w.add_key_value(key, val, vt)
    w.add_file_type(int(FILE_TYPE[kind]))
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"t{i}" for i in range(vocab)])
    w.add_token_types([1] * vocab)
    w.add_bos_token_id(bos)
    layout = []
    for name, arr in tensors:
        qt = tensor_qtype(kind, arr)
        if qt == QT.F32:
            w.add_tensor(name, arr.astype(np.float32))
        elif qt == QT.F16:
            w.add_tensor(name, arr.astype(np.float16))
        else:
            data = quantize_q4_k(arr) if qt == QT.Q4_K else quantize(arr, qt)
            w.add_tensor(name, data, raw_dtype=qt)
        layout.append((name, qt.name, list(arr.shape)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return layout


def read_gguf(path: Path) -> dict[str, np.ndarray]:
    r = gguf.GGUFReader(str(path))
    out = {}
    for t in r.tensors:
        shape = [int(d) for d in reversed(t.shape.tolist())]
        out[t.name] = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).reshape(shape)
    return out


def hf_gguf_logits(out_dir: Path, file: str, family: str, tokens: list[int]):
    """transformers' own GGUF loader, or None where it does not support / fails here."""
    from transformers import AutoModelForCausalLM

    if family == "pythia":
        return None, "transformers has no GGUF loader for gptneox"
    from transformers import AutoConfig

    why = None
    # First with the config transformers derives from the GGUF metadata; if that fails (its gpt2
    # mapping sets n_ctx but not n_positions, so position_embd mismatches), with config.json.
    for cfg in (None, AutoConfig.from_pretrained(str(out_dir))):
        try:
            kw = {} if cfg is None else {"config": cfg}
            m = AutoModelForCausalLM.from_pretrained(str(out_dir), gguf_file=file, dtype=torch.float32,
                                                     attn_implementation="eager", **kw)
            m.eval()
            how = "GGUF metadata config" if cfg is None else f"config.json (GGUF config failed: {why})"
            return m(torch.tensor([tokens]), use_cache=False).logits[0], how
        except Exception as e:  # noqa: BLE001
            why = f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:120]}"
    return None, why


def make_gguf(family: str, out_dir: Path, model, tokens: list[int], bos: int) -> dict:
    cfg = json.loads((out_dir / "config.json").read_text())
    sd = load_file(str(out_dir / "model.safetensors"))
    tensors = gguf_tensors(family, sd, cfg)
    # round trip of the layout transforms
    back = gguf_to_hf(family, dict(tensors), cfg, list(sd.keys()))
    for k, v in back.items():
        assert torch.equal(v, sd[k]), k
    ref = model(torch.tensor([tokens]), use_cache=False).logits[0]
    logits = {}
    report = {}
    for kind in GGUF_FILES:
        path = out_dir / f"model-{kind}.gguf"
        layout = write_gguf(path, family, cfg, tensors, kind, bos)
        deq = read_gguf(path)
        assert list(deq) == [n for n, _ in tensors]
        hf_sd = gguf_to_hf(family, deq, cfg, list(sd.keys()))
        if family == "gpt2":
            from transformers import GPT2LMHeadModel
            m = GPT2LMHeadModel(model.config).eval()
        else:
            m = new_model(family, model.config)
        if "embed_out.weight" in hf_sd:  # the checkpoint name of GPTNeoXForCausalLM.lm_head
            hf_sd["lm_head.weight"] = hf_sd.pop("embed_out.weight")
        missing, unexpected = m.load_state_dict(hf_sd, strict=False)
        assert not unexpected, unexpected
        tied = model.config.tie_word_embeddings
        assert set(missing) <= ({"lm_head.weight"} if tied else set()), missing
        if tied:
            assert m.lm_head.weight.data_ptr() == m.get_input_embeddings().weight.data_ptr()
        lg = m(torch.tensor([tokens]), use_cache=False).logits[0]
        tl, why = hf_gguf_logits(out_dir, path.name, family, tokens)
        if tl is not None:
            d = check_close(f"{family} {kind}: transformers GGUF loader vs gguf-py dequantize", tl, lg, 1e-4)
            note = f"transformers GGUF loader ({why}) agrees (max diff {d:.2g})"
        else:
            note = f"transformers GGUF loader not used ({why})"
        logits[kind] = lg
        diff = max_abs_diff(lg, ref)
        assert diff > 0 or kind == "f16", f"{kind}: no quantization error?"
        q = sorted({qt for _, qt, _ in layout})
        report[kind] = {"size": path.stat().st_size, "max_diff": diff, "types": q, "note": note,
                        "q8_fallback": [n for n, qt, _ in layout if kind == "q4_k" and qt == "Q8_0"]}
        print(f"[{out_dir.name}] {path.name}: {path.stat().st_size} bytes, types {q}; logits max abs diff "
              f"vs f32 {diff:.4g} (|logits| max {float(ref.abs().max()):.3g}); {note}")
        if kind == "q4_k":
            print(f"[{out_dir.name}]   q4_k: Q8_0 fallback for {report[kind]['q8_fallback']}")
    save_file({k: to_f32_contig(v) for k, v in logits.items()}, str(out_dir / "gguf_logits.safetensors"),
              metadata={"info": json.dumps({"source": "transformers model with gguf-py dequantized weights",
                                            "tokens": "tokens.json", "shape": "[pos, vocab]"}, sort_keys=True)})
    return report


# --------------------------------------------------------------------------
# per family
# --------------------------------------------------------------------------


def make_family(family: str, dirname: str, tl_pre: bool) -> dict:
    out_dir = FIXTURES / dirname
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    model = build_model(family)
    save_model(model, out_dir)

    gen = torch.Generator().manual_seed(SEEDS[family] + 7)
    tokens = [1] + torch.randint(0, model.config.vocab_size, (N_TOKENS - 1,), generator=gen).tolist()
    write_json(out_dir / "tokens.json", {"tokens": tokens})

    hf = hf_activations(family, model, tokens)
    want = list(hf.keys())

    # (a) independent reimplementation from the saved files
    cfg_json = json.loads((out_dir / "config.json").read_text())
    sd = load_file(str(out_dir / "model.safetensors"))
    ref = reference_forward(family, sd, cfg_json, tokens)
    assert set(ref) == set(want), set(ref) ^ set(want)
    ref_d = {k: check_close(f"[{family}] reference vs HF {k}", ref[k], hf[k]) for k in want}
    worst = max(ref_d, key=ref_d.get)
    print(f"[{family}] (a) plain-torch reference vs HF: all {len(want)} hooks within {ATOL}; "
          f"max abs diff {ref_d[worst]:.3g} at {worst}")

    # (b) TransformerLens
    tl_names, tl = tl_activations(family, model, tokens)
    missing = [k for k in want if k not in tl]
    assert not missing, f"TL lacks {missing}"
    if not tl_pre:  # TL 2.x: hook_normalized includes the norm weight (and bias)
        raise SystemExit("this TransformerLens' hook_normalized is after the norm weight; expected TL >= 3")
    order_ok = [n for n in tl_names if n in set(want)] == want
    tl_d = {k: check_close(f"[{family}] TL vs HF {k}", tl[k], hf[k]) for k in want}
    worst_tl = max(tl_d, key=tl_d.get)
    print(f"[{family}] (b) TransformerLens vs HF: all {len(want)} hooks within {ATOL}; max abs diff "
          f"{tl_d[worst_tl]:.3g} at {worst_tl}; TL cache order == hook list: {order_ok}")
    if not order_ok:
        print(f"[{family}]     TL order: {[n for n in tl_names if n in set(want)]}")

    write_json(out_dir / "hook_names.json", want)
    info = {"source": f"transformers {model_class(family).__name__} (eager, fp32), checked vs a plain-torch "
                      "reimplementation and TransformerLens", "batch_axis": "dropped", "dtype": "float32",
            "ln_hook_normalized": "pre", "attn_scores_masked": "-inf"}
    save_file({k: to_f32_contig(hf[k]) for k in want}, str(out_dir / "activations.safetensors"),
              metadata={"info": json.dumps(info, sort_keys=True)})

    gg = make_gguf(family, out_dir, model, tokens, bos=1)

    if family == "llama":
        make_llama_half(model, out_dir)
    return {"ref": ref_d[worst], "ref_at": worst, "tl": tl_d[worst_tl], "tl_at": worst_tl, "gguf": gg,
            "tokens": tokens}


def make_llama_half(model, out_dir: Path) -> None:
    import copy

    bf = copy.deepcopy(model).to(torch.bfloat16)
    d = out_dir / "bf16-sharded"
    save_model(bf, d, max_shard_size="48KB")
    idx = json.loads((d / "model.safetensors.index.json").read_text())
    shards = sorted(set(idx["weight_map"].values()))
    assert len(shards) >= 2, shards
    f32 = model.state_dict()
    got = {}
    for s in shards:
        got.update(load_file(str(d / s)))
    assert set(got) == set(f32), set(got) ^ set(f32)
    for k, v in got.items():
        assert v.dtype == torch.bfloat16 and torch.equal(v, f32[k].to(torch.bfloat16)), k
    h = copy.deepcopy(model).to(torch.float16)
    d16 = out_dir / "f16"
    save_model(h, d16)
    (d16 / "config.json").unlink()  # only the weights file is asked for here
    got16 = load_file(str(d16 / "model.safetensors"))
    for k, v in got16.items():
        assert v.dtype == torch.float16 and torch.equal(v, f32[k].to(torch.float16)), k
    print(f"[llama-tiny] bf16-sharded/: {len(shards)} shards {shards}; f16/model.safetensors "
          f"({(d16 / 'model.safetensors').stat().st_size} bytes)")


def make_gpt2_gguf() -> dict:
    from transformers import GPT2LMHeadModel

    out_dir = FIXTURES / "gpt2-tiny"
    model = GPT2LMHeadModel.from_pretrained(str(out_dir), attn_implementation="eager", dtype=torch.float32).eval()
    tokens = json.loads((out_dir / "tokens.json").read_text())["tokens"]
    bos = json.loads((out_dir / "config.json").read_text()).get("bos_token_id", 0)
    # the model loaded from the files reproduces the saved activations
    ref = load_file(str(out_dir / "activations.safetensors"))["unembed.hook_out"]
    check_close("gpt2-tiny logits vs activations.safetensors", model(torch.tensor([tokens])).logits[0], ref)
    return make_gguf("gpt2", out_dir, model, tokens, bos=bos)


def main() -> None:
    import transformers
    import transformer_lens  # noqa: F401
    import importlib.metadata as md

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"transformer_lens {md.version('transformer_lens')}, gguf {md.version('gguf')}")
    protected = [FIXTURES / "gpt2-tiny" / f for f in ("config.json", "model.safetensors", "tokens.json",
                                                      "activations.safetensors", "hook_names.json")]
    before = {p: p.read_bytes() for p in protected}
    tl_pre = tl_hook_normalized_is_pre()
    results = {}
    for family, dirname in (("llama", "llama-tiny"), ("qwen2", "qwen2-tiny"), ("pythia", "pythia-tiny")):
        results[dirname] = make_family(family, dirname, tl_pre)
    results["gpt2-tiny"] = {"gguf": make_gpt2_gguf()}
    for p, b in before.items():
        assert p.read_bytes() == b, f"{p} changed"
    print("\nsummary:")
    for d, r in results.items():
        if "ref" in r:
            print(f"  {d}: tokens {r['tokens']}; ref max diff {r['ref']:.3g} ({r['ref_at']}), "
                  f"TL max diff {r['tl']:.3g} ({r['tl_at']})")
        for kind, g in r["gguf"].items():
            print(f"  {d} {kind}: {g['size']} bytes, logits max diff {g['max_diff']:.4g}")


if __name__ == "__main__":
    main()
