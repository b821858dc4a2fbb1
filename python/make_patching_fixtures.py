#!/usr/bin/env python3
"""Reference numbers for activation patching and ablations (issue 10), computed with
TransformerLens 3's own ``transformer_lens.patching`` on the committed random GPT-2 fixture.

Run from the repository root (it only reads the committed weights):

    python3 python/make_patching_fixtures.py

Reads ``fixtures/gpt2-tiny/{config.json, model.safetensors, tokens.json, activations.safetensors}``
and writes:

* ``fixtures/gpt2-tiny/patching.safetensors``: float32 tensors, no batch axis (keys below).
* ``fixtures/gpt2-tiny/patching.json``: the inputs (clean and corrupted tokens, which positions
  differ, target / distractor ids, the mean-ablation dataset), the metric's definition, every
  key's shape and the TransformerLens call that produced it, and the self-checks.

The TransformerLens model is built from ``model.safetensors`` exactly as
make_analysis_fixtures.py builds its "raw" variant (same HookedTransformerConfig, TL's
``convert_gpt2_weights``, no folding), float32, eval mode, and is checked to reproduce the
committed ``activations.safetensors`` first. Deterministic (seeded, single-threaded CPU).

Keys (L = 3 layers, H = 4 heads, P = 12 positions):

* ``denoise.resid_pre`` / ``resid_mid`` / ``attn_out`` / ``mlp_out`` [L, P]:
  ``get_act_patch_<name>(model, corrupted_tokens, clean_cache, metric)``.
* ``denoise.z_by_pos`` [L, P, H]: ``get_act_patch_attn_head_out_by_pos``.
* ``denoise.z_all_pos`` [L, H]: ``get_act_patch_attn_head_out_all_pos``.
* ``denoise.all_pos_every`` [5, L, H]: ``get_act_patch_attn_head_all_pos_every`` (z, q, k, v,
  pattern, in that order).
* ``denoise.by_pos_every`` [5, L, P, H]: ``get_act_patch_attn_head_by_pos_every`` (z, q, k, v by
  position; the pattern by destination position, rearranged ``head pos -> pos head``).
* ``denoise.pattern_by_dest`` [L, H, P]: ``get_act_patch_attn_head_pattern_by_pos``.
* ``noise.resid_pre`` [L, P], ``noise.z_all_pos`` [L, H]: noising, TL's convention with the roles
  swapped: ``get_act_patch_<name>(model, clean_tokens, corrupted_cache, metric)``.
* ``metric.clean``, ``metric.corrupted`` [1]: the metric on the clean and corrupted runs.
* ``ablate.zero_head`` [1], ``ablate.mean_head`` [1]: the metric with head ``ablate_head``'s
  ``hook_z`` zeroed / replaced by its mean over the dataset (per position), via a TL hook, on
  the clean prompt. ``ablate.resample_head`` [N]: the metric with that head's ``hook_z``
  replaced by its value on each dataset sequence. ``ablate.zero_mlp`` [1]: ``hook_mlp_out`` of
  layer ``ablate_mlp`` zeroed. ``ablate.zero_neurons`` [1]: ``mlp.hook_post`` entries
  ``ablate_neurons`` zeroed. ``ablate.dataset`` [N, P]: the dataset's tokens (as floats).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="HookedTransformer is deprecated")

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_analysis_fixtures as maf  # noqa: E402

torch.set_grad_enabled(False)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

NAME = "gpt2-tiny"
CHANGED = [3, 7, 11]  # positions whose token the corrupted prompt changes (the last one too: the
# random model's last-position logits barely depend on earlier tokens)
SEED = 10  # issue 10
N_DATASET = 6
ABLATE_HEAD = (1, 2)
ABLATE_MLP = 1
ABLATE_NEURONS = (2, [3, 17, 100])


def main() -> int:
    import tqdm.auto  # noqa: F401  (TL's sweeps print progress bars; keep them off)
    from transformer_lens import patching
    from functools import partial

    print(f"torch {torch.__version__}, transformer_lens {md.version('transformer_lens')}")
    out_dir = maf.FIXTURES / NAME
    clean = json.loads((out_dir / "tokens.json").read_text())["tokens"]
    hf = maf.hf_model(NAME)
    model = maf.tl_model(NAME, hf, "raw")
    maf.check_against_fixture(NAME, model, "raw", clean)
    c = model.cfg
    V, P = c.d_vocab, len(clean)
    corrupted = list(clean)
    for p in CHANGED:
        corrupted[p] = (clean[p] + 37) % V
    clean_t, corr_t = torch.tensor([clean]), torch.tensor([corrupted])
    clean_logits, clean_cache = model.run_with_cache(clean_t)
    corr_logits, corr_cache = model.run_with_cache(corr_t)
    target = int(clean_logits[0, -1].argmax())
    # The random model's argmax is the same token for every prompt: the distractor is the token
    # whose logit, relative to the target's, the corruption moves most.
    delta = clean_logits[0, -1] - corr_logits[0, -1]
    distractor = int((delta - delta[target]).abs().argmax())

    def metric(logits):
        return logits[0, -1, target] - logits[0, -1, distractor]

    m_clean, m_corr = float(metric(clean_logits)), float(metric(corr_logits))
    assert abs(m_clean - m_corr) > 0.05, (m_clean, m_corr)

    # TL prints a tqdm bar per sweep: silence it.
    patching.tqdm = lambda x, **k: x

    out: dict[str, torch.Tensor] = {}
    calls: dict[str, str] = {}

    def put(key, value, call):
        out[key] = value.detach().to(torch.float32).contiguous().clone()
        calls[key] = call

    dn = (model, corr_t, clean_cache, metric)
    for name in ["resid_pre", "resid_mid", "attn_out", "mlp_out"]:
        fn = getattr(patching, f"get_act_patch_{name}")
        put(f"denoise.{name}", fn(*dn), f"patching.get_act_patch_{name}(model, corrupted_tokens, clean_cache, metric)")
    put("denoise.z_by_pos", patching.get_act_patch_attn_head_out_by_pos(*dn),
        "patching.get_act_patch_attn_head_out_by_pos(model, corrupted_tokens, clean_cache, metric)")
    put("denoise.z_all_pos", patching.get_act_patch_attn_head_out_all_pos(*dn),
        "patching.get_act_patch_attn_head_out_all_pos(model, corrupted_tokens, clean_cache, metric)")
    put("denoise.all_pos_every", patching.get_act_patch_attn_head_all_pos_every(*dn),
        "patching.get_act_patch_attn_head_all_pos_every(model, corrupted_tokens, clean_cache, metric): [z, q, k, v, pattern]")
    put("denoise.by_pos_every", patching.get_act_patch_attn_head_by_pos_every(*dn),
        "patching.get_act_patch_attn_head_by_pos_every(model, corrupted_tokens, clean_cache, metric): [z, q, k, v, pattern (head pos -> pos head)]")
    put("denoise.pattern_by_dest", patching.get_act_patch_attn_head_pattern_by_pos(*dn),
        "patching.get_act_patch_attn_head_pattern_by_pos(model, corrupted_tokens, clean_cache, metric): [layer, head, dest_pos]")
    ns = (model, clean_t, corr_cache, metric)
    put("noise.resid_pre", patching.get_act_patch_resid_pre(*ns),
        "patching.get_act_patch_resid_pre(model, clean_tokens, corrupted_cache, metric)")
    put("noise.z_all_pos", patching.get_act_patch_attn_head_out_all_pos(*ns),
        "patching.get_act_patch_attn_head_out_all_pos(model, clean_tokens, corrupted_cache, metric)")
    put("metric.clean", torch.tensor([m_clean]), "metric(model(clean_tokens))")
    put("metric.corrupted", torch.tensor([m_corr]), "metric(model(corrupted_tokens))")

    # Checks: the all-pos-every rows are the single sweeps; the corner cells are the two runs.
    maf.check_close("all_pos_every[0] == z_all_pos", out["denoise.all_pos_every"][0], out["denoise.z_all_pos"], 0)
    maf.check_close("by_pos_every[0] == z_by_pos", out["denoise.by_pos_every"][0], out["denoise.z_by_pos"], 0)
    maf.check_close("by_pos_every[4] == pattern_by_dest (head pos -> pos head)", out["denoise.by_pos_every"][4],
                    out["denoise.pattern_by_dest"].permute(0, 2, 1), 0)
    same = [p for p in range(P) if p not in CHANGED]
    maf.check_close("denoise resid_pre at layer 0, unchanged positions == corrupted",
                    out["denoise.resid_pre"][0, same], torch.full((len(same),), m_corr), 1e-5)

    # Ablations on the clean prompt, with hooks.
    g = torch.Generator().manual_seed(SEED)
    dataset = torch.randint(0, V, (N_DATASET, P), generator=g)
    lh, hh = ABLATE_HEAD
    zname = f"blocks.{lh}.attn.hook_z"

    def run_hook(name, fn, tokens=clean_t):
        return float(metric(model.run_with_hooks(tokens, fwd_hooks=[(name, fn)])))

    def zero_head(z, hook):
        z[:, :, hh] = 0.0
        return z

    _, ds_cache = model.run_with_cache(dataset, names_filter=zname)
    mean_z = ds_cache[zname].mean(0)  # [P, H, d_head]

    def mean_head(z, hook):
        z[:, :, hh] = mean_z[:, hh]
        return z

    resample = []
    for i in range(N_DATASET):
        def res(z, hook, i=i):
            z[:, :, hh] = ds_cache[zname][i, :, hh]
            return z
        resample.append(run_hook(zname, res))

    def zero_all(x, hook):
        return torch.zeros_like(x)

    nl, ns_ = ABLATE_NEURONS

    def zero_neurons(x, hook):
        x[:, :, ns_] = 0.0
        return x

    put("ablate.zero_head", torch.tensor([run_hook(zname, zero_head)]), f"run_with_hooks(clean, {zname}: z[:, :, {hh}] = 0)")
    put("ablate.mean_head", torch.tensor([run_hook(zname, mean_head)]),
        f"run_with_hooks(clean, {zname}: z[:, :, {hh}] = mean over the dataset of z[:, :, {hh}] (per position))")
    put("ablate.resample_head", torch.tensor(resample), f"run_with_hooks(clean, {zname}: z[:, :, {hh}] = z of dataset[i]), i = 0..{N_DATASET - 1}")
    put("ablate.zero_mlp", torch.tensor([run_hook(f"blocks.{ABLATE_MLP}.hook_mlp_out", zero_all)]),
        f"run_with_hooks(clean, blocks.{ABLATE_MLP}.hook_mlp_out = 0)")
    put("ablate.zero_neurons", torch.tensor([run_hook(f"blocks.{nl}.mlp.hook_post", zero_neurons)]),
        f"run_with_hooks(clean, blocks.{nl}.mlp.hook_post[:, :, {ns_}] = 0)")
    put("ablate.dataset", dataset.to(torch.float32), f"torch.randint(0, {V}, ({N_DATASET}, {P}), generator=manual_seed({SEED}))")

    info = {
        "source": "python/make_patching_fixtures.py (TransformerLens "
                  f"{md.version('transformer_lens')}, torch {torch.__version__})",
        "model": f"fixtures/{NAME}/model.safetensors, TL HookedTransformer 'raw' variant of make_analysis_fixtures.py",
        "batch_axis": "dropped",
        "dtype": "float32",
        "clean_tokens": clean,
        "corrupted_tokens": corrupted,
        "changed_positions": CHANGED,
        "corrupted_rule": f"corrupted[p] = (clean[p] + 37) % {V} at the changed positions",
        "target": target,
        "distractor": distractor,
        "target_distractor_rule": "target = argmax of the clean logits at the last position; distractor = argmax over tokens of |(clean - corrupted logits)[tok] - (clean - corrupted logits)[target]| there",
        "metric": "logits[0, -1, target] - logits[0, -1, distractor] (logit difference at the last position), raw (not normalised)",
        "metric_clean": m_clean,
        "metric_corrupted": m_corr,
        "denoising": "TL: get_act_patch_*(model, corrupted_tokens, clean_cache, metric): the corrupted run with one clean activation patched in",
        "noising": "TL with roles swapped: get_act_patch_*(model, clean_tokens, corrupted_cache, metric)",
        "ablate_head": list(ABLATE_HEAD),
        "ablate_mlp": ABLATE_MLP,
        "ablate_neurons": {"layer": nl, "neurons": ns_},
        "dataset": dataset.tolist(),
        "ablations_on": "the clean prompt, metric as above",
        "keys": {k: list(v.shape) for k, v in out.items()},
        "calls": calls,
        "checks": dict(maf.CHECKS),
    }
    save_file(out, str(out_dir / "patching.safetensors"), metadata={"info": json.dumps({"json": "patching.json"})})
    maf.write_json(out_dir / "patching.json", info)
    print(f"target {target} distractor {distractor}; metric clean {m_clean:.4f} corrupted {m_corr:.4f}; {len(out)} keys")
    for k, v in info["checks"].items():
        print(f"    {k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
