#!/bin/sh
# trunk post_build hook (Trunk.toml): writes article.html into the build from public/article.html,
# with the explorer's module, wasm and stylesheets (trunk's hashed file names, as it linked them
# in index.html) in place of the template's `<!-- glassbox:head -->` line. The article's live
# figures then run the same module as the explorer (app/src/article/).
set -eu
src="${TRUNK_SOURCE_DIR:-.}/public/article.html"
staging="${TRUNK_STAGING_DIR:?run by trunk as a post_build hook}"
index="$staging/index.html"
head_file="$staging/.article-head"
{
  grep -oE '<link[^>]*>' "$index" | grep -E 'rel="?(stylesheet|modulepreload|preload|icon)' || true
  grep -oE '<script[^>]*boot\.js[^>]*></script>' "$index"
} > "$head_file"
if ! grep -q 'boot\.js' "$head_file"; then
  echo "article_page.sh: index.html links no boot.js; the article would not start" >&2
  exit 1
fi
awk -v head="$head_file" '
  /<!-- glassbox:head -->/ { while ((getline line < head) > 0) print "    " line; next }
  { print }
' "$src" > "$staging/article.html"
rm -f "$head_file"
