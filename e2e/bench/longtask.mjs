// Main-thread responsiveness for BENCHMARKS.md (issue 14; not a test): the longest task the
// page's main thread runs (PerformanceObserver 'longtask', installed before the app starts) and
// the longest gap of a 10 ms setInterval probe (event-loop lag), while a model runs a prompt,
// in Debian's headless Chromium with WebGPU on SwiftShader or on the wasm CPU path.
//
//   PORT=4300 DIST_DIR=/path/to/dist node e2e/server.mjs &      # the site + the hub mimic
//   node e2e/bench/longtask.mjs http://127.0.0.1:4300/ [parts] [--runs=3] [--cap-s=300]
//
// The base URL is the only tie to a build, so the same script measures any build. `parts`
// is a comma list (default: the first five): english-gpu, english-cpu, gpt2-cpu, gpt2-gpu, cold,
// views-english-gpu, views-gpt2-cpu, patch-gpt2-gpu, patch-gpt2-cpu, patch-english-gpu,
// patch-english-cpu.
//   english-*: the shipped English model (`?model=english-char-3l`), a 124-character prompt
//              (slices of the shipped Moby-Dick corpus), `runs` runs after the model is ready.
//   gpt2-*:    `glassbox-test/gpt2-small-random` from the hub mimic (GPT-2 small's shape, random
//              weights, made by server.mjs), loaded through the "Load a model" panel, then the
//              same prompts. Each step is capped at `cap-s` seconds; what happened is printed.
//   views-*:   the inspect views (issue 9) after a run of the first prompt: each tab (head
//              scores, neurons + a neuron page, logit lens, attribution) from click to data
//              shown, then a scan of the shipped corpus slice with the layer shown (tokens/s).
//   cold:      page open (fresh context, empty cache) to the first prediction of the default
//              model on WebGPU, 3 times (as bench/browser_bench.mjs), with the longest task.
//   patch-*:   activation patching (issue 10): a `resid_pre` layer x position sweep of the
//              Patching tab (denoising, the default metric: the clean prediction's logit minus
//              the corrupted one's), `runs` times on one page, from the Run sweep click until
//              the heatmap's cells are shown, with the page's own "N patched runs in M batches,
//              X ms on BACKEND" (on a software WebGPU adapter, SwiftShader here, the worker runs
//              sweeps on its wasm CPU engine: made on the first sweep, which therefore includes
//              starting it). The clean prompt is run first (untimed).
//     patch-gpt2-gpu, patch-gpt2-cpu: gpt2-small-random (loaded as in gpt2-*; the load is
//              printed, untimed as a figure), clean "The whale swam in the sea and the ship
//              sailed to the shore", corrupted "The ship sailed in the sea and the whale swam to
//              the shore": 16 BPE tokens each (no BOS), 12 x 16 = 192 patched runs.
//     patch-english-gpu, patch-english-cpu: english-char-3l, "It was the best of times, it was
//              the worst of times, it was the" (63 characters, 64 tokens with BOS) against
//              "rest" for "best": 3 x 64 = 192 patched runs.
//   generate-gpt2-cpu: gpt2-small-random on the CPU, the Steering tab with the vector off
//              (one generation), greedy, 16 new tokens after the 16-token prompt above, `runs`
//              times: tokens per second from the page's own "X ms" (KV cache on; the page has
//              no uncached mode), with the longest task.
// One JSON line per figure on stdout.
import { chromium } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, WEBGPU_ARGS } from '../tests/browser.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const args = process.argv.slice(2);
const flag = (name, dflt) => Number(args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const positional = args.filter((a) => !a.startsWith('--'));
const BASE = positional[0];
if (!BASE) {
  console.error('usage: node e2e/bench/longtask.mjs <base URL, e.g. http://127.0.0.1:4300/> [parts] [--runs=3] [--cap-s=300]');
  process.exit(2);
}
const base = BASE.endsWith('/') ? BASE : `${BASE}/`;
const HUB = new URL('hub', base).href;
const PARTS = (positional[1] ?? 'english-gpu,english-cpu,gpt2-cpu,gpt2-gpu,cold').split(',');
const RUNS = flag('runs', 3);
const CAP_MS = flag('cap-s', 300) * 1000;
const GPT2_REPO = 'glassbox-test/gpt2-small-random';

/** `RUNS` prompts of exactly 124 characters: slices of the corpus, whitespace as one space. */
const corpus = readFileSync(join(here, '..', '..', 'public', 'corpus', 'moby-dick-heldout.txt'), 'utf8').replace(/\s+/g, ' ');
const PROMPTS = Array.from({ length: RUNS }, (_, i) => corpus.slice(1000 * i, 1000 * i + 124));

/** Before any script of the page: record every long task and the event loop's largest gap. */
function instrument() {
  window.__longtasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__longtasks.push({ start: e.startTime, duration: e.duration });
  }).observe({ type: 'longtask', buffered: true });
  window.__ticks = [];
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    if (now - last > 30) window.__ticks.push({ at: last, gap: now - last });
    last = now;
  }, 10);
}

/** The longest task and the longest probe gap overlapping [t0, t1] (page clock, ms). */
async function windowStats(page, t0, t1) {
  return page.evaluate(([t0, t1]) => {
    const tasks = window.__longtasks.filter((t) => t.start < t1 && t.start + t.duration > t0);
    const gaps = window.__ticks.filter((g) => g.at < t1 && g.at + g.gap > t0);
    return {
      longest_task_ms: Math.round(Math.max(0, ...tasks.map((t) => t.duration))),
      long_tasks: tasks.length,
      longest_gap_ms: Math.round(Math.max(0, ...gaps.map((g) => g.gap))),
    };
  }, [t0, t1]);
}

const now = (page) => page.evaluate(() => performance.now());

/** Resolves (page clock) when the shown run is of `text` and Run is enabled again. */
function shownAt(page, text, timeout) {
  return page.waitForFunction((text) => {
    const t = document.querySelector('[data-testid="tokens"]');
    const run = document.querySelector('[data-testid="run"]');
    return t && t.dataset.prompt === text && run && !run.disabled ? performance.now() : false;
  }, text, { timeout, polling: 50 }).then((h) => h.jsonValue());
}

async function waitReady(page, timeout) {
  await page.getByTestId('top5').first().waitFor({ timeout });
  await page.waitForFunction(() => !document.querySelector('[data-testid="run"]')?.disabled, null, { timeout });
}

/** Runs each prompt once; returns per-run figures. */
async function runPrompts(page, what) {
  const out = [];
  for (const text of PROMPTS) {
    await page.getByTestId('prompt').fill(text);
    await page.waitForTimeout(300); // let the page settle: only the run is measured
    const t0 = await now(page);
    await page.getByTestId('run').click();
    let t1;
    try {
      t1 = await shownAt(page, text, CAP_MS);
    } catch {
      const r = { what, outcome: `no result within ${CAP_MS / 1000} s`, ...(await windowStats(page, t0, await now(page))) };
      console.log(JSON.stringify(r));
      out.push(r);
      break;
    }
    const tokens = await page.getByTestId('token').count();
    const r = { what, prompt_chars: text.length, tokens, run_ms: Math.round(t1 - t0), ...(await windowStats(page, t0, t1)) };
    console.log(JSON.stringify(r));
    out.push(r);
  }
  return out;
}

function summary(what, runs) {
  const ok = runs.filter((r) => r.run_ms !== undefined);
  const s = {
    what: `${what}: summary`,
    runs: ok.length,
    tokens: ok[0]?.tokens,
    max_longest_task_ms: Math.max(0, ...runs.map((r) => r.longest_task_ms)),
    max_longest_gap_ms: Math.max(0, ...runs.map((r) => r.longest_gap_ms)),
    median_run_ms: ok.length ? ok.map((r) => r.run_ms).sort((a, b) => a - b)[ok.length >> 1] : null,
    failed: runs.filter((r) => r.outcome).map((r) => r.outcome),
  };
  console.log(JSON.stringify(s));
  return s;
}

async function newPage(browser) {
  const ctx = await browser.newContext();
  await ctx.addInitScript(instrument);
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  return { ctx, page };
}

async function english(browser, cpu) {
  const what = `english-char-3l, 124 characters, ${cpu ? 'CPU (backend=cpu)' : 'WebGPU'}`;
  const { ctx, page } = await newPage(browser);
  try {
    await page.goto(`${base}?model=english-char-3l${cpu ? '&backend=cpu' : ''}`);
    await waitReady(page, CAP_MS);
    console.log(JSON.stringify({ what: `${what}: backend`, badge: await page.getByTestId('backend').textContent() }));
    return summary(what, await runPrompts(page, what));
  } finally {
    await ctx.close();
  }
}

async function gpt2(browser, cpu) {
  const what = `gpt2-small-random, 124 characters, ${cpu ? 'CPU (backend=cpu)' : 'WebGPU'}`;
  const { ctx, page } = await newPage(browser);
  try {
    await page.goto(`${base}?hub=${encodeURIComponent(HUB)}${cpu ? '&backend=cpu' : ''}`);
    await waitReady(page, CAP_MS);
    await page.getByTestId('hub-repo').fill(GPT2_REPO);
    await page.getByTestId('hub-format').selectOption('safetensors');
    await page.waitForTimeout(300);
    // Loading: download (0.35 GB from localhost), SHA-256 and Cache Storage, parse, start, and
    // the first run of the prompt in the box.
    const t0 = await now(page);
    await page.getByTestId('load-button').click();
    let t1;
    try {
      await page.getByTestId('loaded-model').filter({ hasText: GPT2_REPO }).waitFor({ timeout: CAP_MS });
      await waitReady(page, CAP_MS);
      t1 = await now(page);
    } catch {
      const state = await page.evaluate(() => ['load-progress', 'load-starting', 'load-error', 'loaded-model']
        .map((id) => document.querySelector(`[data-testid="${id}"]`)).filter(Boolean).map((e) => e.textContent).join(' | '));
      const r = { what: `${what}: load`, outcome: `not loaded and run within ${CAP_MS / 1000} s (page shows: ${state})`, ...(await windowStats(page, t0, await now(page))) };
      console.log(JSON.stringify(r));
      return { what, load: r, failed: [r.outcome] };
    }
    const load = { what: `${what}: load + first run`, load_ms: Math.round(t1 - t0), ...(await windowStats(page, t0, t1)) };
    console.log(JSON.stringify(load));
    console.log(JSON.stringify({ what: `${what}: backend`, badge: await page.getByTestId('backend').textContent() }));
    return { ...summary(what, await runPrompts(page, what)), load };
  } finally {
    await ctx.close();
  }
}

/** Clicks each inspect tab and scans the corpus; one JSON line per step. */
async function inspectViews(page, what) {
  const steps = [
    ['attention', 'head-score-row'],
    ['neurons', 'neuron-title'],
    ['lens', 'lens-cell'],
    ['attribution', 'attribution-sum'],
  ];
  const out = [];
  for (const [tab, ready] of steps) {
    await page.waitForTimeout(300);
    const t0 = await now(page);
    await page.getByTestId(`tab-${tab}`).click();
    try {
      await page.getByTestId(ready).first().waitFor({ timeout: CAP_MS });
    } catch {
      console.log(JSON.stringify({ what: `${what}: ${tab}`, outcome: `not shown within ${CAP_MS / 1000} s` }));
      continue;
    }
    const t1 = await now(page);
    const r = { what: `${what}: ${tab} view`, view_ms: Math.round(t1 - t0), ...(await windowStats(page, t0, t1)) };
    console.log(JSON.stringify(r));
    out.push(r);
  }
  await page.getByTestId('tab-neurons').click();
  await page.getByTestId('scan-run').waitFor({ timeout: CAP_MS });
  const t0 = await now(page);
  await page.getByTestId('scan-run').click();
  try {
    await page.getByTestId('scan-done').waitFor({ timeout: CAP_MS });
  } catch {
    console.log(JSON.stringify({ what: `${what}: scan`, outcome: `no scan within ${CAP_MS / 1000} s`, ...(await windowStats(page, t0, await now(page))) }));
    return out;
  }
  const t1 = await now(page);
  const text = await page.getByTestId('scan-done').textContent();
  const tokens = Number(text.match(/scanned: (\d+) tokens/)[1]);
  const r = { what: `${what}: corpus scan (shipped slice)`, tokens, scan_ms: Math.round(t1 - t0), tokens_per_s: Math.round((tokens * 1000) / (t1 - t0)), ...(await windowStats(page, t0, t1)) };
  console.log(JSON.stringify(r));
  out.push(r);
  return out;
}

async function viewsEnglish(browser) {
  const what = 'english-char-3l views, WebGPU';
  const { ctx, page } = await newPage(browser);
  try {
    await page.goto(`${base}?model=english-char-3l`);
    await waitReady(page, CAP_MS);
    await page.getByTestId('prompt').fill(PROMPTS[0]);
    await page.getByTestId('run').click();
    await shownAt(page, PROMPTS[0], CAP_MS);
    return await inspectViews(page, what);
  } finally {
    await ctx.close();
  }
}

async function viewsGpt2(browser) {
  const what = 'gpt2-small-random views, CPU (backend=cpu)';
  const { ctx, page } = await newPage(browser);
  try {
    await page.goto(`${base}?hub=${encodeURIComponent(HUB)}&backend=cpu`);
    await waitReady(page, CAP_MS);
    await page.getByTestId('hub-repo').fill(GPT2_REPO);
    await page.getByTestId('hub-format').selectOption('safetensors');
    await page.getByTestId('load-button').click();
    await page.getByTestId('loaded-model').filter({ hasText: GPT2_REPO }).waitFor({ timeout: CAP_MS });
    await waitReady(page, CAP_MS);
    await page.getByTestId('prompt').fill(PROMPTS[0]);
    await page.getByTestId('run').click();
    await shownAt(page, PROMPTS[0], CAP_MS);
    console.log(JSON.stringify({ what: `${what}: tokens`, tokens: await page.getByTestId('token').count() }));
    return await inspectViews(page, what);
  } finally {
    await ctx.close();
  }
}

async function cold(browser) {
  const loads = [];
  for (let i = 0; i < 3; i++) {
    const { ctx, page } = await newPage(browser);
    await page.goto(base);
    await page.getByTestId('top5').first().waitFor({ timeout: CAP_MS });
    const t = await now(page);
    loads.push({ ms: t, ...(await windowStats(page, 0, t)) });
    await ctx.close();
  }
  const ms = loads.map((l) => l.ms).sort((a, b) => a - b);
  const s = {
    what: 'cold page load to first prediction (induction-2l, WebGPU)',
    median_ms: Math.round(ms[1]),
    all_ms: loads.map((l) => Math.round(l.ms)),
    longest_task_ms: loads.map((l) => l.longest_task_ms),
    longest_gap_ms: loads.map((l) => l.longest_gap_ms),
  };
  console.log(JSON.stringify(s));
  return s;
}

const PATCH_GPT2 = {
  clean: 'The whale swam in the sea and the ship sailed to the shore',
  corrupted: 'The ship sailed in the sea and the whale swam to the shore',
};
const PATCH_ENGLISH = {
  clean: 'It was the best of times, it was the worst of times, it was the',
  corrupted: 'It was the rest of times, it was the worst of times, it was the',
};

/** Runs the clean prompt, then the resid_pre x position sweep `RUNS` times; one line per sweep. */
async function patchSweeps(page, what, pair) {
  await page.getByTestId('prompt').fill(pair.clean);
  await page.getByTestId('run').click();
  await shownAt(page, pair.clean, CAP_MS);
  await page.getByTestId('tab-patching').click();
  await page.getByTestId('corrupted-prompt').fill(pair.corrupted);
  await page.getByTestId('patch-component').selectOption('resid_pre');
  await page.getByTestId('patch-by').selectOption('pos');
  const out = [];
  for (let i = 0; i < RUNS; i++) {
    await page.waitForFunction(() => !document.querySelector('[data-testid="patch-run"]')?.disabled, null, { timeout: CAP_MS });
    await page.waitForTimeout(300); // let the page settle: only the sweep is measured
    // The sweep is over when its progress row, seen since the click, is gone. (An identical
    // result leaves the heatmap's nodes in place, so new nodes cannot be waited for.)
    await page.evaluate(() => {
      window.__sawProgress = false;
      window.__progressObserver?.disconnect();
      window.__progressObserver = new MutationObserver(() => {
        if (document.querySelector('[data-testid="patch-progress"]')) window.__sawProgress = true;
      });
      window.__progressObserver.observe(document.body, { childList: true, subtree: true });
    });
    const t0 = await now(page);
    await page.getByTestId('patch-run').click();
    let done;
    try {
      done = await page.waitForFunction(() => {
        const err = document.querySelector('[data-testid="patch-error"]');
        if (err) return { t: performance.now(), error: err.textContent };
        if (!window.__sawProgress || document.querySelector('[data-testid="patch-progress"]')) return false;
        const s = document.querySelector('[data-testid="patch-summary"]');
        const cells = document.querySelectorAll('[data-testid="patch-cell"]').length;
        return s && cells ? { t: performance.now(), cells, summary: s.textContent } : false;
      }, null, { timeout: CAP_MS, polling: 50 }).then((h) => h.jsonValue());
    } catch {
      const r = { what, outcome: `no heatmap within ${CAP_MS / 1000} s`, ...(await windowStats(page, t0, await now(page))) };
      console.log(JSON.stringify(r));
      out.push(r);
      break;
    }
    if (done.error) {
      const r = { what, outcome: `error: ${done.error}`, ...(await windowStats(page, t0, done.t)) };
      console.log(JSON.stringify(r));
      out.push(r);
      break;
    }
    const rows = await page.locator('.token-row').evaluateAll((els) => els.map((e) => e.querySelectorAll('.tok-chip').length));
    const m = done.summary.match(/(\d+) patched runs in (\d+) batches, (\d+) ms on (.*)\.\s*$/);
    const r = {
      what,
      sweep: i + 1,
      tokens: rows,
      cells: done.cells,
      sweep_ms: Math.round(done.t - t0),
      page_says: m ? { runs: Number(m[1]), batches: Number(m[2]), ms: Number(m[3]), backend: m[4] } : done.summary,
      ...(await windowStats(page, t0, done.t)),
    };
    console.log(JSON.stringify(r));
    out.push(r);
  }
  const ok = out.filter((r) => r.sweep_ms !== undefined);
  const s = {
    what: `${what}: summary`,
    sweeps: ok.length,
    all_sweep_ms: ok.map((r) => r.sweep_ms),
    all_page_ms: ok.map((r) => r.page_says?.ms),
    median_sweep_ms: ok.length ? ok.map((r) => r.sweep_ms).sort((a, b) => a - b)[ok.length >> 1] : null,
    max_longest_task_ms: Math.max(0, ...out.map((r) => r.longest_task_ms)),
    max_longest_gap_ms: Math.max(0, ...out.map((r) => r.longest_gap_ms)),
    failed: out.filter((r) => r.outcome).map((r) => r.outcome),
  };
  console.log(JSON.stringify(s));
  return s;
}

/** The page's console errors and warnings, on stderr (the figures stay on stdout). */
function consoleErrors(page) {
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') console.error(`console ${m.type()}: ${m.text()}`);
  });
}

async function patchGpt2(browser, cpu) {
  const what = `patching, gpt2-small-random, resid_pre x pos, 16 tokens, ${cpu ? 'CPU (backend=cpu)' : 'WebGPU on'}`;
  const { ctx, page } = await newPage(browser);
  consoleErrors(page);
  try {
    await page.goto(`${base}?hub=${encodeURIComponent(HUB)}${cpu ? '&backend=cpu' : ''}`);
    await waitReady(page, CAP_MS);
    await page.getByTestId('hub-repo').fill(GPT2_REPO);
    await page.getByTestId('hub-format').selectOption('safetensors');
    const t0 = await now(page);
    await page.getByTestId('load-button').click();
    await page.getByTestId('loaded-model').filter({ hasText: GPT2_REPO }).waitFor({ timeout: CAP_MS });
    await waitReady(page, CAP_MS);
    const t1 = await now(page);
    console.log(JSON.stringify({ what: `${what}: load + first run (not a figure here)`, load_ms: Math.round(t1 - t0), badge: await page.getByTestId('backend').textContent() }));
    return await patchSweeps(page, what, PATCH_GPT2);
  } finally {
    await ctx.close();
  }
}

async function patchEnglish(browser, cpu) {
  const what = `patching, english-char-3l, resid_pre x pos, 63 characters, ${cpu ? 'CPU (backend=cpu)' : 'WebGPU on'}`;
  const { ctx, page } = await newPage(browser);
  consoleErrors(page);
  try {
    await page.goto(`${base}?model=english-char-3l${cpu ? '&backend=cpu' : ''}`);
    await waitReady(page, CAP_MS);
    console.log(JSON.stringify({ what: `${what}: backend`, badge: await page.getByTestId('backend').textContent() }));
    return await patchSweeps(page, what, PATCH_ENGLISH);
  } finally {
    await ctx.close();
  }
}

async function generateGpt2(browser) {
  const what = 'generation, gpt2-small-random, CPU (backend=cpu), 16 new tokens, KV cache';
  const { ctx, page } = await newPage(browser);
  consoleErrors(page);
  try {
    await page.goto(`${base}?hub=${encodeURIComponent(HUB)}&backend=cpu`);
    await waitReady(page, CAP_MS);
    await page.getByTestId('hub-repo').fill(GPT2_REPO);
    await page.getByTestId('hub-format').selectOption('safetensors');
    await page.getByTestId('load-button').click();
    await page.getByTestId('loaded-model').filter({ hasText: GPT2_REPO }).waitFor({ timeout: CAP_MS });
    await waitReady(page, CAP_MS);
    await page.getByTestId('prompt').fill(PATCH_GPT2.clean);
    await page.getByTestId('run').click();
    await shownAt(page, PATCH_GPT2.clean, CAP_MS);
    await page.getByTestId('tab-steering').click();
    await page.getByTestId('steer-on').uncheck();
    for (const [id, v] of [['steer-max', '16'], ['steer-temperature', '0']]) {
      await page.getByTestId(id).fill(v);
      await page.getByTestId(id).dispatchEvent('change');
    }
    const out = [];
    for (let i = 0; i < RUNS; i++) {
      await page.evaluate(() => { window.__longtasks = []; });
      const before = await page.getByTestId('steer-summary').textContent().catch(() => '');
      await page.getByTestId('steer-run').click();
      await page.waitForFunction((b) => { const e = document.querySelector('[data-testid="steer-summary"]'); return e && e.textContent !== b; }, before, { timeout: CAP_MS });
      const text = await page.getByTestId('steer-summary').textContent();
      const ms = Number(/, (\d+) ms on/.exec(text)?.[1]);
      const n = Number(/\. (\d+) and \d+ new tokens/.exec(text)?.[1]);
      const longest = await page.evaluate(() => Math.max(0, ...window.__longtasks.map((t) => t.duration)));
      out.push({ ms, n, tokens_per_s: +(n / (ms / 1000)).toFixed(2), longest_task_ms: Math.round(longest) });
    }
    const median = out.map((r) => r.tokens_per_s).sort((a, b) => a - b)[out.length >> 1];
    console.log(JSON.stringify({ what, runs: out, median_tokens_per_s: median }));
  } finally {
    await ctx.close();
  }
}

const browser = await chromium.launch({ executablePath: CHROMIUM, args: WEBGPU_ARGS, headless: true });
try {
  for (const part of PARTS) {
    try {
      if (part === 'english-gpu') await english(browser, false);
      else if (part === 'english-cpu') await english(browser, true);
      else if (part === 'gpt2-cpu') await gpt2(browser, true);
      else if (part === 'gpt2-gpu') await gpt2(browser, false);
      else if (part === 'cold') await cold(browser);
      else if (part === 'views-english-gpu') await viewsEnglish(browser);
      else if (part === 'views-gpt2-cpu') await viewsGpt2(browser);
      else if (part === 'patch-gpt2-gpu') await patchGpt2(browser, false);
      else if (part === 'patch-gpt2-cpu') await patchGpt2(browser, true);
      else if (part === 'patch-english-gpu') await patchEnglish(browser, false);
      else if (part === 'patch-english-cpu') await patchEnglish(browser, true);
      else if (part === 'generate-gpt2-cpu') await generateGpt2(browser);
      else console.error(`unknown part ${part}`);
    } catch (e) {
      console.log(JSON.stringify({ what: part, outcome: `failed: ${e.message.split('\n')[0]}` }));
    }
  }
} finally {
  await browser.close();
}
