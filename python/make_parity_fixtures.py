#!/usr/bin/env python3
"""Generate small, deterministic parity fixtures for the Rust hooked transformer.

Run from the repository root:

    python3 python/make_parity_fixtures.py

Writes (into ``fixtures/``):

* ``gpt2-tiny/``       random-weight Hugging Face ``GPT2LMHeadModel`` (3 layers,
                       d_model 64, 4 heads, d_mlp 256, vocab 101), with random
                       biases and LayerNorm parameters.
* ``attn-only-tiny/``  random-weight TransformerLens attention-only model
                       (2 layers, d_model 48, 3 heads, vocab 37, untied
                       unembedding), saved in the same GPT-2 tensor layout.

Each directory holds ``config.json``, ``model.safetensors``, ``tokens.json``,
``activations.safetensors`` (keys = TransformerLens hook names, shapes =
TransformerLens shapes without the batch axis, float32) and ``hook_names.json``
(the order TransformerLens' ActivationCache iterates in).

For gpt2-tiny the activations are taken from the Hugging Face model (forward
hooks on its submodules) and cross-checked against TransformerLens'
``run_with_cache`` on the converted weights. For attn-only-tiny they come from
TransformerLens and are cross-checked against an independent plain-torch
forward pass that reads the saved GPT-2-layout weights.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import warnings  # noqa: E402

# TransformerLens 3.x deprecates HookedTransformer (still the reference here).
warnings.filterwarnings("ignore", message="HookedTransformer is deprecated")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "fixtures"
ATOL = 1e-5

# Convention for the saved ``*.hook_normalized`` activations:
#   "pre":  (x - mean) / scale only (TransformerLens >= 3.0, PR #770; what the
#           Rust side implements, since its hook names and meanings are TL 3's),
#   "post": the LayerNorm output including its weight and bias (TransformerLens
#           2.x with fold_ln=False).
# Settable with --ln-normalized; the chosen value is recorded in the
# activations.safetensors metadata ("ln_hook_normalized").
LN_NORMALIZED = "pre"

torch.set_grad_enabled(False)
torch.use_deterministic_algorithms(True)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def expected_hook_names(n_layers: int, attn_only: bool) -> list[str]:
    """The hook list from the spec, in forward order."""
    names = ["hook_embed", "hook_pos_embed"]
    for i in range(n_layers):
        b = f"blocks.{i}"
        names += [
            f"{b}.hook_resid_pre",
            f"{b}.ln1.hook_scale",
            f"{b}.ln1.hook_normalized",
            f"{b}.attn.hook_q",
            f"{b}.attn.hook_k",
            f"{b}.attn.hook_v",
            f"{b}.attn.hook_attn_scores",
            f"{b}.attn.hook_pattern",
            f"{b}.attn.hook_z",
            f"{b}.hook_attn_out",
        ]
        if not attn_only:
            names += [
                f"{b}.hook_resid_mid",
                f"{b}.ln2.hook_scale",
                f"{b}.ln2.hook_normalized",
                f"{b}.mlp.hook_pre",
                f"{b}.mlp.hook_post",
                f"{b}.hook_mlp_out",
            ]
        names.append(f"{b}.hook_resid_post")
    names += [
        "ln_final.hook_scale",
        "ln_final.hook_normalized",
        "unembed.hook_in",
        "unembed.hook_out",
    ]
    return names


def ln_scale(x: torch.Tensor, eps: float) -> torch.Tensor:
    """TransformerLens LayerNorm hook_scale: sqrt(mean((x-mean)^2) + eps), [pos, 1]."""
    xc = x - x.mean(-1, keepdim=True)
    return (xc.pow(2).mean(-1, keepdim=True) + eps).sqrt()


def causal_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """q, k: [pos, n_heads, d_head] -> [n_heads, q_pos, k_pos] with -inf above diag."""
    d_head = q.shape[-1]
    s = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(d_head)
    n = q.shape[0]
    mask = torch.ones(n, n, dtype=torch.bool).tril()
    return torch.where(mask, s, torch.tensor(float("-inf")))


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


def randomise_(t: torch.Tensor, around: float, std: float = 0.1) -> None:
    t.copy_(torch.full_like(t, around) + std * torch.randn_like(t))


def import_convert_gpt2_weights():
    try:
        from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights
    except ImportError:  # older TransformerLens layouts
        try:
            from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights
        except ImportError:
            from transformer_lens.loading_from_pretrained import convert_gpt2_weights
    return convert_gpt2_weights


def tl_load_unprocessed(tl_model, state_dict) -> None:
    """Load weights into a HookedTransformer with every processing step off."""
    tl_model.load_and_process_state_dict(
        state_dict,
        fold_ln=False,
        center_writing_weights=False,
        center_unembed=False,
        fold_value_biases=False,
        refactor_factored_attn_matrices=False,
    )


def tl_ln_convention() -> str:
    """'post' if this TransformerLens' LayerNorm.hook_normalized includes w and b
    (TransformerLens 2.x), 'pre' if it is (x - mean) / scale only (3.x, PR #770)."""
    from transformer_lens import HookedTransformerConfig
    from transformer_lens.components import LayerNorm

    cfg = HookedTransformerConfig(n_layers=1, d_model=4, n_ctx=4, d_head=4, n_heads=1,
                                  d_vocab=4, attn_only=True, device="cpu")
    ln = LayerNorm(cfg)
    ln.w.data = torch.tensor([2.0, -1.0, 0.5, 3.0])
    ln.b.data = torch.tensor([0.3, -0.2, 0.1, 0.7])
    seen = {}
    ln.hook_normalized.add_hook(lambda t, hook: seen.__setitem__("n", t.clone()))
    x = torch.tensor([[[0.1, 2.0, -1.0, 0.4]]])
    y = ln(x)
    ln.hook_normalized.remove_hooks()
    if torch.allclose(seen["n"], y):
        return "post"
    if torch.allclose(seen["n"] * ln.w + ln.b, y):
        return "pre"
    raise RuntimeError("unrecognised TransformerLens LayerNorm.hook_normalized convention")


def ln_modules(tl_model) -> dict[str, object]:
    """hook prefix -> TL LayerNorm module, e.g. 'blocks.0.ln1' -> model.blocks[0].ln1."""
    out = {"ln_final": tl_model.ln_final}
    for i, blk in enumerate(tl_model.blocks):
        out[f"blocks.{i}.ln1"] = blk.ln1
        if hasattr(blk, "ln2") and not tl_model.cfg.attn_only:
            out[f"blocks.{i}.ln2"] = blk.ln2
    return out


def tl_to_convention(tl_model, acts: dict, have: str, want: str) -> None:
    """Convert TL's ``*.hook_normalized`` values in ``acts`` between the
    pre-affine ('pre') and post-affine ('post') conventions, in place."""
    if have == want:
        return
    for prefix, mod in ln_modules(tl_model).items():
        k = f"{prefix}.hook_normalized"
        if k not in acts:
            continue
        w, b = mod.w.detach(), mod.b.detach()
        acts[k] = acts[k] * w + b if want == "post" else (acts[k] - b) / w


def tl_cache_dict(tl_model, tokens: list[int]):
    tok = torch.tensor([tokens], dtype=torch.long)
    logits, cache = tl_model.run_with_cache(tok)
    names = list(cache.keys())
    acts = {k: cache[k][0] for k in names}  # drop batch axis
    # Older TransformerLens releases (2.x) have no hooks on Unembed; there
    # ln_final.hook_normalized is the LN output, i.e. the unembed input.
    if "unembed.hook_in" not in acts:
        assert tl_ln_convention() == "post"
        acts["unembed.hook_in"] = acts["ln_final.hook_normalized"]
    acts.setdefault("unembed.hook_out", logits[0])
    return logits[0], names, acts


def compare_sets(label: str, got: list[str], want: list[str]) -> None:
    g, w = set(got), set(want)
    if g != w:
        print(f"[{label}] TL cache keys differ from the spec list:")
        if g - w:
            print(f"    only in TL  : {sorted(g - w)}")
        if w - g:
            print(f"    only in spec: {sorted(w - g)}")
    else:
        print(f"[{label}] TL cache keys == spec list ({len(g)} hooks)")
    order_ok = [n for n in want if n in g] == [n for n in got if n in w]
    print(f"[{label}] order of common keys matches spec order: {order_ok}")


def final_hook_list(tl_names: list[str], want: list[str]) -> list[str]:
    """TL's iteration order, with any spec hooks TL lacks appended in spec position."""
    out = list(tl_names)
    for i, n in enumerate(want):
        if n in out:
            continue
        # insert after the previous spec hook that is already present
        prev = [p for p in want[:i] if p in out]
        pos = out.index(prev[-1]) + 1 if prev else 0
        out.insert(pos, n)
    # only keep hooks that are in the spec (and thus in activations.safetensors)
    return [n for n in out if n in set(want)]


def save_activations(out_dir: Path, acts: dict[str, torch.Tensor], source: str) -> None:
    # safetensors writes a multi-key metadata map in hash order, so keep a
    # single key (JSON with sorted keys) to make the file byte-reproducible.
    info = {"source": source, "batch_axis": "dropped", "dtype": "float32",
            "ln_hook_normalized": LN_NORMALIZED, "attn_scores_masked": "-inf"}
    save_file({k: to_f32_contig(v) for k, v in acts.items()}, str(out_dir / "activations.safetensors"),
              metadata={"info": json.dumps(info, sort_keys=True)})


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


# --------------------------------------------------------------------------
# (a) gpt2-tiny: Hugging Face model, cross-checked with TransformerLens
# --------------------------------------------------------------------------


def make_gpt2_tiny() -> dict:
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    out_dir = FIXTURES / "gpt2-tiny"
    out_dir.mkdir(parents=True, exist_ok=True)

    n_layer, n_head, d_model, n_ctx, vocab, d_mlp, eps = 3, 4, 64, 64, 101, 256, 1e-5
    d_head = d_model // n_head

    torch.manual_seed(0)
    cfg = GPT2Config(
        n_layer=n_layer,
        n_head=n_head,
        n_embd=d_model,
        n_positions=n_ctx,
        vocab_size=vocab,
        n_inner=d_mlp,
        activation_function="gelu_new",
        layer_norm_epsilon=eps,
        tie_word_embeddings=True,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    cfg._attn_implementation = "eager"
    model = GPT2LMHeadModel(cfg)
    model.eval()
    model.to(torch.float32)

    # Random biases and LayerNorm parameters so tests catch bias/LN bugs.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                randomise_(p, 1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                randomise_(p, 0.0)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr(), "not tied"

    try:
        model.save_pretrained(out_dir, safe_serialization=True)
    except TypeError:  # transformers versions where safetensors is the only format
        model.save_pretrained(out_dir)
    for extra in ("generation_config.json",):
        (out_dir / extra).unlink(missing_ok=True)

    gen = torch.Generator().manual_seed(1234)
    tokens = torch.randint(0, vocab, (12,), generator=gen).tolist()
    write_json(out_dir / "tokens.json", {"tokens": tokens})
    n = len(tokens)

    # ---- HF forward with hooks -------------------------------------------
    acts: dict[str, torch.Tensor] = {}
    handles = []

    def first(x):
        return x[0] if isinstance(x, (tuple, list)) else x

    def fwd(name, fn=lambda t: t):
        def hook(_mod, _inp, out):
            acts[name] = fn(first(out)).detach().clone()

        return hook

    def pre(name, fn=lambda t: t):
        def hook(_mod, args, kwargs):
            x = args[0] if args else kwargs["hidden_states"]
            acts[name] = fn(x).detach().clone()

        return hook

    tr = model.transformer
    handles.append(tr.wte.register_forward_hook(fwd("hook_embed")))
    handles.append(tr.wpe.register_forward_hook(fwd("hook_pos_embed")))
    for i, blk in enumerate(tr.h):
        b = f"blocks.{i}"
        handles.append(blk.register_forward_pre_hook(pre(f"{b}.hook_resid_pre"), with_kwargs=True))
        handles.append(blk.ln_1.register_forward_pre_hook(pre(f"{b}.ln1.hook_in"), with_kwargs=True))
        handles.append(blk.ln_1.register_forward_hook(fwd(f"{b}.ln1.out")))
        handles.append(blk.attn.c_attn.register_forward_hook(fwd(f"{b}.attn.c_attn_out")))
        handles.append(blk.attn.c_proj.register_forward_pre_hook(pre(f"{b}.attn.z_flat"), with_kwargs=True))
        handles.append(blk.attn.register_forward_hook(fwd(f"{b}.hook_attn_out")))
        handles.append(blk.ln_2.register_forward_pre_hook(pre(f"{b}.hook_resid_mid"), with_kwargs=True))
        handles.append(blk.ln_2.register_forward_hook(fwd(f"{b}.ln2.out")))
        handles.append(blk.mlp.c_fc.register_forward_hook(fwd(f"{b}.mlp.hook_pre")))
        handles.append(blk.mlp.act.register_forward_hook(fwd(f"{b}.mlp.hook_post")))
        handles.append(blk.mlp.register_forward_hook(fwd(f"{b}.hook_mlp_out")))
        handles.append(blk.register_forward_hook(fwd(f"{b}.hook_resid_post")))
    handles.append(tr.ln_f.register_forward_pre_hook(pre("ln_final.hook_in"), with_kwargs=True))
    handles.append(tr.ln_f.register_forward_hook(fwd("ln_final.out")))
    handles.append(model.lm_head.register_forward_pre_hook(pre("unembed.hook_in"), with_kwargs=True))
    handles.append(model.lm_head.register_forward_hook(fwd("unembed.hook_out")))

    tok = torch.tensor([tokens], dtype=torch.long)
    out = model(tok, output_attentions=True, use_cache=False, return_dict=True)
    for h in handles:
        h.remove()

    # Drop the batch axis.
    acts = {k: (v[0] if v.dim() >= 2 and v.shape[0] == 1 else v) for k, v in acts.items()}
    hf: dict[str, torch.Tensor] = {}

    def normalized(x_in, ln_out):
        if LN_NORMALIZED == "post":
            return ln_out
        return (x_in - x_in.mean(-1, keepdim=True)) / ln_scale(x_in, eps)
    hf["hook_embed"] = acts["hook_embed"]
    hf["hook_pos_embed"] = acts["hook_pos_embed"]
    for i in range(n_layer):
        b = f"blocks.{i}"
        hf[f"{b}.hook_resid_pre"] = acts[f"{b}.hook_resid_pre"]
        hf[f"{b}.ln1.hook_scale"] = ln_scale(acts[f"{b}.ln1.hook_in"], eps)
        hf[f"{b}.ln1.hook_normalized"] = normalized(acts[f"{b}.ln1.hook_in"], acts[f"{b}.ln1.out"])
        qkv = acts[f"{b}.attn.c_attn_out"]  # [pos, 3*d_model]
        q, k, v = qkv.split(d_model, dim=-1)
        q, k, v = (t.reshape(n, n_head, d_head) for t in (q, k, v))
        hf[f"{b}.attn.hook_q"] = q
        hf[f"{b}.attn.hook_k"] = k
        hf[f"{b}.attn.hook_v"] = v
        hf[f"{b}.attn.hook_attn_scores"] = causal_scores(q, k)
        hf[f"{b}.attn.hook_pattern"] = out.attentions[i][0]
        hf[f"{b}.attn.hook_z"] = acts[f"{b}.attn.z_flat"].reshape(n, n_head, d_head)
        hf[f"{b}.hook_attn_out"] = acts[f"{b}.hook_attn_out"]
        hf[f"{b}.hook_resid_mid"] = acts[f"{b}.hook_resid_mid"]
        hf[f"{b}.ln2.hook_scale"] = ln_scale(acts[f"{b}.hook_resid_mid"], eps)
        hf[f"{b}.ln2.hook_normalized"] = normalized(acts[f"{b}.hook_resid_mid"], acts[f"{b}.ln2.out"])
        hf[f"{b}.mlp.hook_pre"] = acts[f"{b}.mlp.hook_pre"]
        hf[f"{b}.mlp.hook_post"] = acts[f"{b}.mlp.hook_post"]
        hf[f"{b}.hook_mlp_out"] = acts[f"{b}.hook_mlp_out"]
        hf[f"{b}.hook_resid_post"] = acts[f"{b}.hook_resid_post"]
    hf["ln_final.hook_scale"] = ln_scale(acts["ln_final.hook_in"], eps)
    hf["ln_final.hook_normalized"] = normalized(acts["ln_final.hook_in"], acts["ln_final.out"])
    hf["unembed.hook_in"] = acts["unembed.hook_in"]
    hf["unembed.hook_out"] = acts["unembed.hook_out"]

    want = expected_hook_names(n_layer, attn_only=False)
    assert list(hf.keys()) == want, set(hf) ^ set(want)

    # ---- internal consistency of the HF-derived values --------------------
    sd = model.state_dict()
    checks = []

    def chk(name, a, b, atol=ATOL):
        checks.append(check_close(name, a, b, atol))

    chk("logits == out.logits", hf["unembed.hook_out"], out.logits[0])
    chk("embed", hf["hook_embed"], sd["transformer.wte.weight"][tokens])
    chk("pos_embed", hf["hook_pos_embed"], sd["transformer.wpe.weight"][:n])
    chk("resid_pre0", hf["blocks.0.hook_resid_pre"], hf["hook_embed"] + hf["hook_pos_embed"])
    for i in range(n_layer):
        b = f"blocks.{i}"
        p = f"transformer.h.{i}"
        x = hf[f"{b}.hook_resid_pre"]
        sc = hf[f"{b}.ln1.hook_scale"]
        assert sc.shape == (n, 1)
        chk(f"{b} ln1", acts[f"{b}.ln1.out"],
            (x - x.mean(-1, keepdim=True)) / sc * sd[f"{p}.ln_1.weight"] + sd[f"{p}.ln_1.bias"])
        chk(f"{b} softmax(scores)==pattern",
            torch.softmax(hf[f"{b}.attn.hook_attn_scores"], dim=-1), hf[f"{b}.attn.hook_pattern"])
        chk(f"{b} z == pattern@v", hf[f"{b}.attn.hook_z"],
            torch.einsum("hqk,khd->qhd", hf[f"{b}.attn.hook_pattern"], hf[f"{b}.attn.hook_v"]))
        chk(f"{b} attn_out", hf[f"{b}.hook_attn_out"],
            hf[f"{b}.attn.hook_z"].reshape(n, d_model) @ sd[f"{p}.attn.c_proj.weight"]
            + sd[f"{p}.attn.c_proj.bias"])
        chk(f"{b} resid_mid", hf[f"{b}.hook_resid_mid"], x + hf[f"{b}.hook_attn_out"])
        chk(f"{b} resid_post", hf[f"{b}.hook_resid_post"],
            hf[f"{b}.hook_resid_mid"] + hf[f"{b}.hook_mlp_out"])
        chk(f"{b} mlp_pre", hf[f"{b}.mlp.hook_pre"],
            acts[f"{b}.ln2.out"] @ sd[f"{p}.mlp.c_fc.weight"] + sd[f"{p}.mlp.c_fc.bias"])
        chk(f"{b} mlp_out", hf[f"{b}.hook_mlp_out"],
            hf[f"{b}.mlp.hook_post"] @ sd[f"{p}.mlp.c_proj.weight"] + sd[f"{p}.mlp.c_proj.bias"])
        if i + 1 < n_layer:
            chk(f"{b} chain", hf[f"blocks.{i+1}.hook_resid_pre"], hf[f"{b}.hook_resid_post"])
    chk("final chain", acts["ln_final.hook_in"], hf[f"blocks.{n_layer-1}.hook_resid_post"])
    chk("unembed_in", hf["unembed.hook_in"], acts["ln_final.out"])
    chk("logits", hf["unembed.hook_out"], hf["unembed.hook_in"] @ sd["transformer.wte.weight"].T)
    print(f"[gpt2-tiny] {len(checks)} internal HF consistency checks passed "
          f"(max diff {max(checks):.3g})")

    # ---- TransformerLens cross-check -------------------------------------
    convert_gpt2_weights = import_convert_gpt2_weights()
    tl_cfg = HookedTransformerConfig(
        n_layers=n_layer,
        d_model=d_model,
        n_heads=n_head,
        d_head=d_head,
        d_mlp=d_mlp,
        n_ctx=n_ctx,
        d_vocab=vocab,
        act_fn="gelu_new",
        normalization_type="LN",
        positional_embedding_type="standard",
        eps=eps,
        device="cpu",
        dtype=torch.float32,
        default_prepend_bos=False,
        original_architecture="GPT2LMHeadModel",
    )
    tl_model = HookedTransformer(tl_cfg)
    tl_model.eval()
    tl_load_unprocessed(tl_model, convert_gpt2_weights(model, tl_cfg))
    tl_logits, tl_names, tl_acts = tl_cache_dict(tl_model, tokens)
    tl_conv = tl_ln_convention()
    print(f"[gpt2-tiny] this TransformerLens' LayerNorm.hook_normalized convention: {tl_conv!r}; "
          f"saving {LN_NORMALIZED!r}")
    tl_to_convention(tl_model, tl_acts, tl_conv, LN_NORMALIZED)
    print(f"[gpt2-tiny] TL cache keys ({len(tl_names)}): {tl_names}")
    compare_sets("gpt2-tiny", tl_names, want)
    check_close("TL logits", tl_logits, tl_acts["unembed.hook_out"], 0.0)
    tl_diffs = {}
    for name in want:
        assert tl_acts[name].shape == hf[name].shape, (name, tl_acts[name].shape, hf[name].shape)
        tl_diffs[name] = check_close(f"TL vs HF {name}", tl_acts[name], hf[name])
    worst = max(tl_diffs, key=tl_diffs.get)
    print(f"[gpt2-tiny] TL vs HF: all {len(want)} hooks within {ATOL}; "
          f"max abs diff {tl_diffs[worst]:.3g} at {worst}")

    hook_list = final_hook_list(tl_names, want)
    write_json(out_dir / "hook_names.json", hook_list)
    save_activations(out_dir, {k: hf[k] for k in hook_list},
                     "transformers GPT2LMHeadModel (eager, fp32), checked vs TransformerLens")
    return {"dir": out_dir, "tl_names": tl_names, "want": want, "max_diff": tl_diffs[worst],
            "worst": worst, "tokens": tokens}


# --------------------------------------------------------------------------
# (b) attn-only-tiny: TransformerLens model, saved in GPT-2 layout
# --------------------------------------------------------------------------


def tl_to_gpt2_layout(tl_model) -> dict[str, torch.Tensor]:
    cfg = tl_model.cfg
    sd = {}
    sd["transformer.wte.weight"] = tl_model.embed.W_E
    sd["transformer.wpe.weight"] = tl_model.pos_embed.W_pos
    for i, blk in enumerate(tl_model.blocks):
        p = f"transformer.h.{i}"
        a = blk.attn
        sd[f"{p}.ln_1.weight"] = blk.ln1.w
        sd[f"{p}.ln_1.bias"] = blk.ln1.b

        def flat_w(w):  # [n_heads, d_model, d_head] -> [d_model, n_heads*d_head]
            return w.permute(1, 0, 2).reshape(cfg.d_model, cfg.n_heads * cfg.d_head)

        sd[f"{p}.attn.c_attn.weight"] = torch.cat([flat_w(a.W_Q), flat_w(a.W_K), flat_w(a.W_V)], dim=1)
        sd[f"{p}.attn.c_attn.bias"] = torch.cat([a.b_Q.reshape(-1), a.b_K.reshape(-1), a.b_V.reshape(-1)])
        sd[f"{p}.attn.c_proj.weight"] = a.W_O.reshape(cfg.n_heads * cfg.d_head, cfg.d_model)
        sd[f"{p}.attn.c_proj.bias"] = a.b_O
    sd["transformer.ln_f.weight"] = tl_model.ln_final.w
    sd["transformer.ln_f.bias"] = tl_model.ln_final.b
    sd["lm_head.weight"] = tl_model.unembed.W_U.T
    return {k: to_f32_contig(v) for k, v in sd.items()}


def reference_forward_gpt2_layout(sd, cfg_json, tokens):
    """Plain-torch GPT-2 forward (attention only) reading HF-layout tensors."""
    n_layer, n_head, d_model = cfg_json["n_layer"], cfg_json["n_head"], cfg_json["n_embd"]
    eps = cfg_json["layer_norm_epsilon"]
    d_head = d_model // n_head
    n = len(tokens)
    r = {}

    def ln(x, w, b, tag):
        sc = ln_scale(x, eps)
        r[f"{tag}.hook_scale"] = sc
        xn = (x - x.mean(-1, keepdim=True)) / sc
        y = xn * w + b
        r[f"{tag}.hook_normalized"] = y if LN_NORMALIZED == "post" else xn
        return y

    r["hook_embed"] = sd["transformer.wte.weight"][tokens]
    r["hook_pos_embed"] = sd["transformer.wpe.weight"][:n]
    x = r["hook_embed"] + r["hook_pos_embed"]
    for i in range(n_layer):
        b, p = f"blocks.{i}", f"transformer.h.{i}"
        r[f"{b}.hook_resid_pre"] = x
        h = ln(x, sd[f"{p}.ln_1.weight"], sd[f"{p}.ln_1.bias"], f"{b}.ln1")
        qkv = h @ sd[f"{p}.attn.c_attn.weight"] + sd[f"{p}.attn.c_attn.bias"]
        q, k, v = (t.reshape(n, n_head, d_head) for t in qkv.split(d_model, dim=-1))
        r[f"{b}.attn.hook_q"], r[f"{b}.attn.hook_k"], r[f"{b}.attn.hook_v"] = q, k, v
        s = causal_scores(q, k)
        r[f"{b}.attn.hook_attn_scores"] = s
        pat = torch.softmax(s, dim=-1)
        r[f"{b}.attn.hook_pattern"] = pat
        z = torch.einsum("hqk,khd->qhd", pat, v)
        r[f"{b}.attn.hook_z"] = z
        ao = z.reshape(n, d_model) @ sd[f"{p}.attn.c_proj.weight"] + sd[f"{p}.attn.c_proj.bias"]
        r[f"{b}.hook_attn_out"] = ao
        x = x + ao
        r[f"{b}.hook_resid_post"] = x
    h = ln(x, sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"], "ln_final")
    r["unembed.hook_in"] = h
    r["unembed.hook_out"] = h @ sd["lm_head.weight"].T
    return r


def make_attn_only_tiny() -> dict:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    out_dir = FIXTURES / "attn-only-tiny"
    out_dir.mkdir(parents=True, exist_ok=True)
    n_layers, d_model, n_heads, d_head, n_ctx, vocab, eps = 2, 48, 3, 16, 64, 37, 1e-5
    assert d_model == n_heads * d_head

    tl_cfg = HookedTransformerConfig(
        n_layers=n_layers,
        d_model=d_model,
        n_heads=n_heads,
        d_head=d_head,
        n_ctx=n_ctx,
        d_vocab=vocab,
        attn_only=True,
        act_fn="gelu_new",
        normalization_type="LN",
        positional_embedding_type="standard",
        eps=eps,
        seed=1,
        device="cpu",
        dtype=torch.float32,
        default_prepend_bos=False,
    )
    model = HookedTransformer(tl_cfg)
    model.eval()

    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if ".ln" in name or name.startswith("ln_final"):
                randomise_(p, 1.0 if leaf == "w" else 0.0)
            elif leaf == "b_U":
                p.zero_()  # keep the GPT-2 format: no lm_head.bias
            elif leaf.startswith("b_"):
                randomise_(p, 0.0)
    assert float(model.unembed.b_U.abs().max()) == 0.0

    gen = torch.Generator().manual_seed(4321)
    tokens = torch.randint(0, vocab, (10,), generator=gen).tolist()
    write_json(out_dir / "tokens.json", {"tokens": tokens})

    logits, tl_names, tl_acts = tl_cache_dict(model, tokens)
    tl_conv = tl_ln_convention()
    print(f"[attn-only-tiny] TL LayerNorm.hook_normalized convention: {tl_conv!r}; "
          f"saving {LN_NORMALIZED!r}")
    tl_to_convention(model, tl_acts, tl_conv, LN_NORMALIZED)
    want = expected_hook_names(n_layers, attn_only=True)
    print(f"[attn-only-tiny] TL cache keys ({len(tl_names)}): {tl_names}")
    compare_sets("attn-only-tiny", tl_names, want)

    weights = tl_to_gpt2_layout(model)
    save_file(weights, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    cfg_json = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "n_layer": n_layers,
        "n_head": n_heads,
        "n_embd": d_model,
        "n_positions": n_ctx,
        "n_ctx": n_ctx,
        "vocab_size": vocab,
        "n_inner": None,
        "layer_norm_epsilon": eps,
        "activation_function": "gelu_new",
        "tie_word_embeddings": False,
        "scale_attn_weights": True,
        "attn_only": True,
        "dtype": "float32",
    }
    write_json(out_dir / "config.json", cfg_json)

    # Independent check: forward from the saved GPT-2-layout file == TL cache.
    sd_back = load_file(str(out_dir / "model.safetensors"))
    ref = reference_forward_gpt2_layout(sd_back, cfg_json, tokens)
    diffs = {}
    for name in want:
        assert tl_acts[name].shape == ref[name].shape, (name, tl_acts[name].shape, ref[name].shape)
        diffs[name] = check_close(f"attn-only TL vs ref {name}", tl_acts[name], ref[name])
    worst = max(diffs, key=diffs.get)
    n_exact = sum(1 for v in diffs.values() if v == 0.0)
    print(f"[attn-only-tiny] TL vs GPT-2-layout reference forward: all {len(want)} hooks within "
          f"{ATOL} ({n_exact} bit-identical); max abs diff {diffs[worst]:.3g} at {worst}")

    hook_list = final_hook_list(tl_names, want)
    write_json(out_dir / "hook_names.json", hook_list)
    save_activations(out_dir, {k: tl_acts[k] for k in hook_list},
                     "TransformerLens HookedTransformer run_with_cache (fp32), checked vs a "
                     "plain-torch forward over model.safetensors")
    return {"dir": out_dir, "tl_names": tl_names, "want": want, "max_diff": diffs[worst],
            "worst": worst, "tokens": tokens}


def main() -> int:
    global LN_NORMALIZED
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ln-normalized", choices=["post", "pre"], default=LN_NORMALIZED,
                    help="saved *.hook_normalized: 'post' = LN output incl. weight and bias "
                         "(TransformerLens 2.x, default), 'pre' = (x-mean)/scale (TransformerLens 3.x)")
    LN_NORMALIZED = ap.parse_args().ln_normalized

    import transformers
    import transformer_lens  # noqa: F401
    from importlib.metadata import version

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"transformer_lens {version('transformer-lens')}, numpy {np.__version__}")
    results = [make_gpt2_tiny(), make_attn_only_tiny()]

    print("\nSummary")
    total = 0
    for r in results:
        d = r["dir"]
        print(f"  {d.relative_to(REPO_ROOT)}/  tokens={r['tokens']}")
        for f in sorted(d.iterdir()):
            sz = f.stat().st_size
            total += sz
            print(f"    {f.name:28s} {sz:9d} B")
        print(f"    TL hooks == spec: {set(r['tl_names']) == set(r['want'])}; "
              f"max |TL - ref| = {r['max_diff']:.3g} ({r['worst']})")
    print(f"  total fixture size: {total} B ({total / 1024:.1f} KiB)")
    # gpt2-tiny's weights alone are ~0.65 MB (160k fp32 parameters).
    assert total < 1_500_000, "fixtures must stay small"
    return 0


if __name__ == "__main__":
    sys.exit(main())
