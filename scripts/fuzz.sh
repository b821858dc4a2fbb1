#!/usr/bin/env bash
# The long fuzzing run (for nightly use): glassbox-fuzz over every loader target, by default
# 1,000,000 mutated inputs per target from a fresh seed, on every core, under the harness's
# memory cap. Findings are written to fixtures/robustness/fuzz-<target>-<seed>-<index>/ (commit
# them: fuzz/tests/findings.rs replays every one) and make the exit status 1.
#   scripts/fuzz.sh [inputs-per-target] [seed] [target|all]
set -euo pipefail
cd "$(dirname "$0")/.."
iters="${1:-1000000}"
seed="${2:-$(date +%s)}"
target="${3:-all}"
echo "[fuzz] $iters inputs per target, seed $seed, target $target"
cargo run -q --release -p glassbox-fuzz -- --iters "$iters" --seed "$seed" --target "$target"
