// trunk post_build hook (Trunk.toml): writes a Brotli (.br) and a gzip (.gz) copy beside every
// .wasm, .js and .css file of the build, for static hosts that serve precompressed files
// (nginx `gzip_static`/`brotli_static`, Caddy `precompressed`, Netlify and Cloudflare do it
// themselves). The wasm goes over the wire at about a quarter of its size (BENCHMARKS.md).
// Node's own zlib: no download, no extra tool.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const dir = process.env.TRUNK_STAGING_DIR ?? process.argv[2];
if (!dir) throw new Error('precompress.mjs: run by trunk as a post_build hook, or give the folder');
// `trunk serve` rebuilds in debug on every change: Brotli at quality 11 would add seconds to each.
if (process.env.TRUNK_PROFILE === 'debug') process.exit(0);
for (const name of readdirSync(dir)) {
  const path = join(dir, name);
  if (!/\.(wasm|js|css)$/.test(name) || !statSync(path).isFile()) continue;
  const bytes = readFileSync(path);
  writeFileSync(`${path}.br`, brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length } }));
  writeFileSync(`${path}.gz`, gzipSync(bytes, { level: 9 }));
}
