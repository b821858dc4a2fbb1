#!/usr/bin/env bash
# Native forward pass with every hook cached on a GPT-2-small-shaped random model, against
# TransformerLens's run_with_cache on the very same weights, in the same run.
#   scripts/bench.sh [tokens=16,64,256] [runs=10]
# Neuron scan throughput (issue 9): `glassbox scan` against a TransformerLens loop computing
# the same top-k per neuron (python/bench_scan_transformer_lens.py), same text, same windows:
#   scripts/bench.sh scan [layer=5] [chars=8000] [window=128] [batch=8]
# Activation patching (issue 10): `glassbox patch --what resid_pre` (layer x position, batched,
# shared prefix) against TransformerLens's get_act_patch_resid_pre, same weights and tokens:
#   scripts/bench.sh patch [tokens=16]
# The native GPU path (issue 13), in under 5 minutes on lavapipe: the same GPT-2-small-shaped
# model, every hook cached, with the dispatches per forward pass, and the CPU path beside it:
#   scripts/bench.sh gpu [tokens=16,32] [runs=3]
# (on a machine with a real GPU, WGPU_BACKEND picks its Vulkan/Metal/DX12 adapter).
# The browser's CPU path against native (issue 13): forward passes with every hook cached in
# headless Chromium (the built site in DIST_DIR, default dist/) and natively on one and on all
# threads, on the shipped English model and the e2e hub mimic's GPT-2-small-shaped model:
#   scripts/bench.sh wasm [browser runs=20] [native runs=20]
# Needs the Python packages: scripts/setup.sh --python
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=/tmp/gpt2-small-random
# The CLI, and the random GPT-2-small-shaped model (saved once by the TransformerLens script).
build_and_model() {
  cargo build --release -q -p glassbox-cli
  if [ ! -f "$MODEL/model.safetensors" ]; then
    python3 python/bench_transformer_lens.py --out "$MODEL" --tokens 16 --runs 1 --warmup 0 >/dev/null
  fi
}
if [ "${1:-}" = gpu ]; then
  TOKENS="${2:-16,32}"; RUNS="${3:-3}"
  export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
  build_and_model
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  WGPU_BACKEND="${WGPU_BACKEND:-vulkan}" ./target/release/glassbox bench --model "$MODEL" --tokens "$TOKENS" --runs "$RUNS" --backend gpu
  ./target/release/glassbox bench --model "$MODEL" --tokens "$TOKENS" --runs "$RUNS" --backend cpu
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  exit 0
fi
if [ "${1:-}" = wasm ]; then
  BROWSER_RUNS="${2:-20}"; NATIVE_RUNS="${3:-20}"
  DIST="${DIST_DIR:-dist}"
  OUT=$(mktemp); GPT2=$(mktemp -d)
  cargo build --release -q -p glassbox-cli
  [ -f "$DIST/index.html" ] || trunk build --release --dist "$DIST"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  DIST_DIR="$DIST" node e2e/bench/browser_bench.mjs "$BROWSER_RUNS" --forward-only | tee -a "$OUT"
  # The same GPT-2-small-shaped files the browser fetched, from the same server.
  PORT=4290 DIST_DIR="$DIST" node e2e/server.mjs >/dev/null 2>&1 & SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true' EXIT
  for f in config.json tokenizer.json model.safetensors; do
    curl -s --retry 10 --retry-connrefused --retry-delay 1 -o "$GPT2/$f" "http://127.0.0.1:4290/hub/glassbox-test/gpt2-small-random/resolve/main/$f"
  done
  kill $SERVER
  python3 - "$OUT" <<'PY' | while read -r model tokens runs; do
import json, sys
for r in (json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")):
    if r["what"].startswith("forward pass"):
        print(r["what"].split(", ")[-1], r["n_tokens"], r["runs"])
PY
    dir="public/models/$model"; [ "$model" = gpt2-small-random ] && dir="$GPT2"
    n="$NATIVE_RUNS"; [ "$model" = gpt2-small-random ] && n=3
    for threads in 1 "$(nproc)"; do
      RAYON_NUM_THREADS=$threads ./target/release/glassbox bench --model "$dir" --tokens "$tokens" --runs "$n" --backend cpu 2>/dev/null \
        | sed "s/^{/{\"model\":\"$model\",\"threads\":$threads,/" | tee -a "$OUT"
    done
  done
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  python3 - "$OUT" "$(nproc)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
native = {(r["model"], r["n_tokens"], r["threads"]): r["median_ms"] for r in rows if r.get("impl") == "glassbox"}
t = int(sys.argv[2])
print(f"\n| model | tokens | wasm in Chromium (ms) | native, 1 thread (ms) | native, {t} threads (ms) | wasm / native (1 thread) | wasm / native ({t} threads) |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    if r.get("what", "").startswith("forward pass"):
        m, n = r["what"].split(", ")[-1], r["n_tokens"]
        one, all_ = native[(m, n, 1)], native[(m, n, t)]
        print(f"| {m} | {n} | {r['median_ms']:.1f} | {one:.1f} | {all_:.1f} | {r['median_ms'] / one:.2f}x | {r['median_ms'] / all_:.2f}x |")
PY
  exit 0
fi
if [ "${1:-}" = patch ]; then
  N="${2:-16}"
  OUT=$(mktemp)
  build_and_model
  # The random GPT-2 has no tokenizer: glassbox labels the grid with the BPE fixture's (1000 ids;
  # the prompts' ids are drawn below 1000).
  cp fixtures/tokenizers/gpt2-bpe/tokenizer.json "$MODEL/"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  python3 python/bench_patching_transformer_lens.py --model "$MODEL" --n-tokens "$N" >"$OUT.tl"
  ids() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); v=d[sys.argv[2]]; print(','.join(map(str, v)) if isinstance(v, list) else v)" "$OUT.tl" "$1"; }
  ./target/release/glassbox patch --model "$MODEL" --ids --clean "$(ids clean)" --corrupted "$(ids corrupted)" \
    --target "#$(ids target)" --distractor "#$(ids distractor)" --what resid_pre --json >"$OUT.gb"
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  python3 - "$OUT.tl" "$OUT.gb" <<'PY'
import json, sys
tl, gb = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
r = gb["result"]
assert gb["clean_tokens"] == tl["clean"] and gb["corrupted_tokens"] == tl["corrupted"]
d = max(abs(a - b) for a, b in zip(r["values"], tl["values"]))
shape = "x".join(str(a["size"]) for a in r["axes"])
print(f"{shape} = {r['runs']} patched runs ({len(tl['clean'])} tokens); glassbox: {r['batches']} run_batch calls; max |glassbox - TL| = {d:.2e}")
print("| TransformerLens get_act_patch_resid_pre (s) | glassbox CPU patch (s) | TL / glassbox |")
print("|---|---|---|")
print(f"| {tl['seconds']:.2f} | {gb['seconds']:.2f} | {tl['seconds'] / gb['seconds']:.2f}x |")
PY
  exit 0
fi
if [ "${1:-}" = scan ]; then
  LAYER="${2:-5}"; CHARS="${3:-8000}"; WINDOW="${4:-128}"; BATCH="${5:-8}"
  CORPUS=/tmp/glassbox-scan-corpus.txt
  OUT=$(mktemp)
  build_and_model
  # The random GPT-2 has no tokenizer: both sides read the byte-level BPE fixture (1000 ids,
  # all inside GPT-2's 50257).
  cp fixtures/tokenizers/gpt2-bpe/tokenizer.json "$MODEL/"
  python3 -c "import sys; open(sys.argv[2], 'w').write(open(sys.argv[1]).read()[:int(sys.argv[3])])" public/corpus/moby-dick-heldout.txt "$CORPUS" "$CHARS"
  ARGS=(--layer "$LAYER" --window "$WINDOW" --batch "$BATCH" --neuron 0)
  python3 python/bench_scan_transformer_lens.py --model "$MODEL" --corpus "$CORPUS" "${ARGS[@]}" | tee -a "$OUT"
  python3 python/bench_scan_transformer_lens.py --model "$MODEL" --corpus "$CORPUS" "${ARGS[@]}" --full-forward | tee -a "$OUT"
  for MODE in "" --full-forward; do
    ./target/release/glassbox scan --model "$MODEL" --corpus "$CORPUS" "${ARGS[@]}" $MODE --json >"$OUT.gb"
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({'impl': 'glassbox', 'mode': 'full_forward' if d['full_forward'] else 'blocks up to the layer', 'tokens_scanned': d['tokens_scanned'], 'seconds': round(d['seconds'], 3), 'tokens_per_s': round(d['tokens_per_s'], 1), 'top': [[round(e['act'], 5), e['corpus_token']] for e in d['examples']]}))" "$OUT.gb" | tee -a "$OUT"
  done
  python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
tl = [r for r in rows if r["impl"] == "transformer_lens"]
gb = [r for r in rows if r["impl"] == "glassbox"]
assert all(r["tokens_scanned"] == tl[0]["tokens_scanned"] for r in rows), "the two sides scanned different token counts"
for r in gb:
    d = max(abs(a[0] - b[0]) for a, b in zip(r["top"], tl[0]["top"]))
    same = [a[1] for a in r["top"]] == [b[1] for b in tl[0]["top"]]
    print(f"# glassbox ({r['mode']}) top-{len(r['top'])} of neuron 0: same tokens as TransformerLens: {same}, max |diff| {d:.2e}")
print(f"\n{tl[0]['tokens_scanned']} tokens, layer {tl[0]['layer']}, windows of {tl[0]['window']}, batch {tl[0]['batch']}")
print("| mode | TransformerLens (tokens/s) | glassbox CPU (tokens/s) | glassbox / TL |")
print("|---|---|---|---|")
for t, g in zip(tl, gb):
    print(f"| {g['mode']} / {t['mode']} | {t['tokens_per_s']:.1f} | {g['tokens_per_s']:.1f} | {g['tokens_per_s'] / t['tokens_per_s']:.2f}x |")
PY
  exit 0
fi
TOKENS="${1:-16,64,256}"
RUNS="${2:-10}"
OUT=$(mktemp)
cargo build --release -q -p glassbox-cli
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); AVX-512: $(grep -q avx512f /proc/cpuinfo && echo yes || echo no)"
python3 python/bench_transformer_lens.py --out "$MODEL" --tokens "$TOKENS" --runs "$RUNS" | tee -a "$OUT"
./target/release/glassbox bench --model "$MODEL" --tokens "$TOKENS" --runs "$RUNS" --backend cpu | tee -a "$OUT"
BENCH_NO_CACHE=1 ./target/release/glassbox bench --model "$MODEL" --tokens "$TOKENS" --runs "$RUNS" --backend cpu | tee -a "$OUT"
if [ "${GPU:-0}" = 1 ]; then
  ./target/release/glassbox bench --model "$MODEL" --tokens "$TOKENS" --runs "$RUNS" --backend gpu | tee -a "$OUT"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
tl = {r["n_tokens"]: r["median_ms"] for r in rows if r["impl"] == "transformer_lens"}
hf = {r["n_tokens"]: r["median_ms"] for r in rows if r["impl"] == "transformers"}
# 2 x parameters x tokens: the matmuls of the blocks and the unembedding (attention's own
# scores and mixing are under 3% at 256 tokens).
n_params = 12 * (4 * 768 * 768 + 2 * 768 * 3072) + 768 * 50257
print("\n| tokens | peer | peer (ms) | glassbox backend | glassbox (ms) | peer / glassbox | glassbox GFLOP/s |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    if r["impl"] == "glassbox":
        n = r["n_tokens"]
        peer, ms = ("TransformerLens run_with_cache", tl[n]) if r.get("cache", True) else ("transformers forward", hf[n])
        what = "every hook cached" if r.get("cache", True) else "no hook cached"
        gflops = 2 * n_params * n / (r["median_ms"] / 1000) / 1e9
        print(f"| {n} | {peer} | {ms:.1f} | {r['backend']}, {what} | {r['median_ms']:.1f} | {ms / r['median_ms']:.2f}x | {gflops:.0f} |")
PY
