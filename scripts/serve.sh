#!/usr/bin/env bash
# Serves the explorer for development: installs the toolchain if needed (scripts/setup.sh),
# then `trunk serve` (offline, rebuilds on change) at http://127.0.0.1:8080/.
# For the optimized build use `trunk build --release` and any static server over dist/
# (for example `node e2e/server.mjs`, which also serves it under /explorer/).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

ADDRESS=127.0.0.1
PORT=8080
echo "glassbox explorer: http://${ADDRESS}:${PORT}/  (first build takes a few minutes; Ctrl+C stops)"
# The site uses relative URLs (public_url = "./"); trunk serve mounts it at the root.
exec trunk serve --offline --address "$ADDRESS" --port "$PORT" --serve-base / --disable-address-lookup=true "$@"
