// Browser benchmarks for BENCHMARKS.md (not a test): cold page load to first prediction, the
// wasm size, forward passes with every hook cached on the shipped model, and generation with and
// without the KV cache, on WebGPU (SwiftShader) and on the wasm CPU path, in Debian's headless
// Chromium.
//
//   trunk build --release && node e2e/bench/browser_bench.mjs [runs=20]
//
// `--forward-only` skips the cold loads and generation and times only forward passes on the
// wasm CPU path, for the wasm-against-native comparison (issue 13): the shipped models at a
// prompt of N characters, repeated from the text below, for each N in GLASSBOX_LENGTHS
// (default 16,64,128; the English model's context is 128). The native side is
// `glassbox bench --model public/models/<model> --tokens N --backend cpu`.
import { chromium } from '@playwright/test';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, WEBGPU_ARGS } from '../tests/browser.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const dist = process.env.DIST_DIR ?? join(here, '..', '..', 'dist');
const forwardOnly = process.argv.includes('--forward-only');
// `--cold-only` stops after the cold loads; COLD_QUERY is appended to their address (for example
// `?backend=webgpu` to time WebGPU's start on SwiftShader, where the default is the CPU).
const coldOnly = process.argv.includes('--cold-only');
const runs = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 20);
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
  if (forwardOnly) {
    const page = await browser.newPage();
    await page.goto(base);
    await page.getByTestId('top5').first().waitFor({ timeout: 180_000 });
    const text = 'the whale swam past the ship and the sailors watched it go by in silence. ';
    const lengths = (process.env.GLASSBOX_LENGTHS ?? '16,64,128').split(',').map(Number);
    for (const model of ['induction-2l', 'english-char-3l']) {
      // Both encode a character per token after a BOS; induction-2l's context is 64.
      const ctx = model === 'induction-2l' ? 64 : 128;
      for (const n of [...new Set(lengths.map((n) => Math.min(n, ctx)))]) {
        const len = n - 1;
        const prompt = (model === 'induction-2l' ? `${PROMPT} `.repeat(3) : text.repeat(4)).slice(0, len);
        const json = await page.evaluate(([m, p, r]) => window.wasmBindings.bench_forward(m, p, r, 'cpu'), [model, prompt, runs]);
        console.log(JSON.stringify({ what: `forward pass, every hook cached, in Chromium (cpu), ${model}`, ...JSON.parse(json) }));
      }
    }
    // The GPT-2-small-shaped model of the server's hub mimic (random weights, a 1000-token BPE
    // vocabulary). The native side: `curl` its three files into a folder and run
    // `glassbox bench --model <folder> --tokens N --backend cpu` (GLASSBOX_GPT2_LENGTHS, about
    // so many tokens, default 16,64,128; 3 runs each, as a pass takes seconds here).
    const hub = `${base}hub/glassbox-test/gpt2-small-random/resolve/main`;
    for (const n of (process.env.GLASSBOX_GPT2_LENGTHS ?? '16,64,128').split(',').map(Number)) {
      // Byte-level BPE makes about a token per 3 characters of this text; the result says how
      // many tokens ran (the native side takes that count).
      const prompt = text.repeat(8).slice(0, 3 * n);
      const json = await page.evaluate(([h, p]) => window.wasmBindings.bench_forward_url(h, 'config.json,model.safetensors,tokenizer.json', p, 3, 'cpu'), [hub, prompt]);
      console.log(JSON.stringify({ what: 'forward pass, every hook cached, in Chromium (cpu), gpt2-small-random', ...JSON.parse(json) }));
    }
    await browser.close();
    process.exit(0);
  }
  // Cold loads: a fresh context each time (empty HTTP cache), navigation start to the first
  // top-5 prediction on the page.
  const loads = [];
  for (let i = 0; i < 3; i++) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(base + (process.env.COLD_QUERY ?? ''));
    await page.getByTestId('top5').first().waitFor({ timeout: 180_000 });
    // The breakdown: the page's own marks (page/run.rs) and the wasm's resource timing.
    loads.push(await page.evaluate(() => {
      const at = (name) => Math.round(performance.getEntriesByName(name)[0]?.startTime ?? NaN);
      const wasm = performance.getEntriesByType('resource').find((r) => r.name.endsWith('.wasm'));
      return {
        total: Math.round(performance.now()),
        wasm_downloaded: Math.round(wasm?.responseEnd ?? NaN),
        wasm_running: at('glassbox:start'),
        model_fetched: at('glassbox:model-fetched'),
        worker_ready: at('glassbox:worker-ready'),
        engine_ready: at('glassbox:engine-ready'),
        first_run: at('glassbox:first-run'),
      };
    }));
    await ctx.close();
  }
  loads.sort((a, b) => a.total - b.total);
  console.log(JSON.stringify({ what: `cold page load to first prediction (ms since navigation)${process.env.COLD_QUERY ?? ''}`, median_ms: loads[1].total, all_ms: loads.map((l) => l.total), median_breakdown: loads[1] }));
  if (coldOnly) {
    await browser.close();
    process.exit(0);
  }

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
