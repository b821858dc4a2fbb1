// Browser benchmarks for BENCHMARKS.md (not a test): cold page load to first prediction, the
// wasm size, forward passes with every hook cached on the shipped model, and generation with and
// without the KV cache, on WebGPU (SwiftShader) and on the wasm CPU path, in Debian's headless
// Chromium.
//
//   trunk build --release && node e2e/bench/browser_bench.mjs [runs=20]
import { chromium } from '@playwright/test';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, WEBGPU_ARGS } from '../tests/browser.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const dist = process.env.DIST_DIR ?? join(here, '..', '..', 'dist');
const runs = Number(process.argv[2] ?? 20);
const PORT = 4199;
const PROMPT = 'xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ';

const wasm = readdirSync(dist).find((f) => f.endsWith('.wasm'));
const bytes = readFileSync(join(dist, wasm));
console.log(JSON.stringify({ what: 'wasm size', file: wasm, raw_bytes: bytes.length, gzip_bytes: gzipSync(bytes, { level: 9 }).length }));

const server = spawn(process.execPath, [join(here, '..', 'server.mjs')], { env: { ...process.env, PORT: String(PORT) }, stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 800));
const base = `http://127.0.0.1:${PORT}/`;
try {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: WEBGPU_ARGS, headless: true });
  // Cold loads: a fresh context each time (empty HTTP cache), navigation start to the first
  // top-5 prediction on the page.
  const loads = [];
  for (let i = 0; i < 3; i++) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(base);
    await page.getByTestId('top5').first().waitFor({ timeout: 180_000 });
    loads.push(await page.evaluate(() => performance.now()));
    await ctx.close();
  }
  loads.sort((a, b) => a - b);
  console.log(JSON.stringify({ what: 'cold page load to first prediction', median_ms: Math.round(loads[1]), all_ms: loads.map(Math.round) }));

  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(base);
  await page.getByTestId('top5').first().waitFor({ timeout: 180_000 });
  for (const backend of ['cpu', 'gpu']) {
    const json = await page.evaluate(([p, n, b]) => window.wasmBindings.bench_forward('induction-2l', p, n, b), [PROMPT, runs, backend]);
    console.log(JSON.stringify({ what: `forward pass, every hook cached, in Chromium (${backend})`, ...JSON.parse(json) }));
  }
  // Generation (greedy) with and without the KV cache on the English model: 16 prompt tokens
  // then 64 new ones.
  for (const backend of ['cpu', 'gpu']) {
    for (const cache of [true, false]) {
      const json = await page.evaluate(([b, c]) => window.wasmBindings.bench_generate('english-char-3l', 'Call me Ishmael.', 64, b, c), [backend, cache]);
      console.log(JSON.stringify({ what: `generation, english-char-3l, in Chromium (${backend})`, ...JSON.parse(json) }));
    }
  }
  await browser.close();
} finally {
  server.kill();
}
