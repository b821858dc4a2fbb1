#!/usr/bin/env python3
"""Neuron scan throughput of a TransformerLens loop, the baseline of ``glassbox scan``.

    python3 python/bench_scan_transformer_lens.py --model DIR --corpus FILE --layer L
        [--window 128] [--batch 8] [--k 10] [--neuron N] [--full-forward]

Loads the Hugging Face GPT-2 in ``--model`` (config.json + model.safetensors, as
python/bench_transformer_lens.py saves it; tokenizer.json beside it) into a TransformerLens
``HookedTransformer`` with no weight processing, tokenizes ``--corpus`` with the same
tokenizer.json (the ``tokenizers`` package: the ids glassbox's tokenizer gives), cuts the
ids into the windows glassbox scans (``<bos>`` + ``window - 1`` corpus tokens, whole
windows only; ``<bos>`` is ``<|endoftext|>`` when the tokenizer has it, else id 0), and
times the loop a neuron page runs:

    for each batch of windows:
        _, cache = model.run_with_cache(batch, names_filter=hook, stop_at_layer=L + 1)
        acts = cache[hook][:, 1:, :]                       # BOS positions do not count
        running top-k per neuron: torch.topk over [previous top-k; this batch's acts]

``stop_at_layer=L + 1`` skips the later blocks and the unembedding, as glassbox does by
default; ``--full-forward`` runs the whole model (glassbox's ``--full-forward``). Prints
one JSON line: tokens scanned, seconds, tokens per second, and the top-k of ``--neuron``
(value and corpus token index) for a cross-check against ``glassbox scan --json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="HookedTransformer is deprecated")

import torch  # noqa: E402

from bench_transformer_lens import import_convert_gpt2_weights  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="/tmp/gpt2-small-random")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--layer", type=int, required=True)
    ap.add_argument("--neuron", type=int, default=0, help="neuron whose top-k is printed")
    ap.add_argument("--window", type=int, default=128, help="tokens per window, BOS included")
    ap.add_argument("--batch", type=int, default=8, help="windows per forward pass")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--full-forward", action="store_true", help="no stop_at_layer")
    args = ap.parse_args()

    from tokenizers import Tokenizer
    from transformers import GPT2LMHeadModel
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    torch.set_grad_enabled(False)
    hf = GPT2LMHeadModel.from_pretrained(args.model).eval()
    hf_cfg = hf.config
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
        device="cpu",
        dtype=torch.float32,
        default_prepend_bos=False,
        original_architecture="GPT2LMHeadModel",
    )
    model = HookedTransformer(tl_cfg)
    model.load_and_process_state_dict(
        import_convert_gpt2_weights()(hf, tl_cfg),
        fold_ln=False,
        center_writing_weights=False,
        center_unembed=False,
        fold_value_biases=False,
        refactor_factored_attn_matrices=False,
    )
    model.eval()
    del hf

    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    ids = tok.encode(open(args.corpus, encoding="utf-8").read()).ids
    bos = tok.token_to_id("<|endoftext|>")
    bos = 0 if bos is None else bos
    body = args.window - 1
    n_windows = len(ids) // body
    windows = torch.tensor(ids[: n_windows * body], dtype=torch.long).view(n_windows, body)
    windows = torch.cat([torch.full((n_windows, 1), bos, dtype=torch.long), windows], dim=1)

    hook = f"blocks.{args.layer}.mlp.hook_post"
    stop = None if args.full_forward else args.layer + 1
    top_vals = torch.full((args.k, d_mlp), float("-inf"))
    top_idx = torch.full((args.k, d_mlp), -1, dtype=torch.long)
    scanned = 0
    # One warm-up batch, not timed (glassbox's scan times from its first batch; torch's first
    # call is slower).
    model.run_with_cache(windows[: args.batch], names_filter=hook, stop_at_layer=stop)
    t0 = time.perf_counter()
    for start in range(0, n_windows, args.batch):
        batch = windows[start : start + args.batch]
        _, cache = model.run_with_cache(batch, names_filter=hook, stop_at_layer=stop)
        acts = cache[hook][:, 1:, :].reshape(-1, d_mlp)  # [tokens, d_mlp]
        idx = torch.arange(start * body, start * body + acts.shape[0]).unsqueeze(1).expand(-1, d_mlp)
        vals, pick = torch.topk(torch.cat([top_vals, acts]), args.k, dim=0)
        top_idx = torch.gather(torch.cat([top_idx, idx]), 0, pick)
        top_vals = vals
        scanned += acts.shape[0]
    seconds = time.perf_counter() - t0
    n = args.neuron
    print(json.dumps({
        "impl": "transformer_lens",
        "mode": "full_forward" if args.full_forward else f"stop_at_layer={stop}",
        "layer": args.layer,
        "window": args.window,
        "batch": args.batch,
        "windows": n_windows,
        "tokens_scanned": scanned,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(scanned / seconds, 1),
        "neuron": n,
        "top": [[round(float(v), 5), int(i)] for v, i in zip(top_vals[:, n], top_idx[:, n])],
        "torch_threads": torch.get_num_threads(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
