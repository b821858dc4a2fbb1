#!/usr/bin/env python3
"""Reference numbers for generation with steering (ActAdd, Turner et al. 2023), computed with
TransformerLens 3 on the committed random GPT-2 fixture.

Run from the repository root (it only reads the committed weights):

    python3 python/make_steering_fixtures.py

Reads ``fixtures/gpt2-tiny/{config.json, model.safetensors, tokens.json, activations.safetensors}``
and writes:

* ``fixtures/gpt2-tiny/steering.safetensors``: float32 tensors, no batch axis:
  * ``steering_rows`` [N, D]: ``run_with_cache(plus)[hook] - run_with_cache(minus)[hook]`` at
    ``hook = blocks.{layer}.hook_resid_pre``, both prompts padded at the end with ``pad`` to the
    longer one's length N (ActAdd's right padding).
  * ``steered_logits`` [T, V]: the logits each of T greedily generated tokens was taken from
    (argmax), with a TL hook adding ``coeff * steering_rows`` to ``hook`` at the prompt's first N
    positions, generating with TL's KV cache (``HookedTransformerKeyValueCache``): the hook adds
    on the prefill pass (sequence length >= N) and leaves the one-token steps alone, as ActAdd's
    hook does; the steps see the steered positions through the cache.
  * ``every_logits`` [T, V]: the same with a hook adding ``coeff_every * steering_rows[-1]`` at
    every position, the generated ones included (a steering vector applied throughout).
  * ``plain_logits`` [T, V]: the same without the hook.
* ``fixtures/gpt2-tiny/steering.json``: the inputs (prompt, plus, minus, pad, layer, coeff,
  max_new_tokens), the generated tokens (``steered_tokens``, ``plain_tokens``) and the
  self-checks (the cached generation against rerunning the whole sequence with the hook).

The TransformerLens model is built as make_analysis_fixtures.py's "raw" variant and checked to
reproduce the committed ``activations.safetensors`` first. Deterministic (single-threaded CPU).
"""

from __future__ import annotations

import importlib.metadata as md
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import warnings  # noqa: E402

warnings.filterwarnings("ignore", message="HookedTransformer is deprecated")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_analysis_fixtures as maf  # noqa: E402

torch.set_grad_enabled(False)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

NAME = "gpt2-tiny"
LAYER = 1
COEFF = 50.0
COEFF_EVERY = 10.0
PAD = 1
MAX_NEW = 12


def main() -> int:
    import json

    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache as HookedTransformerKeyValueCache

    print(f"torch {torch.__version__}, transformer_lens {md.version('transformer_lens')}")
    out_dir = maf.FIXTURES / NAME
    tokens = json.loads((out_dir / "tokens.json").read_text())["tokens"]
    hf = maf.hf_model(NAME)
    model = maf.tl_model(NAME, hf, "raw")
    maf.check_against_fixture(NAME, model, "raw", tokens)

    prompt = tokens[:8]
    plus = [tokens[0], 5, 17, 33, 64]
    minus = [tokens[0], 9, 2]
    hook = f"blocks.{LAYER}.hook_resid_pre"
    n = max(len(plus), len(minus))
    padded = torch.tensor([plus + [PAD] * (n - len(plus)), minus + [PAD] * (n - len(minus))])
    _, cache = model.run_with_cache(padded, names_filter=hook)
    rows = cache[hook][0] - cache[hook][1]  # [N, D]
    assert len(prompt) >= n

    def add_rows(resid, hook):
        if resid.shape[1] >= n:  # the prefill (or a whole-sequence rerun); not the 1-token steps
            resid[:, :n] += COEFF * rows
        return resid

    def greedy(hooks, use_cache: bool):
        seq = list(prompt)
        logits_out = []
        with model.hooks(fwd_hooks=hooks):
            if use_cache:
                kv = HookedTransformerKeyValueCache.init_cache(model.cfg, model.cfg.device, 1)
                # No tokenizer: pass the (all-ones) attention mask TL would otherwise derive.
                t = torch.tensor([seq])
                logits = model(t, past_kv_cache=kv, attention_mask=torch.ones_like(t))
                for _ in range(MAX_NEW):
                    last = logits[0, -1]
                    tok = int(last.argmax())
                    logits_out.append(last.clone())
                    seq.append(tok)
                    t = torch.tensor([[tok]])
                    logits = model(t, past_kv_cache=kv, attention_mask=torch.ones_like(t))
            else:
                for _ in range(MAX_NEW):
                    last = model(torch.tensor([seq]))[0, -1]
                    tok = int(last.argmax())
                    logits_out.append(last.clone())
                    seq.append(tok)
        return seq[len(prompt):], torch.stack(logits_out)

    def add_every(resid, hook):
        # The last steering row at every position, the generated ones included.
        return resid + COEFF_EVERY * rows[-1]

    steered_tokens, steered_logits = greedy([(hook, add_rows)], True)
    every_tokens, every_logits = greedy([(hook, add_every)], True)
    plain_tokens, plain_logits = greedy([], True)
    for name, fn, toks, lg in [("steered", add_rows, steered_tokens, steered_logits), ("every", add_every, every_tokens, every_logits)]:
        re_tokens, re_logits = greedy([(hook, fn)], False)
        assert re_tokens == toks, (name, re_tokens, toks)
        maf.check_close(f"{name}: TL KV-cache generation vs rerunning the whole sequence", lg, re_logits, 1e-4)
    moved = float((steered_logits - plain_logits).abs().max())
    assert moved > 2e-3, f"the prefix steering should move the logits well past the 1e-4 tolerance ({moved})"
    maf.CHECKS["steered vs plain logits (max abs diff; the random model's argmax barely moves)"] = f"{moved:.3g}"
    assert every_tokens != plain_tokens, "steering at every position should change the greedy continuation"
    print("steered:", steered_tokens)
    print("every:  ", every_tokens)
    print("plain:  ", plain_tokens)

    tensors = {
        "steering_rows": maf.to_f32_contig(rows),
        "steered_logits": maf.to_f32_contig(steered_logits),
        "every_logits": maf.to_f32_contig(every_logits),
        "plain_logits": maf.to_f32_contig(plain_logits),
    }
    save_file(tensors, str(out_dir / "steering.safetensors"), metadata={"info": "python/make_steering_fixtures.py"})
    maf.write_json(out_dir / "steering.json", {
        "source": f"python/make_steering_fixtures.py (TransformerLens {md.version('transformer_lens')}, torch {torch.__version__})",
        "model": f"fixtures/{NAME}/model.safetensors, TL HookedTransformer 'raw' variant of make_analysis_fixtures.py",
        "prompt": prompt,
        "plus": plus,
        "minus": minus,
        "pad": PAD,
        "layer": LAYER,
        "hook": hook,
        "coeff": COEFF,
        "max_new_tokens": MAX_NEW,
        "coeff_every": COEFF_EVERY,
        "steered_tokens": steered_tokens,
        "every_tokens": every_tokens,
        "plain_tokens": plain_tokens,
        "semantics": {
            "steering_rows": "run_with_cache(plus padded)[hook] - run_with_cache(minus padded)[hook], [N, d_model]",
            "steered_logits": "greedy generation with TL's KV cache; a hook adds coeff * steering_rows at positions 0..N of the prompt on the prefill pass; row t = logits of the last position before token t",
            "every_logits": "the same generation with a hook adding coeff_every * steering_rows[-1] at every position (prefill and steps)",
            "plain_logits": "the same generation without the hook",
        },
        "checks": maf.CHECKS,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
