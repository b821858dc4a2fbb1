#!/usr/bin/env python3
"""Baseline timing of TransformerLens ``run_with_cache`` on a GPT-2-small-shaped
model with random weights.

    python3 python/bench_transformer_lens.py [--out DIR] [--tokens 16,64,256] [--runs 10]

Builds ``GPT2LMHeadModel(GPT2Config())`` (12 layers, d_model 768, 12 heads,
d_mlp 3072, vocab 50257, n_positions 1024) with ``torch.manual_seed(0)``, saves
it to ``--out`` (config.json + model.safetensors) so the Rust side can load the
very same weights, converts it to a TransformerLens ``HookedTransformer`` with
no weight processing (fold_ln=False etc.), then times
``model.run_with_cache(tokens)`` under ``torch.no_grad()``: 2 warm-up runs,
then the median of ``--runs`` runs. Prints one JSON line per token count.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import warnings  # noqa: E402

# TransformerLens 3.x deprecates HookedTransformer (still the reference here).
warnings.filterwarnings("ignore", message="HookedTransformer is deprecated")

import torch  # noqa: E402


def import_convert_gpt2_weights():
    try:
        from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights
    except ImportError:
        try:
            from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights
        except ImportError:
            from transformer_lens.loading_from_pretrained import convert_gpt2_weights
    return convert_gpt2_weights


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/gpt2-small-random", help="where to save the HF model")
    ap.add_argument("--tokens", default="16,64,256", help="comma-separated sequence lengths")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per length (median reported)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-save", action="store_true", help="skip writing the HF model to --out")
    args = ap.parse_args()
    lengths = [int(t) for t in args.tokens.split(",") if t.strip()]

    from transformers import GPT2Config, GPT2LMHeadModel
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    torch.set_grad_enabled(False)
    torch.manual_seed(0)
    hf_cfg = GPT2Config()  # GPT-2 small shape
    hf_cfg._attn_implementation = "eager"
    hf = GPT2LMHeadModel(hf_cfg).eval()

    if not args.no_save:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        try:
            hf.save_pretrained(out, safe_serialization=True)
        except TypeError:
            hf.save_pretrained(out)
        print(f"# saved random GPT-2 small to {out}", file=sys.stderr)

    d_mlp = hf_cfg.n_inner if hf_cfg.n_inner is not None else 4 * hf_cfg.n_embd
    tl_cfg = HookedTransformerConfig(
        n_layers=hf_cfg.n_layer,
        d_model=hf_cfg.n_embd,
        n_heads=hf_cfg.n_head,
        d_head=hf_cfg.n_embd // hf_cfg.n_head,
        d_mlp=d_mlp,
        n_ctx=hf_cfg.n_positions,
        d_vocab=hf_cfg.vocab_size,
        act_fn=hf_cfg.activation_function,
        normalization_type="LN",
        positional_embedding_type="standard",
        eps=hf_cfg.layer_norm_epsilon,
        device=args.device,
        dtype=torch.float32,
        default_prepend_bos=False,
        original_architecture="GPT2LMHeadModel",
    )
    tl = HookedTransformer(tl_cfg)
    tl.load_and_process_state_dict(
        import_convert_gpt2_weights()(hf, tl_cfg),
        fold_ln=False,
        center_writing_weights=False,
        center_unembed=False,
        fold_value_biases=False,
        refactor_factored_attn_matrices=False,
    )
    tl.eval()

    def timed(impl, forward):
        """Times `forward(tokens)` at every length (random tokens, seed 0) and prints one row each."""
        gen = torch.Generator().manual_seed(0)
        for n in lengths:
            toks = torch.randint(0, hf_cfg.vocab_size, (1, n), generator=gen).to(args.device)
            times = []
            with torch.no_grad():
                for r in range(args.warmup + args.runs):
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    out = forward(toks)
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    dt = (time.perf_counter() - t0) * 1000.0
                    del out
                    if r >= args.warmup:
                        times.append(dt)
            print(json.dumps({
                "impl": impl,
                "n_tokens": n,
                "median_ms": round(statistics.median(times), 3),
                "min_ms": round(min(times), 3),
                "runs": args.runs,
                "torch_threads": torch.get_num_threads(),
                "device": args.device,
                # other processes competing for the CPU make these numbers meaningless
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }), flush=True)

    timed("transformer_lens", tl.run_with_cache)
    # The same weights with no hooks: Hugging Face transformers' own forward pass (logits only),
    # the peer of glassbox with nothing cached (BENCH_NO_CACHE=1).
    timed("transformers", lambda toks: hf(toks).logits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
