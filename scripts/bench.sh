#!/usr/bin/env bash
# Native forward pass with every hook cached on a GPT-2-small-shaped random model, against
# TransformerLens's run_with_cache on the very same weights, in the same run.
#   scripts/bench.sh [tokens=16,64,256] [runs=10]
# Needs the Python packages: scripts/setup.sh --python
set -euo pipefail
cd "$(dirname "$0")/.."
TOKENS="${1:-16,64,256}"
RUNS="${2:-10}"
MODEL=/tmp/gpt2-small-random
OUT=$(mktemp)
cargo build --release -q -p glassbox-cli
python3 python/bench_transformer_lens.py --out "$MODEL" --tokens "$TOKENS" --runs "$RUNS" | tee -a "$OUT"
./target/release/glassbox bench --model "$MODEL" --tokens "$TOKENS" --runs "$RUNS" --backend cpu | tee -a "$OUT"
if [ "${GPU:-0}" = 1 ]; then
  ./target/release/glassbox bench --model "$MODEL" --tokens "$TOKENS" --runs "$RUNS" --backend gpu | tee -a "$OUT"
fi
python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
tl = {r["n_tokens"]: r["median_ms"] for r in rows if r["impl"] == "transformer_lens"}
print("\n| tokens | TransformerLens run_with_cache (ms) | glassbox backend | glassbox (ms) | TL / glassbox |")
print("|---|---|---|---|---|")
for r in rows:
    if r["impl"] == "glassbox":
        n = r["n_tokens"]
        print(f"| {n} | {tl[n]:.1f} | {r['backend']} | {r['median_ms']:.1f} | {tl[n] / r['median_ms']:.2f}x |")
PY
