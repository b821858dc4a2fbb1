#!/usr/bin/env python3
"""Reference numbers for path patching (Wang et al. 2022, "Interpretability in the Wild", the
IOI paper's appendix), computed with TransformerLens 3 hooks in the way of ARENA's IOI
exercise (``get_path_patch_head_to_final_resid_post``, ``get_path_patch_head_to_heads``), on
the committed random GPT-2 fixture, with the clean / corrupted pair and the metric of the
activation-patching fixture (``patching.json``).

Run from the repository root (it only reads committed files):

    python3 python/make_path_patching_fixtures.py

Reads ``fixtures/gpt2-tiny/{config.json, model.safetensors, tokens.json, activations.safetensors,
patching.json, patching.safetensors}`` and writes:

* ``fixtures/gpt2-tiny/path_patching.safetensors``: float32 tensors (keys below).
* ``fixtures/gpt2-tiny/path_patching.json``: the inputs, the receiver sets, every key's shape and
  how it was computed, and the self-checks.

The algorithm (ARENA's; "orig" = clean, "new" = corrupted):

1. Run the clean and the corrupted prompt, caching every ``hook_z`` (and ``hook_mlp_out``).
2. Run the clean prompt with every head's ``hook_z`` (every layer, every head) frozen to its
   clean value, except the sender's, which is taken from the corrupted run (an MLP sender:
   every ``hook_z`` frozen, the sender layer's ``hook_mlp_out`` from the corrupted run). MLPs and
   norms are recomputed. Receiver = logits: the metric of this run's final residual
   (``model.unembed(model.ln_final(resid_post))``, i.e. its logits) is the result. Receiver =
   heads: cache the receiver layers' ``attn.hook_{q,k,v}``.
3. (Heads) Run the clean prompt again with only the receiver heads' q / k / v replaced by
   step 2's values (``patch_head_input``); the metric of its logits is the result.

Keys (L = 3 layers, H = 4 heads; raw metric values, not normalised; ARENA's result shapes):

* ``logits.heads`` [L, H]: sender head (l, h) -> logits.
* ``logits.mlp`` [L]: sender MLP l -> logits.
* ``<set>.<q|k|v>.heads`` [max receiver layer, H]: sender head -> the receiver set's q / k / v
  inputs (senders in layers before the last receiver layer, as ARENA loops).
* ``<set>.<q|k|v>.mlp`` [max receiver layer]: sender MLP -> the same.
  Sets: ``last`` = every head of the last layer; ``mixed`` = heads 1.2 and 2.1.
* ``metric.clean``, ``metric.corrupted`` [1].
* ``induction.*``: the same on the shipped induction organism (``public/models/induction-2l``,
  attention-only, so no MLP senders), receiver set ``ind`` = its induction heads 1.0 and 1.3,
  the clean / corrupted pair of ``cli/tests/patching_commands.rs`` (logit difference T - j at the
  last position): a trained model, whose effects stand far above float noise (the random
  fixture's attention is near-uniform, so its q / k paths move the metric by ~1e-6 only).
"""

from __future__ import annotations

import importlib.metadata as md
import itertools
import json
import os
import sys
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="HookedTransformer is deprecated")

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_analysis_fixtures as maf  # noqa: E402
from transformer_lens.utilities import get_act_name  # noqa: E402

torch.set_grad_enabled(False)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

NAME = "gpt2-tiny"
MIXED = [(1, 2), (2, 1)]  # the "mixed" receiver set (the "last" set: every head of the last layer)
INDUCTION = "public/models/induction-2l"
# The pair of cli/tests/patching_commands.rs: a segment, then its start again (next token by
# induction: T); corrupted: the first occurrence's tokens changed.
IND_CLEAN, IND_CORRUPTED, IND_TARGET, IND_DISTRACTOR = "kQmz7RbpTxkQmz7Rbp", "aBcd3FgHjWkQmz7Rbp", "T", "j"
IND_RECEIVERS = [(1, 0), (1, 3)]  # the card's induction heads


class PathPatcher:
    """ARENA's path patching on one model and one clean / corrupted pair ("orig" / "new")."""

    def __init__(self, model, clean, corrupted, metric):
        self.model, self.metric = model, metric
        self.L, self.H = model.cfg.n_layers, model.cfg.n_heads
        self.has_mlp = not model.cfg.attn_only
        self.orig_toks, self.new_toks = torch.tensor([clean]), torch.tensor([corrupted])
        keep = lambda name: name.endswith("hook_z") or name.endswith("hook_mlp_out")  # noqa: E731
        orig_logits, self.orig_cache = model.run_with_cache(self.orig_toks, names_filter=keep)
        new_logits, self.new_cache = model.run_with_cache(self.new_toks, names_filter=keep)
        self.clean, self.corrupted = metric(orig_logits), metric(new_logits)

    # ARENA's hook functions.
    @staticmethod
    def patch_or_freeze_head_vectors(orig_head_vector, hook, new_cache, orig_cache, head_to_patch):
        orig_head_vector[...] = orig_cache[hook.name][...]
        if head_to_patch is not None and head_to_patch[0] == hook.layer():
            orig_head_vector[:, :, head_to_patch[1]] = new_cache[hook.name][:, :, head_to_patch[1]]
        return orig_head_vector

    def patch_mlp_out(self, orig, hook):
        orig[...] = self.new_cache[hook.name][...]
        return orig

    @staticmethod
    def patch_head_input(orig_activation, hook, patched_cache, head_list):
        heads_to_patch = [head for layer, head in head_list if layer == hook.layer()]
        orig_activation[:, :, heads_to_patch] = patched_cache[hook.name][:, :, heads_to_patch]
        return orig_activation

    def step2_hooks(self, sender):
        """Every hook_z frozen to clean except a head sender's; an MLP sender's mlp_out from the
        corrupted run."""
        kind, layer, head = sender
        fz = partial(self.patch_or_freeze_head_vectors, new_cache=self.new_cache, orig_cache=self.orig_cache,
                     head_to_patch=(layer, head) if kind == "head" else None)
        hooks = [(get_act_name("z", l), fz) for l in range(self.L)]
        if kind == "mlp":
            hooks.append((get_act_name("mlp_out", layer), self.patch_mlp_out))
        return hooks

    def to_logits(self, sender):
        """get_path_patch_head_to_final_resid_post for one sender."""
        m = self.model
        resid_post = get_act_name("resid_post", self.L - 1)
        m.reset_hooks()
        for name, fn in self.step2_hooks(sender):
            m.add_hook(name, fn)
        _, patched = m.run_with_cache(self.orig_toks, names_filter=lambda n: n == resid_post, return_type=None)
        m.reset_hooks()
        return self.metric(m.unembed(m.ln_final(patched[resid_post])))

    def to_heads(self, sender, receivers, inp):
        """get_path_patch_head_to_heads for one sender."""
        m = self.model
        names = sorted({get_act_name(inp, l) for l, _ in receivers})
        m.reset_hooks()
        for name, fn in self.step2_hooks(sender):
            m.add_hook(name, fn)
        _, patched = m.run_with_cache(self.orig_toks, names_filter=lambda n: n in names, return_type=None)
        m.reset_hooks()
        assert set(patched.keys()) == set(names)
        fn = partial(self.patch_head_input, patched_cache=patched, head_list=receivers)
        return self.metric(m.run_with_hooks(self.orig_toks, fwd_hooks=[(lambda n: n in names, fn)], return_type="logits"))

    def sweep(self, prefix, receiver_sets, put):
        L, H = self.L, self.H
        heads = list(itertools.product(range(L), range(H)))
        put(f"{prefix}logits.heads", [self.to_logits(("head", l, h)) for l, h in heads], (L, H),
            "get_path_patch_head_to_final_resid_post: sender head (l, h) from corrupted, every other hook_z frozen to clean")
        if self.has_mlp:
            put(f"{prefix}logits.mlp", [self.to_logits(("mlp", l, None)) for l in range(L)], (L,),
                "as logits.heads with the sender blocks.l.hook_mlp_out from corrupted and every hook_z frozen to clean")
        for set_name, rec in receiver_sets.items():
            top = max(l for l, _ in rec)
            for inp in ["q", "k", "v"]:
                put(f"{prefix}{set_name}.{inp}.heads",
                    [self.to_heads(("head", l, h), rec, inp) for l, h in itertools.product(range(top), range(H))], (top, H),
                    f"get_path_patch_head_to_heads(receiver_heads={rec}, receiver_input={inp!r}): senders in layers < {top}")
                if self.has_mlp:
                    put(f"{prefix}{set_name}.{inp}.mlp", [self.to_heads(("mlp", l, None), rec, inp) for l in range(top)], (top,),
                        f"as {set_name}.{inp}.heads with MLP senders (hook_mlp_out from corrupted, every hook_z frozen to clean)")


def induction_model():
    """public/models/induction-2l as an attention-only TL HookedTransformer (convert_gpt2_weights
    without the MLP, by hand: HF's GPT-2 has no attention-only variant)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    d = maf.REPO_ROOT / INDUCTION
    c = json.loads((d / "config.json").read_text())
    sd = load_file(str(d / "model.safetensors"))
    nh, dm = c["n_head"], c["n_embd"]
    cfg = HookedTransformerConfig(
        n_layers=c["n_layer"], d_model=dm, n_heads=nh, d_head=dm // nh, n_ctx=c["n_positions"], d_vocab=c["vocab_size"],
        act_fn="gelu_new", attn_only=True, normalization_type="LN", positional_embedding_type="standard",
        eps=c["layer_norm_epsilon"], device="cpu", dtype=torch.float32, default_prepend_bos=False)
    st = {"embed.W_E": sd["transformer.wte.weight"], "pos_embed.W_pos": sd["transformer.wpe.weight"],
          "unembed.W_U": sd["lm_head.weight"].T.contiguous(), "unembed.b_U": torch.zeros(c["vocab_size"]),
          "ln_final.w": sd["transformer.ln_f.weight"], "ln_final.b": sd["transformer.ln_f.bias"]}
    for l in range(cfg.n_layers):
        p = f"transformer.h.{l}."
        st[f"blocks.{l}.ln1.w"], st[f"blocks.{l}.ln1.b"] = sd[p + "ln_1.weight"], sd[p + "ln_1.bias"]
        wq, wk, wv = torch.split(sd[p + "attn.c_attn.weight"], dm, dim=1)
        for n, w in zip("QKV", (wq, wk, wv)):
            st[f"blocks.{l}.attn.W_{n}"] = w.reshape(dm, nh, dm // nh).permute(1, 0, 2).contiguous()
        b = sd[p + "attn.c_attn.bias"].view(3, nh, dm // nh)
        st[f"blocks.{l}.attn.b_Q"], st[f"blocks.{l}.attn.b_K"], st[f"blocks.{l}.attn.b_V"] = b[0], b[1], b[2]
        st[f"blocks.{l}.attn.W_O"] = sd[p + "attn.c_proj.weight"].reshape(nh, dm // nh, dm).contiguous()
        st[f"blocks.{l}.attn.b_O"] = sd[p + "attn.c_proj.bias"]
    tl = HookedTransformer(cfg)
    tl.eval()
    tl.load_and_process_state_dict(st, fold_ln=False, center_writing_weights=False, center_unembed=False,
                                   fold_value_biases=False, refactor_factored_attn_matrices=False)
    vocab = json.loads((d / "vocab.json").read_text())
    return tl, vocab


def main() -> int:
    print(f"torch {torch.__version__}, transformer_lens {md.version('transformer_lens')}")
    out_dir = maf.FIXTURES / NAME
    pj = json.loads((out_dir / "patching.json").read_text())
    pt = load_file(str(out_dir / "patching.safetensors"))
    clean, corrupted = pj["clean_tokens"], pj["corrupted_tokens"]
    target, distractor = pj["target"], pj["distractor"]
    hf = maf.hf_model(NAME)
    model = maf.tl_model(NAME, hf, "raw")
    maf.check_against_fixture(NAME, model, "raw", clean)
    L, H = model.cfg.n_layers, model.cfg.n_heads

    def metric(logits):
        return float(logits[0, -1, target] - logits[0, -1, distractor])

    pp = PathPatcher(model, clean, corrupted, metric)
    maf.check_close("metric.clean == patching.json", torch.tensor([pp.clean]), pt["metric.clean"], 1e-6)
    maf.check_close("metric.corrupted == patching.json", torch.tensor([pp.corrupted]), pt["metric.corrupted"], 1e-6)

    out: dict[str, torch.Tensor] = {}
    how: dict[str, str] = {}

    def put(key, values, shape, text):
        out[key] = torch.tensor(values, dtype=torch.float32).reshape(shape).contiguous()
        how[key] = text

    sets = {"last": [(L - 1, h) for h in range(H)], "mixed": MIXED}
    pp.sweep("", sets, put)
    put("metric.clean", [pp.clean], (1,), "metric(model(clean_tokens))")
    put("metric.corrupted", [pp.corrupted], (1,), "metric(model(corrupted_tokens))")

    # Self-checks. Freezing every head to its clean value with no sender is the clean run.
    maf.check_close("frozen, no sender == clean", torch.tensor([pp.to_logits(("none", -1, None))]), torch.tensor([pp.clean]), 1e-5)
    # The last layer's heads have only the (recomputed) final MLP after them: head -> logits path
    # patching equals noising activation patching of hook_z there (patching.safetensors).
    maf.check_close("logits.heads[last layer] == noise.z_all_pos[last layer]", out["logits.heads"][L - 1], pt["noise.z_all_pos"][L - 1], 1e-5)
    # The last layer's MLP has nothing after it but ln_final: the same as patching its mlp_out.
    model.reset_hooks()
    direct = metric(model.run_with_hooks(pp.orig_toks, fwd_hooks=[(get_act_name("mlp_out", L - 1), pp.patch_mlp_out)]))
    maf.check_close("logits.mlp[last layer] == noising mlp_out of the last layer", out["logits.mlp"][L - 1:], torch.tensor([direct]), 1e-5)

    # The induction organism (a trained model: effects far above float noise, unlike the random
    # fixture's, whose near-uniform attention makes q / k paths negligible).
    im, vocab = induction_model()
    ids = lambda s: [vocab["bos"]] + [vocab["tokens"].index(ch) for ch in s]  # noqa: E731
    i_clean, i_corr = ids(IND_CLEAN), ids(IND_CORRUPTED)
    i_t, i_d = vocab["tokens"].index(IND_TARGET), vocab["tokens"].index(IND_DISTRACTOR)

    def i_metric(logits):
        return float(logits[0, -1, i_t] - logits[0, -1, i_d])

    ip = PathPatcher(im, i_clean, i_corr, i_metric)
    assert ip.clean > ip.corrupted + 1.0, (ip.clean, ip.corrupted)
    ip.sweep("induction.", {"ind": IND_RECEIVERS}, put)
    put("induction.metric.clean", [ip.clean], (1,), "induction metric(model(clean_tokens))")
    put("induction.metric.corrupted", [ip.corrupted], (1,), "induction metric(model(corrupted_tokens))")
    # The mechanism of the card: the previous-token head 0.0 feeds the induction heads' keys.
    k = out["induction.ind.k.heads"][0]
    eff = (k - ip.clean).abs()
    assert eff[0] > 2 * eff[1:].max(), eff
    CHECKS_EXTRA = f"|effect| of 0.0 -> (1.0, 1.3).k {float(eff[0]):.3f}, next {float(eff[1:].max()):.3f}"
    maf.CHECKS["induction: 0.0 dominates the K path"] = CHECKS_EXTRA

    info = {
        "source": "python/make_path_patching_fixtures.py (TransformerLens "
                  f"{md.version('transformer_lens')}, torch {torch.__version__})",
        "model": f"fixtures/{NAME}/model.safetensors, TL HookedTransformer 'raw' variant of make_analysis_fixtures.py",
        "dtype": "float32",
        "clean_tokens": clean,
        "corrupted_tokens": corrupted,
        "target": target,
        "distractor": distractor,
        "metric": "logits[0, -1, target] - logits[0, -1, distractor] (as patching.json), raw (not normalised)",
        "metric_clean": pp.clean,
        "metric_corrupted": pp.corrupted,
        "algorithm": "ARENA IOI exercise: step 2 runs the clean prompt with every hook_z frozen to clean except the sender "
                     "(from the corrupted run), MLPs and norms recomputed; receiver logits: that run's logits; receiver "
                     "heads: step 3 runs the clean prompt with only the receivers' hook_q/k/v heads from step 2",
        "normalisation": "not applied here; glassbox normalises (value - corrupted) / (clean - corrupted) (clean = 1, "
                         "corrupted = 0); ARENA's ioi_metric_2 is (value - clean) / (clean - corrupted) = that - 1",
        "receiver_sets": {k: [list(r) for r in v] for k, v in sets.items()},
        "induction": {
            "model": INDUCTION + " (attention-only; TL HookedTransformer built from its safetensors by hand, raw)",
            "clean": IND_CLEAN, "corrupted": IND_CORRUPTED, "clean_tokens": i_clean, "corrupted_tokens": i_corr,
            "target": i_t, "distractor": i_d, "receivers": [list(r) for r in IND_RECEIVERS],
            "metric_clean": ip.clean, "metric_corrupted": ip.corrupted,
        },
        "keys": {k: list(v.shape) for k, v in out.items()},
        "how": how,
        "checks": dict(maf.CHECKS),
    }
    save_file(out, str(out_dir / "path_patching.safetensors"), metadata={"info": json.dumps({"json": "path_patching.json"})})
    maf.write_json(out_dir / "path_patching.json", info)
    print(f"metric clean {pp.clean:.4f} corrupted {pp.corrupted:.4f}; induction clean {ip.clean:.3f} corrupted {ip.corrupted:.3f}; {len(out)} keys")
    for k, v in info["checks"].items():
        print(f"    {k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
