#!/usr/bin/env python3
"""Activation patching with TransformerLens, the baseline of ``glassbox patch`` (issue 10).

    python3 python/bench_patching_transformer_lens.py --model DIR [--n-tokens 16] [--seed 10]

Loads the Hugging Face GPT-2 in ``--model`` (config.json + model.safetensors, as
python/bench_transformer_lens.py saves it) into a TransformerLens ``HookedTransformer`` with no
weight processing (as python/bench_scan_transformer_lens.py), draws a clean prompt of
``--n-tokens`` ids (seeded, ids 1..999: inside the byte-level BPE fixture glassbox reads the
labels from) and a corrupted copy with three positions changed, and times:

    _, clean_cache = model.run_with_cache(clean_tokens)
    patching.get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, metric)

with ``metric = logits[0, -1, target] - logits[0, -1, distractor]`` (target = the clean run's
top token at the last position, distractor = the corrupted run's, or the clean run's second).
One untimed warm-up forward pass first. Prints one JSON line: the tokens, target, distractor,
seconds and the [n_layers, pos] grid, for glassbox to run the same sweep and compare.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="HookedTransformer is deprecated")

import torch  # noqa: E402

from bench_transformer_lens import import_convert_gpt2_weights  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="/tmp/gpt2-small-random")
    ap.add_argument("--n-tokens", type=int, default=16)
    ap.add_argument("--seed", type=int, default=10)
    args = ap.parse_args()

    from transformers import GPT2LMHeadModel
    from transformer_lens import HookedTransformer, HookedTransformerConfig, patching

    torch.set_grad_enabled(False)
    hf = GPT2LMHeadModel.from_pretrained(args.model).eval()
    c = hf.config
    tl_cfg = HookedTransformerConfig(
        n_layers=c.n_layer, d_model=c.n_embd, n_heads=c.n_head, d_head=c.n_embd // c.n_head,
        d_mlp=c.n_inner if c.n_inner is not None else 4 * c.n_embd, n_ctx=c.n_positions,
        d_vocab=c.vocab_size, act_fn=c.activation_function, normalization_type="LN",
        positional_embedding_type="standard", eps=c.layer_norm_epsilon, device="cpu",
        dtype=torch.float32, default_prepend_bos=False, original_architecture="GPT2LMHeadModel")
    model = HookedTransformer(tl_cfg)
    model.load_and_process_state_dict(
        import_convert_gpt2_weights()(hf, tl_cfg), fold_ln=False, center_writing_weights=False,
        center_unembed=False, fold_value_biases=False, refactor_factored_attn_matrices=False)
    model.eval()
    del hf
    patching.tqdm = lambda x, **k: x  # no progress bar

    g = torch.Generator().manual_seed(args.seed)
    n = args.n_tokens
    clean = torch.randint(1, 1000, (1, n), generator=g)
    corrupted = clean.clone()
    for p in (n // 4, n // 2, n - 1):
        corrupted[0, p] = (clean[0, p] + 37) % 999 + 1
    clean_logits = model(clean)
    corr_logits = model(corrupted)
    target = int(clean_logits[0, -1].argmax())
    distractor = int(corr_logits[0, -1].argmax())
    if distractor == target:
        distractor = int(torch.topk(clean_logits[0, -1], 2).indices[1])

    def metric(logits):
        return logits[0, -1, target] - logits[0, -1, distractor]

    model(corrupted)  # warm-up
    t0 = time.perf_counter()
    _, clean_cache = model.run_with_cache(clean)
    grid = patching.get_act_patch_resid_pre(model, corrupted, clean_cache, metric)
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "impl": "transformer_lens",
        "torch_threads": torch.get_num_threads(),
        "clean": clean[0].tolist(),
        "corrupted": corrupted[0].tolist(),
        "target": target,
        "distractor": distractor,
        "runs": int(grid.numel()),
        "seconds": round(seconds, 3),
        "values": [round(float(v), 6) for v in grid.flatten()],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
