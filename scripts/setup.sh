#!/usr/bin/env bash
# Installs everything the build and the tests need, idempotently, with pinned versions.
# Safe to run again: each step checks before it installs.
#   scripts/setup.sh            -> Rust targets, trunk, wasm-bindgen-cli, Chromium, lavapipe, npm deps
#   scripts/setup.sh --python   -> also the Python packages for parity fixtures and benchmarks
set -euo pipefail
cd "$(dirname "$0")/.."

TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen version pinned in Cargo.toml

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"

# 1. Rust target for the browser build.
if ! rustup target list --installed | grep -q wasm32-unknown-unknown; then
  say "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# rustfmt and clippy: CI checks formatting and lints.
for c in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
    say "adding rust component $c"
    rustup component add "$c"
  fi
done

# 2. Debian packages: Chromium (end-to-end tests, WebGPU on SwiftShader) and Mesa's lavapipe
#    (a real Vulkan driver on the CPU, for the WGSL kernel tests).
need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || need_apt+=(mesa-vulkan-drivers)
dpkg -s libvulkan1 >/dev/null 2>&1 || need_apt+=(libvulkan1)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# 3. trunk and wasm-bindgen-cli, pinned (see ../shared/TOOLCHAIN.md for why these versions).
if ! trunk --version 2>/dev/null | grep -q "$TRUNK_VERSION"; then
  say "installing trunk $TRUNK_VERSION (about 6 minutes on 2 cores)"
  cargo install --locked trunk --version "$TRUNK_VERSION"
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # Not --locked: its lock file names a webpki-roots version the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# 4. Playwright (the library only; the browser is Debian's chromium) and axe-core (the
#    accessibility check of the e2e tests).
if [ -f e2e/package.json ] && { [ ! -d e2e/node_modules/playwright-core ] || [ ! -d e2e/node_modules/axe-core ]; }; then
  say "installing e2e npm dependencies"
  (cd e2e && npm ci --no-audit --no-fund 2>/dev/null || npm install --no-audit --no-fund)
fi

# 5. Optional: Python packages for the parity fixtures and the TransformerLens benchmark.
if [ "${1:-}" = "--python" ]; then
  if ! python3 -c "import torch, transformers, safetensors, transformer_lens" 2>/dev/null; then
    say "installing Python packages (torch CPU, transformers, transformer-lens<4)"
    python3 -m pip install -q torch
    python3 -m pip install -q "transformers" "safetensors" "numpy" "transformer-lens<4" "gguf" "sentencepiece"
  fi
fi

# 6. Fetch crates so that trunk and cargo can run offline.
cargo fetch -q 2>/dev/null || true
say "setup done"
