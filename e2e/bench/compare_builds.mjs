// Forward passes on WebGPU (SwiftShader here) for two or more builds of the site, alternating,
// for before/after figures in BENCHMARKS.md (not a test):
//
//   node e2e/bench/compare_builds.mjs DIST_BEFORE DIST_AFTER      # RUNS=20 ROUNDS=2 BACKEND=gpu
//
// Each round starts the e2e server on each build in turn and times `bench_forward` (every hook
// cached, two warm-up runs, the median of RUNS) on the shipped models; it prints every median.
// GPT2=14,61 adds the hub mimic's GPT-2-small-shaped model at about those token counts (5 runs
// each); GENERATE=1 adds greedy generation on the English model with and without the KV cache
// (64 new tokens, tokens per second); ENGLISH=64,128 adds the English model at those prompt
// lengths in tokens.
import { chromium } from '@playwright/test';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, WEBGPU_ARGS } from '../tests/browser.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const PORT = Number(process.env.PORT ?? 4400);
const runs = Number(process.env.RUNS ?? 20);
const rounds = Number(process.env.ROUNDS ?? 2);
const backend = process.env.BACKEND ?? 'gpu';
const dists = process.argv.slice(2);
const PROMPTS = [['induction-2l', 'xQ7bLm2Rk9pZ vT3nW8cY xQ7bLm2Rk9pZ'], ['english-char-3l', 'Call me Ishmael. Some years ago']];

const medians = {};
for (let round = 0; round < rounds; round++) {
  for (const [i, dist] of dists.entries()) {
    // The server binds its port and the next one: ten apart per build.
    const port = PORT + 10 * i;
    const server = spawn(process.execPath, [join(here, '..', 'server.mjs')], { env: { ...process.env, PORT: String(port), DIST_DIR: dist }, stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 800));
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: WEBGPU_ARGS });
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.getByTestId('top5').first().waitFor({ timeout: 180_000 });
      for (const [model, prompt] of PROMPTS) {
        const r = JSON.parse(await page.evaluate(([m, p, n, b]) => window.wasmBindings.bench_forward(m, p, n, b), [model, prompt, runs, backend]));
        (medians[`${dist} ${model} (${r.n_tokens} tokens, ${r.backend})`] ??= []).push(r.median_ms);
      }
      const hub = `http://127.0.0.1:${port}/hub/glassbox-test/gpt2-small-random/resolve/main`;
      const text = 'the whale swam past the ship and the sailors watched it go by in silence. ';
      for (const n of (process.env.ENGLISH ?? '').split(',').filter(Boolean).map(Number)) {
        // A character per token after the BOS.
        const args = ['english-char-3l', text.repeat(4).slice(0, n - 1), runs, backend];
        const r = JSON.parse(await page.evaluate(([m, p, k, b]) => window.wasmBindings.bench_forward(m, p, k, b), args));
        (medians[`${dist} english-char-3l (${r.n_tokens} tokens, ${r.backend})`] ??= []).push(r.median_ms);
      }
      for (const n of (process.env.GPT2 ?? '').split(',').filter(Boolean).map(Number)) {
        // Byte-level BPE: about a token per 3 characters of this text.
        const args = [hub, text.repeat(8).slice(0, 3 * n), backend];
        const r = JSON.parse(await page.evaluate(([h, p, b]) => window.wasmBindings.bench_forward_url(h, 'config.json,model.safetensors,tokenizer.json', p, 5, b), args));
        (medians[`${dist} gpt2-small-random (${r.n_tokens} tokens, ${r.backend})`] ??= []).push(r.median_ms);
      }
      for (const cache of process.env.GENERATE ? [true, false] : []) {
        const r = JSON.parse(await page.evaluate(([b, c]) => window.wasmBindings.bench_generate('english-char-3l', 'Call me Ishmael.', 64, b, c), [backend, cache]));
        (medians[`${dist} generation, english-char-3l, KV cache ${cache} (${r.backend}), tokens per second (not ms)`] ??= []).push(r.tokens_per_s);
      }
      await browser.close();
    } finally {
      server.kill();
    }
  }
}
for (const [what, ms] of Object.entries(medians)) console.log(JSON.stringify({ what, median_ms: ms }));
