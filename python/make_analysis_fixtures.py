#!/usr/bin/env python3
"""Reference numbers for the analysis module (issue 9): logit lens, direct logit attribution,
head scores and neuron direct effects, computed with TransformerLens 3 on the committed
random-weight fixtures.

Run from the repository root (after make_parity_fixtures.py / make_family_fixtures.py, whose
committed weights it only reads):

    python3 python/make_analysis_fixtures.py

Reads ``fixtures/<model>/{config.json, model.safetensors, tokens.json, activations.safetensors}``
for ``gpt2-tiny`` (GPT-2: LayerNorm, learned positions) and ``llama-tiny`` (RMSNorm, rotary,
gated SiLU MLP, grouped-query attention) and writes, per model:

* ``fixtures/<model>/analysis.safetensors``: float32 tensors, no batch axis (keys below; a single
  metadata key ``info``).
* ``fixtures/<model>/analysis.json``: the inputs (prompt tokens, position, target / distractor
  token ids, the repeated sequence of the head detector, the neurons), the labels of every
  stacked axis, the TransformerLens processing flags of each model variant, the self-checks that
  were run (with their max abs differences) and a ``semantics`` object that says in words what
  every key is and which TransformerLens calls produced it.

Keys (L = n_layers, H = n_heads, P = prompt length, V = d_vocab, D = d_model):

* ``lens.fresh`` [L+1, P, V], ``lens.cached`` [L+1, P, V], ``lens.tl`` [L+1, P, V],
  ``lens.fresh_mid`` [2L+1, P, V]: logit lens (fresh ln_final statistics / cached
  ``ln_final.hook_scale`` / TransformerLens' own ``accumulated_resid(apply_ln=True)``).
* ``dla.*``: direct logit attribution at the last position (``decompose_resid``,
  ``stack_head_results``, ``logit_attrs``) plus the bias terms that make the sum exact.
* ``heads.previous_token`` / ``heads.duplicate_token`` / ``heads.induction`` [L, H]:
  ``transformer_lens.head_detector.detect_head`` scores on a repeated random sequence.
* ``neuron.{l}.{n}`` [V] and ``neuron.{l}.{n}.post`` [P]: a neuron's direct effect on the logits
  through the cached final norm scale, and its ``mlp.hook_post`` activation.

The TransformerLens models are built from the committed ``model.safetensors`` exactly as
make_parity_fixtures.py (gpt2) and make_family_fixtures.py (llama) build theirs (same
HookedTransformerConfig, TL's own weight converters), in float32 and eval mode; each is checked
to reproduce the committed ``activations.safetensors`` before anything is computed. Deterministic
(seeded, single-threaded CPU): re-running rewrites byte-identical files.
"""

from __future__ import annotations

import importlib.metadata as md
import inspect
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import warnings  # noqa: E402

# TransformerLens 3.x deprecates HookedTransformer (still the reference here).
warnings.filterwarnings("ignore", message="HookedTransformer is deprecated")

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "fixtures"
ATOL = 1e-5  # TL vs the committed activations / manual formulas
SUM_ATOL = 1e-4  # attribution sums vs the model's logits (as the brief and the Rust tests)
HEAD_SEED = 9  # issue 9
N_RANDOM = 8  # random tokens in the head detector's repeated sequence
NEURONS = lambda n_layers: [(0, 0), (n_layers - 1, 5), (1, 17)]  # noqa: E731

torch.set_grad_enabled(False)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)  # bit-reproducible CPU matmuls


# --------------------------------------------------------------------------
# helpers (as in make_parity_fixtures.py / make_family_fixtures.py)
# --------------------------------------------------------------------------


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a = a.detach().to(torch.float64)
    b = b.detach().to(torch.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    inf_a, inf_b = torch.isinf(a), torch.isinf(b)
    if not torch.equal(inf_a, inf_b):
        return float("inf")
    if inf_a.any() and not torch.equal(a[inf_a], b[inf_b]):
        return float("inf")
    fin = ~inf_a
    return float((a[fin] - b[fin]).abs().max()) if fin.any() else 0.0


CHECKS: dict[str, str] = {}


def check_close(name: str, a: torch.Tensor, b: torch.Tensor, atol: float = ATOL) -> float:
    d = max_abs_diff(a, b)
    if not d <= atol:
        raise AssertionError(f"{name}: max abs diff {d} > {atol}")
    CHECKS[name] = f"max abs diff {d:.2g} <= {atol:g}"
    return d


def to_f32_contig(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).contiguous().clone()


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def tl_source_ref(obj, needles: list[str]) -> dict:
    """Path (relative to site-packages), qualified name and the line numbers of the given source
    lines of a TransformerLens function, read with inspect (so they follow the installed TL)."""
    import transformer_lens

    path = Path(inspect.getsourcefile(obj))
    root = Path(transformer_lens.__file__).resolve().parent.parent
    lines, start = inspect.getsourcelines(obj)
    found = {}
    for needle in needles:
        hits = [start + i for i, ln in enumerate(lines) if needle in ln]
        assert hits, f"{obj.__qualname__}: {needle!r} not in its source (TL changed?)"
        found[needle] = hits[0]
    return {"path": str(path.resolve().relative_to(root)), "function": obj.__qualname__,
            "lines": f"{start}-{start + len(lines) - 1}", "key_lines": found}


# --------------------------------------------------------------------------
# TransformerLens models from the committed weights
# --------------------------------------------------------------------------


def hf_model(name: str):
    d = FIXTURES / name
    if name == "gpt2-tiny":
        from transformers import GPT2LMHeadModel as cls
    else:
        from transformers import LlamaForCausalLM as cls
    m = cls.from_pretrained(str(d), attn_implementation="eager", dtype=torch.float32).eval()
    # exactly the committed tensors
    sd = load_file(str(d / "model.safetensors"))
    msd = m.state_dict()
    for k, v in sd.items():
        assert torch.equal(msd[k], v), k
    return m


def tl_config(name: str, model):
    """The HookedTransformerConfig of make_parity_fixtures.make_gpt2_tiny (gpt2) and
    make_family_fixtures.tl_activations (llama), copied."""
    from transformer_lens import HookedTransformerConfig

    c = model.config
    if name == "gpt2-tiny":
        from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights as conv

        cfg = HookedTransformerConfig(
            n_layers=c.n_layer, d_model=c.n_embd, n_heads=c.n_head, d_head=c.n_embd // c.n_head,
            d_mlp=c.n_inner, n_ctx=c.n_positions, d_vocab=c.vocab_size, act_fn="gelu_new",
            normalization_type="LN", positional_embedding_type="standard", eps=c.layer_norm_epsilon,
            device="cpu", dtype=torch.float32, default_prepend_bos=False,
            original_architecture="GPT2LMHeadModel")
        return cfg, conv
    from transformer_lens.pretrained.weight_conversions import convert_llama_weights as conv

    rope = c.rope_parameters
    cfg = HookedTransformerConfig(
        n_layers=c.num_hidden_layers, n_ctx=c.max_position_embeddings, d_vocab=c.vocab_size,
        positional_embedding_type="rotary", rotary_base=float(rope["rope_theta"]), rotary_adjacent_pairs=False,
        device="cpu", dtype=torch.float32, default_prepend_bos=False,
        d_model=c.hidden_size, d_head=c.head_dim, n_heads=c.num_attention_heads,
        n_key_value_heads=c.num_key_value_heads, d_mlp=c.intermediate_size, act_fn="silu",
        normalization_type="RMS", gated_mlp=True, final_rms=True, eps=c.rms_norm_eps,
        rotary_dim=c.head_dim, original_architecture="LlamaForCausalLM")
    return cfg, conv


VARIANTS = {
    # fold_value_biases / refactor stay off in every variant: head results are z @ W_O of the
    # committed weights and b_O is the committed b_O (llama: zeros).
    "raw": dict(fold_ln=False, center_writing_weights=False, center_unembed=False,
                fold_value_biases=False, refactor_factored_attn_matrices=False),
    "folded": dict(fold_ln=True, center_writing_weights=False, center_unembed=False,
                   fold_value_biases=False, refactor_factored_attn_matrices=False),
    "folded_centred": dict(fold_ln=True, center_writing_weights=False, center_unembed=True,
                           fold_value_biases=False, refactor_factored_attn_matrices=False),
}


def tl_model(name: str, model, variant: str):
    from transformer_lens import HookedTransformer

    cfg, conv = tl_config(name, model)
    tl = HookedTransformer(cfg)
    tl.eval()
    tl.load_and_process_state_dict(conv(model, cfg), **VARIANTS[variant])
    return tl


def check_against_fixture(name: str, tl, variant: str, tokens: list[int]) -> None:
    acts = load_file(str(FIXTURES / name / "activations.safetensors"))
    logits, cache = tl.run_with_cache(torch.tensor([tokens]))
    check_close(f"[{name}] {variant}: TL logits vs activations.safetensors unembed.hook_out",
                logits[0], acts["unembed.hook_out"])
    if variant == "raw":  # every hook (folded models change the norm hooks' meaning)
        worst = 0.0
        for k, v in acts.items():
            if k in cache.cache_dict:
                worst = max(worst, check_close(f"[{name}] raw TL {k}", cache[k][0], v))
                CHECKS.pop(f"[{name}] raw TL {k}")
        CHECKS[f"[{name}] raw: TL run_with_cache vs every hook of activations.safetensors"] = \
            f"max abs diff {worst:.2g} <= {ATOL:g}"


# --------------------------------------------------------------------------
# the analyses
# --------------------------------------------------------------------------


def norm_fresh(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, eps: float, rms: bool):
    if not rms:
        x = x - x.mean(-1, keepdim=True)
    y = x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * w
    return y + b if b is not None else y


def norm_cached(x: torch.Tensor, scale: torch.Tensor, w, b, rms: bool):
    if not rms:
        x = x - x.mean(-1, keepdim=True)
    y = x / scale * w
    return y + b if b is not None else y


def make(name: str) -> None:
    from transformer_lens import head_detector
    from transformer_lens.ActivationCache import ActivationCache
    from transformer_lens.HookedTransformer import HookedTransformer

    out_dir = FIXTURES / name
    tokens = json.loads((out_dir / "tokens.json").read_text())["tokens"]
    cfg_json = json.loads((out_dir / "config.json").read_text())
    hf = hf_model(name)
    raw = tl_model(name, hf, "raw")
    fol = tl_model(name, hf, "folded")
    cen = tl_model(name, hf, "folded_centred")
    for v, m in (("raw", raw), ("folded", fol), ("folded_centred", None)):
        if m is not None:
            check_against_fixture(name, m, v, tokens)
    c = raw.cfg
    L, H, V, n = c.n_layers, c.n_heads, c.d_vocab, len(tokens)
    rms = c.normalization_type == "RMS"
    assert fol.cfg.normalization_type == ("RMSPre" if rms else "LNPre"), fol.cfg.normalization_type
    tok = torch.tensor([tokens])
    pos = n - 1

    logits_raw, cr = raw.run_with_cache(tok)
    logits_f, cf = fol.run_with_cache(tok)
    logits_c, cc = cen.run_with_cache(tok)
    check_close(f"[{name}] folded logits vs raw logits", logits_f, logits_raw)
    check_close(f"[{name}] centred logits vs raw logits - mean over vocab", logits_c,
                logits_raw - logits_raw.mean(-1, keepdim=True))
    logits = logits_f[0]  # [P, V]: the folded model's logits, used for every DLA total

    top = torch.topk(logits_raw[0, pos], 2)
    t, d = int(top.indices[0]), int(top.indices[1])
    assert t != d and float(top.values[0] - top.values[1]) > 1e-3, "top-1 / top-2 too close to be stable"

    out: dict[str, torch.Tensor] = {}
    sem: dict[str, str] = {}

    # ---------------------------------------------------------------- 1. logit lens
    W_U, b_U = raw.W_U, raw.b_U  # raw (unfolded) unembedding
    lnf = raw.ln_final
    w_f, b_f = lnf.w, (None if rms else lnf.b)
    eps = c.eps
    stack, lens_labels = cr.accumulated_resid(layer=None, incl_mid=False, apply_ln=False, return_labels=True)
    stack = stack[:, 0]  # [L+1, P, D]
    mid, mid_labels = cr.accumulated_resid(layer=None, incl_mid=True, apply_ln=False, return_labels=True)
    mid = mid[:, 0]
    want_mid = [lab for l in range(L) for lab in (f"{l}_pre", f"{l}_mid")] + ["final_post"]
    assert mid_labels == want_mid, mid_labels
    assert lens_labels == [f"{l}_pre" for l in range(L)] + ["final_post"], lens_labels
    # the stacks are the cached hooks
    for i in range(L):
        assert torch.equal(stack[i], cr[f"blocks.{i}.hook_resid_pre"][0])
        assert torch.equal(mid[2 * i + 1], cr[f"blocks.{i}.hook_resid_mid"][0])
    assert torch.equal(stack[L], cr[f"blocks.{L - 1}.hook_resid_post"][0])

    scale = cr["ln_final.hook_scale"][0]  # [P, 1] from the real run
    fresh = norm_fresh(stack, w_f, b_f, eps, rms) @ W_U + b_U
    cached = norm_cached(stack, scale, w_f, b_f, rms) @ W_U + b_U
    fresh_mid = norm_fresh(mid, w_f, b_f, eps, rms) @ W_U + b_U
    check_close(f"[{name}] lens.fresh final row == model logits", fresh[L], logits_raw[0])
    check_close(f"[{name}] lens.cached final row == model logits", cached[L], logits_raw[0])
    check_close(f"[{name}] lens.fresh == ln_final module on each resid (raw model) @ W_U + b_U",
                fresh, lnf(stack) @ W_U + b_U)

    # TL's own accumulated_resid(apply_ln=True) on the folded model, through the folded unembed
    tl_stack = cf.accumulated_resid(layer=None, incl_mid=False, apply_ln=True)[:, 0]
    lens_tl = tl_stack @ fol.W_U + fol.b_U
    tl_mid = cf.accumulated_resid(layer=None, incl_mid=True, apply_ln=True)[:, 0] @ fol.W_U + fol.b_U
    d_fresh = max_abs_diff(lens_tl, fresh)
    d_cached = max_abs_diff(lens_tl[:L], cached[:L])
    if d_fresh <= 1e-4 and d_cached > 1e-2:
        tl_semantics = "fresh"
    elif d_cached <= 1e-4 and d_fresh > 1e-2:
        tl_semantics = "cached"
    else:
        raise AssertionError(f"TL accumulated_resid(apply_ln=True) matches neither: fresh {d_fresh}, "
                             f"cached {d_cached}")
    check_close(f"[{name}] lens.tl vs lens.{tl_semantics}", lens_tl, fresh if tl_semantics == "fresh" else cached,
                1e-4)
    if tl_semantics == "fresh":
        check_close(f"[{name}] TL accumulated_resid(incl_mid=True, apply_ln=True) vs lens.fresh_mid",
                    tl_mid, fresh_mid, 1e-4)
    # the cached semantics through TL: apply_ln_to_stack without recompute (folded model)
    tl_cached = cf.apply_ln_to_stack(cf.accumulated_resid(layer=None, apply_ln=False), layer=-1)[:, 0]
    check_close(f"[{name}] lens.cached vs TL apply_ln_to_stack(accumulated_resid(), layer=-1) @ W_U_folded + "
                "b_U_folded", tl_cached @ fol.W_U + fol.b_U, cached, 1e-4)
    CHECKS[f"[{name}] TL accumulated_resid(apply_ln=True) semantics"] = (
        f"{tl_semantics} (vs lens.fresh max diff {d_fresh:.2g}; vs lens.cached rows 0..L-1 max diff "
        f"{d_cached:.2g})")
    out["lens.fresh"], out["lens.cached"], out["lens.tl"], out["lens.fresh_mid"] = fresh, cached, lens_tl, fresh_mid

    norm_word = "RMSNorm" if rms else "LayerNorm"
    centre = "" if rms else "x - mean(x) over d_model, then "
    centred_then = "" if rms else "centred (x - mean(x) over d_model), then "
    bias_txt = "" if rms else " + ln_final.b"
    bu_txt = " + b_U (zeros for llama-tiny)" if rms else " + b_U"
    sem["lens.fresh"] = (
        f"[L+1, P, V] = [{L + 1}, {n}, {V}]. Row i < L: blocks.i.hook_resid_pre; row L: "
        f"blocks.{L - 1}.hook_resid_post (labels lens_labels, TL's return_labels of accumulated_resid). Each "
        f"residual vector x (every position) goes through ln_final ({norm_word}) with FRESH statistics "
        f"computed from x itself: {centre}x / sqrt(mean(x^2) + eps) * ln_final.w{bias_txt}; then "
        f"@ W_U{bu_txt}. Raw model (fold_ln=False, center_writing_weights=False, center_unembed=False).")
    sem["lens.cached"] = (
        f"[L+1, P, V], same rows as lens.fresh, but each residual x at position p is {centred_then}"
        f"{'(RMSNorm: not centred) ' if rms else ''}divided by the CACHED ln_final.hook_scale[p] of the real run "
        f"(the final residual's scale), then * ln_final.w{bias_txt}, @ W_U{bu_txt} (raw model). Equals "
        "TL's cache.apply_ln_to_stack(cache.accumulated_resid(apply_ln=False), layer=-1) (recompute_ln=False) "
        "on the folded model @ W_U_folded + b_U_folded (checked). Row L equals lens.fresh row L and the "
        "model's logits.")
    sem["lens.tl"] = (
        "[L+1, P, V]: TL's own cache.accumulated_resid(layer=None, incl_mid=False, apply_ln=True)[:, 0] on the "
        "FOLDED model (fold_ln=True, center_writing_weights=False, center_unembed=False) @ W_U_folded + "
        f"b_U_folded. TL 3 recomputes the statistics here, so this equals lens.fresh (checked to 1e-4; "
        f"semantics field 'accumulated_resid_apply_ln').")
    sem["lens.fresh_mid"] = (
        f"[2L+1, P, V] = [{2 * L + 1}, {n}, {V}]: lens.fresh over the stack of "
        "accumulated_resid(layer=None, incl_mid=True): order resid_pre 0, resid_mid 0, resid_pre 1, resid_mid 1, "
        "..., final resid_post (labels lens_mid_labels, TL's own). Equal to TL's "
        "accumulated_resid(incl_mid=True, apply_ln=True) on the folded model through the folded unembedding "
        "(checked).")

    # ---------------------------------------------------------------- 2. direct logit attribution
    comp, comp_labels = cf.decompose_resid(layer=None, mode="all", incl_embeds=True, pos_slice=-1,
                                           return_labels=True)  # [n_comp, 1, D]
    heads, head_labels = cf.stack_head_results(layer=-1, pos_slice=-1, return_labels=True)  # [L*H, 1, D]
    assert head_labels == [f"L{l}H{h}" for l in range(L) for h in range(H)], head_labels
    attrs = cf.logit_attrs(comp, tokens=t, incorrect_tokens=d, pos_slice=-1)[:, 0]
    attrs_t = cf.logit_attrs(comp, tokens=t, pos_slice=-1)[:, 0]
    h_attrs = cf.logit_attrs(heads, tokens=t, incorrect_tokens=d, pos_slice=-1)[:, 0]
    # logit_attrs == apply_ln_to_stack then dot with W_U[:, t] - W_U[:, d]
    ln_comp = cf.apply_ln_to_stack(comp, layer=-1, pos_slice=-1)
    check_close(f"[{name}] logit_attrs == apply_ln_to_stack(stack, layer=-1, pos_slice=-1) . "
                "(W_U_folded[:, t] - W_U_folded[:, d])",
                attrs, (ln_comp[:, 0] @ (fol.W_U[:, t] - fol.W_U[:, d])), 1e-6)
    # stack_head_results has no bias: attn_out = sum of heads + b_O
    for l in range(L):
        check_close(f"[{name}] blocks.{l}.hook_attn_out == sum of stack_head_results heads + b_O",
                    cf[f"blocks.{l}.hook_attn_out"][0, pos], heads[l * H:(l + 1) * H, 0].sum(0) + fol.blocks[l].attn.b_O)
    b_O = torch.stack([fol.blocks[l].attn.b_O for l in range(L)])[:, None, :]  # [L, 1, D]
    bo_attrs = cf.logit_attrs(b_O, tokens=t, incorrect_tokens=d, pos_slice=-1)[:, 0]
    bo_attrs_t = cf.logit_attrs(b_O, tokens=t, pos_slice=-1)[:, 0]
    bu_attr = (fol.b_U[t] - fol.b_U[d]).reshape(1)
    logit_diff = (logits[pos, t] - logits[pos, d]).reshape(1)
    logit_t = logits[pos, t].reshape(1)

    idx = {lab: i for i, lab in enumerate(comp_labels)}
    mlp_sum = sum(attrs[idx[f"{l}_mlp_out"]] for l in range(L))
    emb_sum = attrs[idx["embed"]] + (attrs[idx["pos_embed"]] if "pos_embed" in idx else 0.0)
    total_heads = h_attrs.sum() + mlp_sum + emb_sum + bo_attrs.sum() + bu_attr[0]
    check_close(f"[{name}] sum(heads_attrs) + sum(MLP attrs) + embed (+ pos_embed) + sum(bias_b_O_attrs) + "
                "bias_unembed_attr == logit_diff", total_heads.reshape(1), logit_diff, SUM_ATOL)
    check_close(f"[{name}] sum(decompose_attrs) + bias_unembed_attr == logit_diff",
                (attrs.sum() + bu_attr[0]).reshape(1), logit_diff, SUM_ATOL)
    check_close(f"[{name}] sum(decompose_attrs_target) + b_U_folded[t] == logit_target",
                (attrs_t.sum() + fol.b_U[t]).reshape(1), logit_t, SUM_ATOL)
    for l in range(L):
        check_close(f"[{name}] attrs of {l}_attn_out == sum of its heads' attrs + bias_b_O_attrs[{l}]",
                    attrs[idx[f"{l}_attn_out"]], h_attrs[l * H:(l + 1) * H].sum() + bo_attrs[l], 1e-5)

    # centred unembedding (folded + center_unembed=True)
    comp_c, comp_c_labels = cc.decompose_resid(layer=None, mode="all", incl_embeds=True, pos_slice=-1,
                                               return_labels=True)
    assert comp_c_labels == comp_labels
    check_close(f"[{name}] centred model's decompose_resid == folded model's", comp_c, comp)
    attrs_tc = cc.logit_attrs(comp_c, tokens=t, pos_slice=-1)[:, 0]
    attrs_c = cc.logit_attrs(comp_c, tokens=t, incorrect_tokens=d, pos_slice=-1)[:, 0]
    check_close(f"[{name}] centred unembedding leaves logit-diff attributions unchanged", attrs_c, attrs)
    logit_tc = logits_c[0, pos, t].reshape(1)
    check_close(f"[{name}] sum(decompose_attrs_target_centred) + b_U_centred[t] == logit_target_centred",
                (attrs_tc.sum() + cen.b_U[t]).reshape(1), logit_tc, SUM_ATOL)

    out["dla.decompose"] = comp[:, 0]
    out["dla.decompose_attrs"] = attrs
    out["dla.decompose_attrs_target"] = attrs_t
    out["dla.heads"] = heads[:, 0]
    out["dla.heads_attrs"] = h_attrs
    out["dla.logit_diff"] = logit_diff
    out["dla.logit_target"] = logit_t
    out["dla.bias_b_O_attrs"] = bo_attrs
    out["dla.bias_b_O_attrs_target"] = bo_attrs_t
    out["dla.bias_unembed_attr"] = bu_attr
    out["dla.bias_unembed_target"] = fol.b_U[t].reshape(1)
    out["dla.remainder_attrs"] = torch.cat([bo_attrs, bu_attr])
    out["dla.decompose_attrs_target_centred"] = attrs_tc
    out["dla.logit_target_centred"] = logit_tc
    out["dla.bias_unembed_target_centred"] = cen.b_U[t].reshape(1)

    dla_call = "cache.logit_attrs(stack, tokens=t, incorrect_tokens=d, pos_slice=-1)"
    folded_desc = ("FOLDED model (fold_ln=True, center_writing_weights=False, center_unembed=False, "
                   "fold_value_biases=False): ln_final is " + ("RMSNormPre" if rms else "LayerNormPre") +
                   ", W_U_folded = ln_final.w[:, None] * W_U" +
                   ("" if rms else ", b_U_folded = b_U + ln_final.b @ W_U") + ".")
    sem["dla"] = (
        f"All dla.* at position pos = {pos} (the last), on the {folded_desc} logit_attrs applies "
        "apply_ln_to_stack(stack, layer=-1, pos_slice=-1) ITSELF (cached semantics: "
        + ("" if rms else "each component centred over d_model, ") +
        "divided by the cached ln_final.hook_scale[pos]; no norm weight or bias, they are folded into W_U / b_U) "
        "and dots with W_U_folded[:, t] (- W_U_folded[:, d]); the stacks saved here are BEFORE apply_ln.")
    sem["dla.decompose"] = (
        f"[n_comp, D]: cache.decompose_resid(layer=None, mode='all', incl_embeds=True, pos_slice=-1, "
        f"return_labels=True)[0][:, 0] on the folded model; labels decompose_labels ({', '.join(comp_labels)}). "
        "Raw components (hook_embed" + ("" if rms else ", hook_pos_embed") + ", blocks.l.hook_attn_out "
        "(includes b_O), blocks.l.hook_mlp_out (includes b_out)) at pos; they sum to the final resid_post.")
    sem["dla.decompose_attrs"] = f"[n_comp]: {dla_call}[:, 0] with stack = the decompose_resid stack (t minus d)."
    sem["dla.decompose_attrs_target"] = "[n_comp]: cache.logit_attrs(stack, tokens=t, pos_slice=-1)[:, 0] (t alone)."
    sem["dla.heads"] = (
        "[L*H, D]: cache.stack_head_results(layer=-1, pos_slice=-1, return_labels=True)[0][:, 0]; labels "
        "head_labels L{l}H{h}, layer-major. Each is z[pos, h] @ W_O[h] (TL compute_head_results: z * W_O "
        "summed over d_head); NO b_O (attn_out = sum of heads + b_O, checked)"
        + ("; for grouped-query attention z is per query head (value head h // (H / n_kv_heads))." if rms else "."))
    sem["dla.heads_attrs"] = f"[L*H]: {dla_call}[:, 0] with stack = the stack_head_results stack (t minus d)."
    sem["dla.logit_diff"] = "[1]: the folded model's logits[pos, t] - logits[pos, d] (equal to the raw model's)."
    sem["dla.logit_target"] = "[1]: the folded model's logits[pos, t] (equal to the raw model's)."
    sem["dla.bias_b_O_attrs"] = (
        f"[L]: {dla_call}[:, 0] with stack = [blocks.l.attn.b_O for l] as an [L, 1, D] stack (each b_O "
        "apply_ln'd like a component: " + ("" if rms else "centred, ") + "divided by the cached final scale at pos)"
        + ("; llama-tiny has no attention output bias, TL's b_O is zeros, so these are 0." if rms else "."))
    sem["dla.bias_b_O_attrs_target"] = "[L]: as dla.bias_b_O_attrs with tokens=t alone (no incorrect_tokens)."
    sem["dla.bias_unembed_attr"] = "[1]: b_U_folded[t] - b_U_folded[d]" + (
        " (b_U is zeros for llama-tiny)." if rms else " (b_U_folded = b_U + ln_final.b @ W_U).")
    sem["dla.bias_unembed_target"] = "[1]: b_U_folded[t]."
    sem["dla.remainder_attrs"] = (
        "[L+1]: the terms outside the head decomposition, concatenated: dla.bias_b_O_attrs (L entries) then "
        "dla.bias_unembed_attr; labels remainder_labels.")
    sem["dla.decompose_attrs_target_centred"] = (
        "[n_comp]: cache.logit_attrs(stack, tokens=t, pos_slice=-1)[:, 0] on the folded + CENTRED unembedding "
        "model (fold_ln=True, center_writing_weights=False, center_unembed=True: W_U_c = W_U_folded - its mean "
        "over the vocab, b_U_c = b_U_folded - mean(b_U_folded)); stack = that model's decompose_resid(...) (equal "
        "to dla.decompose). Logit-diff attributions are unchanged by centring (checked), single-token ones "
        "change.")
    sem["dla.logit_target_centred"] = "[1]: the centred model's logits[pos, t] = logits[pos, t] - mean_v logits[pos, v]."
    sem["dla.bias_unembed_target_centred"] = "[1]: b_U_c[t] (centred folded unembedding bias)."
    sem["dla_verified"] = (
        f"Asserted within {SUM_ATOL:g} (float32): (1) sum(dla.heads_attrs) + sum of the '{{l}}_mlp_out' entries "
        "of dla.decompose_attrs + its 'embed'" + ("" if rms else " and 'pos_embed'") + " entries + "
        "sum(dla.bias_b_O_attrs) + dla.bias_unembed_attr == dla.logit_diff; (2) sum(dla.decompose_attrs) + "
        "dla.bias_unembed_attr == dla.logit_diff; (3) sum(dla.decompose_attrs_target) + dla.bias_unembed_target "
        "== dla.logit_target; (4) sum(dla.decompose_attrs_target_centred) + dla.bias_unembed_target_centred == "
        "dla.logit_target_centred. Within 1e-5: each '{l}_attn_out' attribution == the sum of its heads' "
        "attributions + dla.bias_b_O_attrs[l]; blocks.l.hook_attn_out[pos] == sum of the layer's "
        "dla.heads rows + b_O; logit_attrs == apply_ln_to_stack then the dot product (1e-6).")

    # ---------------------------------------------------------------- 3. head detector
    bos = int(cfg_json.get("bos_token_id", 0))
    special = {bos, int(cfg_json.get("eos_token_id", bos))}
    if rms:
        special.add(0)  # llama <unk>
    pool = torch.tensor([i for i in range(V) if i not in special])
    g = torch.Generator().manual_seed(HEAD_SEED)
    rnd = pool[torch.randperm(len(pool), generator=g)[:N_RANDOM]].tolist()
    head_tokens = [bos] + rnd + rnd
    htok = torch.tensor([head_tokens])

    # detect_head calls model.to_tokens(seq) (these fixtures have no tokenizer); feed it our ids by
    # giving the model instance a to_tokens that returns them, then call detect_head itself.
    def scores(model):
        model.to_tokens = lambda seq, *a, **k: htok.clone()
        try:
            return {kind: head_detector.detect_head(model, "<head_tokens>", f"{kind}_head", exclude_bos=False,
                                                    exclude_current_token=False, error_measure="mul")
                    for kind in ("previous_token", "duplicate_token", "induction")}
        finally:
            del model.to_tokens

    hs = scores(raw)
    hs_f = scores(fol)
    _, hcache = raw.run_with_cache(htok, remove_batch_dim=True)
    for kind, s in hs.items():
        assert s.shape == (L, H), s.shape
        check_close(f"[{name}] heads.{kind}: raw vs folded model", s, hs_f[kind])
        # the same by hand: pattern functions of head_detector on the token tensor
        det = getattr(head_detector, f"get_{kind}_head_detection_pattern")(htok)
        manual = torch.stack([torch.stack([(hcache["pattern", l, "attn"][h] * det).sum() /
                                           hcache["pattern", l, "attn"][h].sum() for h in range(H)])
                              for l in range(L)])
        check_close(f"[{name}] heads.{kind}: detect_head vs get_{kind}_head_detection_pattern * pattern by hand",
                    s, manual)
        out[f"heads.{kind}"] = s
    hd_ref = tl_source_ref(head_detector.detect_head, ["tokens = model.to_tokens(seq)",
                                                       "detection_pattern = cast(",
                                                       "_, cache = model.run_with_cache(tokens, remove_batch_dim=True)",
                                                       "head_score = compute_head_attention_similarity_score("])
    for kind in ("previous_token", "duplicate_token", "induction"):
        sem[f"heads.{kind}"] = (
            f"[L, H]: transformer_lens.head_detector.detect_head(model, seq, '{kind}_head', exclude_bos=False, "
            "exclude_current_token=False, error_measure='mul') on the RAW model (the folded one gives the same, "
            "checked), with seq = head_tokens (model.to_tokens patched on the instance to return head_tokens as a "
            "[1, 17] tensor; these fixtures have no tokenizer). Score of head (l, h) = sum(pattern * det) / "
            "sum(pattern) over the [q, k] pattern blocks.l.attn.hook_pattern[h], det = "
            f"head_detector.get_{kind}_head_detection_pattern(tokens)"
            + {"previous_token": " (ones at [i, i-1]).",
               "duplicate_token": " (ones at [i, j], j < i, tokens[i] == tokens[j]; diagonal zero).",
               "induction": (" (the duplicate pattern rolled one column right, column 0 zeroed, lower "
                             "triangle: ones at [i, j+1] for j < i with tokens[i] == tokens[j]).")}[kind]
            + " sum(pattern) = n_pos since rows sum to 1.")

    # ---------------------------------------------------------------- 4. neurons
    neurons = []
    for (l, nn) in NEURONS(L):
        if 0 <= l < L and 0 <= nn < c.d_mlp and (l, nn) not in neurons:
            neurons.append((l, nn))
    skipped = [list(x) for x in NEURONS(L) if tuple(x) not in neurons]
    all_neurons = cf.stack_neuron_results(layer=L, pos_slice=-1, apply_ln=True, project_output_onto=fol.W_U)
    for (l, nn) in neurons:
        w_out = fol.blocks[l].mlp.W_out[nn]  # [D]
        eff = cf.apply_ln_to_stack(w_out[None, None, :], layer=-1, pos_slice=-1)[0, 0] @ fol.W_U  # [V]
        post = cf[f"blocks.{l}.mlp.hook_post"][0, :, nn]
        check_close(f"[{name}] neuron.{l}.{nn}.post folded vs raw", post, cr[f"blocks.{l}.mlp.hook_post"][0, :, nn])
        check_close(f"[{name}] neuron.{l}.{nn} * post[pos] == stack_neuron_results(layer=L, pos_slice=-1, "
                    f"apply_ln=True, project_output_onto=W_U_folded)[L{l}N{nn}]",
                    eff * post[pos], all_neurons[l * c.d_mlp + nn, 0], 1e-5)
        out[f"neuron.{l}.{nn}"] = eff
        out[f"neuron.{l}.{nn}.post"] = post
    sem["neuron.{l}.{n}"] = (
        "[V]: direct effect on the logits of a unit of neuron n of layer l at pos: "
        "cache.apply_ln_to_stack(W_out[l][n][None, None, :], layer=-1, pos_slice=-1)[0, 0] @ W_U_folded on the "
        "folded model (" + ("" if rms else "centred over d_model, ") + "divided by the cached "
        "ln_final.hook_scale[pos]; W_U_folded includes ln_final.w; no b_U). W_out[l][n] is row n of "
        "blocks.l.mlp.W_out [d_mlp, D] (unchanged by folding). Checked: neuron.{l}.{n} * post[pos] == TL "
        "cache.stack_neuron_results(layer=L, pos_slice=-1, apply_ln=True, project_output_onto=W_U_folded) "
        "row L{l}N{n} (with layer < L TL would use blocks.{layer}.ln1.hook_scale instead).")
    sem["neuron.{l}.{n}.post"] = (
        "[P]: blocks.l.mlp.hook_post[:, n] of the prompt run (folded model; equal to the raw model's)"
        + (": for this gated MLP hook_post = silu(hook_pre) * hook_pre_linear, i.e. act(x @ W_gate) * "
           "(x @ W_in), the value multiplied into W_out." if rms else ": gelu_new(hook_pre)."))

    # ---------------------------------------------------------------- semantics sources
    ar_ref = tl_source_ref(ActivationCache.accumulated_resid, ["recompute_ln = layer == self.model.cfg.n_layers",
                                                               "components = self.apply_ln_to_stack("])
    al_ref = tl_source_ref(ActivationCache.apply_ln_to_stack, [
        "if recompute_ln and layer == self.model.cfg.n_layers",
        "out = ln_final(x)",
        "residual_stack = residual_stack - residual_stack.mean(dim=-1, keepdim=True)",
        "return residual_stack / scale"])
    la_ref = tl_source_ref(ActivationCache.logit_attrs, ["scaled_residual_stack = self.apply_ln_to_stack("])
    sh_ref = tl_source_ref(ActivationCache.compute_head_results, ["result = z * block.attn.W_O"])
    lp_ref = tl_source_ref(HookedTransformer.load_and_process_state_dict, ["self.ln_final = LayerNormPre(self.cfg)"])
    sem["accumulated_resid_apply_ln"] = (
        f"TransformerLens {md.version('transformer_lens')}: accumulated_resid(apply_ln=True) uses FRESH statistics "
        "when layer is None / -1 / n_layers (the logit-lens call): it sets recompute_ln = (layer == n_layers) and "
        "apply_ln_to_stack(..., recompute_ln=True) then calls model.ln_final(x) on each stacked residual, "
        "recomputing mean / scale from that residual (and applying ln_final's weight and bias when the model is "
        "not folded). Determined numerically: lens.tl == lens.fresh, != lens.cached (see checks). With "
        "layer < n_layers, recompute_ln is False and it centres (LN only) and divides by the cached "
        "blocks.{layer}.ln1.hook_scale (ln2 with mlp_input=True) instead, without any norm weight. "
        "logit_attrs / apply_ln_to_stack without recompute_ln always use the cached scale and never apply the "
        "norm weight or bias (correct only for folded models). Sources read: "
        f"{ar_ref['path']} {ar_ref['function']} (lines {ar_ref['lines']}; recompute_ln at line "
        f"{ar_ref['key_lines']['recompute_ln = layer == self.model.cfg.n_layers']}), "
        f"{al_ref['function']} (lines {al_ref['lines']}; fresh branch at line "
        f"{al_ref['key_lines']['if recompute_ln and layer == self.model.cfg.n_layers']}, ln_final(x) at line "
        f"{al_ref['key_lines']['out = ln_final(x)']}, cached centring at line "
        f"{al_ref['key_lines']['residual_stack = residual_stack - residual_stack.mean(dim=-1, keepdim=True)']}, "
        f"division by the cached scale at line {al_ref['key_lines']['return residual_stack / scale']}).")
    sem["tl_sources"] = {"accumulated_resid": ar_ref, "apply_ln_to_stack": al_ref, "logit_attrs": la_ref,
                         "compute_head_results": sh_ref, "detect_head": hd_ref,
                         "load_and_process_state_dict": lp_ref}

    info = {
        "model": name,
        "source": (f"TransformerLens {md.version('transformer_lens')} HookedTransformer (float32, eval, CPU) "
                   f"with the weights of fixtures/{name}/model.safetensors converted by TL's "
                   f"{tl_config(name, hf)[1].__name__}; torch {torch.__version__}, transformers "
                   f"{md.version('transformers')}"),
        "variants": VARIANTS,
        "ln_hook_normalized": "pre",
        "batch_axis": "dropped",
        "dtype": "float32",
        "prompt_tokens": tokens,
        "pos": pos,
        "target": t,
        "distractor": d,
        "target_distractor_rule": "t, d = top-1 and top-2 of the model's logits at pos (torch.topk)",
        "target_logit": float(logits_raw[0, pos, t]),
        "distractor_logit": float(logits_raw[0, pos, d]),
        "lens_labels": lens_labels,
        "lens_mid_labels": mid_labels,
        "decompose_labels": comp_labels,
        "head_labels": head_labels,
        "b_O_labels": [f"{l}_b_O" for l in range(L)],
        "remainder_labels": [f"{l}_b_O" for l in range(L)] + ["b_U"],
        "head_tokens": head_tokens,
        "head_tokens_rule": (f"[bos={bos}] + r + r, r = {N_RANDOM} distinct ids drawn by "
                             f"torch.randperm(generator=manual_seed({HEAD_SEED})) from the vocabulary without "
                             f"{sorted(special)}"),
        "neurons": [list(x) for x in neurons],
        "neurons_skipped": skipped,
        "n_layers": L, "n_heads": H, "d_model": c.d_model, "d_mlp": c.d_mlp, "d_vocab": V,
        "normalization": "RMSNorm" if rms else "LayerNorm",
        "keys": {k: list(v.shape) for k, v in out.items()},
        "semantics": sem,
        "checks": {k: v for k, v in CHECKS.items() if k.startswith(f"[{name}]")},
    }
    meta = {"source": info["source"], "json": "analysis.json", "batch_axis": "dropped", "dtype": "float32"}
    save_file({k: to_f32_contig(v) for k, v in out.items()}, str(out_dir / "analysis.safetensors"),
              metadata={"info": json.dumps(meta, sort_keys=True)})
    write_json(out_dir / "analysis.json", info)
    size = (out_dir / "analysis.safetensors").stat().st_size
    print(f"[{name}] t={t} d={d} logit_diff={float(logit_diff):.4f}; TL accumulated_resid(apply_ln=True): "
          f"{tl_semantics}; head tokens {head_tokens}; analysis.safetensors {size} bytes, {len(out)} keys")
    for k, v in info["checks"].items():
        print(f"    {k}: {v}")


def main() -> int:
    import transformers  # noqa: F401

    print(f"torch {torch.__version__}, transformers {md.version('transformers')}, "
          f"transformer_lens {md.version('transformer_lens')}")
    for name in sys.argv[1:] or ["gpt2-tiny", "llama-tiny"]:
        make(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
