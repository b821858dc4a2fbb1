#!/usr/bin/env bash
# Sets up whatever is missing (scripts/setup.sh) and runs every test:
#   0. formatting (cargo fmt --check) and clippy at its default level, as errors;
#   1. native unit and integration tests (core, CLI), including parity with transformers, and a
#      short fuzzing run of every model loader (20,000 mutated inputs per target, seeded, under a
#      memory cap; scripts/fuzz.sh is the long run);
#   2. GPU kernel and GPU-path tests on Mesa's lavapipe (a real Vulkan driver on the CPU), and
#      every kernel compiled by Chromium's Tint and smoke-tested on SwiftShader;
#   3. the wasm build of the site (trunk build --release);
#   4. end-to-end tests in headless Chromium with WebGPU (SwiftShader), on / and /explorer/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# Each stage is stamped with the minutes since the start, so that a slow stage shows in CI's log.
START=$SECONDS
say() { printf '\033[1m[test %3dm]\033[0m %s\n' $(((SECONDS - START) / 60)) "$*"; }

# wgpu picks lavapipe through Vulkan; there is no GPU on CI machines.
export WGPU_BACKEND=vulkan
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

say "formatting (rustfmt) and lints (clippy, native and wasm32)"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p glassbox-app --target wasm32-unknown-unknown -- -D warnings

say "native tests (CPU, parity, kernels and GPU path on lavapipe)"
cargo test --workspace

# The binary `cargo test --workspace` just built (the test profile; its dependencies are
# optimized). `cargo run -p glassbox-fuzz` would resolve that one package's features instead of
# the workspace's and rebuild tokenizers, candle and the core first (6 minutes on 2 cores).
say "fuzzing the loaders (glassbox-fuzz: 20,000 mutated inputs per target, seed ${FUZZ_SEED:-1})"
FUZZ_BIN="${CARGO_TARGET_DIR:-target}/debug/glassbox-fuzz"
if [ -x "$FUZZ_BIN" ]; then
  "$FUZZ_BIN" --iters 20000 --seed "${FUZZ_SEED:-1}"
else
  cargo run -q -p glassbox-fuzz -- --iters 20000 --seed "${FUZZ_SEED:-1}"
fi

say "WGSL under Chromium's compiler (Tint) on SwiftShader: every kernel entry point"
node kernels/scripts/tint_check.mjs

say "building the site (trunk build --release)"
trunk build --release

say "end-to-end tests (Playwright + Debian chromium with WebGPU)"
(cd e2e && npx playwright test)
say "all tests passed"
